"""CenterNet losses (Zhou et al., 2019) and the GIoU box loss, in `keras.ops`.

`model.fit` with the dict outputs of `zoo.attention_detector` and the dict
targets of `zoo.detection.targets.centernet_targets` (batched):

    model.compile(optimizer=keras.optimizers.Adam(5e-4), **centernet_losses())
    model.fit(images, targets)

Keras applies one loss per output (`loss` and `loss_weights` are dicts keyed
by output name) and logs each as `heatmap_loss`, `size_loss` and
`offset_loss` (unweighted) next to the weighted total `loss`.
"""

import keras
from keras import ops

from layers.validation import check_float

# Smallest denominator of the IoU and GIoU ratios.
EPSILON = 1e-7
# Smallest value whose log the size loss takes.
LOG_FLOOR = 1e-6


def _per_image(total, count, batch_size):
    """Per-image values whose batch mean is `total / max(count, 1)`.

    Keras reduces a loss's per-sample values by their mean
    (`"sum_over_batch_size"`); CenterNet divides the batch's sum by the
    number of objects in the batch. `total` is `(batch,)`.
    """
    scale = ops.cast(batch_size, "float32") / ops.maximum(count, 1.0)
    return total * scale


@keras.saving.register_keras_serializable(package="attention_zoo")
class HeatmapFocalLoss(keras.losses.Loss):
    """CenterNet's penalty-reduced pixel-wise focal loss, on heatmap logits.

    With `p = sigmoid(logits)` and target heatmap `y`:
    `-(1 / N) * sum(where(y == 1, (1 - p) ** alpha * log(p),
    (1 - y) ** beta * p ** alpha * log(1 - p)))` over every position and
    class of the batch, where `N` is the number of positives (`y == 1`, one
    per object centre) in the batch, at least 1: an image without objects
    gives the sum of its negative terms. `log(p)` and `log(1 - p)` are
    computed as `log_sigmoid(logits)` and `log_sigmoid(-logits)`, finite for
    any logits, in float32.

    Args:
        alpha: non-negative number, the focusing exponent (2 in the paper).
        beta: non-negative number, the exponent of the penalty reduction
            around centres (4 in the paper).
        reduction: Keras loss reduction (see "Returns").
        name: loss name.
        dtype: loss dtype.

    Call arguments:
        y_true: `(batch, h, w, C)` target heatmap in [0, 1].
        y_pred: `(batch, h, w, C)` heatmap logits.
        sample_weight: optional `(batch,)` weights of the images.

    Returns:
        The loss above, a scalar. (`call` returns `(batch,)` per-image sums
        scaled by `batch / N`, so that Keras's mean over the batch is the
        loss above.)
    """

    def __init__(
        self,
        alpha=2.0,
        beta=4.0,
        reduction="sum_over_batch_size",
        name="heatmap_focal_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.alpha = check_float("alpha", alpha, low_open=False)
        self.beta = check_float("beta", beta, low_open=False)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        logits = ops.cast(y_pred, "float32")
        positive = ops.greater_equal(y_true, 1.0)
        p = ops.sigmoid(logits)
        positive_terms = ops.power(ops.sigmoid(-logits), self.alpha) * ops.log_sigmoid(
            logits
        )
        negative_terms = (
            ops.power(1.0 - y_true, self.beta)
            * ops.power(p, self.alpha)
            * ops.log_sigmoid(-logits)
        )
        terms = ops.where(positive, positive_terms, negative_terms)
        total = -ops.sum(terms, axis=(1, 2, 3))
        count = ops.sum(ops.cast(positive, "float32"))
        return _per_image(total, count, ops.shape(y_true)[0])

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, beta=self.beta)
        return config


@keras.saving.register_keras_serializable(package="attention_zoo")
class CenterRegressionLoss(keras.losses.Loss):
    """L1 loss of a 2-channel regression (size or offset) at object centres.

    `(1 / N) * sum(mask * |f(y_pred) - f(target)|)` over the batch's positions
    and both channels, where `target = y_true[..., :2]`, `mask =
    y_true[..., 2]` (1 at object centres, see `centernet_targets`),
    `N = max(sum(mask), 1)` and `f` is the identity, or `log` with
    `log_space=True`: the L1 norm of each object's error, averaged over the
    objects (Eq. 2 of the paper; CenterNet's code divides by `2N`).
    Positions outside the mask add nothing, and an image without objects
    gives 0.

    In log space (for sizes) the error is relative: a box 10% too large costs
    the same at any scale, and the gradient does not vanish where a size
    predicted through `exp` is far too small. Predictions and targets are
    clipped to at least `1e-6` before the `log`.

    Args:
        log_space: whether to compare logarithms (for positive sizes).
        reduction: Keras loss reduction (see "Returns").
        name: loss name.
        dtype: loss dtype.

    Call arguments:
        y_true: `(batch, h, w, 3)`: the target's 2 channels, then the mask.
        y_pred: `(batch, h, w, 2)` predictions (positive with
            `log_space=True`).
        sample_weight: optional `(batch,)` weights of the images.

    Returns:
        The loss above, a scalar. (`call` returns `(batch,)` per-image sums
        scaled by `batch / N`, so that Keras's mean over the batch is the
        loss above.)
    """

    def __init__(
        self,
        log_space=False,
        reduction="sum_over_batch_size",
        name="center_l1_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.log_space = bool(log_space)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        target, mask = y_true[..., :2], y_true[..., 2:3]
        if self.log_space:
            target = ops.log(ops.maximum(target, LOG_FLOOR))
            y_pred = ops.log(ops.maximum(y_pred, LOG_FLOOR))
        total = ops.sum(ops.abs(y_pred - target) * mask, axis=(1, 2, 3))
        return _per_image(total, ops.sum(mask), ops.shape(y_true)[0])

    def get_config(self):
        config = super().get_config()
        config["log_space"] = self.log_space
        return config


def centernet_losses(
    size_weight=0.1, offset_weight=1.0, alpha=2.0, beta=4.0, log_size=True
):
    """The `loss` and `loss_weights` arguments of `model.compile` for CenterNet.

    `L = L_heatmap + size_weight * L_size + offset_weight * L_offset`
    (weights 0.1 and 1 in the paper), keyed by the outputs of
    `zoo.attention_detector`: `model.compile(optimizer,
    **centernet_losses())`. The size loss compares log sizes by default
    (`log_size`): from scratch, the paper's L1 on sizes in cells, through the
    detector's `exp`, often left a size stuck far too small.

    Args:
        size_weight: non-negative weight of the size loss.
        offset_weight: non-negative weight of the offset loss.
        alpha: `HeatmapFocalLoss`'s `alpha`.
        beta: `HeatmapFocalLoss`'s `beta`.
        log_size: the size loss's `log_space`; `False` is the paper's loss.

    Returns:
        A dict `{"loss": {...}, "loss_weights": {...}}` over the output names
        `"heatmap"`, `"size"` and `"offset"`.
    """
    size_weight = check_float("size_weight", size_weight, low_open=False)
    offset_weight = check_float("offset_weight", offset_weight, low_open=False)
    return {
        "loss": {
            "heatmap": HeatmapFocalLoss(alpha=alpha, beta=beta),
            "size": CenterRegressionLoss(log_space=log_size, name="size_l1_loss"),
            "offset": CenterRegressionLoss(name="offset_l1_loss"),
        },
        "loss_weights": {"heatmap": 1.0, "size": size_weight, "offset": offset_weight},
    }


def _box_terms(boxes1, boxes2):
    """Intersection, union and enclosing-box area of `[..., 4]` yxyx boxes.

    A box with `max < min` on an axis counts as empty on that axis.
    """
    boxes1 = ops.cast(boxes1, "float32")
    boxes2 = ops.cast(boxes2, "float32")
    y1a, x1a, y2a, x2a = ops.unstack(boxes1, 4, axis=-1)
    y1b, x1b, y2b, x2b = ops.unstack(boxes2, 4, axis=-1)
    area_a = ops.maximum(y2a - y1a, 0.0) * ops.maximum(x2a - x1a, 0.0)
    area_b = ops.maximum(y2b - y1b, 0.0) * ops.maximum(x2b - x1b, 0.0)
    inter_h = ops.maximum(ops.minimum(y2a, y2b) - ops.maximum(y1a, y1b), 0.0)
    inter_w = ops.maximum(ops.minimum(x2a, x2b) - ops.maximum(x1a, x1b), 0.0)
    intersection = inter_h * inter_w
    union = area_a + area_b - intersection
    hull_h = ops.maximum(ops.maximum(y2a, y2b) - ops.minimum(y1a, y1b), 0.0)
    hull_w = ops.maximum(ops.maximum(x2a, x2b) - ops.minimum(x1a, x1b), 0.0)
    return intersection, union, hull_h * hull_w


def box_iou(boxes1, boxes2):
    """Intersection over union of matching `[ymin, xmin, ymax, xmax]` boxes.

    Args:
        boxes1: `(..., 4)` boxes.
        boxes2: `(..., 4)` boxes, broadcastable against `boxes1`.

    Returns:
        float32 `(...)` IoU in [0, 1]; 0 for two empty boxes.
    """
    intersection, union, _ = _box_terms(boxes1, boxes2)
    return intersection / ops.maximum(union, EPSILON)


def giou_loss(y_true_boxes, y_pred_boxes):
    """Generalized IoU loss (Rezatofighi et al., 2019): `1 - GIoU`, per box.

    `GIoU = IoU - (C - U) / C` with `U` the union and `C` the area of the
    smallest box enclosing both: in `(-1, 1]`, so the loss is in `[0, 2)`, 0
    for identical boxes and still informative for disjoint ones. Denominators
    are at least `EPSILON`, so degenerate boxes give finite values and
    gradients.

    Args:
        y_true_boxes: `(..., 4)` target `[ymin, xmin, ymax, xmax]` boxes.
        y_pred_boxes: `(..., 4)` predicted boxes, broadcastable against them.

    Returns:
        float32 `(...)` losses (no reduction).
    """
    intersection, union, hull = _box_terms(y_true_boxes, y_pred_boxes)
    iou = intersection / ops.maximum(union, EPSILON)
    giou = iou - (hull - union) / ops.maximum(hull, EPSILON)
    return 1.0 - giou

"""CenterNet losses and the GIoU loss: hand-computed values, stability."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from zoo.detection.losses import (
    CenterRegressionLoss,
    HeatmapFocalLoss,
    box_iou,
    centernet_losses,
    giou_loss,
)

LOG_HALF = math.log(0.5)


def _heatmap(values):
    """A `(1, 1, len(values), 1)` heatmap."""
    return np.array(values, "float32").reshape(1, 1, -1, 1)


def test_focal_loss_hand_computed():
    # p = 0.5 everywhere. Positive: (1 - p)^2 log p; negative at y = 0.5:
    # (1 - y)^4 p^2 log(1 - p); at y = 0: p^2 log(1 - p). One positive.
    y_true = _heatmap([1.0, 0.5, 0.0])
    expected = -(0.25 * LOG_HALF + 0.0625 * 0.25 * LOG_HALF + 0.25 * LOG_HALF)
    loss = HeatmapFocalLoss()(y_true, np.zeros_like(y_true))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)


def test_focal_loss_normalised_by_objects_in_the_batch():
    # Image 1: two positives and one negative; image 2: no object. The
    # batch's sum over its 2 positives, the empty image's negatives included.
    y_true = np.concatenate([_heatmap([1.0, 1.0, 0.0]), _heatmap([0.0, 0.0, 0.0])])
    logits = np.zeros_like(y_true)
    total = -(2 * 0.25 * LOG_HALF + 4 * 0.25 * LOG_HALF)
    loss = HeatmapFocalLoss()(y_true, logits)
    np.testing.assert_allclose(float(loss), total / 2, rtol=1e-6)


def test_focal_loss_alpha_beta():
    y_true = _heatmap([1.0, 0.5])
    logits = np.full_like(y_true, math.log(3.0))  # p = 0.75
    loss = HeatmapFocalLoss(alpha=1.0, beta=2.0)(y_true, logits)
    expected = -(0.25 * math.log(0.75) + 0.25 * 0.75 * math.log(0.25))
    np.testing.assert_allclose(float(loss), expected, rtol=1e-6)


def test_focal_loss_empty_images_and_extreme_logits_are_finite():
    y_true = np.zeros((2, 4, 4, 3), "float32")
    y_true[0, 1, 1, 0] = 1.0
    for target in (y_true, np.zeros_like(y_true)):
        for value in (-200.0, 0.0, 200.0):
            logits = keras.Variable(np.full_like(target, value))
            loss, grads = _value_and_grad(HeatmapFocalLoss(), target, logits)
            assert np.isfinite(loss) and np.isfinite(grads).all()
    # No object, confident negatives: a loss close to 0, not NaN.
    loss = HeatmapFocalLoss()(np.zeros_like(y_true), np.full_like(y_true, -30.0))
    assert 0.0 <= float(loss) < 1e-20


def test_regression_loss_hand_computed():
    y_true = np.zeros((2, 2, 2, 3), "float32")
    y_true[0, 0, 0] = (3.0, 4.0, 1.0)
    y_true[1, 1, 0] = (1.0, 2.0, 1.0)
    y_pred = np.full((2, 2, 2, 2), 50.0, "float32")  # ignored off the mask
    y_pred[0, 0, 0] = (2.5, 5.0)  # L1 1.5
    y_pred[1, 1, 0] = (1.0, 1.5)  # L1 0.5
    loss = CenterRegressionLoss()(y_true, y_pred)
    np.testing.assert_allclose(float(loss), (1.5 + 0.5) / 2, rtol=1e-6)


def test_log_space_regression_loss_hand_computed():
    y_true = np.zeros((1, 2, 2, 3), "float32")
    y_true[0, 0, 1] = (4.0, 2.0, 1.0)
    y_pred = np.full((1, 2, 2, 2), 1e-9, "float32")  # clipped off the mask
    y_pred[0, 0, 1] = (2.0, 2.0)
    loss = CenterRegressionLoss(log_space=True)(y_true, y_pred)
    np.testing.assert_allclose(float(loss), math.log(2.0), rtol=1e-6)
    # Relative errors: the same at every scale.
    scaled = CenterRegressionLoss(log_space=True)(y_true * [10, 10, 1], y_pred * 10)
    np.testing.assert_allclose(float(scaled), math.log(2.0), rtol=1e-5)


def test_log_space_gradient_does_not_vanish_for_tiny_sizes():
    y_true = np.zeros((1, 1, 1, 3), "float32")
    y_true[0, 0, 0] = (8.0, 8.0, 1.0)
    logits = keras.Variable(np.full((1, 1, 1, 2), -10.0, "float32"))
    loss = CenterRegressionLoss(log_space=True)

    def size_loss(t, z):
        return loss(t, keras.ops.exp(z))

    _, grads = _value_and_grad(size_loss, y_true, logits)
    np.testing.assert_allclose(grads, -1.0, rtol=1e-5)


def test_regression_loss_without_objects_is_zero():
    y_true = np.zeros((2, 3, 3, 3), "float32")
    y_pred = keras.Variable(np.ones((2, 3, 3, 2), "float32"))
    loss, grads = _value_and_grad(CenterRegressionLoss(), y_true, y_pred)
    assert loss == 0.0
    np.testing.assert_array_equal(grads, 0.0)


def test_sample_weights_weigh_images():
    y_true = np.concatenate([_heatmap([1.0, 0.0]), _heatmap([1.0, 0.0])])
    logits = np.zeros_like(y_true)
    full = float(HeatmapFocalLoss()(y_true, logits))
    half = float(HeatmapFocalLoss()(y_true, logits, sample_weight=np.array([1, 0])))
    np.testing.assert_allclose(half, full / 2, rtol=1e-6)


def test_centernet_losses_arguments():
    args = centernet_losses(size_weight=0.5, offset_weight=2.0, alpha=1.0, beta=3.0)
    assert sorted(args) == ["loss", "loss_weights"]
    assert args["loss_weights"] == {"heatmap": 1.0, "size": 0.5, "offset": 2.0}
    assert args["loss"]["heatmap"].alpha == 1.0
    assert args["loss"]["heatmap"].beta == 3.0
    assert centernet_losses()["loss_weights"]["size"] == 0.1
    assert centernet_losses()["loss"]["size"].log_space
    assert not centernet_losses(log_size=False)["loss"]["size"].log_space
    assert not centernet_losses()["loss"]["offset"].log_space


@pytest.mark.parametrize(
    "kwargs", [dict(size_weight=-1.0), dict(offset_weight="1"), dict(alpha=-2.0)]
)
def test_bad_arguments(kwargs):
    name, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=f"{name}={value!r}"):
        centernet_losses(**kwargs)


@pytest.mark.parametrize(
    "loss",
    [HeatmapFocalLoss(alpha=1.5, beta=3.0), CenterRegressionLoss(log_space=True)],
)
def test_config_round_trip(loss):
    cls = type(loss)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls
    assert restored.get_config() == loss.get_config()


def test_giou_hand_computed():
    a = [[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]
    b = [[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0], [0.0, 0.0, 1.0, 1.0]]
    # Overlap 1, union 7, hull 9; disjoint: union 2, hull 9; identical.
    expected = [1 - (1 / 7 - 2 / 9), 1 - (0 - 7 / 9), 0.0]
    np.testing.assert_allclose(giou_loss(a, b), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(giou_loss(b, a), expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(box_iou(a, b), [1 / 7, 0.0, 1.0], rtol=1e-6)


def test_giou_degenerate_boxes_are_finite():
    true = keras.Variable(np.zeros((3, 4), "float32"))
    pred = keras.Variable(
        np.array([[0, 0, 0, 0], [0.5, 0.5, 0.2, 0.2], [0, 0, 1, 1]], "float32")
    )
    loss = giou_loss(true, pred)
    assert np.isfinite(ops.convert_to_numpy(loss)).all()
    _, grads = _value_and_grad(lambda t, p: ops.sum(giou_loss(t, p)), true, pred)
    assert np.isfinite(grads).all()


def _value_and_grad(loss_fn, y_true, variable):
    """`(loss, d loss / d variable)` as NumPy, on the current backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y_true, variable)
        grads = tape.gradient(loss, variable.value)
    elif backend == "jax":
        import jax

        loss, grads = jax.value_and_grad(lambda v: loss_fn(y_true, v))(variable.value)
    else:
        pytest.skip(f"no gradient helper for {backend}")
    return float(ops.convert_to_numpy(loss)), ops.convert_to_numpy(grads)

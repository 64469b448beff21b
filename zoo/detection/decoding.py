"""Boxes from CenterNet outputs: peaks of the heatmap, in `keras.ops`."""

from keras import ops

from layers.validation import check_float, check_positive_int


def decode_detections(
    heatmap_logits, size, offset, max_detections=100, score_threshold=0.1
):
    """Decodes CenterNet outputs into the top-scoring boxes of each image.

    As in CenterNet: scores are `sigmoid(heatmap_logits)`; a position is a
    peak of its class where its score equals the maximum of its 3x3
    neighbourhood (max pooling replaces non-maximum suppression); the
    `max_detections` best peaks over all classes and positions are kept. A
    peak at cell `(i, j)` gives the box centred at grid coordinates
    `(i + offset_y, j + offset_x)` with height and width `size` (negative
    sizes count as 0), divided by the grid size `(h, w)` and clipped to
    `[0, 1]`. Detections scoring below `score_threshold` are kept in place
    (the shapes stay fixed) with box 0, score 0 and class -1.

    Args:
        heatmap_logits: `(batch, h, w, C)` heatmap logits.
        size: `(batch, h, w, 2)` box (height, width) in grid cells.
        offset: `(batch, h, w, 2)` centre offsets (dy, dx) in grid cells.
        max_detections: positive int, detections per image `K` (at most
            `h * w * C` when those are known when tracing).
        score_threshold: number in [0, 1], the lowest score kept.

    Returns:
        A tuple `(boxes, scores, classes)`: float32 `(batch, K, 4)`
        normalised `[ymin, xmin, ymax, xmax]`, float32 `(batch, K)` scores
        sorted in decreasing order, int32 `(batch, K)` class ids (-1 below
        the threshold).
    """
    max_detections = check_positive_int("max_detections", max_detections)
    score_threshold = check_float(
        "score_threshold", score_threshold, low_open=False, high=1.0
    )
    scores = ops.sigmoid(ops.cast(heatmap_logits, "float32"))
    peaks = _peaks(scores)
    batch, height, width, classes = ops.shape(peaks)
    positions = height * width
    flat = ops.reshape(peaks, (batch, positions * classes))
    k = max_detections
    if isinstance(positions * classes, int):
        k = min(k, positions * classes)
    top_scores, indices = ops.top_k(flat, k)
    indices = ops.cast(indices, "int32")
    labels = indices % classes
    position = indices // classes
    rows = ops.cast(position // width, "float32")
    columns = ops.cast(position % width, "float32")

    def gather(values):
        flat_values = ops.reshape(ops.cast(values, "float32"), (batch, positions, 2))
        return ops.take_along_axis(flat_values, position[..., None], axis=1)

    box_size = ops.maximum(gather(size), 0.0)
    box_offset = gather(offset)
    centre_y = rows + box_offset[..., 0]
    centre_x = columns + box_offset[..., 1]
    half_h, half_w = box_size[..., 0] / 2, box_size[..., 1] / 2
    fh, fw = ops.cast(height, "float32"), ops.cast(width, "float32")
    boxes = ops.stack(
        [
            (centre_y - half_h) / fh,
            (centre_x - half_w) / fw,
            (centre_y + half_h) / fh,
            (centre_x + half_w) / fw,
        ],
        axis=-1,
    )
    boxes = ops.clip(boxes, 0.0, 1.0)
    keep = ops.greater_equal(top_scores, score_threshold)
    boxes = ops.where(keep[..., None], boxes, 0.0)
    top_scores = ops.where(keep, top_scores, 0.0)
    labels = ops.where(keep, labels, -1)
    return boxes, top_scores, ops.cast(labels, "int32")


def _peaks(scores):
    """`scores` where they are the maximum of their 3x3 neighbourhood, else 0."""
    pooled = ops.max_pool(scores, pool_size=3, strides=1, padding="same")
    return ops.where(ops.equal(scores, pooled), scores, 0.0)

"""Mask helpers shared by the attention layers (`keras.ops` only).

Convention used by every layer in this package: a mask is boolean, `True` where
attention is allowed. A query row whose keys are all masked attends to nothing:
its attention weights are all zero and its context vector is zero.
"""

from keras import ops


def masked_softmax(scores, mask=None, axis=-1):
    """Softmax over `axis` in float32, with masked entries given zero weight.

    Args:
        scores: logits, any float dtype.
        mask: optional boolean tensor broadcastable to `scores`, `True` to keep.
        axis: the axis to normalise over.

    Returns:
        Weights of `scores`' shape in float32. Rows whose entries are all
        masked are all zero (never NaN).
    """
    x = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(x, axis=axis)
    keep = ops.cast(mask, "bool")
    x = ops.where(keep, x, ops.full_like(x, -1e30))
    return ops.softmax(x, axis=axis) * ops.cast(keep, "float32")


def causal_mask(query_length, key_length):
    """Boolean `(query_length, key_length)` mask, `True` where key <= query."""
    rows = ops.expand_dims(ops.arange(query_length, dtype="int32"), -1)
    cols = ops.expand_dims(ops.arange(key_length, dtype="int32"), 0)
    return ops.greater_equal(rows, cols)


def merge_masks(*masks):
    """Logical AND of the masks that are not `None` (or `None` if all are)."""
    merged = None
    for mask in masks:
        if mask is None:
            continue
        mask = ops.cast(mask, "bool")
        merged = mask if merged is None else ops.logical_and(merged, mask)
    return merged


def any_key_visible(mask, axis=-1):
    """Float32 1.0 where a query row has at least one visible key, else 0.0."""
    return ops.cast(
        ops.any(ops.cast(mask, "bool"), axis=axis, keepdims=True), "float32"
    )

"""Shared pieces of the text-classification builders."""

import keras

from layers.attention_pooling import AttentionPooling
from layers.validation import check_choice

POOLINGS = ("mean", "attention")
# Tokens a text model reads when its builder has no `max_length` (RNNs).
DEFAULT_MAX_LENGTH = 256


def token_input():
    """`keras.Input` named `"tokens"`: int32 `(batch, length)`, 0 = padding."""
    return keras.Input(shape=(None,), dtype="int32", name="tokens")


def pool(x, pooling):
    """Masked pooling over the sequence: `"mean"` or `"attention"`.

    Both ignore the padded steps (the Keras mask of `x`), so padding never
    changes the pooled vector.

    Args:
        x: `(B, T, d)` tensor carrying a Keras mask.
        pooling: one of `POOLINGS`.

    Returns:
        The `(B, d)` pooled tensor.
    """
    check_choice("pooling", pooling, POOLINGS)
    if pooling == "mean":
        return keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return AttentionPooling(name="pool_attention")(x)

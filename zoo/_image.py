"""Shared pieces of the image-classification builders."""

import numbers

import keras


def image_input(input_shape):
    """`keras.Input` named `"image"` after checking `input_shape`.

    Args:
        input_shape: `(height, width, channels)`, positive ints.

    Returns:
        The symbolic float32 input.
    """
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != 3
        or any(
            isinstance(d, bool) or not isinstance(d, numbers.Integral) or d <= 0
            for d in shape
        )
    ):
        raise ValueError(
            "Argument `input_shape` must be (height, width, channels) with positive "
            f"integers. Received: input_shape={input_shape!r}"
        )
    return keras.Input(shape=tuple(int(d) for d in shape), name="image")


def logits(x, num_classes):
    """The float32 `Dense` output layer named `"logits"`."""
    return keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)

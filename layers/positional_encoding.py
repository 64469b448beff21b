"""Fixed sinusoidal positional encoding (Vaswani et al., 2017), added to the input."""

import numbers

import keras
from keras import ops

from layers.validation import check_last_dim, check_rank


@keras.saving.register_keras_serializable(package="attention_zoo")
class PositionalEncoding(keras.layers.Layer):
    """Adds the sinusoidal position encoding of "Attention Is All You Need".

    For position `p` and feature `j` of a `d`-dimensional input, the encoding
    is `sin(p / max_wavelength ** (2 * (j // 2) / d))` for even `j` and
    `cos(...)` of the same angle for odd `j` (interleaved, as in the paper).
    An odd `d` is allowed: the last feature is then a sine.

    The table is computed on the fly in float32 for the length seen at call
    time, so any sequence length works; it is cast to the compute dtype before
    being added. The layer has no weights and passes the Keras mask through.

    Args:
        max_wavelength: positive number, the largest wavelength (`10000` in the
            paper).
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, d)` float tensor.

    Returns:
        `inputs` plus the `(T, d)` encoding (broadcast over the batch), in the
        compute dtype.
    """

    def __init__(self, max_wavelength=10000, **kwargs):
        super().__init__(**kwargs)
        if (
            isinstance(max_wavelength, bool)
            or not isinstance(max_wavelength, numbers.Real)
            or not max_wavelength > 0
        ):
            raise ValueError(
                "Argument `max_wavelength` must be a positive number. "
                f"Received: max_wavelength={max_wavelength!r}"
            )
        self.max_wavelength = max_wavelength
        self.supports_masking = True

    def build(self, input_shape):
        check_rank("inputs", input_shape, 3)
        check_last_dim("inputs", input_shape)

    def call(self, inputs):
        length, dim = ops.shape(inputs)[-2], inputs.shape[-1]
        positions = ops.cast(ops.arange(length), "float32")
        features = ops.arange(dim)
        exponent = ops.cast(2 * (features // 2), "float32") / float(dim)
        inverse_frequency = ops.power(float(self.max_wavelength), -exponent)
        angles = positions[:, None] * inverse_frequency[None, :]
        is_sine = ops.equal(features % 2, 0)[None, :]
        encoding = ops.where(is_sine, ops.sin(angles), ops.cos(angles))
        return inputs + ops.cast(encoding, self.compute_dtype)[None]

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["max_wavelength"] = self.max_wavelength
        return config

"""Transformer encoder blocks over the positions of a feature map, with 2-D sine
position encoding."""

import numbers

import keras
from keras import ops

from layers._quantized_sublayers import QuantizedSublayers
from layers.transformer_encoder import TransformerEncoder
from layers.validation import (
    check_last_dim,
    check_positive_int,
    check_rank,
    check_rate,
)


@keras.saving.register_keras_serializable(package="attention_zoo")
class FeatureMapEncoder(QuantizedSublayers, keras.layers.Layer):
    """Global self-attention over a `(batch, height, width, channels)` map.

    Adds a fixed 2-D sine position encoding to the map (the 1-D encoding of
    "Attention Is All You Need" along each axis, as in DETR: the first
    `channels // 2` channels encode the row, the others the column), flattens
    the `height * width` positions into a sequence, runs `num_layers` pre-norm
    `TransformerEncoder` blocks over it and reshapes the result back to a map.
    Without a final layer normalization, a new block is close to the identity
    on top of its input, so the map keeps the scale of the convolutional
    features around it.

    Positions are the integer row and column of each cell (not normalised by
    the map's size), so the encoding of a cell does not depend on the image
    size and any `height` and `width` work, including sizes only known at call
    time. The encoding is computed in float32 and cast to the compute dtype.
    The layer has no random parts other than the blocks' dropout.

    Args:
        num_layers: positive int, number of encoder blocks.
        num_heads: positive int, attention heads of each block (must divide
            `channels`).
        intermediate_dim: positive int, hidden size of the blocks'
            feed-forward networks.
        dropout: float in [0, 1), the blocks' dropout rate.
        max_wavelength: positive number, the largest wavelength of the
            encoding (`10000` in the paper).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a `(batch, height, width, channels)` tensor with a known
            number of channels (at least 2).
        training: whether dropout is active.

    Returns:
        A tensor shaped like `inputs`, in the compute dtype.
    """

    def __init__(
        self,
        num_layers=1,
        num_heads=4,
        intermediate_dim=256,
        dropout=0.0,
        max_wavelength=10000,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        self.dropout = check_rate("dropout", dropout)
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

    def build(self, input_shape):
        check_rank("inputs", input_shape, 4)
        channels = check_last_dim("inputs", input_shape)
        if channels < 2:
            raise ValueError(
                "The inputs of `FeatureMapEncoder` need at least 2 channels. "
                f"Received: inputs.shape={tuple(input_shape)}"
            )
        if channels % self.num_heads:
            raise ValueError(
                "Argument `num_heads` must divide the number of channels of the "
                f"inputs. Received: num_heads={self.num_heads}, "
                f"inputs.shape={tuple(input_shape)}"
            )
        sequence_shape = (input_shape[0], None, channels)
        # Attributes, not a list: `QuantizedSublayers` finds sublayers there.
        for i in range(1, self.num_layers + 1):
            block = TransformerEncoder(
                num_heads=self.num_heads,
                intermediate_dim=self.intermediate_dim,
                dropout=self.dropout,
                activation="gelu",
                normalize_first=True,
                layer_norm_epsilon=1e-6,
                dtype=self.dtype_policy,
                name=f"encoder{i}",
            )
            block.build(sequence_shape)
            setattr(self, f"encoder{i}", block)

    def position_encoding(self, height, width, channels):
        """The `(height, width, channels)` float32 encoding added to the map."""
        rows = _sine_encoding(height, channels // 2, self.max_wavelength)
        columns = _sine_encoding(width, channels - channels // 2, self.max_wavelength)
        rows = ops.broadcast_to(rows[:, None, :], (height, width, channels // 2))
        columns = ops.broadcast_to(
            columns[None, :, :], (height, width, channels - channels // 2)
        )
        return ops.concatenate([rows, columns], axis=-1)

    def call(self, inputs, training=None):
        x = ops.cast(inputs, self.compute_dtype)
        batch, height, width = ops.shape(x)[:3]
        channels = x.shape[-1]
        encoding = self.position_encoding(height, width, channels)
        x = x + ops.cast(encoding, self.compute_dtype)[None]
        # Explicit sizes, not -1: a reshape cannot infer one next to a zero.
        x = ops.reshape(x, (batch, height * width, channels))
        for i in range(1, self.num_layers + 1):
            x = getattr(self, f"encoder{i}")(x, training=training)
        return ops.reshape(x, (batch, height, width, channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            max_wavelength=self.max_wavelength,
        )
        return config


def _sine_encoding(length, dim, max_wavelength):
    """`(length, dim)` float32 table: sine on even features, cosine on odd ones."""
    positions = ops.cast(ops.arange(length), "float32")
    features = ops.arange(dim)
    exponent = ops.cast(2 * (features // 2), "float32") / float(dim)
    inverse_frequency = ops.power(float(max_wavelength), -exponent)
    angles = positions[:, None] * inverse_frequency[None, :]
    is_sine = ops.equal(features % 2, 0)[None, :]
    return ops.where(is_sine, ops.sin(angles), ops.cos(angles))

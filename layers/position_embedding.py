"""Learned position embedding table (returns the embeddings, keras-hub style)."""

import keras
from keras import ops

from layers.validation import check_last_dim, check_positive_int, check_rank


def _check_length(shape, sequence_length):
    length = shape[-2]
    if isinstance(length, int) and length > sequence_length:
        raise ValueError(
            "The sequence axis of `inputs` (axis -2) must not be longer than "
            f"`sequence_length`. Received: inputs.shape={tuple(shape)}, "
            f"sequence_length={sequence_length}"
        )


@keras.saving.register_keras_serializable(package="attention_zoo")
class PositionEmbedding(keras.layers.Layer):
    """Learned position embeddings for sequences up to `sequence_length` long.

    The layer owns a `(sequence_length, d)` table, `d` being the last
    dimension of the input. For an input of length `T <= sequence_length` it
    returns the first `T` rows broadcast to the input's shape; it does not add
    them to the input (add them yourself, as `TokenAndPositionEmbedding`
    does). The input only supplies the shape. A statically known `T` larger
    than `sequence_length` raises a `ValueError`. The Keras mask is passed
    through.

    Args:
        sequence_length: positive int, the maximum sequence length.
        initializer: initializer of the table.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, d)` tensor.
        start_index: int or scalar int tensor, the position of the first step
            of `inputs` (incremental decoding embeds one step at a time);
            `start_index + T` must not exceed `sequence_length`.

    Returns:
        `(B, T, d)` position embeddings in the compute dtype.
    """

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = check_positive_int("sequence_length", sequence_length)
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        check_rank("inputs", input_shape, 3)
        dim = check_last_dim("inputs", input_shape)
        _check_length(input_shape, self.sequence_length)
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(self.sequence_length, dim),
            initializer=self.initializer,
        )

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        _check_length(inputs.shape, self.sequence_length)
        table = ops.cast(self.position_embeddings, self.compute_dtype)
        if isinstance(start_index, int):
            if start_index < 0:
                raise ValueError(
                    "Argument `start_index` must be >= 0. "
                    f"Received: start_index={start_index}"
                )
            if start_index == 0:
                return ops.broadcast_to(table[: shape[-2]], shape)
        rows = ops.slice(table, (start_index, 0), (shape[-2], table.shape[-1]))
        return ops.broadcast_to(rows, shape)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        _check_length(input_shape, self.sequence_length)
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config

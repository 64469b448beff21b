"""Token embedding plus learned position embedding."""

import keras
from keras import ops

from layers._quantized_sublayers import QuantizedSublayers
from layers.position_embedding import PositionEmbedding
from layers.validation import check_positive_int, check_rank


@keras.saving.register_keras_serializable(package="attention_zoo")
class TokenAndPositionEmbedding(QuantizedSublayers, keras.layers.Layer):
    """Sums a token embedding and a learned position embedding.

    Token ids of shape `(B, T)` are looked up in a `(vocabulary_size,
    embedding_dim)` table and a `PositionEmbedding` of the first `T` of
    `sequence_length` positions is added. With `mask_zero=True` the output
    carries a Keras mask that is `False` where the token id is 0 (so id 0 is
    reserved for padding), which downstream layers such as
    `TransformerEncoder` honour.

    Args:
        vocabulary_size: positive int, the number of token ids.
        sequence_length: positive int, the maximum sequence length.
        embedding_dim: positive int, the size of the embeddings.
        mask_zero: whether token id 0 is padding and produces a mask.
        embeddings_initializer: initializer of both tables.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T)` integer token ids, `T <= sequence_length`.
        start_index: int or scalar int tensor, the position of the first token
            (incremental decoding embeds one token at a time).

    Returns:
        `(B, T, embedding_dim)` embeddings in the compute dtype.
    """

    def __init__(
        self,
        vocabulary_size,
        sequence_length,
        embedding_dim,
        mask_zero=False,
        embeddings_initializer="uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
        self.sequence_length = check_positive_int("sequence_length", sequence_length)
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.mask_zero = bool(mask_zero)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        config = keras.initializers.serialize(self.embeddings_initializer)
        self.token_embedding = keras.layers.Embedding(
            self.vocabulary_size,
            self.embedding_dim,
            embeddings_initializer=keras.initializers.get(config),
            dtype=self.dtype_policy,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            self.sequence_length,
            initializer=keras.initializers.get(config),
            dtype=self.dtype_policy,
            name="position_embedding",
        )

    def build(self, input_shape):
        check_rank("inputs", input_shape, 2)
        self.token_embedding.build(input_shape)
        self.position_embedding.build((*input_shape, self.embedding_dim))

    def call(self, inputs, start_index=0):
        tokens = self.token_embedding(inputs)
        return tokens + self.position_embedding(tokens, start_index=start_index)

    def compute_mask(self, inputs, mask=None, start_index=0):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim,
                "mask_zero": self.mask_zero,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config

"""Embedding of each token's bigram with the next token, hashed into buckets."""

import keras
from keras import ops

from layers._quantized_sublayers import QuantizedSublayers
from layers.validation import check_positive_int, check_rank

# Odd, so that it permutes the buckets of a power-of-two table; small enough
# that `(num_buckets - 1) * MULTIPLIER + token` stays inside int32.
MULTIPLIER = 4093
MAX_BUCKETS = 2**19


def bigram_buckets(tokens, num_buckets):
    """The bucket of each `(token, next token)` pair; the last pairs with 0.

    Args:
        tokens: `(B, T)` integer token ids (0 = padding, at the end).
        num_buckets: positive int, at most `MAX_BUCKETS`.

    Returns:
        `(B, T)` int32 bucket ids in `[0, num_buckets)`.
    """
    tokens = ops.cast(tokens, "int32")
    following = ops.pad(tokens[:, 1:], [[0, 0], [0, 1]])
    return ops.mod(ops.mod(tokens, num_buckets) * MULTIPLIER + following, num_buckets)


@keras.saving.register_keras_serializable(package="attention_zoo")
class HashedBigramEmbedding(QuantizedSublayers, keras.layers.Layer):
    """Embeds each token together with the token after it (fastText's bigrams).

    The pair `(t[i], t[i + 1])` (the last token pairs with 0) is hashed to
    `(t[i] mod num_buckets) * 4093 + t[i + 1]` modulo `num_buckets` and looked
    up in a `(num_buckets, embedding_dim)` table; padding positions (`t[i] ==
    0`) embed to zeros. Added to a token embedding, it gives a bag-of-words
    model word order (Joulin et al., 2017: bigrams add 1 to 3 points on
    sentiment datasets). Padding at the end changes no real position: a last
    token pairs with 0 whether padding follows it or not. With `mask_zero` the
    output carries the mask `t != 0`.

    Args:
        num_buckets: positive int (at most 2**19), the number of hash buckets.
        embedding_dim: positive int, the size of the embeddings.
        mask_zero: whether token id 0 is padding and produces a mask.
        embeddings_initializer: initializer of the table.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T)` integer token ids, padding (0) at the end.

    Returns:
        `(B, T, embedding_dim)` embeddings in the compute dtype.
    """

    def __init__(
        self,
        num_buckets,
        embedding_dim,
        mask_zero=False,
        embeddings_initializer="uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_buckets = check_positive_int("num_buckets", num_buckets)
        if self.num_buckets > MAX_BUCKETS:
            raise ValueError(
                f"Argument `num_buckets` must be at most {MAX_BUCKETS} (the hash "
                f"stays inside int32). Received: num_buckets={num_buckets}"
            )
        self.embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        self.mask_zero = bool(mask_zero)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embedding = keras.layers.Embedding(
            self.num_buckets,
            self.embedding_dim,
            embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy,
            name="bigram_embedding",
        )

    def build(self, input_shape):
        check_rank("inputs", input_shape, 2)
        self.embedding.build(input_shape)

    def call(self, inputs):
        vectors = self.embedding(bigram_buckets(inputs, self.num_buckets))
        real = ops.cast(ops.not_equal(inputs, 0), vectors.dtype)
        return vectors * real[..., None]

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_buckets": self.num_buckets,
                "embedding_dim": self.embedding_dim,
                "mask_zero": self.mask_zero,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config

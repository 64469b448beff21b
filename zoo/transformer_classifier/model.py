"""Transformer encoder text classifier over token ids."""

import keras

from layers.hashed_bigram_embedding import MAX_BUCKETS, HashedBigramEmbedding
from layers.token_and_position_embedding import TokenAndPositionEmbedding
from layers.transformer_encoder import TransformerEncoder
from layers.validation import check_non_negative_int, check_positive_int, check_rate
from zoo._image import logits
from zoo._text import pool, token_input


def transformer_classifier(
    vocabulary_size=20_000,
    max_length=256,
    num_classes=2,
    hidden_dim=128,
    num_layers=2,
    num_heads=4,
    intermediate_dim=256,
    dropout=0.1,
    pooling="mean",
    bigram_buckets=0,
    name="transformer_classifier",
):
    """Builds a transformer encoder classifier (Vaswani et al., 2017).

    Token and learned position embeddings (token 0 is padding and masked);
    `num_layers` post-norm `TransformerEncoder` blocks named
    `encoder{i}_attention`, which hide padded keys; masked pooling over the
    real tokens (`"mean"`, or `"attention"`: `AttentionPooling`); dropout and
    a float32 `Dense` named `"logits"`. Padding at the end of a sequence never
    changes its logits.

    Args:
        vocabulary_size: number of token ids (id 0 = padding, 1 = unknown).
        max_length: longest sequence (the position table's size).
        num_classes: number of classes.
        hidden_dim: embedding and token size.
        num_layers: number of encoder blocks.
        num_heads: attention heads (must divide `hidden_dim`).
        intermediate_dim: hidden size of the blocks' feed-forward networks.
        dropout: dropout inside the blocks, on the embeddings and before the
            logits.
        pooling: `"mean"` or `"attention"`.
        bigram_buckets: 0 (default) for token embeddings alone, or the number
            of hash buckets of a `HashedBigramEmbedding` added to them: each
            token also embeds its pair with the next token (fastText's
            bigrams, which IMDB's long reviews reward).
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `"tokens"` (int32
        `(batch, length)`, length <= `max_length`) to logits.
    """
    vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
    max_length = check_positive_int("max_length", max_length)
    num_classes = check_positive_int("num_classes", num_classes)
    hidden_dim = check_positive_int("hidden_dim", hidden_dim)
    num_layers = check_positive_int("num_layers", num_layers)
    num_heads = check_positive_int("num_heads", num_heads)
    dropout = check_rate("dropout", dropout)
    bigram_buckets = check_non_negative_int("bigram_buckets", bigram_buckets)
    if bigram_buckets > MAX_BUCKETS:
        raise ValueError(
            f"Argument `bigram_buckets` must be at most {MAX_BUCKETS}. "
            f"Received: bigram_buckets={bigram_buckets}"
        )
    if hidden_dim % num_heads:
        raise ValueError(
            "Argument `num_heads` must divide `hidden_dim`. "
            f"Received: num_heads={num_heads}, hidden_dim={hidden_dim}"
        )
    tokens = token_input()
    x = TokenAndPositionEmbedding(
        vocabulary_size, max_length, hidden_dim, mask_zero=True, name="embedding"
    )(tokens)
    if bigram_buckets:
        bigrams = HashedBigramEmbedding(
            bigram_buckets, hidden_dim, mask_zero=True, name="bigram_embedding"
        )(tokens)
        x = keras.layers.Add(name="token_and_bigram")([x, bigrams])
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for i in range(1, num_layers + 1):
        x = TransformerEncoder(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            activation="gelu",
            name=f"encoder{i}_attention",
        )(x)
    x = pool(x, pooling)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(tokens, logits(x, num_classes), name=name)

"""Transformer encoder-decoder over token ids (translation, headlines)."""

import keras

from layers.pointer_generator import PointerGenerator
from layers.token_and_position_embedding import TokenAndPositionEmbedding
from layers.transformer_decoder import TransformerDecoder
from layers.transformer_encoder import TransformerEncoder
from layers.validation import check_choice, check_positive_int, check_rate


def seq2seq_inputs():
    """The `"source"` and `"target"` int32 `(batch, length)` inputs, 0 = padding."""
    return {
        "source": keras.Input(shape=(None,), dtype="int32", name="source"),
        "target": keras.Input(shape=(None,), dtype="int32", name="target"),
    }


def transformer_seq2seq(
    source_vocabulary_size=15_000,
    target_vocabulary_size=15_000,
    max_source_length=32,
    max_target_length=32,
    hidden_dim=256,
    num_encoder_layers=2,
    num_decoder_layers=2,
    num_heads=8,
    intermediate_dim=1024,
    dropout=0.1,
    normalize_first=False,
    copy_source=False,
    name="transformer_seq2seq",
):
    """Builds a transformer encoder-decoder (Vaswani et al., 2017).

    Source tokens: token and learned position embeddings
    (`"source_embedding"`, id 0 is padding and masked), dropout, then
    `num_encoder_layers` `TransformerEncoder` blocks (`"encoder{i}"`).
    Target tokens (the decoder input, `[START] y1 .. y_{n-1}`): embeddings
    (`"target_embedding"`), dropout, `num_decoder_layers` `TransformerDecoder`
    blocks (`"decoder{i}"`: causal self-attention, cross-attention to the
    encoder output, which hides padded source tokens), then a float32 `Dense`
    (`"logits"`) over the target vocabulary. With `copy_source`, a
    `PointerGenerator` (`"copy"`, one attention head of `hidden_dim //
    num_heads` over the encoder output) mixes those logits with copying
    source tokens, and the model returns its log-probabilities (which act as
    logits); `zoo.Translator` sets its source-to-target id map from the
    vocabularies. `zoo.seq2seq.decoding` decodes
    it step by step with key/value caches.

    Args:
        source_vocabulary_size: number of source token ids (0 = padding,
            1 = unknown).
        target_vocabulary_size: number of target token ids (0 padding,
            1 unknown, 2 start, 3 end).
        max_source_length: longest source sequence (its position table).
        max_target_length: longest target sequence, end token included.
        hidden_dim: embedding and token size.
        num_encoder_layers: number of encoder blocks.
        num_decoder_layers: number of decoder blocks.
        num_heads: attention heads (must divide `hidden_dim`).
        intermediate_dim: hidden size of the feed-forward networks.
        dropout: dropout inside the blocks and on the embeddings.
        normalize_first: pre-norm blocks (`True`) or post-norm (`False`).
        copy_source: add the pointer-generator's copying (See et al., 2017).
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `{"source", "target"}`
        (int32 `(batch, length)`) to float32 logits `(batch, target length,
        target_vocabulary_size)` (log-probabilities with `copy_source`).
    """
    sizes = dict(
        source_vocabulary_size=source_vocabulary_size,
        target_vocabulary_size=target_vocabulary_size,
        max_source_length=max_source_length,
        max_target_length=max_target_length,
        hidden_dim=hidden_dim,
        num_encoder_layers=num_encoder_layers,
        num_decoder_layers=num_decoder_layers,
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
    )
    sizes = {k: check_positive_int(k, v) for k, v in sizes.items()}
    dropout = check_rate("dropout", dropout)
    copy_source = check_choice("copy_source", copy_source, (False, True))
    if hidden_dim % num_heads:
        raise ValueError(
            "Argument `num_heads` must divide `hidden_dim`. "
            f"Received: num_heads={num_heads}, hidden_dim={hidden_dim}"
        )
    block = dict(
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
        normalize_first=bool(normalize_first),
    )
    inputs = seq2seq_inputs()
    x = TokenAndPositionEmbedding(
        sizes["source_vocabulary_size"],
        sizes["max_source_length"],
        hidden_dim,
        mask_zero=True,
        name="source_embedding",
    )(inputs["source"])
    x = keras.layers.Dropout(dropout, name="source_dropout")(x)
    for i in range(sizes["num_encoder_layers"]):
        x = TransformerEncoder(**block, name=f"encoder{i}")(x)
    encoded = x
    y = TokenAndPositionEmbedding(
        sizes["target_vocabulary_size"],
        sizes["max_target_length"],
        hidden_dim,
        mask_zero=True,
        name="target_embedding",
    )(inputs["target"])
    y = keras.layers.Dropout(dropout, name="target_dropout")(y)
    for i in range(sizes["num_decoder_layers"]):
        y = TransformerDecoder(**block, name=f"decoder{i}")(y, encoded)
    logits = keras.layers.Dense(
        sizes["target_vocabulary_size"], dtype="float32", name="logits"
    )(y)
    if copy_source:
        logits = PointerGenerator(
            sizes["source_vocabulary_size"],
            sizes["target_vocabulary_size"],
            key_dim=hidden_dim // num_heads,
            name="copy",
        )(logits, y, encoded, inputs["source"])
    return keras.Model(inputs, logits, name=name)

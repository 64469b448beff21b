"""GRU encoder-decoder with additive attention over token ids."""

import keras

from layers.additive_attention import AdditiveAttention
from layers.validation import check_positive_int, check_rate
from zoo.transformer_seq2seq.model import seq2seq_inputs


def rnn_seq2seq(
    source_vocabulary_size=15_000,
    target_vocabulary_size=15_000,
    max_source_length=32,
    max_target_length=32,
    embedding_dim=256,
    units=256,
    attention_units=None,
    dropout=0.1,
    name="rnn_seq2seq",
):
    """Builds a GRU encoder-decoder with additive attention (Bahdanau et al., 2015).

    Encoder: source embeddings (`"source_embedding"`, id 0 is padding and
    masked), dropout, a bidirectional GRU (`"encoder"`) of `units // 2` per
    direction, so that its outputs (the attention's keys and values) have
    `units` features, like the decoder. The final forward and backward
    states, concatenated, go through a tanh `Dense` (`"bridge"`) to the
    decoder's initial state. Decoder: target embeddings (`"target_embedding"`,
    the decoder input `[START] y1 .. y_{n-1}`), dropout, a GRU of `units`
    (`"decoder_gru"`); each of its outputs `h_t` queries the encoder outputs
    with `AdditiveAttention` (`"attention"`, padded source tokens hidden),
    and `tanh(W [h_t; c_t])` (`"attention_projection"`, Luong et al., 2015),
    after dropout, gives the float32 logits (`"logits"`). Masked (padded)
    steps keep the recurrent states, so padding at the end of the source or
    target changes no logit of a real token.

    Attention after the recurrent step ("Luong ordering", with Bahdanau's
    additive score): Bahdanau's decoder feeds the context `c_t` into the GRU's
    input, so the GRU cannot run before the attention of each step, and
    teacher-forced training becomes a Python-level (or cell-level) loop of
    attention and GRU steps. Here the GRU never sees the context: training
    runs it over the whole target at once (the fused cuDNN kernel on a GPU,
    one `while` loop on a CPU) and then attends from every position in one
    batched `(B, T, S)` attention. Incremental decoding
    (`zoo.seq2seq.rnn_stepper.RNNStepper`) runs the GRU's cell one token at
    a time and gives the same logits.

    `units // 2` per encoder direction (rather than Bahdanau's `units` per
    direction) keeps the keys and values as wide as the decoder state and
    halves the encoder's cost, which matters on CPUs.

    Args:
        source_vocabulary_size: number of source token ids (0 = padding,
            1 = unknown).
        target_vocabulary_size: number of target token ids (0 padding,
            1 unknown, 2 start, 3 end).
        max_source_length: the longest source sequence the data pipeline and
            the `Translator` use. Recorded only: the model takes any length.
        max_target_length: the longest target sequence, end token included
            (recorded as `max_source_length`).
        embedding_dim: size of the token embeddings.
        units: state size of the decoder GRU; even (the encoder has `units // 2`
            per direction).
        attention_units: hidden size of the additive score (default `units`).
        dropout: dropout on the embeddings and before the logits.
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `{"source", "target"}`
        (int32 `(batch, length)`, 0 = padding) to float32 logits `(batch,
        target length, target_vocabulary_size)`.

    Example:

    >>> model = rnn_seq2seq(50, 60, embedding_dim=8, units=8)
    >>> source = keras.ops.array([[5, 6, 7, 0]], "int32")
    >>> target = keras.ops.array([[2, 9, 10]], "int32")
    >>> tuple(model({"source": source, "target": target}).shape)
    (1, 3, 60)
    """
    sizes = dict(
        source_vocabulary_size=source_vocabulary_size,
        target_vocabulary_size=target_vocabulary_size,
        max_source_length=max_source_length,
        max_target_length=max_target_length,
        embedding_dim=embedding_dim,
        units=units,
    )
    sizes = {k: check_positive_int(k, v) for k, v in sizes.items()}
    units = sizes["units"]
    if units % 2:
        raise ValueError(
            f"Argument `units` must be even (the encoder has units // 2 per "
            f"direction). Received: units={units}"
        )
    attention_units = check_positive_int(
        "attention_units", attention_units, allow_none=True
    )
    attention_units = units if attention_units is None else attention_units
    dropout = check_rate("dropout", dropout)
    inputs = seq2seq_inputs()

    # Encoder.
    x = keras.layers.Embedding(
        sizes["source_vocabulary_size"],
        sizes["embedding_dim"],
        mask_zero=True,
        name="source_embedding",
    )(inputs["source"])
    x = keras.layers.Dropout(dropout, name="source_dropout")(x)
    encoder = keras.layers.Bidirectional(
        keras.layers.GRU(units // 2, return_sequences=True, return_state=True),
        name="encoder",
    )
    encoded, forward_state, backward_state = encoder(x)
    final_states = keras.layers.Concatenate(name="encoder_state")(
        [forward_state, backward_state]
    )
    initial_state = keras.layers.Dense(units, activation="tanh", name="bridge")(
        final_states
    )

    # Decoder.
    y = keras.layers.Embedding(
        sizes["target_vocabulary_size"],
        sizes["embedding_dim"],
        mask_zero=True,
        name="target_embedding",
    )(inputs["target"])
    y = keras.layers.Dropout(dropout, name="target_dropout")(y)
    decoded = keras.layers.GRU(units, return_sequences=True, name="decoder_gru")(
        y, initial_state=[initial_state]
    )
    source_mask = keras.ops.not_equal(inputs["source"], 0)
    context = AdditiveAttention(attention_units, name="attention")(
        decoded, encoded, value_mask=source_mask
    )
    y = keras.layers.Concatenate(name="attention_inputs")([decoded, context])
    y = keras.layers.Dense(units, activation="tanh", name="attention_projection")(y)
    y = keras.layers.Dropout(dropout, name="projection_dropout")(y)
    logits = keras.layers.Dense(
        sizes["target_vocabulary_size"], dtype="float32", name="logits"
    )(y)
    return keras.Model(inputs, logits, name=name)

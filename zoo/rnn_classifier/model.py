"""Bidirectional recurrent text classifier with attention pooling."""

import keras

from layers.ind_rnn_cell import IndRNNCell
from layers.janet_cell import JANETCell
from layers.validation import check_choice, check_positive_int, check_rate
from zoo._image import logits
from zoo._text import pool, token_input

# The recurrent cell by name.
CELLS = {
    "lstm": keras.layers.LSTMCell,
    "gru": keras.layers.GRUCell,
    "janet": JANETCell,
    "indrnn": IndRNNCell,
}


def rnn_classifier(
    vocabulary_size=20_000,
    num_classes=2,
    embedding_dim=128,
    units=128,
    num_layers=1,
    cell="lstm",
    dropout=0.2,
    pooling="attention",
    name="rnn_classifier",
):
    """Builds a bidirectional RNN classifier with attention pooling.

    A token embedding (token 0 is padding and masked); `num_layers`
    bidirectional recurrent layers of `units` per direction (named
    `recurrent{i}`), whose cell is chosen by name (`CELLS`: `"lstm"`,
    `"gru"`, `"janet"`, `"indrnn"`); masked pooling over the real steps
    (`"attention"`: `AttentionPooling` named `pool_attention`, or `"mean"`);
    dropout and a float32 `Dense` named `"logits"`. Padded steps keep the
    recurrent state, so padding at the end never changes the logits.

    Args:
        vocabulary_size: number of token ids (id 0 = padding, 1 = unknown).
        num_classes: number of classes.
        embedding_dim: size of the token embeddings.
        units: state size of each direction's cell.
        num_layers: number of bidirectional layers.
        cell: one of `CELLS`.
        dropout: dropout on the embeddings and before the logits.
        pooling: `"attention"` or `"mean"`.
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `"tokens"` (int32
        `(batch, length)`) to logits.
    """
    vocabulary_size = check_positive_int("vocabulary_size", vocabulary_size)
    num_classes = check_positive_int("num_classes", num_classes)
    embedding_dim = check_positive_int("embedding_dim", embedding_dim)
    units = check_positive_int("units", units)
    num_layers = check_positive_int("num_layers", num_layers)
    check_choice("cell", cell, CELLS)
    dropout = check_rate("dropout", dropout)
    tokens = token_input()
    x = keras.layers.Embedding(
        vocabulary_size, embedding_dim, mask_zero=True, name="embedding"
    )(tokens)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for i in range(1, num_layers + 1):
        recurrent = keras.layers.RNN(CELLS[cell](units), return_sequences=True)
        x = keras.layers.Bidirectional(recurrent, name=f"recurrent{i}")(x)
    x = pool(x, pooling)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(tokens, logits(x, num_classes), name=name)

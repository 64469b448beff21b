"""What the recurrent cells share: Keras' dropout-mask mixin."""

import keras


def _keras_dropout_rnn_cell():
    """Keras' `DropoutRNNCell` mixin, found through `keras.layers.LSTMCell`.

    `keras.layers.RNN` draws a cell's dropout masks once per sequence, before
    its loop (JAX's `scan` cannot draw them inside it), and only for cells that
    subclass this mixin; the public API does not export it, so it is taken
    from the bases of the public `LSTMCell` instead of from `keras.src`.
    """
    for base in keras.layers.LSTMCell.__mro__:
        if base.__name__ == "DropoutRNNCell":
            return base
    raise ImportError(
        "keras.layers.LSTMCell no longer subclasses DropoutRNNCell; the "
        "dropout of JANETCell and IndRNNCell needs another way to reach it."
    )


# Used by JANETCell and IndRNNCell. The mixin caches one mask per sequence
# (`get_dropout_mask`, `get_recurrent_dropout_mask`) from the attributes
# `dropout`, `recurrent_dropout` and `seed_generator` of the cell.
DropoutRNNCell = _keras_dropout_rnn_cell()

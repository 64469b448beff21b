"""Float64 NumPy references shared by the layer tests, and a Keras-mask probe."""

import keras
import numpy as np
from keras import ops

# Softmax and masks.


def masked_softmax(scores, keep=None, axis=-1):
    """Float64 softmax of `scores` over `axis` restricted to the `keep` entries.

    Masked entries get weight 0; a row with no kept entry is all zeros.
    """
    scores = np.asarray(scores, dtype="float64")
    keep = np.ones(scores.shape, bool) if keep is None else np.asarray(keep, bool)
    keep = np.broadcast_to(keep, scores.shape)
    hidden = np.where(keep, scores, -np.inf)
    top = np.max(hidden, axis=axis, keepdims=True, initial=-np.inf)
    exp = np.where(keep, np.exp(hidden - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = exp.sum(axis=axis, keepdims=True)
    return np.divide(exp, total, out=np.zeros_like(exp), where=total > 0)


def pair_mask(query_padding, key_padding):
    """`(B, T, S)` mask: query `i` and key `j` both real tokens."""
    return query_padding[:, :, None] & key_padding[:, None, :]


def keras_mask(x):
    """The Keras mask of `x` (or `None`), read as a layer's `mask` argument."""
    seen = []

    class Probe(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.supports_masking = True

        def call(self, inputs, mask=None):
            seen.append(mask)
            return inputs

    Probe()(x)
    return None if seen[0] is None else ops.convert_to_numpy(seen[0])


# Transformer blocks (`TransformerEncoder`, `TransformerDecoder`).


def np_weights(layer):
    return [ops.convert_to_numpy(w).astype("float64") for w in layer.weights]


def np_layer_norm(norm, x):
    gamma, beta = np_weights(norm)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.epsilon) * gamma + beta


def np_attention_weights(attention, query, value, mask):
    """`(B, H, T, S)` multi-head attention weights; `mask` is `(B, T, S)`."""
    wq, bq, wk, bk = np_weights(attention)[:4]
    q = np.einsum("btd,dhk->bthk", query, wq) + bq
    k = np.einsum("bsd,dhk->bshk", value, wk) + bk
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(q.shape[-1])
    return masked_softmax(scores, mask[:, None])


def np_attention(attention, query, value, mask):
    """Multi-head attention; `mask` (B, T, S), rows with no visible key give 0."""
    _, _, _, _, wv, bv, wo, bo = np_weights(attention)
    weights = np_attention_weights(attention, query, value, mask)
    v = np.einsum("bsd,dhk->bshk", value, wv) + bv
    context = np.einsum("bhts,bshk->bthk", weights, v)
    return np.einsum("bthk,hkd->btd", context, wo) + bo


def np_feedforward(layer, x):
    w1, b1 = np_weights(layer.intermediate_dense)
    w2, b2 = np_weights(layer.output_dense)
    return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2


def np_residual(normalize_first, norm, x, sublayer):
    if normalize_first:
        return x + sublayer(np_layer_norm(norm, x))
    return np_layer_norm(norm, x + sublayer(x))


# Recurrent cells (`JANETCell`, `IndRNNCell`).


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_rnn(step, x, units, mask=None, initial_state=None):
    """Float64 run of `step(x_t, h) -> h'` over `(B, T, d)` inputs.

    As `keras.layers.RNN` with a cell whose output is its state: a step where
    `mask` (`(B, T)`) is False keeps the previous state and repeats the
    previous output (zeros before the first real step).

    Returns:
        `(outputs, state)`: the `(B, T, units)` outputs and the final state.
    """
    x = np.asarray(x, "float64")
    batch, length = x.shape[:2]
    mask = np.ones((batch, length), bool) if mask is None else np.asarray(mask, bool)
    state = np.zeros((batch, units)) if initial_state is None else initial_state
    state = np.asarray(state, "float64")
    output = np.zeros((batch, units))
    outputs = []
    for t in range(length):
        keep = mask[:, t, None]
        new = step(x[:, t], state)
        state = np.where(keep, new, state)
        output = np.where(keep, new, output)
        outputs.append(output)
    return np.stack(outputs, axis=1), state


@keras.saving.register_keras_serializable(package="attention_zoo_tests")
class CellRNN(keras.layers.RNN):
    """`keras.layers.RNN(cell)` with a fresh cell, for `run_layer_test`.

    `run_layer_test` cannot take `keras.layers.RNN` with a cell instance:
    Keras' `RNN.from_config` pops `"cell"` from the config it is given, so
    the round-trip comparison fails even for `keras.layers.LSTMCell`; and the
    one instance would be shared by every layer the check builds (its
    `mixed_bfloat16` layer would run the float32 cell). This layer builds its
    cell from a registered class name and plain arguments, with its own dtype
    policy, and is otherwise `keras.layers.RNN`.
    """

    def __init__(self, cell_class, cell_kwargs, **kwargs):
        cell_type = keras.saving.get_registered_object(cell_class)
        super().__init__(cell_type(**cell_kwargs, dtype=kwargs.get("dtype")), **kwargs)
        self.cell_class = cell_class
        self.cell_kwargs = dict(cell_kwargs)

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        config.update(cell_class=self.cell_class, cell_kwargs=self.cell_kwargs)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

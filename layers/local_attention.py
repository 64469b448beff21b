"""Multi-head self-attention restricted to a band, in memory linear in length."""

import math

import keras
from keras import ops

from layers._dense_config import dense_arguments_config, set_dense_arguments
from layers._masking import masked_softmax
from layers.validation import (
    check_last_dim,
    check_mask_shape,
    check_positive_int,
    check_rank,
    check_rate,
)


def _pad_time(x, before, after, value=0):
    widths = [(0, 0)] * len(x.shape)
    widths[1] = (before, after)
    return ops.pad(x, widths, constant_values=value)


@keras.saving.register_keras_serializable(package="attention_zoo")
class LocalAttention(keras.layers.Layer):
    """Multi-head self-attention where position `i` sees `j` with `|i - j| <= w`.

    With `w = window_size`, query `i` attends to keys `j` with `|i - j| <= w`
    (and `j <= i` when `causal=True`) that are not padding. Per head `h`:
    `q = x Wq_h + bq_h` (scaled by `1 / sqrt(key_dim)`), `k = x Wk_h + bk_h`,
    `v = x Wv_h + bv_h`; the heads' contexts are projected back to the input's
    last dimension `d` by `Wo` (`(num_heads, value_dim, d)`) and `bo`.

    The sequence is cut into blocks of `w` positions (padded inside to a
    multiple of `w`, then sliced back); each block's queries attend to the keys
    of the previous, own and next block (previous and own when causal) and are
    then masked to the exact band. Memory is `O(T * w)`, never `O(T^2)`; `T`
    may be dynamic.

    A query with no visible key (a padded query, or one whose whole window is
    padding) attends to nothing: its context is zero, so its output is `bo`.

    Args:
        num_heads: positive int, number of heads.
        key_dim: positive int, size of each head's queries and keys.
        window_size: positive int `w`, how far each position looks each way.
        value_dim: positive int, size of each head's values (`key_dim` if
            `None`).
        dropout: float in [0, 1), dropout rate on the attention weights.
        use_bias: whether the projections have biases.
        causal: whether position `i` only sees positions `j <= i`.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the biases.
        kernel_regularizer: regularizer of the kernels.
        bias_regularizer: regularizer of the biases.
        kernel_constraint: constraint of the kernels.
        bias_constraint: constraint of the biases.
        seed: optional int, seed of the dropout.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, d)` tensor.
        mask: optional boolean padding mask broadcastable to `(B, T)` (for
            example `(1, T)`), `True` for real tokens. Defaults to the Keras
            mask of `inputs`.
        training: whether dropout is active.

    Returns:
        `(B, T, d)` tensor in the compute dtype. The input mask is propagated.
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        window_size,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        causal=False,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.window_size = check_positive_int("window_size", window_size)
        self.value_dim = check_positive_int("value_dim", value_dim, allow_none=True)
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.causal = bool(causal)
        set_dense_arguments(
            self,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            kernel_constraint,
            bias_constraint,
        )
        self.seed = seed
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, seed=seed, dtype=self.dtype_policy
        )
        self.supports_masking = True

    def _weight(self, name, shape, kind):
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=getattr(self, f"{kind}_initializer"),
            regularizer=getattr(self, f"{kind}_regularizer"),
            constraint=getattr(self, f"{kind}_constraint"),
        )

    def build(self, input_shape):
        check_rank("inputs", input_shape, 3)
        dim = check_last_dim("inputs", input_shape)
        heads = self.num_heads
        value_dim = self.value_dim or self.key_dim
        shapes = {
            "query": ((dim, heads, self.key_dim), (heads, self.key_dim)),
            "key": ((dim, heads, self.key_dim), (heads, self.key_dim)),
            "value": ((dim, heads, value_dim), (heads, value_dim)),
            "output": ((heads, value_dim, dim), (dim,)),
        }
        for name, (kernel_shape, bias_shape) in shapes.items():
            kernel = self._weight(f"{name}_kernel", kernel_shape, "kernel")
            bias = None
            if self.use_bias:
                bias = self._weight(f"{name}_bias", bias_shape, "bias")
            setattr(self, f"{name}_kernel", kernel)
            setattr(self, f"{name}_bias", bias)

    def _project(self, x, name, equation):
        y = ops.einsum(equation, x, getattr(self, f"{name}_kernel"))
        bias = getattr(self, f"{name}_bias")
        return y if bias is None else y + bias

    def _band(self, num_blocks):
        # Query offset r in its block, key offset s in the neighbour blocks:
        # key position - query position = s - w - r.
        w = self.window_size
        rows = ops.expand_dims(ops.arange(w, dtype="int32"), 1)
        cols = ops.expand_dims(ops.arange(num_blocks * w, dtype="int32"), 0)
        offset = cols - w - rows
        band = ops.less_equal(ops.abs(offset), w)
        if self.causal:
            band = ops.logical_and(band, ops.less_equal(offset, 0))
        return band

    def _neighbours(self, x, num_blocks, batch, blocks):
        # x: (B, T + pad, ...) padded with w on both sides -> (B, n, nb * w, ...).
        w = self.window_size
        x = ops.reshape(x, (batch, blocks + 2, w, *x.shape[2:]))
        parts = [x[:, :-2], x[:, 1:-1], x[:, 2:]][:num_blocks]
        return ops.concatenate(parts, axis=2)

    def call(self, inputs, mask=None, training=None):
        check_rank("inputs", inputs.shape, 3)
        w = self.window_size
        num_blocks = 2 if self.causal else 3
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        pad = (w - length % w) % w
        # Explicit sizes, not -1: a reshape cannot infer one next to a zero.
        blocks = (length + pad) // w

        q = self._project(inputs, "query", "btd,dhk->bthk")
        q = q / ops.cast(math.sqrt(self.key_dim), q.dtype)
        k = self._project(inputs, "key", "btd,dhk->bthk")
        v = self._project(inputs, "value", "btd,dhv->bthv")
        q = ops.reshape(_pad_time(q, 0, pad), (batch, blocks, w, *q.shape[2:]))
        k = self._neighbours(_pad_time(k, w, pad + w), num_blocks, batch, blocks)
        v = self._neighbours(_pad_time(v, w, pad + w), num_blocks, batch, blocks)

        if mask is None:
            valid = ops.ones((batch, length), dtype="int32")
        else:
            check_mask_shape("mask", mask.shape, inputs.shape[:2])
            valid = ops.broadcast_to(ops.cast(mask, "bool"), (batch, length))
            valid = ops.cast(valid, "int32")
        valid_q = ops.reshape(_pad_time(valid, 0, pad), (batch, blocks, 1, w, 1))
        valid_k = _pad_time(valid, w, pad + w)
        valid_k = self._neighbours(valid_k, num_blocks, batch, blocks)
        visible = ops.logical_and(
            ops.logical_and(ops.greater(valid_q, 0), self._band(num_blocks)),
            ops.greater(ops.expand_dims(valid_k, (2, 3)), 0),
        )

        scores = ops.einsum("bnqhk,bnshk->bnhqs", q, k)
        weights = ops.cast(masked_softmax(scores, visible), self.compute_dtype)
        weights = self.dropout_layer(weights, training=training)
        context = ops.einsum("bnhqs,bnshv->bnqhv", weights, v)
        context = ops.reshape(context, (batch, blocks * w, *context.shape[3:]))
        context = context[:, :length]
        return self._project(context, "output", "bthv,hvd->btd")

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "window_size": self.window_size,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "causal": self.causal,
                **dense_arguments_config(self),
                "seed": self.seed,
            }
        )
        return config

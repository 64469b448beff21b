"""Self-attention over the positions of a feature map (non-local / SAGAN block)."""

import math

import keras
from keras import ops

from layers._masking import masked_softmax
from layers._quantized_sublayers import QuantizedSublayers
from layers.validation import (
    check_last_dim,
    check_mask_shape,
    check_positive_int,
    check_rank,
    check_rate,
)


@keras.saving.register_keras_serializable(package="attention_zoo")
class SelfAttention2D(QuantizedSublayers, keras.layers.Layer):
    """Self-attention over the `height * width` positions of a feature map.

    The non-local block (Wang et al., 2018) in the form used by SAGAN (Zhang et
    al., 2019): 1x1 query, key and value projections, a softmax (in float32)
    over all positions, a 1x1 output projection back to the input channels and
    a learned residual scale:

    `outputs = inputs + gamma * output_proj(softmax(q k^T * scale) v)`.

    `gamma` is a scalar initialised to 0, so a new block is the identity and
    learns how much non-local context to mix in. Height and width may change
    from call to call. A position that is masked is never attended to; a
    sample whose positions are all masked gets a zero context vector (its
    output is then `inputs + gamma * output_proj(0)`, i.e. the projection's
    bias). The position mask is propagated to the output.

    Args:
        key_dim: positive int, size of queries and keys. Defaults to
            `max(1, channels // 8)`.
        value_dim: positive int, size of values. Defaults to `channels`.
        use_scale: whether to scale the scores by `1 / sqrt(key_dim)` (SAGAN
            does not).
        dropout: float in [0, 1), dropout rate on the attention weights.
        use_bias: whether the projections use biases.
        kernel_initializer: initializer of the projection kernels.
        bias_initializer: initializer of the projection biases.
        gamma_initializer: initializer of the residual scale `gamma`.
        kernel_regularizer: regularizer of the projection kernels.
        bias_regularizer: regularizer of the projection biases.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a `(batch, height, width, channels)` tensor, channels last,
            with a known number of channels.
        mask: optional boolean tensor broadcastable to `(batch, height,
            width)`, `True` for positions that may be attended to.
        training: whether dropout is active.
        return_attention_scores: if `True`, also return the attention weights.

    Returns:
        A tensor shaped like `inputs`; or, with `return_attention_scores=True`,
        a tuple `(outputs, scores)` where `scores[b, i, j]` is the
        `(height, width)` map of the weights query position `(i, j)` gives to
        every position, shape `(batch, height, width, height, width)`.
    """

    def __init__(
        self,
        key_dim=None,
        value_dim=None,
        use_scale=True,
        dropout=0.0,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        gamma_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.key_dim = check_positive_int("key_dim", key_dim, allow_none=True)
        self.value_dim = check_positive_int("value_dim", value_dim, allow_none=True)
        self.use_scale = bool(use_scale)
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.supports_masking = True

    def _projection(self, units, name):
        return keras.layers.Dense(
            units,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        check_rank("inputs", input_shape, 4)
        channels = check_last_dim("inputs", input_shape)
        self._key_dim = self.key_dim or max(1, channels // 8)
        self._value_dim = self.value_dim or channels
        self.query_dense = self._projection(self._key_dim, "query")
        self.key_dense = self._projection(self._key_dim, "key")
        self.value_dense = self._projection(self._value_dim, "value")
        self.output_dense = self._projection(channels, "attention_output")
        self.query_dense.build((None, channels))
        self.key_dense.build((None, channels))
        self.value_dense.build((None, channels))
        self.output_dense.build((None, self._value_dim))
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.gamma = self.add_weight(
            name="gamma", shape=(), initializer=self.gamma_initializer
        )

    def call(self, inputs, mask=None, training=None, return_attention_scores=False):
        x = ops.cast(inputs, self.compute_dtype)
        batch, height, width = ops.shape(x)[:3]
        # Explicit sizes, not -1: a reshape cannot infer one next to a zero.
        positions = height * width

        def flat(t):
            return ops.reshape(t, (batch, positions, ops.shape(t)[-1]))

        query = flat(self.query_dense(x))
        key = flat(self.key_dense(x))
        value = flat(self.value_dense(x))
        scores = ops.einsum("bqd,bkd->bqk", query, key)
        if self.use_scale:
            scores = scores * ops.cast(1.0 / math.sqrt(self._key_dim), scores.dtype)
        if mask is not None:
            check_mask_shape("mask", mask.shape, x.shape[:3])
            mask = ops.broadcast_to(ops.cast(mask, "bool"), (batch, height, width))
            mask = ops.reshape(mask, (batch, 1, positions))
        weights = ops.cast(masked_softmax(scores, mask, axis=-1), self.compute_dtype)
        context = ops.einsum(
            "bqk,bkd->bqd", self.dropout_layer(weights, training=training), value
        )
        context = ops.reshape(context, (batch, height, width, self._value_dim))
        outputs = x + ops.cast(self.gamma, self.compute_dtype) * self.output_dense(
            context
        )
        if return_attention_scores:
            return outputs, ops.reshape(weights, (batch, height, width, height, width))
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            key_dim=self.key_dim,
            value_dim=self.value_dim,
            use_scale=self.use_scale,
            dropout=self.dropout,
            use_bias=self.use_bias,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            gamma_initializer=keras.initializers.serialize(self.gamma_initializer),
            kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
        )
        return config

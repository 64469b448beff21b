"""Additive (Bahdanau) attention of queries over a key/value sequence."""

import keras
from keras import ops

from layers._dense_config import dense_arguments_config, set_dense_arguments
from layers._masking import masked_softmax
from layers.validation import (
    check_last_dim,
    check_mask_shape,
    check_positive_int,
    check_rank,
)


@keras.saving.register_keras_serializable(package="attention_zoo")
class AdditiveAttention(keras.layers.Layer):
    """Additive attention (Bahdanau et al., 2015) of queries over keys.

    The score of query `q_t` for key `k_s` is `v . tanh(W_q q_t + W_k k_s + b)`
    with learned `W_q` `(dq, units)`, `W_k` `(dk, units)`, `v` `(units,)` and,
    with `use_bias`, `b` `(units,)`. The weights are the softmax of the scores
    over the visible keys (in float32, also under mixed precision) and the
    context is `weights @ value`. There is no value or output projection, so
    the context has the values' size. The key projection `W_k k` does not
    depend on the query: `compute_cache` computes it once (for example once
    per source sentence) and `cached_call` reuses it. The score builds a
    `(B, T, S, units)` tensor.

    Args:
        units: positive int, size of the hidden layer of the score.
        use_bias: whether the score has the bias `b`.
        kernel_initializer: initializer of `W_q`, `W_k` and `v`.
        bias_initializer: initializer of `b`.
        kernel_regularizer: regularizer of the kernels.
        bias_regularizer: regularizer of `b`.
        kernel_constraint: constraint of the kernels.
        bias_constraint: constraint of `b`.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        query: `(B, T, dq)` tensor.
        value: `(B, S, dv)` tensor.
        key: optional `(B, S, dk)` tensor; defaults to `value`.
        value_mask: optional boolean `(B, S)` mask, `True` for the keys that
            may be attended to. Defaults to the Keras mask of `value`. A query
            with no visible key gets zero weights and a zero context.
        return_attention_scores: whether to also return the weights.

    Returns:
        The `(B, T, dv)` context in the compute dtype, or the tuple
        `(context, weights)` with float32 `(B, T, S)` weights when
        `return_attention_scores=True`. The Keras mask of `query` is
        propagated.

    Example:

    >>> layer = AdditiveAttention(8)
    >>> query = keras.random.normal((2, 3, 4))
    >>> value = keras.random.normal((2, 5, 6))
    >>> mask = keras.ops.array([[True] * 5, [True, True, False, False, False]])
    >>> context, weights = layer(
    ...     query, value, value_mask=mask, return_attention_scores=True
    ... )
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 6), (2, 3, 5))
    """

    def __init__(
        self,
        units,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.use_bias = bool(use_bias)
        set_dense_arguments(
            self,
            kernel_initializer,
            bias_initializer,
            kernel_regularizer,
            bias_regularizer,
            kernel_constraint,
            bias_constraint,
        )
        self.supports_masking = True

    def _kernel(self, name, shape):
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def build(self, query_shape, value_shape, key_shape=None):
        check_rank("query", query_shape, 3)
        check_rank("value", value_shape, 3)
        key_shape = value_shape if key_shape is None else key_shape
        check_rank("key", key_shape, 3)
        query_dim = check_last_dim("query", query_shape)
        key_dim = check_last_dim("key", key_shape)
        self.query_kernel = self._kernel("query_kernel", (query_dim, self.units))
        self.key_kernel = self._kernel("key_kernel", (key_dim, self.units))
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        self.score_kernel = self._kernel("score_kernel", (self.units, 1))

    def _check_built(self, method):
        if not self.built:
            raise ValueError(
                f"`{method}` needs the weights of layer {self.name!r}: call the "
                "layer on a query and a value once first."
            )

    def compute_cache(self, value, key=None):
        """The projected keys `W_k key` that `cached_call` reuses.

        Args:
            value: `(B, S, dv)` tensor.
            key: optional `(B, S, dk)` tensor; defaults to `value`.

        Returns:
            The `(B, S, units)` key projection, in the compute dtype.
        """
        self._check_built("compute_cache")
        key = value if key is None else key
        check_rank("key", key.shape, 3)
        key = ops.cast(key, self.compute_dtype)
        return ops.matmul(key, ops.cast(self.key_kernel, self.compute_dtype))

    def _scores(self, query, cache):
        """Float32 `(B, T, S)` scores of the queries for the projected keys."""
        projected = ops.matmul(query, ops.cast(self.query_kernel, query.dtype))
        if self.bias is not None:
            projected = projected + ops.cast(self.bias, query.dtype)
        hidden = ops.tanh(ops.expand_dims(projected, 2) + ops.expand_dims(cache, 1))
        score_kernel = ops.cast(self.score_kernel, hidden.dtype)
        return ops.cast(ops.squeeze(ops.matmul(hidden, score_kernel), -1), "float32")

    def _check_mask(self, value_mask, value):
        if value_mask is None:
            return None
        check_rank("value_mask", value_mask.shape, 2)
        check_mask_shape("value_mask", value_mask.shape, value.shape[:2])
        return ops.cast(value_mask, "bool")

    def cached_call(
        self, query, cache, value, value_mask=None, return_attention_scores=False
    ):
        """The layer's call with the key projection of `compute_cache`.

        Args:
            query: `(B, T, dq)` tensor.
            cache: `(B, S, units)` output of `compute_cache`.
            value: `(B, S, dv)` tensor.
            value_mask: optional boolean `(B, S)` mask of the visible keys.
            return_attention_scores: whether to also return the weights.

        Returns:
            As `call`: the `(B, T, dv)` context, and with
            `return_attention_scores` the float32 `(B, T, S)` weights.
        """
        self._check_built("cached_call")
        check_rank("query", query.shape, 3)
        check_rank("cache", cache.shape, 3)
        check_rank("value", value.shape, 3)
        if cache.shape[-1] != self.units:
            raise ValueError(
                f"The last dimension of `cache` must be units={self.units}. "
                f"Received: cache.shape={tuple(cache.shape)}"
            )
        value_mask = self._check_mask(value_mask, value)
        dtype = self.compute_dtype
        query, value = ops.cast(query, dtype), ops.cast(value, dtype)
        scores = self._scores(query, ops.cast(cache, dtype))
        visible = None if value_mask is None else value_mask[:, None, :]
        weights = masked_softmax(scores, visible)
        context = ops.matmul(ops.cast(weights, dtype), value)
        if return_attention_scores:
            return context, weights
        return context

    def call(
        self,
        query,
        value,
        key=None,
        value_mask=None,
        return_attention_scores=False,
    ):
        check_rank("query", query.shape, 3)
        check_rank("value", value.shape, 3)
        if key is not None:
            check_rank("key", key.shape, 3)
            if None not in (key.shape[1], value.shape[1]) and (
                key.shape[1] != value.shape[1]
            ):
                raise ValueError(
                    "Arguments `key` and `value` must have the same length. "
                    f"Received: key.shape={tuple(key.shape)}, "
                    f"value.shape={tuple(value.shape)}"
                )
        return self.cached_call(
            query,
            self.compute_cache(value, key),
            value,
            value_mask=value_mask,
            return_attention_scores=return_attention_scores,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "use_bias": self.use_bias,
                **dense_arguments_config(self),
            }
        )
        return config

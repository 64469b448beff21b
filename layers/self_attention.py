"""Single-head self-attention with a choice of score function and hard top-k."""

import math

import keras
from keras import ops

from layers._dense_config import dense_arguments_config, set_dense_arguments
from layers._masking import causal_mask, masked_softmax, merge_masks
from layers.validation import (
    check_choice,
    check_last_dim,
    check_mask_shape,
    check_positive_int,
    check_rank,
    check_rate,
)

SCORES = ("dot", "scaled_dot", "general", "additive")


@keras.saving.register_keras_serializable(package="attention_zoo")
class SelfAttention(keras.layers.Layer):
    """Single-head self-attention over a sequence (query = key = value = input).

    The input `x` of shape `(B, T, d)` is projected to `q = x Wq + bq`,
    `k = x Wk + bk` and `v = x Wv + bv`, each `(B, T, units)` (the biases only
    when `use_bias=True`). The score of query `i` for key `j` is:

    - `"dot"`: `q_i . k_j`
    - `"scaled_dot"`: `q_i . k_j / sqrt(units)`
    - `"general"`: `q_i W k_j` with a learned `(units, units)` matrix `W`
    - `"additive"` (Bahdanau): `w . tanh(q_i + k_j)` with a learned vector `w`
      of size `units` (so `q_i + k_j = Wq x_i + Wk x_j + bq + bk`); this builds
      a `(B, T, T, units)` tensor.

    The weights are the softmax of the scores over the visible keys (computed in
    float32) and the output is `weights @ v`, of shape `(B, T, units)`. There is
    no output projection.

    Visible keys: a padding mask `(B, T)` (the Keras mask of the input or the
    `mask` call argument) hides padded keys, and padded queries attend to
    nothing (zero output). With `causal=True`, query `i` sees keys `j <= i`.
    A query with no visible key gets zero weights and a zero output.

    Hard attention: with `top_k=k`, each query keeps only the visible keys whose
    score is among its `k` largest and renormalises the softmax over them; the
    other keys get weight 0. Ties: every key whose score equals the `k`-th
    largest is kept, so a row keeps more than `k` keys when scores tie exactly
    (this keeps the layer permutation equivariant). A query with fewer than `k`
    visible keys keeps all of them. Masked keys are never selected.

    Args:
        units: positive int, size of the query, key and value projections.
        score: one of `"dot"`, `"scaled_dot"`, `"general"`, `"additive"`.
        use_bias: whether the query, key and value projections have biases.
        dropout: float in [0, 1), dropout rate on the attention weights.
        causal: whether query `i` only sees keys `j <= i`.
        top_k: `None` (soft attention) or a positive int (hard top-k).
        kernel_initializer: initializer of the projection matrices, of `W`
            (`"general"`) and of `w` (`"additive"`).
        bias_initializer: initializer of the biases.
        kernel_regularizer: regularizer of the kernels.
        bias_regularizer: regularizer of the biases.
        kernel_constraint: constraint of the kernels.
        bias_constraint: constraint of the biases.
        seed: optional int, seed of the dropout.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, d)` tensor.
        mask: optional boolean `(B, T)` padding mask, `True` for real tokens.
            Defaults to the Keras mask of `inputs`.
        training: whether dropout is active.
        return_attention_scores: if `True`, also return the attention weights
            (before dropout).

    Returns:
        `(B, T, units)` tensor in the compute dtype, or the tuple
        `(outputs, weights)` with `weights` of shape `(B, T, T)` (query, key)
        when `return_attention_scores=True`. The input mask is propagated.
    """

    def __init__(
        self,
        units,
        score="scaled_dot",
        use_bias=True,
        dropout=0.0,
        causal=False,
        top_k=None,
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
        self.units = check_positive_int("units", units)
        self.score = check_choice("score", score, SCORES)
        self.use_bias = bool(use_bias)
        self.dropout = check_rate("dropout", dropout)
        self.causal = bool(causal)
        self.top_k = check_positive_int("top_k", top_k, allow_none=True)
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

    def _kernel(self, name, shape):
        return self.add_weight(
            name=name,
            shape=shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def _bias(self, name):
        return self.add_weight(
            name=name,
            shape=(self.units,),
            initializer=self.bias_initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    def build(self, input_shape):
        check_rank("inputs", input_shape, 3)
        dim = check_last_dim("inputs", input_shape)
        for name in ("query", "key", "value"):
            kernel = self._kernel(f"{name}_kernel", (dim, self.units))
            bias = self._bias(f"{name}_bias") if self.use_bias else None
            setattr(self, f"{name}_kernel", kernel)
            setattr(self, f"{name}_bias", bias)
        self.score_kernel = None
        if self.score == "general":
            self.score_kernel = self._kernel("score_kernel", (self.units, self.units))
        elif self.score == "additive":
            self.score_kernel = self._kernel("score_kernel", (self.units,))

    def _project(self, x, name):
        y = ops.matmul(x, getattr(self, f"{name}_kernel"))
        bias = getattr(self, f"{name}_bias")
        return y if bias is None else y + bias

    def _scores(self, q, k):
        if self.score == "additive":
            hidden = ops.tanh(ops.expand_dims(q, 2) + ops.expand_dims(k, 1))
            return ops.sum(hidden * self.score_kernel, axis=-1)
        if self.score == "general":
            q = ops.matmul(q, self.score_kernel)
        scores = ops.matmul(q, ops.transpose(k, (0, 2, 1)))
        if self.score == "scaled_dot":
            scores = scores / ops.cast(math.sqrt(self.units), scores.dtype)
        return scores

    def _keep_top_k(self, scores, mask):
        # Padding with k columns of -inf makes `top_k` valid for any T.
        hidden = ops.where(mask, scores, ops.full_like(scores, -math.inf))
        widths = [(0, 0), (0, 0), (0, self.top_k)]
        padded = ops.pad(hidden, widths, constant_values=-math.inf)
        kth = ops.top_k(ops.stop_gradient(padded), self.top_k)[0][..., -1:]
        return ops.logical_and(mask, ops.greater_equal(scores, kth))

    def call(self, inputs, mask=None, training=None, return_attention_scores=False):
        check_rank("inputs", inputs.shape, 3)
        length = ops.shape(inputs)[1]
        q, k, v = (self._project(inputs, name) for name in ("query", "key", "value"))
        scores = ops.cast(self._scores(q, k), "float32")

        padding = None
        if mask is not None:
            check_rank("mask", mask.shape, 2)
            check_mask_shape("mask", mask.shape, inputs.shape[:2])
            mask = ops.cast(mask, "bool")
            padding = ops.logical_and(
                ops.expand_dims(mask, 2), ops.expand_dims(mask, 1)
            )
        causal = causal_mask(length, length)[None] if self.causal else None
        visible = merge_masks(padding, causal)
        if self.top_k is not None:
            if visible is None:
                visible = ops.ones_like(scores, dtype="bool")
            visible = ops.broadcast_to(visible, ops.shape(scores))
            visible = self._keep_top_k(scores, visible)

        weights = ops.cast(masked_softmax(scores, visible), self.compute_dtype)
        dropped = self.dropout_layer(weights, training=training)
        outputs = ops.matmul(dropped, v)
        if return_attention_scores:
            return outputs, weights
        return outputs

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def compute_output_spec(
        self, inputs, mask=None, training=None, return_attention_scores=False
    ):
        shape = inputs.shape
        outputs = keras.KerasTensor(
            self.compute_output_shape(shape), dtype=self.compute_dtype
        )
        if return_attention_scores:
            weights = keras.KerasTensor(
                (shape[0], shape[1], shape[1]), dtype=self.compute_dtype
            )
            return outputs, weights
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "score": self.score,
                "use_bias": self.use_bias,
                "dropout": self.dropout,
                "causal": self.causal,
                "top_k": self.top_k,
                **dense_arguments_config(self),
                "seed": self.seed,
            }
        )
        return config

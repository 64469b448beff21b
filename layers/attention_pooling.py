"""Learned attention-weighted pooling of a sequence into one vector."""

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
class AttentionPooling(keras.layers.Layer):
    """Attention-weighted sum over the time axis, `(B, T, d) -> (B, d)`.

    Each step `h_t` gets a score `s_t = v . tanh(W h_t + b)` (`W` of shape
    `(d, units)`, `b` only when `use_bias=True`) when `units` is given, or
    `s_t = v . h_t` with a single learned vector `v` of size `d` when
    `units=None`. The weights are the softmax of the scores over the unmasked
    steps (in float32) and the output is `sum_t a_t h_t`. A fully masked
    sequence gets all-zero weights and a zero output. Typical use: pooling the
    outputs of an RNN with `return_sequences=True`.

    Args:
        units: `None` or a positive int, the hidden size of the scoring MLP.
        use_bias: whether the scoring MLP has the bias `b` (ignored when
            `units=None`: a constant shift does not change a softmax).
        kernel_initializer: initializer of `W` and `v`.
        bias_initializer: initializer of `b`.
        kernel_regularizer: regularizer of `W` and `v`.
        bias_regularizer: regularizer of `b`.
        kernel_constraint: constraint of `W` and `v`.
        bias_constraint: constraint of `b`.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, d)` tensor.
        mask: optional boolean `(B, T)` mask, `True` for real steps. Defaults
            to the Keras mask of `inputs`.
        return_attention_scores: if `True`, also return the weights `(B, T)`.

    Returns:
        `(B, d)` tensor in the compute dtype, or the tuple `(outputs, weights)`
        when `return_attention_scores=True`. No mask is propagated.
    """

    def __init__(
        self,
        units=None,
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
        self.units = check_positive_int("units", units, allow_none=True)
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

    def build(self, input_shape):
        check_rank("inputs", input_shape, 3)
        dim = check_last_dim("inputs", input_shape)
        self.kernel = None
        self.bias = None
        if self.units is not None:
            self.kernel = self._kernel("kernel", (dim, self.units))
            if self.use_bias:
                self.bias = self.add_weight(
                    name="bias",
                    shape=(self.units,),
                    initializer=self.bias_initializer,
                    regularizer=self.bias_regularizer,
                    constraint=self.bias_constraint,
                )
        self.score_vector = self._kernel("score_vector", (self.units or dim,))

    def call(self, inputs, mask=None, return_attention_scores=False):
        check_rank("inputs", inputs.shape, 3)
        hidden = inputs
        if self.kernel is not None:
            hidden = ops.matmul(inputs, self.kernel)
            if self.bias is not None:
                hidden = hidden + self.bias
            hidden = ops.tanh(hidden)
        scores = ops.sum(hidden * self.score_vector, axis=-1)
        if mask is not None:
            check_rank("mask", mask.shape, 2)
            check_mask_shape("mask", mask.shape, inputs.shape[:2])
        weights = ops.cast(masked_softmax(scores, mask), self.compute_dtype)
        outputs = ops.sum(ops.expand_dims(weights, -1) * inputs, axis=1)
        if return_attention_scores:
            return outputs, weights
        return outputs

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def compute_output_spec(self, inputs, mask=None, return_attention_scores=False):
        shape = inputs.shape
        outputs = keras.KerasTensor(
            self.compute_output_shape(shape), dtype=self.compute_dtype
        )
        if return_attention_scores:
            return outputs, keras.KerasTensor(shape[:2], dtype=self.compute_dtype)
        return outputs

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

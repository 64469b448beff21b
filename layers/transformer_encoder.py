"""Transformer encoder block: self-attention and feed-forward, pre- or post-norm."""

import keras

from layers._transformer import (
    TransformerBlock,
    attention_mask_for,
    check_attention_mask,
    check_padding_masks,
    resolve_key_dim,
)
from layers.validation import check_last_dim, check_rank


@keras.saving.register_keras_serializable(package="attention_zoo")
class TransformerEncoder(TransformerBlock):
    """One transformer encoder block (Vaswani et al., 2017).

    Multi-head self-attention followed by a two-layer feed-forward network
    (`intermediate_dim` then back to the input size), each wrapped in dropout,
    a residual connection and layer normalization. Post-norm
    (`normalize_first=False`, the original paper):
    `x = LN(x + Drop(MHA(x)))`, `y = LN(x + Drop(FFN(x)))`. Pre-norm
    (`normalize_first=True`): `x = x + Drop(MHA(LN(x)))`,
    `y = x + Drop(FFN(LN(x)))`, with no final normalization (add one after the
    last block). The output has the input's shape.

    Masking: the `padding_mask` argument and the Keras mask of `inputs` (both
    `(B, T)`, `True` for real tokens, combined with AND) hide padded keys, and
    padded queries attend to nothing. `attention_mask` (`(B, T, T)`, `True`
    where query `i` may see key `j`) is combined with them. The Keras mask is
    passed through to the output.

    Args:
        num_heads: positive int, number of attention heads.
        intermediate_dim: positive int, hidden size of the feed-forward network.
        dropout: float in [0, 1), rate of the attention dropout and of the
            dropout on both residual branches.
        activation: activation of the feed-forward hidden layer.
        layer_norm_epsilon: epsilon of the layer normalizations.
        normalize_first: `True` for pre-norm, `False` for post-norm.
        key_dim: size of each attention head; `None` means
            `hidden // num_heads`, which needs `hidden` divisible by
            `num_heads` (checked at build time).
        kernel_initializer: initializer of the dense kernels.
        bias_initializer: initializer of the dense biases.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, hidden)` tensor (integer inputs are cast to the compute
            dtype).
        padding_mask: optional boolean `(B, T)` mask, `True` for real tokens.
        attention_mask: optional boolean mask broadcastable to `(B, T, T)`.
        training: whether dropout is active.
        return_attention_scores: whether to also return the self-attention
            weights. The outputs do not depend on it.
        mask: filled by Keras with the Keras mask of `inputs` when `inputs` is
            the only tensor argument; not meant to be passed.
        inputs_mask: filled by Keras with the Keras mask of `inputs` when other
            tensor arguments are passed too; not meant to be passed.

    Returns:
        `(B, T, hidden)` tensor in the compute dtype; with
        `return_attention_scores=True`, the tuple `(outputs, scores)` with the
        self-attention weights `scores` of shape `(B, num_heads, T, T)`.
    """

    def build(self, input_shape):
        check_rank("inputs", input_shape, 3)
        hidden_dim = check_last_dim("inputs", input_shape)
        key_dim = resolve_key_dim(hidden_dim, self.num_heads, self.key_dim)
        self.self_attention, self.self_attention_norm = self._build_attention(
            "self_attention", key_dim, input_shape, input_shape
        )
        self._build_feedforward(input_shape)

    def call(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        mask=None,
        inputs_mask=None,
    ):
        x = self._as_compute_dtype(inputs)
        padding = _padding_masks(padding_mask, mask, inputs_mask)
        self_mask = attention_mask_for(x, x, padding, padding, attention_mask)
        attended = self._attention_block(
            x,
            self.self_attention,
            self.self_attention_norm,
            self_mask,
            training,
            return_attention_scores=return_attention_scores,
        )
        if not return_attention_scores:
            return self._feedforward_block(attended, training)
        attended, scores = attended
        return self._feedforward_block(attended, training), scores

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(
        self,
        inputs,
        padding_mask=None,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        mask=None,
        inputs_mask=None,
    ):
        padding = _padding_masks(padding_mask, mask, inputs_mask)
        check_padding_masks(inputs.shape, padding)
        check_attention_mask(inputs.shape, inputs.shape, attention_mask)
        outputs = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        batch, length = inputs.shape[:2]
        scores_shape = (batch, self.num_heads, length, length)
        return outputs, keras.KerasTensor(scores_shape, dtype=self.compute_dtype)


def _padding_masks(padding_mask, mask, inputs_mask):
    """`(name, mask)` pairs of the padding masks, combined with AND."""
    return (
        ("padding_mask", padding_mask),
        ("mask", mask),
        ("inputs_mask", inputs_mask),
    )

"""Transformer encoder block: self-attention and feed-forward, pre- or post-norm."""

import numbers

import keras
from keras.src.backend import get_keras_mask

from layers._masking import merge_masks
from layers.multi_head_attention import MultiHeadAttention
from layers.validation import (
    check_last_dim,
    check_mask_shape,
    check_positive_int,
    check_rank,
    check_rate,
)


def check_epsilon(value):
    """Returns `value` as a float, raising unless it is a positive number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
        raise ValueError(
            "Argument `layer_norm_epsilon` must be a positive number. "
            f"Received: layer_norm_epsilon={value!r}"
        )
    return float(value)


def resolve_key_dim(hidden_dim, num_heads, key_dim):
    """Returns `key_dim`, defaulting to `hidden_dim // num_heads`."""
    if key_dim is not None:
        return key_dim
    if hidden_dim % num_heads:
        raise ValueError(
            "With `key_dim=None` the hidden size of the inputs must be divisible "
            f"by `num_heads`. Received: hidden size={hidden_dim}, "
            f"num_heads={num_heads}"
        )
    return hidden_dim // num_heads


def attention_mask_for(query, key, query_padding, key_padding, attention_mask):
    """Merges padding masks and an attention mask into one boolean mask.

    Args:
        query: `(B, T, d)` query sequence.
        key: `(B, S, d)` key sequence.
        query_padding: tuple of `(name, mask)` pairs, `(B, T)` masks (or
            `None`), `True` for real query tokens.
        key_padding: same for the keys, `(B, S)`.
        attention_mask: optional mask broadcastable to `(B, T, S)`.

    Returns:
        A boolean mask broadcastable to `(B, T, S)` (or `None`): padded keys are
        hidden and padded queries see no key.
    """
    for pairs, sequence in ((query_padding, query), (key_padding, key)):
        for name, mask in pairs:
            if mask is not None:
                check_rank(name, mask.shape, 2)
                check_mask_shape(name, mask.shape, sequence.shape[:2])
    if attention_mask is not None:
        check_mask_shape(
            "attention_mask",
            attention_mask.shape,
            (*query.shape[:2], key.shape[1]),
        )
    queries = merge_masks(*(mask for _, mask in query_padding))
    keys = merge_masks(*(mask for _, mask in key_padding))
    return merge_masks(
        None if queries is None else queries[:, :, None],
        None if keys is None else keys[:, None, :],
        attention_mask,
    )


@keras.saving.register_keras_serializable(package="attention_zoo")
class TransformerEncoder(keras.layers.Layer):
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
        inputs: `(B, T, hidden)` tensor.
        padding_mask: optional boolean `(B, T)` mask, `True` for real tokens.
        attention_mask: optional boolean mask broadcastable to `(B, T, T)`.
        training: whether dropout is active.

    Returns:
        `(B, T, hidden)` tensor in the compute dtype.
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.0,
        activation="relu",
        layer_norm_epsilon=1e-5,
        normalize_first=False,
        key_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        self.dropout = check_rate("dropout", dropout)
        self.activation = keras.activations.get(activation)
        self.layer_norm_epsilon = check_epsilon(layer_norm_epsilon)
        self.normalize_first = bool(normalize_first)
        self.key_dim = check_positive_int("key_dim", key_dim, allow_none=True)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.supports_masking = True

    def _initializers(self):
        return {
            "kernel_initializer": keras.initializers.get(
                keras.initializers.serialize(self.kernel_initializer)
            ),
            "bias_initializer": keras.initializers.get(
                keras.initializers.serialize(self.bias_initializer)
            ),
        }

    def _layer_norm(self, name):
        return keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def build(self, input_shape):
        check_rank("inputs", input_shape, 3)
        hidden_dim = check_last_dim("inputs", input_shape)
        key_dim = resolve_key_dim(hidden_dim, self.num_heads, self.key_dim)
        self.self_attention = MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=key_dim,
            dropout=self.dropout,
            dtype=self.dtype_policy,
            name="self_attention",
            **self._initializers(),
        )
        self.self_attention.build(input_shape, input_shape)
        self.self_attention_norm = self._layer_norm("self_attention_norm")
        self.self_attention_norm.build(input_shape)
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            dtype=self.dtype_policy,
            name="intermediate_dense",
            **self._initializers(),
        )
        self.intermediate_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(
            hidden_dim,
            dtype=self.dtype_policy,
            name="output_dense",
            **self._initializers(),
        )
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))
        self.feedforward_norm = self._layer_norm("feedforward_norm")
        self.feedforward_norm.build(input_shape)

    def _residual(self, inputs, sublayer, norm, training):
        x = norm(inputs) if self.normalize_first else inputs
        x = inputs + self.dropout_layer(sublayer(x), training=training)
        return x if self.normalize_first else norm(x)

    def call(self, inputs, padding_mask=None, attention_mask=None, training=None):
        padding = (("padding_mask", padding_mask), ("mask", get_keras_mask(inputs)))
        mask = attention_mask_for(inputs, inputs, padding, padding, attention_mask)

        def attend(x):
            return self.self_attention(x, x, attention_mask=mask, training=training)

        def feedforward(x):
            return self.output_dense(self.intermediate_dense(x))

        x = self._residual(inputs, attend, self.self_attention_norm, training)
        return self._residual(x, feedforward, self.feedforward_norm, training)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "normalize_first": self.normalize_first,
                "key_dim": self.key_dim,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config

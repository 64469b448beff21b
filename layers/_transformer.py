"""What `TransformerEncoder` and `TransformerDecoder` share.

`TransformerBlock` holds their constructor arguments and config, builds their
sublayers (multi-head attention, layer normalizations, feed-forward network)
with one set of settings, and wraps each sublayer in dropout, a residual
connection and layer normalization; `attention_mask_for` merges their padding
and attention masks.
"""

import keras
from keras import ops

from layers._masking import merge_masks
from layers._quantized_sublayers import QuantizedSublayers
from layers.multi_head_attention import MultiHeadAttention
from layers.validation import (
    check_float,
    check_mask_shape,
    check_positive_int,
    check_rank,
    check_rate,
)


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


def check_padding_masks(sequence_shape, masks):
    """Raises unless every mask in `masks` is a `(B, T)` mask of the sequence.

    Args:
        sequence_shape: shape `(B, T, d)` of the sequence.
        masks: tuple of `(name, mask)` pairs; `None` masks are skipped.
    """
    for name, mask in masks:
        if mask is not None:
            check_rank(name, mask.shape, 2)
            check_mask_shape(name, mask.shape, sequence_shape[:2])


def check_attention_mask(query_shape, key_shape, attention_mask):
    """Raises unless `attention_mask` (or `None`) broadcasts to `(B, T, S)`."""
    if attention_mask is not None:
        check_mask_shape(
            "attention_mask",
            attention_mask.shape,
            (*query_shape[:2], key_shape[1]),
        )


def attention_mask_for(query, key, query_padding, key_padding, attention_mask):
    """Checks and merges padding masks and an attention mask into one mask.

    Args:
        query: `(B, T, d)` query sequence.
        key: `(B, S, d)` key sequence.
        query_padding: tuple of `(name, mask)` pairs, `(B, T)` masks (or
            `None`), `True` for real query tokens; combined with AND.
        key_padding: same for the keys, `(B, S)`.
        attention_mask: optional mask broadcastable to `(B, T, S)`.

    Returns:
        A boolean mask broadcastable to `(B, T, S)` (or `None`): padded keys are
        hidden and padded queries see no key.
    """
    check_padding_masks(query.shape, query_padding)
    check_padding_masks(key.shape, key_padding)
    check_attention_mask(query.shape, key.shape, attention_mask)
    queries = merge_masks(*(mask for _, mask in query_padding))
    keys = merge_masks(*(mask for _, mask in key_padding))
    return merge_masks(
        None if queries is None else queries[:, :, None],
        None if keys is None else keys[:, None, :],
        attention_mask,
    )


class TransformerBlock(QuantizedSublayers, keras.layers.Layer):
    """Base of `TransformerEncoder` and `TransformerDecoder`.

    Holds the arguments both take, builds their sublayers and wraps each
    sublayer `f` in dropout, a residual connection and layer normalization:
    `LN(x + Drop(f(x)))` (post-norm, `normalize_first=False`) or
    `x + Drop(f(LN(x)))` (pre-norm). Subclasses define `build` and `call`.
    It is not a layer of its own, so it is not registered for serialization.

    Args:
        num_heads: positive int, number of attention heads.
        intermediate_dim: positive int, hidden size of the feed-forward network.
        dropout: float in [0, 1), rate of the attention dropout and of the
            dropout on every residual branch.
        activation: activation of the feed-forward hidden layer.
        layer_norm_epsilon: epsilon of the layer normalizations.
        normalize_first: `True` for pre-norm, `False` for post-norm.
        key_dim: size of each attention head; `None` means
            `hidden // num_heads`.
        kernel_initializer: initializer of the dense kernels.
        bias_initializer: initializer of the dense biases.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).
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
        self.layer_norm_epsilon = check_float("layer_norm_epsilon", layer_norm_epsilon)
        self.normalize_first = bool(normalize_first)
        self.key_dim = check_positive_int("key_dim", key_dim, allow_none=True)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.supports_masking = True

    # Sublayers.

    def _sublayer_kwargs(self):
        """Settings of every sublayer: the dtype policy, fresh initializers."""

        def fresh(initializer):
            return keras.initializers.get(keras.initializers.serialize(initializer))

        return {
            "dtype": self.dtype_policy,
            "kernel_initializer": fresh(self.kernel_initializer),
            "bias_initializer": fresh(self.bias_initializer),
        }

    def _layer_norm(self, name, input_shape):
        norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        norm.build(input_shape)
        return norm

    def _build_attention(self, name, key_dim, query_shape, value_shape):
        """A built attention sublayer `name` and its layer norm `{name}_norm`."""
        attention = MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=key_dim,
            dropout=self.dropout,
            name=name,
            **self._sublayer_kwargs(),
        )
        attention.build(query_shape, value_shape)
        return attention, self._layer_norm(f"{name}_norm", query_shape)

    def _build_feedforward(self, input_shape):
        """Builds `intermediate_dense`, `output_dense` and `feedforward_norm`."""
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            name="intermediate_dense",
            **self._sublayer_kwargs(),
        )
        self.intermediate_dense.build(input_shape)
        self.output_dense = keras.layers.Dense(
            input_shape[-1], name="output_dense", **self._sublayer_kwargs()
        )
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))
        self.feedforward_norm = self._layer_norm("feedforward_norm", input_shape)

    # Residual sublayers.

    def _residual(self, inputs, branch, norm, training):
        """`inputs + Drop(branch)`, then `norm` in post-norm."""
        outputs = inputs + self.dropout_layer(branch, training=training)
        return outputs if self.normalize_first else norm(outputs)

    def _attention_block(
        self,
        inputs,
        attention,
        norm,
        mask,
        training,
        value=None,
        return_attention_scores=False,
    ):
        """Residual attention of `inputs` to `value` (`None`: self-attention).

        Returns the block's output, and with `return_attention_scores=True`
        also the `(B, num_heads, T, S)` attention weights.
        """
        query = norm(inputs) if self.normalize_first else inputs
        value = query if value is None else value
        result = attention(
            query,
            value,
            attention_mask=mask,
            training=training,
            return_attention_scores=return_attention_scores,
        )
        if return_attention_scores:
            branch, scores = result
            return self._residual(inputs, branch, norm, training), scores
        return self._residual(inputs, result, norm, training)

    def _feedforward_block(self, inputs, training):
        """Residual feed-forward network of `inputs`."""
        x = self.feedforward_norm(inputs) if self.normalize_first else inputs
        branch = self.output_dense(self.intermediate_dense(x))
        return self._residual(inputs, branch, self.feedforward_norm, training)

    def _as_compute_dtype(self, x):
        # Keras casts float inputs only: an integer input would reach the
        # residual sums as is.
        return None if x is None else ops.cast(x, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return mask

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

"""Transformer decoder block: causal self-attention, optional cross-attention, FFN."""

import keras
from keras import ops
from keras.src.backend import get_keras_mask

from layers._masking import causal_mask
from layers.multi_head_attention import MultiHeadAttention
from layers.transformer_encoder import (
    attention_mask_for,
    check_epsilon,
    resolve_key_dim,
)
from layers.validation import (
    check_last_dim,
    check_positive_int,
    check_rank,
    check_rate,
)


@keras.saving.register_keras_serializable(package="attention_zoo")
class TransformerDecoder(keras.layers.Layer):
    """One transformer decoder block (Vaswani et al., 2017).

    Causal multi-head self-attention (position `i` sees positions `<= i`),
    then, if the layer is built with an `encoder_sequence`, multi-head
    cross-attention from the decoder to the encoder sequence, then a two-layer
    feed-forward network. Each sublayer is wrapped in dropout, a residual
    connection and layer normalization, after the residual (post-norm,
    `normalize_first=False`: `x = LN(x + Drop(f(x)))`) or before the sublayer
    (pre-norm: `x = x + Drop(f(LN(x)))`, no final normalization). Built
    without `encoder_sequence` it is a decoder-only (GPT-style) block and has
    no cross-attention weights; the presence of `encoder_sequence` must then
    be the same on every call.

    Masking: the decoder padding mask (`decoder_padding_mask` AND the Keras
    mask of `decoder_sequence`) and the encoder padding mask
    (`encoder_padding_mask` AND the Keras mask of `encoder_sequence`) hide
    padded keys; padded decoder positions attend to nothing. The Keras mask
    of `decoder_sequence` is passed through to the output.

    Args:
        num_heads: positive int, number of attention heads.
        intermediate_dim: positive int, hidden size of the feed-forward network.
        dropout: float in [0, 1), rate of the attention dropout and of the
            dropout on every residual branch.
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
        decoder_sequence: `(B, T, hidden)` tensor.
        encoder_sequence: optional `(B, S, d_enc)` tensor to cross-attend to.
        decoder_padding_mask: optional boolean `(B, T)`, `True` for real tokens.
        encoder_padding_mask: optional boolean `(B, S)`, `True` for real tokens.
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
        self.cross_attention = None
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

    def _attention(self, name, key_dim, query_shape, value_shape):
        attention = MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=key_dim,
            dropout=self.dropout,
            dtype=self.dtype_policy,
            name=name,
            **self._initializers(),
        )
        attention.build(query_shape, value_shape)
        norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name=f"{name}_norm",
        )
        norm.build(query_shape)
        return attention, norm

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        shape = decoder_sequence_shape
        check_rank("decoder_sequence", shape, 3)
        hidden_dim = check_last_dim("decoder_sequence", shape)
        key_dim = resolve_key_dim(hidden_dim, self.num_heads, self.key_dim)
        self.self_attention, self.self_attention_norm = self._attention(
            "self_attention", key_dim, shape, shape
        )
        if encoder_sequence_shape is not None:
            check_rank("encoder_sequence", encoder_sequence_shape, 3)
            check_last_dim("encoder_sequence", encoder_sequence_shape)
            self.cross_attention, self.cross_attention_norm = self._attention(
                "cross_attention", key_dim, shape, encoder_sequence_shape
            )
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            activation=self.activation,
            dtype=self.dtype_policy,
            name="intermediate_dense",
            **self._initializers(),
        )
        self.intermediate_dense.build(shape)
        self.output_dense = keras.layers.Dense(
            hidden_dim,
            dtype=self.dtype_policy,
            name="output_dense",
            **self._initializers(),
        )
        self.output_dense.build((*shape[:-1], self.intermediate_dim))
        self.feedforward_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon,
            dtype=self.dtype_policy,
            name="feedforward_norm",
        )
        self.feedforward_norm.build(shape)

    def _residual(self, inputs, sublayer, norm, training):
        x = norm(inputs) if self.normalize_first else inputs
        x = inputs + self.dropout_layer(sublayer(x), training=training)
        return x if self.normalize_first else norm(x)

    def _check_encoder_arguments(self, encoder_sequence, encoder_padding_mask):
        if self.cross_attention is None and encoder_sequence is not None:
            raise ValueError(
                "This `TransformerDecoder` was built without `encoder_sequence` "
                "(decoder-only) and cannot be called with one. Received: "
                f"encoder_sequence.shape={tuple(encoder_sequence.shape)}"
            )
        if self.cross_attention is not None and encoder_sequence is None:
            raise ValueError(
                "This `TransformerDecoder` was built with an `encoder_sequence` "
                "and must be called with one. Received: encoder_sequence=None"
            )
        if encoder_sequence is None and encoder_padding_mask is not None:
            raise ValueError(
                "Argument `encoder_padding_mask` needs an `encoder_sequence`. "
                "Received: encoder_sequence=None"
            )

    def call(
        self,
        decoder_sequence,
        encoder_sequence=None,
        decoder_padding_mask=None,
        encoder_padding_mask=None,
        training=None,
    ):
        self._check_encoder_arguments(encoder_sequence, encoder_padding_mask)
        x = decoder_sequence
        length = ops.shape(x)[1]
        decoder_padding = (
            ("decoder_padding_mask", decoder_padding_mask),
            ("decoder_sequence mask", get_keras_mask(x)),
        )
        self_mask = attention_mask_for(
            x, x, decoder_padding, decoder_padding, causal_mask(length, length)[None]
        )

        def self_attend(y):
            return self.self_attention(
                y, y, attention_mask=self_mask, training=training
            )

        x = self._residual(x, self_attend, self.self_attention_norm, training)

        if encoder_sequence is not None:
            encoder_padding = (
                ("encoder_padding_mask", encoder_padding_mask),
                ("encoder_sequence mask", get_keras_mask(encoder_sequence)),
            )
            cross_mask = attention_mask_for(
                x, encoder_sequence, decoder_padding, encoder_padding, None
            )

            def cross_attend(y):
                return self.cross_attention(
                    y, encoder_sequence, attention_mask=cross_mask, training=training
                )

            x = self._residual(x, cross_attend, self.cross_attention_norm, training)

        def feedforward(y):
            return self.output_dense(self.intermediate_dense(y))

        return self._residual(x, feedforward, self.feedforward_norm, training)

    def compute_mask(self, decoder_sequence, mask=None):
        return mask

    def compute_output_shape(self, decoder_sequence_shape, encoder_sequence_shape=None):
        return decoder_sequence_shape

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

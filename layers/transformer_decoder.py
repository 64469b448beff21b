"""Transformer decoder block: causal self-attention, optional cross-attention, FFN."""

import keras
from keras import ops

from layers._masking import causal_mask
from layers._transformer import (
    TransformerBlock,
    attention_mask_for,
    resolve_key_dim,
)
from layers.validation import check_last_dim, check_rank


@keras.saving.register_keras_serializable(package="attention_zoo")
class TransformerDecoder(TransformerBlock):
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
        decoder_sequence: `(B, T, hidden)` tensor (integer inputs are cast to
            the compute dtype, as is `encoder_sequence`).
        encoder_sequence: optional `(B, S, d_enc)` tensor to cross-attend to.
        decoder_padding_mask: optional boolean `(B, T)`, `True` for real tokens.
        encoder_padding_mask: optional boolean `(B, S)`, `True` for real tokens.
        training: whether dropout is active.
        mask: filled by Keras with the Keras mask of `decoder_sequence` when it
            is the only tensor argument; not meant to be passed.
        decoder_sequence_mask: filled by Keras with the Keras mask of
            `decoder_sequence` when other tensor arguments are passed too; not
            meant to be passed.
        encoder_sequence_mask: filled by Keras with the Keras mask of
            `encoder_sequence`; not meant to be passed.

    Returns:
        `(B, T, hidden)` tensor in the compute dtype.
    """

    def build(self, decoder_sequence_shape, encoder_sequence_shape=None):
        shape = decoder_sequence_shape
        check_rank("decoder_sequence", shape, 3)
        hidden_dim = check_last_dim("decoder_sequence", shape)
        key_dim = resolve_key_dim(hidden_dim, self.num_heads, self.key_dim)
        self.self_attention, self.self_attention_norm = self._build_attention(
            "self_attention", key_dim, shape, shape
        )
        self.cross_attention = None
        if encoder_sequence_shape is not None:
            check_rank("encoder_sequence", encoder_sequence_shape, 3)
            check_last_dim("encoder_sequence", encoder_sequence_shape)
            self.cross_attention, self.cross_attention_norm = self._build_attention(
                "cross_attention", key_dim, shape, encoder_sequence_shape
            )
        self._build_feedforward(shape)

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
        mask=None,
        decoder_sequence_mask=None,
        encoder_sequence_mask=None,
    ):
        self._check_encoder_arguments(encoder_sequence, encoder_padding_mask)
        x = self._as_compute_dtype(decoder_sequence)
        encoder_sequence = self._as_compute_dtype(encoder_sequence)
        length = ops.shape(x)[1]
        decoder_padding = (
            ("decoder_padding_mask", decoder_padding_mask),
            ("mask", mask),
            ("decoder_sequence_mask", decoder_sequence_mask),
        )
        self_mask = attention_mask_for(
            x, x, decoder_padding, decoder_padding, causal_mask(length, length)[None]
        )
        x = self._attention_block(
            x, self.self_attention, self.self_attention_norm, self_mask, training
        )
        if encoder_sequence is not None:
            encoder_padding = (
                ("encoder_padding_mask", encoder_padding_mask),
                ("encoder_sequence_mask", encoder_sequence_mask),
            )
            cross_mask = attention_mask_for(
                x, encoder_sequence, decoder_padding, encoder_padding, None
            )
            x = self._attention_block(
                x,
                self.cross_attention,
                self.cross_attention_norm,
                cross_mask,
                training,
                value=encoder_sequence,
            )
        return self._feedforward_block(x, training)

    # Incremental decoding: the self-attention keys and values of the steps
    # decoded so far are cached, the encoder's are computed once.

    def initial_cache(self, batch_size, max_length, encoder_sequence=None):
        """The caches that `cached_call` starts from.

        Args:
            batch_size: int or scalar int tensor, sequences decoded at once.
            max_length: int, the most steps decoded (the cache length).
            encoder_sequence: the `(B, S, d_enc)` encoder output, needed when
                the block has cross-attention.

        Returns:
            `(self_attention_cache, cross_attention_cache)`: zero keys and
            values `(B, max_length, num_heads, key_dim)`, and the projected
            keys and values of `encoder_sequence` (`None` without
            cross-attention).
        """
        self._check_encoder_arguments(encoder_sequence, None)
        attention = self.self_attention
        dtype = self.compute_dtype
        shape = (batch_size, max_length, attention.num_heads)
        self_cache = (
            ops.zeros((*shape, attention.key_dim), dtype),
            ops.zeros((*shape, attention.value_dim), dtype),
        )
        cross_cache = None
        if encoder_sequence is not None:
            encoder_sequence = self._as_compute_dtype(encoder_sequence)
            cross_cache = self.cross_attention.compute_cache(encoder_sequence)
        return self_cache, cross_cache

    def cached_call(
        self,
        decoder_sequence,
        self_attention_cache,
        cache_update_index,
        cross_attention_cache=None,
        encoder_padding_mask=None,
        return_cross_attention_scores=False,
    ):
        """The block on new steps, reading and updating the caches.

        The output for steps `index .. index + T - 1` equals that of `call`
        on the whole prefix (inference: no dropout), at the cost of
        attending to the cache rather than re-running the prefix.

        Args:
            decoder_sequence: `(B, T, hidden)` new steps (often `T = 1`).
            self_attention_cache: `(keys, values)` from `initial_cache` or
                the previous call.
            cache_update_index: int or scalar int tensor, position of the first
                new step.
            cross_attention_cache: the encoder's `(keys, values)` from
                `initial_cache` (with cross-attention).
            encoder_padding_mask: optional boolean `(B, S)`, `True` for real
                encoder tokens.
            return_cross_attention_scores: whether to return the
                `(B, num_heads, T, S)` cross-attention weights too.

        Returns:
            `(outputs, self_attention_cache)`, or `(outputs,
            self_attention_cache, cross_attention_scores)`.
        """
        if (self.cross_attention is None) != (cross_attention_cache is None):
            raise ValueError(
                "Argument `cross_attention_cache` must be given exactly when the "
                "block has cross-attention (it was built "
                f"{'with' if self.cross_attention is not None else 'without'} an "
                "`encoder_sequence`)."
            )
        x = self._as_compute_dtype(decoder_sequence)
        query = self.self_attention_norm(x) if self.normalize_first else x
        branch, self_cache = self.self_attention.cached_call(
            query,
            self_attention_cache,
            value=query,
            cache_update_index=cache_update_index,
        )
        x = self._residual(x, branch, self.self_attention_norm, False)
        scores = None
        if self.cross_attention is not None:
            mask = None
            if encoder_padding_mask is not None:
                mask = ops.cast(encoder_padding_mask, "bool")[:, None, None, :]
            norm = self.cross_attention_norm
            query = norm(x) if self.normalize_first else x
            result = self.cross_attention.cached_call(
                query,
                cross_attention_cache,
                attention_mask=mask,
                return_attention_scores=return_cross_attention_scores,
            )
            branch, scores = result[0], result[1] if len(result) == 3 else None
            x = self._residual(x, branch, norm, False)
        x = self._feedforward_block(x, False)
        if return_cross_attention_scores:
            return x, self_cache, scores
        return x, self_cache

    def compute_output_shape(self, decoder_sequence_shape, encoder_sequence_shape=None):
        return decoder_sequence_shape

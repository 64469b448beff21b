"""A pointer-generator output: generate a word or copy one from the source."""

import keras
from keras import ops

from layers._masking import masked_softmax
from layers._quantized_sublayers import QuantizedSublayers
from layers.validation import check_positive_int

_FLOOR = 1e-12


@keras.saving.register_keras_serializable(package="attention_zoo")
class PointerGenerator(QuantizedSublayers, keras.layers.Layer):
    """Mixes a decoder's word distribution with copying source tokens.

    The output layer of See et al. (2017), "Get To The Point": for decoder
    state `h_t` (after its blocks) and encoder states `e_s`, a copy attention
    `a_t = softmax_s(q(h_t) . k(e_s) / sqrt(key_dim))` over the real source
    tokens gives a context `c_t = sum_s a_ts e_s` and a generation
    probability `p_t = sigmoid(w . [h_t, c_t] + b)`; the output distribution
    is `p_t softmax(logits_t) + (1 - p_t) sum_s a_ts onehot(map[x_s])`, where
    `map` (the non-trainable `source_to_target`, all 0 until set) sends each
    source id to the target id of the same word (0 where the target
    vocabulary lacks it: copying it puts mass on padding, which decoders
    never emit). The layer returns the distribution's logarithm (floored at
    1e-12) in float32: its softmax is the distribution itself, so it stands
    in for logits in `from_logits=True` losses and in decoding. The copy
    keys do not depend on the step: `compute_keys` computes them once per
    source and `call` takes them as `keys`.

    Args:
        source_vocabulary_size: positive int, source ids.
        target_vocabulary_size: positive int, target ids (the logits' size).
        key_dim: positive int, size of the copy attention's queries and keys.
        kernel_initializer: initializer of the projections and the gate.
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        logits: `(B, T, target_vocabulary_size)` word logits.
        decoder_sequence: `(B, T, d)` decoder states.
        encoder_sequence: `(B, S, d_enc)` encoder states.
        source_ids: int `(B, S)` source token ids, 0 = padding (never copied).
        keys: optional `(B, S, key_dim)` from `compute_keys(encoder_sequence)`.
        return_attention_scores: whether to also return the copy weights.

    Returns:
        Float32 `(B, T, target_vocabulary_size)` log-probabilities, or with
        `return_attention_scores` the tuple `(log_probabilities, weights)`
        with float32 `(B, T, S)` copy weights (zero on padding).
    """

    def __init__(
        self,
        source_vocabulary_size,
        target_vocabulary_size,
        key_dim=64,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.source_vocabulary_size = check_positive_int(
            "source_vocabulary_size", source_vocabulary_size
        )
        self.target_vocabulary_size = check_positive_int(
            "target_vocabulary_size", target_vocabulary_size
        )
        self.key_dim = check_positive_int("key_dim", key_dim)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(
        self,
        logits_shape,
        decoder_sequence_shape,
        encoder_sequence_shape,
        source_ids_shape=None,
    ):
        if logits_shape[-1] != self.target_vocabulary_size:
            raise ValueError(
                "Argument `logits` must have `target_vocabulary_size` "
                f"({self.target_vocabulary_size}) entries on its last axis. "
                f"Received: logits.shape={tuple(logits_shape)}"
            )
        dense = dict(
            use_bias=False,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
        )
        self.query_dense = keras.layers.Dense(self.key_dim, name="query", **dense)
        self.query_dense.build(decoder_sequence_shape)
        self.key_dense = keras.layers.Dense(self.key_dim, name="key", **dense)
        self.key_dense.build(encoder_sequence_shape)
        self.gate = keras.layers.Dense(
            1,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="gate",
        )
        width = decoder_sequence_shape[-1] + encoder_sequence_shape[-1]
        self.gate.build((*decoder_sequence_shape[:-1], width))
        self.source_to_target = self.add_weight(
            name="source_to_target",
            shape=(self.source_vocabulary_size,),
            initializer="zeros",
            dtype="int32",
            trainable=False,
        )

    def compute_keys(self, encoder_sequence):
        """The `(B, S, key_dim)` copy keys of `encoder_sequence`."""
        return self.key_dense(encoder_sequence)

    def call(
        self,
        logits,
        decoder_sequence,
        encoder_sequence,
        source_ids,
        keys=None,
        return_attention_scores=False,
    ):
        if keys is None:
            keys = self.compute_keys(encoder_sequence)
        queries = self.query_dense(decoder_sequence)
        scores = ops.einsum("btd,bsd->bts", queries, keys)
        scores = ops.cast(scores, "float32") / (self.key_dim**0.5)
        source_ids = ops.cast(source_ids, "int32")
        weights = masked_softmax(scores, ops.not_equal(source_ids, 0)[:, None, :])
        context = ops.einsum(
            "bts,bsd->btd", ops.cast(weights, self.compute_dtype), encoder_sequence
        )
        gate = self.gate(ops.concatenate([decoder_sequence, context], axis=-1))
        generate = ops.sigmoid(ops.cast(gate, "float32"))
        words = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        copies = self._scatter(weights, ops.take(self.source_to_target, source_ids))
        probabilities = generate * words + (1.0 - generate) * copies
        log_probabilities = ops.log(ops.maximum(probabilities, _FLOOR))
        if return_attention_scores:
            return log_probabilities, weights
        return log_probabilities

    def _scatter(self, weights, target_ids):
        """`(B, T, V)` sums of the `(B, T, S)` weights per target id `(B, S)`."""
        shape = ops.shape(weights)
        rows = shape[0] * shape[1]
        vocabulary = self.target_vocabulary_size
        offsets = ops.reshape(ops.arange(rows, dtype="int32"), (shape[0], shape[1], 1))
        segments = offsets * vocabulary + target_ids[:, None, :]
        sums = ops.segment_sum(
            ops.reshape(weights, (-1,)),
            ops.reshape(segments, (-1,)),
            num_segments=rows * vocabulary,
        )
        return ops.reshape(sums, (shape[0], shape[1], vocabulary))

    def compute_output_shape(self, logits_shape, *args, **kwargs):
        return tuple(logits_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocabulary_size=self.source_vocabulary_size,
            target_vocabulary_size=self.target_vocabulary_size,
            key_dim=self.key_dim,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config

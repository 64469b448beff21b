"""Incremental decoding of an `rnn_seq2seq` model, one GRU cell step a token."""

from keras import ops

from layers.additive_attention import AdditiveAttention


class RNNStepper:
    """Runs an `rnn_seq2seq` model one target token at a time.

    `start` runs the bidirectional encoder once, maps its final states to the
    decoder's initial state (`"bridge"`, the `state`) and computes the
    attention's key projection of the encoder outputs
    (`AdditiveAttention.compute_cache`); the outputs, their projection and the
    source mask are the `constants`. `step` embeds one token, runs the
    decoder GRU's cell for one step, attends over the encoder outputs with
    the cached keys and returns the next token's logits: the logits of the
    full model on the same prefix. A padding token (id 0) keeps the state,
    as the full model's masked GRU does.

    Args:
        model: a model built by `zoo.rnn_seq2seq.rnn_seq2seq` (layers
            `source_embedding`, `encoder`, `bridge`, `target_embedding`,
            `decoder_gru`, `attention`, `attention_projection`, `logits`).
    """

    def __init__(self, model):
        self.model = model
        names = {layer.name for layer in model.layers}
        needed = (
            "source_embedding",
            "encoder",
            "bridge",
            "target_embedding",
            "decoder_gru",
            "attention",
            "attention_projection",
            "logits",
        )
        missing = [name for name in needed if name not in names]
        if missing:
            raise ValueError(
                f"Model {model.name!r} is not an rnn_seq2seq model: it has no "
                f"layers named {missing}."
            )
        self.source_embedding = model.get_layer("source_embedding")
        self.encoder = model.get_layer("encoder")
        self.bridge = model.get_layer("bridge")
        self.target_embedding = model.get_layer("target_embedding")
        self.cell = model.get_layer("decoder_gru").cell
        self.attention = model.get_layer("attention")
        self.projection = model.get_layer("attention_projection")
        self.logits = model.get_layer("logits")
        if not isinstance(self.attention, AdditiveAttention):
            raise ValueError(
                f"Layer 'attention' of model {model.name!r} must be an "
                f"AdditiveAttention. Received: {type(self.attention).__name__}"
            )

    def start(self, source, max_length):
        """`(state, constants)` of a `(N, S)` source batch (see `decoding`)."""
        source_mask = ops.not_equal(source, 0)
        x = self.source_embedding(source)
        encoded, forward, backward = self.encoder(x, mask=source_mask)
        state = self.bridge(ops.concatenate([forward, backward], axis=-1))
        constants = {
            "values": encoded,
            "keys": self.attention.compute_cache(encoded),
            "source_mask": source_mask,
        }
        return [state], constants

    def step(self, tokens, index, state, constants):
        """`(logits (N, V), state, attention (N, S))` of the `(N, 1)` tokens."""
        previous = state[0]
        x = self.target_embedding(tokens)[:, 0]
        output, _ = self.cell(x, [previous], training=False)
        real = ops.not_equal(tokens, 0)
        output = ops.where(real, output, ops.cast(previous, output.dtype))
        context, weights = self.attention.cached_call(
            output[:, None],
            constants["keys"],
            constants["values"],
            value_mask=constants["source_mask"],
            return_attention_scores=True,
        )
        y = ops.concatenate([output[:, None], ops.cast(context, output.dtype)], -1)
        logits = self.logits(self.projection(y))[:, 0]
        state = [ops.cast(output, previous.dtype)]
        return ops.cast(logits, "float32"), state, weights[:, 0]

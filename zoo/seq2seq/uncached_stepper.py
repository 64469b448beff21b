"""Decoding that re-runs the whole model on the prefix at every step."""

from keras import ops


class UncachedStepper:
    """Steps any seq2seq token model by re-running it on the whole prefix.

    The reference for the cached steppers (same tokens, same logits) and
    the baseline of the decoding benchmark: step `i` costs a full forward
    pass over `max_length` target positions. The target buffer is the
    state; the model's causal decoder ignores the positions after `i`.
    Attention weights are not computed (zeros).

    Args:
        model: a seq2seq token model `{"source", "target"} -> logits`.
    """

    def __init__(self, model):
        self.model = model

    def start(self, source, max_length):
        """`(state, constants)` of a `(N, S)` source batch (see `decoding`)."""
        buffer = ops.zeros((ops.shape(source)[0], max_length), "int32")
        return [buffer], {"source": source}

    def step(self, tokens, index, state, constants):
        """`(logits (N, V), state, attention (N, S))` of the `(N, 1)` tokens."""
        buffer = ops.slice_update(state[0], (0, index), ops.cast(tokens, "int32"))
        logits = self.model(
            {"source": constants["source"], "target": buffer}, training=False
        )
        logits = ops.take(logits, index, axis=1)
        source = constants["source"]
        weights = ops.zeros(ops.shape(source), "float32")
        return ops.cast(logits, "float32"), [buffer], weights

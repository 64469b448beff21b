"""Incremental decoding of a `transformer_seq2seq` model, with key/value caches."""

from keras import ops

from layers.pointer_generator import PointerGenerator
from layers.transformer_decoder import TransformerDecoder
from layers.transformer_encoder import TransformerEncoder


class TransformerStepper:
    """Runs a `transformer_seq2seq` model one target token at a time.

    `start` encodes the source once and computes every decoder block's
    cross-attention keys and values (`constants`); `step` embeds one token at
    its position, runs each `TransformerDecoder.cached_call` (which writes the
    token's self-attention keys and values into the block's cache, the
    `state`) and returns the next token's logits, so a step costs attention
    over the tokens so far, not a re-run of the prefix. The cross-attention
    weights returned are those of the last block, averaged over its heads.
    A model with a `PointerGenerator` (`"copy"`, `copy_source=True`) gets
    its copy keys computed once in `start`, and `step` returns the
    pointer-generator's log-probabilities as the logits.

    Args:
        model: a model built by `zoo.transformer_seq2seq.transformer_seq2seq`
            (layers `source_embedding`, `encoder{i}`, `target_embedding`,
            `decoder{i}`, `logits`).
    """

    def __init__(self, model):
        self.model = model
        layers = model.layers
        self.source_embedding = model.get_layer("source_embedding")
        self.target_embedding = model.get_layer("target_embedding")
        self.encoders = [x for x in layers if isinstance(x, TransformerEncoder)]
        self.decoders = [x for x in layers if isinstance(x, TransformerDecoder)]
        self.logits = model.get_layer("logits")
        copies = [x for x in layers if isinstance(x, PointerGenerator)]
        self.copy = copies[0] if copies else None
        if not self.decoders:
            raise ValueError(
                f"Model {model.name!r} has no `TransformerDecoder` block: it is "
                "not a transformer_seq2seq model."
            )

    def start(self, source, max_length):
        """`(state, constants)` of a `(N, S)` source batch (see `decoding`)."""
        source_mask = ops.not_equal(source, 0)
        x = self.source_embedding(source)
        for encoder in self.encoders:
            x = encoder(x, padding_mask=source_mask)
        batch = ops.shape(source)[0]
        state, crosses = [], []
        for decoder in self.decoders:
            self_cache, cross_cache = decoder.initial_cache(batch, max_length, x)
            state.append(self_cache)
            crosses.append(cross_cache)
        constants = {"cross": crosses, "source_mask": source_mask}
        if self.copy is not None:
            constants["copy"] = {
                "encoded": x,
                "keys": self.copy.compute_keys(x),
                "source": source,
            }
        return state, constants

    def step(self, tokens, index, state, constants):
        """`(logits (N, V), state, attention (N, S))` of the `(N, 1)` tokens."""
        x = self.target_embedding(tokens, start_index=index)
        caches, weights = [], None
        last = len(self.decoders) - 1
        for i, decoder in enumerate(self.decoders):
            result = decoder.cached_call(
                x,
                state[i],
                index,
                constants["cross"][i],
                constants["source_mask"],
                return_cross_attention_scores=i == last,
            )
            x, cache = result[0], result[1]
            if i == last:
                weights = ops.mean(result[2][:, :, 0, :], axis=1)
            caches.append(cache)
        logits = self.logits(x)
        if self.copy is not None:
            copy = constants["copy"]
            logits = self.copy(
                logits, x, copy["encoded"], copy["source"], keys=copy["keys"]
            )
        return ops.cast(logits[:, 0], "float32"), caches, weights

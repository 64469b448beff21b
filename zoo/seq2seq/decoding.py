"""Greedy and beam search over a step function, in `keras.ops`.

Both decoders run one `ops.while_loop` over fixed-size buffers (tokens, the
models' caches, attention weights), so they compile into a graph (and with
XLA) on TensorFlow and JAX: a Python loop would be unrolled, and a growing
`TensorArray` does not compile with XLA. The loop stops when every sequence
has produced the end token, or at `max_length` steps.

A model takes part through a *stepper* (`zoo.seq2seq.steppers`):
`stepper.start(source, max_length)` returns `(state, constants)` for a batch of
source token ids, and `stepper.step(tokens, index, state, constants)` returns
`(logits, state, attention)` for the `(N, 1)` tokens at position `index`:
float32 `(N, vocabulary)` logits, the updated state and float32 `(N, S)`
cross-attention weights. Every leaf of `state` and `constants` has the batch
first; beam search repeats them per beam and reorders `state` with its beams
(`constants`, such as the encoder's keys and values, are the same for every
beam of a sentence, so they are never reordered).
"""

import keras
from keras import ops

from layers.validation import check_float, check_positive_int

# The reserved ids of every seq2seq vocabulary (`zoo.seq2seq.text`): the
# decoders never emit padding or the start token.
PAD_ID, UNK_ID, START_ID, END_ID = range(4)
RESERVED_TOKENS = ("", "[UNK]", "[START]", "[END]")
_NEG_INF = -1e9


def _check(max_length, end_id):
    check_positive_int("max_length", max_length)
    check_positive_int("end_id", end_id)


def _allowed(logits):
    """Log-probabilities with padding and the start token excluded."""
    logits = ops.cast(logits, "float32")
    vocabulary = logits.shape[-1]
    ids = ops.arange(vocabulary)
    banned = ops.logical_or(ops.equal(ids, PAD_ID), ops.equal(ids, START_ID))
    logits = ops.where(banned[None], _NEG_INF, logits)
    return ops.log_softmax(logits, axis=-1)


def _start_tokens(batch):
    return ops.full((batch, 1), START_ID, "int32")


def greedy_search(stepper, source, max_length, end_id, return_attention=False):
    """Decodes `source` by always taking the most likely next token.

    Args:
        stepper: the model's stepper (see the module docstring).
        source: int32 `(B, S)` source token ids, 0 = padding.
        max_length: the most tokens generated (end token included).
        end_id: the end token id; once produced, a sequence is padded with 0.
        return_attention: whether to return the cross-attention weights of
            every generated token.

    Returns:
        Int32 tokens `(B, max_length)` (end token included, then 0), and with
        `return_attention` float32 weights `(B, max_length, S)`.
    """
    _check(max_length, end_id)
    source = ops.convert_to_tensor(source, "int32")
    batch, source_length = ops.shape(source)[0], ops.shape(source)[1]
    state, constants = stepper.start(source, max_length)
    tokens = ops.zeros((batch, max_length), "int32")
    attention = ops.zeros((batch, max_length, source_length), "float32")
    finished = ops.zeros((batch,), "bool")
    structure, flat_state = state, keras.tree.flatten(state)

    def cond(index, last, tokens, finished, attention, *flat):
        return ops.logical_and(
            ops.less(index, max_length), ops.logical_not(ops.all(finished))
        )

    def body(index, last, tokens, finished, attention, *flat):
        state = keras.tree.pack_sequence_as(structure, list(flat))
        logits, state, weights = stepper.step(last, index, state, constants)
        best = ops.cast(ops.argmax(_allowed(logits), axis=-1), "int32")
        best = ops.where(finished, PAD_ID, best)
        tokens = ops.slice_update(tokens, (0, index), best[:, None])
        weights = ops.where(finished[:, None], 0.0, ops.cast(weights, "float32"))
        attention = ops.slice_update(attention, (0, index, 0), weights[:, None])
        finished = ops.logical_or(finished, ops.equal(best, end_id))
        flat = keras.tree.flatten(state)
        return (index + 1, best[:, None], tokens, finished, attention, *flat)

    loop = (0, _start_tokens(batch), tokens, finished, attention, *flat_state)
    result = ops.while_loop(cond, body, loop, maximum_iterations=max_length)
    tokens, attention = result[2], result[4]
    return (tokens, attention) if return_attention else tokens


def length_penalty_of(lengths, alpha):
    """GNMT's length penalty `((5 + length) / 6) ** alpha` (Wu et al., 2016)."""
    return ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, alpha)


def _by_beam(x, beam_index, batch, beam_width):
    """Rows of `(B * K, ...)` `x` reordered to `beam_index` `(B, K)`."""
    shape = ops.shape(x)
    x = ops.reshape(x, (batch, beam_width, *shape[1:]))
    index = ops.reshape(beam_index, (batch, beam_width) + (1,) * (len(x.shape) - 2))
    x = ops.take_along_axis(x, index, axis=1)
    return ops.reshape(x, shape)


def beam_search(
    stepper,
    source,
    max_length,
    end_id,
    beam_width=4,
    length_penalty=0.6,
    return_attention=False,
):
    """Decodes `source` keeping the `beam_width` best partial sequences.

    Every step extends each live beam by every token and keeps the
    `beam_width` best candidates by log-probability over the length penalty
    `((5 + length) / 6) ** length_penalty`. A beam that has produced the end
    token is frozen: its only continuation is padding at no cost, so it keeps
    its score and length and competes with the live beams until the end. The
    source is repeated per beam once, before the loop. `beam_width=1` gives
    the greedy result.

    Args:
        stepper: the model's stepper (see the module docstring).
        source: int32 `(B, S)` source token ids, 0 = padding.
        max_length: the most tokens generated (end token included).
        end_id: the end token id.
        beam_width: beams per sentence.
        length_penalty: `alpha` of the length penalty (0 ranks by
            log-probability alone; larger favours longer outputs).
        return_attention: whether to return the cross-attention weights of
            every token of the best beam.

    Returns:
        `(tokens, scores)`: int32 `(B, max_length)` tokens of the best beam
        (end token included, then 0) and its float32 `(B,)` log-probability;
        with `return_attention` also float32 weights `(B, max_length, S)`.
    """
    _check(max_length, end_id)
    beam_width = check_positive_int("beam_width", beam_width)
    alpha = check_float("length_penalty", length_penalty, 0.0, 10.0, low_open=False)
    source = ops.convert_to_tensor(source, "int32")
    batch, source_length = ops.shape(source)[0], ops.shape(source)[1]
    beams = batch * beam_width
    state, constants = stepper.start(ops.repeat(source, beam_width, axis=0), max_length)
    first = ops.concatenate(
        [ops.zeros((1,)), ops.full((beam_width - 1,), _NEG_INF)], axis=0
    )
    scores = ops.tile(first[None], (batch, 1))
    lengths = ops.zeros((batch, beam_width), "int32")
    finished = ops.zeros((batch, beam_width), "bool")
    tokens = ops.zeros((beams, max_length), "int32")
    attention = ops.zeros((beams, max_length, source_length), "float32")
    structure, flat_state = state, keras.tree.flatten(state)

    def cond(index, last, tokens, scores, lengths, finished, attention, *flat):
        return ops.logical_and(
            ops.less(index, max_length), ops.logical_not(ops.all(finished))
        )

    def body(index, last, tokens, scores, lengths, finished, attention, *flat):
        state = keras.tree.pack_sequence_as(structure, list(flat))
        logits, state, weights = stepper.step(last, index, state, constants)
        log_probs = _allowed(logits)
        vocabulary = log_probs.shape[-1]
        log_probs = ops.reshape(log_probs, (batch, beam_width, vocabulary))
        frozen = ops.where(ops.arange(vocabulary) == PAD_ID, 0.0, _NEG_INF)
        log_probs = ops.where(finished[..., None], frozen, log_probs)
        candidates = ops.reshape(scores[..., None] + log_probs, (batch, -1))
        new_lengths = ops.where(finished, lengths, lengths + 1)
        ranked = ops.reshape(
            ops.reshape(candidates, (batch, beam_width, vocabulary))
            / length_penalty_of(new_lengths, alpha)[..., None],
            (batch, -1),
        )
        _, best = ops.top_k(ranked, beam_width)
        best = ops.cast(best, "int32")
        beam_index, token = best // vocabulary, best % vocabulary
        scores = ops.take_along_axis(candidates, best, axis=1)
        lengths = ops.take_along_axis(new_lengths, beam_index, axis=1)
        finished = ops.take_along_axis(finished, beam_index, axis=1)
        finished = ops.logical_or(finished, ops.equal(token, end_id))
        flat_token = ops.reshape(token, (beams, 1))
        tokens = _by_beam(tokens, beam_index, batch, beam_width)
        tokens = ops.slice_update(tokens, (0, index), flat_token)
        weights = _by_beam(ops.cast(weights, "float32"), beam_index, batch, beam_width)
        was_frozen = ops.equal(flat_token, PAD_ID)
        weights = ops.where(was_frozen, 0.0, weights)
        attention = _by_beam(attention, beam_index, batch, beam_width)
        attention = ops.slice_update(attention, (0, index, 0), weights[:, None])
        flat = [
            _by_beam(x, beam_index, batch, beam_width)
            for x in keras.tree.flatten(state)
        ]
        return (
            index + 1,
            flat_token,
            tokens,
            scores,
            lengths,
            finished,
            attention,
            *flat,
        )

    loop = (
        0,
        _start_tokens(beams),
        tokens,
        scores,
        lengths,
        finished,
        attention,
        *flat_state,
    )
    result = ops.while_loop(cond, body, loop, maximum_iterations=max_length)
    tokens, scores, attention = result[2], result[3], result[6]
    # Beams stay sorted by their ranking, so beam 0 is the best.
    tokens = ops.reshape(tokens, (batch, beam_width, max_length))[:, 0]
    scores = scores[:, 0]
    if return_attention:
        attention = ops.reshape(
            attention, (batch, beam_width, max_length, source_length)
        )[:, 0]
        return tokens, scores, attention
    return tokens, scores

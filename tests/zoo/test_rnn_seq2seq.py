"""`rnn_seq2seq`: the builder, and incremental decoding with `RNNStepper`."""

import keras
import numpy as np
import pytest

from zoo.rnn_seq2seq.model import rnn_seq2seq
from zoo.rnn_seq2seq.search_space import search_space
from zoo.rnn_seq2seq.variants import TRANSLATION_VARIANTS
from zoo.seq2seq.decoding import PAD_ID, START_ID, beam_search, greedy_search
from zoo.seq2seq.rnn_stepper import RNNStepper
from zoo.seq2seq.translator import stepper_for
from zoo.seq2seq.uncached_stepper import UncachedStepper

TINY = TRANSLATION_VARIANTS["rnn_seq2seq_tiny"]
VOCABULARY = TINY["target_vocabulary_size"]
END_ID = 3
MAX_LENGTH = 10
# Real tokens of each source row (the rest is padding).
SOURCE_LENGTHS = (9, 6, 3, 1)


def _scale_up(model):
    """Larger weights, so that the logits are far from flat."""
    for weight in model.weights:
        scale = 20.0 if "embedding" in weight.path else 3.0
        scale = 10.0 if "logits" in weight.path else scale
        weight.assign(weight * scale)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(7)
    model = rnn_seq2seq(**TINY)
    _scale_up(model)
    return model


@pytest.fixture(scope="module")
def greedy(model):
    """Greedy tokens and attention weights of `_source()`."""
    tokens, weights = greedy_search(
        RNNStepper(model), _source(), MAX_LENGTH, END_ID, return_attention=True
    )
    return np.asarray(tokens), np.asarray(weights)


def _source(lengths=SOURCE_LENGTHS, seed=0):
    rng = np.random.default_rng(seed)
    source = rng.integers(4, TINY["source_vocabulary_size"], (len(lengths), 9))
    for row, length in zip(source, lengths, strict=True):
        row[length:] = 0
    return source.astype("int32")


def _decoder_input(tokens):
    """`[START] y1 .. y_{n-1}` of generated `(B, n)` tokens."""
    start = np.full((tokens.shape[0], 1), START_ID, "int32")
    return np.concatenate([start, np.asarray(tokens)[:, :-1]], axis=1)


def _logits(model, source, target):
    return keras.ops.convert_to_numpy(model({"source": source, "target": target}))


def _assert_ends_cleanly(tokens):
    """After a row's first end token only padding follows."""
    for row in np.asarray(tokens):
        ends = np.flatnonzero(row == END_ID)
        if ends.size:
            assert np.all(row[ends[0] + 1 :] == PAD_ID), row
        else:
            assert np.all(row != PAD_ID), row


def test_builder_layers_and_shapes(model):
    for name in (
        "source_embedding",
        "encoder",
        "bridge",
        "target_embedding",
        "decoder_gru",
        "attention",
        "attention_projection",
        "logits",
    ):
        model.get_layer(name)
    assert model.get_layer("encoder").forward_layer.units == TINY["units"] // 2
    assert model.get_layer("attention").units == TINY["units"]
    logits = model({"source": _source(), "target": _source()[:, :5]})
    assert tuple(logits.shape) == (4, 5, VOCABULARY)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert isinstance(stepper_for(model), RNNStepper)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units=0"),
        ({"units": 33}, "units=33"),
        ({"attention_units": 0}, "attention_units=0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"max_target_length": -1}, "max_target_length=-1"),
        ({"source_vocabulary_size": 2.0}, "source_vocabulary_size=2.0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rnn_seq2seq(**{**TINY, **kwargs})


def test_stepper_logits_equal_teacher_forcing(model):
    source = _source()
    rng = np.random.default_rng(1)
    target = rng.integers(4, VOCABULARY, (4, 8)).astype("int32")
    target[:, 0] = START_ID
    expected = _logits(model, source, target)
    stepper = RNNStepper(model)
    state, constants = stepper.start(source, target.shape[1])
    for index in range(target.shape[1]):
        logits, state, weights = stepper.step(
            target[:, index : index + 1], index, state, constants
        )
        assert keras.backend.standardize_dtype(logits.dtype) == "float32"
        assert tuple(weights.shape) == source.shape
        np.testing.assert_allclose(logits, expected[:, index], atol=1e-5)
    # Not vacuous: the logits differ between steps and rows.
    assert np.std(expected) > 1.0


def test_greedy_equals_uncached_and_beam_of_one(model, greedy):
    source, tokens = _source(), greedy[0]
    uncached = greedy_search(UncachedStepper(model), source, MAX_LENGTH, END_ID)
    np.testing.assert_array_equal(tokens, uncached)
    beam, _ = beam_search(RNNStepper(model), source, MAX_LENGTH, END_ID, beam_width=1)
    np.testing.assert_array_equal(beam, tokens)
    assert len(np.unique(tokens)) > 8, tokens


def test_beam_search_equals_uncached(model):
    source = _source()[:2]
    cached = beam_search(RNNStepper(model), source, 6, END_ID, beam_width=3)
    uncached = beam_search(UncachedStepper(model), source, 6, END_ID, beam_width=3)
    np.testing.assert_array_equal(cached[0], uncached[0])
    np.testing.assert_allclose(cached[1], uncached[1], atol=1e-4)


# A one-token source has a softmax over one key, which Keras warns about.
@pytest.mark.filterwarnings("ignore:You are using a softmax over axis")
def test_batch_equals_one_by_one(model, greedy):
    source, batch = _source(), greedy[0]
    stepper = RNNStepper(model)
    for i, length in enumerate(SOURCE_LENGTHS):
        alone = greedy_search(stepper, source[i : i + 1, :length], MAX_LENGTH, END_ID)
        np.testing.assert_array_equal(alone[0], batch[i])


def test_decoding_stops_at_the_end_token(model, greedy):
    source, free = _source(), greedy[0]
    stepper = RNNStepper(model)
    assert END_ID not in free[0]
    # Margin of the best other token over the end token along row 0's path.
    logits = _logits(model, source, _decoder_input(free))[0]
    logits[:, [PAD_ID, START_ID]] = -np.inf
    others = np.delete(logits, END_ID, axis=1).max(axis=1)
    gaps = others - logits[:, END_ID]
    assert gaps[0] > gaps[1:].min()
    # A bias on the end token between the first gap and the smallest later
    # one: the path is unchanged until the first step whose gap is below it.
    bias = (gaps[0] + gaps[1:].min()) / 2
    stop = int(np.flatnonzero(gaps < bias)[0])
    dense = model.get_layer("logits")
    original = keras.ops.convert_to_numpy(dense.bias)
    try:
        dense.bias.assign(original + bias * (np.arange(VOCABULARY) == END_ID))
        tokens = np.asarray(greedy_search(stepper, source, MAX_LENGTH, END_ID))
        beams, _ = beam_search(stepper, source, MAX_LENGTH, END_ID, beam_width=3)
        dense.bias.assign(original + 1e3 * (np.arange(VOCABULARY) == END_ID))
        at_once = np.asarray(greedy_search(stepper, source, MAX_LENGTH, END_ID))
    finally:
        dense.bias.assign(original)
    assert 1 <= stop < MAX_LENGTH
    np.testing.assert_array_equal(tokens[0, :stop], free[0, :stop])
    assert tokens[0, stop] == END_ID
    assert np.all(tokens[0, stop + 1 :] == PAD_ID)
    assert tokens.shape == beams.shape == (len(SOURCE_LENGTHS), MAX_LENGTH)
    _assert_ends_cleanly(tokens)
    _assert_ends_cleanly(beams)
    _assert_ends_cleanly(free)
    expected = np.zeros_like(at_once)
    expected[:, 0] = END_ID
    np.testing.assert_array_equal(at_once, expected)


def test_attention_weights_cover_the_real_source_tokens(greedy):
    source, (tokens, weights) = _source(), greedy
    assert weights.shape == (len(SOURCE_LENGTHS), MAX_LENGTH, source.shape[1])
    generated = tokens != PAD_ID
    real = source != PAD_ID
    totals = (weights * real[:, None]).sum(-1)
    np.testing.assert_allclose(totals[generated], 1.0, atol=1e-5)
    assert np.all(weights[~generated] == 0.0)
    assert np.all(weights * ~real[:, None] == 0.0)
    assert np.all(weights >= 0.0)


def test_beam_search_compiles_with_xla(model):
    source = _source()
    stepper = RNNStepper(model)

    def decode(source):
        return beam_search(stepper, source, MAX_LENGTH, END_ID, beam_width=3)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(decode, jit_compile=True)
    elif keras.backend.backend() == "jax":
        import jax

        compiled = jax.jit(decode)
    else:
        pytest.skip(f"no XLA compilation on {keras.backend.backend()}")
    tokens, scores = compiled(keras.ops.convert_to_tensor(source))
    expected_tokens, expected_scores = decode(source)
    np.testing.assert_array_equal(tokens, expected_tokens)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-4)


def test_padding_does_not_change_the_logits(model):
    source = _source()
    rng = np.random.default_rng(2)
    target = rng.integers(4, VOCABULARY, (4, 6)).astype("int32")
    target[:, 0] = START_ID
    expected = _logits(model, source, target)
    padded_source = np.pad(source, ((0, 0), (0, 5)))
    padded_target = np.pad(target, ((0, 0), (0, 3)))
    padded = _logits(model, padded_source, padded_target)
    np.testing.assert_allclose(padded[:, : target.shape[1]], expected, atol=1e-5)
    # Not vacuous: a real source token does change them.
    changed = source.copy()
    changed[:, 0] = 5
    assert not np.allclose(_logits(model, changed, target), expected, atol=1e-3)


def test_config_and_keras_round_trip(model, greedy, tmp_path):
    source = _source()
    target = _decoder_input(_source(seed=3)[:, :6])
    expected = _logits(model, source, target)
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(_logits(clone, source, target), expected, atol=1e-6)
    path = tmp_path / "rnn_seq2seq.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_logits(reloaded, source, target), expected, atol=1e-6)
    tokens = greedy_search(RNNStepper(reloaded), source, MAX_LENGTH, END_ID)
    np.testing.assert_array_equal(tokens, greedy[0])


def test_mixed_bfloat16_decoding():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = rnn_seq2seq(**TINY)
    _scale_up(model)
    source = _source()
    assert model.get_layer("attention").compute_dtype == "bfloat16"
    target = np.full((4, 1), START_ID, "int32")
    expected = _logits(model, source, target)[:, 0]
    stepper = RNNStepper(model)
    state, constants = stepper.start(source, MAX_LENGTH)
    logits, state, weights = stepper.step(target, 0, state, constants)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert keras.backend.standardize_dtype(weights.dtype) == "float32"
    np.testing.assert_allclose(logits, expected, atol=0.1, rtol=0.05)
    tokens, weights = greedy_search(
        stepper, source, MAX_LENGTH, END_ID, return_attention=True
    )
    assert tokens.shape == (4, MAX_LENGTH)
    assert np.all(np.isfinite(np.asarray(weights)))


def test_search_space_defaults_and_overrides():
    import keras_tuner

    config = {"embedding_dim": 48, "units": 96, "dropout": 0.15}
    optimizer = {"name": "adam", "learning_rate": 1e-3}
    args, _ = search_space(keras_tuner.HyperParameters(), config, optimizer)
    assert args == config
    hp = keras_tuner.HyperParameters()
    hp.Fixed("units", 64)
    hp.Fixed("dropout", 0.0)
    args, _ = search_space(hp, config, optimizer)
    assert args == {"embedding_dim": 48, "units": 64, "dropout": 0.0}
    rnn_seq2seq(**{**TINY, **args})

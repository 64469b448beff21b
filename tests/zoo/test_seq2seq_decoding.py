"""Greedy and beam search with the transformer's key/value caches."""

import keras
import numpy as np
import pytest
from keras import ops

from zoo.seq2seq.decoding import beam_search, greedy_search
from zoo.seq2seq.transformer_stepper import TransformerStepper
from zoo.seq2seq.uncached_stepper import UncachedStepper
from zoo.transformer_seq2seq.model import transformer_seq2seq

END = 3
SOURCE = np.array([[5, 6, 7, 8, 0], [9, 10, 11, 0, 0], [12, 4, 5, 6, 7]], "int32")


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "copy"])
def model(request):
    keras.utils.set_random_seed(0)
    model = transformer_seq2seq(
        50,
        40,
        10,
        12,
        hidden_dim=32,
        num_encoder_layers=1,
        num_decoder_layers=2,
        num_heads=4,
        intermediate_dim=64,
        dropout=0.0,
        copy_source=request.param,
    )
    # Larger weights: logits far from uniform, so that decisions are clear.
    for w in model.trainable_weights:
        w.assign(ops.convert_to_numpy(w) * 3)
    if request.param:
        # Every source id copies onto a target id (ids 4-39, some shared).
        copy_map = np.where(np.arange(50) < 4, 0, 4 + np.arange(50) % 36)
        model.get_layer("copy").source_to_target.assign(copy_map.astype("int32"))
    return model


def _np(x):
    return ops.convert_to_numpy(x)


def test_cached_logits_equal_the_full_model_at_every_step(model):
    target = np.array([[2, 7, 8, 9, 10, 11]] * 3, "int32")
    full = _np(model({"source": SOURCE, "target": target}))
    stepper = TransformerStepper(model)
    state, constants = stepper.start(SOURCE, 6)
    for i in range(6):
        logits, state, weights = stepper.step(target[:, i : i + 1], i, state, constants)
        # Float32 rounding of other matmul shapes: 1e-5 of the logits' scale.
        scale = np.abs(full[:, i]).max()
        np.testing.assert_allclose(
            _np(logits), full[:, i], atol=1e-5 * scale, err_msg=f"step {i}"
        )
        weights = _np(weights)
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(weights[SOURCE == 0], 0.0)


def test_cached_and_uncached_decoding_give_the_same_tokens(model):
    cached = _np(greedy_search(TransformerStepper(model), SOURCE, 12, END))
    uncached = _np(greedy_search(UncachedStepper(model), SOURCE, 12, END))
    np.testing.assert_array_equal(cached, uncached)
    assert len({tuple(row) for row in cached}) == 3, "three different outputs"


def test_beam_width_one_is_greedy(model):
    stepper = TransformerStepper(model)
    greedy = _np(greedy_search(stepper, SOURCE, 12, END))
    tokens, _ = beam_search(stepper, SOURCE, 12, END, beam_width=1)
    np.testing.assert_array_equal(_np(tokens), greedy)


@pytest.mark.parametrize("beam_width", [1, 4])
def test_a_batch_equals_its_sentences_one_by_one(model, beam_width):
    stepper = TransformerStepper(model)
    tokens, scores, attention = beam_search(
        stepper, SOURCE, 12, END, beam_width=beam_width, return_attention=True
    )
    for i, row in enumerate(SOURCE):
        alone = row[row != 0][None]
        one, score, weights = beam_search(
            stepper, alone, 12, END, beam_width=beam_width, return_attention=True
        )
        np.testing.assert_array_equal(_np(one)[0], _np(tokens)[i])
        np.testing.assert_allclose(_np(score)[0], _np(scores)[i], rtol=1e-5)
        width = alone.shape[1]
        np.testing.assert_allclose(
            _np(weights)[0], _np(attention)[i][:, :width], atol=1e-5
        )


def test_beam_search_scores_at_least_greedy(model):
    stepper = TransformerStepper(model)
    greedy, greedy_score = beam_search(
        stepper, SOURCE, 12, END, beam_width=1, length_penalty=0.0
    )
    _, beam_score = beam_search(
        stepper, SOURCE, 12, END, beam_width=4, length_penalty=0.0
    )
    assert np.all(_np(beam_score) >= _np(greedy_score) - 1e-5)


def _biased(model, token):
    """A clone of `model` whose logits always pick `token` (zero kernel)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    dense = copy.get_layer("logits")
    bias = np.zeros(dense.bias.shape, "float32")
    bias[token] = 10.0
    dense.kernel.assign(np.zeros(dense.kernel.shape, "float32"))
    dense.bias.assign(bias)
    if any(layer.name == "copy" for layer in copy.layers):
        # Generate, never copy: generation probability sigmoid(30).
        gate = copy.get_layer("copy").gate
        gate.kernel.assign(np.zeros(gate.kernel.shape, "float32"))
        gate.bias.assign(np.full(gate.bias.shape, 30.0, "float32"))
    return copy


@pytest.mark.parametrize("beam_width", [1, 3])
def test_decoding_stops_at_the_end_token_and_at_max_length(model, beam_width):
    ended = TransformerStepper(_biased(model, END))
    tokens = _np(beam_search(ended, SOURCE, 7, END, beam_width=beam_width)[0])
    np.testing.assert_array_equal(tokens, [[END] + [0] * 6] * 3)
    endless = TransformerStepper(_biased(model, 9))
    tokens = _np(beam_search(endless, SOURCE, 7, END, beam_width=beam_width)[0])
    np.testing.assert_array_equal(tokens, np.full((3, 7), 9))


def test_padding_and_start_are_never_generated(model):
    stepper = TransformerStepper(_biased(model, 0))
    tokens = _np(greedy_search(stepper, SOURCE, 5, END))
    assert not np.isin(tokens, [0, 2]).any()


def test_the_decoder_never_sees_the_future(model):
    target = np.array([[2, 7, 8, 9, 10]], "int32")
    changed = target.copy()
    changed[0, 3:] = [30, 31]
    a = _np(model({"source": SOURCE[:1], "target": target}))
    b = _np(model({"source": SOURCE[:1], "target": changed}))
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-6)
    assert np.abs(a[:, 3:] - b[:, 3:]).max() > 1e-3


def test_decoding_compiles_with_xla(model):
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function is TensorFlow's")
    stepper = TransformerStepper(model)
    eager = _np(beam_search(stepper, SOURCE, 12, END, beam_width=3)[0])
    compiled = tf.function(
        lambda s: beam_search(stepper, s, 12, END, beam_width=3)[0], jit_compile=True
    )
    np.testing.assert_array_equal(_np(compiled(SOURCE)), eager)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(max_length=0), "max_length"),
        (dict(beam_width=0), "beam_width"),
        (dict(length_penalty=-1.0), "length_penalty"),
    ],
)
def test_bad_arguments(model, kwargs, name):
    args = dict(max_length=5, beam_width=2, length_penalty=0.6) | kwargs
    with pytest.raises(ValueError, match=name):
        beam_search(TransformerStepper(model), SOURCE, end_id=END, **args)

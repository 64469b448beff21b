import keras
import numpy as np
import pytest
from keras import ops

from layers.pointer_generator import PointerGenerator
from tests.layers.layer_checks import run_layer_test

S_VOCAB, T_VOCAB, D, E = 12, 9, 6, 5
SOURCE = np.array([[4, 7, 7, 11, 0], [5, 1, 9, 0, 0]], "int32")
# Source id -> target id: 7 and 11 share target 6; 1 ([UNK]) copies nothing.
MAP = np.array([0, 0, 0, 0, 4, 5, 0, 6, 0, 8, 0, 6], "int32")


def _inputs(seed=0, batch=2, steps=3):
    rng = np.random.default_rng(seed)
    return {
        "logits": rng.normal(size=(batch, steps, T_VOCAB)).astype("float32"),
        "decoder_sequence": rng.normal(size=(batch, steps, D)).astype("float32"),
        "encoder_sequence": rng.normal(size=(batch, 5, E)).astype("float32"),
        "source_ids": SOURCE[:batch],
    }


def _layer(**kwargs):
    layer = PointerGenerator(
        S_VOCAB, T_VOCAB, key_dim=4, kernel_initializer="random_normal", **kwargs
    )
    layer(**_inputs())
    layer.source_to_target.assign(MAP)
    return layer


def reference(layer, logits, decoder_sequence, encoder_sequence, source_ids):
    """See et al.'s mixture in float64, one step and one source token at a time."""
    w = {
        v.path.split("/")[-2] + "/" + v.name: ops.convert_to_numpy(v)
        for v in layer.weights
    }
    wq, wk = w["query/kernel"].astype("float64"), w["key/kernel"].astype("float64")
    wg, bg = w["gate/kernel"].astype("float64"), w["gate/bias"].astype("float64")
    out = np.zeros(logits.shape, "float64")
    for b in range(logits.shape[0]):
        real = [s for s in range(source_ids.shape[1]) if source_ids[b, s]]
        keys = encoder_sequence[b].astype("float64") @ wk
        for t in range(logits.shape[1]):
            h = decoder_sequence[b, t].astype("float64")
            scores = np.array([(h @ wq) @ keys[s] / 2.0 for s in real])
            a = np.exp(scores - scores.max())
            a /= a.sum()
            context = sum(a[i] * encoder_sequence[b, s] for i, s in enumerate(real))
            p = 1 / (1 + np.exp(-(np.concatenate([h, context]) @ wg + bg)[0]))
            z = logits[b, t].astype("float64")
            probs = p * np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            for i, s in enumerate(real):
                probs[MAP[source_ids[b, s]]] += (1 - p) * a[i]
            out[b, t] = np.log(np.maximum(probs, 1e-12))
    return out


def test_layer():
    run_layer_test(
        PointerGenerator,
        {"source_vocabulary_size": S_VOCAB, "target_vocabulary_size": T_VOCAB},
        _inputs(),
        (2, 3, T_VOCAB),
        expected_num_trainable_weights=4,
        run_mixed_precision=False,
    )


def test_matches_the_float64_reference():
    layer = _layer()
    inputs = _inputs(seed=1)
    out = ops.convert_to_numpy(layer(**inputs))
    np.testing.assert_allclose(out, reference(layer, **inputs), atol=1e-5)


def test_output_is_a_distribution_with_copies_on_mapped_words():
    layer = _layer()
    out, weights = layer(**_inputs(), return_attention_scores=True)
    probs = np.exp(ops.convert_to_numpy(out))
    weights = ops.convert_to_numpy(weights)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    # Source padding gets no copy weight; [UNK] (id 1) copies onto padding.
    assert np.all(weights[0, :, 4] == 0) and np.all(weights[1, :, 3:] == 0)
    words_only = layer(**dict(_inputs(), source_ids=np.zeros_like(SOURCE)))
    words_only = np.exp(ops.convert_to_numpy(words_only))
    # Target 6 gets copies of source 7 (twice) and 11 in sentence 0 only.
    assert np.all(probs[0, :, 6] > words_only[0, :, 6])


def test_source_padding_changes_nothing():
    layer = _layer()
    inputs = _inputs()
    longer = dict(inputs)
    longer["source_ids"] = np.pad(SOURCE, ((0, 0), (0, 3)))
    longer["encoder_sequence"] = np.pad(
        inputs["encoder_sequence"], ((0, 0), (0, 3), (0, 0)), constant_values=7.0
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(**longer)),
        ops.convert_to_numpy(layer(**inputs)),
        atol=1e-6,
    )


def test_an_all_padding_source_only_generates():
    layer = _layer()
    inputs = dict(_inputs(), source_ids=np.zeros_like(SOURCE))
    out = np.exp(ops.convert_to_numpy(layer(**inputs)))
    assert np.all(np.isfinite(out)) and np.all(out.sum(-1) < 1.0)
    words = ops.convert_to_numpy(ops.softmax(inputs["logits"]))
    ratio = out / words  # the generation probability, the same for every word
    np.testing.assert_allclose(ratio, ratio[..., :1] * np.ones_like(ratio), rtol=1e-4)


def test_keys_computed_once_give_the_same_output():
    layer = _layer()
    inputs = _inputs()
    keys = layer.compute_keys(inputs["encoder_sequence"])
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(**inputs, keys=keys)),
        ops.convert_to_numpy(layer(**inputs)),
        atol=1e-6,
    )


def test_float32_output_under_mixed_bfloat16():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = _layer()
        out = layer(**_inputs())
    finally:
        keras.config.set_dtype_policy("float32")
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_allclose(np.exp(ops.convert_to_numpy(out)).sum(-1), 1, atol=1e-3)


def test_map_and_int8_reload_from_keras(tmp_path):
    layer = _layer()
    inputs = _inputs()
    symbolic = {
        k: keras.Input(v.shape[1:], dtype=str(v.dtype), name=k)
        for k, v in inputs.items()
    }
    model = keras.Model(symbolic, layer(**symbolic))
    model.quantize("int8")
    expected = ops.convert_to_numpy(model(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    copy = loaded.layers[-1]
    np.testing.assert_array_equal(ops.convert_to_numpy(copy.source_to_target), MAP)
    assert sum(v.dtype == "int8" for v in loaded.weights) == 3
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(inputs)), expected, atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source_vocabulary_size": 0}, "source_vocabulary_size=0"),
        ({"target_vocabulary_size": 2.5}, "target_vocabulary_size=2.5"),
        ({"key_dim": -1}, "key_dim=-1"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    arguments = {"source_vocabulary_size": 4, "target_vocabulary_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        PointerGenerator(**arguments)


def test_logits_of_another_vocabulary_are_refused():
    with pytest.raises(ValueError, match="target_vocabulary_size"):
        PointerGenerator(S_VOCAB, T_VOCAB + 1)(**_inputs())

import keras
import numpy as np
import pytest

from layers.attention_pooling import AttentionPooling
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import masked_softmax

B, T, D = 3, 7, 5


def _data(seed=0, length=T):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, length, D)).astype("float32")
    mask = np.ones((B, length), dtype=bool)
    mask[0, 4:] = False
    mask[2, :2] = False
    return x, mask


def _set_random_weights(layer, x, seed=1):
    layer(x)
    rng = np.random.default_rng(seed)
    weights = {}
    for var in layer.trainable_weights:
        value = rng.normal(size=var.shape).astype("float32")
        var.assign(value)
        weights[var.name] = value.astype("float64")
    return weights


def _reference(w, x, mask):
    x = x.astype("float64")
    if "kernel" in w:
        hidden = np.tanh(x @ w["kernel"] + w.get("bias", 0.0))
    else:
        hidden = x
    weights = masked_softmax(hidden @ w["score_vector"], mask)
    return np.einsum("bt,btd->bd", weights, x), weights


@pytest.mark.parametrize(
    "kwargs, num_weights",
    [({}, 1), ({"units": 4}, 3), ({"units": 4, "use_bias": False}, 2)],
)
def test_layer_checks(kwargs, num_weights):
    x, mask = _data()
    run_layer_test(
        AttentionPooling,
        kwargs,
        {"inputs": x, "mask": mask},
        expected_output_shape=(B, D),
        expected_num_trainable_weights=num_weights,
    )


@pytest.mark.parametrize("kwargs", [{}, {"units": 4}, {"units": 3, "use_bias": False}])
def test_matches_numpy_reference(kwargs):
    x, mask = _data()
    layer = AttentionPooling(**kwargs)
    w = _set_random_weights(layer, x)
    out, weights = layer(x, mask=mask, return_attention_scores=True)
    expected, expected_weights = _reference(w, x, mask)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected, atol=1e-5)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(weights), expected_weights, atol=1e-6
    )


def test_fixed_weights():
    # Score vector [1, 0]: the scores are the first features [1, 0, 2, 5], the
    # last step is masked. Weights [e, 1, e^2] / (e + 1 + e^2).
    x = np.array([[[1.0, 3.0], [0.0, -3.0], [2.0, 6.0], [5.0, 5.0]]], "float32")
    layer = AttentionPooling()
    layer(x)
    layer.set_weights([np.array([1.0, 0.0])])
    out, weights = layer(
        x, mask=np.array([[True, True, True, False]]), return_attention_scores=True
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(weights),
        [[0.244728, 0.090031, 0.665241, 0.0]],
        atol=1e-6,
    )
    # [0.244728 + 2 * 0.665241, 3 * (0.244728 - 0.090031 + 2 * 0.665241)].
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out), [[1.575210, 4.455539]], atol=1e-5
    )


@pytest.mark.parametrize("units", [None, 4])
def test_masked_steps_do_not_change_output(units):
    x, mask = _data()
    layer = AttentionPooling(units)
    out = keras.ops.convert_to_numpy(layer(x, mask=mask))
    unmasked_differs = []
    for value in (100.0, -100.0):
        changed = x.copy()
        changed[~mask] = value
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(layer(changed, mask=mask)), out, atol=1e-6
        )
        unmasked_differs.append(
            not np.allclose(keras.ops.convert_to_numpy(layer(changed)), out)
        )
    assert any(unmasked_differs)


@pytest.mark.parametrize("units", [None, 4])
def test_permutation_invariance(units):
    x, _ = _data()
    layer = AttentionPooling(units)
    perm = np.random.default_rng(3).permutation(T)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x[:, perm])),
        keras.ops.convert_to_numpy(layer(x)),
        atol=1e-6,
    )


def test_fully_masked_sequence_gives_zeros():
    x, mask = _data()
    mask[1] = False
    out, weights = AttentionPooling(4)(x, mask=mask, return_attention_scores=True)
    out, weights = keras.ops.convert_to_numpy(out), keras.ops.convert_to_numpy(weights)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_array_equal(weights[1], 0.0)
    np.testing.assert_allclose(weights[[0, 2]].sum(-1), 1.0, atol=1e-6)
    assert not np.any(out[0] == 0.0)


def test_pools_rnn_outputs_with_keras_mask():
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 20, size=(B, T))
    tokens[0, 3:] = 0
    inputs = keras.Input((T,), dtype="int32")
    embedded = keras.layers.Embedding(20, D, mask_zero=True)(inputs)
    sequence = keras.layers.GRU(D, return_sequences=True)(embedded)
    layer = AttentionPooling(4)
    pooled = layer(sequence)
    assert getattr(pooled, "_keras_mask", None) is None
    model = keras.Model(inputs, pooled)
    states = keras.ops.convert_to_numpy(keras.Model(inputs, sequence)(tokens))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(tokens)),
        keras.ops.convert_to_numpy(layer(states, mask=tokens != 0)),
        atol=1e-5,
    )
    unmasked = keras.ops.convert_to_numpy(layer(states))
    assert not np.allclose(unmasked, keras.ops.convert_to_numpy(model(tokens)))


def test_symbolic_outputs_and_dynamic_length():
    inputs = keras.Input((None, D))
    pooled, weights = AttentionPooling(4)(inputs, return_attention_scores=True)
    assert tuple(pooled.shape) == (None, D)
    assert tuple(weights.shape) == (None, None)
    model = keras.Model(inputs, [pooled, weights])
    for length in (2, 9):
        x, _ = _data(length=length)
        out, w = model.predict_on_batch(x)
        assert out.shape == (B, D) and w.shape == (B, length)


def test_mixed_bfloat16_is_finite():
    keras.config.set_dtype_policy("mixed_bfloat16")
    x, mask = _data()
    mask[1] = False
    out = AttentionPooling(4)(x * 50.0, mask=mask)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out).astype("float32")))


@pytest.mark.parametrize("units", [0, -3, 2.0])
def test_bad_units(units):
    with pytest.raises(ValueError, match=f"units={units}"):
        AttentionPooling(units)


def test_bad_inputs():
    x, _ = _data()
    with pytest.raises(ValueError, match="rank 3"):
        AttentionPooling()(x[0])
    with pytest.raises(ValueError, match="mask"):
        AttentionPooling()(x, mask=np.ones((B, T + 2), dtype=bool))

import keras
import numpy as np
import pytest

from layers.additive_attention import AdditiveAttention
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import masked_softmax, np_weights

B, T, S, DQ, DV, DK, UNITS = 2, 3, 5, 4, 6, 3, 8


def _data(seed=0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(B, T, DQ)).astype("float32")
    value = rng.normal(size=(B, S, DV)).astype("float32")
    key = rng.normal(size=(B, S, DK)).astype("float32")
    mask = np.ones((B, S), dtype=bool)
    mask[1, 3:] = False
    return query, value, key, mask


def _reference(layer, query, value, key=None, mask=None):
    """Float64 additive attention straight from the definition."""
    if layer.use_bias:
        wq, wk, bias, v = np_weights(layer)
    else:
        (wq, wk, v), bias = np_weights(layer), 0.0
    key = value if key is None else key
    q = query.astype("float64") @ wq + bias
    k = key.astype("float64") @ wk
    scores = np.zeros((query.shape[0], query.shape[1], key.shape[1]))
    for b, t, s in np.ndindex(scores.shape):
        scores[b, t, s] = np.tanh(q[b, t] + k[b, s]) @ v[:, 0]
    keep = None if mask is None else mask[:, None, :]
    weights = masked_softmax(scores, keep)
    return weights @ value.astype("float64"), weights


def _random_layer(query, value, key=None, seed=1, **kwargs):
    layer = AdditiveAttention(UNITS, **kwargs)
    layer(query, value, key=key)
    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    return layer


@pytest.mark.parametrize(
    "kwargs, with_key, num_weights",
    [({}, False, 4), ({"use_bias": False}, True, 3)],
)
def test_layer_checks(kwargs, with_key, num_weights):
    query, value, key, mask = _data()
    data = {"query": query, "value": value, "value_mask": mask}
    if with_key:
        data["key"] = key
    run_layer_test(
        AdditiveAttention,
        {"units": UNITS, **kwargs},
        data,
        expected_output_shape=(B, T, DV),
        expected_num_trainable_weights=num_weights,
    )


@pytest.mark.parametrize("use_bias, with_key", [(True, False), (False, True)])
def test_matches_float64_reference(use_bias, with_key):
    query, value, key, mask = _data()
    key = key if with_key else None
    layer = _random_layer(query, value, key, use_bias=use_bias)
    context, weights = layer(
        query, value, key=key, value_mask=mask, return_attention_scores=True
    )
    expected_context, expected_weights = _reference(layer, query, value, key, mask)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-5)
    np.testing.assert_allclose(context, expected_context, atol=1e-5)
    assert keras.backend.standardize_dtype(weights.dtype) == "float32"


def test_score_with_fixed_weights():
    # W_q = W_k = [[1]], b = 0, v = [1]: score(q, k) = tanh(q + k). The query
    # 0 against keys [0, atanh(0.5)] scores [0, 0.5].
    layer = AdditiveAttention(1)
    query = np.zeros((1, 1, 1), "float32")
    value = np.array([[[0.0], [np.arctanh(0.5)]]], "float32")
    layer(query, value)
    for weight in (layer.query_kernel, layer.key_kernel, layer.score_kernel):
        weight.assign(np.ones(weight.shape, "float32"))
    _, weights = layer(query, value, return_attention_scores=True)
    expected = np.exp([0.0, 0.5]) / np.exp([0.0, 0.5]).sum()
    np.testing.assert_allclose(np.asarray(weights)[0, 0], expected, atol=1e-6)


def test_masked_keys_get_zero_weight_and_do_not_matter():
    query, value, key, mask = _data()
    layer = _random_layer(query, value, key)
    context, weights = layer(
        query, value, key=key, value_mask=mask, return_attention_scores=True
    )
    weights = np.asarray(weights)
    assert np.all(weights[1, :, 3:] == 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    changed_value, changed_key = value.copy(), key.copy()
    changed_value[1, 3:] = 100.0
    changed_key[1, 3:] = -50.0
    other = layer(query, changed_value, key=changed_key, value_mask=mask)
    np.testing.assert_allclose(other, context, atol=1e-6)
    # Not vacuous: without the mask the change shows.
    unmasked = layer(query, changed_value, key=changed_key)
    assert not np.allclose(unmasked, context, atol=1e-3)


def test_keras_mask_of_value_is_used():
    query, _, _, mask = _data()
    tokens = np.where(mask, np.arange(1, S + 1), 0)
    value = keras.layers.Embedding(S + 1, DV, mask_zero=True)(tokens)
    layer = AdditiveAttention(UNITS)
    _, weights = layer(query, value, return_attention_scores=True)
    assert np.all(np.asarray(weights)[1, :, 3:] == 0.0)


def test_fully_masked_row_gives_finite_zeros():
    query, value, _, mask = _data()
    mask[0] = False
    layer = _random_layer(query, value)
    context, weights = layer(
        query, value, value_mask=mask, return_attention_scores=True
    )
    context, weights = np.asarray(context), np.asarray(weights)
    assert np.all(np.isfinite(context)) and np.all(np.isfinite(weights))
    assert np.all(context[0] == 0.0) and np.all(weights[0] == 0.0)
    assert np.all(context[1] != 0.0)


def test_cached_call_equals_call():
    query, value, key, mask = _data()
    layer = _random_layer(query, value, key)
    cache = layer.compute_cache(value, key)
    assert tuple(cache.shape) == (B, S, UNITS)
    expected = layer(
        query, value, key=key, value_mask=mask, return_attention_scores=True
    )
    cached = layer.cached_call(
        query, cache, value, value_mask=mask, return_attention_scores=True
    )
    for got, want in zip(cached, expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
    # One query at a time (a decoder step) gives the same rows.
    step = layer.cached_call(query[:, 1:2], cache, value, value_mask=mask)
    np.testing.assert_allclose(step, np.asarray(expected[0])[:, 1:2], atol=1e-6)


def test_query_mask_is_propagated():
    query = keras.Input((None, DQ))
    value = keras.Input((None, DV))
    tokens = keras.Input((None,), dtype="int32")
    masked = keras.layers.Embedding(10, DQ, mask_zero=True)(tokens)
    layer = AdditiveAttention(UNITS)
    assert layer(masked, value)._keras_mask is not None
    assert getattr(layer(query, value), "_keras_mask", None) is None


def test_config_and_keras_round_trip(tmp_path):
    query, value, _, mask = _data()
    layer = AdditiveAttention(
        UNITS,
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer="l2",
        name="additive",
    )
    config = layer.get_config()
    clone = AdditiveAttention.from_config(config)
    assert clone.get_config() == config
    assert clone.units == UNITS and clone.use_bias is False

    inputs = {
        "query": keras.Input((None, DQ), name="query"),
        "value": keras.Input((None, DV), name="value"),
        "value_mask": keras.Input((None,), dtype="bool", name="value_mask"),
    }
    outputs = layer(**inputs, return_attention_scores=True)
    model = keras.Model(inputs, outputs)
    data = {"query": query, "value": value, "value_mask": mask}
    expected = model(data)
    path = tmp_path / "additive.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    for got, want in zip(reloaded(data), expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_mixed_bfloat16():
    query, value, key, mask = _data()
    layer = AdditiveAttention(UNITS, dtype="mixed_bfloat16")
    context, weights = layer(
        query, value, key=key, value_mask=mask, return_attention_scores=True
    )
    assert keras.backend.standardize_dtype(context.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(weights.dtype) == "float32"
    assert all(w.dtype == "float32" for w in layer.weights)
    weights = np.asarray(weights)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(weights[1, :, 3:] == 0.0)
    cache = layer.compute_cache(value, key)
    assert keras.backend.standardize_dtype(cache.dtype) == "bfloat16"
    reference = AdditiveAttention(UNITS)
    reference(query, value, key=key)
    for source, target in zip(layer.weights, reference.weights, strict=True):
        target.assign(source)
    expected = reference(query, value, key=key, value_mask=mask)
    got = keras.ops.convert_to_numpy(keras.ops.cast(context, "float32"))
    np.testing.assert_allclose(got, expected, atol=5e-2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units=0"),
        ({"units": 2.5}, "units=2.5"),
        ({"units": True}, "units=True"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdditiveAttention(**kwargs)


def test_bad_inputs():
    query, value, key, mask = _data()
    layer = AdditiveAttention(UNITS)
    with pytest.raises(ValueError, match="compute_cache"):
        layer.compute_cache(value)
    with pytest.raises(ValueError, match="query.shape"):
        layer(query[0], value)
    with pytest.raises(ValueError, match="value.shape"):
        layer(query, value[0])
    layer(query, value)
    with pytest.raises(ValueError, match="value_mask.shape"):
        layer(query, value, value_mask=mask[:, :2])
    with pytest.raises(ValueError, match="value_mask.shape"):
        layer(query, value, value_mask=mask[0])
    with pytest.raises(ValueError, match="key.shape"):
        layer(query, value, key=key[:, :2])
    with pytest.raises(ValueError, match="cache.shape"):
        layer.cached_call(query, value, value)

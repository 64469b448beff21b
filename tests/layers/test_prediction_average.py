import os

import keras
import numpy as np
import pytest

from layers.prediction_average import PredictionAverage

K, B, C = 3, 4, 5


def _logits(seed=0, k=K, scale=3.0):
    rng = np.random.default_rng(seed)
    return [(scale * rng.normal(size=(B, C))).astype("float32") for _ in range(k)]


def _softmax(z):
    z = z.astype("float64")
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _reference(logits, weights=None):
    """float64 `log(sum_i w_i softmax(z_i))`."""
    w = np.ones(len(logits)) if weights is None else np.asarray(weights, "float64")
    w = w / w.sum()
    mean = sum(wi * _softmax(z) for wi, z in zip(w, logits, strict=True))
    return np.log(mean), mean


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 5.0], [0.2, 0.0, 0.8]])
def test_matches_numpy_reference(weights):
    logits = _logits()
    out = PredictionAverage(member_weights=weights)(logits)
    expected, mean = _reference(logits, weights)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_allclose(_numpy(out), expected, atol=1e-5)
    # softmax of the output is the weighted mean of the members' probabilities.
    np.testing.assert_allclose(_softmax(_numpy(out)), mean, atol=1e-6)


def test_is_stable_for_large_logits():
    logits = _logits(scale=300.0)
    out = _numpy(PredictionAverage(member_weights=[1, 3, 2])(logits))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, _reference(logits, [1, 3, 2])[0], atol=1e-4)


def test_one_member_gives_its_log_probabilities():
    (z,) = _logits(k=1)
    out = _numpy(PredictionAverage()([z]))
    np.testing.assert_allclose(out, np.log(_softmax(z)), atol=1e-5)


def test_permuting_members_with_their_weights_changes_nothing():
    logits, weights = _logits(), [0.5, 0.3, 0.2]
    out = _numpy(PredictionAverage(member_weights=weights)(logits))
    order = [2, 0, 1]
    permuted = PredictionAverage(member_weights=[weights[i] for i in order])(
        [logits[i] for i in order]
    )
    np.testing.assert_allclose(_numpy(permuted), out, atol=1e-6)
    # Not vacuous: permuting the members but not the weights changes it.
    moved = PredictionAverage(member_weights=weights)([logits[i] for i in order])
    assert np.abs(_numpy(moved) - out).max() > 1e-2


def test_a_member_of_weight_zero_changes_nothing():
    logits = _logits()
    out = _numpy(PredictionAverage(member_weights=[1.0, 0.0, 3.0])(logits))
    two = _numpy(PredictionAverage(member_weights=[1.0, 3.0])([logits[0], logits[2]]))
    np.testing.assert_allclose(out, two, atol=1e-6)
    # Not vacuous: the member does change the mean when it has a weight.
    some = _numpy(PredictionAverage(member_weights=[1.0, 0.5, 3.0])(logits))
    assert np.abs(some - out).max() > 1e-2


def test_weights_are_normalized():
    logits = _logits()
    out = _numpy(PredictionAverage(member_weights=[2, 4, 6])(logits))
    scaled = _numpy(PredictionAverage(member_weights=[1, 2, 3])(logits))
    np.testing.assert_allclose(out, scaled, atol=1e-6)


@pytest.mark.parametrize("policy", ["global", "layer"])
def test_mixed_bfloat16_gives_float32_logits(policy):
    kwargs = {}
    if policy == "global":
        keras.config.set_dtype_policy("mixed_bfloat16")
    else:
        kwargs["dtype"] = "mixed_bfloat16"
    layer = PredictionAverage(member_weights=[1, 2, 3], **kwargs)
    logits = _logits()
    out = layer(logits)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    values = _numpy(out)
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, _reference(logits, [1, 2, 3])[0], atol=1e-5)
    symbolic = layer([keras.Input((C,)) for _ in range(K)])
    assert keras.backend.standardize_dtype(symbolic.dtype) == "float32"


def test_config_round_trip():
    layer = PredictionAverage(member_weights=[1, 2, 3], name="logits")
    config = layer.get_config()
    assert config["member_weights"] == [1.0, 2.0, 3.0]
    clone = PredictionAverage.from_config(config)
    assert clone.get_config() == config
    assert clone.member_weights == layer.member_weights
    assert PredictionAverage().get_config()["member_weights"] is None


@pytest.mark.parametrize("weights", [None, [0.1, 0.6, 0.3]])
def test_keras_file_round_trip_with_safe_mode(weights, tmp_path):
    inputs = [keras.Input((C,), name=f"z{i}") for i in range(K)]
    outputs = PredictionAverage(member_weights=weights, name="logits")(inputs)
    model = keras.Model(inputs, outputs)
    logits = _logits()
    expected = _numpy(model(logits))
    path = os.path.join(tmp_path, "average.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert (
        reloaded.get_layer("logits").member_weights == model.layers[-1].member_weights
    )
    np.testing.assert_array_equal(_numpy(reloaded(logits)), expected)
    model.compile(jit_compile=True)
    np.testing.assert_allclose(model.predict_on_batch(logits), expected, atol=1e-6)


def test_gradients_reach_every_member():
    logits = [keras.ops.convert_to_tensor(z) for z in _logits()]
    layer = PredictionAverage(member_weights=[1, 2, 3])
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(logits)
            loss = keras.ops.sum(layer(logits)[:, 0])
        grads = tape.gradient(loss, logits)
    elif keras.backend.backend() == "jax":
        import jax

        grads = jax.grad(lambda zs: keras.ops.sum(layer(zs)[:, 0]))(logits)
    else:
        pytest.skip("gradients on TensorFlow and JAX only")
    for grad in grads:
        assert np.all(np.isfinite(_numpy(grad))) and np.abs(_numpy(grad)).max() > 0


def test_empty_batch():
    out = PredictionAverage()([np.zeros((0, C), "float32")] * 2)
    assert tuple(out.shape) == (0, C)


@pytest.mark.parametrize(
    "weights", [[], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")], "ab", 3, [True]]
)
def test_bad_weights_are_named(weights):
    with pytest.raises(ValueError, match=r"`weights`.*Received: weights="):
        PredictionAverage(member_weights=weights)


def test_weights_must_match_the_members():
    layer = PredictionAverage(member_weights=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"`weights`.*weights=\(1\.0, 2\.0\)"):
        layer(_logits())


@pytest.mark.parametrize(
    "inputs",
    [
        [],
        [np.zeros((B, C), "float32"), np.zeros((B, C + 1), "float32")],
        [np.zeros((B,), "float32")],
    ],
)
def test_bad_inputs_are_named(inputs):
    with pytest.raises(ValueError, match="`inputs`"):
        PredictionAverage()(inputs)

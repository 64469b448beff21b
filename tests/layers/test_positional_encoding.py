import keras
import numpy as np
import pytest
from keras import ops

from layers.positional_encoding import PositionalEncoding
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import keras_mask


def sinusoid_table(length, dim, max_wavelength=10000.0):
    """PE[p, 2i] = sin(p / w^(2i/d)), PE[p, 2i+1] = cos(p / w^(2i/d)), float64."""
    table = np.zeros((length, dim))
    for p in range(length):
        for j in range(dim):
            angle = p / max_wavelength ** (2 * (j // 2) / dim)
            table[p, j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
    return table


def test_layer():
    x = np.random.default_rng(1).normal(size=(2, 6, 8)).astype("float32")
    out = run_layer_test(
        PositionalEncoding,
        {"max_wavelength": 10000},
        x,
        (2, 6, 8),
        expected_num_trainable_weights=0,
    )
    np.testing.assert_allclose(out, x + sinusoid_table(6, 8), atol=1e-5)


def test_literal_values():
    # d = 4: features 0, 1 have frequency 1, features 2, 3 frequency
    # 10000 ** (-2 / 4) = 0.01.
    out = PositionalEncoding()(np.zeros((1, 3, 4), "float32"))
    expected = [
        [0.0, 1.0, 0.0, 1.0],
        [0.841471, 0.540302, 0.0099998, 0.999950],  # sin 1, cos 1, sin .01, ...
        [0.909297, -0.416147, 0.0199987, 0.999800],  # sin 2, cos 2, sin .02, ...
    ]
    np.testing.assert_allclose(ops.convert_to_numpy(out)[0], expected, atol=1e-6)
    # d = 3, wavelength 8: feature 2 is a sine of frequency 8 ** (-2 / 3) = 0.25.
    out = PositionalEncoding(8)(np.ones((1, 3, 3), "float32"))
    expected = [
        [1.0, 2.0, 1.0],
        [1.841471, 1.540302, 1.247404],  # 1 + (sin 1, cos 1, sin .25)
        [1.909297, 0.583853, 1.479426],  # 1 + (sin 2, cos 2, sin .5)
    ]
    np.testing.assert_allclose(ops.convert_to_numpy(out)[0], expected, atol=1e-6)


@pytest.mark.parametrize(
    "length, dim, max_wavelength", [(1, 4, 10000), (50, 16, 10000), (33, 7, 100.0)]
)
def test_matches_numpy_table(length, dim, max_wavelength):
    x = np.random.default_rng(2).normal(size=(3, length, dim)).astype("float32")
    out = ops.convert_to_numpy(PositionalEncoding(max_wavelength)(x))
    expected = x + sinusoid_table(length, dim, max_wavelength)[None]
    np.testing.assert_allclose(out, expected, atol=2e-5, rtol=0)


def test_any_length_at_call_time():
    layer = PositionalEncoding()
    inputs = keras.Input((None, 6))
    model = keras.Model(inputs, layer(inputs))
    for length in (3, 40, 7):
        x = np.zeros((2, length, 6), "float32")
        expected = np.broadcast_to(sinusoid_table(length, 6), x.shape)
        np.testing.assert_allclose(layer(x), expected, atol=2e-5)
        np.testing.assert_allclose(model.predict_on_batch(x), expected, atol=2e-5)


def test_passes_mask_through():
    x = np.ones((2, 4, 6), "float32")
    x[0, 2:] = 0.0
    masked = keras.layers.Masking(0.0)(x)
    out = PositionalEncoding()(masked)
    np.testing.assert_array_equal(keras_mask(out), [[1, 1, 0, 0], [1, 1, 1, 1]])


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(policy):
    keras.config.set_dtype_policy(policy)
    layer = PositionalEncoding()
    x = np.random.default_rng(3).normal(size=(2, 3000, 10)).astype("float32")
    out = layer(x)
    assert keras.backend.standardize_dtype(out.dtype) == layer.compute_dtype
    out = ops.convert_to_numpy(ops.cast(out, "float32"))
    assert np.all(np.isfinite(out))
    expected = x + sinusoid_table(3000, 10)
    # Error of the half-precision result, not of the float32 angles.
    np.testing.assert_allclose(out, expected, atol=0.1, rtol=0.02)


@pytest.mark.parametrize("value", [0, -5, True, "10000", None])
def test_bad_max_wavelength(value):
    with pytest.raises(ValueError, match="max_wavelength"):
        PositionalEncoding(max_wavelength=value)


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="rank 3"):
        PositionalEncoding()(np.zeros((4, 6), "float32"))
    with pytest.raises(ValueError, match="last dimension"):
        PositionalEncoding()(keras.Input((5, None)))

import keras
import numpy as np
import pytest
from keras import ops

from layers.quantizable_conv2d import QuantizableConv2D, int8_per_channel
from tests.layers.layer_checks import run_layer_test

IMAGES = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype("float32")


def numpy_conv(images, kernel, bias, stride=1):
    """Valid cross-correlation, float64, written out over output pixels."""
    kh, kw, _, out = kernel.shape
    b, h, w, _ = images.shape
    rows, cols = (h - kh) // stride + 1, (w - kw) // stride + 1
    result = np.zeros((b, rows, cols, out))
    for i in range(rows):
        for j in range(cols):
            patch = images[
                :, i * stride : i * stride + kh, j * stride : j * stride + kw
            ]
            result[:, i, j] = np.einsum("bhwc,hwco->bo", patch, kernel) + bias
    return result


def test_layer():
    run_layer_test(
        QuantizableConv2D,
        {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"},
        IMAGES,
        (2, 3, 3, 4),
        expected_num_trainable_weights=2,
    )


def test_int8_per_channel_by_hand():
    kernel = np.zeros((1, 1, 2, 3), "float32")
    kernel[0, 0, :, 0] = [1.27, -0.5]  # max 1.27 -> scale 0.01
    kernel[0, 0, :, 1] = [-2.54, 0.013]  # scale 0.02; 0.013/0.02 = 0.65 -> 1
    values, scales = int8_per_channel(kernel)  # channel 2 all zero -> scale 1
    np.testing.assert_allclose(scales, [0.01, 0.02, 1.0], rtol=1e-6)
    assert values.dtype == np.int8
    np.testing.assert_array_equal(values[0, 0, :, 0], [127, -50])
    np.testing.assert_array_equal(values[0, 0, :, 1], [-127, 1])
    np.testing.assert_array_equal(values[..., 2], 0)


def test_quantized_output_is_the_dequantized_kernels_convolution():
    layer = QuantizableConv2D(5, 3, bias_initializer="random_normal")
    float_out = ops.convert_to_numpy(layer(IMAGES))
    kernel = ops.convert_to_numpy(layer.kernel)
    bias = ops.convert_to_numpy(layer.bias)
    np.testing.assert_allclose(
        float_out, numpy_conv(IMAGES, kernel, bias), rtol=1e-4, atol=1e-5
    )
    layer.quantize("int8")
    assert layer._kernel.dtype == "int8"
    assert layer.dtype_policy.name == "int8_from_float32"
    assert [v.name for v in layer.trainable_weights] == ["bias"]
    values, scales = int8_per_channel(kernel)
    quantized = ops.convert_to_numpy(layer(IMAGES))
    np.testing.assert_allclose(
        quantized,
        numpy_conv(IMAGES, values.astype("float64") * scales, bias),
        rtol=1e-4,
        atol=1e-5,
    )
    # Within int8 rounding of the float layer: half a step per weight.
    assert np.max(np.abs(quantized - float_out)) < 0.02 * np.max(np.abs(float_out))
    assert np.max(np.abs(quantized - float_out)) > 0


def test_model_quantize_reaches_it_and_reloads_int8(tmp_path):
    inputs = keras.Input((6, 6, 3))
    x = QuantizableConv2D(4, 3, activation="relu")(inputs)
    plain = keras.layers.Conv2D(4, 3)(x)
    model = keras.Model(inputs, plain)
    model.quantize("int8")
    assert model.layers[1]._kernel.dtype == "int8"
    assert model.layers[2].kernel.dtype == "float32"  # Keras's Conv2D: float
    expected = ops.convert_to_numpy(model(IMAGES))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert loaded.layers[1]._kernel.dtype == "int8"
    np.testing.assert_array_equal(
        ops.convert_to_numpy(loaded.layers[1]._kernel),
        ops.convert_to_numpy(model.layers[1]._kernel),
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(IMAGES)), expected, atol=1e-6
    )


def test_quantized_under_mixed_bfloat16():
    layer = QuantizableConv2D(4, 3, dtype="mixed_bfloat16")
    reference = ops.convert_to_numpy(ops.cast(layer(IMAGES), "float32"))
    layer.quantize("int8")
    assert layer.dtype_policy.name == "int8_from_mixed_bfloat16"
    out = layer(IMAGES)
    assert out.dtype == "bfloat16"
    out = ops.convert_to_numpy(ops.cast(out, "float32"))
    assert np.max(np.abs(out - reference)) < 0.03 * np.max(np.abs(reference))


@pytest.mark.parametrize("mode", ["float8", "int4"])
def test_other_modes_are_refused_by_name(mode):
    layer = QuantizableConv2D(4, 3)
    layer.build(IMAGES.shape)
    with pytest.raises(ValueError, match=f"mode='{mode}'"):
        layer.quantize(mode)
    assert layer._kernel.dtype == "float32"


def test_quantizing_twice_is_refused():
    layer = QuantizableConv2D(4, 3)
    layer.build(IMAGES.shape)
    layer.quantize("int8")
    with pytest.raises(ValueError, match="already quantized"):
        layer.quantize("int8")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding": "same"},
        {"strides": 2},
        {"strides": (2, 3), "padding": "same"},
        {"dilation_rate": 2},
    ],
    ids=["same", "stride", "strides-same", "dilated"],
)
def test_batch_of_zero_keeps_the_output_shape(kwargs):
    # TensorFlow's oneDNN convolution returns a batch of 0 in the input's shape.
    layer = QuantizableConv2D(4, 3, **kwargs)
    full = layer(np.ones((2, 7, 6, 8), "float32"))
    empty = layer(np.ones((0, 7, 6, 8), "float32"))
    assert tuple(empty.shape) == (0, *full.shape[1:])

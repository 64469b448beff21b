import keras
import numpy as np
import pytest

from layers.convolutional_attention_module import ConvolutionalAttentionModule
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import np_sigmoid


def _conv_same(x, kernel, bias):
    """2D cross-correlation with 'same' zero padding, float64."""
    k = kernel.shape[0]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for i in range(k):
        for j in range(k):
            out += padded[:, i : i + height, j : j + width, :] @ kernel[i, j]
    return out + bias


def _reference(x, weights, channel=True, spatial=True):
    """CBAM from the paper's equations; returns (output, channel_gate, spatial_gate)."""
    x = x.astype(np.float64)
    w = [np.asarray(v, np.float64) for v in weights]
    channel_gate = np.ones(x.shape[:1] + (1, 1, x.shape[-1]))
    spatial_gate = np.ones(x.shape[:3] + (1,))
    if channel:
        w1, b1, w2, b2 = w[:4]
        w = w[4:]

        def mlp(p):
            return np.maximum(p @ w1 + b1, 0.0) @ w2 + b2

        logits = mlp(x.mean(axis=(1, 2))) + mlp(x.max(axis=(1, 2)))
        channel_gate = np_sigmoid(logits)[:, None, None, :]
        x = x * channel_gate
    if spatial:
        pooled = np.stack([x.mean(axis=-1), x.max(axis=-1)], axis=-1)
        spatial_gate = np_sigmoid(_conv_same(pooled, w[0], w[1]))
        x = x * spatial_gate
    return x, channel_gate, spatial_gate


def _random_weights(layer, rng):
    """Gives every weight (biases too) a random value; returns them in order."""
    values = []
    for variable in layer.weights:
        value = rng.normal(scale=0.5, size=tuple(variable.shape)).astype("float32")
        variable.assign(value)
        values.append(value)
    return values


def _layer(x, **kwargs):
    layer = ConvolutionalAttentionModule(**kwargs)
    layer.build(x.shape)
    return layer


def test_run_layer_test():
    x = np.random.default_rng(1).normal(size=(2, 6, 5, 16)).astype("float32")
    run_layer_test(
        ConvolutionalAttentionModule,
        dict(reduction_ratio=4, kernel_size=3, activation="gelu", use_bias=True),
        x,
        expected_output_shape=x.shape,
        expected_num_trainable_weights=6,
    )


def test_run_layer_test_channel_only_returning_maps():
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 8)).astype("float32")
    run_layer_test(
        ConvolutionalAttentionModule,
        dict(use_spatial_attention=False, use_bias=False),
        x,
        expected_output_shape=x.shape,
        expected_num_trainable_weights=2,
        call_kwargs=dict(return_attention_maps=True),
    )


@pytest.mark.parametrize(
    "channel, spatial", [(True, True), (True, False), (False, True)]
)
def test_matches_numpy_reference(channel, spatial):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 7, 6, 12)).astype("float32")
    layer = _layer(
        x,
        reduction_ratio=4,
        kernel_size=5,
        use_channel_attention=channel,
        use_spatial_attention=spatial,
    )
    weights = _random_weights(layer, rng)
    out, channel_gate, spatial_gate = layer(x, return_attention_maps=True)
    ref_out, ref_channel, ref_spatial = _reference(x, weights, channel, spatial)
    np.testing.assert_allclose(out, ref_out, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(channel_gate, ref_channel, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(spatial_gate, ref_spatial, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(layer(x), out, atol=1e-6)


def test_channel_only_with_fixed_weights():
    # Two pixels [1, 2] and [3, -2]: average [2, 0], max [3, 2]. Hidden unit
    # relu(x1 + x2): 2 and 5; output weights [1, -1]: logits 2 + 5 = 7 and
    # -2 - 5 = -7, gate [sigmoid(7), sigmoid(-7)] = [0.999089, 0.000911].
    x = np.array([[[[1.0, 2.0], [3.0, -2.0]]]], "float32")
    layer = _layer(x, reduction_ratio=2, use_spatial_attention=False)
    layer.set_weights(
        [np.ones((2, 1)), np.zeros(1), np.array([[1.0, -1.0]]), np.zeros(2)]
    )
    out, channel_gate, _ = layer(x, return_attention_maps=True)
    np.testing.assert_allclose(channel_gate, [[[[0.999089, 0.000911]]]], atol=1e-6)
    np.testing.assert_allclose(
        out, [[[[0.999089, 0.001822], [2.997267, -0.001822]]]], atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"use_channel_attention": False}, {"use_spatial_attention": False}],
)
def test_batch_of_zero(kwargs):
    x = np.zeros((0, 5, 4, 8), "float32")
    layer = ConvolutionalAttentionModule(reduction_ratio=2, **kwargs)
    out, channel_gate, spatial_gate = layer(x, return_attention_maps=True)
    assert tuple(out.shape) == x.shape
    assert tuple(channel_gate.shape) == (0, 1, 1, 8)
    assert tuple(spatial_gate.shape) == (0, 5, 4, 1)


@pytest.mark.parametrize(
    "shape", [(1, 1, 1, 1), (2, 3, 5, 7), (1, 8, 8, 40), (2, 9, 2, 3)]
)
def test_output_shape_equals_input_shape(shape):
    x = np.random.default_rng(4).normal(size=shape).astype("float32")
    layer = ConvolutionalAttentionModule(reduction_ratio=16, kernel_size=7)
    out, channel_gate, spatial_gate = layer(x, return_attention_maps=True)
    assert tuple(out.shape) == shape
    assert tuple(channel_gate.shape) == (shape[0], 1, 1, shape[3])
    assert tuple(spatial_gate.shape) == shape[:3] + (1,)
    assert tuple(layer.mlp_hidden.kernel.shape) == (shape[3], max(1, shape[3] // 16))


def test_dynamic_spatial_size():
    inputs = keras.Input((None, None, 6))
    model = keras.Model(inputs, ConvolutionalAttentionModule(reduction_ratio=2)(inputs))
    rng = np.random.default_rng(5)
    for size in [(3, 4), (9, 2)]:
        x = rng.normal(size=(2,) + size + (6,)).astype("float32")
        assert tuple(model(x).shape) == x.shape


def test_gates_are_in_unit_interval_and_off_gate_is_ones():
    x = np.random.default_rng(6).normal(size=(2, 5, 4, 8)).astype("float32") * 10
    layer = ConvolutionalAttentionModule(reduction_ratio=2, use_channel_attention=False)
    _, channel_gate, spatial_gate = layer(x, return_attention_maps=True)
    np.testing.assert_array_equal(channel_gate, np.ones((2, 1, 1, 8)))
    spatial_gate = np.asarray(spatial_gate)
    assert np.all((spatial_gate >= 0) & (spatial_gate <= 1))


def test_mixed_bfloat16_is_finite_and_close():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 6, 6, 16)).astype("float32")
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = _layer(x, reduction_ratio=4, kernel_size=3)
    weights = _random_weights(layer, rng)
    out, channel_gate, spatial_gate = layer(x, return_attention_maps=True)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert keras.backend.standardize_dtype(spatial_gate.dtype) == "bfloat16"
    out = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, _reference(x, weights)[0], atol=0.1, rtol=0.05)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(reduction_ratio=0), "reduction_ratio"),
        (dict(reduction_ratio=-2), "reduction_ratio"),
        (dict(reduction_ratio=2.5), "reduction_ratio"),
        (dict(kernel_size=0), "kernel_size"),
        (dict(kernel_size=4), "kernel_size"),
        (dict(use_channel_attention=False, use_spatial_attention=False), "use_"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ConvolutionalAttentionModule(**kwargs)


@pytest.mark.parametrize("shape", [(2, 5, 8), (2, 3, 3, 3, 8)])
def test_wrong_rank_raises(shape):
    with pytest.raises(ValueError, match="rank 4"):
        ConvolutionalAttentionModule()(np.zeros(shape, "float32"))


def test_unknown_channels_raise():
    with pytest.raises(ValueError, match="last dimension of `inputs`"):
        ConvolutionalAttentionModule()(keras.Input((4, 4, None)))

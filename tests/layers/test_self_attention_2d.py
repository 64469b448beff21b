import keras
import numpy as np
import pytest

from layers.self_attention_2d import SelfAttention2D
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import masked_softmax

# The key bias adds the same `q_i . b_k` to every score of query `i`, which a
# softmax ignores: its gradient is zero.
ZERO_GRADIENT = ("key/bias",)


def _reference(x, params, gamma, mask=None, use_scale=True):
    """Non-local block from its equations in float64; returns (output, weights)."""
    wq, bq, wk, bk, wv, bv, wo, bo = (np.asarray(p, np.float64) for p in params)
    batch, height, width, channels = x.shape
    flat = x.astype(np.float64).reshape(batch, height * width, channels)
    q, k, v = flat @ wq + bq, flat @ wk + bk, flat @ wv + bv
    scores = q @ k.transpose(0, 2, 1)
    if use_scale:
        scores = scores / np.sqrt(wq.shape[1])
    keep = None if mask is None else mask.reshape(batch, 1, height * width)
    weights = masked_softmax(scores, keep)
    out = flat + gamma * ((weights @ v) @ wo + bo)
    shape = (batch, height, width, height, width)
    return out.reshape(x.shape), weights.reshape(shape)


def _layer(x, gamma=0.7, **kwargs):
    """A built layer with random weights and biases; returns it and its params."""
    layer = SelfAttention2D(**kwargs)
    layer.build(x.shape)
    layer.gamma.assign(gamma)
    rng = np.random.default_rng(11)
    params = []
    for dense in (layer.query_dense, layer.key_dense, layer.value_dense):
        params += _randomise(dense, rng)
    params += _randomise(layer.output_dense, rng)
    return layer, params


def _randomise(dense, rng):
    values = []
    for variable in (dense.kernel, dense.bias):
        value = rng.normal(scale=0.4, size=tuple(variable.shape)).astype("float32")
        variable.assign(value)
        values.append(value)
    return values


def _data(shape, seed=10):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_run_layer_test():
    x = _data((2, 4, 3, 16))
    run_layer_test(
        SelfAttention2D,
        dict(key_dim=4, value_dim=8, gamma_initializer="ones"),
        x,
        expected_output_shape=x.shape,
        expected_num_trainable_weights=9,
        zero_gradient_weights=ZERO_GRADIENT,
    )


def test_run_layer_test_with_mask_and_scores():
    x = _data((2, 3, 5, 8))
    mask = np.random.default_rng(1).random((2, 3, 5)) > 0.4
    run_layer_test(
        SelfAttention2D,
        dict(use_scale=False, dropout=0.1, use_bias=False),
        {"inputs": x, "mask": mask},
        expected_output_shape=x.shape,
        expected_num_trainable_weights=5,
        call_kwargs=dict(return_attention_scores=True),
        # `gamma` starts at 0, so the attention weights start without a
        # gradient: move them all off their initial values first.
        perturb_weights=True,
    )


@pytest.mark.parametrize("use_scale", [True, False])
def test_matches_numpy_reference(use_scale):
    x = _data((2, 3, 4, 8))
    layer, params = _layer(x, key_dim=3, value_dim=5, use_scale=use_scale)
    out, scores = layer(x, return_attention_scores=True)
    ref_out, ref_scores = _reference(x, params, 0.7, use_scale=use_scale)
    np.testing.assert_allclose(out, ref_out, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6, rtol=1e-5)


def test_masked_matches_numpy_reference_and_fully_masked_is_zero_context():
    x = _data((3, 4, 4, 6))
    mask = np.random.default_rng(2).random((3, 4, 4)) > 0.5
    mask[0, 0, 0] = True
    mask[2] = False
    layer, params = _layer(x)
    out, scores = layer(x, mask=mask, return_attention_scores=True)
    ref_out, ref_scores = _reference(x, params, 0.7, mask=mask)
    np.testing.assert_allclose(out, ref_out, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-6, rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(scores)[2], 0.0)
    np.testing.assert_allclose(out[2], x[2] + 0.7 * params[-1], atol=1e-6)
    # Masked positions get no weight from any query.
    assert np.all(
        np.asarray(scores)[:2][np.broadcast_to(~mask[:2, None, None], (2,) + (4,) * 4)]
        == 0
    )


def test_masked_positions_do_not_change_unmasked_outputs():
    x = _data((2, 5, 3, 8))
    mask = np.random.default_rng(3).random((2, 5, 3)) > 0.5
    mask[:, 0, 0] = True
    layer, _ = _layer(x)
    changed = np.where(mask[..., None], x, _data(x.shape, seed=9) * 5)
    np.testing.assert_allclose(
        np.asarray(layer(changed, mask=mask))[mask],
        np.asarray(layer(x, mask=mask))[mask],
        atol=1e-5,
    )


def test_gamma_zero_is_identity():
    x = _data((2, 6, 5, 16))
    layer = SelfAttention2D()
    np.testing.assert_array_equal(layer(x), x)
    assert float(keras.ops.convert_to_numpy(layer.gamma)) == 0.0
    assert tuple(layer.query_dense.kernel.shape) == (16, 2)  # channels // 8
    assert tuple(layer.value_dense.kernel.shape) == (16, 16)


def test_permuting_positions_permutes_outputs():
    x = _data((2, 3, 4, 6))
    mask = np.random.default_rng(4).random((2, 3, 4)) > 0.3
    layer, _ = _layer(x)
    perm = np.random.default_rng(5).permutation(12)

    def permute(t):
        flat = t.reshape((t.shape[0], 12) + t.shape[3:])
        return flat[:, perm].reshape(t.shape)

    out = np.asarray(layer(x, mask=mask))
    permuted = np.asarray(layer(permute(x), mask=permute(mask)))
    np.testing.assert_allclose(permuted, permute(out), atol=1e-5)
    assert not np.allclose(out, x, atol=1e-3)  # the attention path is non-trivial


def test_dynamic_spatial_size():
    inputs = keras.Input((None, None, 8))
    out, scores = SelfAttention2D(gamma_initializer="ones")(
        inputs, return_attention_scores=True
    )
    model = keras.Model(inputs, [out, scores])
    for size in [(3, 5), (4, 4), (1, 7)]:
        x = _data((2,) + size + (8,))
        out, scores = model(x)
        assert tuple(out.shape) == x.shape
        assert tuple(scores.shape) == (2,) + size + size
        np.testing.assert_allclose(np.sum(scores, axis=(-2, -1)), 1.0, atol=1e-5)


def test_dropout_only_in_training():
    x = _data((2, 4, 4, 8))
    layer, params = _layer(x, dropout=0.5)
    np.testing.assert_allclose(
        layer(x, training=False), _reference(x, params, 0.7)[0], atol=1e-5
    )
    assert not np.allclose(layer(x, training=True), layer(x, training=False))


def test_mixed_bfloat16_is_finite_and_close():
    x = _data((2, 4, 4, 16))
    keras.config.set_dtype_policy("mixed_bfloat16")
    mask = np.ones((2, 4, 4), bool)
    mask[1] = False
    layer, params = _layer(x)
    out, scores = layer(x, mask=mask, return_attention_scores=True)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    out = keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))
    assert np.all(np.isfinite(out))
    scores = keras.ops.convert_to_numpy(keras.ops.cast(scores, "float32"))
    assert np.all(np.isfinite(scores))
    ref = _reference(x, params, 0.7, mask=mask)[0]
    np.testing.assert_allclose(out, ref, atol=0.15, rtol=0.05)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(key_dim=0), "key_dim"),
        (dict(value_dim=-1), "value_dim"),
        (dict(key_dim=2.0), "key_dim"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SelfAttention2D(**kwargs)


@pytest.mark.parametrize("shape", [(2, 5, 8), (2, 3, 3, 3, 8)])
def test_wrong_rank_raises(shape):
    with pytest.raises(ValueError, match="rank 4"):
        SelfAttention2D()(np.zeros(shape, "float32"))


def test_unknown_channels_raise():
    with pytest.raises(ValueError, match="last dimension of `inputs`"):
        SelfAttention2D()(keras.Input((4, 4, None)))


def test_bad_mask_shape_raises():
    with pytest.raises(ValueError, match="mask"):
        SelfAttention2D()(_data((2, 3, 4, 8)), mask=np.ones((2, 4, 3), bool))

import keras
import numpy as np
import pytest

from layers.local_attention import LocalAttention
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import masked_softmax

B, T, D = 2, 13, 6


def _data(seed=0, batch=B, length=T, dim=D):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, length, dim)).astype("float32")
    mask = np.ones((batch, length), dtype=bool)
    mask[0, length - 4 :] = False
    return x, mask


def _set_random_weights(layer, x, seed=1):
    layer(x)
    rng = np.random.default_rng(seed)
    weights = {}
    for var in layer.trainable_weights:
        value = rng.normal(scale=0.5, size=var.shape).astype("float32")
        var.assign(value)
        weights[var.name] = value.astype("float64")
    return weights


def _reference(w, x, mask, window, causal):
    """Full (T, T) float64 multi-head attention with a band mask."""
    x = x.astype("float64")
    q = np.einsum("btd,dhk->bhtk", x, w["query_kernel"]) + w["query_bias"][:, None]
    k = np.einsum("btd,dhk->bhtk", x, w["key_kernel"]) + w["key_bias"][:, None]
    v = np.einsum("btd,dhv->bhtv", x, w["value_kernel"]) + w["value_bias"][:, None]
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    pos = np.arange(x.shape[1])
    keep = np.abs(pos[:, None] - pos[None, :]) <= window
    if causal:
        keep &= pos[None, :] <= pos[:, None]
    keep = keep[None, None] & mask[:, None, :, None] & mask[:, None, None, :]
    context = masked_softmax(scores, keep) @ v
    out = np.einsum("bhtv,hvd->btd", context, w["output_kernel"])
    return out + w["output_bias"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_heads": 2, "key_dim": 3, "window_size": 4},
        {
            "num_heads": 1,
            "key_dim": 2,
            "window_size": 3,
            "value_dim": 5,
            "causal": True,
            "dropout": 0.3,
            "seed": 1,
        },
    ],
)
def test_layer_checks(kwargs):
    x, mask = _data()
    run_layer_test(
        LocalAttention,
        kwargs,
        {"inputs": x, "mask": mask},
        expected_output_shape=(B, T, D),
        expected_num_trainable_weights=8,
        # The key bias adds the same `q_i . b_k` to every score of query `i`,
        # which a softmax ignores: its gradient is zero.
        zero_gradient_weights=("key_bias",),
    )


def test_without_bias_has_four_weights():
    x, _ = _data()
    layer = LocalAttention(2, 3, 2, use_bias=False)
    assert layer(x).shape == (B, T, D)
    assert len(layer.trainable_weights) == 4


@pytest.mark.parametrize("window", [1, 4, 20])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_banded_full_attention(window, causal):
    x, mask = _data()
    layer = LocalAttention(3, 2, window, value_dim=4, causal=causal)
    w = _set_random_weights(layer, x)
    out = keras.ops.convert_to_numpy(layer(x, mask=mask))
    expected = _reference(w, x, mask, window, causal)
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("causal", [False, True])
def test_far_tokens_do_not_change_outputs(causal):
    window = 2
    x, _ = _data()
    layer = LocalAttention(2, 3, window, causal=causal)
    out = keras.ops.convert_to_numpy(layer(x))
    j = 6
    changed = x.copy()
    changed[:, j] += 3.0
    diff = np.abs(keras.ops.convert_to_numpy(layer(changed)) - out).max(axis=(0, 2))
    pos = np.arange(T)
    seen = np.abs(pos - j) <= window
    if causal:
        seen &= pos >= j
    np.testing.assert_allclose(diff[~seen], 0.0, atol=1e-6)
    assert np.all(diff[seen] > 1e-4)


def test_padding_is_ignored():
    x, mask = _data()
    layer = LocalAttention(2, 3, 3)
    out = keras.ops.convert_to_numpy(layer(x, mask=mask))
    changed = x.copy()
    changed[~mask] = 50.0
    out2 = keras.ops.convert_to_numpy(layer(changed, mask=mask))
    np.testing.assert_allclose(out2[mask], out[mask], atol=1e-5)
    # Padded queries attend nowhere: their output is the output bias (zeros).
    np.testing.assert_allclose(out[~mask], 0.0, atol=1e-6)
    assert not np.allclose(keras.ops.convert_to_numpy(layer(x))[0, 8], out[0, 8])


@pytest.mark.parametrize("shape", [(1, T), (B, 1), (T,), ()])
def test_mask_broadcasting_to_batch_and_length(shape):
    x, _ = _data()
    mask = np.ones(shape, dtype=bool)
    if shape == (B, 1):
        mask[0] = False
    elif shape:
        mask[..., -3:] = False
    layer = LocalAttention(2, 3, 3)
    out = keras.ops.convert_to_numpy(layer(x, mask=mask))
    full = np.broadcast_to(mask, (B, T))
    np.testing.assert_array_equal(out, keras.ops.convert_to_numpy(layer(x, mask=full)))
    if not full.all():
        assert not np.allclose(out, keras.ops.convert_to_numpy(layer(x)), atol=1e-3)


def test_keras_mask_is_used_and_propagated():
    x, mask = _data()
    x[~mask] = 0.0
    inputs = keras.Input((None, D))
    layer = LocalAttention(2, 3, 3)
    outputs = layer(keras.layers.Masking(0.0)(inputs))
    assert outputs._keras_mask is not None
    model = keras.Model(inputs, outputs)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)),
        keras.ops.convert_to_numpy(layer(x, mask=mask)),
        atol=1e-6,
    )


def _largest_intermediate(fn, x):
    """Largest element count of any tensor in the traced computation of `fn`."""
    if keras.backend.backend() == "jax":
        import jax

        def walk(jaxpr):
            sizes = [0]
            for eqn in jaxpr.eqns:
                sizes += [int(np.prod(v.aval.shape)) for v in eqn.outvars]
                for param in eqn.params.values():
                    for sub in param if isinstance(param, (list, tuple)) else [param]:
                        inner = getattr(sub, "jaxpr", sub)
                        if hasattr(inner, "eqns"):
                            sizes.append(walk(inner))
            return max(sizes)

        return walk(jax.make_jaxpr(fn)(x).jaxpr)
    import tensorflow as tf

    graph = tf.function(fn).get_concrete_function(tf.constant(x)).graph
    sizes = [
        t.shape.num_elements() or 0 for op in graph.get_operations() for t in op.outputs
    ]
    return max(sizes)


def test_never_builds_a_length_squared_tensor():
    length = 4096
    x = np.random.default_rng(0).normal(size=(1, length, 2)).astype("float32")
    layer = LocalAttention(1, 2, 4)
    out = keras.ops.convert_to_numpy(layer(x))
    assert out.shape == (1, length, 2) and np.all(np.isfinite(out))
    largest = _largest_intermediate(lambda t: layer(t), x)
    assert largest < 64 * length, largest
    # The probe does see a (T, T) matrix in dense attention.
    dense = keras.layers.MultiHeadAttention(1, 2)
    small = x[:, :512]
    assert _largest_intermediate(lambda t: dense(t, t), small) >= 512 * 512


def test_dynamic_length():
    inputs = keras.Input((None, D))
    model = keras.Model(inputs, LocalAttention(2, 3, 4, causal=True)(inputs))
    for length in (3, 9):
        x, _ = _data(length=length)
        eager = keras.ops.convert_to_numpy(model(x))
        assert eager.shape == (B, length, D)
        np.testing.assert_allclose(model.predict_on_batch(x), eager, atol=1e-5)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, None, D), "float32")
        fn = tf.function(lambda t: model(t), input_signature=[spec])
        for length in (5, 11):
            x, _ = _data(length=length)
            np.testing.assert_allclose(
                fn(x).numpy(), keras.ops.convert_to_numpy(model(x)), atol=1e-5
            )


def test_mixed_bfloat16_is_finite():
    keras.config.set_dtype_policy("mixed_bfloat16")
    x, mask = _data()
    mask[1] = False
    out = LocalAttention(2, 3, 3, causal=True)(x * 30.0, mask=mask)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out).astype("float32")))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0, "key_dim": 2, "window_size": 2}, "num_heads=0"),
        ({"num_heads": 2, "key_dim": -1, "window_size": 2}, "key_dim=-1"),
        ({"num_heads": 2, "key_dim": 2, "window_size": 0}, "window_size=0"),
        ({"num_heads": 2, "key_dim": 2, "window_size": 1.5}, "window_size=1.5"),
        ({"num_heads": 2, "key_dim": 2, "window_size": 2, "value_dim": 0}, "value_dim"),
        ({"num_heads": 2, "key_dim": 2, "window_size": 2, "dropout": -0.1}, "dropout"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LocalAttention(**kwargs)


def test_bad_inputs():
    x, _ = _data()
    with pytest.raises(ValueError, match="rank 3"):
        LocalAttention(2, 2, 2)(x[0])
    for shape in ((B, T - 1), (B + 1, T), (3, 1), (B, T, 1)):
        with pytest.raises(ValueError, match=rf"mask.shape=\({shape[0]}"):
            LocalAttention(2, 2, 2)(x, mask=np.ones(shape, dtype=bool))

import keras
import numpy as np
import pytest

from layers.self_attention import SelfAttention
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import masked_softmax

B, T, D, UNITS = 2, 6, 5, 4


def _data(seed=0, batch=B, length=T, dim=D):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, length, dim)).astype("float32")
    mask = np.ones((batch, length), dtype=bool)
    mask[0, length - 2 :] = False
    return x, mask


def _set_random_weights(layer, x, seed=1):
    """Builds `layer` and gives every weight a random normal value."""
    layer(x)
    rng = np.random.default_rng(seed)
    weights = {}
    for var in layer.trainable_weights:
        value = rng.normal(scale=0.5, size=var.shape).astype("float32")
        var.assign(value)
        weights[var.name] = value.astype("float64")
    return weights


def _reference(w, x, mask, score, units, causal=False, top_k=None):
    """Float64 single-head self-attention straight from the definitions."""
    x = x.astype("float64")
    q = x @ w["query_kernel"] + w.get("query_bias", 0.0)
    k = x @ w["key_kernel"] + w.get("key_bias", 0.0)
    v = x @ w["value_kernel"] + w.get("value_bias", 0.0)
    batch, length, _ = x.shape
    scores = np.zeros((batch, length, length))
    for b in range(batch):
        for i in range(length):
            for j in range(length):
                if score == "dot":
                    s = q[b, i] @ k[b, j]
                elif score == "scaled_dot":
                    s = q[b, i] @ k[b, j] / np.sqrt(units)
                elif score == "general":
                    s = q[b, i] @ w["score_kernel"] @ k[b, j]
                else:
                    s = w["score_kernel"] @ np.tanh(q[b, i] + k[b, j])
                scores[b, i, j] = s
    keep = mask[:, :, None] & mask[:, None, :]
    if causal:
        keep = keep & np.tril(np.ones((length, length), dtype=bool))
    if top_k is not None:
        for idx in np.ndindex(keep.shape[:-1]):
            visible = scores[idx][keep[idx]]
            if visible.size > top_k:
                kth = np.sort(visible)[::-1][top_k - 1]
                keep[idx] &= scores[idx] >= kth
    weights = masked_softmax(scores, keep)
    return np.einsum("bij,bju->biu", weights, v), weights


# With a bilinear score (`q_i . k_j`, `q_i W k_j`) the key bias adds the same
# term to every score of query `i`, which a softmax ignores: its gradient is
# zero. Inside the additive score's tanh it is not.
KEY_BIAS = ("key_bias",)


@pytest.mark.parametrize(
    "kwargs, num_weights, zero_gradient",
    [
        ({"score": "dot"}, 6, KEY_BIAS),
        ({"score": "scaled_dot"}, 6, KEY_BIAS),
        ({"score": "general"}, 7, KEY_BIAS),
        ({"score": "additive"}, 7, ()),
        ({"score": "additive", "use_bias": False}, 4, ()),
        ({"causal": True, "top_k": 2, "dropout": 0.2, "seed": 3}, 6, KEY_BIAS),
    ],
)
def test_layer_checks(kwargs, num_weights, zero_gradient):
    x, mask = _data()
    run_layer_test(
        SelfAttention,
        {"units": UNITS, **kwargs},
        {"inputs": x, "mask": mask},
        expected_output_shape=(B, T, UNITS),
        expected_num_trainable_weights=num_weights,
        zero_gradient_weights=zero_gradient,
    )


def test_dot_score_with_fixed_weights():
    # Identity projections, zero biases: q = k = v = x. The scaled scores of
    # query 0 are [1, 0, 1] / sqrt(2) (key 2 is [1, 1]), those of query 1 are
    # [0, 1, 1] / sqrt(2); key 2 is padding.
    x = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]], "float32")
    layer = SelfAttention(2)
    layer(x)
    eye, zeros = np.eye(2), np.zeros(2)
    layer.set_weights([eye, zeros] * 3)
    out, weights = layer(
        x, mask=np.array([[True, True, False]]), return_attention_scores=True
    )
    # Weights [e^(1/sqrt 2), 1] / (1 + e^(1/sqrt 2)) = [0.669762, 0.330238].
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(weights),
        [[[0.669762, 0.330238, 0.0], [0.330238, 0.669762, 0.0], [0.0, 0.0, 0.0]]],
        atol=1e-6,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out),
        [[[0.669762, 0.330238], [0.330238, 0.669762], [0.0, 0.0]]],
        atol=1e-6,
    )


@pytest.mark.parametrize("score", ["dot", "scaled_dot", "general", "additive"])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_numpy_reference(score, causal):
    x, mask = _data()
    layer = SelfAttention(UNITS, score=score, causal=causal)
    w = _set_random_weights(layer, x)
    out, weights = layer(x, mask=mask, return_attention_scores=True)
    expected, expected_weights = _reference(w, x, mask, score, UNITS, causal)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected, atol=1e-4)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(weights), expected_weights, atol=1e-5
    )


@pytest.mark.parametrize("top_k", [1, 2, 3])
@pytest.mark.parametrize("causal", [False, True])
def test_top_k_matches_numpy_reference(top_k, causal):
    x, mask = _data(length=7)
    layer = SelfAttention(UNITS, score="general", top_k=top_k, causal=causal)
    w = _set_random_weights(layer, x)
    out, weights = layer(x, mask=mask, return_attention_scores=True)
    expected, expected_weights = _reference(w, x, mask, "general", UNITS, causal, top_k)
    weights = keras.ops.convert_to_numpy(weights)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected, atol=1e-4)
    kept = (weights > 0).sum(-1)
    visible = mask[:, :, None] & mask[:, None, :]
    if causal:
        visible = visible & np.tril(np.ones((7, 7), dtype=bool))
    np.testing.assert_array_equal(kept, np.minimum(visible.sum(-1), top_k))
    assert not np.any(weights[~visible])


def test_top_k_keeps_ties_and_covers_soft_attention():
    x, _ = _data()
    x[:, 3] = x[:, 1]  # keys 1 and 3 tie for every query
    layer = SelfAttention(UNITS, score="dot", top_k=1)
    _, weights = layer(x, return_attention_scores=True)
    weights = keras.ops.convert_to_numpy(weights)
    np.testing.assert_allclose(weights[..., 1], weights[..., 3], atol=1e-6)
    assert np.all((weights > 0).sum(-1) >= 1)
    tied_top = weights[..., 1] > 0
    assert np.all((weights > 0).sum(-1)[tied_top] >= 2)

    soft = SelfAttention(UNITS, score="dot")
    hard = SelfAttention(UNITS, score="dot", top_k=T)
    soft(x)
    hard(x)
    hard.set_weights(soft.get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(hard(x)),
        keras.ops.convert_to_numpy(soft(x)),
        atol=1e-6,
    )


@pytest.mark.parametrize("top_k", [None, 2])
def test_masked_keys_do_not_change_outputs(top_k):
    x, mask = _data()
    layer = SelfAttention(UNITS, score="additive", top_k=top_k)
    out = keras.ops.convert_to_numpy(layer(x, mask=mask))
    changed = x.copy()
    changed[~mask] = 100.0
    out2 = keras.ops.convert_to_numpy(layer(changed, mask=mask))
    np.testing.assert_allclose(out2[mask], out[mask], atol=1e-6)
    np.testing.assert_array_equal(out[~mask], 0.0)  # padded queries attend nowhere
    assert not np.allclose(out2, keras.ops.convert_to_numpy(layer(changed)))


def test_keras_mask_is_used_and_propagated():
    x, mask = _data()
    x[~mask] = 0.0
    inputs = keras.Input((T, D))
    masked = keras.layers.Masking(0.0)(inputs)
    layer = SelfAttention(UNITS)
    outputs = layer(masked)
    assert outputs._keras_mask is not None
    model = keras.Model(inputs, outputs)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(x)),
        keras.ops.convert_to_numpy(layer(x, mask=mask)),
        atol=1e-6,
    )
    mask_out = layer.compute_mask(x, keras.ops.convert_to_tensor(mask))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(mask_out), mask)


@pytest.mark.parametrize("score", ["scaled_dot", "additive"])
@pytest.mark.parametrize("top_k", [None, 2])
def test_causal_outputs_do_not_see_the_future(score, top_k):
    x, _ = _data()
    layer = SelfAttention(UNITS, score=score, causal=True, top_k=top_k)
    out = keras.ops.convert_to_numpy(layer(x))
    changed = x.copy()
    changed[:, 3:] += 5.0
    out2 = keras.ops.convert_to_numpy(layer(changed))
    np.testing.assert_allclose(out2[:, :3], out[:, :3], atol=1e-6)
    assert not np.allclose(out2[:, 3:], out[:, 3:])


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
@pytest.mark.parametrize("top_k", [None, 2])
def test_permutation_equivariance(score, top_k):
    x, _ = _data()
    perm = np.random.default_rng(5).permutation(T)
    layer = SelfAttention(UNITS, score=score, top_k=top_k)
    out = keras.ops.convert_to_numpy(layer(x))
    out_perm = keras.ops.convert_to_numpy(layer(x[:, perm]))
    np.testing.assert_allclose(out_perm, out[:, perm], atol=1e-5)
    assert not np.allclose(out_perm, out, atol=1e-3)


def test_fully_masked_rows_are_zero_and_finite():
    x, _ = _data()
    mask = np.zeros((B, T), dtype=bool)
    mask[1, :2] = True
    out, weights = SelfAttention(UNITS, top_k=1)(
        x, mask=mask, return_attention_scores=True
    )
    out = keras.ops.convert_to_numpy(out)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(weights)[0], 0.0)


def test_dropout_only_in_training():
    x, _ = _data()
    layer = SelfAttention(UNITS, dropout=0.5, seed=1)
    base = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x, training=False)), base, atol=1e-6
    )
    assert not np.allclose(keras.ops.convert_to_numpy(layer(x, training=True)), base)
    _, weights = layer(x, training=True, return_attention_scores=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(weights).sum(-1), 1.0, 1e-5)


def test_dynamic_length():
    inputs = keras.Input((None, D))
    outputs, weights = SelfAttention(UNITS, top_k=2, causal=True)(
        inputs, return_attention_scores=True
    )
    assert tuple(outputs.shape) == (None, None, UNITS)
    assert tuple(weights.shape) == (None, None, None)
    model = keras.Model(inputs, outputs)
    for length in (3, 9):
        x, _ = _data(length=length)
        assert model.predict_on_batch(x).shape == (B, length, UNITS)


@pytest.mark.parametrize("score", ["scaled_dot", "additive"])
def test_mixed_bfloat16_is_finite(score):
    keras.config.set_dtype_policy("mixed_bfloat16")
    x, mask = _data()
    mask[1] = False
    layer = SelfAttention(UNITS, score=score, top_k=2, causal=True)
    out, weights = layer(x * 30.0, mask=mask, return_attention_scores=True)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out).astype("float32")))
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(weights).astype("float32")))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units=0"),
        ({"units": -2}, "units=-2"),
        ({"units": 2.5}, "units=2.5"),
        ({"units": 4, "score": "cosine"}, "score='cosine'"),
        ({"units": 4, "top_k": 0}, "top_k=0"),
        ({"units": 4, "top_k": -1}, "top_k=-1"),
        ({"units": 4, "dropout": 1.0}, "dropout=1.0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SelfAttention(**kwargs)


def test_bad_inputs():
    x, mask = _data()
    with pytest.raises(ValueError, match="rank 3"):
        SelfAttention(UNITS)(x[0])
    with pytest.raises(ValueError, match="rank 3"):
        SelfAttention(UNITS)(x[None])
    with pytest.raises(ValueError, match="mask"):
        SelfAttention(UNITS)(x, mask=np.ones((B, T + 1), dtype=bool))
    with pytest.raises(ValueError, match="mask"):
        SelfAttention(UNITS)(x, mask=np.ones((B, T, T), dtype=bool))

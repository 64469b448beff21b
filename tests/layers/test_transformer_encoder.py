import keras
import numpy as np
import pytest
from keras import ops
from keras.src.backend import get_keras_mask

from layers.token_and_position_embedding import TokenAndPositionEmbedding
from layers.transformer_encoder import TransformerEncoder
from tests.layers.layer_checks import run_layer_test

# Float64 NumPy references of the block, shared with the decoder tests.


def np_weights(layer):
    return [ops.convert_to_numpy(w).astype("float64") for w in layer.weights]


def np_layer_norm(norm, x):
    gamma, beta = np_weights(norm)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + norm.epsilon) * gamma + beta


def np_attention(attention, query, value, mask):
    """Multi-head attention; `mask` (B, T, S), rows with no visible key give 0."""
    wq, bq, wk, bk, wv, bv, wo, bo = np_weights(attention)
    q = np.einsum("btd,dhk->bthk", query, wq) + bq
    k = np.einsum("bsd,dhk->bshk", value, wk) + bk
    v = np.einsum("bsd,dhk->bshk", value, wv) + bv
    scores = np.einsum("bthk,bshk->bhts", q, k) / np.sqrt(q.shape[-1])
    visible = np.broadcast_to(mask[:, None], scores.shape)
    scores = np.where(visible, scores, -np.inf)
    top = np.max(scores, axis=-1, keepdims=True)
    weights = np.where(visible, np.exp(scores - np.where(visible, top, 0.0)), 0.0)
    total = weights.sum(-1, keepdims=True)
    weights = weights / np.where(total > 0, total, 1.0)
    context = np.einsum("bhts,bshk->bthk", weights, v)
    return np.einsum("bthk,hkd->btd", context, wo) + bo


def np_feedforward(layer, x):
    w1, b1 = np_weights(layer.intermediate_dense)
    w2, b2 = np_weights(layer.output_dense)
    return np.maximum(x @ w1 + b1, 0.0) @ w2 + b2


def np_residual(normalize_first, norm, x, sublayer):
    if normalize_first:
        return x + sublayer(np_layer_norm(norm, x))
    return np_layer_norm(norm, x + sublayer(x))


def pair_mask(query_padding, key_padding):
    return query_padding[:, :, None] & key_padding[:, None, :]


def np_encoder(layer, x, padding, attention_mask=None):
    mask = pair_mask(padding, padding)
    if attention_mask is not None:
        mask = mask & attention_mask

    def attend(y):
        return np_attention(layer.self_attention, y, y, mask)

    nf = layer.normalize_first
    x = np_residual(nf, layer.self_attention_norm, x, attend)
    return np_residual(
        nf, layer.feedforward_norm, x, lambda y: np_feedforward(layer, y)
    )


RNG = np.random.default_rng(1)
X = RNG.normal(size=(2, 5, 8)).astype("float32")
PADDING = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
KWARGS = {
    "num_heads": 2,
    "intermediate_dim": 12,
    "dropout": 0.0,
    "activation": "relu",
    "layer_norm_epsilon": 1e-5,
    "key_dim": None,
    "kernel_initializer": "glorot_uniform",
    "bias_initializer": "random_normal",
}


@pytest.mark.parametrize("normalize_first", [False, True])
def test_layer_with_padding_mask(normalize_first):
    kwargs = {**KWARGS, "normalize_first": normalize_first}
    data = {"inputs": X, "padding_mask": PADDING}
    run_layer_test(TransformerEncoder, kwargs, data, (2, 5, 8), 16)


def test_layer_with_attention_mask():
    mask = RNG.random((2, 5, 5)) < 0.7
    kwargs = {**KWARGS, "key_dim": 3, "dropout": 0.1, "normalize_first": True}
    data = {"inputs": X, "attention_mask": mask}
    run_layer_test(TransformerEncoder, kwargs, data, (2, 5, 8), 16)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_matches_numpy_reference(normalize_first):
    layer = TransformerEncoder(**{**KWARGS, "normalize_first": normalize_first})
    attention_mask = RNG.random((2, 5, 5)) < 0.6
    out = layer(X, padding_mask=PADDING, attention_mask=attention_mask)
    expected = np_encoder(layer, X.astype("float64"), PADDING, attention_mask)
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, atol=1e-4)
    out = layer(X)
    expected = np_encoder(layer, X.astype("float64"), np.ones((2, 5), bool))
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, atol=1e-4)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_padded_tokens_do_not_change_real_outputs(normalize_first):
    layer = TransformerEncoder(2, 12, normalize_first=normalize_first)
    changed = X.copy()
    changed[~PADDING] = RNG.normal(size=changed[~PADDING].shape) * 10
    a = ops.convert_to_numpy(layer(X, padding_mask=PADDING))
    b = ops.convert_to_numpy(layer(changed, padding_mask=PADDING))
    np.testing.assert_allclose(a[PADDING], b[PADDING], atol=1e-5)
    unmasked = ops.convert_to_numpy(layer(changed))
    assert not np.allclose(unmasked[PADDING], b[PADDING], atol=1e-3)


def test_keras_mask_acts_as_padding_mask():
    layer = TransformerEncoder(2, 12)
    masked = keras.layers.Masking(0.0)(X * PADDING[..., None])
    from_keras_mask = layer(masked)
    explicit = layer(X * PADDING[..., None], padding_mask=PADDING)
    np.testing.assert_allclose(from_keras_mask, explicit, atol=1e-6)
    passed_on = ops.convert_to_numpy(get_keras_mask(from_keras_mask))
    np.testing.assert_array_equal(passed_on, PADDING)


def test_keras_mask_in_compiled_model():
    tokens = np.array([[4, 2, 9, 0, 0], [1, 5, 3, 8, 0]], dtype="int32")
    embed = TokenAndPositionEmbedding(10, 5, 8, mask_zero=True)
    encoder = TransformerEncoder(2, 12, normalize_first=True)
    inputs = keras.Input((5,), dtype="int32")
    model = keras.Model(inputs, encoder(embed(inputs)))
    model.compile(jit_compile=True)
    embedded = ops.convert_to_numpy(embed(tokens))
    explicit = encoder(embedded, padding_mask=tokens != 0)
    np.testing.assert_allclose(model.predict_on_batch(tokens), explicit, atol=1e-5)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_permutation_equivariance(normalize_first):
    layer = TransformerEncoder(2, 12, normalize_first=normalize_first)
    permutation = np.array([3, 0, 4, 1, 2])
    out = ops.convert_to_numpy(layer(X, padding_mask=PADDING))
    permuted = layer(X[:, permutation], padding_mask=PADDING[:, permutation])
    permuted = ops.convert_to_numpy(permuted)
    np.testing.assert_allclose(permuted, out[:, permutation], atol=1e-5)


def test_dropout_only_in_training():
    layer = TransformerEncoder(2, 12, dropout=0.5)
    inference = ops.convert_to_numpy(layer(X))
    np.testing.assert_allclose(layer(X, training=False), inference, atol=1e-6)
    assert not np.allclose(ops.convert_to_numpy(layer(X, training=True)), inference)


def test_mixed_bfloat16_is_finite():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = TransformerEncoder(2, 12, normalize_first=True)
    padding = PADDING.copy()
    padding[0] = False  # a fully padded sequence: no query sees any key
    out = layer(X * 100, padding_mask=padding)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert np.all(np.isfinite(ops.convert_to_numpy(ops.cast(out, "float32"))))


def test_key_dim_default_needs_divisible_hidden_size():
    with pytest.raises(ValueError, match="num_heads=3"):
        TransformerEncoder(3, 12)(X)
    layer = TransformerEncoder(3, 12, key_dim=4)
    assert tuple(layer(X).shape) == X.shape


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_heads": 0}, "num_heads"),
        ({"intermediate_dim": -2}, "intermediate_dim"),
        ({"dropout": 1.0}, "dropout"),
        ({"layer_norm_epsilon": 0.0}, "layer_norm_epsilon"),
        ({"key_dim": 0}, "key_dim"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TransformerEncoder(**{"num_heads": 2, "intermediate_dim": 12, **kwargs})


def test_bad_masks_and_inputs():
    layer = TransformerEncoder(2, 12)
    with pytest.raises(ValueError, match="padding_mask"):
        layer(X, padding_mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="attention_mask"):
        layer(X, attention_mask=np.ones((2, 5, 3), bool))
    with pytest.raises(ValueError, match="rank 3"):
        TransformerEncoder(2, 12)(X[0])

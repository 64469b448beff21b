import keras
import numpy as np
import pytest
from keras import ops

from layers.token_and_position_embedding import TokenAndPositionEmbedding
from layers.transformer_encoder import TransformerEncoder
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import (
    keras_mask,
    np_attention,
    np_attention_weights,
    np_feedforward,
    np_layer_norm,
    np_residual,
    pair_mask,
)

# The key bias adds the same `q_i . b_k` to every score of query `i`, which a
# softmax ignores: its gradient is zero.
ZERO_GRADIENT = ("self_attention/key/bias",)


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
    run_layer_test(
        TransformerEncoder,
        kwargs,
        data,
        (2, 5, 8),
        16,
        zero_gradient_weights=ZERO_GRADIENT,
    )


def test_layer_with_attention_mask():
    mask = RNG.random((2, 5, 5)) < 0.7
    kwargs = {**KWARGS, "key_dim": 3, "dropout": 0.1, "normalize_first": True}
    data = {"inputs": X, "attention_mask": mask}
    run_layer_test(
        TransformerEncoder,
        kwargs,
        data,
        (2, 5, 8),
        16,
        zero_gradient_weights=ZERO_GRADIENT,
    )


def test_layer_returning_attention_scores():
    kwargs = {**KWARGS, "normalize_first": True}
    data = {"inputs": X, "padding_mask": PADDING}
    run_layer_test(
        TransformerEncoder,
        kwargs,
        data,
        (2, 5, 8),
        16,
        call_kwargs={"return_attention_scores": True},
        zero_gradient_weights=ZERO_GRADIENT,
    )


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
def test_attention_scores_match_reference_and_leave_outputs_unchanged(
    normalize_first,
):
    layer = TransformerEncoder(**{**KWARGS, "normalize_first": normalize_first})
    attention_mask = RNG.random((2, 5, 5)) < 0.6
    masks = {"padding_mask": PADDING, "attention_mask": attention_mask}
    plain = ops.convert_to_numpy(layer(X, **masks))
    out, scores = layer(X, return_attention_scores=True, **masks)
    np.testing.assert_array_equal(ops.convert_to_numpy(out), plain)
    assert tuple(scores.shape) == (2, 2, 5, 5)
    x64 = X.astype("float64")
    if normalize_first:
        x64 = np_layer_norm(layer.self_attention_norm, x64)
    mask = pair_mask(PADDING, PADDING) & attention_mask
    expected = np_attention_weights(layer.self_attention, x64, x64, mask)
    np.testing.assert_allclose(ops.convert_to_numpy(scores), expected, atol=1e-6)


def test_attention_scores_in_functional_model():
    layer = TransformerEncoder(2, 12, normalize_first=True)
    inputs = keras.Input((None, 8))
    padding = keras.Input((None,), dtype="bool")
    outputs, scores = layer(inputs, padding_mask=padding, return_attention_scores=True)
    assert tuple(outputs.shape) == (None, None, 8)
    assert tuple(scores.shape) == (None, 2, None, None)
    model = keras.Model([inputs, padding], [outputs, scores])
    model.compile(jit_compile=True)
    eager_out, eager_scores = layer(X, PADDING, return_attention_scores=True)
    got_out, got_scores = model.predict_on_batch([X, PADDING])
    np.testing.assert_allclose(got_out, eager_out, atol=1e-5)
    np.testing.assert_allclose(got_scores, eager_scores, atol=1e-6)


def test_integer_inputs_match_float_inputs():
    values = np.random.default_rng(3).integers(-3, 4, size=(2, 5, 8))
    layer = TransformerEncoder(2, 12)
    from_float = ops.convert_to_numpy(layer(values.astype("float32")))
    from_int = layer(values.astype("int32"), padding_mask=PADDING)
    assert keras.backend.standardize_dtype(from_int.dtype) == "float32"
    masked = ops.convert_to_numpy(layer(values.astype("float32"), padding_mask=PADDING))
    np.testing.assert_array_equal(ops.convert_to_numpy(from_int), masked)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(layer(values.astype("int32"))), from_float
    )


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
    np.testing.assert_array_equal(keras_mask(from_keras_mask), PADDING)


def test_keras_mask_and_padding_mask_are_combined():
    layer = TransformerEncoder(2, 12)
    keras_padding = np.array([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=bool)
    x = X * keras_padding[..., None]
    masked = keras.layers.Masking(0.0)(x)
    # Two tensor arguments: Keras passes the mask of `inputs` as `inputs_mask`.
    combined = layer(masked, padding_mask=PADDING)
    explicit = layer(x, padding_mask=PADDING & keras_padding)
    np.testing.assert_allclose(combined, explicit, atol=1e-6)
    assert not np.allclose(combined, layer(x, padding_mask=PADDING), atol=1e-3)
    assert not np.allclose(combined, layer(masked), atol=1e-3)


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
    inputs = keras.Input((5, 8))
    with pytest.raises(ValueError, match="padding_mask"):
        layer(inputs, padding_mask=keras.Input((4,), dtype="bool"))
    with pytest.raises(ValueError, match="attention_mask"):
        layer(inputs, attention_mask=keras.Input((5, 3), dtype="bool"))
    with pytest.raises(ValueError, match="rank 3"):
        TransformerEncoder(2, 12)(X[0])

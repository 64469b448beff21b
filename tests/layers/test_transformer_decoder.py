import keras
import numpy as np
import pytest
from keras import ops

from layers.transformer_decoder import TransformerDecoder
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import (
    keras_mask,
    np_attention,
    np_feedforward,
    np_residual,
    pair_mask,
)

# The key biases add the same `q_i . b_k` to every score of query `i`, which a
# softmax ignores: their gradient is zero (self- and cross-attention).
ZERO_GRADIENT = ("attention/key/bias",)


def np_decoder(layer, x, padding, encoder=None, encoder_padding=None):
    """Float64 reference: causal self-attention, cross-attention, feed-forward."""
    length = x.shape[1]
    causal = np.tril(np.ones((length, length), bool))[None]
    self_mask = pair_mask(padding, padding) & causal
    nf = layer.normalize_first
    x = np_residual(
        nf,
        layer.self_attention_norm,
        x,
        lambda y: np_attention(layer.self_attention, y, y, self_mask),
    )
    if encoder is not None:
        cross_mask = pair_mask(padding, encoder_padding)
        x = np_residual(
            nf,
            layer.cross_attention_norm,
            x,
            lambda y: np_attention(layer.cross_attention, y, encoder, cross_mask),
        )
    return np_residual(
        nf, layer.feedforward_norm, x, lambda y: np_feedforward(layer, y)
    )


RNG = np.random.default_rng(1)
X = RNG.normal(size=(2, 6, 8)).astype("float32")
ENCODER = RNG.normal(size=(2, 4, 10)).astype("float32")
PADDING = np.array([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]], dtype=bool)
ENCODER_PADDING = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=bool)
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


def test_layer_decoder_only_pre_norm():
    kwargs = {**KWARGS, "normalize_first": True}
    data = {"decoder_sequence": X, "decoder_padding_mask": PADDING}
    run_layer_test(
        TransformerDecoder,
        kwargs,
        data,
        (2, 6, 8),
        16,
        zero_gradient_weights=ZERO_GRADIENT,
    )


def test_layer_with_encoder_post_norm():
    kwargs = {**KWARGS, "normalize_first": False, "dropout": 0.1}
    data = {
        "decoder_sequence": X,
        "encoder_sequence": ENCODER,
        "decoder_padding_mask": PADDING,
        "encoder_padding_mask": ENCODER_PADDING,
    }
    run_layer_test(
        TransformerDecoder,
        kwargs,
        data,
        (2, 6, 8),
        26,
        zero_gradient_weights=ZERO_GRADIENT,
    )


@pytest.mark.parametrize("normalize_first", [False, True])
def test_matches_numpy_reference(normalize_first):
    x64, encoder64 = X.astype("float64"), ENCODER.astype("float64")
    layer = TransformerDecoder(**{**KWARGS, "normalize_first": normalize_first})
    out = layer(X, ENCODER, PADDING, ENCODER_PADDING)
    expected = np_decoder(layer, x64, PADDING, encoder64, ENCODER_PADDING)
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, atol=1e-4)

    decoder_only = TransformerDecoder(**{**KWARGS, "normalize_first": normalize_first})
    out = decoder_only(X)
    expected = np_decoder(decoder_only, x64, np.ones((2, 6), bool))
    np.testing.assert_allclose(ops.convert_to_numpy(out), expected, atol=1e-4)


@pytest.mark.parametrize("with_encoder", [False, True])
@pytest.mark.parametrize("normalize_first", [False, True])
def test_causality(with_encoder, normalize_first):
    layer = TransformerDecoder(2, 12, normalize_first=normalize_first)
    encoder = ENCODER if with_encoder else None
    for cut in (1, 3, 5):
        changed = X.copy()
        changed[:, cut:] = RNG.normal(size=changed[:, cut:].shape) * 10
        a = ops.convert_to_numpy(layer(X, encoder))
        b = ops.convert_to_numpy(layer(changed, encoder))
        np.testing.assert_allclose(a[:, :cut], b[:, :cut], atol=1e-5)
        assert not np.allclose(a[:, cut:], b[:, cut:], atol=1e-3)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_padding_masks(normalize_first):
    layer = TransformerDecoder(2, 12, normalize_first=normalize_first)
    changed_x, changed_encoder = X.copy(), ENCODER.copy()
    changed_x[~PADDING] = 10 * RNG.normal(size=changed_x[~PADDING].shape)
    changed_encoder[~ENCODER_PADDING] = 10.0
    masks = {"decoder_padding_mask": PADDING, "encoder_padding_mask": ENCODER_PADDING}
    a = ops.convert_to_numpy(layer(X, ENCODER, **masks))
    b = ops.convert_to_numpy(layer(changed_x, changed_encoder, **masks))
    np.testing.assert_allclose(a[PADDING], b[PADDING], atol=1e-5)
    unmasked = ops.convert_to_numpy(layer(changed_x, changed_encoder))
    assert not np.allclose(unmasked[PADDING], b[PADDING], atol=1e-3)


def test_keras_masks_act_as_padding_masks():
    layer = TransformerDecoder(2, 12)
    x, encoder = X * PADDING[..., None], ENCODER * ENCODER_PADDING[..., None]
    masking = keras.layers.Masking(0.0)
    out = layer(masking(x), masking(encoder))
    explicit = layer(x, encoder, PADDING, ENCODER_PADDING)
    np.testing.assert_allclose(out, explicit, atol=1e-6)
    np.testing.assert_array_equal(keras_mask(out), PADDING)


def test_keras_mask_of_the_only_tensor_argument():
    layer = TransformerDecoder(2, 12)
    x = X * PADDING[..., None]
    out = layer(keras.layers.Masking(0.0)(x))
    np.testing.assert_allclose(out, layer(x, decoder_padding_mask=PADDING), atol=1e-6)
    assert not np.allclose(out, layer(x), atol=1e-3)


def test_keras_masks_and_padding_masks_are_combined():
    layer = TransformerDecoder(2, 12)
    keras_padding = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=bool)
    keras_encoder_padding = np.array([[1, 0, 1, 1], [1, 1, 1, 0]], dtype=bool)
    x = X * keras_padding[..., None]
    encoder = ENCODER * keras_encoder_padding[..., None]
    masking = keras.layers.Masking(0.0)
    combined = layer(masking(x), masking(encoder), PADDING, ENCODER_PADDING)
    explicit = layer(
        x, encoder, PADDING & keras_padding, ENCODER_PADDING & keras_encoder_padding
    )
    np.testing.assert_allclose(combined, explicit, atol=1e-6)
    assert not np.allclose(combined, layer(x, encoder, PADDING, ENCODER_PADDING))


@pytest.mark.parametrize("with_encoder", [False, True])
def test_integer_inputs_match_float_inputs(with_encoder):
    rng = np.random.default_rng(3)
    values = rng.integers(-3, 4, size=X.shape)
    encoder = rng.integers(-3, 4, size=ENCODER.shape) if with_encoder else None
    layer = TransformerDecoder(2, 12)

    def run(dtype):
        args = (None,) if encoder is None else (encoder.astype(dtype),)
        return layer(values.astype(dtype), *args, decoder_padding_mask=PADDING)

    from_int = run("int32")
    assert keras.backend.standardize_dtype(from_int.dtype) == "float32"
    np.testing.assert_array_equal(
        ops.convert_to_numpy(from_int), ops.convert_to_numpy(run("float32"))
    )


def test_mixed_bfloat16_is_finite():
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = TransformerDecoder(2, 12)
    encoder_padding = ENCODER_PADDING.copy()
    encoder_padding[0] = False  # no visible encoder token for the first sequence
    out = layer(X * 100, ENCODER, PADDING, encoder_padding)
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    assert np.all(np.isfinite(ops.convert_to_numpy(ops.cast(out, "float32"))))


def test_encoder_sequence_must_match_build():
    decoder_only = TransformerDecoder(2, 12)
    decoder_only(X)
    with pytest.raises(ValueError, match="decoder-only"):
        decoder_only(X, ENCODER)
    with_encoder = TransformerDecoder(2, 12)
    with_encoder(X, ENCODER)
    with pytest.raises(ValueError, match="encoder_sequence=None"):
        with_encoder(X)
    with pytest.raises(ValueError, match="encoder_padding_mask"):
        TransformerDecoder(2, 12)(X, encoder_padding_mask=ENCODER_PADDING)


def test_key_dim_default_needs_divisible_hidden_size():
    with pytest.raises(ValueError, match="num_heads=3"):
        TransformerDecoder(3, 12)(X)
    assert tuple(TransformerDecoder(3, 12, key_dim=5)(X, ENCODER).shape) == X.shape


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_heads": -1}, "num_heads"),
        ({"intermediate_dim": 0}, "intermediate_dim"),
        ({"dropout": -0.1}, "dropout"),
        ({"layer_norm_epsilon": "small"}, "layer_norm_epsilon"),
        ({"key_dim": 1.5}, "key_dim"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TransformerDecoder(**{"num_heads": 2, "intermediate_dim": 12, **kwargs})


def test_bad_masks_and_inputs():
    layer = TransformerDecoder(2, 12)
    with pytest.raises(ValueError, match="decoder_padding_mask"):
        layer(X, ENCODER, decoder_padding_mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="encoder_padding_mask"):
        layer(X, ENCODER, encoder_padding_mask=np.ones((2, 6), bool))
    with pytest.raises(ValueError, match="rank 3"):
        TransformerDecoder(2, 12)(X[0])
    with pytest.raises(ValueError, match="rank 3"):
        TransformerDecoder(2, 12)(X, ENCODER[0])


# Incremental decoding: `cached_call` one step at a time gives `call` on the
# whole prefix (both backends, both norms, with and without cross-attention).


@pytest.mark.parametrize("normalize_first", [False, True])
@pytest.mark.parametrize("with_encoder", [False, True])
def test_cached_steps_equal_the_full_call(with_encoder, normalize_first):
    rng = np.random.default_rng(0)
    batch, length, source, dim = 2, 6, 5, 8
    layer = TransformerDecoder(
        num_heads=2, intermediate_dim=16, normalize_first=normalize_first
    )
    x = rng.normal(size=(batch, length, dim)).astype("float32")
    encoder = rng.normal(size=(batch, source, dim)).astype("float32")
    encoder_padding = np.array([[True] * 5, [True] * 3 + [False] * 2])
    kwargs = dict(encoder_padding_mask=encoder_padding) if with_encoder else {}
    args = (encoder,) if with_encoder else ()
    full = ops.convert_to_numpy(layer(x, *args, **kwargs))
    self_cache, cross_cache = layer.initial_cache(
        batch, length, encoder if with_encoder else None
    )
    steps = []
    for i in range(length):
        y, self_cache = layer.cached_call(
            x[:, i : i + 1],
            self_cache,
            i,
            cross_cache,
            encoder_padding if with_encoder else None,
        )
        steps.append(ops.convert_to_numpy(y))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)
    # The padded encoder keys get no cross-attention weight.
    if with_encoder:
        _, _, scores = layer.cached_call(
            x[:, :1],
            layer.initial_cache(batch, length, encoder)[0],
            0,
            cross_cache,
            encoder_padding,
            return_cross_attention_scores=True,
        )
        scores = ops.convert_to_numpy(scores)
        assert scores.shape == (batch, 2, 1, source)
        np.testing.assert_allclose(scores[1, :, :, 3:], 0.0)
        np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)


def test_cached_call_checks_the_cross_attention_cache():
    layer = TransformerDecoder(num_heads=2, intermediate_dim=8)
    x = np.zeros((1, 2, 4), "float32")
    layer(x, x)
    self_cache, _ = layer.initial_cache(1, 2, x)
    with pytest.raises(ValueError, match="cross_attention_cache"):
        layer.cached_call(x[:, :1], self_cache, 0)

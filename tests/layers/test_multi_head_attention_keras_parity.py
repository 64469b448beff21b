"""`MultiHeadAttention` against `keras.layers.MultiHeadAttention`, feature by feature.

Each test copies one layer's weights into the other and compares numbers:
quantized and LoRA sublayers, per-head masks, `use_gate`, `attention_axes`
over inputs of rank > 3, `sliding_window`, the `_compute_attention` hook and
Keras' error wording. Float64 NumPy references check what Keras does not
(fully masked rows).
"""

import doctest
import os
import tempfile
import warnings

import keras
import numpy as np
import pytest

from layers.multi_head_attention import MultiHeadAttention
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import masked_softmax

B, T, S, D = 2, 7, 9, 12
HEADS, KEY_DIM = 3, 4
IMPLEMENTATIONS = ["explicit", "fused"]
# Modes `model.quantize` applies without calibration data.
# int4 and float8 repeat int8's code path with other kernels: slow run only.
QUANTIZATION_MODES = [
    "int8",
    pytest.param("int4", marks=pytest.mark.slow),
    pytest.param("float8", marks=pytest.mark.slow),
]
from tests.layers.test_multi_head_attention import ZERO_GRADIENT  # noqa: E402


def _np(x):
    return keras.ops.convert_to_numpy(x).astype("float64")


def _normal(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _mask(shape, seed=0, p=0.3):
    """A random boolean mask in which every row sees its first key."""
    mask = np.random.default_rng(seed).random(shape) > p
    mask[..., 0] = True
    return mask


def _pair(query, value, key=None, implementation="explicit", **kwargs):
    """Our layer and Keras' with the same (random, non-zero-bias) weights."""
    ours = MultiHeadAttention(HEADS, KEY_DIM, implementation=implementation, **kwargs)
    theirs = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, **kwargs)
    ours(query, value, key), theirs(query, value, key)
    rng = np.random.default_rng(1)
    theirs.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in theirs.weights]
    )
    ours.set_weights(theirs.get_weights())
    return ours, theirs


def _assert_same(got, want, atol=2e-5):
    got, want = keras.tree.flatten(got), keras.tree.flatten(want)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(_np(a), _np(b), atol=atol, rtol=1e-5)


def _reference(weights, query, value, key=None, keep=None, causal=False, gate=False):
    """Float64 rank-3 multi-head attention; `keep` broadcasts to `(B, H, T, S)`.

    `weights` in Keras' order (query, key, [gate,] value, output; kernel then
    bias). Query rows with no kept key get context 0.
    """
    key = value if key is None else key
    w = [np.asarray(x, "float64") for x in weights]
    wq, bq, wk, bk = w[:4]
    wg, bg = (w[4], w[5]) if gate else (None, None)
    wv, bv, wo, bo = w[6:] if gate else w[4:]
    q = np.einsum("btd,dhk->bhtk", query, wq) + bq[:, None, :]
    k = np.einsum("bsd,dhk->bhsk", key, wk) + bk[:, None, :]
    v = np.einsum("bsd,dhk->bhsk", value, wv) + bv[:, None, :]
    logits = np.einsum("bhtk,bhsk->bhts", q, k) / np.sqrt(q.shape[-1])
    full = np.ones(logits.shape, bool)
    if keep is not None:
        full &= np.broadcast_to(np.asarray(keep, bool), logits.shape)
    if causal:
        full &= np.tril(np.ones(logits.shape[-2:], bool))
    weights = masked_softmax(logits, full)
    context = np.einsum("bhts,bhsv->bthv", weights, v)
    if gate:
        z = np.einsum("btd,dhv->bthv", query, wg) + bg
        context = context / (1.0 + np.exp(-z))
    return np.einsum("bthv,hvo->bto", context, wo) + bo, weights


def _model(layer_cls, **kwargs):
    query, value = keras.Input((T, D), name="query"), keras.Input((S, D), name="value")
    layer = layer_cls(HEADS, KEY_DIM, name="mha", **kwargs)
    return keras.Model([query, value], layer(query, value))


def _quantize(model, mode):
    with warnings.catch_warnings():
        # Layers without weights (input, dropout) warn that they cannot be.
        warnings.simplefilter("ignore")
        model.quantize(mode)


# ------------------------------------------------------------ quantization --


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("mode", QUANTIZATION_MODES)
@pytest.mark.parametrize("use_gate", [False, True])
def test_quantized_model_matches_keras(mode, implementation, use_gate):
    inputs = [_normal((B, T, D), 2), _normal((B, S, D), 3)]
    kwargs = {"use_gate": use_gate}
    ours = _model(MultiHeadAttention, implementation=implementation, **kwargs)
    theirs = _model(keras.layers.MultiHeadAttention, **kwargs)
    theirs.set_weights([w * 2.0 + 0.05 for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())
    float_out = _np(ours(inputs))
    _quantize(ours, mode)
    _quantize(theirs, mode)
    mha = ours.get_layer("mha")
    assert all(d.quantization_mode == mode for d in mha._projection_layers())
    got, want = _np(ours(inputs)), _np(theirs(inputs))
    # Same quantized sublayers, same numbers; and quantization did something
    # (int4 is coarse: about 0.3 of the largest output here, as in Keras').
    # Reading the int8 kernel as floats was off by a factor of about 1e6.
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max())
    error = np.abs(got - float_out).max() / np.abs(float_out).max()
    assert 1e-6 < error < 0.5
    ours.compile(jit_compile=True)
    np.testing.assert_allclose(
        np.asarray(ours.predict_on_batch(inputs)), got, atol=1e-5 * np.abs(got).max()
    )


@pytest.mark.parametrize("mode", QUANTIZATION_MODES)
def test_quantized_model_round_trips_through_a_keras_file(mode):
    inputs = [_normal((B, T, D), 4), _normal((B, S, D), 5)]
    model = _model(MultiHeadAttention, use_gate=True, output_shape=(2, 3))
    _quantize(model, mode)
    expected = _np(model(inputs))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
    layer = reloaded.get_layer("mha")
    assert [d.quantization_mode for d in layer._projection_layers()] == [mode] * 5
    np.testing.assert_allclose(_np(reloaded(inputs)), expected, atol=1e-6)


def test_layer_quantize_quantizes_every_sublayer():
    q, v = _normal((B, T, D), 6), _normal((B, S, D), 7)
    ours, theirs = _pair(q, v, use_gate=True)
    float_out = _np(ours(q, v))
    ours.quantize("int8")
    for sublayer in theirs._flatten_layers(include_self=False):
        if isinstance(sublayer, keras.layers.EinsumDense):
            sublayer.quantize("int8")
    for sublayer in ours._projection_layers():
        assert keras.backend.standardize_dtype(sublayer._kernel.dtype) == "int8"
    got = _np(ours(q, v))
    np.testing.assert_allclose(got, _np(theirs(q, v)), atol=1e-5)
    assert np.abs(got - float_out).max() > 1e-6
    with pytest.raises(ValueError, match="already quantized"):
        ours.query_dense.quantize("int8")


def test_dtype_policy_map_quantizes_sublayers():
    policy = keras.dtype_policies.QuantizedDTypePolicy("int8", "float32")
    policy_map = keras.dtype_policies.DTypePolicyMap()
    for name in ("query", "key", "value"):
        policy_map[f"mha/{name}"] = policy
    layer = MultiHeadAttention(HEADS, KEY_DIM, dtype=policy_map, name="mha")
    layer.build((B, T, D), (B, S, D))
    assert [d.quantization_mode for d in layer._projection_layers()] == [
        "int8",
        "int8",
        "int8",
        None,
    ]
    out = layer(_normal((B, T, D)), _normal((B, S, D)))
    assert np.all(np.isfinite(_np(out)))


def test_only_special_sublayers_are_called(monkeypatch):
    # Plain float projections stay one 2-D matmul each (the fast path); a
    # quantized or LoRA sublayer computes its own projection.
    calls = []
    call = keras.layers.EinsumDense.__call__

    def spy(self, *args, **kwargs):
        calls.append(self.name)
        return call(self, *args, **kwargs)

    q, v = _normal((B, T, D)), _normal((B, S, D))
    layer = MultiHeadAttention(HEADS, KEY_DIM, use_gate=True)
    layer(q, v)
    monkeypatch.setattr(keras.layers.EinsumDense, "__call__", spy)
    layer(q, v)
    assert calls == []
    layer.key_dense.enable_lora(2)
    layer.value_dense.quantize("int8")
    layer(q, v)
    assert calls == ["key", "value"]


# -------------------------------------------------------------------- LoRA --


def _randomize_lora(layer, seed):
    """Non-zero LoRA weights (B starts at zero, which would change nothing)."""
    rng = np.random.default_rng(seed)
    for sublayer in layer._flatten_layers(include_self=False):
        if getattr(sublayer, "lora_enabled", False):
            for weight in (sublayer.lora_kernel_a, sublayer.lora_kernel_b):
                weight.assign(rng.normal(scale=0.3, size=weight.shape))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_lora_matches_keras_and_the_merged_kernels(implementation):
    q, v = _normal((B, T, D), 8), _normal((B, S, D), 9)
    ours, theirs = _pair(q, v, implementation=implementation, use_gate=True)
    before = _np(ours(q, v))
    ours.enable_lora(2)
    for sublayer in theirs._flatten_layers(include_self=False):
        if isinstance(sublayer, keras.layers.EinsumDense):
            sublayer.enable_lora(2)
    assert len(ours.trainable_weights) == len(theirs.trainable_weights) == 5 * 3
    assert len(ours.non_trainable_weights) == 5
    _randomize_lora(theirs, 10)
    for mine, keras_weight in zip(ours.weights, theirs.weights, strict=True):
        mine.assign(keras_weight)
    got = _np(ours(q, v))
    np.testing.assert_allclose(got, _np(theirs(q, v)), atol=2e-5)
    assert np.abs(got - before).max() > 1e-2
    merged = []
    for sublayer in ours._projection_layers():
        a, b = _np(sublayer.lora_kernel_a), _np(sublayer.lora_kernel_b)
        merged += [_np(sublayer._kernel) + a @ b, _np(sublayer.bias)]
    expected, _ = _reference(merged, q, v, gate=True)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_lora_trains_only_the_adapters_and_saves_merged():
    inputs = [_normal((B, T, D), 11), _normal((B, S, D), 12)]
    model = _model(MultiHeadAttention)
    layer = model.get_layer("mha")
    layer.query_dense.enable_lora(2)
    layer.value_dense.enable_lora(2)
    frozen = [_np(w) for w in layer.non_trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    target = _normal((B, T, D), 13)
    model.fit(inputs, target, epochs=2, verbose=0)
    for weight, value in zip(layer.non_trainable_weights, frozen, strict=True):
        np.testing.assert_array_equal(_np(weight), value)
    assert np.abs(_np(layer.query_dense.lora_kernel_b)).max() > 0
    expected = _np(model(inputs))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(reloaded(inputs)), expected, atol=1e-5)


# ------------------------------------------------------------------- masks --


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_per_head_masks_match_keras_and_the_reference(implementation, small_blocks):
    q, v = _normal((B, T, D), 14), _normal((B, S, D), 15)
    ours, theirs = _pair(q, v, implementation=implementation)
    mask = _mask((B, HEADS, T, S), 16)
    for causal in (False, True):
        kwargs = {"attention_mask": mask, "use_causal_mask": causal}
        _assert_same(
            ours(q, v, return_attention_scores=True, **kwargs),
            theirs(q, v, return_attention_scores=True, **kwargs),
        )
    # Heads really differ, and a row hidden in one head only gives that head
    # context 0 (Keras averages the values there instead).
    mask[0, 1, 2, :] = False
    padding = _mask((B, S), 17)
    out, scores = ours(
        q, v, attention_mask=mask, value_mask=padding, return_attention_scores=True
    )
    keep = mask & padding[:, None, None, :]
    expected, expected_scores = _reference(ours.get_weights(), q, v, keep=keep)
    np.testing.assert_allclose(_np(out), expected, atol=1e-5)
    np.testing.assert_allclose(_np(scores), expected_scores, atol=1e-6)
    np.testing.assert_array_equal(_np(scores)[0, 1, 2], 0.0)
    shared, _ = _reference(ours.get_weights(), q, v, keep=mask[:, :1])
    assert np.abs(shared - expected).max() > 1e-3


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_mask_ranks_broadcast_as_in_keras(implementation):
    x = _normal((B, T, D), 18)
    ours, theirs = _pair(x, x, implementation=implementation)
    square = _mask((T, T), 19)
    want = _np(theirs(x, x, attention_mask=square))
    for mask in (
        square,
        np.tile(square, (B, 1, 1)),
        np.tile(square, (B, 1, 1, 1)),
        np.tile(square, (B, HEADS, 1, 1)),
        square[None, None],
    ):
        np.testing.assert_allclose(
            _np(ours(x, x, attention_mask=mask)), want, atol=2e-5
        )


def test_padding_masks_broadcast():
    q, v = _normal((B, T, D), 41), _normal((B, S, D), 42)
    layer, _ = _pair(q, v)
    query_mask, value_mask = _mask((T,), 43), _mask((S,), 44)
    tiled = {
        "query_mask": np.tile(query_mask, (B, 1)),
        "value_mask": np.tile(value_mask, (B, 1)),
    }
    got = _np(layer(q, v, query_mask=query_mask, value_mask=value_mask))
    np.testing.assert_allclose(got, _np(layer(q, v, **tiled)), atol=1e-6)
    keep = query_mask[:, None] & value_mask[None, :]
    expected, _ = _reference(layer.get_weights(), q, v, keep=keep)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    "shape",
    [(B, HEADS + 1, T, S), (B, 2, HEADS, T, S), (S,), (B, T, S + 1)],
)
def test_bad_attention_mask_shapes(shape):
    layer = MultiHeadAttention(HEADS, KEY_DIM)
    q, v = _normal((B, T, D)), _normal((B, S, D))
    with pytest.raises(ValueError, match=r"attention_mask.*Received: attention_mask"):
        layer(q, v, attention_mask=np.ones(shape, bool))


# ---------------------------------------------------------------- use_gate --


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_gate_matches_keras_and_the_reference(implementation, small_blocks):
    q, v = _normal((B, T, D), 20), _normal((B, S, D), 21)
    ours, theirs = _pair(q, v, implementation=implementation, use_gate=True)
    assert [w.path for w in ours.weights] == [
        f"{ours.name}/{n}/{p}"
        for n in ("query", "key", "gate", "value", "attention_output")
        for p in ("kernel", "bias")
    ]
    mask = _mask((B, T, S), 22)
    for kwargs in ({}, {"attention_mask": mask}, {"use_causal_mask": True}):
        _assert_same(ours(q, v, **kwargs), theirs(q, v, **kwargs))
    expected, _ = _reference(ours.get_weights(), q, v, keep=mask[:, None], gate=True)
    np.testing.assert_allclose(
        _np(ours(q, v, attention_mask=mask)), expected, atol=1e-5
    )
    plain, _ = _reference(
        [w for i, w in enumerate(ours.get_weights()) if i not in (4, 5)],
        q,
        v,
        keep=mask[:, None],
    )
    assert np.abs(plain - expected).max() > 1e-2


def test_layer_with_gate():
    x = _normal((B, T, D), 23)
    run_layer_test(
        MultiHeadAttention,
        {"num_heads": HEADS, "key_dim": KEY_DIM, "use_gate": True, "value_dim": 5},
        {"query": x, "value": x},
        expected_output_shape=(B, T, D),
        expected_num_trainable_weights=10,
        call_kwargs={"use_causal_mask": True},
        zero_gradient_weights=ZERO_GRADIENT,
    )


# ---------------------------------------------------- attention_axes, rank --

HIGH_RANK_CASES = [
    # (query shape, value shape, attention_axes, attention_mask shape)
    ((B, 3, 5, D), (B, 3, 4, D), (2,), (B, 3, HEADS, 5, 4)),
    ((B, 3, 5, D), (B, 3, 5, D), -2, (5, 5)),
    ((B, 5, 3, D), (B, 4, 3, D), (1,), (B, 1, 5, 4)),
    ((B, 3, 5, D), (B, 2, 4, D), None, (B, 3, 5, 2, 4)),
    ((B, 2, 3, 4, D), (B, 2, 3, 5, D), (1, 3), (B, 3, 1, 2, 4, 2, 5)),
    ((B, 2, 3, 4, D), (B, 2, 3, 5, D), (3, 1), None),
]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("q_shape, v_shape, axes, mask_shape", HIGH_RANK_CASES)
def test_attention_axes_match_keras(q_shape, v_shape, axes, mask_shape, implementation):
    q, v, k = _normal(q_shape, 24), _normal(v_shape, 25), _normal(v_shape, 26)
    kwargs = {"attention_axes": axes, "use_gate": True}
    ours, theirs = _pair(q, v, k, implementation=implementation, **kwargs)
    calls = [{}, {"return_attention_scores": True}]
    if mask_shape is not None:
        mask = _mask(mask_shape, 27)
        calls += [{"attention_mask": mask, "return_attention_scores": True}]
    for call in calls:
        got = ours(q, v, k, **call)
        _assert_same(got, theirs(q, v, k, **call))
        plain = {n: a for n, a in call.items() if n != "return_attention_scores"}
        np.testing.assert_allclose(
            _np(ours(q, v, k, **plain)), _np(keras.tree.flatten(got)[0]), atol=1e-6
        )
    spec = ours.compute_output_spec(
        keras.KerasTensor(q.shape),
        keras.KerasTensor(v.shape),
        return_attention_scores=True,
    )
    assert [tuple(s.shape) for s in spec] == [
        tuple(t.shape) for t in ours(q, v, return_attention_scores=True)
    ]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_high_rank_padding_masks_hide_positions(implementation):
    # Keras' layer cannot combine Keras masks of rank-4 inputs; here a masked
    # position is hidden as a key and, as a query, gives the output bias.
    x = _normal((B, 3, 5, D), 28)
    layer = MultiHeadAttention(
        HEADS, KEY_DIM, attention_axes=(2,), implementation=implementation
    )
    layer(x, x)
    layer.set_weights([w + 0.1 for w in layer.get_weights()])
    padding = _mask((B, 3, 5), 29)
    padding[0, 1, 2] = False
    changed = x.copy()
    changed[~padding] += 10.0
    out = _np(layer(x, x, query_mask=padding, value_mask=padding))
    np.testing.assert_allclose(
        _np(layer(changed, changed, value_mask=padding))[padding],
        _np(layer(x, x, value_mask=padding))[padding],
        atol=1e-5,
    )
    bias = _np(layer.output_dense.bias)
    np.testing.assert_allclose(out[0, 1, 2], bias, atol=1e-6)
    explicit = (padding[:, :, :, None] & padding[:, :, None, :])[:, :, None]
    np.testing.assert_allclose(
        _np(layer(x, x, attention_mask=explicit)), out, atol=1e-6
    )


def test_layer_high_rank_attention_axes():
    x = _normal((B, 3, 5, D), 30)
    run_layer_test(
        MultiHeadAttention,
        {"num_heads": HEADS, "key_dim": KEY_DIM, "attention_axes": (2,)},
        {"query": x, "value": x, "attention_mask": _mask((B, 3, 1, 5, 5), 31)},
        expected_output_shape=(B, 3, 5, D),
        expected_num_trainable_weights=8,
        zero_gradient_weights=ZERO_GRADIENT,
    )


def test_bad_attention_axes_for_the_rank():
    for axes in ((0,), (3,), (1, 1), (-3,)):
        layer = MultiHeadAttention(HEADS, KEY_DIM, attention_axes=axes)
        with pytest.raises(ValueError, match="attention_axes"):
            layer(_normal((B, T, D)), _normal((B, S, D)))
    layer = MultiHeadAttention(HEADS, KEY_DIM, attention_axes=(2,))
    with pytest.raises(ValueError, match="must be equal"):
        layer(_normal((B, 3, 5, D)), _normal((B, 4, 5, D)))


# ---------------------------------------------------------- sliding_window --


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_sliding_window_matches_keras_and_the_reference(implementation, small_blocks):
    x = _normal((B, T, D), 32)
    ours, theirs = _pair(x, x, implementation=implementation, sliding_window=3)
    band = np.abs(np.arange(T)[:, None] - np.arange(T)[None, :]) < 3
    mask = _mask((B, T, T), 33)
    for causal in (False, True):
        for extra in ({}, {"attention_mask": mask}):
            kwargs = {
                "use_causal_mask": causal,
                "return_attention_scores": True,
                **extra,
            }
            got = ours(x, x, **kwargs)
            _assert_same(got, theirs(x, x, **kwargs))
            keep = band & (mask if extra else True)
            expected, weights = _reference(
                ours.get_weights(),
                x,
                x,
                keep=np.asarray(keep)[..., None, :, :],
                causal=causal,
            )
            np.testing.assert_allclose(_np(got[0]), expected, atol=1e-5)
            np.testing.assert_allclose(_np(got[1]), weights, atol=1e-6)
    config = ours.get_config()
    assert config["sliding_window"] == 3
    assert MultiHeadAttention.from_config(config).sliding_window == 3


def test_sliding_window_with_attention_axes_acts_on_the_attention_axis():
    x = _normal((B, 3, T, D), 34)
    ours, theirs = _pair(x, x, attention_axes=(1,), sliding_window=2)
    # Keras builds the window from axis 1, which here is the attention axis.
    _assert_same(
        ours(x, x, return_attention_scores=True),
        theirs(x, x, return_attention_scores=True),
    )


# ------------------------------------------------------ _compute_attention --


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_compute_attention_hook_matches_keras(implementation):
    x = _normal((B, T, D), 35)
    ours, theirs = _pair(x, x, implementation=implementation)
    q, k, v = (_normal((B, T, HEADS, KEY_DIM), s) for s in (36, 37, 38))
    extra = _mask((1, T, T), 39)
    for kwargs in (
        {"attention_mask": extra},
        {"attention_mask": extra, "use_causal_mask": True},
        {"use_causal_mask": True, "return_attention_scores": True},
    ):
        got, got_scores = ours._compute_attention(q, k, v, **kwargs)
        want, want_scores = theirs._compute_attention(q, k, v, **kwargs)
        np.testing.assert_allclose(_np(got), _np(want), atol=2e-5)
        if kwargs.get("return_attention_scores"):
            np.testing.assert_allclose(_np(got_scores), _np(want_scores), atol=1e-6)


def test_overridden_compute_attention_gets_every_mask():
    seen = []

    class Probe(MultiHeadAttention):
        def _compute_attention(
            self,
            query,
            key,
            value,
            attention_mask=None,
            training=None,
            return_attention_scores=False,
        ):
            seen.append(None if attention_mask is None else _np(attention_mask))
            return super()._compute_attention(
                query, key, value, attention_mask, training, return_attention_scores
            )

    x = _normal((B, T, D), 40)
    probe = Probe(HEADS, KEY_DIM, sliding_window=2)
    probe(x, x)
    plain = MultiHeadAttention.from_config(
        {**probe.get_config(), "name": "plain"},
    )
    plain(x, x)
    plain.set_weights(probe.get_weights())
    seen.clear()
    got = probe(x, x, use_causal_mask=True)
    band = (np.abs(np.arange(T)[:, None] - np.arange(T)) < 2) & np.tril(
        np.ones((T, T), bool)
    )
    np.testing.assert_array_equal(np.broadcast_to(seen[0], (1, 1, T, T))[0, 0], band)
    np.testing.assert_allclose(
        _np(got), _np(plain(x, x, use_causal_mask=True)), atol=1e-6
    )


# -------------------------------------------------------------- arguments --


@pytest.mark.parametrize(
    "query_shape, value_shape, key_shape",
    [
        ((2, 4, 8), (2, 2, 7), (2,)),
        ((2, 4, 8), (2, 2, 8), (2, 1, 7)),
        ((2, 4, 2, 3, 8), (2, 1, 1, 5, 8), (2, 1, 15, 5, 2)),
    ],
)
def test_shape_mismatch_wording_is_keras(query_shape, value_shape, key_shape):
    layer = MultiHeadAttention(num_heads=4, key_dim=2, value_dim=2)
    with pytest.raises(ValueError, match="must be equal"):
        layer.compute_output_shape(query_shape, value_shape, key_shape)
    with pytest.raises(ValueError, match="must be equal"):
        layer(np.ones(query_shape), np.ones(value_shape), np.ones(key_shape))


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_size_argument_wording_is_keras(bad):
    for name in ("num_heads", "key_dim", "value_dim"):
        kwargs = {"num_heads": 4, "key_dim": 4, name: bad}
        with pytest.raises(ValueError, match=f"argument `{name}`.*{name}={bad}"):
            MultiHeadAttention(**kwargs)


def test_config_has_every_keras_argument():
    keras_config = keras.layers.MultiHeadAttention(
        2, 4, attention_axes=(1,), sliding_window=3, use_gate=True
    ).get_config()
    layer = MultiHeadAttention.from_config(keras_config)
    assert (layer.attention_axes, layer.sliding_window, layer.use_gate) == (
        (1,),
        3,
        True,
    )
    config = layer.get_config()
    assert set(keras_config) <= set(config)
    for name in keras_config:
        if name not in ("name", "dtype"):
            assert config[name] == keras_config[name], name


def test_docstring_example_runs():
    runner = doctest.DocTestRunner()
    globs = {"MultiHeadAttention": MultiHeadAttention}
    for test in doctest.DocTestFinder().find(MultiHeadAttention, globs=globs):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


def test_flash_attention_behaves_as_keras():
    with pytest.raises(ValueError, match="Dropout is not supported"):
        MultiHeadAttention(HEADS, 8, flash_attention=True, dropout=0.1)
    x = _normal((B, T, D), 45)
    ours = MultiHeadAttention(HEADS, KEY_DIM, flash_attention=True)
    theirs = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, flash_attention=True)
    ours.build(x.shape, x.shape), theirs.build(x.shape, x.shape)
    ours.set_weights(theirs.get_weights())
    assert ours.get_config()["flash_attention"] is True
    with pytest.raises(ValueError, match="Returning attention scores is not"):
        ours(x, x, return_attention_scores=True)
    try:
        want = theirs(x, x)
    except Exception as error:  # No flash kernel here (CPU, TensorFlow).
        with pytest.raises(type(error)):
            ours(x, x)
        return
    np.testing.assert_allclose(_np(ours(x, x)), _np(want), atol=1e-3)

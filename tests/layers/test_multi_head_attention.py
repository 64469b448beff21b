import keras
import numpy as np
import pytest

import layers.multi_head_attention as mha_module
from layers.multi_head_attention import MultiHeadAttention
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import masked_softmax

B, T, S, D, DV = 2, 7, 9, 12, 10
HEADS, KEY_DIM = 3, 4
IMPLEMENTATIONS = ["explicit", "fused"]
# The key bias adds the same `q_i . b_k` to every score of query `i`, which a
# softmax ignores: its gradient is zero.
ZERO_GRADIENT = ("key/bias",)


def _inputs(seed=0, t_len=T, s_len=S):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, t_len, D)).astype("float32")
    v = rng.normal(size=(B, s_len, DV)).astype("float32")
    k = rng.normal(size=(B, s_len, DV)).astype("float32")
    return q, v, k


def _mask(seed, shape, fully_masked_row=True, p=0.3):
    mask = np.random.default_rng(seed).random(shape) > p
    mask[..., 0] = True
    if fully_masked_row:
        mask[0, 1, :] = False
    return mask


def _built(query, value, key=None, seed=1, **kwargs):
    """A layer built on the inputs, with random weights (non-zero biases)."""
    layer = MultiHeadAttention(HEADS, KEY_DIM, **kwargs)
    layer(query, value, key)
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.weights]
    )
    return layer


def _np(x):
    return keras.ops.convert_to_numpy(x).astype("float64")


def _reference(layer, query, value, key=None, mask=None, causal=False):
    """Float64 multi-head attention from the definitions; also the weights."""
    key = value if key is None else key
    wq, bq, wk, bk, wv, bv, wo, bo = [w.astype("float64") for w in layer.get_weights()]
    q = np.einsum("btd,dhk->bhtk", query, wq) + bq[:, None, :]
    k = np.einsum("bsd,dhk->bhsk", key, wk) + bk[:, None, :]
    v = np.einsum("bsd,dhk->bhsk", value, wv) + bv[:, None, :]
    logits = np.einsum("bhtk,bhsk->bhts", q, k) / np.sqrt(q.shape[-1])
    keep = np.ones(logits.shape, dtype=bool)
    if mask is not None:
        keep &= np.broadcast_to(np.asarray(mask, bool)[:, None], logits.shape)
    if causal:
        t_len, s_len = logits.shape[-2:]
        keep &= np.arange(t_len)[:, None] >= np.arange(s_len)[None, :]
    weights = masked_softmax(logits, keep)
    context = np.einsum("bhts,bhsv->bthv", weights, v)
    return np.einsum("bthv,hvo->bto", context, wo) + bo, weights


def test_layer_causal_self_attention(small_blocks):
    x = _inputs()[0]
    run_layer_test(
        MultiHeadAttention,
        {"num_heads": HEADS, "key_dim": KEY_DIM, "implementation": "explicit"},
        {"query": x, "value": x},
        expected_output_shape=(B, T, D),
        expected_num_trainable_weights=8,
        call_kwargs={"use_causal_mask": True},
        zero_gradient_weights=ZERO_GRADIENT,
    )


def test_layer_cross_attention_with_masks_and_output_shape():
    q, v, k = _inputs()
    out = run_layer_test(
        MultiHeadAttention,
        {
            "num_heads": HEADS,
            "key_dim": KEY_DIM,
            "value_dim": 5,
            "dropout": 0.1,
            "output_shape": (2, 3),
            "kernel_regularizer": "l2",
            "seed": 3,
        },
        {"query": q, "value": v, "key": k, "attention_mask": _mask(0, (B, T, S))},
        expected_output_shape=(B, T, 2, 3),
        expected_num_trainable_weights=8,
        zero_gradient_weights=ZERO_GRADIENT,
    )
    # The fully masked row: context zero, output = output-projection bias (zero).
    np.testing.assert_array_equal(out[0, 1], np.zeros((2, 3)))


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_correctness_with_fixed_weights(implementation):
    # Keras' `test_correctness`: identity projections (each head sees its
    # input as is), zero biases, output kernel summing each head's values.
    query = np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")
    key = np.array([[[0.0, 1.0], [1.0, 0.0]]], "float32")
    value = np.array([[[1.0, 2.0], [3.0, 4.0]]], "float32")
    layer = MultiHeadAttention(2, 2, implementation=implementation)
    layer.build(query.shape, value.shape, key.shape)
    kernel = np.repeat(np.eye(2)[:, None, :], 2, axis=1)
    zeros = np.zeros((2, 2))
    layer.set_weights([kernel, zeros] * 3 + [kernel, np.zeros(2)])
    out, scores = layer(query, value, key, return_attention_scores=True)
    # Query 0 scores the keys [0, 1] / sqrt(2), query 1 scores [1, 0] / sqrt(2):
    # weights [1, e^(1/sqrt 2)] / (1 + e^(1/sqrt 2)) = [0.330238, 0.669762].
    # Output j of a query: the sum of head j's context, [1 + 2, 3 + 4] weighted.
    np.testing.assert_allclose(
        _np(scores), [[[[0.330238, 0.669762], [0.669762, 0.330238]]] * 2], atol=1e-6
    )
    np.testing.assert_allclose(
        _np(out), [[[5.679048, 5.679048], [4.320952, 4.320952]]], atol=1e-5
    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize(
    "case",
    ["none", "attention", "value", "query", "causal", "causal+attention", "causal_t>s"],
)
def test_matches_float64_reference(implementation, case, small_blocks):
    q, v, k = _inputs(s_len=5) if case == "causal_t>s" else _inputs()
    t_len, s_len = q.shape[1], v.shape[1]
    layer = _built(q, v, k, implementation=implementation)
    kwargs, mask = {}, None
    if "attention" in case:
        mask = _mask(1, (B, t_len, s_len))
        kwargs["attention_mask"] = mask
    elif case == "value":
        value_mask = _mask(2, (B, S), fully_masked_row=False)
        value_mask[1] = False
        kwargs["value_mask"], mask = value_mask, value_mask[:, None, :]
    elif case == "query":
        query_mask = _mask(3, (B, T), fully_masked_row=False)
        kwargs["query_mask"], mask = query_mask, query_mask[:, :, None]
    causal = case.startswith("causal")
    out, scores = layer(
        q, v, k, use_causal_mask=causal, return_attention_scores=True, **kwargs
    )
    expected, expected_scores = _reference(layer, q, v, k, mask, causal)
    np.testing.assert_allclose(_np(out), expected, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(_np(scores), expected_scores, atol=1e-6)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_matches_keras_multi_head_attention(implementation, small_blocks):
    q, v, k = _inputs()
    mask = _mask(4, (B, T, S), fully_masked_row=False)
    cross = [{}, {"attention_mask": mask}, {"use_causal_mask": True}]
    self_calls = [{"use_causal_mask": True}, {"return_attention_scores": True}]
    for args, calls in [((q, v, k), cross), ((q, q), self_calls)]:
        ours = MultiHeadAttention(HEADS, KEY_DIM, implementation=implementation)
        theirs = keras.layers.MultiHeadAttention(HEADS, KEY_DIM)
        ours(*args), theirs(*args)
        theirs.set_weights([w * 3 + 0.1 for w in theirs.get_weights()])
        ours.set_weights(theirs.get_weights())
        for kwargs in calls:
            got, want = ours(*args, **kwargs), theirs(*args, **kwargs)
            for a, b in zip(
                keras.tree.flatten(got), keras.tree.flatten(want), strict=True
            ):
                np.testing.assert_allclose(_np(a), _np(b), atol=2e-5, rtol=1e-5)


def test_keras_masks_are_honoured():
    ids = np.array([[3, 4, 5, 0, 0], [6, 7, 8, 9, 2]])
    embed = keras.layers.Embedding(10, D, mask_zero=True)
    # A fresh masked tensor per call: Keras' layer deletes its inputs' masks.
    ours, theirs = (
        MultiHeadAttention(HEADS, KEY_DIM),
        keras.layers.MultiHeadAttention(HEADS, KEY_DIM),
    )
    ours(embed(ids), embed(ids)), theirs(embed(ids), embed(ids))
    theirs.set_weights([w + 0.1 for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())
    got = _np(ours(embed(ids), embed(ids)))
    want = _np(theirs(embed(ids), embed(ids)))
    valid = ids != 0
    plain = _np(embed(ids)).astype("float32")
    explicit = _np(ours(plain, plain, query_mask=valid, value_mask=valid))
    np.testing.assert_allclose(got, explicit, atol=1e-6)
    # Unpadded queries agree with Keras; padded ones attend to nothing (bias).
    np.testing.assert_allclose(got[valid], want[valid], atol=2e-5)
    bias = _np(ours.output_dense.bias)
    np.testing.assert_allclose(got[~valid], np.broadcast_to(bias, (2, D)), atol=1e-6)
    assert np.abs(_np(ours(plain, plain))[valid] - got[valid]).max() > 1e-3


def test_regularizer_losses_match_keras():
    x = _inputs()[0]
    kwargs = {"activity_regularizer": "l2", "kernel_regularizer": "l1"}
    kwargs["bias_regularizer"] = "l2"
    ours = MultiHeadAttention(HEADS, KEY_DIM, **kwargs)
    theirs = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, **kwargs)
    ours(x, x), theirs(x, x)
    theirs.set_weights([w + 0.1 for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())
    ours(x, x), theirs(x, x)
    assert len(ours.losses) == len(theirs.losses) == 12
    np.testing.assert_allclose(
        sum(_np(loss) for loss in ours.losses),
        sum(_np(loss) for loss in theirs.losses),
        rtol=1e-5,
    )


def test_masked_keys_do_not_change_outputs():
    q, v, k = _inputs()
    value_mask = _mask(5, (B, S), fully_masked_row=False)
    attention_mask = _mask(6, (B, T, S), fully_masked_row=False)
    changed_v, changed_k = v.copy(), k.copy()
    changed_v[~value_mask] += 10.0
    changed_k[~value_mask] -= 10.0
    for implementation in IMPLEMENTATIONS:
        layer = _built(q, v, k, implementation=implementation)
        kw = {"value_mask": value_mask, "attention_mask": attention_mask}
        before = _np(layer(q, v, k, **kw))
        after = _np(layer(q, changed_v, changed_k, **kw))
        np.testing.assert_allclose(after, before, atol=1e-6)
        assert np.abs(_np(layer(q, changed_v, changed_k)) - before).max() > 1e-2


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_causal_outputs_do_not_see_the_future(implementation, small_blocks):
    x = _inputs()[0]
    layer = _built(x, x, implementation=implementation)
    base = _np(layer(x, x, use_causal_mask=True))
    for t in range(T - 1):
        future = x.copy()
        rng = np.random.default_rng(t)
        future[:, t + 1 :] = rng.normal(size=future[:, t + 1 :].shape)
        out = _np(layer(future, future, use_causal_mask=True))
        np.testing.assert_allclose(out[:, : t + 1], base[:, : t + 1], atol=1e-6)
        assert np.abs(out[:, t + 1 :] - base[:, t + 1 :]).max() > 1e-3


def test_query_blocks_are_used(small_blocks, monkeypatch):
    calls = []
    attend = MultiHeadAttention._attend

    def spy(self, q, *args):
        calls.append(tuple(q.shape))
        return attend(self, q, *args)

    x = _inputs()[0]
    layer = _built(x, x, implementation="explicit")
    monkeypatch.setattr(MultiHeadAttention, "_attend", spy)
    layer(x, x, use_causal_mask=True)
    assert [shape[1] for shape in calls] == [2, 3, 2]
    calls.clear()
    layer(x, x)  # T * T pairs: long enough
    assert [shape[1] for shape in calls] == [2, 3, 2]
    calls.clear()
    monkeypatch.setattr(mha_module, "BLOCKED_PAIRS", T * T + 1)
    layer(x, x)
    assert [shape[1] for shape in calls] == [T]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_self_attention_is_permutation_equivariant(implementation):
    x = _inputs()[0]
    layer = _built(x, x, implementation=implementation)
    perm = np.random.default_rng(7).permutation(T)
    out = _np(layer(x, x))
    permuted = _np(layer(x[:, perm], x[:, perm]))
    np.testing.assert_allclose(permuted, out[:, perm], atol=1e-5)


@pytest.mark.parametrize(
    "path",
    ["explicit", "fused", "dropout", "causal", "causal_fused", "jit", "jit_fused"],
)
def test_fully_masked_rows_give_the_bias(path, small_blocks):
    x = _inputs()[0]
    implementation = "fused" if path.endswith("fused") else "explicit"
    dropout = 0.5 if path == "dropout" else 0.0
    layer = _built(x, x, implementation=implementation, dropout=dropout)
    mask = _mask(8, (B, T, T))  # row 1 of batch 0 sees no key
    if path.startswith("causal"):
        mask[1, :, 0] = False  # query 0 of batch 1 sees no key under causality
    kwargs = {"attention_mask": mask, "use_causal_mask": path.startswith("causal")}
    if path.startswith("jit"):
        inputs = {"query": x, "value": x, "attention_mask": mask}
        symbolic = {
            n: keras.Input(a.shape[1:], dtype=a.dtype, name=n)
            for n, a in inputs.items()
        }
        model = keras.Model(symbolic, layer(**symbolic))
        model.compile(jit_compile=True)
        out = np.asarray(model.predict_on_batch(inputs), "float64")
        scores = None
    else:
        out, scores = layer(
            x, x, return_attention_scores=True, training=path == "dropout", **kwargs
        )
        out, scores = _np(out), _np(scores)
    bias = _np(layer.output_dense.bias)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0, 1], bias, atol=1e-6)
    if path.startswith("causal"):
        np.testing.assert_allclose(out[1, 0], bias, atol=1e-6)
    assert np.abs(out[0, 0] - bias).max() > 1e-3
    if scores is not None and path != "dropout":
        np.testing.assert_array_equal(scores[0, :, 1], 0.0)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("causal", [False, True])
def test_output_does_not_depend_on_returning_scores(
    implementation, causal, small_blocks
):
    q, v, k = _inputs()
    layer = _built(q, v, k, implementation=implementation)
    mask = _mask(9, (B, T, S))
    for kwargs in ({}, {"attention_mask": mask}):
        plain = _np(layer(q, v, k, use_causal_mask=causal, **kwargs))
        with_scores, _ = layer(
            q, v, k, use_causal_mask=causal, return_attention_scores=True, **kwargs
        )
        assert np.abs(plain - _np(with_scores)).max() <= 1e-6


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("t_len, s_len", [(0, S), (T, 0), (0, 0)])
def test_zero_length_sequences(implementation, t_len, s_len, small_blocks):
    q, v, k = _inputs(t_len=t_len, s_len=s_len)
    layer = _built(*_inputs(), implementation=implementation)
    for causal in (False, True):
        kwargs = {"use_causal_mask": causal, "query_mask": np.ones((B, t_len), bool)}
        out = layer(q, v, k, **kwargs)
        with_scores, scores = layer(q, v, k, return_attention_scores=True, **kwargs)
        assert tuple(out.shape) == tuple(with_scores.shape) == (B, t_len, D)
        assert tuple(scores.shape) == (B, HEADS, t_len, s_len)
        # With no key to attend to, a query's output is the output bias.
        bias = np.broadcast_to(_np(layer.output_dense.bias), (B, t_len, D))
        np.testing.assert_allclose(_np(out), bias, atol=1e-6)
    dropout = _built(*_inputs(), implementation=implementation, dropout=0.5)
    out, scores = dropout(q, v, k, training=True, return_attention_scores=True)
    assert tuple(out.shape) == (B, t_len, D)
    assert tuple(scores.shape) == (B, HEADS, t_len, s_len)


def test_dropout_only_in_training():
    x = _inputs()[0]
    layer = _built(x, x, dropout=0.5, seed=4)
    inference = _np(layer(x, x))
    np.testing.assert_array_equal(_np(layer(x, x, training=False)), inference)
    trained = _np(layer(x, x, training=True))
    assert np.all(np.isfinite(trained)) and np.abs(trained - inference).max() > 1e-3


@pytest.mark.parametrize(
    "policy,atol", [("mixed_bfloat16", 0.05), ("mixed_float16", 0.01)]
)
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_mixed_precision_close_to_float32(policy, atol, implementation):
    q, v, k = _inputs()
    mask = _mask(10, (B, T, S))
    reference = _built(q, v, k, implementation=implementation)
    expected = _np(reference(q, v, k, attention_mask=mask))
    keras.config.set_dtype_policy(policy)
    layer = MultiHeadAttention(HEADS, KEY_DIM, implementation=implementation)
    layer(q, v, k)
    layer.set_weights(reference.get_weights())
    out, scores = layer(q, v, k, attention_mask=mask, return_attention_scores=True)
    plain = layer(q, v, k, attention_mask=mask)
    assert keras.backend.standardize_dtype(out.dtype) == policy.split("_")[1]
    assert keras.backend.standardize_dtype(scores.dtype) == policy.split("_")[1]
    assert np.all(np.isfinite(_np(out)))
    np.testing.assert_allclose(_np(out), expected, atol=atol * np.abs(expected).max())
    # Without scores the bfloat16 path may softmax in bfloat16: same output.
    np.testing.assert_array_equal(_np(plain), _np(out))


@pytest.mark.parametrize("length", [2, 7, 300, 4096])
def test_bfloat16_softmax_check_matches_the_backend(length):
    """Where the check says so, the bfloat16 softmax is the float32 one rounded."""
    rng = np.random.default_rng(length)
    scores = keras.ops.cast(rng.normal(scale=4.0, size=(3, length)), "bfloat16")
    rounded = keras.ops.cast(
        keras.ops.softmax(keras.ops.cast(scores, "float32")), "bfloat16"
    )
    same = np.array_equal(_np(keras.ops.softmax(scores)), _np(rounded))
    if mha_module._accurate_bfloat16_softmax():
        assert same
    else:
        assert keras.backend.backend() != "tensorflow" or not same


def test_bfloat16_bias_gradients_sum_in_float32():
    """Bias gradients over 4,096 rows under mixed_bfloat16 match float32.

    A `BiasAdd` would sum them in bfloat16 and stall (errors of ~40%).
    """
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 512, D)).astype("float32")
    reference = _built(x, x)
    keras.config.set_dtype_policy("mixed_bfloat16")
    layer = MultiHeadAttention(HEADS, KEY_DIM)
    layer(x, x)
    layer.set_weights(reference.get_weights())
    grads = {}
    for name, model in (("float32", reference), ("bfloat16", layer)):
        grads[name] = _gradients(model, x)
    for weight, exact, mixed in zip(
        reference.weights, grads["float32"], grads["bfloat16"], strict=True
    ):
        if weight.path.endswith(ZERO_GRADIENT):
            continue
        error = np.abs(mixed - exact).max() / np.abs(exact).max()
        assert error < 0.03, (weight.path, error)


def _gradients(layer, x):
    """Gradients of `sum(layer(x, x) ** 2)` for the layer's weights."""
    if keras.backend.backend() == "jax":
        import jax

        def loss(values):
            out, _ = layer.stateless_call(values, [], x, x)
            out = keras.ops.cast(out, "float32")
            return keras.ops.sum(out * out)

        values = [w.value for w in layer.trainable_variables]
        return [_np(g) for g in jax.grad(loss)(values)]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        out = keras.ops.cast(layer(x, x), "float32")
        loss = keras.ops.sum(out * out)
    return [_np(g) for g in tape.gradient(loss, layer.trainable_variables)]


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"num_heads": 0}, "num_heads"),
        ({"num_heads": 2.5}, "num_heads"),
        ({"key_dim": -1}, "key_dim"),
        ({"value_dim": 0}, "value_dim"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"output_shape": 0}, "output_shape"),
        ({"implementation": "flash"}, "implementation"),
        ({"output_shape": 8.0}, "Invalid `output_shape`"),
        ({"attention_axes": "1"}, "attention_axes"),
        ({"attention_axes": (1.5,)}, "attention_axes"),
        ({"attention_axes": ()}, "attention_axes"),
        ({"sliding_window": 0}, "sliding_window"),
        ({"sliding_window": -3}, "sliding_window"),
        ({"sliding_window": 2.0}, "sliding_window"),
        ({"flash_attention": "yes"}, "flash_attention"),
        ({"flash_attention": True, "dropout": 0.1}, "Dropout is not supported"),
        ({"flash_attention": True, "implementation": "explicit"}, "flash_attention"),
    ],
)
def test_bad_constructor_arguments(kwargs, name):
    args = {"num_heads": 2, "key_dim": 4, **kwargs}
    with pytest.raises(ValueError, match=name):
        MultiHeadAttention(**args)


def test_keras_config_is_accepted():
    config = keras.layers.MultiHeadAttention(2, 4).get_config()
    layer = MultiHeadAttention.from_config(config)
    assert layer.num_heads == 2 and layer.key_dim == 4


@pytest.mark.parametrize(
    "args,kwargs,name",
    [
        (((B, D), (B, S, DV)), {}, "query"),
        (((B, T, D), (B, S, 2, DV)), {}, "value"),
        (((B, T, D), (B, S, DV), (B, DV)), {}, "key"),
        (((B, T, D), (B + 1, S, DV)), {}, "batch size"),
        (((B, T, D), (B, S, DV), (B, S + 1, DV)), {}, "must be equal"),
        (((B, T, D), (B, S, DV)), {"attention_mask": (B, T, S + 1)}, "attention_mask"),
        (((B, T, D), (B, S, DV)), {"attention_mask": (3, B, T, S)}, "attention_mask"),
        (((B, T, D), (B, S, DV)), {"value_mask": (B, T)}, "value_mask"),
        (((B, T, D), (B, S, DV)), {"query_mask": (B + 1, T)}, "query_mask"),
    ],
)
def test_bad_inputs(args, kwargs, name):
    tensors = [np.zeros(shape, "float32") for shape in args]
    masks = {n: np.ones(shape, bool) for n, shape in kwargs.items()}
    layer = MultiHeadAttention(2, 4)
    with pytest.raises(ValueError, match=name):
        layer(*tensors, **masks)
    if len(args[0]) == 3 and len(args[1]) == 3:
        layer = MultiHeadAttention(2, 4)
        layer.build((B, T, D), (B, S, DV))
        with pytest.raises(ValueError, match=name):
            layer(*tensors, **masks)


def test_auto_implementation_is_explicit_on_cpu_and_tensorflow():
    on_cpu = keras.distribution.list_devices()[0].lower().startswith("cpu")
    if keras.backend.backend() == "tensorflow" or on_cpu:
        assert mha_module._auto_implementation() == "explicit"
    else:
        assert mha_module._auto_implementation() == "fused"


# Incremental decoding with a key/value cache.


def test_cached_self_attention_steps_equal_the_causal_call():
    rng = np.random.default_rng(0)
    layer = MultiHeadAttention(num_heads=2, key_dim=3, use_gate=True)
    x = rng.normal(size=(2, 5, 6)).astype("float32")
    full = keras.ops.convert_to_numpy(layer(x, x, use_causal_mask=True))
    cache = tuple(keras.ops.zeros_like(c) for c in layer.compute_cache(x))
    steps = []
    for i in range(5):
        out, cache = layer.cached_call(
            x[:, i : i + 1], cache, value=x[:, i : i + 1], cache_update_index=i
        )
        steps.append(keras.ops.convert_to_numpy(out))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)
    # Two steps at once (a prefill) are causal inside the block too.
    cache = tuple(keras.ops.zeros_like(c) for c in layer.compute_cache(x))
    out, _ = layer.cached_call(x[:, :2], cache, value=x[:, :2], cache_update_index=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), full[:, :2], atol=1e-5)


def test_cached_cross_attention_equals_the_masked_call():
    rng = np.random.default_rng(1)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    query = rng.normal(size=(2, 3, 6)).astype("float32")
    value = rng.normal(size=(2, 4, 5)).astype("float32")
    visible = np.array([[True] * 4, [True, True, False, False]])
    expected, weights = layer(
        query, value, value_mask=visible, return_attention_scores=True
    )
    cache = layer.compute_cache(value)
    got, got_weights, _ = layer.cached_call(
        query,
        cache,
        attention_mask=visible[:, None, None, :],
        return_attention_scores=True,
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(expected), atol=1e-5
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(got_weights),
        keras.ops.convert_to_numpy(weights),
        atol=1e-6,
    )


def test_cache_arguments_are_checked():
    x = np.zeros((1, 2, 4), "float32")
    layer = MultiHeadAttention(num_heads=1, key_dim=2)
    with pytest.raises(ValueError, match="built"):
        layer.compute_cache(x)
    layer(x, x)
    cache = layer.compute_cache(x)
    with pytest.raises(ValueError, match="value"):
        layer.cached_call(x[:, :1], cache, cache_update_index=0)
    window = MultiHeadAttention(num_heads=1, key_dim=2, sliding_window=2)
    window(x, x)
    with pytest.raises(ValueError, match="sliding_window"):
        window.compute_cache(x)

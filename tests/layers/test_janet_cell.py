import doctest
import inspect
import math
import os
import tempfile

import keras
import numpy as np
import pytest

import layers.janet_cell
from layers.janet_cell import JANETCell
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import CellRNN, np_rnn, np_sigmoid

B, T, D, U = 4, 7, 5, 3


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, D)).astype("float32")
    mask = np.ones((B, T), bool)
    mask[0, 4:] = False  # padded at the end
    mask[2, :3] = False  # padded at the start
    return x, mask


def _set_random_weights(cell, seed=1, scale=0.5):
    rng = np.random.default_rng(seed)
    values = [rng.normal(scale=scale, size=tuple(w.shape)) for w in cell.weights]
    cell.set_weights([v.astype("float32") for v in values])
    return values


def _np_step(weights, beta=1.0, activation=np.tanh, recurrent_scale=None):
    """The paper's update, written from its equations, in float64.

    `recurrent_scale` (`(B, units)`) multiplies `h` where it enters `U_f h`
    and `U_c h` (a recurrent dropout mask).
    """
    kernel, recurrent, bias = (np.asarray(w, "float64") for w in weights)
    u = recurrent.shape[0]
    w_f, w_c = kernel[:, :u], kernel[:, u:]
    u_f, u_c = recurrent[:, :u], recurrent[:, u:]
    b_f, b_c = bias[:u], bias[u:]

    def step(x, h):
        h_in = h if recurrent_scale is None else h * recurrent_scale
        s = x @ w_f + h_in @ u_f + b_f
        candidate = activation(x @ w_c + h_in @ u_c + b_c)
        return np_sigmoid(s) * h + (1.0 - np_sigmoid(s - beta)) * candidate

    return step


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize(
    "cell_kwargs, rnn_kwargs",
    [
        ({"units": U}, {}),
        ({"units": U, "beta": 0.5, "t_max": 20}, {"return_sequences": True}),
        ({"units": U, "dropout": 0.2, "recurrent_dropout": 0.3, "seed": 1}, {}),
        ({"units": U, "activation": "relu"}, {"go_backwards": True}),
    ],
)
def test_layer_checks(cell_kwargs, rnn_kwargs):
    # Through `CellRNN` (= `keras.layers.RNN`; its docstring says why).
    x, mask = _data()
    shape = (B, T, U) if rnn_kwargs.get("return_sequences") else (B, U)
    run_layer_test(
        CellRNN,
        {"cell_class": "attention_zoo>JANETCell", "cell_kwargs": cell_kwargs}
        | rnn_kwargs,
        {"inputs": x, "mask": mask},
        expected_output_shape=shape,
        expected_num_trainable_weights=3,
    )


def test_config_round_trip_and_every_argument_in_config():
    kwargs = dict(
        units=3,
        activation="relu",
        beta=0.5,
        t_max=10,
        kernel_initializer="he_normal",
        recurrent_initializer="glorot_normal",
        bias_initializer="ones",
        kernel_regularizer="l2",
        recurrent_regularizer="l1",
        bias_regularizer="l2",
        kernel_constraint="max_norm",
        recurrent_constraint="unit_norm",
        bias_constraint="non_neg",
        dropout=0.1,
        recurrent_dropout=0.2,
        seed=7,
    )
    names = set(inspect.signature(JANETCell).parameters) - {"kwargs"}
    assert names == set(kwargs)
    cell = JANETCell(**kwargs)
    config = cell.get_config()
    assert names <= set(config)
    assert JANETCell.from_config(config).get_config() == config
    for name in ("units", "beta", "t_max", "dropout", "recurrent_dropout", "seed"):
        assert getattr(cell, name) == kwargs[name] == config[name]


@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize(
    "kwargs, activation",
    [
        ({}, np.tanh),
        ({"beta": 0.0}, np.tanh),
        ({"beta": 2.5}, np.tanh),
        ({"activation": "relu"}, lambda z: np.maximum(z, 0.0)),
    ],
)
def test_matches_numpy_reference(kwargs, activation, use_mask):
    x, mask = _data()
    mask = mask if use_mask else None
    rnn = keras.layers.RNN(
        JANETCell(U, **kwargs), return_sequences=True, return_state=True
    )
    rnn(x)
    step = _np_step(_set_random_weights(rnn.cell), kwargs.get("beta", 1.0), activation)
    outputs, state = rnn(x, mask=mask)
    expected_outputs, expected_state = np_rnn(step, x, U, mask)
    np.testing.assert_allclose(_np(outputs), expected_outputs, atol=1e-5)
    np.testing.assert_allclose(_np(state), expected_state, atol=1e-5)
    assert np.mean(np.abs(expected_state) > 1e-2) > 0.5  # not a comparison of zeros


def test_fixed_weights():
    # One unit, one feature: W_c = 1, no recurrence, zero biases, beta = 1.
    # W_f = 0: forget gate sigmoid(0) = 1/2, input gate 1 - sigmoid(-1) =
    # 0.731059; c1 = 0.731059 tanh(1), c2 = c1 / 2 + 0.731059 tanh(2).
    # W_f = 1: c1 = (1 - sigmoid(0)) tanh(1), c2 = sigmoid(2) c1 +
    # (1 - sigmoid(1)) tanh(2).
    x = np.array([[[1.0], [2.0]]], "float32")
    rnn = keras.layers.RNN(JANETCell(1), return_sequences=True)
    rnn(x)
    expected = {0.0: [0.556770, 0.983146], 1.0: [0.380797, 0.594672]}
    for w_f, values in expected.items():
        rnn.cell.set_weights([np.array([[w_f, 1.0]]), np.zeros((1, 2)), np.zeros(2)])
        np.testing.assert_allclose(_np(rnn(x))[0, :, 0], values, atol=1e-6)


@pytest.mark.parametrize("t_max", [2, 10, 100, 1000])
def test_chrono_initialisation(t_max):
    units = 2000
    # Zero kernels: an orthogonal (2000, 4000) matrix takes seconds.
    cell = JANETCell(units, t_max=t_max, recurrent_initializer="zeros")
    cell.build((None, D))
    bias = _np(cell.bias).astype("float64")
    forget, candidate = bias[:units], bias[units:]
    np.testing.assert_array_equal(candidate, 0.0)
    # b_f = log(u), u ~ Uniform(1, t_max - 1): u's range and mean.
    u = np.exp(forget)
    assert u.min() >= 1.0 - 1e-5 and u.max() <= t_max - 1.0 + 1e-3
    if t_max > 2:
        width = t_max - 2.0
        assert u.min() < 1.0 + 0.01 * width and u.max() > t_max - 1.0 - 0.01 * width
        sigma = width / math.sqrt(12 * units)
        assert abs(u.mean() - t_max / 2.0) < 5 * sigma
    else:
        np.testing.assert_allclose(forget, 0.0, atol=1e-7)


def test_bias_initializer_sets_only_the_candidate_bias():
    cell = JANETCell(
        500, t_max=50, recurrent_initializer="zeros", bias_initializer="ones"
    )
    cell.build((None, D))
    bias = _np(cell.bias)
    np.testing.assert_array_equal(bias[500:], 1.0)
    assert 0.0 <= bias[:500].min() < 0.5 and np.log(49.0) - 0.5 < bias[:500].max()


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_padding_keeps_the_final_state(padding):
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 20, size=(B, T))
    lengths = [T, 4, 2, 5]
    padded = np.zeros_like(tokens)
    for i, n in enumerate(lengths):
        if padding == "post":
            padded[i, :n] = tokens[i, :n]
        else:
            padded[i, T - n :] = tokens[i, :n]
    embedding = keras.layers.Embedding(20, D, mask_zero=True)
    rnn = keras.layers.RNN(JANETCell(U))
    final = _np(rnn(embedding(padded)))
    for i, n in enumerate(lengths):
        alone = _np(rnn(embedding(tokens[i : i + 1, :n])))
        np.testing.assert_allclose(final[i], alone[0], atol=1e-6)
    # Not vacuous: without the mask the padded rows differ.
    unmasked = _np(rnn(keras.ops.take(embedding.embeddings, padded, axis=0)))
    np.testing.assert_allclose(unmasked[0], final[0], atol=1e-6)
    assert not np.allclose(unmasked[1:], final[1:], atol=1e-3)


def test_initial_state():
    x, mask = _data()
    cell = JANETCell(U)
    initial = cell.get_initial_state(batch_size=B)
    assert isinstance(initial, list) and len(initial) == 1
    assert tuple(initial[0].shape) == (B, U)
    assert keras.backend.standardize_dtype(initial[0].dtype) == "float32"
    np.testing.assert_array_equal(_np(initial[0]), 0.0)
    rnn = keras.layers.RNN(cell, return_state=True)
    rnn(x)
    step = _np_step(_set_random_weights(cell))
    h0 = np.random.default_rng(2).normal(size=(B, U)).astype("float32")
    output, state = rnn(x, initial_state=h0, mask=mask)
    _, expected = np_rnn(step, x, U, mask, initial_state=h0)
    np.testing.assert_allclose(_np(state), expected, atol=1e-5)
    np.testing.assert_allclose(_np(output), expected, atol=1e-5)


def test_bidirectional_matches_reference():
    x, mask = _data()
    layer = keras.layers.Bidirectional(keras.layers.RNN(JANETCell(U)))
    layer(x)
    forward = _np_step(_set_random_weights(layer.forward_layer.cell, seed=1))
    backward = _np_step(_set_random_weights(layer.backward_layer.cell, seed=2))
    out = _np(layer(x, mask=mask))
    assert out.shape == (B, 2 * U)
    _, expected_forward = np_rnn(forward, x, U, mask)
    _, expected_backward = np_rnn(backward, x[:, ::-1], U, mask[:, ::-1])
    np.testing.assert_allclose(out[:, :U], expected_forward, atol=1e-5)
    np.testing.assert_allclose(out[:, U:], expected_backward, atol=1e-5)
    sequences = keras.layers.Bidirectional(
        keras.layers.RNN(JANETCell(U), return_sequences=True)
    )
    assert tuple(sequences(x, mask=mask).shape) == (B, T, 2 * U)


@pytest.mark.parametrize("stacking", ["layers", "cells"])
def test_stacked_matches_reference(stacking):
    x, mask = _data()
    first, second = JANETCell(U), JANETCell(2)
    if stacking == "layers":
        inner = keras.layers.RNN(first, return_sequences=True)
        outer = keras.layers.RNN(second)

        def run(x, mask):
            return outer(inner(x, mask=mask), mask=mask)
    else:
        run = keras.layers.RNN([first, second])
    run(x, mask=mask)
    step1 = _np_step(_set_random_weights(first, seed=1))
    step2 = _np_step(_set_random_weights(second, seed=2))
    out = _np(run(x, mask=mask))
    assert out.shape == (B, 2)
    hidden, _ = np_rnn(step1, x, U, mask)
    _, expected = np_rnn(step2, hidden, 2, mask)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_text_classifier_saves_and_reloads():
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 30, size=(B, T))
    tokens[1, 3:] = 0
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(30, 8, mask_zero=True)(inputs)
    x = keras.layers.Bidirectional(
        keras.layers.RNN(JANETCell(6, t_max=T), return_sequences=True)
    )(x)
    x = keras.layers.RNN(JANETCell(U, dropout=0.1, recurrent_dropout=0.1))(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(tokens, np.ones((B, 2), "float32"))
    expected = _np(model(tokens))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(_np(reloaded(tokens)), expected, atol=1e-6)
    bidirectional = reloaded.layers[2]
    assert isinstance(bidirectional, keras.layers.Bidirectional)
    for rnn in (bidirectional.forward_layer, bidirectional.backward_layer):
        assert isinstance(rnn.cell, JANETCell) and rnn.cell.t_max == T


def test_mixed_bfloat16():
    x, mask = _data()
    reference = keras.layers.RNN(JANETCell(U), return_sequences=True)
    reference(x)
    weights = _set_random_weights(reference.cell)
    keras.config.set_dtype_policy("mixed_bfloat16")
    rnn = keras.layers.RNN(JANETCell(U), return_sequences=True)
    rnn(x)
    rnn.cell.set_weights([w.astype("float32") for w in weights])
    assert rnn.cell.compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in rnn.cell.weights)
    for scale in (1.0, 50.0):
        out = rnn(x * scale, mask=mask)
        assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
        assert np.all(np.isfinite(_np(keras.ops.cast(out, "float32"))))
    out = _np(keras.ops.cast(rnn(x, mask=mask), "float32"))
    expected, _ = np_rnn(_np_step(weights), x, U, mask)
    np.testing.assert_allclose(out, expected, atol=0.05)


@pytest.mark.parametrize("which", ["dropout", "recurrent_dropout"])
def test_dropout_uses_one_mask_per_sequence(which):
    # One feature and one unit, rate 1/2: a mask entry is 0 or 2 for the whole
    # sequence, so each row is one of the two runs below; a new mask per step
    # would mix them.
    batch = 16
    x = np.random.default_rng(0).normal(size=(batch, T, 1)).astype("float32")
    rnn = keras.layers.RNN(JANETCell(1, seed=3, **{which: 0.5}))
    rnn(x)
    weights = _set_random_weights(rnn.cell, scale=1.0)
    np.testing.assert_allclose(
        _np(rnn(x)), np_rnn(_np_step(weights), x, 1)[1], atol=1e-5
    )
    runs = []
    for scale in (0.0, 2.0):
        if which == "dropout":
            runs.append(np_rnn(_np_step(weights), x * scale, 1)[1])
        else:
            step = _np_step(weights, recurrent_scale=np.full((batch, 1), scale))
            runs.append(np_rnn(step, x, 1)[1])
    assert not np.allclose(runs[0], runs[1], atol=1e-3)
    dropped = _np(rnn(x, training=True))
    matches = [np.isclose(dropped, run, atol=1e-5).all(-1) for run in runs]
    assert np.all(matches[0] | matches[1])
    assert matches[0].any() and matches[1].any()
    again = _np(rnn(x, training=True))
    assert not np.allclose(again, dropped)  # a new mask for each call


def test_dropout_trains():
    x, mask = _data()
    inputs = keras.Input((T, D))
    cell = JANETCell(U, dropout=0.5, recurrent_dropout=0.5, seed=1)
    model = keras.Model(inputs, keras.layers.RNN(cell)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = _np(cell.kernel).copy()
    loss = model.train_on_batch(x, np.ones((B, U), "float32"))
    assert np.isfinite(loss) and not np.allclose(_np(cell.kernel), before)


def test_docstring_example_runs():
    results = doctest.testmod(layers.janet_cell, extraglobs={"np": np})
    assert results.attempted >= 3 and results.failed == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units=0"),
        ({"units": -2}, "units=-2"),
        ({"units": 2.0}, "units=2.0"),
        ({"units": True}, "units=True"),
        ({"units": 2, "beta": float("nan")}, "beta=nan"),
        ({"units": 2, "beta": "1"}, "beta='1'"),
        ({"units": 2, "t_max": 1}, "t_max=1"),
        ({"units": 2, "t_max": 50.0}, "t_max=50.0"),
        ({"units": 2, "dropout": 1.0}, "dropout=1.0"),
        ({"units": 2, "dropout": -0.1}, "dropout=-0.1"),
        ({"units": 2, "recurrent_dropout": 1.5}, "recurrent_dropout=1.5"),
        ({"units": 2, "seed": "a"}, "seed='a'"),
    ],
)
def test_bad_arguments(kwargs, message):
    name = message.split("=")[0]
    with pytest.raises(ValueError, match=f"`{name}`.*Received: {message}"):
        JANETCell(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="rank 2"):
        JANETCell(2).build((None, T, D))
    with pytest.raises(ValueError, match="last dimension"):
        JANETCell(2).build((None, None))

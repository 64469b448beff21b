import doctest
import inspect
import os
import tempfile

import keras
import numpy as np
import pytest

import layers.ind_rnn_cell
from layers.ind_rnn_cell import IndRNNCell
from tests.layers.layer_checks import run_layer_test
from tests.layers.references import CellRNN, np_rnn

B, T, D, U = 4, 7, 5, 3


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, D)).astype("float32")
    mask = np.ones((B, T), bool)
    mask[0, 4:] = False  # padded at the end
    mask[2, :3] = False  # padded at the start
    return x, mask


def _relu(z):
    return np.maximum(z, 0.0)


def _set_random_weights(cell, seed=1, scale=0.5):
    """Normal weights, and `u` uniform in [-1, 1] (bounds apply to updates only)."""
    rng = np.random.default_rng(seed)
    values = [rng.normal(scale=scale, size=tuple(w.shape)) for w in cell.weights]
    values[1] = rng.uniform(-1.0, 1.0, size=values[1].shape)
    cell.set_weights([v.astype("float32") for v in values])
    return values


def _np_step(weights, activation=_relu, recurrent_scale=None):
    """`h' = activation(W x + u * h + b)`, in float64.

    `recurrent_scale` (`(B, units)`) multiplies `h` where it enters `u * h`
    (a recurrent dropout mask).
    """
    kernel, u = (np.asarray(w, "float64") for w in weights[:2])
    bias = np.asarray(weights[2], "float64") if len(weights) > 2 else 0.0

    def step(x, h):
        h_in = h if recurrent_scale is None else h * recurrent_scale
        return activation(x @ kernel + u * h_in + bias)

    return step


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize(
    "cell_kwargs, rnn_kwargs, num_weights",
    [
        ({"units": U}, {}, 3),
        ({"units": U}, {"return_sequences": True}, 3),
        (
            {
                "units": U,
                "activation": "tanh",
                "use_bias": False,
                "recurrent_min_abs": 0.5,
                "recurrent_max_abs": 1.2,
            },
            {"go_backwards": True},
            2,
        ),
        (
            # tanh: with ReLU, this draw of dropout masks leaves `u` without a
            # gradient (wherever the recurrent mask keeps a state, the unit is
            # inactive at the next step), which the gradient check flags.
            {
                "units": U,
                "activation": "tanh",
                "dropout": 0.2,
                "recurrent_dropout": 0.3,
                "seed": 1,
            },
            {},
            3,
        ),
    ],
)
def test_layer_checks(cell_kwargs, rnn_kwargs, num_weights):
    # Through `CellRNN` (= `keras.layers.RNN`; its docstring says why).
    x, mask = _data()
    shape = (B, T, U) if rnn_kwargs.get("return_sequences") else (B, U)
    run_layer_test(
        CellRNN,
        {"cell_class": "attention_zoo>IndRNNCell", "cell_kwargs": cell_kwargs}
        | rnn_kwargs,
        {"inputs": x, "mask": mask},
        expected_output_shape=shape,
        expected_num_trainable_weights=num_weights,
    )


def test_config_round_trip_and_every_argument_in_config():
    kwargs = dict(
        units=3,
        activation="tanh",
        use_bias=False,
        recurrent_min_abs=0.25,
        recurrent_max_abs=1.5,
        kernel_initializer="he_normal",
        recurrent_initializer="ones",
        bias_initializer="ones",
        kernel_regularizer="l2",
        recurrent_regularizer="l1",
        bias_regularizer="l2",
        kernel_constraint="max_norm",
        recurrent_constraint="non_neg",
        bias_constraint="non_neg",
        dropout=0.1,
        recurrent_dropout=0.2,
        seed=7,
    )
    names = set(inspect.signature(IndRNNCell).parameters) - {"kwargs"}
    assert names == set(kwargs)
    for cell in (IndRNNCell(**kwargs), IndRNNCell(3)):
        config = cell.get_config()
        assert names <= set(config)
        assert IndRNNCell.from_config(config).get_config() == config
    assert IndRNNCell(3).get_config()["recurrent_initializer"] is None
    assert IndRNNCell(3).recurrent_max_abs == 2.0 ** (1 / 100)


@pytest.mark.parametrize("use_mask", [False, True])
@pytest.mark.parametrize(
    "kwargs, activation",
    [
        ({}, _relu),
        ({"activation": "tanh"}, np.tanh),
        ({"use_bias": False}, _relu),
    ],
)
def test_matches_numpy_reference(kwargs, activation, use_mask):
    x, mask = _data()
    mask = mask if use_mask else None
    rnn = keras.layers.RNN(
        IndRNNCell(U, **kwargs), return_sequences=True, return_state=True
    )
    rnn(x)
    step = _np_step(_set_random_weights(rnn.cell), activation)
    outputs, state = rnn(x, mask=mask)
    expected_outputs, expected_state = np_rnn(step, x, U, mask)
    np.testing.assert_allclose(_np(outputs), expected_outputs, atol=1e-5)
    np.testing.assert_allclose(_np(state), expected_state, atol=1e-5)
    assert np.mean(np.abs(expected_outputs) > 1e-2) > 0.3  # not zeros only


def test_fixed_weights():
    # Two units, one feature: W = [1, -1], u = [0.5, 1], b = [0, 0.5], ReLU.
    # x = 1:  z = [1, -0.5]            h = [1, 0]
    # x = 2:  z = [2 + 0.5, -2 + 0.5]  h = [2.5, 0]
    # x = -3: z = [-3 + 1.25, 3 + 0.5] h = [0, 3.5]
    x = np.array([[[1.0], [2.0], [-3.0]]], "float32")
    rnn = keras.layers.RNN(IndRNNCell(2), return_sequences=True)
    rnn(x)
    rnn.cell.set_weights(
        [np.array([[1.0, -1.0]]), np.array([0.5, 1.0]), np.array([0.0, 0.5])]
    )
    np.testing.assert_allclose(
        _np(rnn(x))[0], [[1.0, 0.0], [2.5, 0.0], [0.0, 3.5]], atol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, low, high",
    [
        ({}, 0.0, 2.0 ** (1 / 100)),
        ({"recurrent_max_abs": 2.0 ** (1 / 500)}, 0.0, 2.0 ** (1 / 500)),
        (
            {"recurrent_min_abs": 0.5 ** (1 / 50), "recurrent_max_abs": 2 ** (1 / 50)},
            0.5 ** (1 / 50),
            2.0 ** (1 / 50),
        ),
        ({"recurrent_min_abs": 0.3, "recurrent_max_abs": None}, 0.3, 1.0),
    ],
)
def test_recurrent_initialisation_is_uniform_in_the_bounds(kwargs, low, high):
    cell = IndRNNCell(4000, **kwargs)
    cell.build((None, D))
    u = _np(cell.recurrent_kernel).astype("float64")
    assert u.min() >= low - 1e-7 and u.max() <= high + 1e-7
    width = high - low
    assert u.min() < low + 0.01 * width and u.max() > high - 0.01 * width
    assert abs(u.mean() - (low + high) / 2) < 5 * width / np.sqrt(12 * u.size)


@pytest.mark.parametrize(
    "initial, expected",
    [(5.0, 1.1), (-5.0, -1.1), (0.0, 0.2), (-0.1, -0.2), (0.7, 0.7)],
)
def test_initial_values_are_clipped_to_the_bounds(initial, expected):
    cell = IndRNNCell(
        3,
        recurrent_min_abs=0.2,
        recurrent_max_abs=1.1,
        recurrent_initializer=keras.initializers.Constant(initial),
    )
    cell.build((None, D))
    np.testing.assert_allclose(_np(cell.recurrent_kernel), expected, rtol=1e-6)


@pytest.mark.parametrize("recurrent_constraint", [None, "non_neg"])
def test_bounds_hold_after_a_large_training_step(recurrent_constraint):
    # The same SGD step from the same weights with and without the bounds:
    # the bounded result is the unbounded one clipped, and the unbounded one
    # leaves the bounds on both sides (so the check is not vacuous).
    x, _ = _data()
    target = np.random.default_rng(3).normal(size=(B, U))
    low, high = 0.5, 2.0 ** (1 / T)

    def train(**bounds):
        cell = IndRNNCell(
            8,
            activation="tanh",
            kernel_initializer=keras.initializers.GlorotUniform(seed=1),
            recurrent_initializer=keras.initializers.RandomUniform(0.5, 1.0, seed=2),
            recurrent_constraint=recurrent_constraint,
            **bounds,
        )
        model = keras.Sequential(
            [keras.Input((T, D)), keras.layers.RNN(cell), keras.layers.Dense(U)]
        )
        readout = np.random.default_rng(4).normal(size=(8, U))
        model.layers[-1].set_weights([readout, np.zeros(U)])
        model.compile(optimizer=keras.optimizers.SGD(10.0), loss="mse")
        before = _np(cell.recurrent_kernel).astype("float64")
        model.train_on_batch(x, target.astype("float32"))
        return before, _np(cell.recurrent_kernel).astype("float64")

    before, bounded = train(recurrent_min_abs=low, recurrent_max_abs=high)
    free_before, free = train(recurrent_min_abs=0.0, recurrent_max_abs=None)
    np.testing.assert_array_equal(before, free_before)
    assert np.all(np.abs(bounded) >= low - 1e-6)
    assert np.all(np.abs(bounded) <= high + 1e-6)
    assert np.any(np.abs(free) > high + 0.1) and np.any(np.abs(free) < low - 0.1)
    sign = np.where(free < 0, -1.0, 1.0)
    np.testing.assert_allclose(
        bounded, sign * np.clip(np.abs(free), low, high), rtol=1e-5, atol=1e-6
    )
    if recurrent_constraint == "non_neg":
        assert np.all(bounded > 0.0)


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
    rnn = keras.layers.RNN(IndRNNCell(U, activation="tanh"))
    rnn(embedding(padded))
    _set_random_weights(rnn.cell)
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
    cell = IndRNNCell(U)
    initial = cell.get_initial_state(batch_size=B)
    assert isinstance(initial, list) and len(initial) == 1
    assert tuple(initial[0].shape) == (B, U)
    assert keras.backend.standardize_dtype(initial[0].dtype) == "float32"
    np.testing.assert_array_equal(_np(initial[0]), 0.0)
    rnn = keras.layers.RNN(cell, return_state=True)
    rnn(x)
    step = _np_step(_set_random_weights(cell))
    h0 = np.abs(np.random.default_rng(2).normal(size=(B, U))).astype("float32")
    output, state = rnn(x, initial_state=h0, mask=mask)
    _, expected = np_rnn(step, x, U, mask, initial_state=h0)
    np.testing.assert_allclose(_np(state), expected, atol=1e-5)
    np.testing.assert_allclose(_np(output), expected, atol=1e-5)


def test_bidirectional_matches_reference():
    x, mask = _data()
    layer = keras.layers.Bidirectional(keras.layers.RNN(IndRNNCell(U)))
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
        keras.layers.RNN(IndRNNCell(U), return_sequences=True)
    )
    assert tuple(sequences(x, mask=mask).shape) == (B, T, 2 * U)


@pytest.mark.parametrize("stacking", ["layers", "cells"])
def test_stacked_matches_reference(stacking):
    x, mask = _data()
    first, second = IndRNNCell(U), IndRNNCell(2, activation="tanh")
    if stacking == "layers":
        inner = keras.layers.RNN(first, return_sequences=True)
        outer = keras.layers.RNN(second)

        def run(x, mask):
            return outer(inner(x, mask=mask), mask=mask)
    else:
        run = keras.layers.RNN([first, second])
    run(x, mask=mask)
    step1 = _np_step(_set_random_weights(first, seed=1))
    step2 = _np_step(_set_random_weights(second, seed=2), np.tanh)
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
        keras.layers.RNN(
            IndRNNCell(6, recurrent_max_abs=2 ** (1 / T)), return_sequences=True
        )
    )(x)
    x = keras.layers.RNN(IndRNNCell(U, dropout=0.1, recurrent_dropout=0.1))(x)
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
        assert isinstance(rnn.cell, IndRNNCell)
        assert rnn.cell.recurrent_max_abs == 2 ** (1 / T)


def test_mixed_bfloat16():
    x, mask = _data()
    reference = keras.layers.RNN(IndRNNCell(U), return_sequences=True)
    reference(x)
    weights = _set_random_weights(reference.cell)
    keras.config.set_dtype_policy("mixed_bfloat16")
    rnn = keras.layers.RNN(IndRNNCell(U), return_sequences=True)
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
    np.testing.assert_allclose(out, expected, atol=0.05, rtol=0.02)


@pytest.mark.parametrize("which", ["dropout", "recurrent_dropout"])
def test_dropout_uses_one_mask_per_sequence(which):
    # One feature and one unit, rate 1/2: a mask entry is 0 or 2 for the whole
    # sequence, so each row is one of the two runs below; a new mask per step
    # would mix them.
    batch = 16
    x = np.random.default_rng(0).normal(size=(batch, T, 1)).astype("float32")
    rnn = keras.layers.RNN(IndRNNCell(1, activation="tanh", seed=3, **{which: 0.5}))
    rnn(x)
    weights = _set_random_weights(rnn.cell, scale=1.0)
    weights[1] = np.array([0.9])
    rnn.cell.set_weights([w.astype("float32") for w in weights])
    np.testing.assert_allclose(
        _np(rnn(x)), np_rnn(_np_step(weights, np.tanh), x, 1)[1], atol=1e-5
    )
    runs = []
    for scale in (0.0, 2.0):
        if which == "dropout":
            runs.append(np_rnn(_np_step(weights, np.tanh), x * scale, 1)[1])
        else:
            step = _np_step(weights, np.tanh, np.full((batch, 1), scale))
            runs.append(np_rnn(step, x, 1)[1])
    assert not np.allclose(runs[0], runs[1], atol=1e-3)
    dropped = _np(rnn(x, training=True))
    matches = [np.isclose(dropped, run, atol=1e-5).all(-1) for run in runs]
    assert np.all(matches[0] | matches[1])
    assert matches[0].any() and matches[1].any()
    again = _np(rnn(x, training=True))
    assert not np.allclose(again, dropped)  # a new mask for each call


def test_dropout_trains():
    x, _ = _data()
    inputs = keras.Input((T, D))
    cell = IndRNNCell(U, dropout=0.5, recurrent_dropout=0.5, seed=1)
    model = keras.Model(inputs, keras.layers.RNN(cell)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = _np(cell.kernel).copy()
    loss = model.train_on_batch(x, np.ones((B, U), "float32"))
    assert np.isfinite(loss) and not np.allclose(_np(cell.kernel), before)


def test_docstring_example_runs():
    results = doctest.testmod(layers.ind_rnn_cell, extraglobs={"np": np})
    assert results.attempted >= 3 and results.failed == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units=0"),
        ({"units": -2}, "units=-2"),
        ({"units": 2.0}, "units=2.0"),
        ({"units": 2, "recurrent_max_abs": 0.0}, "recurrent_max_abs=0.0"),
        ({"units": 2, "recurrent_max_abs": -1.0}, "recurrent_max_abs=-1.0"),
        ({"units": 2, "recurrent_max_abs": float("inf")}, "recurrent_max_abs=inf"),
        ({"units": 2, "recurrent_min_abs": -0.1}, "recurrent_min_abs=-0.1"),
        ({"units": 2, "recurrent_min_abs": 1.5}, "recurrent_min_abs=1.5"),
        ({"units": 2, "recurrent_min_abs": None}, "recurrent_min_abs=None"),
        ({"units": 2, "dropout": 1.0}, "dropout=1.0"),
        ({"units": 2, "recurrent_dropout": -0.5}, "recurrent_dropout=-0.5"),
        ({"units": 2, "seed": 1.5}, "seed=1.5"),
    ],
)
def test_bad_arguments(kwargs, message):
    name = message.split("=")[0]
    with pytest.raises(ValueError, match=f"`{name}`.*Received: {message}"):
        IndRNNCell(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="rank 2"):
        IndRNNCell(2).build((None, T, D))
    with pytest.raises(ValueError, match="last dimension"):
        IndRNNCell(2).build((None, None))

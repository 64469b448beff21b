"""One check that every layer test calls (after keras' `run_layer_test`)."""

import os
import tempfile

import keras
import numpy as np


def _as_inputs(input_data):
    if isinstance(input_data, dict):
        return dict(input_data)
    return {"inputs": input_data}


def _first(output):
    return output[0] if isinstance(output, (tuple, list)) else output


def _symbolic_inputs(inputs):
    return {
        name: keras.Input(shape=value.shape[1:], dtype=str(value.dtype), name=name)
        for name, value in inputs.items()
    }


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights=None,
    call_kwargs=None,
    run_training=True,
    run_jit=True,
    run_saving=True,
    atol=1e-5,
):
    """Builds `layer_cls(**init_kwargs)` and checks it end to end.

    Checks: output shape, trainable weight count, that every constructor
    argument is in `get_config` and the config round trips, a `.keras` save and
    reload with `safe_mode=True` giving the same output, one training step that
    changes the weights and keeps the loss finite, and `jit_compile=True`
    agreeing with eager execution.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        input_data: a NumPy array (passed as the first positional argument) or
            a dict of NumPy arrays passed by name (for example
            `{"query": q, "value": v, "attention_mask": m}`).
        expected_output_shape: shape of the (first) output.
        expected_num_trainable_weights: expected `len(layer.trainable_weights)`.
        call_kwargs: extra non-tensor call arguments.
        run_training, run_jit, run_saving: switch parts of the check off.
        atol: tolerance for the output comparisons.

    Returns:
        The eager output of the layer (the first output if it returns several).
    """
    call_kwargs = dict(call_kwargs or {})
    inputs = _as_inputs(input_data)
    positional = "inputs" in inputs

    def call(layer, tensors, **extra):
        tensors = dict(tensors)
        if positional:
            first = tensors.pop("inputs")
            return layer(first, **tensors, **call_kwargs, **extra)
        return layer(**tensors, **call_kwargs, **extra)

    # Shape and weights.
    layer = layer_cls(**init_kwargs)
    eager = _first(call(layer, inputs, training=False))
    assert tuple(eager.shape) == tuple(expected_output_shape), (
        f"output shape {tuple(eager.shape)} != {tuple(expected_output_shape)}"
    )
    eager = keras.ops.convert_to_numpy(eager)
    assert np.all(np.isfinite(eager)), "non-finite output"
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, (
            f"{len(layer.trainable_weights)} trainable weights, "
            f"expected {expected_num_trainable_weights}"
        )

    # Config round trip: every constructor argument is in the config.
    config = layer.get_config()
    missing = [key for key in init_kwargs if key not in config]
    assert not missing, f"constructor arguments missing from get_config: {missing}"
    clone = layer_cls.from_config(config)
    assert clone.get_config() == config, "config does not round trip"

    # A functional model around the layer, for saving, training and XLA.
    symbolic = _symbolic_inputs(inputs)
    model = keras.Model(symbolic, _first(call(layer, symbolic)))
    reference = keras.ops.convert_to_numpy(model(inputs, training=False))
    np.testing.assert_allclose(reference, eager, atol=atol, rtol=1e-5)

    if run_saving:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            reloaded = keras.saving.load_model(path, safe_mode=True)
        restored = keras.ops.convert_to_numpy(reloaded(inputs, training=False))
        np.testing.assert_allclose(restored, reference, atol=atol, rtol=1e-5)

    if run_jit:
        model.compile(jit_compile=True)
        compiled = np.asarray(model.predict_on_batch(inputs))
        np.testing.assert_allclose(compiled, reference, atol=atol, rtol=1e-4)

    if run_training and layer.trainable_weights:
        before = [keras.ops.convert_to_numpy(w).copy() for w in layer.trainable_weights]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        target = np.random.default_rng(1234).normal(size=reference.shape)
        loss = model.train_on_batch(inputs, target.astype(reference.dtype))
        assert np.isfinite(loss), f"training loss {loss}"
        after = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
        changed = sum(not np.allclose(b, a) for b, a in zip(before, after, strict=True))
        assert changed > 0, "one training step changed no weight"

    return eager

"""One check that every layer test calls (after keras' `run_layer_test`)."""

import os
import tempfile

import keras
import numpy as np

# A gradient below this fraction of the largest gradient of the layer counts as
# zero: float32 rounding leaves about this much of a gradient that is exactly
# zero mathematically (a key-projection bias under a softmax, for example).
ZERO_GRADIENT_RTOL = 1e-6


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


def _is_float(dtype):
    return "float" in keras.backend.standardize_dtype(dtype)


def gradients(model, inputs, seed=0):
    """Gradients of a random linear loss of `model`'s (first) output.

    The loss is `sum(R * output)` with a fixed normal `R`, computed in training
    mode. Returns `{weight path: float64 NumPy gradient}` for every trainable
    weight of `model` (zeros for a weight the loss does not depend on).
    """
    variables = model.trainable_variables
    output = _first(model(inputs, training=False))
    weights = np.random.default_rng(seed).normal(size=tuple(output.shape))
    weights = keras.ops.convert_to_tensor(weights.astype("float32"))

    def loss_of(output):
        output = keras.ops.cast(_first(output), "float32")
        return keras.ops.sum(output * weights)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of(model(inputs, training=True))
        grads = tape.gradient(loss, variables)
    elif keras.backend.backend() == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_fn(trainable):
            output, _ = model.stateless_call(
                trainable, non_trainable, inputs, training=True
            )
            return loss_of(output)

        grads = jax.jit(jax.grad(loss_fn))([v.value for v in variables])
    else:
        raise NotImplementedError(keras.backend.backend())
    return {
        v.path: (
            np.zeros(tuple(v.shape))
            if g is None
            else keras.ops.convert_to_numpy(keras.ops.cast(g, "float32"))
        ).astype("float64")
        for v, g in zip(variables, grads, strict=True)
    }


def check_gradients(model, inputs, zero_gradient_weights=()):
    """Fails unless every trainable weight gets a gradient, except the declared.

    Args:
        model: a built model.
        inputs: its inputs.
        zero_gradient_weights: substrings of weight paths whose gradient is
            zero by construction. Each must match a weight, and every weight
            it matches must get a zero gradient.
    """
    grads = gradients(model, inputs)
    largest = max((np.abs(g).max(initial=0.0) for g in grads.values()), default=0.0)
    assert largest > 0, "no trainable weight gets a gradient"
    threshold = ZERO_GRADIENT_RTOL * largest
    zero = {p for p, g in grads.items() if np.abs(g).max() <= threshold}
    declared = {p for p in grads if any(s in p for s in zero_gradient_weights)}
    unmatched = [s for s in zero_gradient_weights if not any(s in p for p in grads)]
    assert not unmatched, (
        f"zero_gradient_weights {unmatched} match no weight; weights: {sorted(grads)}"
    )
    missing = sorted(zero - declared)
    assert not missing, f"weights with an all-zero gradient: {missing}"
    moving = sorted(declared - zero)
    assert not moving, (
        f"weights declared in zero_gradient_weights get a gradient: {moving}"
    )


def perturb(layer, scale=0.1, seed=0):
    """Adds normal noise of standard deviation `scale` to every trainable weight."""
    rng = np.random.default_rng(seed)
    for variable in layer.trainable_weights:
        noise = rng.normal(scale=scale, size=tuple(variable.shape))
        variable.assign(variable + noise.astype(variable.dtype))


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    expected_num_trainable_weights=None,
    call_kwargs=None,
    zero_gradient_weights=(),
    perturb_weights=False,
    run_training=True,
    run_jit=True,
    run_saving=True,
    run_mixed_precision=True,
    atol=1e-5,
):
    """Builds `layer_cls(**init_kwargs)` and checks it end to end.

    Checks: output shape, trainable weight count, that every constructor
    argument is in `get_config` and the config round trips, a `.keras` save and
    reload with `safe_mode=True` giving the same output, `jit_compile=True`
    agreeing with eager execution, a nonzero gradient for every trainable
    weight (but those in `zero_gradient_weights`), one training step that
    changes the weights and keeps the loss finite, and under `mixed_bfloat16`
    float outputs in bfloat16 (eager and symbolic) and float32 weights.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        input_data: a NumPy array (passed as the first positional argument) or
            a dict of NumPy arrays passed by name (for example
            `{"query": q, "value": v, "attention_mask": m}`).
        expected_output_shape: shape of the (first) output.
        expected_num_trainable_weights: expected `len(layer.trainable_weights)`.
        call_kwargs: extra non-tensor call arguments.
        zero_gradient_weights: substrings of the paths of the weights whose
            gradient is zero by construction (say why where you pass them).
            A substring that matches no weight, or a matched weight that gets
            a gradient, fails the check.
        perturb_weights: add noise to the weights before the gradient check,
            for layers whose output starts independent of some weights (a
            residual scale initialised to 0).
        run_training, run_jit, run_saving, run_mixed_precision: switch parts
            of the check off (`run_training` covers the gradient check).
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
        if perturb_weights:
            perturb(layer)
        check_gradients(model, inputs, zero_gradient_weights)
        before = [keras.ops.convert_to_numpy(w).copy() for w in layer.trainable_weights]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        target = np.random.default_rng(1234).normal(size=reference.shape)
        loss = model.train_on_batch(inputs, target.astype(reference.dtype))
        assert np.isfinite(loss), f"training loss {loss}"
        after = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
        changed = sum(not np.allclose(b, a) for b, a in zip(before, after, strict=True))
        assert changed > 0, "one training step changed no weight"

    if run_mixed_precision:
        check_mixed_precision(layer_cls, init_kwargs, call, inputs)

    return eager


def check_mixed_precision(layer_cls, init_kwargs, call, inputs):
    """Under `mixed_bfloat16`: bfloat16 float outputs, float32 float weights."""
    layer = layer_cls(**{**init_kwargs, "dtype": "mixed_bfloat16"})
    eager = keras.tree.flatten(call(layer, inputs, training=False))
    spec = keras.tree.flatten(call(layer, _symbolic_inputs(inputs)))
    for i, (tensor, symbolic) in enumerate(zip(eager, spec, strict=True)):
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        if _is_float(dtype):
            assert dtype == "bfloat16", f"output {i} is {dtype} under mixed_bfloat16"
            values = keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))
            assert np.all(np.isfinite(values)), f"output {i} is not finite"
        symbolic_dtype = keras.backend.standardize_dtype(symbolic.dtype)
        assert symbolic_dtype == dtype, (
            f"output {i}: symbolic dtype {symbolic_dtype}, eager dtype {dtype}"
        )
    for weight in layer.weights:
        if _is_float(weight.dtype):
            dtype = keras.backend.standardize_dtype(weight.dtype)
            assert dtype == "float32", f"weight {weight.path} is {dtype}"

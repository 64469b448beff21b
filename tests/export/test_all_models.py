"""Every registered model, exported once and run where only TensorFlow exists.

The models come from `zoo.list_models()` (plus a toy RGB classifier): a new
model, or a new task with a builder in `SIGNATURE_BUILDERS`, is covered with
no new test code.
"""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import (
    MODEL_NAMES,
    QUANTIZED,
    QUANTIZED_MODELS,
    models_without_signatures,
)
from zoo import get_model_spec
from zoo.export.inspection import (
    export_sizes,
    reachable_functions,
    signature_defs,
    weight_bytes,
    xla_functions,
)

# Bytes of the stored variables / their bytes in the model: Keras'
# `model.export` stores every weight twice (ratio ~2).
MAX_SIZE_RATIO = 1.05
# The checkpoint index's entry per tensor (its key, dtype, shape and checksum):
# it dominates for the tiny vocabularies of the text models' exports.
INDEX_BYTES_PER_TENSOR = 128


def test_every_registered_model_has_serving_signatures():
    from zoo import list_models

    assert list_models(), "no registered models"
    missing = models_without_signatures()
    assert not missing, (
        "Registered models whose task has no builder in "
        f"zoo.export.tasks.SIGNATURE_BUILDERS (name: task): {missing}"
    )


def test_a_task_without_a_builder_is_found():
    """The check above is not vacuous: without builders, every model is missing."""
    from zoo import get_model_spec, list_models

    missing = models_without_signatures(builders={})
    assert missing == {name: get_model_spec(name).task for name in list_models()}


def test_every_op_is_registered_by_tensorflow_alone(tf_only):
    assert tf_only["unregistered_ops"] == []


# "outputs"/"errors": through `tf.saved_model.load`; "session_...": a plain
# `Session::Run` on the SignatureDef's tensors, as TF Serving runs them.
CALLS = {"loaded": "", "session": "session_"}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_signatures_answer_like_keras(name, call, exports, tf_only):
    seen = tf_only["models"][name]
    assert seen["signatures"] == sorted(s.name for s in exports[name].signatures)
    atol = {s.name: s.atol for s in exports[name].signatures}
    outputs_seen = seen[CALLS[call] + "outputs"]
    for (signature, _), outputs, expected in zip(
        seen["requests"], outputs_seen, seen["references"], strict=True
    ):
        assert sorted(outputs) == sorted(expected), signature
        for key, want in expected.items():
            got = outputs[key]
            where = f"{name}/{signature}/{key}"
            assert got.dtype == want.dtype, where
            assert got.shape == want.shape, where
            tol = atol[signature]
            if np.issubdtype(want.dtype, np.floating):
                np.testing.assert_allclose(got, want, atol=tol, rtol=tol, err_msg=where)
            elif tol > 1e-3 and "probabilities" in outputs:
                # Quantized classifiers and policies: a near tie may flip
                # against Keras, so the classes (a policy's action) must be
                # the served probabilities' argmax, and other discrete
                # outputs (labels) match where the classes agree. (A
                # quantized translator's reference is the quantized Keras
                # model, whose tokens must match exactly.)
                choice = "classes" if "classes" in outputs else "action"
                served = outputs["probabilities"].argmax(axis=-1)
                np.testing.assert_array_equal(outputs[choice], served, err_msg=where)
                same = outputs[choice] == expected[choice]
                np.testing.assert_array_equal(got[same], want[same], err_msg=where)
            else:
                np.testing.assert_array_equal(got, want, err_msg=where)


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bad_requests_fail_with_clear_errors(name, call, tf_only):
    seen = tf_only["models"][name]
    assert seen["bad_requests"], "every signature must declare bad requests"
    for (signature, description, pattern), error in zip(
        seen["bad_requests"], seen[CALLS[call] + "errors"], strict=True
    ):
        where = f"{name}/{signature}: {description}"
        assert error is not None, f"{where} gave an answer instead of an error"
        assert re.search(pattern, error), f"{where}: {error[:500]}"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_signature_defs_name_inputs_and_outputs(name, exports, tf_only):
    defs = signature_defs(exports[name].path)
    seen = tf_only["models"][name]
    assert sorted(defs) == seen["signatures"]
    for (signature, inputs), outputs in zip(
        seen["requests"], seen["references"], strict=True
    ):
        sig = defs[signature]
        assert sig.method_name == "tensorflow/serving/predict"
        # Inputs have the declared shapes (sizes the example may fill in);
        # outputs a batch dimension then the example's sizes.
        (function,) = [
            s.function for s in exports[name].signatures if s.name == signature
        ]
        declared = {spec.name: spec.shape for spec in function.input_signature}
        for tensors, arrays in ((sig.inputs, inputs), (sig.outputs, outputs)):
            assert sorted(tensors) == sorted(arrays), signature
            for key, array in arrays.items():
                dtype = tf.string if array.dtype == object else tf.as_dtype(array.dtype)
                assert tensors[key].dtype == dtype.as_datatype_enum, (signature, key)
                dims = [d.size for d in tensors[key].tensor_shape.dim]
                expected = [-1, *array.shape[1:]]
                if key in declared and tensors is sig.inputs:
                    expected = [-1 if d is None else d for d in declared[key]]
                assert dims == expected, (signature, key)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_xla_signature_carries_the_xla_attribute(name, exports):
    path = exports[name].path
    compiled = set(xla_functions(path))
    signatures = exports[name].signatures
    assert any(s.jit_compile for s in signatures)
    for signature in signatures:
        reached = compiled & set(reachable_functions(path, signature.name))
        assert bool(reached) == signature.jit_compile, (signature.name, reached)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_weight_is_stored_once(name, exports):
    exported = exports[name]
    reader = tf.train.load_checkpoint(
        os.path.join(exported.path, "variables", "variables")
    )
    stored = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
    del stored["_CHECKPOINTABLE_OBJECT_GRAPH"]
    variables = exported.model.variables
    assert len(stored) == len(variables)
    for i, variable in enumerate(variables):
        value = stored[f"model_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"]
        np.testing.assert_array_equal(value, np.asarray(variable), variable.path)
    stored_bytes = export_sizes(exported.path)["weights"]
    allowed = MAX_SIZE_RATIO * weight_bytes(exported.model)
    assert stored_bytes <= allowed + INDEX_BYTES_PER_TENSOR * len(variables)


# int8 variables / float32 variables of the image models' exports: the README's
# and issue 14's bound (benchmarks/quantization.py measures the trained ones).
MAX_INT8_IMAGE_RATIO = 0.30
QUANTIZED_IMAGE_MODELS = [
    name
    for name in QUANTIZED_MODELS
    if get_model_spec(name).task == "image_classification"
]


@pytest.mark.parametrize("name", QUANTIZED_IMAGE_MODELS)
def test_int8_image_exports_are_at_most_0_3x_the_float_ones(name, exports):
    ratio = (
        export_sizes(exports[name + QUANTIZED].path)["weights"]
        / export_sizes(exports[name].path)["weights"]
    )
    assert ratio <= MAX_INT8_IMAGE_RATIO, f"{name}: {ratio:.3f}x"

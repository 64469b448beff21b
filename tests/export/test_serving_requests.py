"""gRPC `PredictRequest`s and REST bodies built from the SavedModel's signatures."""

import base64
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from tests.export.conftest import MODEL_NAMES, perturb, toy_classifier
from zoo.export import export_model, predict_request, rest_body
from zoo.export.inspection import signature_defs


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = toy_classifier()
    perturb(model)
    exported = export_model(model, tmp_path_factory.mktemp("export") / "toy_rgb" / "7")
    return exported, tf.saved_model.load(exported.path)


def _from_rest(body, defs):
    """Reads a REST body back as TF Serving does (b64 objects are bytes)."""

    def value(v):
        if isinstance(v, dict):
            return base64.b64decode(v["b64"])
        if isinstance(v, list):
            return [value(x) for x in v]
        return v

    signature = defs[body["signature_name"]]
    if "instances" in body:
        columns = {k: [row[k] for row in body["instances"]] for k in signature.inputs}
    else:
        columns = body["inputs"]
    return {
        k: tf.constant(value(v), dtype=tf.as_dtype(signature.inputs[k].dtype))
        for k, v in columns.items()
    }


def _assert_answers(outputs, expected, atol):
    assert sorted(outputs) == sorted(expected)
    for key, want in expected.items():
        np.testing.assert_allclose(outputs[key].numpy(), want, atol=atol, rtol=atol)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predict_requests_name_the_signature_inputs(name, exports):
    exported = exports[name]
    defs = signature_defs(exported.path)
    for signature in exported.signatures:
        inputs = signature.make_example(2, 0)
        request = predict_request(exported.path, signature.name, inputs)
        assert isinstance(request, predict_pb2.PredictRequest)
        assert request.model_spec.name == name
        assert request.model_spec.signature_name == signature.name
        assert not request.model_spec.HasField("version")
        expected = defs[signature.name].inputs
        assert sorted(request.inputs) == sorted(expected)
        for key, tensor in request.inputs.items():
            assert tensor.dtype == expected[key].dtype, (signature.name, key)
            assert [d.size for d in tensor.tensor_shape.dim] == list(inputs[key].shape)


def test_predict_request_round_trips_to_the_same_answer(toy):
    exported, loaded = toy
    for signature in exported.signatures:
        inputs = signature.make_example(2, 1)
        request = predict_request(exported.path, signature.name, inputs, version=7)
        assert request.model_spec.version.value == 7
        wire = predict_pb2.PredictRequest.FromString(request.SerializeToString())
        tensors = {k: tf.constant(tf.make_ndarray(v)) for k, v in wire.inputs.items()}
        outputs = loaded.signatures[signature.name](**tensors)
        _assert_answers(outputs, signature.reference(inputs), signature.atol)


@pytest.mark.parametrize("row_format", [False, True])
def test_rest_body_round_trips_to_the_same_answer(toy, row_format):
    exported, loaded = toy
    defs = signature_defs(exported.path)
    for signature in exported.signatures:
        inputs = signature.make_example(2, 2)
        body = rest_body(exported.path, signature.name, inputs, row_format=row_format)
        body = json.loads(json.dumps(body))
        assert body["signature_name"] == signature.name
        if row_format:
            assert len(body["instances"]) == 2
            assert all(sorted(row) == sorted(inputs) for row in body["instances"])
        else:
            assert sorted(body["inputs"]) == sorted(inputs)
        outputs = loaded.signatures[signature.name](**_from_rest(body, defs))
        _assert_answers(outputs, signature.reference(inputs), signature.atol)


def test_rest_body_sends_bytes_as_b64(toy):
    exported, _ = toy
    body = rest_body(
        exported.path, "serving_bytes", {"image_bytes": [b"\x89PNG", b"\xff"]}
    )
    assert body["inputs"]["image_bytes"] == [{"b64": "iVBORw=="}, {"b64": "/w=="}]


def test_float64_is_sent_as_float32(toy):
    exported, _ = toy
    image = np.zeros((1, 12, 16, 3), np.float64)
    request = predict_request(exported.path, "serving_default", {"image": image})
    assert request.inputs["image"].dtype == tf.float32.as_datatype_enum


@pytest.mark.parametrize(
    "signature, inputs, error, match",
    [
        (
            "serving_nope",
            {"image": np.zeros((1, 12, 16, 3))},
            ValueError,
            "signature_name",
        ),
        ("serving_default", {}, ValueError, "takes inputs"),
        (
            "serving_default",
            {"image": np.zeros((1, 12, 16, 3)), "x": 1},
            ValueError,
            "takes",
        ),
        ("serving_default", {"image": np.zeros((1, 16, 12, 3))}, ValueError, "shape"),
        ("serving_default", {"image": np.zeros((12, 16, 3))}, ValueError, "shape"),
        ("serving_default", {"image": np.array([["a"]])}, TypeError, "float32"),
        ("serving_bytes", {"image_bytes": np.zeros(2)}, TypeError, "bytes"),
        ("serving_bytes", {"image_bytes": [b"a", "b"]}, TypeError, "bytes"),
    ],
)
def test_bad_requests_are_refused_before_sending(toy, signature, inputs, error, match):
    exported, _ = toy
    with pytest.raises(error, match=match):
        predict_request(exported.path, signature, inputs)
    with pytest.raises(error, match=match):
        rest_body(exported.path, signature, inputs)

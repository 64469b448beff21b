"""A real `tensorflow_model_server` on the exports (skipped without the binary)."""

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import BATCH_SIZE
from zoo.export import predict_request, rest_body, update_serving_config

BINARY = shutil.which("tensorflow_model_server")
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="tensorflow_model_server not on PATH"
)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url, body):
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(exports, tmp_path_factory):
    root = os.path.dirname(os.path.dirname(next(iter(exports.values())).path))
    for name in exports:
        update_serving_config(root, name, mount=root, create=True)
    config = os.path.join(root, "models.config")
    grpc_port, rest_port = _free_port(), _free_port()
    log = open(tmp_path_factory.mktemp("server") / "server.log", "w+")
    process = subprocess.Popen(
        [
            BINARY,
            f"--port={grpc_port}",
            f"--rest_api_port={rest_port}",
            f"--model_config_file={config}",
            "--enable_batching",
            f"--batching_parameters_file={os.path.join(root, 'batching.config')}",
            "--xla_cpu_compilation_enabled=true",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    rest = f"http://localhost:{rest_port}/v1/models"
    try:
        deadline = time.monotonic() + 120
        for name in exports:
            while True:
                assert process.poll() is None, "model server exited"
                try:
                    states = _get(f"{rest}/{name}")["model_version_status"]
                    if states and states[0]["state"] == "AVAILABLE":
                        break
                except (urllib.error.URLError, ConnectionError, KeyError):
                    pass
                assert time.monotonic() < deadline, f"{name} not served in time"
                time.sleep(0.5)
        yield rest, f"localhost:{grpc_port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.seek(0)
        print(log.read()[-4000:])
        log.close()


def _requests(exports):
    for name, exported in exports.items():
        for seed, signature in enumerate(exported.signatures):
            inputs = signature.make_example(BATCH_SIZE, seed)
            yield name, exported, signature, inputs, signature.reference(inputs)


def _close(got, want, atol):
    got = np.asarray(got, dtype=want.dtype)
    np.testing.assert_allclose(got, want, atol=atol, rtol=atol)


def test_rest_predict(server, exports):
    rest, _ = server
    for name, exported, signature, inputs, expected in _requests(exports):
        url = f"{rest}/{name}:predict"
        status, answer = _post(url, rest_body(exported.path, signature.name, inputs))
        assert status == 200, answer
        for key, want in expected.items():
            _close(answer["outputs"][key], want, signature.atol)
        rows = rest_body(exported.path, signature.name, inputs, row_format=True)
        status, answer = _post(url, rows)
        assert status == 200, answer
        for key, want in expected.items():
            _close([p[key] for p in answer["predictions"]], want, signature.atol)


def test_grpc_predict(server, exports):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    _, target = server
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _, exported, signature, inputs, expected in _requests(exports):
            request = predict_request(exported.path, signature.name, inputs)
            response = stub.Predict(request, timeout=120)
            for key, want in expected.items():
                _close(tf.make_ndarray(response.outputs[key]), want, signature.atol)


def test_grpc_bad_requests_fail_with_clear_errors(server, exports):
    """The declared bad requests, sent as they are (gRPC keeps their dtypes)."""
    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    _, target = server
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for name, exported in exports.items():
            for signature in exported.signatures:
                for description, inputs, pattern in signature.bad_requests:
                    request = predict_pb2.PredictRequest()
                    request.model_spec.name = name
                    request.model_spec.signature_name = signature.name
                    for key, value in inputs.items():
                        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
                    where = f"{name}/{signature.name}: {description}"
                    with pytest.raises(grpc.RpcError) as error:
                        stub.Predict(request, timeout=120)
                    assert re.search(pattern, error.value.details()), where

"""Calls exported SavedModels from a process that imports TensorFlow alone.

Run as `python -I tf_only_runner.py JOB RESULT` (both pickle files). JOB is a
dict with `ops` (op names to look up) and `models`: a list of dicts with
`name`, `path`, `requests` (a list of `(signature, inputs)`) and
`bad_requests` (a list of `(signature, description, inputs)`). Each request is
made twice: through `tf.saved_model.load` and, as TF Serving makes it, as a
`Session::Run` on the SignatureDef's tensors. RESULT gets what happened; the
test compares it with Keras.
"""

import sys

# Neither Keras nor this project can be imported (TF Serving has neither): a
# SavedModel that needs them fails to load here.
BLOCKED = ("keras", "tf_keras", "zoo", "layers", "training", "tests", "benchmarks")
for _name in BLOCKED:
    sys.modules[_name] = None

import pickle  # noqa: E402

import tensorflow as tf  # noqa: E402
from tensorflow.python.framework import op_def_registry  # noqa: E402


def _error(call):
    try:
        call()
    except Exception as error:  # noqa: BLE001 (reported to the test)
        return f"{type(error).__name__}: {error}"
    return None


def eager_calls(path, requests, bad_requests):
    """Signatures called as `tf.saved_model.load(path).signatures[name]`."""
    loaded = tf.saved_model.load(path)

    def call(signature, inputs):
        result = loaded.signatures[signature](
            **{k: tf.constant(v) for k, v in inputs.items()}
        )
        return {k: v.numpy() for k, v in result.items()}

    return {
        "signatures": sorted(loaded.signatures),
        "outputs": [call(*request) for request in requests],
        "errors": [_error(lambda r=r: call(r[0], r[2])) for r in bad_requests],
    }


def session_calls(path, requests, bad_requests):
    """Signatures run as TF Serving runs them: a `Session::Run` on the tensors
    the SignatureDef names, without the Python client's shape checks."""
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.load(session, ["serve"], path)

        def call(signature, inputs):
            signature = meta_graph.signature_def[signature]
            feeds = {
                graph.get_tensor_by_name(signature.inputs[k].name)._as_tf_output(): v
                for k, v in inputs.items()
            }
            keys = sorted(signature.outputs)
            fetches = [
                graph.get_tensor_by_name(signature.outputs[k].name)._as_tf_output()
                for k in keys
            ]
            values = session._call_tf_sessionrun(None, feeds, fetches, [], None)
            return dict(zip(keys, values, strict=True))

        return {
            "session_outputs": [call(*request) for request in requests],
            "session_errors": [
                _error(lambda r=r: call(r[0], r[2])) for r in bad_requests
            ],
        }


def run(job):
    # Looked up before any SavedModel is loaded.
    unregistered = sorted(op for op in job["ops"] if op_def_registry.get(op) is None)
    models = {}
    for model in job["models"]:
        args = model["path"], model["requests"], model["bad_requests"]
        models[model["name"]] = {**eager_calls(*args), **session_calls(*args)}
    return {"unregistered_ops": unregistered, "models": models}


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as f:
        job = pickle.load(f)
    with open(sys.argv[2], "wb") as f:
        pickle.dump(run(job), f)

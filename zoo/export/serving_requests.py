"""TF Serving requests (gRPC `PredictRequest` and REST JSON) for a SavedModel."""

import base64
import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

from zoo.export.inspection import signature_defs


def checked_inputs(export_dir, signature_name, inputs):
    """`inputs` as NumPy arrays of the signature's dtypes, checked against it.

    Args:
        export_dir: the SavedModel directory.
        signature_name: a signature of the SavedModel.
        inputs: dict of input name -> array-like (bytes for string inputs).

    Returns:
        Dict of input name -> (NumPy array, `tf.DType`).

    Raises:
        ValueError: unknown signature, missing or unexpected inputs, or a shape
            that does not fit the signature.
        TypeError: a value that cannot be safely cast to the input's dtype.
    """
    defs = signature_defs(export_dir)
    if signature_name not in defs:
        raise ValueError(
            f"Argument `signature_name` must be one of {sorted(defs)}. "
            f"Received: signature_name={signature_name!r}"
        )
    specs = defs[signature_name].inputs
    if set(inputs) != set(specs):
        raise ValueError(
            f"Signature {signature_name!r} takes inputs {sorted(specs)}. "
            f"Received: {sorted(inputs)}"
        )
    checked = {}
    for name, value in inputs.items():
        dtype = tf.as_dtype(specs[name].dtype)
        array = _as_array(name, value, dtype)
        expected = [d.size for d in specs[name].tensor_shape.dim]
        if len(expected) != array.ndim or any(
            e not in (-1, a) for e, a in zip(expected, array.shape, strict=True)
        ):
            raise ValueError(
                f"Input `{name}` of signature {signature_name!r} must have shape "
                f"{tuple(None if e == -1 else e for e in expected)}. "
                f"Received: {name}.shape={array.shape}"
            )
        checked[name] = (array, dtype)
    return checked


def _as_array(name, value, dtype):
    if dtype == tf.string:
        array = np.asarray(value, dtype=object)
        if not all(isinstance(v, bytes) for v in array.ravel()):
            raise TypeError(f"Input `{name}` must hold bytes (dtype string).")
        return array
    array = np.asarray(value)
    target = np.dtype(dtype.as_numpy_dtype)
    if not np.can_cast(array.dtype, target, casting="same_kind"):
        raise TypeError(
            f"Input `{name}` must have dtype {dtype.name}. Received: {array.dtype}"
        )
    return array.astype(target)


def predict_request(export_dir, signature_name, inputs, model_name=None, version=None):
    """A `tensorflow.serving.PredictRequest` for one signature of a SavedModel.

    Args:
        export_dir: the SavedModel directory, `.../NAME/VERSION`.
        signature_name: the signature to call.
        inputs: dict of input name -> array-like (bytes for string inputs).
        model_name: the served model name (default: `NAME` of `export_dir`).
        version: optional version to pin (default: the server's latest).

    Returns:
        A `predict_pb2.PredictRequest`.
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name or _served_name(export_dir)
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, (array, dtype) in checked_inputs(
        export_dir, signature_name, inputs
    ).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=dtype))
    return request


def rest_body(export_dir, signature_name, inputs, row_format=False):
    """The JSON body (a dict) of a TF Serving REST `:predict` call.

    Args:
        export_dir: the SavedModel directory.
        signature_name: the signature to call.
        inputs: dict of input name -> array-like (bytes for string inputs).
        row_format: `{"instances": [{name: value}, ...]}` (one dict per
            example) instead of the columnar `{"inputs": {name: values}}`.

    Returns:
        A dict for `json.dumps`; bytes are sent as `{"b64": ...}`.
    """
    checked = checked_inputs(export_dir, signature_name, inputs)
    columns = {name: _json_value(array) for name, (array, _) in checked.items()}
    body = {"signature_name": signature_name}
    if not row_format:
        body["inputs"] = columns
        return body
    sizes = {len(values) for values in columns.values()}
    if len(sizes) > 1:
        raise ValueError(
            f"Row format needs inputs with one batch size. Received: sizes {sizes}"
        )
    count = sizes.pop() if sizes else 0
    body["instances"] = [
        {name: values[i] for name, values in columns.items()} for i in range(count)
    ]
    return body


def _json_value(array):
    if array.dtype == object:
        encoded = [{"b64": base64.b64encode(v).decode("ascii")} for v in array.ravel()]
        return np.array(encoded, dtype=object).reshape(array.shape).tolist()
    return array.tolist()


def _served_name(export_dir):
    return os.path.basename(os.path.dirname(os.path.abspath(export_dir)))

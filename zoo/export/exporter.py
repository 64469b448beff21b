"""`export_model`: a zoo model as a TF Serving SavedModel, each weight stored once."""

import dataclasses
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from layers.validation import check_choice
from zoo.export.exported_model import ExportedModel
from zoo.export.quantization import QUANTIZE_MODES, QUANTIZED_ATOL, quantized_copy
from zoo.export.serving_config import current_umask, is_version_name
from zoo.export.tasks import serving_signatures
from zoo.model_files import load_weights

_DEFAULT_TASK = "image_classification"
# Tasks recognized by a model's input or output names (a policy or a detector
# saved by `zoo train` is a plain functional model).
_TASKS_BY_INPUTS = {("observations",): "reinforcement_learning"}
_TASKS_BY_OUTPUTS = {("heatmap", "offset", "size"): "object_detection"}


def export_model(
    model_or_name, output_dir, weights=None, *, task=None, quantize=None, **overrides
):
    """Writes a SavedModel for TF Serving with named, task-specific signatures.

    The SavedModel holds the model's variables once (`model.export` stores
    each twice, keras-team/keras#23553) and the signatures of the task (see
    `zoo.export.tasks.SIGNATURE_BUILDERS`): for image classification
    `serving_default`, `serving_xla` (XLA-compiled) and `serving_bytes`
    (encoded images). It is written next to `output_dir` and then renamed, so
    a model server watching the parent directory never sees half a version;
    the version directory gets the umask's permissions (e.g. `0o755`), so a
    server running as another user can read it.

    Args:
        model_or_name: a registered model name (see `zoo.list_models()`) or a
            `keras.Model`.
        output_dir: the version directory to create, `.../NAME/VERSION` with
            `VERSION` made of ASCII digits and at most 2**63 - 1 (TF Serving's
            layout, see `is_version_name`). It must not exist or be empty.
        weights: optional `.keras` file (loaded with `safe_mode=True`), run
            folder holding `model.keras`, or `.weights.h5` file whose weights
            replace the built ones (see `zoo.model_files.load_weights`).
            Without it, the model is exported as built.
        task: the task of a `keras.Model` (default: the model's `task`
            attribute, else `"reinforcement_learning"` for a model whose one
            input is `"observations"`, `"object_detection"` for one whose
            outputs are `"heatmap"`, `"offset"` and `"size"`, else
            `"image_classification"`); for a
            registered name it must be omitted or match the name's task.
        quantize: `None`, or `"int8"`: export a quantized copy
            (`zoo.export.quantization.quantized_copy`; the model passed is
            left as it is). The `ExportedModel`'s `model` is that copy.
        **overrides: `build_model` arguments for a registered name.

    Returns:
        An `ExportedModel`.
    """
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "export_model needs the TensorFlow backend (KERAS_BACKEND=tensorflow). "
            f"Current backend: {keras.backend.backend()}"
        )
    if quantize is not None:
        check_choice("quantize", quantize, QUANTIZE_MODES)
    output_dir = _check_output_dir(output_dir)
    name, model, task = _resolve_model(model_or_name, task, overrides)
    if weights is not None:
        load_weights(model, weights)
    if quantize is not None:
        model = quantized_copy(model, quantize)
    signatures = serving_signatures(model, task)
    if quantize is not None:
        signatures = [
            dataclasses.replace(s, atol=max(s.atol, QUANTIZED_ATOL)) for s in signatures
        ]
    _save(model, signatures, output_dir)
    return ExportedModel(name, output_dir, task, model, tuple(signatures))


def _check_output_dir(output_dir):
    if not isinstance(output_dir, (str, os.PathLike)):
        raise TypeError(
            f"Argument `output_dir` must be a path. Received: output_dir={output_dir!r}"
        )
    path = os.path.abspath(os.fspath(output_dir))
    if not is_version_name(os.path.basename(path)):
        raise ValueError(
            "Argument `output_dir` must end in a version directory of ASCII digits "
            "that fits in an int64 (TF Serving's NAME/VERSION layout, e.g. "
            "saved_models/cbam_cnn_small/1). "
            f"Received: output_dir={output_dir!r}"
        )
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FileExistsError(
            f"Argument `output_dir` must not exist or be empty: a served version "
            f"is never overwritten. Received: output_dir={output_dir!r}"
        )
    return path


def _resolve_model(model_or_name, task, overrides):
    if isinstance(model_or_name, keras.Model):
        if overrides:
            raise ValueError(
                "Build overrides need a registered model name, not a keras.Model. "
                f"Received: overrides={sorted(overrides)}"
            )
        # A model may name its task (`TextClassifier.task`, `Translator.task`).
        default = getattr(model_or_name, "task", None) or _task_by_names(model_or_name)
        return model_or_name.name, model_or_name, task or default
    if not isinstance(model_or_name, str):
        raise TypeError(
            "Argument `model_or_name` must be a registered model name or a "
            f"keras.Model. Received: model_or_name={model_or_name!r}"
        )
    from zoo import build_model, get_model_spec

    spec = get_model_spec(model_or_name)
    if task is not None and task != spec.task:
        raise ValueError(
            f"Argument `task` must be omitted or {spec.task!r} for model "
            f"{model_or_name!r}. Received: task={task!r}"
        )
    return model_or_name, build_model(model_or_name, **overrides), spec.task


def _task_by_names(model):
    """The task its input or output names say (a functional model), else the
    default."""
    try:
        inputs = model.inputs  # A subclassed model may have none.
        outputs = tuple(sorted(model.output_names or ()))
    except AttributeError:
        return _DEFAULT_TASK
    names = tuple(t.name.split(":")[0] for t in inputs or ())
    if names in _TASKS_BY_INPUTS:
        return _TASKS_BY_INPUTS[names]
    return _TASKS_BY_OUTPUTS.get(outputs, _DEFAULT_TASK)


def _save(model, signatures, output_dir):
    root = tf.Module()
    # The raw tf.Variables behind the Keras variables, tracked once: tracking
    # the Keras wrappers as well would store every weight twice.
    root.model_variables = [_tf_variable(v) for v in model.variables]
    root.resources = [r for s in signatures for r in s.resources]
    concrete = {s.name: s.function.get_concrete_function() for s in signatures}
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}-", dir=parent)
    try:
        tf.saved_model.save(
            root,
            staging,
            signatures=concrete,
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
        )
        # mkdtemp makes it 0o700: a server running as another user could not
        # read it. TensorFlow already wrote what is inside with the umask's.
        os.chmod(staging, 0o777 & ~current_umask())
        if os.path.isdir(output_dir):
            os.rmdir(output_dir)
        os.replace(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tf_variable(variable):
    value = variable.value
    if not isinstance(value, tf.Variable):
        raise TypeError(
            f"Variable {variable.path} is not backed by a tf.Variable "
            f"(received {type(value).__name__}); export needs the TensorFlow backend."
        )
    return value

"""Model and weights files: `.keras` files, run folders and `.weights.h5` files.

One loader for the command line and export. Files are loaded with
`safe_mode=True`; every error is one short line naming the file (Keras' own
messages can hold whole tensors). The zoo's custom objects (its layers,
schedules and callbacks) are registered by `import zoo`, which importing this
module implies.
"""

import json
import os
import re
import zipfile

import h5py
import keras

MODEL_FILE = "model.keras"
_MAX_MESSAGE_CHARS = 400


def load_model_file(path):
    """Loads a `.keras` model file, or the `model.keras` of a run folder.

    Args:
        path: a `.keras` file, or a folder holding `model.keras` (what
            `zoo train` writes).

    Returns:
        The `keras.Model`, not compiled, loaded with `safe_mode=True`.

    Raises:
        FileNotFoundError: no such file, or a folder without `model.keras`.
        ValueError: a SavedModel folder, a file that is not a valid `.keras`
            file, or one that needs unsafe deserialization.
    """
    return _load_keras_file(_keras_file(path, "path"), "path", path)


def load_weights(model, weights):
    """Replaces the weights of `model` by those of a model or weights file.

    Args:
        model: a built `keras.Model`.
        weights: a `.keras` file (loaded with `safe_mode=True`) or a run
            folder holding `model.keras`, whose weights are copied in order;
            or a `.weights.h5` file (`model.save_weights`).

    Returns:
        `model`, with the new weights.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file that is not a valid `.keras` or `.weights.h5`
            file, or whose weights do not fit `model` (the message names the
            first weight whose shape differs, or both counts); `model` keeps
            its weights then.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Argument `model` must be a keras.Model. Received: model={model!r}"
        )
    path = _as_path(weights, "weights")
    if path.endswith(".weights.h5"):
        _load_weights_h5(model, path, weights)
        return model
    file = _keras_file(weights, "weights")
    source = _load_keras_file(file, "weights", weights)
    _check_fits(model, source.weights, weights)
    model.set_weights(source.get_weights())
    return model


def _as_path(value, argument):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"Argument `{argument}` must be a path. Received: {argument}={value!r}"
        )
    return os.fspath(value)


def _keras_file(value, argument):
    """The `.keras` file that `value` (a file or a run folder) names."""
    path = _as_path(value, argument)
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise ValueError(
                f"Argument `{argument}` is a SavedModel folder: serve it, or use "
                f"the .keras file it was exported from. Received: {argument}={value!r}"
            )
        folder, path = path, os.path.join(path, MODEL_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"No .keras model file at {argument}={value!r}: the folder "
                f"{folder} holds no {MODEL_FILE}."
            )
        return path
    if not path.endswith(".keras"):
        expected = "a `.keras` file or a run folder"
        if argument == "weights":
            expected = "a `.keras` or `.weights.h5` file, or a run folder"
        raise ValueError(
            f"Argument `{argument}` must be {expected}. Received: {argument}={value!r}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No .keras model file at {argument}={value!r}")
    return path


def _load_keras_file(path, argument, value):
    invalid = (
        f"Argument `{argument}` must be a valid .keras file (the zip archive that "
        f"`model.save` writes); {path} is not one"
    )
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{invalid}: it is truncated or corrupt.")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except (zipfile.BadZipFile, EOFError, KeyError, OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{invalid}: {_short(e)}") from None
    except (ValueError, TypeError) as error:
        if str(error).startswith("File not found"):
            # What Keras says of any zip archive it cannot read.
            raise ValueError(f"{invalid}: it is truncated or corrupt.") from None
        kind = TypeError if isinstance(error, TypeError) else ValueError
        reason = _short(error)
        if "safe_mode" in reason:
            # Keras suggests `safe_mode=False`, which this loader never uses.
            reason = f"safe_mode=True refuses it: {reason.split('. ')[0]}"
        raise kind(f"Could not load {path}: {reason}") from None


def _check_fits(model, weights, value):
    """Raises if `weights` (in order) do not have the shapes of `model`'s."""
    mine = model.weights
    problem = None
    if len(weights) != len(mine):
        problem = f"it has {len(weights)} weights, the model {len(mine)}"
    else:
        for theirs, ours in zip(weights, mine, strict=True):
            if tuple(theirs.shape) != tuple(ours.shape):
                problem = (
                    f"its weight {theirs.path} has shape {tuple(theirs.shape)}, "
                    f"the model's {ours.path} has shape {tuple(ours.shape)}"
                )
                break
    if problem:
        raise ValueError(
            f"The model in weights={value!r} does not match the model to load "
            f"into: {problem}. Build the model with the arguments it was "
            "trained with."
        )


def _load_weights_h5(model, path, value):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No weights file at weights={value!r}")
    try:
        with h5py.File(path, "r") as f:
            stored = _stored_weights(f)
    except OSError as error:
        raise ValueError(
            "Argument `weights` must be a valid .weights.h5 file (what "
            f"`model.save_weights` writes); {path} is not one: {_short(error)}"
        ) from None
    if stored != len(model.weights):
        raise ValueError(
            f"The weights in weights={value!r} do not match the model to load "
            f"into: the file holds {stored} weights, the model has "
            f"{len(model.weights)}. Build the model with the arguments it was "
            "trained with."
        )
    # Keras loads layer by layer: a failure half-way leaves a mixed model.
    before = model.get_weights()
    try:
        model.load_weights(path)
    except Exception as error:  # noqa: BLE001 (re-raised as one line)
        model.set_weights(before)
        raise ValueError(
            f"The weights in weights={value!r} do not match the model to load "
            f"into: {_weights_mismatch(error)}. Build the model with the "
            "arguments it was trained with."
        ) from None


def _stored_weights(h5_file):
    """Number of weights in a `.weights.h5` file (its optimizer's left out)."""
    names = []
    h5_file.visititems(
        lambda name, item: (
            names.append(name) if isinstance(item, h5py.Dataset) else None
        )
    )
    return sum(1 for name in names if name.split("/")[0] != "optimizer")


def _weights_mismatch(error):
    """What Keras' error when loading weights says, without tensor values."""
    text = str(error)
    shapes = re.search(
        r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))", text
    )
    variable = re.search(r"Target variable: <Variable path=([^,>]+)", text)
    if shapes and variable:
        return (
            f"the file's weight for {variable.group(1)} has shape "
            f"{shapes.group(2)}, the model's has shape {shapes.group(1)}"
        )
    return _short(error)


def _short(error):
    """The first paragraph of an error message, on one line, cut short."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else ""
    text = text or str(error)
    first = re.split(r"\n\s*\n|Full object config|value=\[", text, maxsplit=1)[0]
    line = " ".join(first.split()).rstrip(" .:,")
    if len(line) > _MAX_MESSAGE_CHARS:
        line = line[: _MAX_MESSAGE_CHARS - 3].rstrip() + "..."
    return line or type(error).__name__

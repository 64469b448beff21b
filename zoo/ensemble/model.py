"""Ensembles of image classifiers: the (weighted) mean of their probabilities."""

import os
import re

import keras
import numpy as np

from layers.prediction_average import PredictionAverage, check_member_weights
from layers.validation import check_choice, check_positive_int
from zoo._image import image_input
from zoo.model_files import load_model_file
from zoo.registry import build_model, get_model_spec, list_models

TASK = "image_classification"
METHODS = ("mean", "weighted", "fitted")
# Expectation-maximisation steps of `fit_weights` (it stops earlier once the
# validation NLL moves by less than FIT_TOLERANCE).
FIT_STEPS = 500
FIT_TOLERANCE = 1e-12
PREDICT_BATCH_SIZE = 256


def build_ensemble(
    members, weights=None, method="mean", validation_data=None, name="ensemble"
):
    """Builds the ensemble of image classifiers of one task, shapes and classes.

    The ensemble is a functional `keras.Model` from an input named `"image"`
    (the members' input shape) through every member, each a nested model (so
    each member's weights are stored once when it is saved or exported), to a
    `layers.PredictionAverage` named `"logits"`: float32 logits whose softmax
    is the weighted mean of the members' probabilities. It saves, loads with
    `safe_mode=True` and exports (`zoo.export.export_model`) like any zoo
    image classifier.

    Members are renamed `member{i}_{name}` inside the ensemble, so their names
    are unique. A `keras.Model` given as a member is cloned
    (`keras.models.clone_model`, weights copied), never shared: renaming it,
    training or quantizing the ensemble then leaves the caller's model as it
    was, and the same model given twice becomes two members. Registered names
    are built with `build_model` (registered arguments, random weights) and
    files loaded with `zoo.model_files.load_model_file`; those models belong
    to the ensemble alone.

    Args:
        members: a non-empty list of registered image-classification names
            (see `zoo.list_models("image_classification")`), `keras.Model`s,
            or paths of `.keras` files or run folders, mixed freely; all must
            take the same input shape and predict the same number of classes.
        weights: with `method="weighted"`, one non-negative number per member
            (with a positive sum; normalized). Must be `None` otherwise.
        method: `"mean"` (equal weights), `"weighted"` (the given `weights`)
            or `"fitted"` (weights minimising the negative log-likelihood of
            the mixture on `validation_data`, see `fit_weights`; they are
            recorded in the `"logits"` layer's `member_weights`).
        validation_data: with `method="fitted"`: `(x, y)` arrays (images and
            integer labels), or an iterable of `(x, y)` batches such as a
            `tf.data.Dataset`. Must be `None` otherwise.
        name: the ensemble model's name.

    Returns:
        An uncompiled functional `keras.Model`.

    Raises:
        ValueError: empty `members`, a member that is not an image classifier
            (a text model, an unknown name), members that differ in input
            shape or classes, or a bad `weights`, `method` or
            `validation_data` (the message names the argument).

    Example:

    >>> ensemble = build_ensemble(["attention_cnn_tiny", "cbam_cnn_tiny"])
    >>> [layer.name for layer in ensemble.layers]
    ['image', 'member0_attention_cnn_tiny', 'member1_cbam_cnn_tiny', 'logits']
    """
    models = [
        _member_model(member, i, members)
        for i, member in enumerate(_member_list(members))
    ]
    return _assemble(models, weights, method, validation_data, name)


def ensemble(
    members=("attention_cnn_tiny", "cbam_cnn_tiny", "vit_tiny"),
    weights=None,
    input_shape=(28, 28, 1),
    num_classes=10,
    name="ensemble",
):
    """Builds the ensemble of registered image models (the registry's builder).

    Each member is `build_model(member, input_shape=input_shape,
    num_classes=num_classes)` (random weights), renamed `member{i}_{member}`;
    see `build_ensemble` for the model. Training it trains the members
    together on the loss of their mean prediction; to ensemble separately
    trained models, give them (or their files) to `build_ensemble`.

    Args:
        members: registered image-classification names.
        weights: `None` (the mean) or one non-negative weight per member.
        input_shape: `(height, width, channels)` of the float32 images.
        num_classes: number of classes.
        name: model name.

    Returns:
        An uncompiled functional `keras.Model` from `"image"` to `"logits"`.
    """
    image_input(input_shape)
    num_classes = check_positive_int("num_classes", num_classes)
    names = _member_list(members)
    for member in names:
        if not isinstance(member, str) or member not in list_models(task=TASK):
            raise ValueError(
                "Argument `members` of the registered ensemble must hold "
                f"registered {TASK} names; {member!r} is not one. Received: "
                f"members={members!r}"
            )
    models = [
        build_model(
            member,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            name=f"member{i}_{member}",
        )
        for i, member in enumerate(names)
    ]
    method = "mean" if weights is None else "weighted"
    return _assemble(models, weights, method, None, name)


def _assemble(models, weights, method, validation_data, name):
    """The ensemble model of `models`, which it uses as they are (no copy).

    `build_ensemble` without the resolution of names and files and without
    cloning: `models` must be `keras.Model`s with unique names that nothing
    else uses. Arguments and result as in `build_ensemble`.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"Argument `name` must be a non-empty string. Received: name={name!r}"
        )
    input_shape, _ = _check_members(models)
    member_weights = _weights(models, weights, method, validation_data)
    inputs = keras.Input(shape=input_shape, name="image")
    outputs = PredictionAverage(member_weights=member_weights, name="logits")(
        [model(inputs) for model in models]
    )
    return keras.Model(inputs, outputs, name=name)


# ---------------------------------------------------------------------------
# Members
# ---------------------------------------------------------------------------


def _member_list(members):
    if isinstance(members, (str, os.PathLike, keras.Model)) or not isinstance(
        members, (list, tuple)
    ):
        raise ValueError(
            "Argument `members` must be a list of registered names, keras.Models "
            f"or .keras files. Received: members={members!r}"
        )
    if not members:
        raise ValueError(
            "Argument `members` must hold at least one model. "
            f"Received: members={members!r}"
        )
    return list(members)


def _looks_like_path(text):
    return (
        os.path.exists(text)
        or os.sep in text
        or (os.altsep is not None and os.altsep in text)
        or text.endswith(".keras")
    )


def _member_model(member, index, members):
    """The `keras.Model` of one entry of `members`, named `member{index}_...`."""
    if isinstance(member, keras.Model):
        # Checked before cloning: a text model may not clone at all.
        _check_image_classifier(member, members)
        model = _clone(member, index)
        model.name = _member_name(index, member.name)
        return model
    if not isinstance(member, (str, os.PathLike)):
        raise ValueError(
            f"Argument `members` must hold registered names, keras.Models or "
            f".keras files; members[{index}] is {member!r}. "
            f"Received: members={members!r}"
        )
    text = os.fspath(member)
    if isinstance(member, str) and not _looks_like_path(text):
        try:
            spec = get_model_spec(text)
        except ValueError as error:
            raise ValueError(
                f"Argument `members`: {error} Received: members={members!r}"
            ) from None
        if spec.task != TASK:
            raise ValueError(
                f"Argument `members` must hold {TASK} models of one task; "
                f"members[{index}]={text!r} is a {spec.task} model. "
                f"Received: members={members!r}"
            )
        return build_model(text, name=f"member{index}_{text}")
    model = load_model_file(text)
    model.name = _member_name(index, model.name)
    return model


def _member_name(index, name):
    """`member{index}_{name}`, without the prefix a member of an ensemble had."""
    return f"member{index}_{re.sub(r'^member[0-9]+_', '', name)}"


def _clone(model, index):
    """A copy of `model` with its own weights (the same values)."""
    try:
        clone = keras.models.clone_model(model)
    except Exception as error:  # noqa: BLE001 (re-raised naming the member)
        raise ValueError(
            f"Argument `members`: members[{index}] ({model.name!r}, "
            f"{type(model).__name__}) cannot be cloned ({error}); give its .keras "
            "file instead."
        ) from None
    clone.set_weights(model.get_weights())
    return clone


def _is_image_classifier(model):
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    return (
        len(inputs) == 1
        and len(outputs) == 1
        and len(inputs[0].shape) == 4
        and "float" in str(inputs[0].dtype)
        and len(outputs[0].shape) == 2
    )


def _describe(model):
    inputs = getattr(model, "inputs", None) or []
    shapes = [f"{t.name} {tuple(t.shape)} {t.dtype}" for t in inputs]
    return f"{model.name!r} ({type(model).__name__}, inputs {shapes or 'unknown'})"


def _check_image_classifier(model, members):
    if not isinstance(model, keras.Model) or not _is_image_classifier(model):
        what = _describe(model) if isinstance(model, keras.Model) else repr(model)
        received = [getattr(m, "name", m) for m in members]
        raise ValueError(
            f"Argument `members` must hold {TASK} models (one float input "
            f"(B, height, width, channels), logits (B, classes)); {what} is "
            f"not one (text models cannot be ensembled). "
            f"Received: members={received}"
        )


def _check_members(models):
    """Raises unless `models` are image classifiers of one input shape and
    class count; returns `(input_shape, num_classes)`."""
    for model in models:
        _check_image_classifier(model, models)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(
            "Argument `members` must have unique model names. "
            f"Received: members={names}"
        )
    shapes = [tuple(m.inputs[0].shape[1:]) for m in models]
    classes = [m.outputs[0].shape[-1] for m in models]
    if len(set(shapes)) != 1:
        raise ValueError(
            "Argument `members` must take one input shape; their input shapes are "
            f"{shapes}. Received: members={names}"
        )
    if len(set(classes)) != 1 or classes[0] is None:
        raise ValueError(
            "Argument `members` must predict the same number of classes; they "
            f"predict {classes}. Received: members={names}"
        )
    return shapes[0], classes[0]


# ---------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------


def _weights(models, weights, method, validation_data):
    """The `member_weights` of the `"logits"` layer for `method`."""
    method = check_choice("method", method, METHODS)
    if method != "weighted" and weights is not None:
        raise ValueError(
            f"Argument `weights` goes with method='weighted' (method={method!r} "
            f"{'fits' if method == 'fitted' else 'uses equal'} weights). "
            f"Received: weights={weights!r}"
        )
    if method != "fitted" and validation_data is not None:
        raise ValueError(
            "Argument `validation_data` goes with method='fitted'. "
            f"Received: validation_data of type {type(validation_data).__name__}"
        )
    if method == "mean":
        return None
    if method == "weighted":
        if weights is None:
            raise ValueError(
                "Argument `weights` must be given with method='weighted'. "
                "Received: weights=None"
            )
        member_weights = check_member_weights(weights)
        if len(member_weights) != len(models):
            raise ValueError(
                f"Argument `weights` must have one weight per member "
                f"({len(models)}). Received: weights={weights!r}"
            )
        return member_weights
    if validation_data is None:
        raise ValueError(
            "Argument `validation_data` must be given with method='fitted'. "
            "Received: validation_data=None"
        )
    log_probabilities, labels = member_log_probabilities(models, validation_data)
    return fit_weights(log_probabilities, labels)


def _batches(validation_data):
    """`(x, y)` NumPy batches of `validation_data`."""
    if isinstance(validation_data, (tuple, list)):
        if len(validation_data) != 2:
            raise ValueError(
                "Argument `validation_data` must be (x, y) or a dataset of (x, y) "
                f"batches. Received: a {type(validation_data).__name__} of "
                f"{len(validation_data)} items"
            )
        x, y = (np.asarray(a) for a in validation_data)
        if len(x) != len(y):
            raise ValueError(
                "Argument `validation_data` must have one label per image. "
                f"Received: {len(x)} images, {len(y)} labels"
            )
        for start in range(0, len(x), PREDICT_BATCH_SIZE):
            yield (
                x[start : start + PREDICT_BATCH_SIZE],
                y[start : start + PREDICT_BATCH_SIZE],
            )
        return
    iterator = getattr(validation_data, "as_numpy_iterator", None)
    try:
        items = iterator() if iterator is not None else iter(validation_data)
    except TypeError:
        items = None
    if items is None:
        raise ValueError(
            "Argument `validation_data` must be (x, y) arrays or a dataset of "
            f"(x, y) batches. Received: validation_data={validation_data!r}"
        )
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise ValueError(
                "Argument `validation_data` must yield (x, y) batches. "
                f"Received: an element of type {type(item).__name__}"
            )
        yield (keras.ops.convert_to_numpy(a) for a in item)


def member_log_probabilities(models, validation_data):
    """Each member's float64 log-probabilities on `validation_data`, one pass.

    Args:
        models: the member `keras.Model`s (logits outputs).
        validation_data: `(x, y)` arrays, or an iterable of `(x, y)` batches
            (a `tf.data.Dataset`): read once, so a shuffling dataset keeps the
            labels with their images.

    Returns:
        `(log_probabilities, labels)`: a float64 array `(K, N, C)` and the
        int64 labels `(N,)`.
    """
    outputs, labels = [[] for _ in models], []
    for x, y in _batches(validation_data):
        for output, model in zip(outputs, models, strict=True):
            logits = keras.ops.convert_to_numpy(model.predict_on_batch(x))
            output.append(logits.astype("float64"))
        labels.append(np.asarray(y))
    if not labels:
        raise ValueError(
            "Argument `validation_data` must hold at least one example. "
            "Received: an empty dataset"
        )
    logits = np.stack([np.concatenate(o) for o in outputs])
    log_probabilities = logits - _logsumexp(logits, axis=-1, keepdims=True)
    y = np.concatenate(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    num_classes = logits.shape[-1]
    if (
        y.ndim != 1
        or not np.all(np.equal(np.mod(y, 1), 0))
        or y.min() < 0
        or y.max() >= num_classes
    ):
        raise ValueError(
            "Argument `validation_data` must have integer labels in "
            f"[0, {num_classes}) of shape (N,). Received: labels of shape "
            f"{y.shape}, values {np.unique(y)[:10]}"
        )
    return log_probabilities, y.astype("int64")


def _logsumexp(a, axis, keepdims=False):
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


def _true_class(log_probabilities, labels):
    """`(N, K)`: each member's log-probability of each example's label."""
    return log_probabilities[:, np.arange(len(labels)), labels].T


def validation_nll(log_probabilities, labels, weights=None):
    """Mean negative log-likelihood of the weighted mean of the probabilities.

    Args:
        log_probabilities: float `(K, N, C)`, each member's log-probabilities.
        labels: int `(N,)`.
        weights: `None` (equal) or `K` non-negative weights (normalized).

    Returns:
        A Python float.
    """
    k = log_probabilities.shape[0]
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, "float64")
    with np.errstate(divide="ignore"):
        log_w = np.log(w / w.sum())
    return float(
        -np.mean(_logsumexp(_true_class(log_probabilities, labels) + log_w, 1))
    )


def fit_weights(log_probabilities, labels, steps=FIT_STEPS):
    """Mixture weights minimising the validation NLL of the mean probability.

    Minimises `-mean_n log(sum_k w_k p_k(y_n | x_n))` over the simplex by
    expectation-maximisation from equal weights: each step sets `w_k` to the
    mean over the examples of member `k`'s share of the mixture's probability
    of the label. Every step lowers the NLL or leaves it (EM's guarantee, and
    the best iterate is kept), so the result is never worse than equal
    weights on this data; it is deterministic (no randomness, a fixed
    order). It stops after `steps` steps or when the NLL moves by less than
    `FIT_TOLERANCE`.

    Args:
        log_probabilities: float `(K, N, C)`, each member's log-probabilities
            (see `member_log_probabilities`).
        labels: int `(N,)`.
        steps: maximum number of EM steps.

    Returns:
        A tuple of `K` non-negative Python floats summing to 1.
    """
    steps = check_positive_int("steps", steps)
    true = _true_class(np.asarray(log_probabilities, "float64"), labels)
    k = true.shape[1]
    log_w = np.full(k, -np.log(k))
    best_w, best_nll, previous = np.exp(log_w), np.inf, np.inf
    for step in range(steps + 1):
        joint = true + log_w
        mixture = _logsumexp(joint, axis=1, keepdims=True)
        nll = float(-np.mean(mixture))
        if nll < best_nll:
            best_w, best_nll = np.exp(log_w), nll
        if step == steps or previous - nll < FIT_TOLERANCE:
            break
        previous = nll
        w = np.mean(np.exp(joint - mixture), axis=0)
        with np.errstate(divide="ignore"):
            log_w = np.log(w / w.sum())
    best_w = best_w / best_w.sum()
    return tuple(float(w) for w in best_w)

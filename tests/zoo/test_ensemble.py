"""`build_ensemble`: members by name, model or file; mean, weighted, fitted."""

import argparse
import os
import zipfile

import h5py
import keras
import numpy as np
import pytest

import zoo
import zoo.ensemble  # noqa: F401  (registers the family)
from zoo.ensemble import build_ensemble, ensemble_from_tuner, fit_weights
from zoo.ensemble.model import member_log_probabilities, validation_nll

SHAPE = (12, 12, 1)
CLASSES = 4


def tiny_model(name, shape=SHAPE, classes=CLASSES, seed=0):
    """A small image classifier with the zoo's contract ("image" -> "logits")."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape, name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(classes, dtype="float32", name="logits")(x)
    model = keras.Model(inputs, outputs, name=name)
    # Confident, different members: the averages are far from uniform.
    for w in model.trainable_weights:
        w.assign(np.random.default_rng(seed).normal(0, 1.5, tuple(w.shape)))
    return model


def _images(n=16, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def _probabilities(model, x):
    logits = _numpy(model(x, training=False)).astype("float64")
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _ensemble_probabilities(ensemble, x):
    return _probabilities(ensemble, x)


def _mean(models, x, weights=None):
    w = np.ones(len(models)) if weights is None else np.asarray(weights, "float64")
    w = w / w.sum()
    return sum(wi * _probabilities(m, x) for wi, m in zip(w, models, strict=True))


@pytest.fixture(scope="module")
def members():
    return [tiny_model(f"m{i}", seed=i) for i in range(3)]


def test_from_models_is_the_mean_and_leaves_them_as_they_were(members):
    before = [[_numpy(w).copy() for w in m.weights] for m in members]
    ensemble = build_ensemble(members)
    assert [layer.name for layer in ensemble.layers] == [
        "image",
        "member0_m0",
        "member1_m1",
        "member2_m2",
        "logits",
    ]
    assert ensemble.input.name == "image" and ensemble.layers[-1].name == "logits"
    assert tuple(ensemble.output.shape) == (None, CLASSES)
    x = _images()
    np.testing.assert_allclose(
        _ensemble_probabilities(ensemble, x), _mean(members, x), atol=1e-5
    )
    # Cloned, not shared: the given models keep their names and weights.
    assert [m.name for m in members] == ["m0", "m1", "m2"]
    for layer, model in zip(ensemble.layers[1:-1], members, strict=True):
        assert layer is not model and isinstance(layer, keras.Model)
    for w in ensemble.trainable_weights:
        w.assign(w + 1.0)
    for model, old in zip(members, before, strict=True):
        for w, b in zip(model.weights, old, strict=True):
            np.testing.assert_array_equal(_numpy(w), b)


def test_the_same_model_twice_becomes_two_members(members):
    ensemble = build_ensemble([members[0], members[0]])
    assert [layer.name for layer in ensemble.layers[1:-1]] == [
        "member0_m0",
        "member1_m0",
    ]
    x = _images()
    np.testing.assert_allclose(
        _ensemble_probabilities(ensemble, x), _probabilities(members[0], x), atol=1e-5
    )


def test_weighted_is_the_weighted_mean(members):
    weights = [0.6, 0.1, 0.3]
    ensemble = build_ensemble(members, weights=weights, method="weighted")
    assert ensemble.get_layer("logits").member_weights == tuple(weights)
    x = _images()
    np.testing.assert_allclose(
        _ensemble_probabilities(ensemble, x), _mean(members, x, weights), atol=1e-5
    )
    # Not vacuous: other weights give other probabilities.
    assert np.abs(_mean(members, x, weights) - _mean(members, x)).max() > 1e-2


def test_from_names():
    ensemble = build_ensemble(["attention_cnn_tiny", "cbam_cnn_tiny"], name="pair")
    assert ensemble.name == "pair"
    assert [layer.name for layer in ensemble.layers[1:-1]] == [
        "member0_attention_cnn_tiny",
        "member1_cbam_cnn_tiny",
    ]
    x = _images(4, (28, 28, 1))
    np.testing.assert_allclose(
        _ensemble_probabilities(ensemble, x),
        _mean(ensemble.layers[1:-1], x),
        atol=1e-5,
    )


def test_from_files_and_a_run_folder(members, tmp_path):
    members[0].save(tmp_path / "first.keras")
    os.makedirs(tmp_path / "run")
    members[1].save(tmp_path / "run" / "model.keras")
    ensemble = build_ensemble(
        [str(tmp_path / "first.keras"), tmp_path / "run", members[2]]
    )
    assert [layer.name for layer in ensemble.layers[1:-1]] == [
        "member0_m0",
        "member1_m1",
        "member2_m2",
    ]
    x = _images()
    np.testing.assert_allclose(
        _ensemble_probabilities(ensemble, x), _mean(members, x), atol=1e-5
    )


def test_save_and_load_with_safe_mode_and_weights_stored_once(members, tmp_path):
    ensemble = build_ensemble(members, weights=[1, 2, 3], method="weighted")
    path = tmp_path / "ensemble.keras"
    ensemble.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    x = _images()
    np.testing.assert_array_equal(_numpy(reloaded(x)), _numpy(ensemble(x)))
    assert reloaded.get_layer("logits").member_weights == (1.0, 2.0, 3.0)
    with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as f:
        stored = []
        with h5py.File(f, "r") as weights:
            weights.visititems(
                lambda name, item: (
                    stored.append(name) if isinstance(item, h5py.Dataset) else None
                )
            )
    assert len(stored) == sum(len(m.weights) for m in members) == len(ensemble.weights)
    # An ensemble of a saved ensemble's members names them afresh.
    again = build_ensemble([reloaded.layers[1], str(path)])
    assert [layer.name for layer in again.layers[1:-1]] == [
        "member0_m0",
        "member1_ensemble",
    ]


def _validation(members, n=64, seed=3):
    """Images labelled by member 1 (mostly): it deserves the largest weight."""
    x = _images(n, seed=seed)
    y = _probabilities(members[1], x).argmax(-1)
    y[::5] = (y[::5] + 1) % CLASSES
    return x, y


def test_fitted_weights_beat_equal_weights_and_are_deterministic(members):
    x, y = _validation(members)
    ensemble = build_ensemble(members, method="fitted", validation_data=(x, y))
    weights = np.asarray(ensemble.get_layer("logits").member_weights)
    assert np.all(weights >= 0) and weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert weights.argmax() == 1
    log_p, labels = member_log_probabilities(members, (x, y))
    fitted, equal = (
        validation_nll(log_p, labels, weights),
        validation_nll(log_p, labels),
    )
    assert fitted < equal - 1e-3
    # The ensemble's own loss is that NLL.
    probabilities = _ensemble_probabilities(ensemble, x)
    nll = -np.mean(np.log(probabilities[np.arange(len(y)), y]))
    assert nll == pytest.approx(fitted, rel=1e-5)
    again = build_ensemble(members, method="fitted", validation_data=(x, y))
    assert again.get_layer("logits").member_weights == tuple(weights)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.data datasets on TensorFlow"
)
def test_fitted_on_a_dataset_equals_fitted_on_arrays(members):
    import tensorflow as tf

    x, y = _validation(members)
    arrays = build_ensemble(members, method="fitted", validation_data=(x, y))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    batched = build_ensemble(members, method="fitted", validation_data=dataset)
    np.testing.assert_allclose(
        batched.get_layer("logits").member_weights,
        arrays.get_layer("logits").member_weights,
        atol=1e-9,
    )


def test_fit_weights_finds_the_minimum():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (2, 200, 3))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = rng.integers(0, 3, 200)
    weights = fit_weights(log_p, labels)
    grid = np.linspace(0, 1, 2001)
    best = min(validation_nll(log_p, labels, [w, 1 - w]) for w in grid)
    assert validation_nll(log_p, labels, weights) <= best + 1e-7
    assert fit_weights(log_p, labels) == weights
    # Equal weights are kept when they are the optimum (identical members).
    same = np.stack([log_p[0], log_p[0]])
    np.testing.assert_allclose(fit_weights(same, labels), [0.5, 0.5])


def _text_model():
    inputs = keras.Input((8,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(20, 4)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(CLASSES, name="logits")(x))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(members=[]), "`members`"),
        (dict(members="vit_tiny"), "`members`"),
        (dict(members=["vit_tny"]), "`members`.*vit_tiny"),
        (dict(members=["vit_tiny", "transformer_classifier_tiny"]), "`members`.*text"),
        (dict(members=[3]), "`members`"),
        (dict(method="median"), "`method`.*median"),
        (dict(weights=[1, 2, 3]), "`weights`"),
        (dict(method="weighted"), "`weights`"),
        (dict(method="weighted", weights=[1, 2]), r"`weights`.*\[1, 2\]"),
        (dict(method="weighted", weights=[1, -2, 1]), r"`weights`.*-2"),
        (dict(method="fitted"), "`validation_data`"),
        (dict(validation_data=(1, 2)), "`validation_data`"),
        (dict(name=""), "`name`"),
    ],
)
def test_bad_arguments_are_named(members, kwargs, pattern):
    kwargs = {"members": members, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        build_ensemble(**kwargs)


@pytest.mark.parametrize(
    "other, pattern",
    [
        (lambda: tiny_model("other", shape=(10, 12, 1)), r"`members`.*input shape"),
        (lambda: tiny_model("other", classes=CLASSES + 1), r"`members`.*classes"),
        (_text_model, r"`members`.*tokens"),
    ],
)
def test_mixed_members_are_refused(members, other, pattern):
    with pytest.raises(ValueError, match=pattern):
        build_ensemble([members[0], other()])


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TextVectorization on TensorFlow"
)
def test_a_text_classifier_is_refused(members):
    import tensorflow as tf

    from zoo.text_classifier import TextClassifier

    vectorizer = keras.layers.TextVectorization(max_tokens=20)
    vectorizer.adapt(tf.constant(["a gripping film", "a dull plot"]))
    tokens = _text_model()
    text = TextClassifier(tokens, vectorizer, ["a", "b", "c", "d"], 8)
    with pytest.raises(ValueError, match=r"`members`.*TextClassifier.*text models"):
        build_ensemble([members[0], text])


def test_bad_validation_labels_are_named(members):
    x, y = _validation(members)
    with pytest.raises(ValueError, match="`validation_data`.*labels"):
        build_ensemble(members, method="fitted", validation_data=(x, y + CLASSES))


class FakeTuner:
    """What `ensemble_from_tuner` reads of a keras-tuner tuner."""

    def __init__(self, models):
        self.models = models
        self.asked = []

    def get_best_models(self, num_models=1):
        self.asked.append(num_models)
        return self.models[:num_models]


def test_ensemble_from_tuner(members):
    tuner = FakeTuner(members)
    ensemble = ensemble_from_tuner(tuner, 2)
    assert tuner.asked == [2]
    assert [layer.name for layer in ensemble.layers[1:-1]] == [
        "member0_m0",
        "member1_m1",
    ]
    x = _images()
    np.testing.assert_allclose(
        _ensemble_probabilities(ensemble, x), _mean(members[:2], x), atol=1e-5
    )
    # More than the search has: all of its trials.
    assert len(ensemble_from_tuner(tuner, 5).layers) == 2 + len(members)
    fitted = ensemble_from_tuner(tuner, 3, "fitted", _validation(members))
    assert np.argmax(fitted.get_layer("logits").member_weights) == 1
    with pytest.raises(ValueError, match="`k`"):
        ensemble_from_tuner(tuner, 0)
    with pytest.raises(ValueError, match="`method`"):
        ensemble_from_tuner(tuner, 2, "weighted")
    with pytest.raises(ValueError, match="no trained trial"):
        ensemble_from_tuner(FakeTuner([]), 2)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.data datasets on TensorFlow"
)
@pytest.mark.parametrize("method", ["mean", "fitted"])
def test_tune_ensemble_writes_and_evaluates(members, tmp_path, capsys, method):
    import tensorflow as tf

    from training.dataset_info import DatasetInfo
    from zoo_cli.ensemble import check_ensemble_arguments, tune_ensemble

    x, y = _validation(members)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    info = DatasetInfo("toy", CLASSES, SHAPE, ("a", "b", "c", "d"), 64, 64)
    info = DatasetInfo(**{**info.__dict__, "validation_ds": data})
    args = argparse.Namespace(
        model="cbam_cnn_tiny",
        ensemble=3,
        ensemble_method=method,
        directory=str(tmp_path),
        project_name=None,
        jit_compile=False,
    )
    check_ensemble_arguments(args, "image_classification")
    model, metrics = tune_ensemble(args, FakeTuner(members), info, data)
    path = tmp_path / "cbam_cnn_tiny-toy" / "ensemble.keras"
    out = capsys.readouterr().out
    assert f"saved {path}" in out and "ensemble test accuracy" in out
    assert model.name == "cbam_cnn_tiny_ensemble"
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(_numpy(reloaded(x)), _numpy(model(x)))
    expected = np.mean(_ensemble_probabilities(model, x).argmax(-1) == y)
    assert metrics["accuracy"] == pytest.approx(expected)


def test_ensemble_flags_are_checked_first():
    from zoo_cli.commands import CommandError
    from zoo_cli.ensemble import check_ensemble_arguments

    args = argparse.Namespace(model="m", ensemble=0, ensemble_method="mean")
    with pytest.raises(ValueError, match="--ensemble"):
        check_ensemble_arguments(args, "image_classification")
    args.ensemble = 2
    with pytest.raises(CommandError, match="text_classification"):
        check_ensemble_arguments(args, "text_classification")
    args.ensemble = None
    check_ensemble_arguments(args, "text_classification")


def test_registered_variant():
    spec = zoo.get_model_spec("ensemble_mnist_tiny")
    assert spec.family == "ensemble" and spec.task == "image_classification"
    assert spec.config["members"] == ("attention_cnn_tiny", "cbam_cnn_tiny", "vit_tiny")
    assert spec.training["epochs"] == 2
    with pytest.raises(ValueError, match="`members`.*transformer_classifier_tiny"):
        zoo.build_model("ensemble_mnist_tiny", members=("transformer_classifier_tiny",))
    with pytest.raises(ValueError, match="`input_shape`"):
        zoo.build_model("ensemble_mnist_tiny", input_shape=(28, 28))

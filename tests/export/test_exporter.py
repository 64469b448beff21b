"""`export_model`: arguments, weights files, the version directory."""

import os
import stat

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import perturb, registered_models, toy_classifier
from zoo.export import export_model
from zoo.export.inspection import signature_defs


def _logits(path, image):
    loaded = tf.saved_model.load(str(path))
    return loaded.signatures["serving_default"](image=tf.constant(image))[
        "logits"
    ].numpy()


def _image(model, seed=0):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).random((2, *shape), dtype=np.float32)


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5"])
def test_weights_file_replaces_the_built_weights(tmp_path, suffix):
    trained = toy_classifier()
    perturb(trained, seed=1)
    weights = tmp_path / f"trained{suffix}"
    if suffix == ".keras":
        trained.save(weights)
    else:
        trained.save_weights(weights)
    fresh = toy_classifier()
    image = _image(fresh)
    before = np.asarray(fresh(image))
    exported = export_model(fresh, tmp_path / "toy" / "1", weights=weights)
    expected = np.asarray(trained(image))
    assert not np.allclose(before, expected, atol=1e-3)
    np.testing.assert_allclose(_logits(exported.path, image), expected, atol=1e-5)


def test_keras_weights_are_loaded_in_safe_mode(tmp_path):
    inputs = keras.Input((12, 16, 3), name="image")
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    unsafe = keras.Model(inputs, keras.layers.Dense(5)(x))
    unsafe.save(tmp_path / "unsafe.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        export_model(
            toy_classifier(), tmp_path / "toy" / "1", weights=tmp_path / "unsafe.keras"
        )
    assert not os.path.exists(tmp_path / "toy" / "1")


def test_keras_file_of_another_architecture_is_refused(tmp_path):
    toy_classifier(num_classes=7).save(tmp_path / "seven.keras")
    with pytest.raises(ValueError, match="does not match"):
        export_model(
            toy_classifier(), tmp_path / "toy" / "1", weights=tmp_path / "seven.keras"
        )


def test_corrupt_weights_are_reported_as_such(tmp_path):
    toy_classifier().save(tmp_path / "toy.keras")
    data = (tmp_path / "toy.keras").read_bytes()
    (tmp_path / "half.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="valid .keras file.*half.keras"):
        export_model(
            toy_classifier(), tmp_path / "toy" / "1", weights=tmp_path / "half.keras"
        )
    assert not os.path.exists(tmp_path / "toy")


@pytest.mark.parametrize(
    "weights, error, match",
    [
        ("model.h5", ValueError, "weights"),
        ("model.ckpt", ValueError, "weights"),
        ("missing.keras", FileNotFoundError, "missing.keras"),
    ],
)
def test_bad_weights_argument(tmp_path, weights, error, match):
    with pytest.raises(error, match=match):
        export_model(
            toy_classifier(), tmp_path / "toy" / "1", weights=tmp_path / weights
        )


@pytest.mark.parametrize(
    "output",
    [
        "toy",
        "toy/latest",
        "toy/v1",
        "toy/\u00b2",  # superscript two: str.isdigit() is True, TF Serving skips it
        "toy/\u0661",  # Arabic-Indic one
        f"toy/{2**63}",  # over int64
    ],
)
def test_output_dir_must_end_in_a_version(tmp_path, output):
    with pytest.raises(ValueError, match="output_dir"):
        export_model(toy_classifier(), tmp_path / output)
    assert not os.path.exists(tmp_path / output)


def test_version_directory_gets_the_umask_permissions(tmp_path):
    """A model server running as another user can read the whole version."""
    old = os.umask(0o022)
    try:
        path = export_model(toy_classifier(), tmp_path / "toy" / "1").path
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
    files = 0
    for folder, _, names in os.walk(path):
        assert stat.S_IMODE(os.stat(folder).st_mode) & 0o005 == 0o005, folder
        for name in names:
            mode = stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode)
            assert mode & 0o004, (name, oct(mode))
            files += 1
    assert files >= 3


def test_version_is_never_overwritten_and_nothing_else_is_left(tmp_path):
    model = toy_classifier()
    (tmp_path / "toy" / "1").mkdir(parents=True)
    path = export_model(model, f"{tmp_path}/toy/1/").path
    assert path == str(tmp_path / "toy" / "1")
    with pytest.raises(FileExistsError, match="output_dir"):
        export_model(model, tmp_path / "toy" / "1")
    export_model(model, tmp_path / "toy" / "2")
    assert sorted(os.listdir(tmp_path / "toy")) == ["1", "2"]


def test_argument_errors(tmp_path):
    model = toy_classifier()
    with pytest.raises(ValueError, match="overrides"):
        export_model(model, tmp_path / "a" / "1", num_classes=3)
    with pytest.raises(TypeError, match="model_or_name"):
        export_model(3, tmp_path / "a" / "1")
    with pytest.raises(ValueError, match="task"):
        export_model(model, tmp_path / "a" / "1", task="speech_recognition")
    with pytest.raises(ValueError, match="Unknown model name"):
        export_model("no_such_model", tmp_path / "a" / "1")
    assert not os.path.exists(tmp_path / "a")


def test_registered_name_with_overrides(tmp_path):
    from zoo import get_model_spec

    name = next(
        n for n in registered_models() if "num_classes" in get_model_spec(n).config
    )
    with pytest.raises(ValueError, match="task"):
        export_model(name, tmp_path / name / "1", task="translation")
    exported = export_model(name, tmp_path / name / "1", num_classes=3)
    assert exported.name == name
    assert exported.task == get_model_spec(name).task
    logits = signature_defs(exported.path)["serving_default"].outputs["logits"]
    assert [d.size for d in logits.tensor_shape.dim] == [-1, 3]


def test_quantize_is_checked_and_leaves_the_model_as_it_was(tmp_path):
    from zoo import build_model

    model = build_model("vit_tiny")
    before = [keras.ops.convert_to_numpy(w) for w in model.weights]
    with pytest.raises(ValueError, match="Argument `quantize` must be one of"):
        export_model(model, tmp_path / "a" / "1", quantize="int4")
    assert not (tmp_path / "a").exists()
    exported = export_model(model, tmp_path / "b" / "1", quantize="int8")
    assert any(v.dtype == "int8" for v in exported.model.weights)
    assert [w.dtype for w in model.weights] == [b.dtype for b in before]
    for w, b in zip(model.weights, before, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), b)

"""`load_model_file` and `load_weights`: run folders, weights files, clear errors."""

import os
import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np
import pytest

from tests.export.conftest import perturb, toy_classifier
from zoo.model_files import load_model_file, load_weights

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="toy models and files: TF only"
)


@pytest.fixture
def trained(tmp_path):
    """A perturbed toy classifier saved as `.keras`, `.weights.h5` and a run."""
    model = toy_classifier()
    perturb(model, seed=1)
    model.save(tmp_path / "toy.keras")
    model.save_weights(tmp_path / "toy.weights.h5")
    (tmp_path / "run").mkdir()
    model.save(tmp_path / "run" / "model.keras")
    return model


def _assert_same_weights(a, b):
    assert len(a.weights) == len(b.weights)
    for x, y in zip(a.weights, b.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), x.path)


def _assert_short(error):
    """One line, no tensor values."""
    message = str(error.value)
    assert "\n" not in message, message
    assert len(message) < 600, message
    assert "value=" not in message and "[[" not in message, message


@pytest.mark.parametrize("where", ["toy.keras", "run"])
def test_load_model_file_from_a_file_or_a_run_folder(tmp_path, trained, where):
    loaded = load_model_file(tmp_path / where)
    assert loaded.compiled is False
    _assert_same_weights(loaded, trained)
    assert isinstance(load_model_file(str(tmp_path / where)), keras.Model)


@pytest.mark.parametrize("where", ["toy.keras", "toy.weights.h5", "run"])
def test_load_weights_from_each_kind_of_file(tmp_path, trained, where):
    model = toy_classifier()
    assert load_weights(model, tmp_path / where) is model
    _assert_same_weights(model, trained)


def test_a_saved_model_folder_is_named_as_such(tmp_path):
    (tmp_path / "toy" / "1").mkdir(parents=True)
    (tmp_path / "toy" / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match="SavedModel"):
        load_model_file(tmp_path / "toy" / "1")
    with pytest.raises(ValueError, match="SavedModel"):
        load_weights(toy_classifier(), tmp_path / "toy" / "1")


@pytest.mark.parametrize(
    "name, error, match",
    [
        ("missing.keras", FileNotFoundError, "No .keras model file at path=.*missing"),
        ("empty_run", FileNotFoundError, "holds no model.keras"),
        ("model.h5", ValueError, r"Argument `path` must be .*Received: path="),
    ],
)
def test_bad_paths_for_load_model_file(tmp_path, name, error, match):
    (tmp_path / "empty_run").mkdir()
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(error, match=match):
        load_model_file(tmp_path / name)


def test_argument_types():
    with pytest.raises(TypeError, match="Argument `path`"):
        load_model_file(3)
    with pytest.raises(TypeError, match="Argument `weights`"):
        load_weights(toy_classifier(), None)
    with pytest.raises(TypeError, match="Argument `model`"):
        load_weights("model", "toy.keras")


@pytest.mark.parametrize(
    "name, match",
    [
        ("model.h5", r"Argument `weights` must be .*\.weights\.h5.*Received: weights="),
        ("model.ckpt", "Argument `weights`"),
        ("missing.keras", FileNotFoundError),
        ("missing.weights.h5", FileNotFoundError),
    ],
)
def test_bad_paths_for_load_weights(tmp_path, name, match):
    (tmp_path / "model.h5").write_bytes(b"")
    (tmp_path / "model.ckpt").write_bytes(b"")
    if match is FileNotFoundError:
        with pytest.raises(FileNotFoundError, match="missing"):
            load_weights(toy_classifier(), tmp_path / name)
    else:
        with pytest.raises(ValueError, match=match):
            load_weights(toy_classifier(), tmp_path / name)


def _corrupt(tmp_path, trained, kind):
    """A `.keras` file that is not one: random bytes, cut, flipped or a zip."""
    path = tmp_path / f"{kind}.keras"
    data = (tmp_path / "toy.keras").read_bytes()
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif kind == "half":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "flipped":
        flipped = bytearray(data)
        flipped[len(data) // 3] ^= 0xFF
        path.write_bytes(bytes(flipped))
    elif kind == "other_zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "not a model")
    else:
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("kind", ["random", "half", "flipped", "other_zip", "empty"])
def test_a_corrupt_keras_file_is_not_reported_missing(tmp_path, trained, kind):
    path = _corrupt(tmp_path, trained, kind)
    for load in (load_model_file, lambda p: load_weights(toy_classifier(), p)):
        with pytest.raises(ValueError, match="not a valid|valid .keras file") as error:
            load(path)
        assert str(path) in str(error.value)
        assert "not found" not in str(error.value).lower()
        _assert_short(error)


@pytest.mark.parametrize("kind", ["random", "half", "empty"])
def test_a_corrupt_weights_file_is_named(tmp_path, trained, kind):
    data = (tmp_path / "toy.weights.h5").read_bytes()
    contents = {
        "random": np.random.default_rng(0).bytes(5000),
        "half": data[: len(data) // 2],
        "empty": b"",
    }[kind]
    path = tmp_path / f"{kind}.weights.h5"
    path.write_bytes(contents)
    with pytest.raises(ValueError, match="valid .weights.h5 file") as error:
        load_weights(toy_classifier(), path)
    assert str(path) in str(error.value)
    _assert_short(error)


def _smaller_classifier():
    inputs = keras.Input((12, 16, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    outputs = keras.layers.Dense(5, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="toy_rgb")


def test_keras_mismatch_names_the_weight_and_both_shapes(tmp_path):
    toy_classifier(num_classes=7).save(tmp_path / "seven.keras")
    with pytest.raises(ValueError, match="does not match") as error:
        load_weights(toy_classifier(), tmp_path / "seven.keras")
    message = str(error.value)
    assert "logits/kernel" in message
    assert "(256, 7)" in message and "(256, 5)" in message
    _assert_short(error)


def test_keras_mismatch_gives_both_counts(tmp_path):
    _smaller_classifier().save(tmp_path / "small.keras")
    with pytest.raises(ValueError, match="it has 2 weights, the model 12") as error:
        load_weights(toy_classifier(), tmp_path / "small.keras")
    _assert_short(error)


def test_weights_h5_mismatch_names_the_weight_and_keeps_the_model(tmp_path):
    toy_classifier(num_classes=7).save_weights(tmp_path / "seven.weights.h5")
    model = toy_classifier()
    perturb(model, seed=3)
    before = model.get_weights()
    with pytest.raises(ValueError, match="do not match") as error:
        load_weights(model, tmp_path / "seven.weights.h5")
    message = str(error.value)
    assert "logits/kernel" in message
    assert "(256, 7)" in message and "(256, 5)" in message
    _assert_short(error)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("stored", ["fewer", "more"])
def test_weights_h5_with_another_count_is_refused(tmp_path, stored):
    if stored == "fewer":
        source = _smaller_classifier()
    else:
        # The toy plus a layer: Keras alone would load it silently, unused
        # weights and all.
        toy = toy_classifier()
        source = keras.Model(toy.input, keras.layers.Dense(5)(toy.output))
    source.save_weights(tmp_path / "other.weights.h5")
    count = len(source.weights)
    with pytest.raises(ValueError, match=f"holds {count} weights, the model has 12"):
        load_weights(toy_classifier(), tmp_path / "other.weights.h5")


def test_weights_of_a_trained_and_compiled_model_load(tmp_path):
    """The optimizer's variables in a `.weights.h5` file are not counted."""
    model = toy_classifier()
    model.compile("adam", "mse")
    model.fit(np.zeros((2, 12, 16, 3)), np.zeros((2, 5)), verbose=0)
    model.save_weights(tmp_path / "compiled.weights.h5")
    fresh = load_weights(toy_classifier(), tmp_path / "compiled.weights.h5")
    _assert_same_weights(fresh, model)


def test_unsafe_files_are_refused_in_one_line(tmp_path):
    inputs = keras.Input((12, 16, 3), name="image")
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(5)(x)).save(tmp_path / "unsafe.keras")
    with pytest.raises(ValueError, match="safe_mode") as error:
        load_model_file(tmp_path / "unsafe.keras")
    assert str(tmp_path / "unsafe.keras") in str(error.value)
    _assert_short(error)


def _run_fresh(script, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )


def test_import_zoo_registers_what_a_model_file_can_reference(tmp_path):
    """In a fresh process, `import zoo` alone registers every layer, schedule
    (and other saveable object) that the project registers, and a compiled zoo
    model with a zoo learning-rate schedule loads."""
    import zoo
    from training.optimizers import build_optimizer

    model = zoo.build_model("vit_tiny", input_shape=(14, 14, 1), num_classes=3)
    optimizer = build_optimizer(
        "adamw", schedule="cosine", warmup_steps=2, decay_steps=10
    )
    schedule = type(optimizer._learning_rate)
    assert keras.saving.get_registered_name(schedule).startswith("attention_zoo>")
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(True))
    model.save(tmp_path / "vit.keras")
    image = np.random.default_rng(0).random((1, 14, 14, 1), dtype=np.float32)
    np.save(tmp_path / "image.npy", image)
    expected = np.asarray(model(image))
    result = _run_fresh(
        """
        import importlib, pkgutil, sys
        import keras, numpy as np
        import zoo

        def registered():
            # Callbacks are registered too, but never saved in a model file.
            return {
                key
                for key, value in keras.saving.get_custom_objects().items()
                if key.startswith("attention_zoo>")
                and not issubclass(value, keras.callbacks.Callback)
            }

        after_zoo = registered()
        folder = sys.argv[1]
        compiled = keras.saving.load_model(f"{folder}/vit.keras")
        assert compiled.compiled, "not compiled"
        from zoo.model_files import load_model_file
        model = load_model_file(f"{folder}/vit.keras")
        image = np.load(f"{folder}/image.npy")
        np.save(f"{folder}/out.npy", np.asarray(model(image)))
        for package in ("layers", "training", "zoo"):
            module = importlib.import_module(package)
            for info in pkgutil.walk_packages(module.__path__, package + "."):
                if not info.name.endswith("__main__"):
                    importlib.import_module(info.name)
        missing = sorted(registered() - after_zoo)
        assert "attention_zoo>SelfAttention2D" in after_zoo
        assert not missing, f"registered only by other imports: {missing}"
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)

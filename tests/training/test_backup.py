"""Backups of `fit_model`: atomic, resumed exactly, and refused when bad."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.test_fit import Interrupt
from training import atomic_backup_and_restore as backup_module
from training.atomic_backup_and_restore import AtomicBackupAndRestore
from training.backup_error import BackupError
from training.fit import compile_model, fit_model
from training.optimizers import build_optimizer

EPOCHS = 5


def _dataset():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = x[:, :4].argmax(axis=1).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(32)


def _model(hidden=16, depth=1, seed=0):
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((8,))
    for _ in range(depth):
        x = keras.layers.Dense(hidden, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def _compiled(optimizer="adam", **kwargs):
    model = _model(**kwargs)
    return compile_model(model, build_optimizer(optimizer, 0.01))


def _interrupted(run, epoch=3, **kwargs):
    """Trains in `run` until `epoch` starts, leaving a backup of `epoch` epochs."""
    with pytest.raises(KeyboardInterrupt):
        fit_model(
            _compiled(**kwargs),
            _dataset(),
            epochs=EPOCHS,
            output_dir=run,
            callbacks=[Interrupt(epoch)],
            verbose=0,
            tensorboard=False,
        )
    return run / "backup"


def _resume(run, **kwargs):
    model = _compiled(**kwargs)
    history = fit_model(
        model, _dataset(), epochs=EPOCHS, output_dir=run, verbose=0, tensorboard=False
    )
    return model, history


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The weights after `EPOCHS` uninterrupted epochs."""
    model = _compiled()
    run = tmp_path_factory.mktemp("reference")
    fit_model(model, _dataset(), epochs=EPOCHS, output_dir=run, verbose=0)
    return model.get_weights()


def _assert_same(weights, reference):
    for got, want in zip(weights, reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _assert_clear_error(caught, backup):
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert str(backup) in message
    assert "--no-resume" in message and "resume=False" in message
    assert "\n" not in message and len(message) < 500, message
    assert "array(" not in message and "tf.Tensor" not in message


def test_interrupted_run_resumes_with_the_same_weights(tmp_path, reference):
    backup = _interrupted(tmp_path, epoch=3)
    assert sorted(os.listdir(backup)) == [
        "latest.weights.h5",
        "training_metadata.json",
    ], "no temporary files are left"
    model, history = _resume(tmp_path)
    assert history.epoch == [3, 4]
    assert int(model.optimizer.iterations) == EPOCHS * 3
    _assert_same(model.get_weights(), reference)
    assert not backup.exists(), "the backup is deleted when training ends"


def test_kill_during_a_save_keeps_the_previous_backup(tmp_path, reference, monkeypatch):
    saves = []
    save_weights = keras.Model.save_weights

    def killed_in_third_save(model, filepath, *args, **kwargs):
        saves.append(filepath)
        save_weights(model, filepath, *args, **kwargs)
        if len(saves) == 3:
            with open(filepath, "r+b") as f:  # half written
                f.truncate(os.path.getsize(filepath) // 2)
            raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(keras.Model, "save_weights", killed_in_third_save)
    with pytest.raises(KeyboardInterrupt):
        fit_model(
            _compiled(), _dataset(), epochs=EPOCHS, output_dir=tmp_path, verbose=0
        )
    monkeypatch.undo()
    assert len(saves) == 3
    model, history = _resume(tmp_path)
    assert history.epoch == [2, 3, 4], "resumed from the backup of epoch 2"
    _assert_same(model.get_weights(), reference)


def test_kill_between_the_two_files_resumes_from_the_new_backup(
    tmp_path, reference, monkeypatch
):
    backup = tmp_path / "backup"
    replaced = []
    replace = os.replace

    def killed_before_the_metadata(src, dst):
        if os.path.dirname(dst) == str(backup):
            if len(replaced) == 5:  # third save: weights replaced, metadata not
                raise KeyboardInterrupt("killed between the two files")
            replaced.append(dst)
        replace(src, dst)

    monkeypatch.setattr(backup_module.os, "replace", killed_before_the_metadata)
    with pytest.raises(KeyboardInterrupt):
        fit_model(
            _compiled(), _dataset(), epochs=EPOCHS, output_dir=tmp_path, verbose=0
        )
    monkeypatch.undo()
    assert os.path.basename(replaced[-1]) == "latest.weights.h5"
    model, history = _resume(tmp_path)
    assert history.epoch == [3, 4]
    _assert_same(model.get_weights(), reference)


def test_truncated_weights_give_a_clear_error(tmp_path):
    backup = _interrupted(tmp_path)
    weights = backup / "latest.weights.h5"
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    with pytest.raises(BackupError, match="latest.weights.h5 is truncated") as e:
        _resume(tmp_path)
    _assert_clear_error(e, backup)
    assert weights.exists(), "the bad backup is left for the user to judge"


@pytest.mark.parametrize(
    "other",
    [
        {"hidden": 32},  # other weight shapes
        {"depth": 2},  # one more layer
        {"optimizer": "sgd"},  # another optimizer state
    ],
    ids=["shapes", "layers", "optimizer"],
)
def test_backup_of_another_model_gives_a_clear_error(tmp_path, other):
    backup = _interrupted(tmp_path, **other)
    with pytest.raises(BackupError, match="another model") as e:
        _resume(tmp_path)
    _assert_clear_error(e, backup)


def test_another_model_without_optimizer_state_is_refused(tmp_path):
    """Plain SGD saves no slots: a deeper model's extra layer would be skipped."""
    backup = _interrupted(tmp_path, optimizer="sgd", depth=2)
    with pytest.raises(BackupError, match="another model") as e:
        _resume(tmp_path, optimizer="sgd", depth=1)
    _assert_clear_error(e, backup)


@pytest.mark.parametrize(
    "metadata, reason",
    [
        ('{"epoch": 3', "not valid JSON"),
        ('{"epoch": 3, "batch": 0}', "not written by"),  # stock Keras
        ('{"epoch": -1}', "not written by"),
        ("[3]", "not written by"),
    ],
)
def test_corrupt_metadata_gives_a_clear_error(tmp_path, metadata, reason):
    backup = _interrupted(tmp_path)
    (backup / "training_metadata.json").write_text(metadata)
    with pytest.raises(BackupError, match=reason) as e:
        _resume(tmp_path)
    _assert_clear_error(e, backup)


@pytest.mark.parametrize("name", ["training_metadata.json", "latest.weights.h5"])
def test_missing_file_gives_a_clear_error(tmp_path, name):
    backup = _interrupted(tmp_path)
    (backup / name).unlink()
    with pytest.raises(BackupError, match=f"{name} is missing") as e:
        _resume(tmp_path)
    _assert_clear_error(e, backup)


def test_resume_false_starts_afresh_after_a_bad_backup(tmp_path, reference):
    backup = _interrupted(tmp_path)
    (backup / "training_metadata.json").write_text("not json")
    model = _compiled()
    history = fit_model(
        model, _dataset(), epochs=EPOCHS, output_dir=tmp_path, resume=False, verbose=0
    )
    assert history.epoch == list(range(EPOCHS))
    _assert_same(model.get_weights(), reference)


def test_metadata_records_epoch_checksum_and_signature(tmp_path):
    backup = _interrupted(tmp_path, epoch=2)
    metadata = json.loads((backup / "training_metadata.json").read_text())
    assert metadata["epoch"] == 2
    assert len(metadata["weights_sha256"]) == 64
    shapes = [shape for shape, _ in metadata["signature"]["weights"]]
    assert shapes == [[8, 16], [16], [16, 4], [4]]


def test_config_round_trip_and_bad_arguments(tmp_path):
    callback = AtomicBackupAndRestore(tmp_path / "backup")
    config = keras.saving.serialize_keras_object(callback)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, AtomicBackupAndRestore)
    assert restored.backup_dir == str(tmp_path / "backup")
    for bad in ("", None, 3):
        with pytest.raises(ValueError, match="Argument `backup_dir`"):
            AtomicBackupAndRestore(bad)

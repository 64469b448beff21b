"""Backs up the training state every epoch, atomically, and resumes from it."""

import hashlib
import json
import os
import shutil

import keras

from training.backup_error import BackupError

WEIGHTS = "latest.weights.h5"
METADATA = "training_metadata.json"
# Written first, then renamed over the two files above (fixed names: one run
# writes a backup folder at a time).
PENDING_WEIGHTS = "pending.weights.h5"
PENDING_METADATA = "pending_metadata.json"
_CHUNK = 1 << 20


@keras.saving.register_keras_serializable(package="attention_zoo")
class AtomicBackupAndRestore(keras.callbacks.Callback):
    """`keras.callbacks.BackupAndRestore` with atomic saves and checked restores.

    The same resume semantics and files: at the end of every epoch the weights
    and optimizer state go to `latest.weights.h5` and the number of finished
    epochs to `training_metadata.json`; at the start of `fit` they are restored
    and training continues with the next epoch; when `fit` ends the folder is
    deleted.

    Saves are atomic: each file is written under a pending name in the same
    folder and then renamed over the old one (`os.replace`), so a kill while
    saving leaves the previous backup intact. The metadata also records the
    SHA-256 of its weights file and the shapes of the model's and optimizer's
    variables; a restore checks both first, so a truncated or corrupt file, a
    metadata file that is not valid JSON, or a backup of another model or
    optimizer raises one `BackupError` naming the folder and the fix, instead
    of failing inside h5py or loading part of another model. A kill between
    the two renames (new weights, old metadata) is completed on restore.

    Needs room for two copies of the weights and optimizer state while saving,
    and reads each copy once more to checksum it.

    Args:
        backup_dir: the folder of the backup, used by this run alone.
    """

    def __init__(self, backup_dir):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not os.fspath(backup_dir):
            raise ValueError(
                "Argument `backup_dir` must be a non-empty path. "
                f"Received: backup_dir={backup_dir!r}"
            )
        self.backup_dir = os.fspath(backup_dir)

    def get_config(self):
        return {"backup_dir": self.backup_dir}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _path(self, name):
        return os.path.join(self.backup_dir, name)

    def _error(self, reason):
        return BackupError(self.backup_dir, reason)

    # --- restore -------------------------------------------------------------

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError(
                "To use AtomicBackupAndRestore the model must be built before "
                "`fit()`: call it on a batch of data or `build()` it first."
            )
        metadata = self._committed_metadata()
        if metadata is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            # Its variables must exist to be compared and loaded.
            optimizer.build(self.model.trainable_variables)
        self._check_signature(metadata["signature"])
        try:
            self.model.load_weights(self._path(WEIGHTS))
        except Exception as e:
            raise self._error(
                f"{WEIGHTS} cannot be loaded into this model ({type(e).__name__})"
            ) from e
        # How keras.callbacks.BackupAndRestore sets the epoch `fit` starts at.
        self.model._initial_epoch = metadata["epoch"]

    def _committed_metadata(self):
        """The metadata of the last complete save, `None` if there is none.

        Raises:
            BackupError: a file is missing, unreadable or does not match.
        """
        has_weights = os.path.exists(self._path(WEIGHTS))
        has_metadata = os.path.exists(self._path(METADATA))
        if not has_weights and not has_metadata:
            return None  # nothing saved yet, or a first save was killed
        digest = _sha256(self._path(WEIGHTS)) if has_weights else None
        if has_metadata:
            metadata = self._read_metadata(METADATA)
            if metadata["weights_sha256"] == digest:
                return metadata
        if has_weights and os.path.exists(self._path(PENDING_METADATA)):
            # A save killed between its two renames: complete it.
            try:
                pending = self._read_metadata(PENDING_METADATA)
            except BackupError:
                pending = None
            if pending is not None and pending["weights_sha256"] == digest:
                os.replace(self._path(PENDING_METADATA), self._path(METADATA))
                _fsync_dir(self.backup_dir)
                return pending
        if not has_weights:
            raise self._error(f"{WEIGHTS} is missing")
        if not has_metadata:
            raise self._error(f"{METADATA} is missing")
        raise self._error(
            f"{WEIGHTS} is truncated or corrupt (its SHA-256 is not the one "
            f"recorded in {METADATA})"
        )

    def _read_metadata(self, name):
        try:
            with open(self._path(name), encoding="utf-8") as f:
                metadata = json.load(f)
        except json.JSONDecodeError:
            raise self._error(f"{name} is not valid JSON") from None
        except (OSError, UnicodeDecodeError) as e:
            raise self._error(f"{name} cannot be read ({type(e).__name__})") from e
        epoch = metadata.get("epoch") if isinstance(metadata, dict) else None
        valid = (
            isinstance(epoch, int)
            and not isinstance(epoch, bool)
            and epoch >= 0
            and isinstance(metadata.get("weights_sha256"), str)
            and isinstance(metadata.get("signature"), dict)
        )
        if not valid:
            raise self._error(
                f"{name} was not written by AtomicBackupAndRestore (it lacks a "
                "valid epoch, weights_sha256 or signature)"
            )
        return metadata

    def _check_signature(self, saved):
        current = json.loads(json.dumps(_signature(self.model)))
        difference = _first_difference(saved, current, self.model)
        if difference:
            raise self._error(
                f"it holds the state of another model or optimizer ({difference})"
            )

    # --- save ----------------------------------------------------------------

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1)

    def _save(self, epochs_done):
        """Saves the state after `epochs_done` epochs; the old one until done."""
        os.makedirs(self.backup_dir, exist_ok=True)
        pending_weights = self._path(PENDING_WEIGHTS)
        pending_metadata = self._path(PENDING_METADATA)
        try:
            self.model.save_weights(pending_weights, overwrite=True)
            _fsync(pending_weights)
            metadata = {
                "epoch": epochs_done,
                "weights_sha256": _sha256(pending_weights),
                "signature": _signature(self.model),
            }
            with open(pending_metadata, "w", encoding="utf-8") as f:
                json.dump(metadata, f)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            for path in (pending_weights, pending_metadata):
                if os.path.exists(path):
                    os.remove(path)
            raise
        # Each rename is atomic. Killed between the two, the pending metadata
        # matches the new weights, and the next restore completes the save.
        os.replace(pending_weights, self._path(WEIGHTS))
        os.replace(pending_metadata, self._path(METADATA))
        _fsync_dir(self.backup_dir)

    # --- end -----------------------------------------------------------------

    def on_train_end(self, logs=None):
        if os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)
        # Do not carry the resumed epoch into a later `fit` of this model.
        self.model._initial_epoch = None


def _signature(model):
    """The shapes and dtypes of `model`'s variables and optimizer state."""
    optimizer = model.optimizer
    variables = [] if optimizer is None else optimizer.variables
    return {
        "weights": [[list(v.shape), str(v.dtype)] for v in model.weights],
        "optimizer": None if optimizer is None else type(optimizer).__name__,
        "optimizer_variables": [[list(v.shape), str(v.dtype)] for v in variables],
    }


def _first_difference(saved, current, model):
    """A short description of how signature `saved` differs from `current`."""
    if saved.get("optimizer") != current["optimizer"]:
        return f"optimizer {saved.get('optimizer')} there, {current['optimizer']} here"
    for key, one, many in (
        ("weights", "weight", "weights"),
        ("optimizer_variables", "optimizer variable", "optimizer variables"),
    ):
        theirs, ours = saved.get(key), current[key]
        if not isinstance(theirs, list) or len(theirs) != len(ours):
            count = len(theirs) if isinstance(theirs, list) else "no"
            return f"{count} {many} there, {len(ours)} here"
        for i, (a, b) in enumerate(zip(theirs, ours, strict=True)):
            if a != b:
                name = f" ({model.weights[i].path})" if key == "weights" else ""
                return f"{one} {i}{name} is {_describe(a)} there, {_describe(b)} here"
    return None


def _describe(entry):
    try:
        shape, dtype = entry
        return f"{tuple(shape)} {dtype}"
    except (TypeError, ValueError):
        return repr(entry)[:40]


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path):
    """Makes the renames in folder `path` durable (where the OS allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""Stops training on a non-finite loss, keeping the last good weights."""

import math
import os

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="attention_zoo")
class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and keeps good weights.

    Before each batch it copies the model's weights (on the device); when the
    batch's loss is finite the copy becomes the last good one. At the first
    non-finite loss it restores the last good weights, saves them to
    `filepath`, records where training diverged in `diverged` and sets
    `model.stop_training`. `training.fit.fit_model` then raises
    `TrainingDivergedError`.

    Args:
        filepath: the `.weights.h5` file to write the last good weights to.

    Attributes:
        diverged: `None`, or a dict with `epoch`, `batch`, `loss` and
            `checkpoint_path` (`None` if no step had a finite loss).
    """

    def __init__(self, filepath):
        super().__init__()
        self.filepath = os.fspath(filepath)
        if not self.filepath.endswith(".weights.h5"):
            raise ValueError(
                "Argument `filepath` must end in `.weights.h5`. "
                f"Received: filepath={filepath!r}"
            )
        self.diverged = None
        self._epoch = 0
        self._pending = None
        self._good = None

    def get_config(self):
        return {"filepath": self.filepath}

    def on_train_begin(self, logs=None):
        self.diverged = None
        self._good = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._pending = [ops.copy(v.value) for v in self.model.weights]

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(loss):
            self._good = self._pending
            return
        path = None
        if self._good is not None:
            for variable, value in zip(self.model.weights, self._good, strict=True):
                variable.assign(value)
            os.makedirs(os.path.dirname(os.path.abspath(self.filepath)), exist_ok=True)
            self.model.save_weights(self.filepath, overwrite=True)
            path = self.filepath
        self.diverged = {
            "epoch": self._epoch,
            "batch": batch,
            "loss": loss,
            "checkpoint_path": path,
        }
        self.model.stop_training = True

import glob
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.fit import compile_model, fit_model, resolve_jit_compile
from training.optimizers import build_optimizer
from training.precision import set_precision
from training.stop_on_non_finite_loss import StopOnNonFiniteLoss
from training.training_diverged_error import TrainingDivergedError


def _data(n=128, features=8, classes=4, batch=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, :classes].argmax(axis=1)).astype("int32")
    return x, y, tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def _model(features=8, classes=4):
    inputs = keras.Input((features,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(classes)(hidden))


class Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("interrupted")


class Recorder(keras.callbacks.Callback):
    """Records (epoch, batch, weights before the step, logged loss)."""

    def __init__(self):
        super().__init__()
        self.records = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.weights = self.model.get_weights()

    def on_train_batch_end(self, batch, logs=None):
        self.records.append((self.epoch, batch, self.weights, logs["loss"]))


def test_jit_compile_auto_means_xla_only_on_gpu_or_jax():
    assert resolve_jit_compile(True) is True
    assert resolve_jit_compile(False) is False
    gpu = bool(tf.config.list_physical_devices("GPU"))
    assert resolve_jit_compile("auto") is (keras.backend.backend() == "jax" or gpu)
    with pytest.raises(ValueError, match="Argument `jit_compile`.*'yes'"):
        resolve_jit_compile("yes")


@pytest.mark.parametrize("jit_compile", [True, False])
def test_compile_model_loss_and_accuracy_from_logits(jit_compile):
    x, y, ds = _data()
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    compile_model(model, {"name": "sgd"}, jit_compile=jit_compile)
    assert model.jit_compile is jit_compile
    kernel, bias = model.get_weights()
    logits = x.astype("float64") @ kernel + bias
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(len(y)), y].mean()
    accuracy = (logits.argmax(axis=1) == y).mean()
    results = model.evaluate(ds, verbose=0, return_dict=True)
    assert results["loss"] == pytest.approx(loss, rel=1e-5)
    assert results["accuracy"] == pytest.approx(accuracy)


def test_fit_learns_and_writes_logs(tmp_path):
    _, _, ds = _data()
    model = compile_model(_model(), build_optimizer("adam", 0.01))
    history = fit_model(model, ds, ds, epochs=4, output_dir=tmp_path, verbose=0)
    losses = history.history["loss"]
    assert history.epoch == [0, 1, 2, 3] and losses[-1] < 0.7 * losses[0]
    assert "val_accuracy" in history.history
    assert glob.glob(str(tmp_path / "logs" / "train" / "events.out.tfevents.*"))
    assert not (tmp_path / "backup").exists()


def test_interrupted_training_resumes_and_matches(tmp_path):
    _, _, ds = _data()
    initial = _model().get_weights()

    def fresh():
        model = _model()
        model.set_weights(initial)
        return compile_model(model, build_optimizer("adam", 0.01))

    reference = fresh()
    fit_model(reference, ds, epochs=5, output_dir=tmp_path / "ref", verbose=0)

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit_model(fresh(), ds, epochs=5, output_dir=run, callbacks=[Interrupt(3)])
    assert (run / "backup" / "latest.weights.h5").exists()

    resumed = fresh()
    history = fit_model(resumed, ds, epochs=5, output_dir=run, verbose=0)
    assert history.epoch == [3, 4]
    assert int(resumed.optimizer.iterations) == 5 * 4
    for got, want in zip(resumed.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_resume_false_starts_over(tmp_path):
    _, _, ds = _data()
    with pytest.raises(KeyboardInterrupt):
        fit_model(
            compile_model(_model()),
            ds,
            epochs=3,
            output_dir=tmp_path,
            callbacks=[Interrupt(2)],
            verbose=0,
        )
    model = compile_model(_model())
    history = fit_model(model, ds, None, 3, tmp_path, resume=False, verbose=0)
    assert history.epoch == [0, 1, 2]


def test_divergence_stops_keeps_last_finite_weights_and_raises(tmp_path):
    _, _, ds = _data(n=256)
    model = compile_model(_model(), build_optimizer("sgd", learning_rate=100.0))
    recorder = Recorder()
    with pytest.raises(TrainingDivergedError) as caught:
        fit_model(model, ds, epochs=20, output_dir=tmp_path, callbacks=[recorder])
    error = caught.value
    finite = [math.isfinite(record[3]) for record in recorder.records]
    first_bad = finite.index(False)
    assert first_bad > 0, "the test needs a divergence after some finite steps"
    epoch, batch, _, _ = recorder.records[first_bad]
    assert (error.epoch, error.batch) == (epoch, batch)
    assert f"epoch {epoch + 1}, batch {batch + 1}" in str(error)
    assert len(recorder.records) == first_bad + 1, "training went on"
    assert error.checkpoint_path == os.path.join(tmp_path, "last_finite.weights.h5")
    assert error.checkpoint_path in str(error)
    good = recorder.records[first_bad - 1][2]
    for got, want in zip(model.get_weights(), good, strict=True):
        np.testing.assert_array_equal(got, want)
    reloaded = _model()
    reloaded.load_weights(error.checkpoint_path)
    for got, want in zip(reloaded.get_weights(), good, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains(tmp_path, policy):
    set_precision(policy)
    _, _, ds = _data()
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(4, dtype="float32")(hidden))
    compile_model(model, build_optimizer("adam", 0.01))
    history = fit_model(model, ds, epochs=3, output_dir=tmp_path, verbose=0)
    losses = history.history["loss"]
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] < losses[0]
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled is (policy == "mixed_float16")


def test_bad_arguments(tmp_path):
    _, _, ds = _data()
    with pytest.raises(ValueError, match="Argument `epochs`"):
        fit_model(compile_model(_model()), ds, epochs=0, output_dir=tmp_path)
    with pytest.raises(ValueError, match="Argument `filepath`"):
        StopOnNonFiniteLoss(tmp_path / "last.h5")

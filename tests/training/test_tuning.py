import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from training.fit import compile_model
from training.optimizers import build_optimizer
from training.tuning import tune


class Counting(keras_tuner.HyperModel):
    """A tiny classifier; counts `fit` calls and can crash inside one."""

    def __init__(self, crash_on_fit=None, train=True):
        super().__init__()
        self.fits = []
        self.crash_on_fit = crash_on_fit
        self.train = train

    def build(self, hp):
        inputs = keras.Input((4,))
        hidden = keras.layers.Dense(hp.Int("units", 2, 64), activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
        rate = hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        return compile_model(model, build_optimizer("adam", rate))

    def fit(self, hp, model, *args, **kwargs):
        self.fits.append(dict(hp.values))
        if len(self.fits) == self.crash_on_fit:
            raise KeyboardInterrupt("killed during a trial")
        if not self.train:
            return {"val_accuracy": hp.get("learning_rate")}
        return model.fit(*args, **kwargs)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x[:, :3].argmax(axis=1)).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16)


def _trials(tuner):
    trials = tuner.oracle.trials.values()
    return {t.trial_id: (t.status, t.hyperparameters.values) for t in trials}


def test_resume_runs_only_new_trials(tmp_path, data):
    args = dict(directory=tmp_path, project_name="p", epochs=1, verbose=0)
    first = Counting()
    tuner = tune(first, data, data, max_trials=2, **args)
    before = _trials(tuner)
    assert len(first.fits) == 2 and len(before) == 2
    assert all(status == "COMPLETED" for status, _ in before.values())

    second = Counting()
    tuner = tune(second, data, data, max_trials=3, resume=True, **args)
    after = _trials(tuner)
    assert len(second.fits) == 1, "finished trials were run again"
    assert len(after) == 3 and {k: after[k] for k in before} == before
    best = tuner.get_best_hyperparameters(1)[0].values
    assert best in [values for _, values in after.values()]

    third = Counting()
    tuner = tune(third, data, data, max_trials=3, resume=True, **args)
    assert third.fits == [] and _trials(tuner) == after

    fresh = Counting()
    tuner = tune(fresh, data, data, max_trials=1, resume=False, **args)
    assert len(fresh.fits) == 1 and len(tuner.oracle.trials) == 1


def test_trial_interrupted_mid_way_is_run_again(tmp_path, data):
    args = dict(directory=tmp_path, project_name="p", epochs=1, verbose=0)
    crashing = Counting(crash_on_fit=2)
    with pytest.raises(KeyboardInterrupt):
        tune(crashing, data, data, max_trials=3, **args)
    interrupted = crashing.fits[1]

    resumed = Counting()
    tuner = tune(resumed, data, data, max_trials=3, resume=True, **args)
    assert resumed.fits[0] == interrupted
    assert len(resumed.fits) == 2
    trials = _trials(tuner)
    assert len(trials) == 3
    assert all(status == "COMPLETED" for status, _ in trials.values())
    assert crashing.fits[0] not in resumed.fits


def test_same_seed_same_trials(tmp_path, data):
    args = dict(project_name="p", epochs=1, verbose=0, seed=7)
    a, b = Counting(train=False), Counting(train=False)
    tune(a, data, data, 3, tmp_path / "a", **args)
    tuner = tune(b, data, data, 3, tmp_path / "b", **args)
    assert len(a.fits) == 3 and a.fits == b.fits
    best = max(fit["learning_rate"] for fit in a.fits)
    assert tuner.get_best_hyperparameters(1)[0].get("learning_rate") == best


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"max_trials": 0}, "max_trials"),
        ({"epochs": 0}, "epochs"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments(tmp_path, data, kwargs, name):
    args = dict(max_trials=1, directory=tmp_path, project_name="p", epochs=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"Argument `{name}`"):
        tune(Counting(), data, data, **args)

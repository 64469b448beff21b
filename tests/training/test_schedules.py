import math

import keras
import numpy as np
import pytest

from training.linear_warmup import LinearWarmup
from training.schedules import build_schedule
from training.warmup_cosine_decay import WarmupCosineDecay

STEPS = [0, 1, 2, 5, 9, 10, 11, 15, 25, 30, 31, 100]


def _values(schedule, steps=STEPS):
    return np.array([float(schedule(step)) for step in steps])


def _cosine(step, peak, warmup, decay, alpha=0.0):
    if step < warmup:
        return peak * step / warmup
    t = min((step - warmup) / decay, 1.0)
    return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t)) + alpha)


def test_warmup_cosine_values():
    schedule = WarmupCosineDecay(0.1, decay_steps=20, warmup_steps=10, alpha=0.05)
    expected = [_cosine(s, 0.1, 10, 20, 0.05) for s in STEPS]
    np.testing.assert_allclose(_values(schedule), expected, rtol=1e-5, atol=1e-8)
    assert float(schedule(10)) == pytest.approx(0.1)
    assert float(schedule(30)) == pytest.approx(0.005)


def test_cosine_without_warmup_starts_at_peak():
    schedule = build_schedule(0.2, "cosine", decay_steps=8)
    expected = [_cosine(s, 0.2, 0, 8) for s in STEPS]
    np.testing.assert_allclose(_values(schedule), expected, rtol=1e-5, atol=1e-8)


def test_step_schedule_after_warmup():
    schedule = build_schedule(
        1.0, "step", warmup_steps=4, decay_rate=0.5, step_boundaries=[5, 20]
    )
    expected = []
    for s in STEPS:
        after = s - 4
        rate = 1.0 if after <= 5 else 0.5 if after <= 20 else 0.25
        expected.append(s / 4 if s < 4 else rate)
    np.testing.assert_allclose(_values(schedule), expected, rtol=1e-6)


def test_exponential_schedule():
    schedule = build_schedule(0.5, "exponential", decay_steps=10, decay_rate=0.1)
    expected = [0.5 * 0.1 ** (s / 10) for s in STEPS]
    np.testing.assert_allclose(_values(schedule), expected, rtol=1e-5)


def test_constant_with_and_without_warmup():
    assert build_schedule(0.3) == 0.3
    schedule = build_schedule(0.3, warmup_steps=3)
    expected = [0.3 * min(s / 3, 1.0) for s in STEPS]
    np.testing.assert_allclose(_values(schedule), expected, rtol=1e-6)


def test_schedules_run_inside_compiled_functions():
    schedule = build_schedule(0.1, "cosine", warmup_steps=2, decay_steps=4)
    step = keras.ops.convert_to_tensor(3, "int32")
    if keras.backend.backend() == "jax":
        import jax

        value = jax.jit(schedule)(step)
    else:
        import tensorflow as tf

        value = tf.function(schedule, jit_compile=True)(step)
    assert float(value) == pytest.approx(_cosine(3, 0.1, 2, 4), rel=1e-5)


@pytest.mark.parametrize(
    "schedule",
    [
        WarmupCosineDecay(0.1, 20, warmup_steps=10, alpha=0.1),
        build_schedule(0.1, "step", warmup_steps=3, step_boundaries=[4, 8]),
        build_schedule(0.1, "exponential", warmup_steps=3, decay_steps=7),
        LinearWarmup(0.2, 5, initial_learning_rate=0.01),
    ],
)
def test_config_round_trip(schedule):
    config = keras.optimizers.schedules.serialize(schedule)
    restored = keras.optimizers.schedules.deserialize(config)
    assert type(restored) is type(schedule)
    assert restored.get_config() == schedule.get_config()
    np.testing.assert_allclose(_values(restored), _values(schedule))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"peak_learning_rate": 0.0, "decay_steps": 5}, "peak_learning_rate"),
        ({"peak_learning_rate": 0.1, "decay_steps": 0}, "decay_steps"),
        ({"peak_learning_rate": 0.1, "decay_steps": 5, "warmup_steps": -1}, "warmup"),
        ({"peak_learning_rate": 0.1, "decay_steps": 5, "alpha": 1.5}, "alpha"),
    ],
)
def test_warmup_cosine_validation(kwargs, name):
    with pytest.raises(ValueError, match=f"Argument `{name}"):
        WarmupCosineDecay(**kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"schedule": "linear"}, "schedule"),
        ({"schedule": "cosine"}, "decay_steps"),
        ({"schedule": "exponential", "decay_steps": 0}, "decay_steps"),
        ({"schedule": "step"}, "step_boundaries"),
        ({"schedule": "step", "step_boundaries": [5, 3]}, "step_boundaries"),
        ({"schedule": "step", "step_boundaries": [5], "decay_rate": 2.0}, "decay_rate"),
        ({"warmup_steps": 1.5}, "warmup_steps"),
    ],
)
def test_build_schedule_validation(kwargs, name):
    with pytest.raises(ValueError, match=f"Argument `{name}`"):
        build_schedule(**kwargs)

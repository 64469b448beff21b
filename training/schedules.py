"""Learning-rate schedules by name: constant, step, exponential, cosine."""

import numbers

import keras

from layers.validation import (
    check_choice,
    check_float,
    check_non_negative_int,
    check_positive_int,
)
from training.choices import SCHEDULES
from training.linear_warmup import LinearWarmup
from training.warmup_cosine_decay import WarmupCosineDecay


def _check_boundaries(step_boundaries):
    ok = (
        isinstance(step_boundaries, (list, tuple))
        and len(step_boundaries) > 0
        and all(
            isinstance(b, numbers.Integral) and not isinstance(b, bool) and b > 0
            for b in step_boundaries
        )
        and list(step_boundaries) == sorted(set(step_boundaries))
    )
    if not ok:
        raise ValueError(
            "Argument `step_boundaries` must be a non-empty increasing list of "
            "positive integers when schedule='step'. "
            f"Received: step_boundaries={step_boundaries!r}"
        )
    return [int(b) for b in step_boundaries]


def _decay_steps(schedule, decay_steps):
    if decay_steps is None:
        raise ValueError(
            f"Argument `decay_steps` must be a positive integer when "
            f"schedule={schedule!r}. Received: decay_steps=None"
        )
    return check_positive_int("decay_steps", decay_steps)


def build_schedule(
    learning_rate=1e-3,
    schedule="constant",
    warmup_steps=0,
    decay_steps=None,
    decay_rate=0.1,
    step_boundaries=None,
):
    """The learning rate of an optimizer: a float or a `LearningRateSchedule`.

    Every schedule starts with a linear warm-up from 0 when `warmup_steps > 0`;
    `decay_steps` and `step_boundaries` count the steps after the warm-up.

    - `"constant"`: `learning_rate`.
    - `"step"`: `learning_rate * decay_rate**i` after the `i`-th of
      `step_boundaries`.
    - `"exponential"`: `learning_rate * decay_rate**(step / decay_steps)`.
    - `"cosine"`: half a cosine from `learning_rate` to 0 over `decay_steps`
      (`WarmupCosineDecay`).

    Args:
        learning_rate: the base (peak) learning rate.
        schedule: one of `SCHEDULES`.
        warmup_steps: length of the linear warm-up.
        decay_steps: decay length for `"exponential"` and `"cosine"`.
        decay_rate: factor in (0, 1] for `"step"` and `"exponential"`.
        step_boundaries: increasing steps for `"step"`.

    Returns:
        A float (constant without warm-up) or a `LearningRateSchedule`.
    """
    learning_rate = check_float("learning_rate", learning_rate)
    check_choice("schedule", schedule, SCHEDULES)
    warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
    if schedule == "cosine":
        return WarmupCosineDecay(
            learning_rate, _decay_steps(schedule, decay_steps), warmup_steps
        )
    if schedule == "constant":
        rate = learning_rate
    elif schedule == "step":
        decay_rate = check_float("decay_rate", decay_rate, high=1.0)
        boundaries = _check_boundaries(step_boundaries)
        values = [learning_rate * decay_rate**i for i in range(len(boundaries) + 1)]
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    else:
        decay_rate = check_float("decay_rate", decay_rate, high=1.0)
        rate = keras.optimizers.schedules.ExponentialDecay(
            learning_rate, _decay_steps(schedule, decay_steps), decay_rate
        )
    return LinearWarmup(rate, warmup_steps) if warmup_steps else rate

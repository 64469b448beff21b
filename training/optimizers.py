"""Optimizers by name, with a learning-rate schedule, weight decay and clipping."""

import keras

from layers.validation import check_choice, check_float
from training.schedules import build_schedule

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "nadam": keras.optimizers.Nadam,
    "adamax": keras.optimizers.Adamax,
    "adagrad": keras.optimizers.Adagrad,
    "lion": keras.optimizers.Lion,
    "lamb": keras.optimizers.Lamb,
}


def build_optimizer(
    name="adam",
    learning_rate=1e-3,
    schedule="constant",
    warmup_steps=0,
    decay_steps=None,
    decay_rate=0.1,
    step_boundaries=None,
    weight_decay=None,
    clipnorm=None,
    clipvalue=None,
    global_clipnorm=None,
    **kwargs,
):
    """Builds a Keras optimizer by name with a learning-rate schedule.

    Args:
        name: one of `OPTIMIZERS` (`"adam"`, `"adamw"`, `"sgd"`, ...).
        learning_rate: the base (peak) learning rate.
        schedule: `"constant"`, `"step"`, `"exponential"` or `"cosine"` (see
            `training.schedules.build_schedule`).
        warmup_steps: steps of linear warm-up from 0 (any schedule).
        decay_steps: decay length for `"exponential"` and `"cosine"`, counted
            after the warm-up.
        decay_rate: factor in (0, 1] for `"step"` and `"exponential"`.
        step_boundaries: increasing steps for `"step"` (after the warm-up).
        weight_decay: decoupled weight decay, or `None` for the optimizer's
            default (0, or 0.004 for AdamW).
        clipnorm: clip each gradient to this L2 norm.
        clipvalue: clip each gradient element to `[-clipvalue, clipvalue]`.
        global_clipnorm: clip all gradients together to this global L2 norm.
        **kwargs: other arguments of the optimizer class (e.g. `momentum`).

    Returns:
        A `keras.optimizers.Optimizer`.
    """
    check_choice("name", name, OPTIMIZERS)
    clips = {"clipnorm": clipnorm, "clipvalue": clipvalue}
    clips["global_clipnorm"] = global_clipnorm
    clips = {k: check_float(k, v, allow_none=True) for k, v in clips.items()}
    chosen = [k for k, v in clips.items() if v is not None]
    if len(chosen) > 1:
        raise ValueError(
            "Only one of the arguments `clipnorm`, `clipvalue` and `global_clipnorm` "
            f"may be set. Received: {', '.join(f'{k}={clips[k]}' for k in chosen)}"
        )
    if weight_decay is not None:
        weight_decay = check_float("weight_decay", weight_decay, low_open=False)
        kwargs["weight_decay"] = weight_decay
    rate = build_schedule(
        learning_rate, schedule, warmup_steps, decay_steps, decay_rate, step_boundaries
    )
    return OPTIMIZERS[name](learning_rate=rate, **clips, **kwargs)

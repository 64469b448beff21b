"""Linear warm-up then cosine decay of the learning rate."""

import math

import keras
from keras import ops

from layers.validation import check_float, check_non_negative_int, check_positive_int


@keras.saving.register_keras_serializable(package="attention_zoo")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to a peak learning rate, then cosine decay.

    For `step < warmup_steps` the rate rises linearly from
    `initial_learning_rate` to `peak_learning_rate`; over the next
    `decay_steps` steps it follows half a cosine from `peak_learning_rate`
    down to `alpha * peak_learning_rate`, and stays there.

    Args:
        peak_learning_rate: the rate at the end of the warm-up.
        decay_steps: length of the cosine decay, counted after the warm-up.
        warmup_steps: length of the linear warm-up (0: none).
        alpha: final rate as a fraction of the peak, in [0, 1].
        initial_learning_rate: the rate at step 0 when warming up.
        name: name of the schedule.

    Call arguments:
        step: the optimizer's iteration count (scalar integer tensor).

    Returns:
        The float32 learning rate for `step`.
    """

    def __init__(
        self,
        peak_learning_rate,
        decay_steps,
        warmup_steps=0,
        alpha=0.0,
        initial_learning_rate=0.0,
        name="warmup_cosine_decay",
    ):
        self.peak_learning_rate = check_float("peak_learning_rate", peak_learning_rate)
        self.decay_steps = check_positive_int("decay_steps", decay_steps)
        self.warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
        self.alpha = check_float("alpha", alpha, 0.0, 1.0, low_open=False)
        self.initial_learning_rate = check_float(
            "initial_learning_rate", initial_learning_rate, low_open=False
        )
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        progress = ops.clip((step - self.warmup_steps) / self.decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        decayed = peak * ((1.0 - self.alpha) * cosine + self.alpha)
        if not self.warmup_steps:
            return decayed
        start = self.initial_learning_rate
        warm = start + (peak - start) * step / self.warmup_steps
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "decay_steps": self.decay_steps,
            "warmup_steps": self.warmup_steps,
            "alpha": self.alpha,
            "initial_learning_rate": self.initial_learning_rate,
            "name": self.name,
        }

"""Linear warm-up in front of any learning rate or schedule."""

import keras
from keras import ops

from layers.validation import check_float, check_non_negative_int

LearningRateSchedule = keras.optimizers.schedules.LearningRateSchedule


@keras.saving.register_keras_serializable(package="attention_zoo")
class LinearWarmup(LearningRateSchedule):
    """Raises the learning rate linearly, then hands over to `schedule`.

    For `step < warmup_steps` the rate rises linearly from
    `initial_learning_rate` to `schedule(0)`; afterwards it is
    `schedule(step - warmup_steps)`: the wrapped schedule counts its steps from
    the end of the warm-up.

    Args:
        schedule: a float learning rate or a `LearningRateSchedule`.
        warmup_steps: length of the warm-up.
        initial_learning_rate: the rate at step 0.
        name: name of the schedule.

    Call arguments:
        step: the optimizer's iteration count (scalar integer tensor).

    Returns:
        The float32 learning rate for `step`.
    """

    def __init__(
        self, schedule, warmup_steps, initial_learning_rate=0.0, name="linear_warmup"
    ):
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        if not isinstance(schedule, LearningRateSchedule):
            schedule = check_float("schedule", schedule)
        self.schedule = schedule
        self.warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
        self.initial_learning_rate = check_float(
            "initial_learning_rate", initial_learning_rate, low_open=False
        )
        self.name = name

    def _after(self, step):
        if isinstance(self.schedule, LearningRateSchedule):
            return ops.cast(self.schedule(step), "float32")
        return ops.cast(self.schedule, "float32")

    def __call__(self, step):
        step = ops.cast(step, "float32")
        after = self._after(ops.maximum(step - self.warmup_steps, 0.0))
        if not self.warmup_steps:
            return after
        start = self.initial_learning_rate
        warm = start + (self._after(0.0) - start) * step / self.warmup_steps
        return ops.where(step < self.warmup_steps, warm, after)

    def get_config(self):
        schedule = self.schedule
        if isinstance(schedule, LearningRateSchedule):
            schedule = keras.optimizers.schedules.serialize(schedule)
        return {
            "schedule": schedule,
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
            "name": self.name,
        }

"""A variant's recommended optimizer settings, fitted to the length of a run."""

from layers.validation import check_positive_int

# Schedules that need `decay_steps`.
_DECAYING = ("cosine", "exponential")
# The recommended warm-up takes at most this fraction of a run.
MAX_WARMUP_FRACTION = 0.1


def optimizer_arguments(recommended, total_steps, overrides=None):
    """`build_optimizer` arguments for a run of `total_steps` training steps.

    The one path from a variant's recommended settings to an optimizer: `zoo
    train`, `zoo tune` (each trial), the main job and the benchmarks call it.

    - The recommended `warmup_steps` is capped at a tenth of the run (a 2-step
      run gets no warm-up, not 234 steps of it).
    - `"cosine"` and `"exponential"` decay over the steps left after the
      warm-up, unless `decay_steps` is given.
    - `"step"` without `step_boundaries` decays at 1/2 and 3/4 of the steps
      after the warm-up.

    Args:
        recommended: dict of `build_optimizer` arguments (a variant's
            `training["optimizer"]`, or a tuning trial's).
        total_steps: positive int, optimizer steps of the whole run.
        overrides: optional dict of `build_optimizer` arguments the user set;
            entries that are `None` are ignored. An explicit `warmup_steps` or
            `decay_steps` is used as given.

    Returns:
        A new dict of `build_optimizer` arguments.
    """
    total_steps = check_positive_int("total_steps", total_steps)
    options = dict(recommended or {})
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if "warmup_steps" not in overrides and options.get("warmup_steps"):
        cap = int(total_steps * MAX_WARMUP_FRACTION)
        options["warmup_steps"] = min(int(options["warmup_steps"]), cap)
    if "decay_steps" not in overrides:
        options.pop("decay_steps", None)
    options.update(overrides)
    after_warmup = max(1, total_steps - options.get("warmup_steps", 0))
    schedule = options.get("schedule", "constant")
    if schedule in _DECAYING and "decay_steps" not in options:
        options["decay_steps"] = after_warmup
    if schedule == "step" and not options.get("step_boundaries"):
        decay = options.get("decay_steps", after_warmup)
        options["step_boundaries"] = default_step_boundaries(decay)
    return options


def default_step_boundaries(decay_steps):
    """The `"step"` schedule's boundaries: 1/2 and 3/4 of `decay_steps`."""
    return sorted({max(1, decay_steps // 2), max(2, decay_steps * 3 // 4)})

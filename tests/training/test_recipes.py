"""`optimizer_arguments`: a variant's settings fitted to a run's length."""

import pytest

from training.optimizers import build_optimizer
from training.recipes import optimizer_arguments

COSINE = {
    "name": "adam",
    "learning_rate": 3e-3,
    "schedule": "cosine",
    "warmup_steps": 234,
    "decay_steps": 2580,
}


def test_short_run_caps_the_warmup_and_decays_to_its_end():
    options = optimizer_arguments(COSINE, total_steps=2)
    assert options["warmup_steps"] == 0
    assert options["decay_steps"] == 2
    options = optimizer_arguments(COSINE, total_steps=1000)
    assert (options["warmup_steps"], options["decay_steps"]) == (100, 900)
    # A long run keeps the recommended warm-up.
    options = optimizer_arguments(COSINE, total_steps=10_000)
    assert (options["warmup_steps"], options["decay_steps"]) == (234, 9766)
    assert COSINE["warmup_steps"] == 234, "the recommended dict was changed"


def test_explicit_flags_win():
    flags = {"warmup_steps": 500, "decay_steps": 50, "learning_rate": None}
    options = optimizer_arguments(COSINE, 1000, flags)
    assert (options["warmup_steps"], options["decay_steps"]) == (500, 50)
    assert options["learning_rate"] == 3e-3


def test_step_schedule_gets_boundaries_and_constant_gets_no_decay():
    options = optimizer_arguments({"schedule": "step", "warmup_steps": 0}, 400)
    assert options["step_boundaries"] == [200, 300]
    build_optimizer(**options)
    options = optimizer_arguments(COSINE, 100, {"schedule": "constant"})
    assert "decay_steps" not in options
    build_optimizer(**options)


@pytest.mark.parametrize("steps", [0, -1, 2.5, None])
def test_bad_total_steps(steps):
    with pytest.raises(ValueError, match="total_steps"):
        optimizer_arguments(COSINE, steps)

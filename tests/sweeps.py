"""Which registered models the default run sweeps, and which only `-m slow`.

Every registered model goes through the sweeps (tests/zoo/test_models.py,
tests/export). To keep the default run short, the larger seq2seq variants,
which repeat their `_tiny` sibling's code at up to 12M parameters, run in the
slow set only, and the int8 sweeps take the smallest variant of each family.
"""

import pytest

SEQ2SEQ_TASKS = ("translation", "headline_generation")


def slow_in_sweeps(name):
    """Whether registered model `name` is swept in the slow run only."""
    from zoo import get_model_spec

    spec = get_model_spec(name)
    return spec.task in SEQ2SEQ_TASKS and not name.endswith("_tiny")


def sweep_params(names):
    """`names` as pytest params, the `slow_in_sweeps` ones marked slow."""
    return [
        pytest.param(n, marks=pytest.mark.slow) if slow_in_sweeps(n) else n
        for n in names
    ]


def smallest_per_family(names):
    """The first `_tiny` variant of each family among `names` (sorted)."""
    from zoo import get_model_spec

    chosen = {}
    for name in sorted(names):
        family = get_model_spec(name).family
        if name.endswith("_tiny") and family not in chosen:
            chosen[family] = name
    return sorted(chosen.values())

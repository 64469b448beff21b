"""Which registered models the default run sweeps, and which only `-m slow`.

Every registered model goes through the sweeps (tests/zoo/test_models.py,
tests/export). To keep the default run short, some run in the slow set only:
the larger seq2seq variants, which repeat their `_tiny` sibling's code at up
to 12M parameters, the classifiers' `_base` variants (their `_tiny` and
`_small` siblings run the same code, and `_base` sizes cost the most), the
headline variants (the translation families with other sizes), the CartPole
attention policy (`actor_critic_tiny` runs the same encoder), the 256x256
detector (`attention_detector_tiny` runs the same layers at 64x64), and the
ensembles, whose members are swept on their own
(tests/zoo/test_ensemble.py tests the ensemble itself). The int8 sweeps take
the smallest variant of each family whose int8 logits are cheap to check:
seq2seq int8 exports are checked against the quantized Keras model by the
export sweep, their closeness to the float model in the slow run.
"""

import pytest

from zoo.registry import SEQ2SEQ_TASKS

SLOW_FAMILIES = ("ensemble",)
# Variants whose smaller sibling of the same family runs the same code.
SLOW_VARIANTS = {
    "actor_critic_attention_cartpole": "actor_critic_tiny sweeps its attention encoder",
    "attention_detector_small": "attention_detector_tiny runs its layers at 64x64",
}


def slow_in_sweeps(name):
    """Whether registered model `name` is swept in the slow run only."""
    from zoo import get_model_spec

    spec = get_model_spec(name)
    if spec.family in SLOW_FAMILIES:
        return True
    if spec.task == "headline_generation":
        return True  # the translation variants of the same families
    if name.endswith("_base"):
        return True  # the _tiny and _small siblings run the same code
    if name in SLOW_VARIANTS:
        return True
    return spec.task in SEQ2SEQ_TASKS and not name.endswith("_tiny")


def sweep_params(names):
    """`names` as pytest params, the `slow_in_sweeps` ones marked slow."""
    return [
        pytest.param(n, marks=pytest.mark.slow) if slow_in_sweeps(n) else n
        for n in names
    ]


def smallest_per_family(names, tasks=None):
    """The first `_tiny` variant of each family among `names` (sorted), of
    the `tasks` given (default all), leaving out `SLOW_FAMILIES`."""
    from zoo import get_model_spec

    chosen = {}
    for name in sorted(names):
        spec = get_model_spec(name)
        family = spec.family
        if tasks is not None and spec.task not in tasks:
            continue
        if slow_in_sweeps(name):
            continue
        if name.endswith("_tiny") and family not in chosen:
            chosen[family] = name
    return sorted(chosen.values())

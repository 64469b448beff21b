"""Attention models by name: `build_model("cbam_cnn_small")`, `list_models("vit_*")`.

`import zoo` registers every custom object that a saved zoo model can
reference (the layers of `layers`, the learning-rate schedules of `training`,
`TextClassifier` and `Translator`), so a `.keras` file written by `zoo train`
loads with `keras.saving.load_model(path, safe_mode=True)`.
"""

import layers  # noqa: F401  (registers the layers)
import training.linear_warmup  # noqa: F401  (registers the schedules)
import training.ppo_learner  # noqa: F401  (registers the PPO model)
import training.warmup_cosine_decay  # noqa: F401
import zoo.detection.losses  # noqa: F401  (registers the detector's losses)
from zoo import (  # noqa: F401  (register the variants)
    actor_critic,
    attention_cnn,
    attention_detector,
    cbam_cnn,
    ensemble,
    rnn_classifier,
    rnn_seq2seq,
    transformer_classifier,
    transformer_seq2seq,
    vit,
)
from zoo.ensemble import build_ensemble, ensemble_from_tuner
from zoo.hypermodel import ZooHyperModel
from zoo.registry import (
    TASKS,
    ModelSpec,
    build_model,
    get_model_spec,
    list_models,
    register_model,
    register_variants,
)
from zoo.seq2seq.translator import Translator
from zoo.text_classifier import TextClassifier

DEFAULT_MODEL = "cbam_cnn_small"


def get_hypermodel(name, /, optimizer_args=None, train_steps=None, **overrides):
    """Returns the `keras_tuner.HyperModel` of a registered model.

    Args:
        name: a registered name (see `list_models()`).
        optimizer_args: optional dict of `build_optimizer` arguments replacing
            the variant's recommended ones.
        train_steps: optional optimizer steps of each trial, to fit the
            warm-up and decay to (see `ZooHyperModel`).
        **overrides: `build_model` arguments (the search space's defaults).

    Returns:
        A `ZooHyperModel`.
    """
    return ZooHyperModel(
        name,
        overrides=overrides,
        optimizer_args=optimizer_args,
        train_steps=train_steps,
    )


__all__ = [
    "DEFAULT_MODEL",
    "TASKS",
    "ModelSpec",
    "TextClassifier",
    "Translator",
    "ZooHyperModel",
    "build_ensemble",
    "build_model",
    "ensemble_from_tuner",
    "get_hypermodel",
    "get_model_spec",
    "list_models",
    "register_model",
    "register_variants",
]

"""Ensembles of image classifiers (`ensemble_*`, `build_ensemble`)."""

from zoo.ensemble.from_tuner import ensemble_from_tuner
from zoo.ensemble.model import build_ensemble, ensemble, fit_weights
from zoo.ensemble.search_space import search_space
from zoo.ensemble.variants import TRAINING, VARIANTS
from zoo.registry import register_variants

register_variants(
    VARIANTS,
    TRAINING,
    task="image_classification",
    family="ensemble",
    builder=ensemble,
    search_space=search_space,
)

__all__ = ["build_ensemble", "ensemble", "ensemble_from_tuner", "fit_weights"]

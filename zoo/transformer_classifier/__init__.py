"""Transformer encoder text classifiers (`transformer_classifier_*`)."""

from zoo.registry import register_variants
from zoo.transformer_classifier.model import transformer_classifier
from zoo.transformer_classifier.search_space import search_space
from zoo.transformer_classifier.variants import TRAINING, VARIANTS

register_variants(
    VARIANTS,
    TRAINING,
    task="text_classification",
    family="transformer_classifier",
    builder=transformer_classifier,
    search_space=search_space,
)

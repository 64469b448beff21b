"""Bidirectional RNN text classifiers with attention pooling (`rnn_classifier_*`)."""

from zoo.registry import register_variants
from zoo.rnn_classifier.model import rnn_classifier
from zoo.rnn_classifier.search_space import search_space
from zoo.rnn_classifier.variants import TRAINING, VARIANTS

register_variants(
    VARIANTS,
    TRAINING,
    task="text_classification",
    family="rnn_classifier",
    builder=rnn_classifier,
    search_space=search_space,
)

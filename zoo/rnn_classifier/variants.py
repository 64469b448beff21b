"""Registered `rnn_classifier` variants and training settings."""

from zoo.registry import recommended_training
from zoo.transformer_classifier.variants import SST2_STEPS

VARIANTS = {
    "rnn_classifier_tiny": dict(vocabulary_size=10_000, embedding_dim=64, units=32),
    "rnn_classifier_small": dict(embedding_dim=128, units=128),
    "rnn_classifier_base": dict(embedding_dim=256, units=256, num_layers=2),
}

TRAINING = {
    name: recommended_training(
        epochs,
        learning_rate=2e-3,
        warmup_steps=SST2_STEPS // 4,
        batch_size=64,
        steps_per_epoch=SST2_STEPS,
        global_clipnorm=1.0,
    )
    for name, epochs in [
        ("rnn_classifier_tiny", 2),
        ("rnn_classifier_small", 3),
        ("rnn_classifier_base", 3),
    ]
}

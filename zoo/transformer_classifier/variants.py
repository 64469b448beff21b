"""Registered `transformer_classifier` variants and training settings."""

from zoo.registry import recommended_training

VARIANTS = {
    "transformer_classifier_tiny": dict(
        vocabulary_size=10_000,
        max_length=128,
        hidden_dim=64,
        num_layers=1,
        num_heads=2,
        intermediate_dim=128,
    ),
    "transformer_classifier_small": dict(
        hidden_dim=128, num_layers=2, num_heads=4, intermediate_dim=256
    ),
    "transformer_classifier_base": dict(
        max_length=512,
        hidden_dim=256,
        num_layers=4,
        num_heads=8,
        intermediate_dim=512,
        pooling="attention",
    ),
}

# SST-2: 67,349 sentences at batch 64 -> 1,053 steps per epoch.
SST2_STEPS = 1053
TRAINING = {
    name: recommended_training(
        epochs,
        learning_rate=5e-4,
        warmup_steps=SST2_STEPS // 2,
        batch_size=64,
        steps_per_epoch=SST2_STEPS,
        global_clipnorm=1.0,
    )
    for name, epochs in [
        ("transformer_classifier_tiny", 2),
        ("transformer_classifier_small", 3),
        ("transformer_classifier_base", 3),
    ]
}

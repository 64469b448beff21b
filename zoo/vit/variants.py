"""Registered `vit` variants (builder arguments) and training settings."""

from zoo.registry import MNIST_STEPS_PER_EPOCH, recommended_training

VARIANTS = {
    "vit_tiny": dict(
        patch_size=7, hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128
    ),
    "vit_small": dict(
        patch_size=7, hidden_dim=96, num_layers=4, num_heads=4, intermediate_dim=192
    ),
    "vit_base": dict(
        patch_size=4,
        hidden_dim=128,
        num_layers=6,
        num_heads=8,
        intermediate_dim=256,
        dropout=0.1,
    ),
}

SHIFT = {"translation": 0.08}
TRAINING = {
    name: recommended_training(
        epochs,
        learning_rate=1e-3,
        warmup_steps=MNIST_STEPS_PER_EPOCH,
        augmentation=augmentation,
        global_clipnorm=1.0,
    )
    for name, epochs, augmentation in [
        ("vit_tiny", 5, None),
        ("vit_small", 10, SHIFT),
        ("vit_base", 15, SHIFT),
    ]
}

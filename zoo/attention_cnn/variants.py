"""Registered `attention_cnn` variants (builder arguments) and training settings."""

from zoo.registry import MNIST_STEPS_PER_EPOCH, recommended_training

VARIANTS = {
    "attention_cnn_tiny": dict(filters=(16, 32), hidden_dim=32, dropout=0.1),
    "attention_cnn_small": dict(filters=(32, 64), hidden_dim=64, dropout=0.2),
}

TRAINING = {
    name: recommended_training(
        epochs,
        learning_rate=2e-3,
        warmup_steps=MNIST_STEPS_PER_EPOCH // 2,
        augmentation=augmentation,
    )
    for name, epochs, augmentation in [
        ("attention_cnn_tiny", 5, None),
        ("attention_cnn_small", 8, {"translation": 0.08}),
    ]
}

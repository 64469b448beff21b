"""Registered `cbam_cnn` variants (builder arguments) and training settings."""

from zoo.registry import MNIST_STEPS_PER_EPOCH, recommended_training

VARIANTS = {
    "cbam_cnn_tiny": dict(widths=(16, 32, 64), reduction_ratio=4, dropout=0.1),
    "cbam_cnn_small": dict(widths=(48, 96, 192), reduction_ratio=8, dropout=0.2),
    "cbam_cnn_base": dict(
        widths=(64, 128, 256), blocks_per_stage=2, reduction_ratio=16, dropout=0.3
    ),
}

SHIFT = {"translation": 0.08}
TRAINING = {
    name: recommended_training(
        epochs,
        learning_rate=3e-3,
        warmup_steps=MNIST_STEPS_PER_EPOCH // 2,
        augmentation=augmentation,
    )
    for name, epochs, augmentation in [
        ("cbam_cnn_tiny", 4, None),
        ("cbam_cnn_small", 6, SHIFT),
        ("cbam_cnn_base", 10, SHIFT),
    ]
}

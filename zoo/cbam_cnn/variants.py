"""Registered `cbam_cnn` variants (builder arguments) and training settings."""

VARIANTS = {
    "cbam_cnn_tiny": dict(widths=(16, 32, 64), reduction_ratio=4, dropout=0.1),
    "cbam_cnn_small": dict(
        widths=(48, 96, 192), reduction_ratio=8, dropout=0.2, augmentation=0.08
    ),
    "cbam_cnn_base": dict(
        widths=(64, 128, 256),
        blocks_per_stage=2,
        reduction_ratio=16,
        dropout=0.3,
        augmentation=0.08,
    ),
}

EPOCHS = {"cbam_cnn_tiny": 4, "cbam_cnn_small": 6, "cbam_cnn_base": 10}

# MNIST: 60,000 images, batch 128 -> 469 steps per epoch; the cosine decay
# (counted after the warm-up) ends with the last step.
_STEPS = 469
WARMUP = _STEPS // 2
TRAINING = {
    name: dict(
        epochs=epochs,
        batch_size=128,
        optimizer=dict(
            name="adam",
            learning_rate=3e-3,
            schedule="cosine",
            warmup_steps=WARMUP,
            decay_steps=_STEPS * epochs - WARMUP,
        ),
    )
    for name, epochs in EPOCHS.items()
}

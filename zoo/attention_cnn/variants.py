"""Registered `attention_cnn` variants (builder arguments) and training settings."""

VARIANTS = {
    "attention_cnn_tiny": dict(filters=(16, 32), hidden_dim=32, dropout=0.1),
    "attention_cnn_small": dict(
        filters=(32, 64), hidden_dim=64, dropout=0.2, augmentation=0.08
    ),
}

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
            learning_rate=2e-3,
            schedule="cosine",
            warmup_steps=WARMUP,
            decay_steps=_STEPS * epochs - WARMUP,
        ),
    )
    for name, epochs in [("attention_cnn_tiny", 5), ("attention_cnn_small", 8)]
}

"""Registered `vit` variants (builder arguments) and training settings."""

VARIANTS = {
    "vit_tiny": dict(
        patch_size=7, hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128
    ),
    "vit_small": dict(
        patch_size=7,
        hidden_dim=96,
        num_layers=4,
        num_heads=4,
        intermediate_dim=192,
        augmentation=0.08,
    ),
    "vit_base": dict(
        patch_size=4,
        hidden_dim=128,
        num_layers=6,
        num_heads=8,
        intermediate_dim=256,
        dropout=0.1,
        augmentation=0.08,
    ),
}

# MNIST: 60,000 images, batch 128 -> 469 steps per epoch; the cosine decay
# (counted after the warm-up) ends with the last step.
_STEPS = 469
WARMUP = _STEPS
TRAINING = {
    name: dict(
        epochs=epochs,
        batch_size=128,
        optimizer=dict(
            name="adam",
            learning_rate=1e-3,
            schedule="cosine",
            warmup_steps=WARMUP,
            decay_steps=_STEPS * epochs - WARMUP,
            global_clipnorm=1.0,
        ),
    )
    for name, epochs in [("vit_tiny", 5), ("vit_small", 10), ("vit_base", 15)]
}

"""Registered `attention_detector` variants (builder arguments) and training
settings.

`attention_detector_tiny` (64x64 inputs) is for tests; `attention_detector_small`
(256x256) is meant to learn from scratch on a CPU from a dataset of ~160
photos (raccoon, coco128).
"""

from zoo.registry import recommended_training

VARIANTS = {
    "attention_detector_tiny": dict(
        input_shape=(64, 64, 3),
        widths=(16, 24, 32),
        encoder_layers=1,
        num_heads=2,
        head_width=16,
        reduction_ratio=4,
    ),
    "attention_detector_small": dict(
        input_shape=(256, 256, 3),
        widths=(32, 64, 96, 128),
        encoder_layers=2,
        num_heads=4,
        head_width=48,
        reduction_ratio=8,
        dropout=0.1,
    ),
}

# Box-aware augmentation of the training photos (`training.box_augmentation`):
# crops keep at least 60% of each side (a zoom of up to 1.7x, boxes kept when
# half of them stays visible), flips and colour jitter. Scale jitter alone
# would do nothing here: every image is letterboxed to the input size.
AUGMENTATION = {
    "crop": 0.6,
    "min_visibility": 0.5,
    "flip": True,
    "brightness": 0.15,
    "contrast": 0.2,
    "saturation": 0.2,
}
# Raccoon's 160 training photos at batch 8.
RACCOON_STEPS_PER_EPOCH = 20
# Measured (2 CPU cores, `benchmarks/RESULTS.md`): without augmentation,
# `attention_detector_small` (908K parameters) overfit raccoon after ~100 steps
# (validation loss 3.0, then rising); with AUGMENTATION, 300 epochs (6,000
# steps, 29 minutes in float32) reached test mAP@0.5 0.65 (150 epochs: 0.59).
TRAINING = {
    name: recommended_training(
        epochs,
        learning_rate=learning_rate,
        warmup_steps=warmup_steps,
        batch_size=batch_size,
        steps_per_epoch=RACCOON_STEPS_PER_EPOCH,
        augmentation=AUGMENTATION,
        global_clipnorm=10.0,
    )
    for name, epochs, learning_rate, warmup_steps, batch_size in [
        ("attention_detector_tiny", 20, 1e-3, 20, 8),
        ("attention_detector_small", 300, 1e-3, 100, 8),
    ]
}

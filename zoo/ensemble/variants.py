"""Registered `ensemble` variants (builder arguments) and training settings."""

from zoo.registry import MNIST_STEPS_PER_EPOCH, recommended_training

VARIANTS = {
    "ensemble_mnist_tiny": dict(
        members=("attention_cnn_tiny", "cbam_cnn_tiny", "vit_tiny"), weights=None
    ),
}

# Training the ensemble trains its members together on the loss of their mean
# prediction; the clipping and learning rate are the ViT member's (the most
# sensitive of the three).
TRAINING = {
    "ensemble_mnist_tiny": recommended_training(
        2,
        learning_rate=1e-3,
        warmup_steps=MNIST_STEPS_PER_EPOCH // 2,
        global_clipnorm=1.0,
    ),
}

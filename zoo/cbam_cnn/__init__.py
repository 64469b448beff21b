"""Residual CNNs with CBAM attention (`cbam_cnn_*`)."""

from zoo.cbam_cnn.model import cbam_cnn
from zoo.cbam_cnn.search_space import search_space
from zoo.cbam_cnn.variants import TRAINING, VARIANTS
from zoo.registry import register_variants

register_variants(
    VARIANTS,
    TRAINING,
    task="image_classification",
    family="cbam_cnn",
    builder=cbam_cnn,
    search_space=search_space,
)

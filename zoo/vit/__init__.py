"""Vision Transformers (`vit_*`)."""

from zoo.registry import register_variants
from zoo.vit.model import vit
from zoo.vit.search_space import search_space
from zoo.vit.variants import TRAINING, VARIANTS

register_variants(
    VARIANTS,
    TRAINING,
    task="image_classification",
    family="vit",
    builder=vit,
    search_space=search_space,
)

"""Small CNNs with self-attention over the feature map (`attention_cnn_*`)."""

from zoo.attention_cnn.model import attention_cnn
from zoo.attention_cnn.search_space import search_space
from zoo.attention_cnn.variants import TRAINING, VARIANTS
from zoo.registry import register_variants

register_variants(
    VARIANTS,
    TRAINING,
    task="image_classification",
    family="attention_cnn",
    builder=attention_cnn,
    search_space=search_space,
)

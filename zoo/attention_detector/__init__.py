"""CenterNet-style detectors with CBAM and a transformer (`attention_detector_*`)."""

from zoo.attention_detector.model import attention_detector
from zoo.attention_detector.search_space import search_space
from zoo.attention_detector.variants import TRAINING, VARIANTS
from zoo.registry import register_variants

register_variants(
    VARIANTS,
    TRAINING,
    task="object_detection",
    family="attention_detector",
    builder=attention_detector,
    search_space=search_space,
)

"""Transformer encoder-decoders (`transformer_seq2seq_*`, `transformer_headline_*`)."""

from zoo.registry import register_variants
from zoo.transformer_seq2seq.model import transformer_seq2seq
from zoo.transformer_seq2seq.search_space import search_space
from zoo.transformer_seq2seq.variants import (
    HEADLINE_VARIANTS,
    TRAINING,
    TRANSLATION_VARIANTS,
)

for task, variants in [
    ("translation", TRANSLATION_VARIANTS),
    ("headline_generation", HEADLINE_VARIANTS),
]:
    register_variants(
        variants,
        TRAINING,
        task=task,
        family="transformer_seq2seq",
        builder=transformer_seq2seq,
        search_space=search_space,
    )

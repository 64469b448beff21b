"""GRU encoder-decoders with additive attention (`rnn_seq2seq_*`, `rnn_headline_*`)."""

from zoo.registry import register_variants
from zoo.rnn_seq2seq.model import rnn_seq2seq
from zoo.rnn_seq2seq.search_space import search_space
from zoo.rnn_seq2seq.variants import HEADLINE_VARIANTS, TRAINING, TRANSLATION_VARIANTS

for task, variants in [
    ("translation", TRANSLATION_VARIANTS),
    ("headline_generation", HEADLINE_VARIANTS),
]:
    register_variants(
        variants,
        TRAINING,
        task=task,
        family="rnn_seq2seq",
        builder=rnn_seq2seq,
        search_space=search_space,
    )

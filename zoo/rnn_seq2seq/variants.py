"""Registered `rnn_seq2seq` variants (translation and headlines)."""

from zoo.registry import recommended_training
from zoo.transformer_seq2seq.variants import (
    AG_NEWS_STEPS,
    ANKI_SIZES,
    ANKI_STEPS,
    HEADLINE_SIZES,
    TINY_HEADLINE_SIZES,
    TINY_SIZES,
)

# English -> French (zoo_anki_fra_eng): sentences of at most ~50 tokens.
TRANSLATION_VARIANTS = {
    "rnn_seq2seq_tiny": dict(**TINY_SIZES, embedding_dim=32, units=32),
    # ~0.75 s a step at batch 128 (sources of 12 tokens, targets of 14) on 2
    # CPU cores: 3 epochs in about 40 minutes.
    "rnn_seq2seq_small": dict(**ANKI_SIZES, embedding_dim=256, units=512),
}

# AG News description -> title (zoo_ag_news_subset: 6,000 training pairs).
HEADLINE_VARIANTS = {
    "rnn_headline_tiny": dict(
        TRANSLATION_VARIANTS["rnn_seq2seq_tiny"], **TINY_HEADLINE_SIZES
    ),
    "rnn_headline_small": dict(
        **HEADLINE_SIZES,
        embedding_dim=128,
        units=256,
        dropout=0.2,
    ),
}

TRAINING = {
    **{
        name: recommended_training(
            epochs,
            learning_rate=1e-3,
            warmup_steps=ANKI_STEPS // 4,
            batch_size=128,
            steps_per_epoch=ANKI_STEPS,
            global_clipnorm=1.0,
        )
        for name, epochs in [("rnn_seq2seq_tiny", 1), ("rnn_seq2seq_small", 3)]
    },
    **{
        name: recommended_training(
            epochs,
            learning_rate=1e-3,
            warmup_steps=AG_NEWS_STEPS // 2,
            batch_size=64,
            steps_per_epoch=AG_NEWS_STEPS,
            global_clipnorm=1.0,
        )
        for name, epochs in [("rnn_headline_tiny", 1), ("rnn_headline_small", 10)]
    },
}

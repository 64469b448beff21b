"""Registered `transformer_seq2seq` variants (translation and headlines)."""

from zoo.registry import recommended_training

# The data's sizes, shared by every family: English -> French
# (zoo_anki_fra_eng, sentences of at most ~50 tokens) and AG News
# descriptions -> titles.
TINY_SIZES = dict(
    source_vocabulary_size=2_000,
    target_vocabulary_size=2_000,
    max_source_length=24,
    max_target_length=24,
)
ANKI_SIZES = dict(
    source_vocabulary_size=10_000,
    target_vocabulary_size=12_000,
    max_source_length=40,
    max_target_length=48,
)
HEADLINE_SIZES = dict(
    source_vocabulary_size=12_000,
    target_vocabulary_size=8_000,
    max_source_length=96,
    max_target_length=24,
)
TINY_HEADLINE_SIZES = dict(TINY_SIZES, max_source_length=64, max_target_length=24)

TRANSLATION_VARIANTS = {
    "transformer_seq2seq_tiny": dict(
        **TINY_SIZES,
        hidden_dim=32,
        num_encoder_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        intermediate_dim=64,
    ),
    "transformer_seq2seq_small": dict(
        **ANKI_SIZES,
        hidden_dim=256,
        num_encoder_layers=2,
        num_decoder_layers=2,
        num_heads=8,
        intermediate_dim=1024,
    ),
}

# AG News description -> title (zoo_ag_news_subset: 6,000 training pairs).
# Headlines reuse the description's words: the pointer-generator's copying
# took test ROUGE-L from 6.4 to 15.3 (benchmarks/RESULTS.md, 2026-12-06).
HEADLINE_VARIANTS = {
    "transformer_headline_tiny": dict(
        TRANSLATION_VARIANTS["transformer_seq2seq_tiny"],
        **TINY_HEADLINE_SIZES,
        copy_source=True,
    ),
    "transformer_headline_small": dict(
        **HEADLINE_SIZES,
        hidden_dim=128,
        num_encoder_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        intermediate_dim=512,
        dropout=0.2,
        copy_source=True,
    ),
}

# zoo_anki_fra_eng's ~137,000 training pairs at batch 128: ~1,070 steps.
ANKI_STEPS = 1070
AG_NEWS_STEPS = 6_000 // 64
TRAINING = {
    **{
        name: recommended_training(
            epochs,
            learning_rate=1e-3,
            warmup_steps=ANKI_STEPS // 2,
            batch_size=128,
            steps_per_epoch=ANKI_STEPS,
            global_clipnorm=1.0,
        )
        for name, epochs in [
            ("transformer_seq2seq_tiny", 1),
            ("transformer_seq2seq_small", 5),
        ]
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
        for name, epochs in [
            ("transformer_headline_tiny", 1),
            ("transformer_headline_small", 20),
        ]
    },
}

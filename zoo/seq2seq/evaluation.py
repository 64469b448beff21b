"""Building translators for a loaded dataset, decoding and scoring them."""

import numpy as np

from zoo.seq2seq import metrics
from zoo.seq2seq.translator import Translator


def translator_for(name, info, **overrides):
    """A registered seq2seq model, untrained, wrapped with a dataset's vocabularies.

    Args:
        name: a registered `translation` or `headline_generation` model name.
        info: the `Seq2SeqDatasetInfo` of `training.seq2seq_data.load_seq2seq`.
        **overrides: other `build_model` arguments.

    Returns:
        A `Translator` named `name` around `build_model(name, ...)` (whose
        token model is named `NAME_tokens`).
    """
    from zoo.registry import build_model, get_model_spec

    spec = get_model_spec(name)
    seq2seq = build_model(
        name,
        source_vocabulary_size=info.source_vocabulary_size,
        target_vocabulary_size=info.target_vocabulary_size,
        max_source_length=info.max_source_length,
        max_target_length=info.max_target_length,
        name=f"{name}_tokens",
        **overrides,
    )
    return Translator(
        seq2seq,
        info.source_vectorizer,
        info.target_vectorizer,
        info.max_source_length,
        info.max_target_length,
        task=spec.task,
        source_lowercase=info.source_lowercase,
        target_lowercase=info.target_lowercase,
        french_spacing=info.french_spacing,
        name=name,
    )


def decode_texts(translator, text_ds, beam_width=None, limit=None, jit_compile=True):
    """Decodes the sources of a `(source, target)` string dataset.

    Args:
        translator: a `Translator`.
        text_ds: batches of `(source, target)` tf.string `(B,)`, such as
            `info.test_texts`.
        beam_width: beams (default the translator's; 1: greedy).
        limit: decode only the first `limit` examples.
        jit_compile: compile the decoding loop with XLA (faster on CPU).

    Returns:
        `(sources, hypotheses, references)`: lists of Python strings.
    """
    import tensorflow as tf

    @tf.function(jit_compile=jit_compile, autograph=False)
    def generate(source):
        return translator.generate(source, beam_width=beam_width)

    sources, hypotheses, references = [], [], []
    for source, target in text_ds:
        if limit is not None and len(sources) >= limit:
            break
        tokens = generate(translator.tokenize(source))
        texts = translator.detokenize(tokens).numpy()
        sources += [s.decode() for s in source.numpy()]
        hypotheses += [t.decode() for t in texts]
        references += [t.decode() for t in target.numpy()]
    if limit is not None:
        return sources[:limit], hypotheses[:limit], references[:limit]
    return sources, hypotheses, references


def score_texts(task, hypotheses, references, sources=None, lead_length=None):
    """The task's metrics of decoded texts (0-100).

    Translation: corpus BLEU and chrF (sacrebleu, detokenised, 13a).
    Headlines: ROUGE-1/2/L F-measures, and with `lead_length` the same for
    the lead baseline (the first `lead_length` words of each source).

    Args:
        task: `"translation"` or `"headline_generation"`.
        hypotheses: decoded strings.
        references: reference strings.
        sources: the source strings (for the lead baseline).
        lead_length: words of the lead baseline, or `None`.

    Returns:
        A dict of metric name to float.
    """
    if task == "translation":
        return {
            "bleu": metrics.corpus_bleu(hypotheses, references),
            "chrf": metrics.corpus_chrf(hypotheses, references),
        }
    scores = metrics.rouge(hypotheses, references)
    if lead_length is not None and sources is not None:
        lead = metrics.rouge(metrics.lead_baseline(sources, lead_length), references)
        scores.update({f"lead_{k}": v for k, v in lead.items()})
    return scores


def examples(sources, hypotheses, references, count=5, seed=0):
    """`count` `(source, hypothesis, reference)` triples picked at random."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(sources), min(count, len(sources)), replace=False)
    return [(sources[i], hypotheses[i], references[i]) for i in sorted(picks)]

"""Scores of generated text: BLEU and chrF (sacrebleu), ROUGE (rouge-score).

Every function takes detokenised strings (what a translator or a headline
model prints, and the references as the dataset has them) and returns scores
on a 0-100 scale. None of them needs Keras or TensorFlow (this module imports
neither; the `zoo` package around it does).

- `corpus_bleu`, `corpus_chrf`: sacrebleu's corpus-level scores with its
  defaults (BLEU: tokenizer `13a`, 4-grams, `exp` smoothing; chrF: character
  6-grams, beta 2), one reference per hypothesis: the numbers compare with
  published sacrebleu scores.
- `rouge`: ROUGE-1, ROUGE-2 and ROUGE-L F-measures of rouge-score (Porter
  stemmer on, its default tokenizer: lower-case, letters a-z and digits only),
  the mean over sentences.
- `lead_baseline`, `best_lead_length`: the "first n words of the source"
  headline baseline, with n chosen on training pairs.
"""

import functools
import numbers

import sacrebleu
from rouge_score import rouge_scorer, tokenizers
from rouge_score import tokenize as rouge_tokenize

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _check_positive_int(name, value):
    """`value` as an int, if it is a positive integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(
            f"Argument `{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def _check_texts(name, texts):
    """`texts` as a non-empty list of strings."""
    if isinstance(texts, str) or not hasattr(texts, "__iter__"):
        raise ValueError(
            f"Argument `{name}` must be a list of strings. Received: {name}={texts!r}"
        )
    texts = list(texts)
    if not texts:
        raise ValueError(
            f"Argument `{name}` must hold at least one string. Received: {name}=[]"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"Argument `{name}` must hold strings only. Received: "
                f"{name}[{i}]={text!r}"
            )
    return texts


def _check_pairs(hypotheses, references, names=("hypotheses", "references")):
    """Both lists checked, and of the same length."""
    hypotheses = _check_texts(names[0], hypotheses)
    references = _check_texts(names[1], references)
    if len(hypotheses) != len(references):
        raise ValueError(
            f"Arguments `{names[0]}` and `{names[1]}` must have the same length. "
            f"Received: len({names[0]})={len(hypotheses)}, "
            f"len({names[1]})={len(references)}"
        )
    return hypotheses, references


def corpus_bleu(hypotheses, references):
    """Corpus-level BLEU (sacrebleu, tokenizer `13a`), one reference each.

    Args:
        hypotheses: the generated sentences (detokenised strings).
        references: the reference sentences, as many.

    Returns:
        The BLEU score, a float in [0, 100].

    Raises:
        ValueError: an empty list, a non-string, or lengths that differ.
    """
    hypotheses, references = _check_pairs(hypotheses, references)
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def corpus_chrf(hypotheses, references):
    """Corpus-level chrF (sacrebleu: character 6-grams, beta 2).

    Args:
        hypotheses: the generated sentences (detokenised strings).
        references: the reference sentences, as many.

    Returns:
        The chrF score, a float in [0, 100].

    Raises:
        ValueError: an empty list, a non-string, or lengths that differ.
    """
    hypotheses, references = _check_pairs(hypotheses, references)
    return float(sacrebleu.corpus_chrf(hypotheses, [references]).score)


class _CachedStemmer:
    """nltk's Porter stemmer, each word stemmed once (same results, faster)."""

    def __init__(self):
        from nltk.stem import porter

        self.stem = functools.lru_cache(maxsize=1 << 16)(porter.PorterStemmer().stem)


class _StemmingTokenizer(tokenizers.Tokenizer):
    """rouge-score's default tokenizer with `use_stemmer=True`, cached."""

    def __init__(self):
        self._stemmer = _CachedStemmer()

    def tokenize(self, text):
        return rouge_tokenize.tokenize(text, self._stemmer)


@functools.cache
def _scorer():
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=_StemmingTokenizer())


def rouge(hypotheses, references):
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measures, the mean over sentences.

    rouge-score with the Porter stemmer (`use_stemmer=True`); its tokenizer
    keeps lower-cased letters a-z and digits only.

    Args:
        hypotheses: the generated texts.
        references: the reference texts, as many.

    Returns:
        `{"rouge1": float, "rouge2": float, "rougeL": float}`, each in
        [0, 100].

    Raises:
        ValueError: an empty list, a non-string, or lengths that differ.
    """
    hypotheses, references = _check_pairs(hypotheses, references)
    scorer = _scorer()
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        scores = scorer.score(reference, hypothesis)
        for key in ROUGE_TYPES:
            totals[key] += scores[key].fmeasure
    return {key: 100.0 * total / len(hypotheses) for key, total in totals.items()}


def lead_baseline(sources, n):
    """The first `n` words (split on whitespace) of each source text.

    Args:
        sources: the source texts.
        n: words kept (a positive integer).

    Returns:
        A list of strings, the kept words joined by single spaces.
    """
    sources = _check_texts("sources", sources)
    n = _check_positive_int("n", n)
    return [" ".join(text.split()[:n]) for text in sources]


def best_lead_length(sources, targets, candidates=range(1, 21)):
    """The `n` whose `lead_baseline` scores the best mean ROUGE-L F-measure.

    Choose it on training pairs, then report `lead_baseline(test sources, n)`.

    Args:
        sources: the source texts (e.g. news descriptions).
        targets: their reference texts (e.g. headlines), as many.
        candidates: the values of `n` tried (positive integers).

    Returns:
        The best `n` (an `int`; the smallest among equals).

    Raises:
        ValueError: empty inputs, lengths that differ, or a bad candidate.
    """
    sources, targets = _check_pairs(sources, targets, ("sources", "targets"))
    candidates = [
        _check_positive_int(f"candidates[{i}]", n) for i, n in enumerate(candidates)
    ]
    if not candidates:
        raise ValueError(
            "Argument `candidates` must hold at least one positive integer. "
            "Received: candidates=[]"
        )
    scores = {
        n: rouge(lead_baseline(sources, n), targets)["rougeL"] for n in candidates
    }
    return max(sorted(scores), key=lambda n: scores[n])

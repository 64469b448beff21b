"""zoo.seq2seq.metrics: BLEU, chrF and ROUGE against hand-computed values."""

import csv
import math
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from zoo.seq2seq import metrics

REPO = Path(__file__).resolve().parents[2]
AG_NEWS = REPO / ".." / "shared" / "data" / "ag_news_test" / "test.csv"


# ---------------------------------------------------------------------------
# BLEU and chrF
# ---------------------------------------------------------------------------


def test_identical_sentences_score_100():
    sentences = ["The cat sat on the mat.", "Il fait beau aujourd'hui !"]
    assert metrics.corpus_bleu(sentences, sentences) == pytest.approx(100.0)
    assert metrics.corpus_chrf(sentences, sentences) == pytest.approx(100.0)


def test_bleu_by_hand():
    """Precisions 5/6, 3/5, 2/4, 1/3 ("the" clipped to once), equal lengths."""
    bleu = metrics.corpus_bleu(["the cat sat on the mat"], ["the cat sat on a mat"])
    expected = 100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25
    assert bleu == pytest.approx(expected)
    assert bleu == pytest.approx(53.7285, abs=1e-4)


def test_bleu_brevity_penalty_by_hand():
    """All n-grams match; 4 words for 6: the penalty exp(1 - 6/4)."""
    bleu = metrics.corpus_bleu(["the cat sat on"], ["the cat sat on the mat"])
    assert bleu == pytest.approx(100 * math.exp(-0.5))


def test_bleu_uses_the_13a_tokenizer():
    """13a splits the final period off: detokenised text is scored as is."""
    assert metrics.corpus_bleu(["Yes, I know."], ["Yes , I know ."]) == (
        pytest.approx(100.0)
    )


def test_bleu_is_corpus_level_not_a_mean():
    """Counts add up over sentences: one short wrong sentence does not halve it."""
    hypotheses = ["the cat sat on the mat today", "no"]
    references = ["the cat sat on the mat today", "yes"]
    bleu = metrics.corpus_bleu(hypotheses, references)
    assert 50.0 < bleu < 100.0


def test_chrf_by_hand():
    """ "abc" for "abd": character 1-, 2-, 3-gram precision (= recall) 2/3,
    1/2, 0, averaged over the 3 orders that exist: F2 = 7/18."""
    assert metrics.corpus_chrf(["abc"], ["abd"]) == pytest.approx(100 * 7 / 18)
    assert metrics.corpus_chrf(["abc"], ["xyz"]) == 0.0


def test_scores_are_floats():
    for score in (
        metrics.corpus_bleu(["a b c d"], ["a b c d"]),
        metrics.corpus_chrf(["a b"], ["a c"]),
    ):
        assert type(score) is float


# ---------------------------------------------------------------------------
# ROUGE
# ---------------------------------------------------------------------------


def test_rouge_by_hand():
    """6 words for 7: unigrams the x2, cat, on, mat match (F = 10/13); bigrams
    the cat, on the, the mat (F = 6/11); the longest common subsequence is
    "the cat on the mat" (F = 10/13)."""
    scores = metrics.rouge(
        ["the cat sat on the mat"], ["the cat was sitting on the mat"]
    )
    assert scores == pytest.approx(
        {"rouge1": 100 * 10 / 13, "rouge2": 100 * 6 / 11, "rougeL": 100 * 10 / 13}
    )


def test_rouge_stems_and_ignores_case_and_punctuation():
    assert metrics.rouge(["The CATS, running!"], ["the cat runs"]) == pytest.approx(
        dict.fromkeys(metrics.ROUGE_TYPES, 100.0)
    )


def test_rouge_is_the_mean_over_sentences():
    scores = metrics.rouge(["a b", "c d"], ["a b", "x y"])
    assert scores == pytest.approx(dict.fromkeys(metrics.ROUGE_TYPES, 50.0))


def test_rouge_matches_rouge_score_on_real_headlines():
    """The cached stemmer changes speed only: rouge-score's own scorer with
    `use_stemmer=True` gives the same numbers on 300 AG News rows."""
    with open(AG_NEWS, encoding="utf-8", newline="") as f:
        rows = [row for _, row in zip(range(300), csv.DictReader(f), strict=False)]
    titles = [row["title"] for row in rows]
    leads = metrics.lead_baseline([row["description"] for row in rows], 8)
    scorer = rouge_scorer.RougeScorer(list(metrics.ROUGE_TYPES), use_stemmer=True)
    pairs = list(zip(titles, leads, strict=True))
    expected = {
        key: 100 * sum(scorer.score(t, h)[key].fmeasure for t, h in pairs) / len(pairs)
        for key in metrics.ROUGE_TYPES
    }
    assert metrics.rouge(leads, titles) == pytest.approx(expected)


# ---------------------------------------------------------------------------
# The lead baseline
# ---------------------------------------------------------------------------


def test_lead_baseline_keeps_the_first_words():
    sources = ["One two  three four", "short", ""]
    assert metrics.lead_baseline(sources, 3) == ["One two three", "short", ""]


def test_best_lead_length_finds_the_length_of_the_targets():
    sources = [f"w{i} x{i} y{i} z{i} tail{i} more{i} words{i}" for i in range(20)]
    targets = [" ".join(s.split()[:3]) for s in sources]
    assert metrics.best_lead_length(sources, targets) == 3
    assert metrics.best_lead_length(sources, targets, candidates=[5, 6]) == 5


def test_best_lead_length_takes_the_smallest_among_equals():
    assert metrics.best_lead_length(["a b"], ["a b"], candidates=[4, 2, 3]) == 2


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "function", [metrics.corpus_bleu, metrics.corpus_chrf, metrics.rouge]
)
def test_empty_inputs_are_named(function):
    with pytest.raises(ValueError, match=r"`hypotheses`.*Received: hypotheses=\[\]"):
        function([], ["a"])
    with pytest.raises(ValueError, match=r"`references`.*Received: references=\[\]"):
        function(["a"], [])


@pytest.mark.parametrize(
    "function", [metrics.corpus_bleu, metrics.corpus_chrf, metrics.rouge]
)
def test_lengths_must_match(function):
    with pytest.raises(ValueError, match=r"len\(hypotheses\)=2, len\(references\)=1"):
        function(["a", "b"], ["a"])


def test_strings_only():
    with pytest.raises(ValueError, match="Received: hypotheses='a b'"):
        metrics.corpus_bleu("a b", ["a b"])
    with pytest.raises(ValueError, match=r"Received: references\[1\]=None"):
        metrics.rouge(["a", "b"], ["a", None])


def test_lead_arguments_are_checked():
    with pytest.raises(ValueError, match="Received: n=0"):
        metrics.lead_baseline(["a"], 0)
    with pytest.raises(ValueError, match=r"Received: sources=\[\]"):
        metrics.lead_baseline([], 1)
    with pytest.raises(ValueError, match=r"Received: candidates\[1\]=0"):
        metrics.best_lead_length(["a"], ["a"], candidates=[1, 0])
    with pytest.raises(ValueError, match=r"Received: candidates=\[\]"):
        metrics.best_lead_length(["a"], ["a"], candidates=[])
    with pytest.raises(ValueError, match=r"len\(sources\)=1, len\(targets\)=2"):
        metrics.best_lead_length(["a"], ["a", "b"])

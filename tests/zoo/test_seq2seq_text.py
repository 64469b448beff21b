"""zoo.seq2seq.text: punctuation split, vocabulary, tokenize and detokenize.

The round-trip tests read the real Tatoeba pairs (the shared data folder
`anki_fra_eng/`, beside the repository) through the builder's own reading and
split rule, without preparing the tfds dataset (well under a second).
"""

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.text_datasets.zoo_anki_fra_eng import ARCHIVE, ZooAnkiFraEng, read_pairs
from zoo.seq2seq import text

REPO = Path(__file__).resolve().parents[2]
ANKI = REPO / ".." / "shared" / "data" / "anki_fra_eng"


def _strings(tensor):
    return [t.decode("utf-8") for t in np.asarray(tensor).ravel()]


def _split(texts, lowercase=False):
    return _strings(text.split_punctuation(tf.constant(texts), lowercase))


def _round_trip(texts, french_spacing):
    words = tf.strings.split(text.split_punctuation(tf.constant(texts), False))
    return _strings(text.detokenize(words.to_tensor(), french_spacing))


@pytest.fixture(scope="module")
def anki_test_pairs():
    """The `(english, french)` pairs of the anki `test` split, file order."""
    assert ANKI.is_dir(), f"shared data folder {ANKI.resolve()} is missing"
    pairs = read_pairs(ANKI / ARCHIVE)
    lines = ZooAnkiFraEng.split_english([en for en, _ in pairs])
    return [pairs[i] for i in lines]


# ---------------------------------------------------------------------------
# split_punctuation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, words",
    [
        ("Va-t'en !", "Va-t'en !"),
        ("J'ai faim.", "J'ai faim ."),
        ("I don't know, do you?", "I don't know , do you ?"),
        ("It costs 1.5 dollars, or 50,000 yen at 12:45.", None),
        ('"Says who?" "Says me."', '" Says who ? " " Says me . "'),
        ("Dis : « s'il te plaît ».", "Dis : « s'il te plaît » ."),
        ("Je suis ravi(e).", "Je suis ravi ( e ) ."),
        ("It's the F.B.I.", "It's the F.B.I ."),
        ("Wait...", "Wait . . ."),
        ("Cours\u202f!", "Cours !"),
        ("  two   spaces\tand a tab  ", "two spaces and a tab"),
        ("Arafat #39;s nephew &lt;b&gt;", "Arafat #39;s nephew &lt;b&gt;"),
        ("[START] here", "[ START ] here"),
        ("", ""),
    ],
)
def test_split_punctuation_cases(raw, words):
    if words is None:
        words = "It costs 1.5 dollars , or 50,000 yen at 12:45 ."
    assert _split([raw]) == [words]


def test_split_punctuation_lowercases_unicode_only_when_asked():
    assert _split(["École ÜBER Ça"], lowercase=True) == ["école über ça"]
    assert _split(["École ÜBER Ça"], lowercase=False) == ["École ÜBER Ça"]


def test_whitespace_is_pythons():
    """Every character Python's `str.split` takes for whitespace (U+00A0,
    U+202F, U+2009, ...) collapses, and no other (U+200B stays)."""
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert {"\u00a0", "\u202f", "\u2009", "\x0b", "\x85"} <= set(spaces)
    others = ["\u200b", "\u00ad", "_", "\ufeff"]
    texts = [f" a{c}{c}b " for c in spaces + others]
    ours = _strings(text.normalize_spaces(tf.constant(texts)))
    assert ours == [" ".join(t.split()) for t in texts]
    assert ours[: len(spaces)] == ["a b"] * len(spaces)


def test_invalid_utf8_becomes_the_replacement_character():
    raw = tf.constant([b"caf\xe9 \xff.", b"ok"])
    assert _strings(text.split_punctuation(raw, True)) == ["caf\ufffd \ufffd .", "ok"]
    words = tf.constant([[b"caf\xe9", b"!"]])
    assert _strings(text.detokenize(words, False)) == ["caf\ufffd!"]


def test_split_punctuation_keeps_the_batch_shape():
    out = text.split_punctuation(tf.constant(["a.", "b", ""]), False)
    assert out.shape == (3,) and out.dtype == tf.string


# ---------------------------------------------------------------------------
# detokenize
# ---------------------------------------------------------------------------


def _detok(rows, french_spacing=False):
    width = max(len(r) for r in rows)
    padded = [r + [""] * (width - len(r)) for r in rows]
    return _strings(text.detokenize(tf.constant(padded), french_spacing))


def test_detokenize_drops_padding_start_and_end_and_keeps_unk():
    rows = [
        [text.START, "Je", "[UNK]", "!", text.END, ""],
        ["", "", ""],
        [text.START, text.END],
    ]
    assert _detok(rows) == ["Je [UNK]!", "", ""]
    assert _detok(rows, french_spacing=True) == ["Je [UNK] !", "", ""]


@pytest.mark.parametrize(
    "words, english, french",
    [
        ("Cours !", "Cours!", "Cours !"),
        ("Quoi ? !", "Quoi?!", "Quoi ?!"),
        ("Dis : « oui » .", "Dis: «oui».", "Dis : « oui »."),
        ("Il a 1.5 kg , non ?", "Il a 1.5 kg, non?", "Il a 1.5 kg, non ?"),
        ('" Look , " she said .', '"Look," she said.', '"Look," she said.'),
        (
            '" Says who ? " " Says me . "',
            '"Says who?" "Says me."',
            '"Says who ?" "Says me."',
        ),
        ("( au porte-manteaux ) .", "(au porte-manteaux).", "(au porte-manteaux)."),
        ("Attends . . .", "Attends...", "Attends..."),
    ],
)
def test_detokenize_cases(words, english, french):
    row = [words.split()]
    assert _detok(row) == [english]
    assert _detok(row, french_spacing=True) == [french]


def test_round_trip_of_hand_written_sentences():
    english = ["I'm the F.B.I.", "It's 3:30.", '"Hi," he said.', "What?!"]
    assert _round_trip(english, french_spacing=False) == english
    french = ["Va-t'en !", "Dis : « s'il te plaît ».", "J'ai 50,000 yens."]
    assert _round_trip(french, french_spacing=True) == french


def test_round_trip_on_the_real_test_split(anki_test_pairs):
    """detokenize(split(x)) == x for the anki test references.

    Measured: French 4,988 of 5,001 (99.74%; 12 of the 13 misses write "?"
    without the space the others have), English 5,001 of 5,001.
    """
    english, french = zip(*anki_test_pairs, strict=True)
    for texts, french_spacing, expected in (
        (french, True, 0.995),
        (english, False, 0.999),
    ):
        back = _round_trip(list(texts), french_spacing)
        same = np.mean([a == b for a, b in zip(texts, back, strict=True)])
        assert same >= expected, (french_spacing, same)
    assert not any("\u202f" in f or "\xa0" in f for f in french)


# ---------------------------------------------------------------------------
# The vocabulary
# ---------------------------------------------------------------------------


def _dataset(texts):
    return tf.data.Dataset.from_tensor_slices(texts)


def test_build_vocabulary_reserves_ids_and_ranks_words():
    texts = ["b a .", "a b c .", "a ."]
    vectorizer = text.build_vocabulary(_dataset(texts), 7, lowercase=False)
    # counts: a 3, . 3, b 2, c 1 -> ties in code point order ("." before "a").
    assert vectorizer.get_vocabulary() == [
        "",
        "[UNK]",
        "[START]",
        "[END]",
        ".",
        "a",
        "b",
    ]
    assert vectorizer.vocabulary_size() == 7
    assert (text.PAD_ID, text.UNK_ID, text.START_ID, text.END_ID) == (0, 1, 2, 3)


def test_build_vocabulary_takes_batches_and_lowercases():
    batches = _dataset(["Ça VA.", "ça va ?"]).batch(2)
    vectorizer = text.build_vocabulary(batches, 100, lowercase=True)
    # ça 2, va 2, . 1, ? 1; ties in code point order ("v" < "ç").
    assert vectorizer.get_vocabulary()[4:] == ["va", "ça", ".", "?"]


def test_build_vocabulary_never_learns_the_reserved_tokens():
    vectorizer = text.build_vocabulary(_dataset(["[UNK] [END] x"]), 50, False)
    vocabulary = vectorizer.get_vocabulary()
    assert vocabulary[:4] == list(text.RESERVED)
    assert len(vocabulary) == len(set(vocabulary))
    assert "x" in vocabulary and "UNK" in vocabulary


@pytest.mark.parametrize("size", [0, 4, -1, 2.5, True])
def test_build_vocabulary_rejects_a_bad_size(size):
    with pytest.raises(ValueError, match=f"vocabulary_size={size!r}"):
        text.build_vocabulary(_dataset(["a"]), size, False)


def test_tokenize_pads_with_zero_and_maps_unknown_words_to_one():
    vectorizer = text.build_vocabulary(_dataset(["le chat ."]), 20, False)
    ids = text.tokenize(vectorizer, tf.constant(["le chien.", "", "chat"]), False)
    vocabulary = vectorizer.get_vocabulary()
    le, chat, dot = (vocabulary.index(w) for w in ("le", "chat", "."))
    assert ids.dtype == tf.int32
    np.testing.assert_array_equal(ids, [[le, 1, dot], [0, 0, 0], [chat, 0, 0]])
    empty = text.tokenize(vectorizer, tf.constant(["", ""]), False)
    assert empty.shape == (2, 0)


def test_ids_to_words_and_detokenize_invert_tokenize():
    sentences = ["Tu es là ?", "Je sais."]
    vectorizer = text.build_vocabulary(_dataset(sentences), 50, False)
    ids = text.tokenize(vectorizer, tf.constant(sentences), False)
    ids = tf.concat([tf.fill([2, 1], text.START_ID), ids, tf.fill([2, 1], 99)], 1)
    words = text.ids_to_words(vectorizer, ids)
    assert _strings(words[:, 0]) == ["[START]"] * 2
    assert _strings(text.detokenize(words, True)) == [
        "Tu es là ? [UNK]",
        "Je sais. [UNK]",
    ]


def test_check_vocabulary_names_the_argument():
    with pytest.raises(ValueError, match="source_vectorizer=None"):
        text.check_vocabulary("source_vectorizer", None)
    plain = keras.layers.TextVectorization(vocabulary=["a", "b"])
    with pytest.raises(ValueError, match="`target_vectorizer`.*first ids"):
        text.check_vocabulary("target_vectorizer", plain)


def test_vocabulary_saves_in_a_keras_file_and_loads_in_safe_mode(tmp_path):
    vectorizer = text.build_vocabulary(_dataset(["Je sais .", "Tu sais ?"]), 9, False)
    inputs = keras.Input(shape=(), dtype="string")
    model = keras.Model(inputs, vectorizer(inputs))
    path = tmp_path / "vocabulary.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    reloaded = loaded.layers[-1]
    assert reloaded.get_vocabulary() == vectorizer.get_vocabulary()
    words = text.split_punctuation(tf.constant(["Tu sais.", "Je ?"]), False)
    np.testing.assert_array_equal(loaded(words), model(words))


def test_the_string_ops_run_inside_a_saved_model(tmp_path):
    """Core TensorFlow ops only: a SavedModel of them reloads and runs."""

    class Text(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def round_trip(self, texts):
            words = tf.strings.split(text.split_punctuation(texts, True))
            return text.detokenize(words.to_tensor(), french_spacing=True)

    tf.saved_model.save(Text(), str(tmp_path / "text"))
    loaded = tf.saved_model.load(str(tmp_path / "text"))
    out = loaded.round_trip(tf.constant(["Cours\u202f!", "J'AI 1.5 kg."]))
    assert _strings(out) == ["cours !", "j'ai 1.5 kg."]


def test_copy_map_sends_source_words_to_the_same_target_words():
    source = ["", "[UNK]", "[START]", "[END]", "obama", "the", "paris", "zzz"]
    # Ranked by count: "The" before "the", "Paris" only cased.
    target = ["", "[UNK]", "[START]", "[END]", "The", "the", "Obama", "Paris"]
    lowered = text.copy_map(source, target, source_lowercase=True)
    np.testing.assert_array_equal(lowered, [0, 0, 0, 0, 6, 4, 7, 0])
    assert lowered.dtype == np.int32
    cased = text.copy_map(source, target, source_lowercase=False)
    np.testing.assert_array_equal(cased, [0, 0, 0, 0, 0, 5, 0, 0])

"""Words of a sentence and back, in TensorFlow string ops (graph-safe).

A sentence becomes words by `split_punctuation` (spaces around punctuation,
whitespace collapsed, optionally lower-cased) and `TextVectorization`'s
whitespace split; words become a sentence by `detokenize`. Only core
TensorFlow ops (`tf.strings.*`, RE2 regular expressions) are used, so every
function here runs inside a `tf.data` pipeline and inside a SavedModel graph.

The punctuation split apart (`PUNCTUATION`): `. , ! ? ; : " ( ) [ ] { } « » “
” ¿ ¡ … ‽`. Never split: the apostrophe (`'` and `’`) and the hyphen, so that
"J'ai", "Va-t'en" and "don't" stay one word each; a '.' between two letters or
digits ("1.5", "F.B.I", "SPACE.com"), a ',' or ':' between two digits
("50,000", "12:45") and the ';' ending an HTML entity ("&lt;", "&#39;", AG
News' "#39;s"). The vocabulary's ids 0-3 are fixed: padding `""`, `"[UNK]"`,
`START` and `END`.

Text that is not valid UTF-8 never fails: each invalid byte becomes U+FFFD
(the replacement character) first. The private-use characters U+E000-U+E003
are used internally to protect the marks that stay inside a word: in input
text they come out as '.', ',', ':' and ';'.
"""

import collections

import keras
import numpy as np
import tensorflow as tf

from layers.validation import check_positive_int
from zoo.seq2seq.decoding import (  # noqa: F401  (the ids, re-exported)
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNK_ID,
)

# The first ids of every vocabulary built here (defined with the decoders,
# which import no TensorFlow).
RESERVED = RESERVED_TOKENS
_, UNK, START, END = RESERVED

PUNCTUATION = '.,!?;:"()[]{}«»“”¿¡…‽'
# Whitespace as Python's `str.split` has it (Unicode's spaces included: U+00A0,
# U+202F, U+2009, ...), so that this module and the builders agree.
_WHITESPACE = r"[\s\p{Z}\x{0B}\x{1C}-\x{1F}\x{85}]+"
# Characters that stand in for punctuation inside a word while the rest is
# split apart (Unicode private use: never in real text).
_KEPT = {".": "\ue000", ",": "\ue001", ":": "\ue002", ";": "\ue003"}
_KEEP_RULES = (
    (r"([\pL\pN])\.([\pL\pN])", r"\1" + _KEPT["."] + r"\2"),
    (r"(\d),(\d)", r"\1" + _KEPT[","] + r"\2"),
    (r"(\d):(\d)", r"\1" + _KEPT[":"] + r"\2"),
    # HTML entities: "&lt;", "&#39;", and AG News' "#39;" (its "&" lost).
    (r"(&[A-Za-z]+|&?#[0-9]+);", r"\1" + _KEPT[";"]),
)
# detokenize: no space before closing marks, none after opening ones;
# `_FRENCH_*` follow French typography when `french_spacing=True`.
_CLOSING = ".,)]}”…"
_OPENING = "([{“¿¡"
_FRENCH_SPACED_BEFORE = "!?;:‽»"
_FRENCH_SPACED_AFTER = "«"


def _class(chars):
    """An RE2 character class matching any of `chars`."""
    return "[" + "".join("\\" + c if c in "[]\\^-" else c for c in chars) + "]"


def _valid_utf8(texts):
    """`texts` with every invalid UTF-8 byte replaced by U+FFFD."""
    return tf.strings.unicode_transcode(
        texts, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )


def normalize_spaces(texts):
    """Collapses every run of whitespace into one space and strips the ends.

    The TensorFlow twin of `" ".join(text.split())` (the normalisation of the
    project's translation builder): Unicode's spaces (U+00A0, U+202F, U+2009,
    ...) count as whitespace.

    Args:
        texts: tf.string tensor of any shape.

    Returns:
        tf.string tensor of the same shape.
    """
    texts = tf.strings.regex_replace(_valid_utf8(texts), _WHITESPACE, " ")
    return tf.strings.strip(texts)


def split_punctuation(texts, lowercase):
    """Puts spaces around punctuation, so that a whitespace split gives words.

    Args:
        texts: tf.string `(B,)` (any shape works) of raw sentences.
        lowercase: lower-case them too (Unicode-aware: "É" becomes "é").

    Returns:
        tf.string of the same shape: words and punctuation marks separated
        by single spaces, no space at either end ("" stays "").
    """
    texts = _valid_utf8(tf.convert_to_tensor(texts, tf.string))
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    for pattern, rewrite in _KEEP_RULES:
        # Twice: a match consumes the character after the mark, so "F.B.I"
        # keeps its second dot only on the second pass.
        texts = tf.strings.regex_replace(texts, pattern, rewrite)
        texts = tf.strings.regex_replace(texts, pattern, rewrite)
    texts = tf.strings.regex_replace(texts, f"({_class(PUNCTUATION)})", r" \1 ")
    for mark, stand_in in _KEPT.items():
        texts = tf.strings.regex_replace(texts, stand_in, mark, replace_global=True)
    return normalize_spaces(texts)


def count_words(texts, lowercase, batch_size=4096):
    """How often each word of `split_punctuation(texts)` occurs.

    Args:
        texts: a `tf.data.Dataset` of raw strings, unbatched or in batches
            (tf.string `(B,)`).
        lowercase: lower-case the texts first.
        batch_size: texts split per step, when `texts` is unbatched.

    Returns:
        A `collections.Counter` of `{word (str): count}`.
    """
    counts = collections.Counter()

    def words(batch):
        return tf.strings.split(split_punctuation(batch, lowercase)).flat_values

    if texts.element_spec.shape.rank == 0:
        texts = texts.batch(batch_size)
    for batch in texts.map(words).as_numpy_iterator():
        counts.update(batch.tolist())
    return collections.Counter({word.decode("utf-8"): n for word, n in counts.items()})


def check_vocabulary_size(name, value):
    """Raises unless `value` is an integer above the 4 reserved ids.

    Returns:
        `value` as an `int`.
    """
    value = check_positive_int(name, value)
    if value <= len(RESERVED):
        raise ValueError(
            f"Argument `{name}` must be more than {len(RESERVED)} (the reserved "
            f"ids {list(RESERVED)}). Received: {name}={value}"
        )
    return value


def build_vocabulary(texts, vocabulary_size, lowercase, name="vectorizer"):
    """A `TextVectorization` whose vocabulary is the most frequent words.

    The vocabulary: id 0 `""` (padding), 1 `"[UNK]"`, 2 `START`, 3 `END`, then
    the words of `split_punctuation(texts, lowercase)` by decreasing count
    (ties in code point order, so the vocabulary is the same on every
    machine), up to `vocabulary_size` ids in all. The layer splits on
    whitespace only (`standardize=None`): feed it `split_punctuation`'s output
    (`tokenize` does). It holds its vocabulary, so a `.keras` file with it
    loads with `safe_mode=True`.

    Args:
        texts: a `tf.data.Dataset` of raw strings, unbatched or in batches
            (the training split only).
        vocabulary_size: the most ids, the four reserved ones included (at
            least 5).
        lowercase: lower-case the texts before counting (and pass the same to
            `tokenize`).
        name: the layer's name.

    Returns:
        The `keras.layers.TextVectorization` (`"int"` output, unknown words 1).
    """
    vocabulary_size = check_vocabulary_size("vocabulary_size", vocabulary_size)
    counts = count_words(texts, lowercase)
    for token in RESERVED:
        counts.pop(token, None)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    words = [word for word, _ in ranked[: vocabulary_size - len(RESERVED)]]
    vectorizer = keras.layers.TextVectorization(
        max_tokens=vocabulary_size,
        standardize=None,
        split="whitespace",
        output_mode="int",
        name=name,
    )
    vectorizer.set_vocabulary([START, END, *words])
    return vectorizer


def check_vocabulary(name, vectorizer):
    """Raises unless `vectorizer`'s vocabulary starts with the reserved ids.

    Args:
        name: the argument's name, for the message.
        vectorizer: a `keras.layers.TextVectorization`.

    Returns:
        `vectorizer`.
    """
    if not isinstance(vectorizer, keras.layers.TextVectorization):
        raise ValueError(
            f"Argument `{name}` must be a keras.layers.TextVectorization built "
            f"by build_vocabulary. Received: {name}={vectorizer!r}"
        )
    head = tuple(vectorizer.get_vocabulary()[: len(RESERVED)])
    if head != RESERVED:
        raise ValueError(
            f"Argument `{name}` must have the vocabulary's first ids "
            f"{list(RESERVED)} (build_vocabulary's). Received: first ids "
            f"{list(head)}"
        )
    return vectorizer


def tokenize(vectorizer, texts, lowercase):
    """Token ids of raw sentences.

    Args:
        vectorizer: a `TextVectorization` from `build_vocabulary`.
        texts: tf.string `(B,)`.
        lowercase: as the vocabulary was built.

    Returns:
        int32 `(B, T)`: each sentence's ids, padded with 0 to the longest
        (`T` 0 when every sentence is empty).
    """
    ids = vectorizer(split_punctuation(texts, lowercase))
    if isinstance(ids, tf.RaggedTensor):
        ids = ids.to_tensor()
    return tf.cast(ids, tf.int32)


def detokenize(words, french_spacing):
    """Joins word tokens into sentences, spacing punctuation as text does.

    Padding `""`, `START` and `END` are dropped; `"[UNK]"` stays visible. The
    words are joined by single spaces, then the space goes before closing
    marks (`. , ) ] } ” …`) and after opening ones (`( [ { “ ¿ ¡`), between
    two of `! ? ‽` ("?!"), and inside each pair of straight quotes
    (`" a b "` becomes `"a b"`, pairs taken left to right). Before `! ? ; : ‽
    »` and after `«` the space goes only when `french_spacing` is False:
    French typography keeps it ("Cours !", "« oui »").

    Args:
        words: tf.string `(B, T)` tokens (the vocabulary's words).
        french_spacing: keep the space French puts before `! ? ; :` and
            inside `« »`.

    Returns:
        tf.string `(B,)`.
    """
    words = _valid_utf8(tf.convert_to_tensor(words, tf.string))
    drop = (words == "") | (words == START) | (words == END)
    texts = tf.strings.reduce_join(
        tf.where(drop, tf.constant(""), words), axis=-1, separator=" "
    )
    texts = tf.strings.regex_replace(texts, " +", " ")
    texts = tf.strings.regex_replace(texts, r'" ([^"]*) "', r'"\1"')
    closing, opening = _CLOSING, _OPENING
    if not french_spacing:
        closing += _FRENCH_SPACED_BEFORE
        opening += _FRENCH_SPACED_AFTER
    texts = tf.strings.regex_replace(texts, f" ({_class(closing)})", r"\1")
    texts = tf.strings.regex_replace(texts, f"({_class(opening)}) ", r"\1")
    texts = tf.strings.regex_replace(texts, r"([!?‽]) ([!?‽])", r"\1\2")
    return tf.strings.strip(texts)


def ids_to_words(vectorizer, ids):
    """The words of token ids (the inverse of the vectorizer's lookup).

    Args:
        vectorizer: a `TextVectorization` from `build_vocabulary`.
        ids: int `(B, T)` token ids (0 padding).

    Returns:
        tf.string `(B, T)`; ids outside the vocabulary give `"[UNK]"`.
    """
    vocabulary = tf.constant(np.array(vectorizer.get_vocabulary(), dtype=object))
    ids = tf.cast(ids, tf.int32)
    inside = (ids >= 0) & (ids < tf.shape(vocabulary)[0])
    words = tf.gather(vocabulary, tf.where(inside, ids, UNK_ID))
    return words


def copy_map(source_vocabulary, target_vocabulary, source_lowercase):
    """Each source id's target id of the same word, for `PointerGenerator`.

    A source word maps to the target word spelled the same; when the source
    is lower-cased, to the most frequent target word that lower-cases to it
    (target vocabularies are ranked by count: "obama" -> "Obama"). The
    reserved ids, and words the target vocabulary lacks, map to 0 (nothing
    to copy).

    Args:
        source_vocabulary: the source words by id (`get_vocabulary()`).
        target_vocabulary: the target words by id.
        source_lowercase: whether the source words are lower-cased.

    Returns:
        int32 NumPy `(len(source_vocabulary),)`.
    """
    targets = {}
    for index, word in enumerate(target_vocabulary):
        if index < len(RESERVED):
            continue
        targets.setdefault(word.lower() if source_lowercase else word, index)
    return np.array(
        [
            targets.get(word, 0) if index >= len(RESERVED) else 0
            for index, word in enumerate(source_vocabulary)
        ],
        "int32",
    )

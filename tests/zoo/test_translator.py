"""`zoo.Translator`: strings in, strings out, saved with its vocabularies."""

import json

import keras
import numpy as np
import pytest

import zoo
from zoo.seq2seq.translator import Translator

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="string ops are TensorFlow's"
)

SOURCES = ["i am cold .", "are you happy ?", "the cat is here .", "go !"]
TARGETS = ["j'ai froid .", "es-tu heureux ?", "le chat est là .", "va !"]


def _translator(name="transformer_seq2seq_tiny", copy_source=None, **kwargs):
    import tensorflow as tf

    from zoo.seq2seq.text import build_vocabulary

    source = build_vocabulary(tf.data.Dataset.from_tensor_slices(SOURCES), 30, True)
    target = build_vocabulary(tf.data.Dataset.from_tensor_slices(TARGETS), 30, False)
    seq2seq = zoo.build_model(
        name,
        source_vocabulary_size=source.vocabulary_size(),
        target_vocabulary_size=target.vocabulary_size(),
        max_source_length=8,
        max_target_length=6,
        **({} if copy_source is None else {"copy_source": copy_source}),
    )
    for w in seq2seq.trainable_weights:
        w.assign(keras.ops.convert_to_numpy(w) * 2)
    args = dict(max_source_length=8, max_target_length=6, french_spacing=True)
    return Translator(seq2seq, source, target, **(args | kwargs))


@pytest.mark.parametrize("name", ["transformer_seq2seq_tiny", "rnn_seq2seq_tiny"])
def test_translations_survive_a_reload(name, tmp_path):
    import tensorflow as tf

    translator = _translator(name)
    texts = tf.constant(["I am cold.", "go!", ""])
    expected = translator.translate(texts).numpy()
    tokens = keras.ops.convert_to_numpy(translator(texts))
    assert tokens.shape == (3, 6) and tokens.dtype == np.int32
    path = tmp_path / "translator.keras"
    translator.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, Translator)
    # (JSON: a saved config reads tuples back as lists.)
    assert json.dumps(loaded.get_config()) == json.dumps(translator.get_config())
    np.testing.assert_array_equal(loaded.translate(texts).numpy(), expected)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(texts)), tokens)


def test_sources_are_tokenized_like_the_training_data():
    import tensorflow as tf

    translator = _translator()
    tokens = keras.ops.convert_to_numpy(
        translator.tokenize(tf.constant(["I am COLD.", "", "go " * 50]))
    )
    vocabulary = translator.source_vectorizer.get_vocabulary()
    assert [vocabulary[i] for i in tokens[0] if i] == ["i", "am", "cold", "."]
    assert not tokens[1].any(), "an empty text is an empty source"
    assert tokens.shape[1] == 8, "long texts are cut at max_source_length"
    # Bytes that are not UTF-8 are read as U+FFFD (unknown), not an error.
    bad = translator.tokenize(tf.constant([b"i am \xff\xfe cold"]))
    assert keras.ops.convert_to_numpy(bad).shape[0] == 1


def test_greedy_and_beam_outputs_are_texts():
    import tensorflow as tf

    translator = _translator()
    texts = tf.constant(SOURCES)
    greedy = translator.translate(texts, beam_width=1).numpy()
    beams = translator.translate(texts, beam_width=3).numpy()
    assert greedy.shape == beams.shape == (4,)
    from zoo.seq2seq.text import split_punctuation

    words = set(translator.target_vectorizer.get_vocabulary())
    lines = [line.replace(b"[UNK]", b"") for line in [*greedy, *beams]]
    for line in split_punctuation(tf.constant(lines), False).numpy():
        assert set(line.decode().split()) <= words - {"[START]", "[END]"}


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(task="classification"), "task"),
        (dict(beam_width=0), "beam_width"),
        (dict(max_target_length=0), "max_target_length"),
        (dict(length_penalty=-1.0), "length_penalty"),
    ],
)
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _translator(**kwargs)


def test_a_target_vocabulary_without_start_and_end_is_refused():
    import tensorflow as tf

    translator = _translator()
    plain = keras.layers.TextVectorization(max_tokens=20)
    plain.adapt(tf.constant(TARGETS))
    with pytest.raises(ValueError, match="target_vectorizer"):
        Translator(translator.seq2seq, translator.source_vectorizer, plain, 8, 6)


def test_a_copying_model_gets_its_map_from_the_vocabularies(tmp_path):
    translator = _translator("transformer_seq2seq_tiny", copy_source=True)
    source = translator.source_vectorizer.get_vocabulary()
    target = translator.target_vectorizer.get_vocabulary()
    ids = keras.ops.convert_to_numpy(
        translator.seq2seq.get_layer("copy").source_to_target
    )
    # Words in both vocabularies ("." "?" "!" and no others) copy onto themselves.
    shared = {w for w in source[4:] if w in target}
    assert shared == {".", "?", "!"}
    assert {source[i] for i in np.flatnonzero(ids)} == shared
    assert all(target[ids[source.index(w)]] == w for w in shared)
    path = tmp_path / "copy.keras"
    translator.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    again = loaded.seq2seq.get_layer("copy").source_to_target
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again), ids)

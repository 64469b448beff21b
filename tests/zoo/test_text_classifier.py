"""`TextClassifier`: strings in, the token model's logits out, vocabulary saved."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from zoo.text_classifier import TextClassifier, tokenize

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tokenization is TF string ops"
)
SENTENCES = [
    "a gripping , funny film",
    "the plot is dull and the acting worse",
    "funny , warm and gripping",
    "worse than dull",
]


def _classifier(name="transformer_classifier_tiny", max_length=8, **overrides):
    vectorizer = keras.layers.TextVectorization(max_tokens=50, name="vectorizer")
    vectorizer.adapt(tf.constant(SENTENCES))
    classifier = zoo.build_model(
        name,
        vocabulary_size=vectorizer.vocabulary_size(),
        num_classes=2,
        name=f"{name}_tokens",
        **overrides,
    )
    return TextClassifier(
        classifier, vectorizer, ["negative", "positive"], max_length, name=name
    )


def test_tokens_by_hand():
    model = _classifier(max_length=6)
    vocabulary = model.vectorizer.get_vocabulary()
    texts = tf.constant(["Funny, WARM film!", "", "   ", "unseen words here"])
    tokens = tokenize(model.vectorizer, texts, 6).numpy()
    ids = [vocabulary.index(w) for w in ("funny", "warm", "film")]
    np.testing.assert_array_equal(tokens[0], [*ids, 0])
    # No token at all: one unknown token, so the prediction is defined.
    np.testing.assert_array_equal(tokens[1], [1, 0, 0, 0])
    np.testing.assert_array_equal(tokens[2], [1, 0, 0, 0])
    np.testing.assert_array_equal(tokens[3], [1, 1, 1, 0])
    long = tf.constant([" ".join(["funny"] * 100)])
    assert tokenize(model.vectorizer, long, 6).shape == (1, 6)


@pytest.mark.parametrize("name", zoo.list_models(task="text_classification"))
def test_strings_give_the_token_models_logits_and_survive_a_reload(name, tmp_path):
    model = _classifier(name, max_length=5)
    texts = tf.constant(SENTENCES)
    logits = model(texts).numpy()
    expected = model.classifier(model.tokenize(texts)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-6)
    model.save(tmp_path / "text.keras")
    reloaded = keras.saving.load_model(tmp_path / "text.keras", safe_mode=True)
    assert isinstance(reloaded, TextClassifier)
    assert reloaded.class_names == ("negative", "positive")
    assert reloaded.max_length == 5
    np.testing.assert_allclose(reloaded(texts).numpy(), logits, atol=1e-6)


def test_batching_with_longer_texts_changes_nothing():
    model = _classifier(max_length=64)
    alone = model(tf.constant(["funny film"])).numpy()
    with_long = model(tf.constant(["funny film", " ".join(SENTENCES)])).numpy()
    np.testing.assert_allclose(with_long[:1], alone, atol=2e-5)


@pytest.mark.parametrize(
    "text", ["", " \t\n ", "!!!", "x" * 1_000_000, "word " * 200_000]
)
def test_bad_texts_give_finite_predictions(text):
    logits = _classifier(max_length=16)(tf.constant([text, "funny"])).numpy()
    assert logits.shape == (2, 2) and np.all(np.isfinite(logits))


def test_bytes_that_are_not_utf8():
    model = _classifier()
    logits = model(tf.constant([b"\xff\xfe bad \xc3", b"funny"])).numpy()
    assert np.all(np.isfinite(logits))


def test_class_names_must_match_the_classes():
    model = _classifier()
    with pytest.raises(ValueError, match="class_names"):
        TextClassifier(model.classifier, model.vectorizer, ["a", "b", "c"], 8)
    with pytest.raises(ValueError, match="max_length"):
        TextClassifier(model.classifier, model.vectorizer, ["a", "b"], 0)


def test_trains_on_strings():
    model = _classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    x, y = tf.constant(SENTENCES), np.array([1, 0, 1, 0])
    first = model.train_on_batch(x, y)
    for _ in range(20):
        last = model.train_on_batch(x, y)
    assert last < first

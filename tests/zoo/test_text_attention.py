"""`text_attention`: one weight per token, summing to 1, for every text family."""

import keras
import numpy as np
import pytest

import zoo
from tests.zoo.test_text_classifier import _classifier
from zoo.text_attention import text_attention

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tokenization is TF string ops"
)


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("rnn_classifier_tiny", {}),
        ("transformer_classifier_tiny", {}),
        ("transformer_classifier_tiny", {"pooling": "attention"}),
    ],
)
def test_one_weight_per_token(name, overrides):
    model = _classifier(name, max_length=8, **overrides)
    texts = ["a gripping , funny film", "dull", "", "worse " * 20]
    pairs = text_attention(model, texts)
    assert [len(words) for words, _ in pairs] == [4, 1, 1, 8]
    assert pairs[0][0] == ["a", "gripping", "funny", "film"]
    assert pairs[2][0] == ["[UNK]"]
    for _, weights in pairs:
        assert weights.dtype == np.float32 and np.all(weights >= 0)
        np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-5)


def test_padding_in_the_batch_changes_no_weight():
    model = _classifier("rnn_classifier_tiny", max_length=32)
    alone = text_attention(model, ["funny film"])[0][1]
    batched = text_attention(model, ["funny film", "worse " * 20])[0][1]
    np.testing.assert_allclose(batched, alone, atol=1e-6)


def test_a_model_without_attention_is_refused():
    vectorizer = _classifier().vectorizer
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(50, 4, mask_zero=True)(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    classifier = keras.Model(inputs, keras.layers.Dense(2)(x))
    model = zoo.TextClassifier(classifier, vectorizer, ["a", "b"], 8)
    with pytest.raises(ValueError, match="no AttentionPooling or TransformerEncoder"):
        text_attention(model, ["funny"])

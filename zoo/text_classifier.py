"""A token classifier together with its vocabulary: strings in, logits out."""

import keras
from keras import ops

from layers.validation import check_positive_int


def tokenize(vectorizer, texts, max_length):
    """Token ids of a string batch, as `TextClassifier` reads them.

    Args:
        vectorizer: an adapted `keras.layers.TextVectorization` (`"int"`).
        texts: a string tensor `(batch,)`.
        max_length: the most tokens kept of each text.

    Returns:
        Int32 tokens `(batch, length)`, `1 <= length <= max_length`, padded
        with 0 to the longest text; a text without tokens is `[1, 0, ...]`
        (one unknown token).
    """
    tokens = ops.cast(vectorizer(texts), "int32")
    # One padding column more (cut again at max_length), so that a batch of
    # empty texts still has a column for the unknown token.
    padding = ops.zeros_like(tokens[:, :1])
    tokens = ops.concatenate([tokens, padding], axis=1)[:, :max_length]
    has_token = ops.any(ops.not_equal(tokens, 0), axis=1, keepdims=True)
    first = ops.expand_dims(ops.equal(ops.arange(ops.shape(tokens)[1]), 0), 0)
    return ops.where(ops.logical_and(first, ops.logical_not(has_token)), 1, tokens)


@keras.saving.register_keras_serializable(package="attention_zoo")
class TextClassifier(keras.Model):
    """Tokenizes raw strings and classifies them with a zoo token model.

    The `.keras` file holds the vocabulary (`vectorizer`), the token model
    (`classifier`, e.g. `build_model("transformer_classifier_small")`) and
    the class names, so a saved classifier goes from strings to labels with
    no other file. Texts are tokenized by `vectorizer` (a
    `keras.layers.TextVectorization` in `"int"` mode: lower-cased,
    punctuation stripped, split on whitespace; id 0 pads, 1 is unknown),
    padded to the longest text of the batch and cut at `max_length` tokens
    (longer texts are truncated). A text with no token at all (empty, only
    whitespace or punctuation) reads as one unknown token (id 1), so its
    prediction is defined and finite. The tokenization is TensorFlow string
    ops, so the model runs on the TensorFlow backend.

    Args:
        classifier: a `keras.Model` from int32 tokens `(batch, length)` to
            logits `(batch, num_classes)`.
        vectorizer: an adapted `keras.layers.TextVectorization`.
        class_names: the label names, index order.
        max_length: the most tokens of a text that the classifier reads.
        **kwargs: `keras.Model` arguments (`name`).

    Call arguments:
        texts: a string tensor `(batch,)`.

    Returns:
        Float32 logits `(batch, num_classes)`.
    """

    # The task whose serving signatures `zoo.export.export_model` writes.
    task = "text_classification"

    def __init__(self, classifier, vectorizer, class_names, max_length, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.vectorizer = vectorizer
        self.class_names = tuple(str(n) for n in class_names)
        self.max_length = check_positive_int("max_length", max_length)
        classes = classifier.outputs[0].shape[-1]
        if classes != len(self.class_names):
            raise ValueError(
                f"Argument `class_names` must name the classifier's {classes} "
                f"classes. Received: class_names={list(self.class_names)}"
            )
        # Every weight exists already (the classifier is built, the
        # vocabulary is a lookup table), so training can resume from a backup
        # before the first call.
        self.built = True

    def tokenize(self, texts):
        """Int32 tokens `(batch, 1 <= length <= max_length)` of a string batch."""
        return tokenize(self.vectorizer, texts, self.max_length)

    def call(self, texts, training=None):
        return self.classifier(self.tokenize(texts), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            classifier=keras.saving.serialize_keras_object(self.classifier),
            vectorizer=keras.saving.serialize_keras_object(self.vectorizer),
            class_names=list(self.class_names),
            max_length=self.max_length,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("classifier", "vectorizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def text_classifier_for(name, info, **overrides):
    """A registered text model, untrained, wrapped with a dataset's vocabulary.

    Args:
        name: a registered `text_classification` model name.
        info: the `TextDatasetInfo` of `training.text_data.load_text_classification`
            (its vectorizer, vocabulary size, class names and maximum length).
        **overrides: other `build_model` arguments (e.g. `cell="gru"`).

    Returns:
        A `TextClassifier` named `name` around `build_model(name, ...)`, whose
        token model is named `NAME_tokens`.
    """
    from zoo.registry import build_model

    classifier = build_model(
        name,
        vocabulary_size=info.vocabulary_size,
        num_classes=info.num_classes,
        name=f"{name}_tokens",
        **overrides,
    )
    return TextClassifier(
        classifier, info.vectorizer, info.class_names, info.max_length, name=name
    )

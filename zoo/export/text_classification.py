"""Serving signatures of text classifiers: raw strings and token ids."""

import numpy as np
import tensorflow as tf

from zoo.export.image_classification import reference_outputs
from zoo.export.serving_signature import ServingSignature
from zoo.text_classifier import TextClassifier

_WORDS = ("good", "bad", "film", "plot", "funny", "dull", "the", "a", "and")


def text_classification_signatures(model):
    """Signatures of a `TextClassifier` (its vocabulary compiled in).

    - `serving_default`: `text` tf.string `(None,)` -> `probabilities`
      (float32 `(None, num_classes)`), `classes` (int64 `(None,)`) and
      `labels` (tf.string `(None,)`, the class names).
    - `serving_xla`: the same; everything after tokenization runs in a
      `jit_compile=True` function (XLA takes no strings, so tokenization
      stays in the outer graph).
    - `serving_tokens`: `tokens` int32 `(None, None)` (0 = padding) -> the
      same outputs.

    Requests: an empty string, whitespace or punctuation only reads as one
    unknown token (a defined, finite prediction); text past `max_length`
    tokens is truncated (1 MB of text costs its tokenization, then
    `max_length` tokens); bytes that are not UTF-8 are tokenized as bytes.
    An empty batch, token ids outside `[0, vocabulary_size)`, more than
    `max_length` tokens or a row of padding only fail with a message naming
    the input.

    Args:
        model: a `zoo.TextClassifier` on the TensorFlow backend.

    Returns:
        A list of `ServingSignature`.
    """
    if not isinstance(model, TextClassifier):
        raise ValueError(
            "A text classifier exports from a `TextClassifier` (the .keras file "
            "`zoo train` writes), which holds its vocabulary; a token model alone "
            f"cannot read text. Received: {type(model).__name__} {model.name!r}"
        )
    class_names = tf.constant(model.class_names)
    vocabulary_size = int(model.vectorizer.vocabulary_size())
    max_length = model.max_length

    def outputs(logits):
        classes = tf.argmax(logits, axis=-1, output_type=tf.int64)
        return {
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "classes": classes,
            "labels": tf.gather(class_names, classes),
        }

    @tf.function(autograph=False)
    def logits_of(tokens):
        return tf.cast(model.classifier(tokens, training=False), tf.float32)

    # The model is traced inside the XLA function itself, not called as
    # another function: a session (TF Serving) lowers the recurrent models'
    # `While` loops of a nested function to ops XLA cannot compile.
    @tf.function(autograph=False, jit_compile=True)
    def logits_xla(tokens):
        return tf.cast(model.classifier(tokens, training=False), tf.float32)

    text_spec = tf.TensorSpec((None,), tf.string, name="text")
    tokens_spec = tf.TensorSpec((None, None), tf.int32, name="tokens")

    @tf.function(input_signature=[text_spec], autograph=False)
    def serving_default(text):
        return outputs(logits_of(model.tokenize(checked_text(text))))

    @tf.function(input_signature=[text_spec], autograph=False)
    def serving_xla(text):
        return outputs(logits_xla(model.tokenize(checked_text(text))))

    @tf.function(input_signature=[tokens_spec], autograph=False)
    def serving_tokens(tokens):
        return outputs(logits_of(_checked_tokens(tokens, vocabulary_size, max_length)))

    def make_text(batch_size, seed):
        rng = np.random.default_rng(seed)
        texts = [
            " ".join(rng.choice(_WORDS, rng.integers(1, 12))) for _ in range(batch_size)
        ]
        texts[0] = ""
        return {"text": np.array([t.encode() for t in texts], dtype=object)}

    def make_tokens(batch_size, seed):
        rng = np.random.default_rng(seed)
        tokens = rng.integers(1, vocabulary_size, (batch_size, 9)).astype(np.int32)
        for row, size in zip(tokens, rng.integers(1, 10, batch_size), strict=True):
            row[size:] = 0
        return {"tokens": tokens}

    def reference(inputs):
        if "text" in inputs:
            logits = model(tf.constant(list(inputs["text"]), tf.string))
        else:
            logits = model.classifier(inputs["tokens"], training=False)
        return _reference_outputs(np.asarray(logits, np.float32), model.class_names)

    text_kwargs = dict(
        make_example=make_text, reference=reference, bad_requests=_bad_text_requests()
    )
    resources = (vocabulary_table(model.vectorizer),)
    return [
        ServingSignature(
            "serving_default", serving_default, resources=resources, **text_kwargs
        ),
        ServingSignature(
            "serving_xla",
            serving_xla,
            atol=1e-4,
            jit_compile=True,
            resources=resources,
            **text_kwargs,
        ),
        ServingSignature(
            "serving_tokens",
            serving_tokens,
            make_example=make_tokens,
            reference=reference,
            bad_requests=_bad_token_requests(vocabulary_size, max_length),
        ),
    ]


def vocabulary_table(vectorizer):
    """The lookup table of an adapted `TextVectorization`, for a SavedModel.

    TextVectorization keeps its vocabulary in a lookup table of its
    StringLookup, not in a variable: the SavedModel must track it.
    """
    lookup = getattr(vectorizer, "_lookup_layer", None)
    table = getattr(lookup, "lookup_table", None)
    if table is None:
        raise ValueError(
            f"The vectorizer {vectorizer.name!r} has no vocabulary table to export "
            "(was it adapted?)."
        )
    return table


def checked_text(text):
    """`text`, with a check that the batch holds at least one string."""
    check = tf.debugging.Assert(
        tf.size(text) > 0, ["Input `text` must hold at least one string."]
    )
    with tf.control_dependencies([check]):
        return tf.identity(text)


def _checked_tokens(tokens, vocabulary_size, max_length):
    shape = tf.shape(tokens)
    checks = [
        tf.debugging.Assert(
            shape[0] > 0, ["Input `tokens` must hold at least one row."]
        ),
        tf.debugging.Assert(
            tf.logical_and(shape[1] > 0, shape[1] <= max_length),
            [f"Input `tokens` must have 1 to {max_length} columns. Received:", shape],
        ),
        tf.debugging.Assert(
            tf.reduce_all(tf.logical_and(tokens >= 0, tokens < vocabulary_size)),
            [
                f"Input `tokens` must hold ids in [0, {vocabulary_size}). Received "
                "min and max:",
                tf.reduce_min(tokens),
                tf.reduce_max(tokens),
            ],
        ),
        tf.debugging.Assert(
            tf.reduce_all(tf.reduce_any(tokens > 0, axis=1)),
            ["Input `tokens` has a row of padding only (id 0); give each row a token."],
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(tokens)


def _reference_outputs(logits, class_names):
    outputs = reference_outputs(logits)
    labels = [class_names[c].encode() for c in outputs["classes"]]
    return {**outputs, "labels": np.array(labels, dtype=object)}


def _bad_text_requests():
    return (
        ("no text", {"text": np.array([], dtype=object)}, "at least one string"),
        ("floats", {"text": np.zeros(2, np.float32)}, "string"),
        ("no input", {}, "text"),
    )


def _bad_token_requests(vocabulary_size, max_length):
    good = np.array([[2, 3, 0]], np.int32)
    return (
        ("no rows", {"tokens": np.zeros((0, 3), np.int32)}, "at least one row"),
        ("no columns", {"tokens": np.zeros((2, 0), np.int32)}, "columns"),
        (
            "too long",
            {"tokens": np.ones((1, max_length + 1), np.int32)},
            f"1 to {max_length} columns",
        ),
        ("id too large", {"tokens": good + vocabulary_size}, "must hold ids"),
        ("negative id", {"tokens": -good}, "must hold ids"),
        ("padding only", {"tokens": np.zeros((2, 3), np.int32)}, "padding only"),
        ("floats", {"tokens": good.astype(np.float32)}, "int32"),
        ("no input", {}, "tokens"),
    )

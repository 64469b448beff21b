"""Serving signatures of translators: text in, decoded text out."""

import numpy as np
import tensorflow as tf

from zoo.export.serving_signature import ServingSignature
from zoo.export.text_classification import checked_text, vocabulary_table
from zoo.seq2seq.translator import Translator

OUTPUT_NAMES = {"translation": "translation", "headline_generation": "headline"}
_WORDS = ("i", "am", "you", "are", "cold", "happy", "the", "cat", "is", "?", ".")


def seq2seq_signatures(model):
    """Signatures of a `Translator` (vocabularies and beam search compiled in).

    - `serving_default`: `text` tf.string `(None,)` -> `translation` (or
      `headline` for headline generation) tf.string `(None,)` and `tokens`
      int32 `(None, max_target_length)` (end token included, then 0). The
      tokenization, the beam search (`model.beam_width` beams, the decoder's
      key/value caches in fixed-size buffers of an `ops.while_loop`) and the
      detokenization are all in the graph.
    - `serving_xla`: the same outputs; the decoding loop runs in a
      `jit_compile=True` function (XLA takes no strings, so tokenization and
      detokenization stay in the outer graph).

    Requests: an empty string (or only whitespace) reads as an empty source
    and decodes to whatever the model says for it (a defined output); text
    past `max_source_length` tokens is truncated; an empty batch or a
    non-string input fails with a message naming `text`.

    Args:
        model: a `zoo.seq2seq.Translator` on the TensorFlow backend.

    Returns:
        A list of `ServingSignature`.
    """
    if not isinstance(model, Translator):
        raise ValueError(
            "A seq2seq model exports from a `Translator` (the .keras file "
            "`zoo train` writes), which holds its vocabularies; a token model "
            f"alone cannot read text. Received: {type(model).__name__} {model.name!r}"
        )
    output_name = OUTPUT_NAMES[model.task]

    def outputs(tokens):
        return {output_name: model.detokenize(tokens), "tokens": tokens}

    @tf.function(autograph=False)
    def generate(source):
        return model.generate(source)

    # The model is traced inside the XLA function itself (see
    # zoo/export/text_classification.py).
    @tf.function(autograph=False, jit_compile=True)
    def generate_xla(source):
        return model.generate(source)

    text_spec = tf.TensorSpec((None,), tf.string, name="text")

    @tf.function(input_signature=[text_spec], autograph=False)
    def serving_default(text):
        return outputs(generate(model.tokenize(checked_text(text))))

    @tf.function(input_signature=[text_spec], autograph=False)
    def serving_xla(text):
        return outputs(generate_xla(model.tokenize(checked_text(text))))

    def make_text(batch_size, seed):
        rng = np.random.default_rng(seed)
        texts = [
            " ".join(rng.choice(_WORDS, rng.integers(1, 9))) for _ in range(batch_size)
        ]
        texts[0] = ""
        return {"text": np.array([t.encode() for t in texts], dtype=object)}

    def reference(inputs):
        texts = tf.constant(list(inputs["text"]), tf.string)
        tokens = model.generate(model.tokenize(texts))
        return {
            output_name: model.detokenize(tokens).numpy().astype(object),
            "tokens": np.asarray(tokens, np.int32),
        }

    kwargs = dict(
        make_example=make_text,
        reference=reference,
        bad_requests=_bad_requests(),
        resources=(vocabulary_table(model.source_vectorizer),),
    )
    return [
        ServingSignature("serving_default", serving_default, **kwargs),
        ServingSignature("serving_xla", serving_xla, jit_compile=True, **kwargs),
    ]


def _bad_requests():
    return (
        ("no text", {"text": np.array([], dtype=object)}, "at least one string"),
        ("floats", {"text": np.zeros(2, np.float32)}, "string"),
        ("no input", {}, "text"),
    )

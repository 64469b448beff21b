"""A seq2seq token model with its vocabularies: strings in, strings out."""

import keras
from keras import ops

from layers.validation import check_choice, check_float, check_positive_int
from zoo.registry import SEQ2SEQ_TASKS
from zoo.seq2seq.decoding import (
    END_ID,
    RESERVED_TOKENS,
    beam_search,
    greedy_search,
)


def stepper_for(model):
    """The cached stepper of a seq2seq token model (`zoo.seq2seq.decoding`)."""
    from zoo.seq2seq.transformer_stepper import TransformerStepper

    names = {layer.name for layer in model.layers}
    if "decoder_gru" in names:
        from zoo.seq2seq.rnn_stepper import RNNStepper

        return RNNStepper(model)
    return TransformerStepper(model)


@keras.saving.register_keras_serializable(package="attention_zoo")
class Translator(keras.Model):
    """Decodes raw strings into raw strings with a zoo seq2seq token model.

    The `.keras` file holds the token model (`seq2seq`, e.g.
    `build_model("transformer_seq2seq_small")`) and both vocabularies, so a
    saved translator goes from text to text with no other file. A source
    text is split into words and punctuation (`zoo.seq2seq.text`,
    lower-cased with `source_lowercase`), looked up in `source_vectorizer`
    (0 pads, 1 is unknown) and cut at `max_source_length` tokens; the output
    is decoded with beam search (`beam_width=1`: greedy) up to
    `max_target_length` tokens, end token included, and detokenized. The
    tokenization is TensorFlow string ops, so strings in and out need the
    TensorFlow backend; `generate` on token ids runs on any backend. A
    `PointerGenerator` in the token model (`copy_source=True`) gets its
    source-to-target id map from the two vocabularies here (`copy_map`); a
    loaded translator reads the saved map.

    Args:
        seq2seq: a `keras.Model` from `{"source", "target"}` int32 tokens to
            logits over the target vocabulary.
        source_vectorizer: the adapted source `keras.layers.TextVectorization`.
        target_vectorizer: the adapted target one (ids 2 and 3 are the start
            and end tokens).
        max_source_length: the most source tokens read.
        max_target_length: the most tokens generated.
        task: `"translation"` or `"headline_generation"` (which serving
            signatures `zoo.export` writes).
        source_lowercase: whether source texts are lower-cased.
        target_lowercase: whether the target vocabulary is lower-cased.
        french_spacing: whether detokenized output keeps a space before
            `! ? ; :` (French typography).
        beam_width: beams of the default decoding (1: greedy).
        length_penalty: `alpha` of beam search's length penalty.
        **kwargs: `keras.Model` arguments (`name`).

    Call arguments:
        texts: a string tensor `(batch,)`.

    Returns:
        Int32 tokens `(batch, max_target_length)` (end token included, then
        0); `translate` returns the strings.
    """

    def __init__(
        self,
        seq2seq,
        source_vectorizer,
        target_vectorizer,
        max_source_length,
        max_target_length,
        task="translation",
        source_lowercase=True,
        target_lowercase=False,
        french_spacing=False,
        beam_width=4,
        length_penalty=0.6,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.seq2seq = seq2seq
        self.source_vectorizer = source_vectorizer
        self.target_vectorizer = target_vectorizer
        self.max_source_length = check_positive_int(
            "max_source_length", max_source_length
        )
        self.max_target_length = check_positive_int(
            "max_target_length", max_target_length
        )
        self.task = check_choice("task", task, SEQ2SEQ_TASKS)
        self.source_lowercase = bool(source_lowercase)
        self.target_lowercase = bool(target_lowercase)
        self.french_spacing = bool(french_spacing)
        self.beam_width = check_positive_int("beam_width", beam_width)
        self.length_penalty = check_float(
            "length_penalty", length_penalty, 0.0, 10.0, low_open=False
        )
        # A loading model gets its vocabulary after construction: checked
        # here when the vectorizer already holds one.
        vocabulary = target_vectorizer.get_vocabulary()
        self._target_words = None
        if len(vocabulary) > 2 and vocabulary[2:4] != list(RESERVED_TOKENS[2:]):
            raise ValueError(
                f"Argument `target_vectorizer` must have {RESERVED_TOKENS[2:]} at "
                f"ids 2 and 3. Received: ids 0-3 {vocabulary[:4]}"
            )
        if len(vocabulary) > 2:
            self._set_copy_maps()
        self.stepper = stepper_for(seq2seq)
        self.built = True

    def _set_copy_maps(self):
        """Points each `PointerGenerator`'s source ids at the same target words."""
        from layers.pointer_generator import PointerGenerator
        from zoo.seq2seq.text import copy_map

        copies = [x for x in self.seq2seq.layers if isinstance(x, PointerGenerator)]
        if copies:
            ids = copy_map(
                self.source_vectorizer.get_vocabulary(),
                self.target_vectorizer.get_vocabulary(),
                self.source_lowercase,
            )
            for layer in copies:
                layer.source_to_target.assign(ids)

    @property
    def end_id(self):
        return END_ID

    def tokenize(self, texts):
        """Int32 source tokens `(batch, 1 <= length <= max_source_length)`."""
        from zoo.seq2seq.text import tokenize

        tokens = tokenize(self.source_vectorizer, texts, self.source_lowercase)
        # One padding column more, so that a batch of empty texts has a column.
        tokens = ops.concatenate([tokens, ops.zeros_like(tokens[:, :1])], axis=1)
        return tokens[:, : self.max_source_length]

    def generate(
        self, source, beam_width=None, length_penalty=None, return_attention=False
    ):
        """Target tokens of source token ids, by beam search or greedily.

        Args:
            source: int32 `(batch, length)` source tokens, 0 = padding.
            beam_width: beams (default `self.beam_width`; 1: greedy).
            length_penalty: default `self.length_penalty`.
            return_attention: also return the `(batch, max_target_length,
                length)` cross-attention weights of every generated token.

        Returns:
            Int32 `(batch, max_target_length)` tokens, and the weights.
        """
        beam_width = self.beam_width if beam_width is None else beam_width
        if length_penalty is None:
            length_penalty = self.length_penalty
        if beam_width == 1:
            return greedy_search(
                self.stepper,
                source,
                self.max_target_length,
                self.end_id,
                return_attention=return_attention,
            )
        result = beam_search(
            self.stepper,
            source,
            self.max_target_length,
            self.end_id,
            beam_width=beam_width,
            length_penalty=length_penalty,
            return_attention=return_attention,
        )
        return (result[0], result[2]) if return_attention else result[0]

    def words(self, tokens):
        """The target words `(batch, length)` (tf.string) of token ids."""
        import tensorflow as tf

        if self._target_words is None:
            # Read once, eagerly: a lookup table's vocabulary cannot be read
            # inside a graph.
            with tf.init_scope():
                self._target_words = self.target_vectorizer.get_vocabulary()
        return tf.gather(tf.constant(self._target_words), tokens)

    def detokenize(self, tokens):
        """The `(batch,)` strings of target token ids."""
        from zoo.seq2seq.text import detokenize

        return detokenize(self.words(tokens), self.french_spacing)

    def translate(self, texts, beam_width=None):
        """The `(batch,)` output strings of a `(batch,)` string tensor."""
        return self.detokenize(self.generate(self.tokenize(texts), beam_width))

    def call(self, texts, training=None):
        return self.generate(self.tokenize(texts))

    def get_config(self):
        config = super().get_config()
        config.update(
            seq2seq=keras.saving.serialize_keras_object(self.seq2seq),
            source_vectorizer=keras.saving.serialize_keras_object(
                self.source_vectorizer
            ),
            target_vectorizer=keras.saving.serialize_keras_object(
                self.target_vectorizer
            ),
            max_source_length=self.max_source_length,
            max_target_length=self.max_target_length,
            task=self.task,
            source_lowercase=self.source_lowercase,
            target_lowercase=self.target_lowercase,
            french_spacing=self.french_spacing,
            beam_width=self.beam_width,
            length_penalty=self.length_penalty,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("seq2seq", "source_vectorizer", "target_vectorizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

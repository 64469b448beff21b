"""What `load_seq2seq` loaded."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Seq2SeqDatasetInfo:
    """A sequence-to-sequence dataset as loaded, with its two vocabularies.

    Args:
        name: the tensorflow-datasets name, e.g. `"zoo_anki_fra_eng"`.
        source_feature: the feature read as the source, e.g. `"en"`.
        target_feature: the feature read as the target, e.g. `"fr"`.
        source_vectorizer: the source `keras.layers.TextVectorization`
            (`zoo.seq2seq.text.build_vocabulary`, adapted on the training
            split only), or `None` when `adapt=False` and none was given.
        target_vectorizer: the same for the target.
        source_vocabulary_size: ids of the source vocabulary (the reserved
            four included), 0 without one.
        target_vocabulary_size: the same for the target: the decoder's output
            size.
        max_source_length: the most source tokens of an example.
        max_target_length: the most decoder input (and label) tokens.
        source_lowercase: the source texts are lower-cased before tokenizing.
        target_lowercase: the same for the targets.
        french_spacing: the target is French: `detokenize` keeps the space
            before `! ? ; :` (`zoo.seq2seq.text.detokenize`).
        start_id: id of the start token, the decoder input's first.
        end_id: id of the end token, the labels' last.
        train_examples: examples in the training dataset.
        test_examples: examples in the test dataset.
        validation_examples: examples held out for validation (0 without).
        splits: `{"train": spec, "test": spec, "validation": spec or None}`,
            the tfds splits read.
        validation_ds: the batched, tokenized validation `tf.data.Dataset`,
            or `None`.
        test_texts: batches of raw `(source, target)` tf.string `(B,)` of the
            test split in file order, whitespace-normalised as the builder
            does: the references of BLEU and ROUGE.
    """

    name: str
    source_feature: str
    target_feature: str
    source_vectorizer: object = dataclasses.field(
        default=None, repr=False, compare=False
    )
    target_vectorizer: object = dataclasses.field(
        default=None, repr=False, compare=False
    )
    source_vocabulary_size: int = 0
    target_vocabulary_size: int = 0
    max_source_length: int = 0
    max_target_length: int = 0
    source_lowercase: bool = True
    target_lowercase: bool = False
    french_spacing: bool = False
    start_id: int = 2
    end_id: int = 3
    train_examples: int = 0
    test_examples: int = 0
    validation_examples: int = 0
    splits: dict = dataclasses.field(default_factory=dict, hash=False)
    validation_ds: object = dataclasses.field(default=None, repr=False, compare=False)
    test_texts: object = dataclasses.field(default=None, repr=False, compare=False)

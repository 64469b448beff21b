"""What `load_text_classification` loaded."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class TextDatasetInfo:
    """A text-classification dataset as loaded, with its vocabulary.

    Args:
        name: the tensorflow-datasets name, e.g. `"zoo_sst2"`.
        num_classes: number of classes of the `label` feature.
        class_names: the label names, index order.
        text_features: the text features joined (with a space) into each
            example's text, e.g. `("title", "description")`.
        vectorizer: the `keras.layers.TextVectorization` adapted on the
            training split (the validation and test splits never shape it).
        vocabulary_size: size of its vocabulary (padding and unknown
            included): the token models' `vocabulary_size`.
        max_length: the most tokens of a text that a model reads.
        train_examples: examples in the training dataset.
        test_examples: examples in the test dataset.
        validation_examples: examples held out for validation (0 without).
        train_split: the tfds split read for training.
        test_split: the tfds split read for testing.
        validation_split: the tfds split held out for validation, or `None`.
        validation_ds: the batched validation `tf.data.Dataset`, or `None`.
    """

    name: str
    num_classes: int
    class_names: tuple
    text_features: tuple
    vectorizer: object = dataclasses.field(repr=False, compare=False)
    vocabulary_size: int = 0
    max_length: int = 0
    train_examples: int = 0
    test_examples: int = 0
    validation_examples: int = 0
    train_split: str = "train"
    test_split: str = "test"
    validation_split: str | None = None
    validation_ds: object = dataclasses.field(default=None, repr=False, compare=False)

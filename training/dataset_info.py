"""What `load_image_classification` loaded."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """An image-classification dataset as loaded.

    Args:
        name: the tensorflow-datasets name, e.g. `"mnist"`.
        num_classes: number of classes of the `label` feature.
        input_shape: `(height, width, channels)` of the batched images.
        class_names: the label names, index order.
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
    input_shape: tuple
    class_names: tuple
    train_examples: int
    test_examples: int
    validation_examples: int = 0
    train_split: str = "train"
    test_split: str = "test"
    validation_split: str | None = None
    validation_ds: object = dataclasses.field(default=None, repr=False, compare=False)

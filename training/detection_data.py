"""Object-detection datasets by name: letterboxed images and CenterNet targets.

Any tensorflow-datasets dataset with an `image` feature and `objects` of
`bbox` (normalised `[ymin, xmin, ymax, xmax]`) and `label` (`ClassLabel`)
loads: the project's `zoo_raccoon` and `zoo_coco128`
(`training.detection_datasets`), and the catalog's `voc` and `coco` layouts.

Each example becomes what `zoo.attention_detector` trains on:

1. training only: box augmentation of the original image and its boxes
   (`training.box_augmentation.augment_example`, seeded per example);
2. `letterbox` to the model's `size` x `size` input (aspect ratio kept,
   border `PAD_VALUE`), the boxes mapped with it;
3. the image as float32 pixel values in `[0, 255]` (the detector rescales
   them itself), and `zoo.detection.targets.centernet_targets` of the boxes
   on the `size / OUTPUT_STRIDE` grid: a dict of `"heatmap"`, `"size"` and
   `"offset"`, the `y` of `model.fit` as is.

Training batches repeat without end (a run's length is its epochs times its
steps per epoch) and are shuffled: the examples, reshuffled every pass
through the split, with `seed`; the augmentation draws come from a
stream seeded with `seed` too, so the same seed gives the same batches.
Evaluation batches keep the file order (the builders' examples are in
file-name order) and are never augmented; `ground_truth` reads the same
examples in the same order, on the original images, for
`training.detection_metrics.coco_metrics`.
"""

import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from layers.validation import check_int, check_positive_int
from training.box_augmentation import augment_dataset, check_box_augmentation
from training.box_augmentation import letterbox as letterbox_boxes
from training.data_source import get_builder, prepare_builder
from training.dataset_error import DatasetError
from training.splits import check_fraction, num_examples, resolve_splits
from zoo.attention_detector.model import OUTPUT_STRIDE
from zoo.detection.targets import centernet_targets

# The letterbox border (black), in training and serving alike.
PAD_VALUE = 0


@dataclasses.dataclass(frozen=True)
class DetectionDatasetInfo:
    """An object-detection dataset as loaded.

    Args:
        name: the tensorflow-datasets name, e.g. `"zoo_raccoon"`.
        num_classes: number of classes of `objects/label`.
        class_names: the label names, index order (class 0 is a real class).
        input_size: the side of the letterboxed square images.
        train_examples: images in the training split.
        test_examples: images in the test split.
        validation_examples: images held out for validation (0 without).
        train_split: the tfds split read for training.
        test_split: the tfds split read for testing.
        validation_split: the tfds split held out for validation, or `None`.
        validation_ds: the batched validation `tf.data.Dataset`, or `None`.
        builder: the prepared `tfds.core.DatasetBuilder` (for
            `evaluation_data` of another split).
    """

    name: str
    num_classes: int
    class_names: tuple
    input_size: int
    train_examples: int
    test_examples: int
    validation_examples: int = 0
    train_split: str = "train"
    test_split: str = "test"
    validation_split: str | None = None
    validation_ds: object = dataclasses.field(default=None, repr=False, compare=False)
    builder: object = dataclasses.field(default=None, repr=False, compare=False)


def detection_label_of(name, builder):
    """The `objects/label` `ClassLabel` of a detection dataset.

    Raises:
        DatasetError: no `image`, or no `objects` with `bbox` and a
            `ClassLabel` `label`.
    """
    features = builder.info.features
    objects = features["objects"] if "objects" in features.keys() else None
    keys = list(getattr(objects, "feature", objects or {}).keys()) if objects else []
    label = objects["label"] if "label" in keys else None
    if (
        "image" not in features.keys()
        or "bbox" not in keys
        or not isinstance(label, tfds.features.ClassLabel)
    ):
        raise DatasetError(
            f"Dataset {name!r} is not an object-detection dataset: it needs an "
            "`image` feature and `objects` with `bbox` and a ClassLabel `label`; "
            f"it has {list(features.keys())}."
        )
    return label


def prepare_image(image, size):
    """A model input from one image: letterboxed, float32 in `[0, 255]`.

    Args:
        image: `(height, width, 3)` uint8 tensor or array.
        size: positive int, the model's input side.

    Returns:
        A `(size, size, 3)` float32 tensor.
    """
    image, _ = letterbox_boxes(image, tf.zeros((0, 4)), size, PAD_VALUE)
    return tf.cast(image, tf.float32)


def _select(example):
    """The image and the boxes and labels of a builder's example."""
    objects = example["objects"]
    return {
        "image": example["image"],
        "objects": {
            "bbox": tf.cast(objects["bbox"], tf.float32),
            "label": tf.cast(objects["label"], tf.int32),
        },
    }


def _model_example(features, size, num_classes):
    """`(letterboxed uint8 image, targets)` of one (augmented) example."""
    objects = features["objects"]
    image, boxes = letterbox_boxes(features["image"], objects["bbox"], size, PAD_VALUE)
    grid = size // OUTPUT_STRIDE
    targets = centernet_targets(boxes, objects["label"], (grid, grid), num_classes)
    return image, targets


def _read(builder, split):
    # In file order: the project's builders are ordered (`disable_shuffling`),
    # which tfds refuses to read with `shuffle_files`; training shuffles the
    # examples instead.
    read_config = tfds.ReadConfig(try_autocache=False)
    ds = builder.as_dataset(split=split, shuffle_files=False, read_config=read_config)
    return ds.map(_select, num_parallel_calls=tf.data.AUTOTUNE)


def _finish(ds, batch_size, drop_remainder):
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(
        lambda image, targets: (tf.cast(image, tf.float32), targets),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def training_batches(
    builder,
    split,
    size,
    num_classes,
    batch_size,
    seed=0,
    augmentation=None,
    shuffle_buffer=1024,
):
    """Endless shuffled, augmented batches of `(images, targets)` for `fit`.

    The decoded examples are cached in memory (as stored, uint8); each pass
    through them is reshuffled, then augmented, letterboxed and turned into
    targets. Batches are full (`drop_remainder`): the stream is endless, so
    nothing is dropped, and every step has the same shapes.

    Args:
        builder: a prepared `tfds.core.DatasetBuilder` of a detection dataset.
        split: the tfds split spec to read.
        size: the model's input side (a multiple of `OUTPUT_STRIDE`).
        num_classes: number of classes.
        batch_size: images per batch.
        seed: seed of the example shuffle and of the augmentation.
        augmentation: `training.box_augmentation` settings, or `None`.
        shuffle_buffer: size of the example shuffle buffer.

    Returns:
        A `tf.data.Dataset` of `(float32 (B, size, size, 3) in [0, 255],
        {"heatmap": (B, g, g, C), "size": (B, g, g, 3), "offset": (B, g, g,
        3)})` with `g = size / OUTPUT_STRIDE`.
    """
    augmentation = check_box_augmentation(augmentation)
    ds = _read(builder, split).cache()
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = augment_dataset(ds.repeat(), augmentation, seed)
    ds = ds.map(
        lambda features: _model_example(features, size, num_classes),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _finish(ds, batch_size, drop_remainder=True)


def evaluation_batches(builder, split, size, num_classes, batch_size):
    """Batches of `(images, targets)` of `split` in file order, not augmented.

    One pass; the last batch may be smaller. The letterboxed examples are
    cached in memory, so a second pass (a loss after the mAP) reads nothing.
    Same layout as `training_batches`.
    """
    ds = _read(builder, split).map(
        lambda features: _model_example(features, size, num_classes),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return _finish(ds.cache(), batch_size, drop_remainder=False)


def ground_truth(builder, split):
    """The ground truth of `split`'s images, in `evaluation_batches`' order.

    Returns:
        A list with one dict per image, as `coco_metrics` takes it:
        `"boxes"` `(N, 4)` normalised to the original image, `"labels"`
        `(N,)`, `"height"` and `"width"` (pixels of the original image) and,
        when the dataset has it, `"is_crowd"`.
    """

    def select(example):
        objects = example["objects"]
        truth = {
            "boxes": tf.cast(objects["bbox"], tf.float32),
            "labels": tf.cast(objects["label"], tf.int32),
            "shape": tf.shape(example["image"])[:2],
        }
        if "is_crowd" in objects:
            truth["is_crowd"] = objects["is_crowd"]
        return truth

    ds = builder.as_dataset(split=split, shuffle_files=False)
    truths = []
    for item in tfds.as_numpy(ds.map(select, num_parallel_calls=tf.data.AUTOTUNE)):
        height, width = (int(v) for v in item.pop("shape"))
        truths.append({**item, "height": height, "width": width})
    return truths


@dataclasses.dataclass(frozen=True)
class EvaluationData:
    """A split ready for `coco_metrics`: batches and ground truth, in order.

    Args:
        split: the tfds split spec read.
        batches: `evaluation_batches` of it.
        ground_truth: `ground_truth` of it (one entry per image, same order).
    """

    split: str
    batches: object = dataclasses.field(repr=False)
    ground_truth: list = dataclasses.field(repr=False)

    @property
    def sizes(self):
        """`(N, 2)` int array of the original images' `(height, width)`."""
        return np.array(
            [(t["height"], t["width"]) for t in self.ground_truth], np.int32
        ).reshape(-1, 2)


def evaluation_data(info, split, batch_size=8):
    """`EvaluationData` of `split` of a loaded dataset (`info.builder`)."""
    return EvaluationData(
        split=split,
        batches=evaluation_batches(
            info.builder, split, info.input_size, info.num_classes, batch_size
        ),
        ground_truth=ground_truth(info.builder, split),
    )


def load_detection(
    name,
    input_size,
    batch_size=8,
    data_dir=None,
    manual_dir=None,
    seed=0,
    shuffle_buffer=1024,
    validation_split=None,
    train_split=None,
    test_split=None,
    augmentation=None,
):
    """Loads an object-detection dataset as batches for a CenterNet detector.

    Args:
        name: a tensorflow-datasets name with `image` and `objects` (`bbox`,
            `label`), e.g. `"zoo_raccoon"`, `"zoo_coco128"`.
        input_size: the model's input side, a multiple of `OUTPUT_STRIDE`
            (the variant's `input_shape[0]`).
        batch_size: images per batch.
        data_dir: where prepared datasets live (default `$TFDS_DATA_DIR`).
        manual_dir: folder of the original files (default `$ZOO_MANUAL_DIR`),
            e.g. `../shared/data/raccoon`.
        seed: seed of the shuffles and of the augmentation.
        shuffle_buffer: size of the example shuffle buffer.
        validation_split: optional fraction in (0, 1) of the training split
            held out (its last images) as `info.validation_ds`.
        train_split: tfds split read for training (default `"train"`).
        test_split: tfds split read for testing (default `"test"`, else
            `"validation"`: raccoon's test, COCO128's validation).
        augmentation: `training.box_augmentation` settings of the training
            batches (a variant's `training["augmentation"]`), or `None`.

    Returns:
        `(train_ds, test, info)`: the endless `training_batches`, the
        `EvaluationData` of the test split, and a `DetectionDatasetInfo`.

    Raises:
        DatasetError: unknown or unsuitable dataset, or data missing.
        ValueError: a bad size, batch size, seed or augmentation setting.
    """
    input_size = check_positive_int("input_size", input_size)
    if input_size % OUTPUT_STRIDE:
        raise ValueError(
            f"Argument `input_size` must be a multiple of {OUTPUT_STRIDE}. "
            f"Received: input_size={input_size}"
        )
    batch_size = check_positive_int("batch_size", batch_size)
    shuffle_buffer = check_positive_int("shuffle_buffer", shuffle_buffer)
    validation_split = check_fraction(validation_split)
    seed = check_int("seed", seed)
    augmentation = check_box_augmentation(augmentation)
    builder = get_builder(name, data_dir)
    label = detection_label_of(name, builder)
    builder = prepare_builder(builder, name, manual_dir)
    train_split, test_split, val_split = resolve_splits(
        builder, train_split, test_split, validation_split
    )
    num_classes = int(label.num_classes)
    train_ds = training_batches(
        builder,
        train_split,
        input_size,
        num_classes,
        batch_size,
        seed,
        augmentation,
        shuffle_buffer,
    )
    val_ds = None
    if val_split is not None:
        val_ds = evaluation_batches(
            builder, val_split, input_size, num_classes, batch_size
        )
    info = DetectionDatasetInfo(
        name=builder.name,
        num_classes=num_classes,
        class_names=tuple(label.names),
        input_size=input_size,
        train_examples=num_examples(train_split, builder),
        test_examples=num_examples(test_split, builder),
        validation_examples=0
        if val_split is None
        else num_examples(val_split, builder),
        train_split=train_split,
        test_split=test_split,
        validation_split=val_split,
        validation_ds=val_ds,
        builder=builder,
    )
    return train_ds, evaluation_data(info, test_split, batch_size), info

"""Image-classification datasets from the tensorflow-datasets catalog, by name.

Any catalog dataset with an `image` feature and a `label` `ClassLabel` feature
loads as batches of `(float32 images in [0, 1], int32 labels)`.

The data come from a prepared copy in the data directory (`data_dir`, else
`$TFDS_DATA_DIR`), else offline from a folder of original files (`manual_dir`,
else `$ZOO_MANUAL_DIR`), else from tfds' download: see `training.data_source`.
Anything missing raises `DatasetError` with the fix in its message.
"""

import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from layers.validation import check_int, check_positive_int
from training.augmentation import augment_dataset, check_augmentation
from training.data_source import get_builder, prepare, prepare_builder
from training.dataset_error import DatasetError
from training.dataset_info import DatasetInfo
from training.splits import check_fraction, num_examples, resolve_splits, split_off

__all__ = ["DatasetError", "load_image_classification", "prepare", "split_off"]


def _check_features(name, builder):
    features = builder.info.features
    keys = list(features.keys())
    if "image" not in keys or "label" not in keys:
        raise DatasetError(
            f"Dataset {name!r} is not an image-classification dataset: it needs "
            f"`image` and `label` features; it has {keys}."
        )
    label = features["label"]
    if not isinstance(label, tfds.features.ClassLabel):
        raise DatasetError(
            f"Dataset {name!r}: its `label` feature must be a ClassLabel. "
            f"Received: {type(label).__name__}"
        )
    return features["image"], label


def _image_shape(name, image, image_size):
    height, width, channels = image.shape
    if channels is None:
        raise DatasetError(f"Dataset {name!r} has images of unknown channel count.")
    if image_size is not None:
        height, width = (check_positive_int("image_size", int(s)) for s in image_size)
    elif height is None or width is None:
        raise DatasetError(
            f"Dataset {name!r} has images of varying size {image.shape}: pass "
            "`image_size=(height, width)` to resize them."
        )
    return int(height), int(width), int(channels)


def _pipeline(
    builder, split, training, batch_size, seed, shuffle_buffer, cache, size, augment
):
    image_dtype = np.dtype(builder.info.features["image"].np_dtype)
    integer = np.issubdtype(image_dtype, np.integer)
    scale = 1.0 / np.iinfo(image_dtype).max if integer else 1.0
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    ds = builder.as_dataset(
        split=split, shuffle_files=training, read_config=read_config
    )

    def select(example):
        image = example["image"]
        if size is not None:
            image = tf.image.resize(image, size, antialias=True)
            image = tf.cast(tf.round(image), image_dtype)
        return {"image": image, "label": tf.cast(example["label"], tf.int32)}

    ds = ds.map(select, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache() if cache is True else ds.cache(os.fspath(cache))
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        ds = augment_dataset(ds, augment, seed)
    ds = ds.batch(batch_size)
    ds = ds.map(
        lambda batch: (tf.cast(batch["image"], tf.float32) * scale, batch["label"]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def load_image_classification(
    name,
    batch_size=128,
    data_dir=None,
    manual_dir=None,
    seed=0,
    shuffle_buffer=10_000,
    validation_split=None,
    train_split=None,
    test_split=None,
    image_size=None,
    cache=True,
    augmentation=None,
):
    """Loads a catalog image-classification dataset as batched `tf.data` pipelines.

    Training batches are shuffled (files with `seed`, examples with a
    `shuffle_buffer` reshuffled every epoch, same order for the same seed);
    test and validation batches keep the file order. Examples are cached as
    stored (uint8), augmented (training batches only, see
    `training.augmentation`) and scaled to float32 after batching.

    Args:
        name: a tensorflow-datasets name with `image` and `label` features,
            e.g. `"mnist"`, `"cifar10"`, `"fashion_mnist"`.
        batch_size: examples per batch.
        data_dir: where prepared datasets live (default `$TFDS_DATA_DIR`, else
            tfds' default `~/tensorflow_datasets`).
        manual_dir: folder of the original files for offline preparation
            (default `$ZOO_MANUAL_DIR`; `data/mnist` holds MNIST's).
        seed: seed of the file and example shuffles.
        shuffle_buffer: size of the example shuffle buffer.
        validation_split: optional fraction in (0, 1) of the training split
            held out (its last examples) as `info.validation_ds`.
        train_split: tfds split read for training (default `"train"`), e.g.
            `"train[:512]"`.
        test_split: tfds split read for testing (default `"test"`, else
            `"validation"`, else the last 10% of the training split).
        image_size: optional `(height, width)` to resize to (needed for
            datasets of varying image size).
        cache: `True` to cache in memory, `False` not to, or a file path.
        augmentation: optional dict of augmentation settings for the
            training batches (a variant's `training["augmentation"]`, e.g.
            `{"translation": 0.08}`; see `training.augmentation`).

    Returns:
        `(train_ds, test_ds, info)`: batches of `(images (B, H, W, C) float32
        in [0, 1], labels (B,) int32)`, and a `DatasetInfo`.

    Raises:
        DatasetError: unknown or unsuitable dataset, or data missing.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    shuffle_buffer = check_positive_int("shuffle_buffer", shuffle_buffer)
    validation_split = check_fraction(validation_split)
    seed = check_int("seed", seed)
    augmentation = check_augmentation(augmentation)
    builder = get_builder(name, data_dir)
    image, label = _check_features(name, builder)
    shape = _image_shape(name, image, image_size)
    builder = prepare_builder(builder, name, manual_dir)
    train_split, test_split, val_split = resolve_splits(
        builder, train_split, test_split, validation_split
    )
    counts = [
        0 if split is None else num_examples(split, builder)
        for split in (train_split, test_split, val_split)
    ]
    size = None if image_size is None else shape[:2]
    args = (batch_size, seed, shuffle_buffer, cache, size)
    train_ds = _pipeline(builder, train_split, True, *args, augmentation)
    test_ds = _pipeline(builder, test_split, False, *args, None)
    val_ds = None
    if val_split is not None:
        val_ds = _pipeline(builder, val_split, False, *args, None)
    info = DatasetInfo(
        name=builder.name,
        num_classes=int(label.num_classes),
        input_shape=shape,
        class_names=tuple(label.names),
        train_examples=counts[0],
        test_examples=counts[1],
        validation_examples=counts[2],
        train_split=train_split,
        test_split=test_split,
        validation_split=val_split,
        validation_ds=val_ds,
    )
    return train_ds, test_ds, info

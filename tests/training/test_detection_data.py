"""`training.detection_data`: letterboxed batches and CenterNet targets.

Raccoon is prepared once per module into a temporary data directory (1-5 s)
from the shared data folder beside the repository (`../shared/data`); the
batches are 64 x 64 (a 16 x 16 grid) to stay fast.
"""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from training.box_augmentation import letterbox
from training.data_source import get_builder, prepare
from training.dataset_error import DatasetError
from training.detection_data import (
    PAD_VALUE,
    detection_label_of,
    evaluation_batches,
    ground_truth,
    load_detection,
    prepare_image,
    training_batches,
)
from zoo.attention_detector.model import OUTPUT_STRIDE
from zoo.detection.targets import centernet_targets

RACCOON = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "raccoon"
SIZE = 64
AUGMENTATION = {"flip": True, "crop": 0.5, "brightness": 0.2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfds")
    assert RACCOON.resolve().is_dir(), f"shared data folder {RACCOON} is missing"
    prepare("zoo_raccoon", str(folder), str(RACCOON.resolve()))
    return str(folder)


@pytest.fixture(scope="module")
def builder(data_dir):
    return prepare("zoo_raccoon", data_dir)


def _expected(example):
    """The letterboxed image and targets of a builder's example, directly."""
    image, boxes = letterbox(example["image"], example["objects"]["bbox"], SIZE)
    grid = SIZE // OUTPUT_STRIDE
    targets = centernet_targets(boxes, example["objects"]["label"], (grid, grid), 1)
    return image.numpy(), {k: v.numpy() for k, v in targets.items()}


def _unbatched(ds, count=None):
    items = []
    for images, targets in ds:
        for i in range(images.shape[0]):
            items.append(
                (images[i].numpy(), {k: v[i].numpy() for k, v in targets.items()})
            )
            if count is not None and len(items) == count:
                return items
    return items


def test_targets_are_centernet_targets_of_the_letterboxed_boxes(builder):
    split = "test[:12]"
    examples = list(builder.as_dataset(split=split, shuffle_files=False))
    batches = evaluation_batches(builder, split, SIZE, 1, batch_size=5)
    shapes = [tuple(images.shape) for images, _ in batches]
    assert shapes == [(5, SIZE, SIZE, 3)] * 2 + [(2, SIZE, SIZE, 3)]
    got = _unbatched(batches)
    assert len(got) == len(examples)
    grid = SIZE // OUTPUT_STRIDE
    for (image, targets), example in zip(got, examples, strict=True):
        expected_image, expected = _expected(example)
        assert image.dtype == np.float32
        np.testing.assert_array_equal(image, expected_image.astype(np.float32))
        assert targets["heatmap"].shape == (grid, grid, 1)
        assert targets["size"].shape == targets["offset"].shape == (grid, grid, 3)
        for key in ("heatmap", "size", "offset"):
            np.testing.assert_allclose(targets[key], expected[key], atol=1e-6)
        # One positive (heatmap 1, mask 1) per raccoon, at the same cell.
        objects = len(example["objects"]["label"])
        assert int((targets["heatmap"] == 1.0).sum()) <= objects
        assert targets["size"][..., 2].sum() >= 1


def test_images_are_pixels_letterboxed_with_a_black_border(builder):
    (image, _), *_ = _unbatched(evaluation_batches(builder, "test[:1]", SIZE, 1, 1))
    assert 0.0 <= image.min() and image.max() <= 255.0 and image.max() > 1.0
    # raccoon-1... is wider or taller than square: a border of PAD_VALUE.
    assert PAD_VALUE == 0
    example = next(iter(builder.as_dataset(split="test[:1]", shuffle_files=False)))
    height, width = example["image"].shape[:2]
    border = image[0] if height < width else image[:, 0]
    np.testing.assert_array_equal(border, 0.0)
    np.testing.assert_array_equal(prepare_image(example["image"], SIZE).numpy(), image)


def test_training_batches_without_augmentation_hold_the_same_examples(builder):
    split = "train[:10]"
    reference = {
        _expected(e)[0].tobytes(): _expected(e)[1]
        for e in builder.as_dataset(split=split, shuffle_files=False)
    }
    ds = training_batches(builder, split, SIZE, 1, batch_size=4, seed=3)
    got = _unbatched(ds, count=20)  # two passes through the 10 images
    seen = [image.astype(np.uint8).tobytes() for image, _ in got]
    assert set(seen) == set(reference)
    assert sorted(seen[:10]) == sorted(seen[10:])  # each pass: all, once
    for key, (_, targets) in zip(seen, got, strict=True):
        for name, value in targets.items():
            np.testing.assert_allclose(value, reference[key][name], atol=1e-6)


def test_training_batches_are_seeded(builder):
    def first(seed, augmentation=AUGMENTATION):
        ds = training_batches(builder, "train[:16]", SIZE, 1, 4, seed, augmentation)
        return [image for image, _ in _unbatched(ds, count=8)]

    a, b, c = first(0), first(0), first(1)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_augmentation_only_in_training(data_dir):
    def load(augmentation):
        return load_detection(
            "zoo_raccoon",
            SIZE,
            batch_size=4,
            data_dir=data_dir,
            train_split="train[:8]",
            test_split="test[:6]",
            augmentation=augmentation,
        )

    plain_train, plain_test, _ = load(None)
    aug_train, aug_test, info = load(AUGMENTATION)
    assert info.test_split == "test[:6]" and info.test_examples == 6
    for (x, tx), (y, ty) in zip(
        _unbatched(plain_test.batches), _unbatched(aug_test.batches), strict=True
    ):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(tx["heatmap"], ty["heatmap"])
    plain = [x for x, _ in _unbatched(plain_train, count=8)]
    augmented = [x for x, _ in _unbatched(aug_train, count=8)]
    # Same seed, same shuffle: the augmentation is what differs.
    pairs = zip(plain, augmented, strict=True)
    assert sum(not np.array_equal(x, y) for x, y in pairs) >= 4


def test_evaluation_order_is_fixed_and_matches_the_ground_truth(builder):
    split = "test"
    first = _unbatched(evaluation_batches(builder, split, SIZE, 1, 8))
    second = _unbatched(evaluation_batches(builder, split, SIZE, 1, 3))
    assert len(first) == len(second) == 40
    for (x, _), (y, _) in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)
    truth = ground_truth(builder, split)
    examples = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
    names = [e["image/filename"].decode() for e in examples]
    assert names == sorted(names)  # the builder's file-name order
    for t, example in zip(truth, examples, strict=True):
        assert (t["height"], t["width"]) == example["image"].shape[:2]
        np.testing.assert_array_equal(t["boxes"], example["objects"]["bbox"])
        np.testing.assert_array_equal(t["labels"], example["objects"]["label"])
    # Boxes of the original images, letterboxed, give the batches' targets.
    for t, (_, targets), example in zip(truth, first, examples, strict=True):
        _, boxes = letterbox(example["image"], tf.constant(t["boxes"]), SIZE)
        grid = SIZE // OUTPUT_STRIDE
        expected = centernet_targets(boxes, t["labels"], (grid, grid), 1)
        np.testing.assert_allclose(targets["size"], expected["size"], atol=1e-6)


def test_load_reports_the_dataset(data_dir):
    _, test, info = load_detection("zoo_raccoon", SIZE, data_dir=data_dir)
    assert (info.name, info.num_classes, info.class_names) == (
        "zoo_raccoon",
        1,
        ("raccoon",),
    )
    assert (info.train_examples, info.test_examples) == (160, 40)
    assert test.split == "test" and test.sizes.shape == (40, 2)


def test_bad_arguments(data_dir, mnist_dir):
    with pytest.raises(ValueError, match="multiple of 4"):
        load_detection("zoo_raccoon", 66, data_dir=data_dir)
    with pytest.raises(ValueError, match="unknown keys"):
        load_detection("zoo_raccoon", SIZE, data_dir=data_dir, augmentation={"x": 1})
    with pytest.raises(DatasetError, match="not an object-detection dataset"):
        detection_label_of("mnist", get_builder("mnist", mnist_dir))

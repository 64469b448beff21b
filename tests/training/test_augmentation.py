"""Augmentation in the training pipeline: hand-checked shifts, seeds, epochs."""

import numpy as np
import pytest
import tensorflow as tf

from training.augmentation import (
    augment_dataset,
    augment_example,
    check_augmentation,
    random_translation,
)
from training.data import load_image_classification


def _dot_images(n=16, size=10):
    """Images with one bright pixel at (4, 5) and a label."""
    images = np.zeros((n, size, size, 1), np.uint8)
    images[:, 4, 5, 0] = 255
    return tf.data.Dataset.from_tensor_slices(
        {"image": images, "label": np.arange(n, dtype=np.int32)}
    )


def _where(image):
    ys, xs, _ = np.nonzero(image)
    return list(zip(ys.tolist(), xs.tolist(), strict=True))


def test_translation_moves_the_pixel_by_whole_pixels_within_range():
    # 10 pixels * 0.2: shifts of -2..2 in each direction.
    ds = augment_dataset(_dot_images(64), {"translation": 0.2}, seed=3)
    shifts = set()
    for example in ds.as_numpy_iterator():
        (where,) = _where(example["image"])
        dy, dx = where[0] - 4, where[1] - 5
        assert -2 <= dy <= 2 and -2 <= dx <= 2
        assert example["image"].sum() == 255  # nothing else changed
        shifts.add((dy, dx))
    assert len(shifts) > 10  # the shifts vary


def test_shift_past_the_border_fills_zeros():
    image = np.zeros((4, 4, 1), np.uint8)
    image[0, 0, 0] = 9
    image[3, 3, 0] = 7
    padded = np.pad(image[..., 0], 2)
    # 4 * 0.5 = 2 pixels at most: each result is a 4x4 window of the image
    # padded with 2 zeros (no wrap-around), and shifts can push a pixel out.
    windows = [padded[y : y + 4, x : x + 4] for y in range(5) for x in range(5)]
    lost = 0
    for i in range(50):
        out = random_translation({"image": image}, 0.5, tf.constant([i, 0]))
        out = out["image"].numpy()
        assert out.shape == (4, 4, 1) and out.dtype == np.uint8
        assert any(np.array_equal(out[..., 0], w) for w in windows)
        lost += out.sum() < 16
    assert lost > 0


def test_same_seed_same_epochs_and_each_epoch_differs():
    def epochs(seed, count=2):
        ds = augment_dataset(_dot_images(), {"translation": 0.2}, seed=seed)
        return [
            [_where(e["image"]) for e in ds.as_numpy_iterator()] for _ in range(count)
        ]

    first, second = epochs(0)
    assert epochs(0) == [first, second]
    assert first != second
    assert epochs(1)[0] != first


def test_labels_and_other_features_pass_through():
    ds = augment_dataset(_dot_images(8), {"translation": 0.2}, seed=0)
    labels = [int(e["label"]) for e in ds.as_numpy_iterator()]
    assert labels == list(range(8))


def test_no_settings_is_the_identity():
    ds = _dot_images(4)
    assert augment_dataset(ds, None, seed=0) is ds
    assert augment_dataset(ds, {}, seed=0) is ds
    image = np.ones((3, 3, 1), np.uint8)
    out = augment_example({"image": image}, {}, tf.constant([0, 0]))
    np.testing.assert_array_equal(out["image"], image)


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"rotation": 0.1}, "unknown keys"),
        ({"translation": 0.9}, "translation"),
        ({"translation": -0.1}, "translation"),
        ({"translation": "a"}, "translation"),
        (0.1, "augmentation"),
    ],
)
def test_bad_settings_name_themselves(settings, match):
    with pytest.raises(ValueError, match=match):
        check_augmentation(settings)


def test_only_training_batches_are_augmented(mnist_dir):
    def load(augmentation):
        return load_image_classification(
            "mnist",
            batch_size=64,
            data_dir=mnist_dir,
            train_split="train[:64]",
            test_split="test[:64]",
            augmentation=augmentation,
            validation_split=0.25,
        )

    plain_train, plain_test, plain_info = load(None)
    train, test, info = load({"translation": 0.1})
    x_plain = np.concatenate([x for x, _ in plain_train.as_numpy_iterator()])
    x_aug = np.concatenate([x for x, _ in train.as_numpy_iterator()])
    # Same seed, same shuffle: the same digits, shifted.
    assert x_plain.shape == x_aug.shape
    assert not np.array_equal(x_plain, x_aug)
    np.testing.assert_allclose(
        x_plain.sum(axis=(1, 2, 3)), x_aug.sum(axis=(1, 2, 3)), rtol=0.3
    )
    for plain, augmented in (
        (plain_test, test),
        (plain_info.validation_ds, info.validation_ds),
    ):
        a = np.concatenate([x for x, _ in plain.as_numpy_iterator()])
        b = np.concatenate([x for x, _ in augmented.as_numpy_iterator()])
        np.testing.assert_array_equal(a, b)

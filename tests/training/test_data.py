import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.training.mnist_cache import MANUAL_DIR, read_idx
from training import data_source
from training.data import DatasetError, load_image_classification


class TinyColours(tfds.core.GeneratorBasedBuilder):
    """40 RGB 8x8 images whose pixels all equal their index; only a train split."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 3)),
                    "label": tfds.features.ClassLabel(names=["red", "green", "blue"]),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        for i in range(40):
            yield i, {"image": np.full((8, 8, 3), 5 * i, np.uint8), "label": i % 3}


def _collect(ds):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(images), np.concatenate(labels)


def _keys(images):
    return {np.round(im * 255).astype(np.uint8).tobytes() for im in images}


def test_mnist_offline_matches_original_files(mnist_dir):
    train, test, info = load_image_classification(
        "mnist",
        batch_size=64,
        data_dir=mnist_dir,
        manual_dir=MANUAL_DIR,
        train_split="train[:512]",
        test_split="test[:200]",
    )
    assert (info.name, info.num_classes, info.input_shape) == ("mnist", 10, (28, 28, 1))
    assert (info.train_examples, info.test_examples) == (512, 200)
    assert info.validation_ds is None and info.validation_examples == 0
    x, y = next(iter(train))
    assert x.shape == (64, 28, 28, 1) and x.dtype == "float32" and y.dtype == "int32"
    images, labels = _collect(test)
    assert images.shape == (200, 28, 28, 1) and labels.shape == (200,)
    assert images.min() >= 0.0 and images.max() <= 1.0
    raw_images, raw_labels = read_idx("test")
    pairs = zip(raw_images, raw_labels, strict=True)
    label_of = {im.tobytes(): int(lb) for im, lb in pairs}
    for image, label in zip(images, labels, strict=True):
        pixels = np.round(image[..., 0] * 255).astype(np.uint8)
        np.testing.assert_allclose(image[..., 0] * 255, pixels, atol=1e-4)
        assert label_of[pixels.tobytes()] == label


def test_shuffle_is_seeded_and_reshuffles(mnist_dir):
    def first_labels(seed, epochs=1):
        ds, _, _ = load_image_classification(
            "mnist", 32, mnist_dir, seed=seed, train_split="train[:256]"
        )
        return [_collect(ds)[1] for _ in range(epochs)]

    a1, a2 = first_labels(0, epochs=2)
    (b1,) = first_labels(0)
    (c1,) = first_labels(1)
    np.testing.assert_array_equal(a1, b1)
    assert not np.array_equal(a1, c1)
    assert not np.array_equal(a1, a2)
    assert sorted(a1) == sorted(a2) == sorted(c1)


def test_validation_split_holds_out_disjoint_examples(mnist_dir):
    train, _, info = load_image_classification(
        "mnist", 50, mnist_dir, validation_split=0.25, train_split="train[100:300]"
    )
    assert (info.train_examples, info.validation_examples) == (150, 50)
    assert info.validation_split == "train[250:300]"
    train_images, _ = _collect(train)
    val_images, _ = _collect(info.validation_ds)
    assert len(train_images) == 150 and len(val_images) == 50
    assert not _keys(train_images) & _keys(val_images)


def test_any_catalog_dataset_and_carved_test_split(tmp_path):
    train, test, info = load_image_classification("tiny_colours", 8, tmp_path)
    assert info.class_names == ("red", "green", "blue")
    assert (info.num_classes, info.input_shape) == (3, (8, 8, 3))
    assert (info.train_examples, info.test_examples) == (36, 4)
    assert info.test_split == "train[36:40]"
    seen = []
    for ds in (train, test):
        images, labels = _collect(ds)
        index = np.round(images[:, 0, 0, 0] * 255 / 5).astype(int)
        expected = (5 * index / 255.0)[:, None, None, None] * np.ones(images.shape)
        np.testing.assert_allclose(images, expected, rtol=1e-6)
        np.testing.assert_array_equal(labels, index % 3)
        seen += list(index)
    assert sorted(seen) == list(range(40))
    _, resized, info = load_image_classification(
        "tiny_colours", 8, tmp_path, image_size=(4, 5)
    )
    assert info.input_shape == (4, 5, 3)
    assert next(iter(resized))[0].shape == (4, 4, 5, 3)


def test_unknown_dataset_suggests_names():
    with pytest.raises(DatasetError, match="Unknown dataset 'mnsit'.*mnist"):
        load_image_classification("mnsit")


def test_non_image_dataset_is_rejected(tmp_path):
    with pytest.raises(DatasetError, match="not an image-classification"):
        load_image_classification("imdb_reviews", data_dir=tmp_path)


def test_missing_manual_files_name_them(tmp_path):
    with pytest.raises(DatasetError, match="lacks t10k-images-idx3-ubyte.gz"):
        load_image_classification("mnist", data_dir=tmp_path / "d", manual_dir=tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_image_classification("mnist", data_dir=tmp_path, manual_dir=tmp_path / "x")


def test_manual_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_MANUAL_DIR", str(tmp_path / "originals"))
    with pytest.raises(DatasetError, match="originals does not exist"):
        load_image_classification("mnist", data_dir=tmp_path)


def test_data_dir_from_environment(mnist_dir, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", mnist_dir)
    offline = lambda *a, **k: pytest.fail("went to the network")  # noqa: E731
    monkeypatch.setattr(data_source, "_can_reach", offline)
    _, _, info = load_image_classification("mnist", test_split="test[:10]")
    assert info.test_examples == 10


def test_no_network_and_no_manual_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(data_source, "_can_reach", lambda *a, **k: False)
    with pytest.raises(DatasetError, match="cannot be downloaded.*manual_dir"):
        load_image_classification("mnist", data_dir=tmp_path)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"shuffle_buffer": -1}, "shuffle_buffer"),
        ({"validation_split": 1.0}, "validation_split"),
        ({"seed": "a"}, "seed"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=f"Argument `{name}`"):
        load_image_classification("mnist", **kwargs)


def test_bad_split_is_a_dataset_error(mnist_dir):
    with pytest.raises(DatasetError, match="Invalid split 'valid'"):
        load_image_classification("mnist", data_dir=mnist_dir, test_split="valid")

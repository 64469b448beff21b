"""Each dataset is prepared from its own original files only.

MNIST, Fashion-MNIST, KMNIST and EMNIST all ship `train-images-idx3-ubyte.gz`:
the builders here read files of those names (other contents per builder) the
two ways catalog builders do, and are prepared one after the other in one data
directory.
"""

import contextlib
import gzip
import hashlib
import shutil
import types

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import checksums, downloader

from training import data_source
from training.data_source import prepare_builder
from training.dataset_error import DatasetError

IMAGES = "train-images-idx3-ubyte.gz"
LABELS = "train-labels-idx1-ubyte.gz"
_NAMES = (IMAGES, LABELS)
URL = "https://example.invalid/digits/"
NUM_EXAMPLES = 6


def _originals(first):
    """`{file name: gzip bytes}`: example `i` has pixels `first + 4i ...`."""
    pixels = bytes(range(first, first + 4 * NUM_EXAMPLES))
    labels = bytes((first + i) % 10 for i in range(NUM_EXAMPLES))
    return {
        IMAGES: gzip.compress(pixels, mtime=0),
        LABELS: gzip.compress(labels, mtime=0),
    }


def _url_infos(first):
    """The registered checksums of `_originals(first)`, as a catalog's."""
    return {
        URL + name: checksums.UrlInfo(
            size=len(data), checksum=hashlib.sha256(data).hexdigest(), filename=name
        )
        for name, data in _originals(first).items()
    }


def _expected(first):
    return sorted(
        (tuple(range(first + 4 * i, first + 4 * i + 4)), (first + i) % 10)
        for i in range(NUM_EXAMPLES)
    )


class _Digits(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Examples of 4 pixels and a label, from files named like MNIST's.

    With registered `url_infos` it reads them as MNIST does
    (`download_and_extract` of urls, which tfds finds in the manual folder by
    file name); without, straight from the manual folder (`extract`).
    """

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Put {IMAGES} and {LABELS} here."
    FIRST = 0

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "pixels": tfds.features.Tensor(shape=(4,), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        if self.url_infos:
            paths = dl_manager.download_and_extract({n: URL + n for n in _NAMES})
        else:
            paths = dl_manager.extract({n: dl_manager.manual_dir / n for n in _NAMES})
        return {"train": self._generate_examples(paths[IMAGES], paths[LABELS])}

    def _generate_examples(self, images, labels):
        pixels = np.frombuffer(images.read_bytes(), np.uint8).reshape(-1, 4)
        labels = np.frombuffer(labels.read_bytes(), np.uint8)
        for i, (p, label) in enumerate(zip(pixels, labels, strict=True)):
            yield i, {"pixels": p, "label": int(label)}


class DigitsLow(_Digits):
    FIRST = 0
    url_infos = _url_infos(0)


class DigitsHigh(_Digits):
    FIRST = 100
    url_infos = _url_infos(100)


class ManualDigitsLow(_Digits):
    FIRST = 0
    url_infos = None


class ManualDigitsHigh(_Digits):
    FIRST = 100
    url_infos = None


def _write_originals(folder, first):
    folder.mkdir(parents=True)
    for name, data in _originals(first).items():
        (folder / name).write_bytes(data)
    return folder


def _examples(builder):
    ds = builder.as_dataset(split="train", shuffle_files=False)
    return sorted(
        (tuple(int(v) for v in ex["pixels"]), int(ex["label"]))
        for ex in tfds.as_numpy(ds)
    )


def _extracted(data_dir):
    folder = data_dir / "downloads" / "extracted"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize(
    "first_cls, second_cls",
    [(DigitsLow, DigitsHigh), (ManualDigitsLow, ManualDigitsHigh)],
    ids=["download_and_extract", "extract_from_manual_dir"],
)
def test_same_file_names_each_dataset_gets_its_own_files(
    tmp_path, first_cls, second_cls
):
    data_dir = tmp_path / "tfds"
    for cls in (first_cls, second_cls):
        manual_dir = _write_originals(tmp_path / cls.name, cls.FIRST)
        builder = prepare_builder(cls(data_dir=data_dir), cls.name, manual_dir)
        assert _examples(builder) == _expected(cls.FIRST), cls.name
    assert _extracted(data_dir) == [], "extracted copies left in the data dir"


def test_prepared_copy_is_read_without_the_manual_folder(tmp_path, monkeypatch):
    data_dir = tmp_path / "tfds"
    manual_dir = _write_originals(tmp_path / "originals", 0)
    prepare_builder(DigitsLow(data_dir=data_dir), "digits_low", manual_dir)
    shutil.rmtree(manual_dir)

    def regenerate(*args, **kwargs):
        pytest.fail("prepared again")

    monkeypatch.setattr(DigitsLow, "_split_generators", regenerate)
    builder = prepare_builder(DigitsLow(data_dir=data_dir), "digits_low", manual_dir)
    assert _examples(builder) == _expected(0)


def test_failed_preparation_leaves_no_extracted_files(tmp_path):
    data_dir = tmp_path / "tfds"
    manual_dir = _write_originals(tmp_path / "originals", 0)
    (manual_dir / LABELS).write_bytes(b"not gzip")
    with pytest.raises(DatasetError, match="Could not prepare dataset 'x' from"):
        prepare_builder(ManualDigitsLow(data_dir=data_dir), "x", manual_dir)
    assert _extracted(data_dir) == []
    assert not ManualDigitsLow(data_dir=data_dir).is_prepared()


def test_online_download_goes_to_the_tfds_cache(tmp_path, monkeypatch):
    served = []

    @contextlib.contextmanager
    def serve(url, **kwargs):
        served.append(url)
        data = _originals(0)[url.rsplit("/", 1)[1]]
        yield types.SimpleNamespace(url=url, headers={}), iter([data])

    monkeypatch.setattr(downloader, "_open_url", serve)
    monkeypatch.setattr(data_source, "_can_reach", lambda *a, **k: True)
    data_dir = tmp_path / "tfds"
    builder = prepare_builder(DigitsLow(data_dir=data_dir), "digits_low")
    assert _examples(builder) == _expected(0)
    assert sorted(served) == sorted(URL + n for n in _NAMES)
    cached = list((data_dir / "downloads" / "digits_low").glob("*.gz"))
    assert len(cached) == 2, "downloads are kept in tfds' cache"
    assert _extracted(data_dir) == []

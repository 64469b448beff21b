"""The project's detection builders (`training.detection_datasets`) on the shared data.

Both are prepared once per module into a temporary data directory (COCO128
about 1-2 s, raccoon 1-5 s on 2 shared cores). The shared data folders sit
beside the repository (`../shared/data`); a missing one fails the tests.
"""

import csv
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from training.data_source import get_builder, prepare
from training.dataset_error import DatasetError
from training.detection_datasets import ZooCoco128, ZooRaccoon
from training.detection_datasets.source_files import SHA256SUMS
from training.detection_datasets.zoo_coco128 import NAMES, config_names

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO / ".." / "shared" / "data"
BUILDERS = {cls.name: cls for cls in (ZooCoco128, ZooRaccoon)}
FOLDERS = {"zoo_coco128": "coco128", "zoo_raccoon": "raccoon"}


def shared_folder(name):
    """The shared data folder of builder `name`; fails if it is missing."""
    folder = (SHARED_DATA / FOLDERS[name]).resolve()
    assert folder.is_dir(), f"shared data folder {folder} is missing"
    return folder


def _sums(name):
    sums = {}
    for line in (shared_folder(name) / SHA256SUMS).read_text().splitlines():
        digest, file_name = line.split()
        sums[file_name.removeprefix("./")] = digest
    return sums


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """`{name: builder}`, both prepared into one temporary data directory."""
    data_dir = tmp_path_factory.mktemp("tfds")
    return {name: prepare(name, data_dir, shared_folder(name)) for name in BUILDERS}


@pytest.fixture(scope="module")
def examples(prepared):
    """`{(name, split): [example as numpy, ...]}` in read order."""
    return {
        (name, split): list(
            tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))
        )
        for name, builder in prepared.items()
        for split in builder.info.splits
    }


def _by_name(examples):
    return {ex["image/filename"].decode(): ex for ex in examples}


def _mirror(tmp_path, name, replace=None, drop=(), add=None):
    """A manual folder of links to every file of `name`'s shared folder, with
    the files of `replace` (`{relative path: bytes}`) and `add` written in
    and those of `drop` left out."""
    source = shared_folder(name)
    folder = tmp_path / "manual"
    replace, add = replace or {}, add or {}
    for root, _, files in os.walk(source):
        for file_name in files:
            relative = os.path.relpath(os.path.join(root, file_name), source)
            if relative in drop:
                continue
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if relative in replace:
                target.write_bytes(replace[relative])
            else:
                target.symlink_to(os.path.join(root, file_name))
    for relative, data in add.items():
        (folder / relative).write_bytes(data)
    return folder


# ---------------------------------------------------------------------------
# The builders
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_manual_files_have_the_checksums_of_the_shared_folder(name):
    files = dict(BUILDERS[name].MANUAL_FILES)
    digest = hashlib.sha256((shared_folder(name) / SHA256SUMS).read_bytes())
    assert files.pop(SHA256SUMS) == digest.hexdigest()
    sums = _sums(name)
    assert files == {f: sums[f] for f in files}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_get_builder_finds_the_project_builders(name, tmp_path):
    builder = get_builder(name, tmp_path)
    assert type(builder) is BUILDERS[name]
    assert name in tfds.list_builders()
    assert str(builder.version) == "1.0.0"
    assert "1.0.0" in builder.RELEASE_NOTES
    assert builder.info.homepage.startswith("https://github.com/")
    assert "@" in builder.info.citation
    assert "Licence" in builder.info.description
    assert "no online download" in " ".join(type(builder).__doc__.lower().split())
    assert "GitHub" in builder.MANUAL_DOWNLOAD_INSTRUCTIONS


def test_unknown_name_suggests_a_detection_builder():
    with pytest.raises(DatasetError, match="Unknown dataset 'zoo_racoon'.*zoo_raccoon"):
        get_builder("zoo_racoon")


def _layout(features):
    """`{path: (type, numpy dtype, shape)}` of every feature, objects' inside."""
    layout = {}
    for key, feature in features.items():
        inner = getattr(feature, "feature", None)
        if isinstance(inner, tfds.features.FeaturesDict):
            for sub, f in inner.items():
                layout[f"{key}/{sub}"] = (type(f).__name__, f.np_dtype, f.shape)
        else:
            layout[key] = (type(feature).__name__, feature.np_dtype, feature.shape)
    return layout


@pytest.mark.parametrize(
    "name, catalog, left_out",
    [
        ("zoo_coco128", "coco/2017", {"objects/id"}),
        ("zoo_raccoon", "voc/2007", {"labels", "labels_no_difficult", "objects/pose"}),
    ],
)
def test_features_are_the_catalogs(name, catalog, left_out, tmp_path):
    ours = _layout(get_builder(name, tmp_path / "ours").info.features)
    theirs = _layout(tfds.builder(catalog, data_dir=tmp_path / "catalog").info.features)
    assert ours == {k: v for k, v in theirs.items() if k not in left_out}


def test_coco_class_names_are_config_yaml_s():
    text = (shared_folder("zoo_coco128") / "config.yaml").read_text()
    assert config_names(text) == NAMES
    assert len(NAMES) == 80 and NAMES[0] == "person" and NAMES[79] == "toothbrush"
    label = ZooCoco128(data_dir="/nonexistent").info.features["objects"]["label"]
    assert label.names == list(NAMES)


# ---------------------------------------------------------------------------
# COCO128
# ---------------------------------------------------------------------------


def _counts(builder, examples, name):
    splits = {s: builder.info.splits[s].num_examples for s in builder.info.splits}
    boxes = {
        s: sum(len(e["objects"]["label"]) for e in examples[name, s]) for s in splits
    }
    return splits, boxes


def test_coco128_counts(prepared, examples):
    splits, boxes = _counts(prepared["zoo_coco128"], examples, "zoo_coco128")
    assert splits == {"train": 128, "validation": 128}
    assert boxes == {"train": 929, "validation": 898}


def test_coco128_examples_are_the_images_in_name_order(examples):
    folder = shared_folder("zoo_coco128") / "images"
    for split, sub in (("train", "train2017"), ("validation", "val2017")):
        names = [e["image/filename"].decode() for e in examples["zoo_coco128", split]]
        assert names == sorted(os.listdir(folder / sub))
        ids = [int(e["image/id"]) for e in examples["zoo_coco128", split]]
        assert ids == [int(n[:-4]) for n in names]
    train = _by_name(examples["zoo_coco128", "train"])
    # Images without a label file are kept, with no objects; label files
    # without an image (000000000656, 000000000659) make no example.
    for stem in ("000000000250", "000000000508"):
        assert train[f"{stem}.jpg"]["objects"]["bbox"].shape == (0, 4)
    assert not {"000000000656.jpg", "000000000659.jpg"} & set(train)


def test_coco128_known_box_is_the_hand_converted_label_line(examples):
    ex = _by_name(examples["zoo_coco128", "train"])["000000000009.jpg"]
    assert ex["image"].shape == (480, 640, 3) and ex["image/id"] == 9
    # labels/train2017/000000000009.txt, line 1: "45 0.479492 0.688771 0.955609
    # 0.5955" (bowl): xmin = 0.479492 - 0.955609 / 2 = 0.0016875, xmax =
    # 0.9572965, ymin = 0.688771 - 0.5955 / 2 = 0.391021, ymax = 0.986521;
    # area 0.955609 * 640 * 0.5955 * 480 = 611.58976 * 285.84 = 174816.8.
    objects = ex["objects"]
    np.testing.assert_allclose(
        objects["bbox"][0], [0.391021, 0.0016875, 0.986521, 0.9572965], atol=1e-7
    )
    assert objects["label"][0] == NAMES.index("bowl") == 45
    assert objects["area"][0] == 174_817
    assert not objects["is_crowd"].any()
    assert len(objects["label"]) == 8  # the file's eight lines


def test_coco128_boxes_are_clipped_to_the_image(examples):
    # 000000000089.txt line 7, "68 0.0923438 0.241927 0.184688 0.301896":
    # xmin = 0.0923438 - 0.092344 = -2e-7, clipped to 0.
    ex = _by_name(examples["zoo_coco128", "train"])["000000000089.jpg"]
    np.testing.assert_allclose(
        ex["objects"]["bbox"][6], [0.090979, 0.0, 0.392875, 0.1846878], atol=1e-7
    )
    assert ex["objects"]["bbox"][6][1] == 0.0
    for split in ("train", "validation"):
        boxes = np.concatenate(
            [e["objects"]["bbox"] for e in examples["zoo_coco128", split]]
        )
        assert boxes.min() >= 0.0 and boxes.max() <= 1.0
        assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()


@pytest.mark.parametrize(
    "name, split, file_name",
    [
        ("zoo_coco128", "train", "000000000086.jpg"),
        ("zoo_coco128", "validation", "000000007888.jpg"),
        ("zoo_raccoon", "train", "raccoon-150.jpg"),
        ("zoo_raccoon", "train", "raccoon-161.jpg"),
    ],
)
def test_grayscale_photos_come_out_as_rgb(examples, name, split, file_name):
    image = _by_name(examples[name, split])[file_name]["image"]
    assert image.ndim == 3 and image.shape[-1] == 3
    assert (image[..., 0] == image[..., 1]).all() and (
        image[..., 1] == image[..., 2]
    ).all()
    assert image.std() > 10  # a photo, not a blank


# ---------------------------------------------------------------------------
# Raccoon
# ---------------------------------------------------------------------------


def test_raccoon_counts(prepared, examples):
    splits, boxes = _counts(prepared["zoo_raccoon"], examples, "zoo_raccoon")
    assert splits == {"train": 160, "test": 40}
    assert boxes == {"train": 173, "test": 44}


def test_raccoon_known_box(examples):
    ex = _by_name(examples["zoo_raccoon", "train"])["raccoon-1.jpg"]
    assert ex["image"].shape == (417, 650, 3)
    # annotations/raccoon-1.xml: xmin 81, ymin 88, xmax 522, ymax 408 (VOC,
    # 1-based inclusive) on 650 x 417: [87 / 417, 80 / 650, 408 / 417, 522 / 650].
    np.testing.assert_allclose(
        ex["objects"]["bbox"], [[87 / 417, 80 / 650, 408 / 417, 522 / 650]], rtol=1e-6
    )
    assert ex["objects"]["label"].tolist() == [0]
    truncated = _by_name(examples["zoo_raccoon", "train"])["raccoon-11.jpg"]
    assert truncated["objects"]["is_truncated"].tolist() == [True]


@pytest.mark.parametrize("split", ["train", "test"])
def test_raccoon_examples_are_the_csv_rows(examples, split):
    """Every box, converted by hand from the author's CSV, in the CSV's order."""
    path = shared_folder("zoo_raccoon") / "data" / f"{split}_labels.csv"
    expected = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            w, h = int(row["width"]), int(row["height"])
            x0, y0, x1, y1 = (int(row[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
            expected.setdefault(row["filename"], []).append(
                [(y0 - 1) / h, (x0 - 1) / w, y1 / h, x1 / w]
            )
    ours = examples["zoo_raccoon", split]
    assert [e["image/filename"].decode() for e in ours] == sorted(expected)
    for ex in ours:
        boxes = expected[ex["image/filename"].decode()]
        np.testing.assert_allclose(ex["objects"]["bbox"], boxes, rtol=1e-6)


# ---------------------------------------------------------------------------
# Wrong or missing files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, other, missing",
    [
        ("zoo_coco128", "zoo_raccoon", "config.yaml"),
        ("zoo_raccoon", "zoo_coco128", "data/test_labels.csv, data/train_labels.csv"),
    ],
)
def test_the_folder_of_another_dataset_is_rejected(name, other, missing, tmp_path):
    with pytest.raises(DatasetError, match=f"lacks {re.escape(missing)}"):
        prepare(name, tmp_path / "tfds", shared_folder(other))


@pytest.mark.parametrize(
    "name, file_name",
    [
        ("zoo_coco128", "images/train2017/000000000009.jpg"),
        ("zoo_coco128", "labels/val2017/000000000139.txt"),
        ("zoo_raccoon", "images/raccoon-1.jpg"),
        ("zoo_raccoon", "annotations/raccoon-1.xml"),
        ("zoo_raccoon", SHA256SUMS),
    ],
)
def test_a_corrupt_file_is_named(name, file_name, tmp_path):
    original = (shared_folder(name) / file_name).read_bytes()
    corrupt = original[:-1] + bytes([original[-1] ^ 1])
    folder = _mirror(tmp_path, name, replace={file_name: corrupt})
    with pytest.raises(DatasetError) as error:
        prepare(name, tmp_path / "tfds", folder)
    actual = hashlib.sha256(corrupt).hexdigest()
    assert f"{folder / file_name} has sha256 {actual}, expected" in str(error.value)
    assert not get_builder(name, tmp_path / "tfds").is_prepared()


def test_a_missing_listed_file_is_named(tmp_path):
    folder = _mirror(
        tmp_path, "zoo_coco128", drop={"labels/train2017/000000000009.txt"}
    )
    with pytest.raises(DatasetError, match="lacks labels/train2017/000000000009.txt"):
        prepare("zoo_coco128", tmp_path / "tfds", folder)


def test_a_file_not_listed_is_named(tmp_path):
    image = (shared_folder("zoo_raccoon") / "images" / "raccoon-1.jpg").read_bytes()
    folder = _mirror(tmp_path, "zoo_raccoon", add={"images/raccoon-201.jpg": image})
    with pytest.raises(DatasetError, match="raccoon-201.jpg, not listed in its SHA256"):
        prepare("zoo_raccoon", tmp_path / "tfds", folder)


def test_the_builder_checks_its_files_without_data_source(tmp_path):
    """Straight through tfds, a wrong file fails in the builder itself."""
    file_name = "images/val2017/000000000139.jpg"
    other = shared_folder("zoo_coco128") / "images/val2017/000000000285.jpg"
    folder = _mirror(tmp_path, "zoo_coco128", replace={file_name: other.read_bytes()})
    builder = ZooCoco128(data_dir=tmp_path / "tfds")
    config = tfds.download.DownloadConfig(manual_dir=folder)
    with pytest.raises(DatasetError, match=f"{re.escape(file_name)} has sha256"):
        builder.download_and_prepare(download_config=config)
    assert not builder.is_prepared()


# ---------------------------------------------------------------------------
# Into a training pipeline
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, split", [("zoo_raccoon", "test"), ("zoo_coco128", "train")]
)
def test_examples_go_through_box_augmentation_and_letterbox(prepared, name, split):
    from training.box_augmentation import augment_dataset, letterbox_example

    settings = {"scale": (0.5, 1.0), "crop": 0.7, "flip": True, "brightness": 0.1}
    ds = prepared[name].as_dataset(split=split, shuffle_files=False).take(8)
    ds = augment_dataset(ds, settings, seed=0).map(lambda ex: letterbox_example(ex, 64))
    batch = next(iter(ds.padded_batch(8)))
    assert batch["image"].shape == (8, 64, 64, 3)
    boxes = batch["objects"]["bbox"].numpy()
    assert boxes.shape[0] == 8 and boxes.shape[2] == 4
    assert (boxes >= 0).all() and (boxes <= 1).all()

"""The raccoon dataset, with the catalog's `voc` box layout, from a manual folder."""

import csv
import os
import xml.etree.ElementTree as ET

import numpy as np
import tensorflow_datasets as tfds

from training.dataset_error import DatasetError
from training.detection_datasets.source_files import (
    SHA256SUMS,
    check_listing,
    read_sha256sums,
    rgb_image,
    verified_bytes,
)
from training.text_datasets.manual_files import verified_manual_files

NAMES = ("raccoon",)
# split -> the author's CSV of its boxes (one row per box).
SPLITS = {"train": "data/train_labels.csv", "test": "data/test_labels.csv"}
_CSV_FIELDS = ["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax"]

_DESCRIPTION = """\
The raccoon detection dataset (Dat Tran, 2017): 200 photos of raccoons, one
class, 217 boxes, Pascal-VOC XML annotations. Box features as in the catalog's
`voc` (`objects` of `bbox`, `label`, `is_truncated`, `is_difficult`; no
`pose`, always "Unspecified", nor the image-level `labels` lists).

Splits: the author's, `train` (the 160 images of data/train_labels.csv, 173
boxes) and `test` (the 40 of data/test_labels.csv, 44 boxes). One example per
image, in file-name order (`raccoon-1.jpg`, `raccoon-10.jpg`, ...), keyed by
the file name. Boxes come from annotations/<image stem>.xml; the builder
checks that they are the CSV's rows for that image (same size, class and
coordinates, same order) and that the XML's size is the image's.

Box convention: VOC coordinates are 1-based pixel indices, both ends
included (this dataset's boxes start at 1 and end at most at the width or
height, never at 0), so pixel column x covers [x - 1, x] and
`bbox = [(ymin - 1) / height, (xmin - 1) / width, ymax / height, xmax /
width]`: a box of the whole image is [0, 0, 1, 1]. (The catalog's `voc`
divides the coordinates without the shift; the two differ by one pixel at the
top and left.) Images are 3-channel: the three grayscale photos (raccoon-150,
-152, -161) are converted to RGB (stored as PNG), the others keep their JPEG
bytes.

Licence: the repository is MIT (c) 2017 Dat Tran; its README says the photos
were collected from Google and Pixabay, so their own copyright is unclear:
fine for tests and research, not for redistribution claims.
"""

_CITATION = """\
@misc{tran2017raccoon,
  title={Raccoon Detector Dataset},
  author={Tran, Dat},
  year={2017},
  howpublished={\\url{https://github.com/datitran/raccoon_dataset}}
}
"""

_INSTRUCTIONS = """\
Use the shared data folder raccoon/ as the manual folder. It comes from GitHub
datitran/raccoon_dataset, commit 93938849301895fb73909842ba04af9b602f677a:
images/, annotations/, data/*.csv, LICENSE and README.md unchanged, with a
SHA256SUMS of every file.
"""


def voc_objects(data, where):
    """`(file name, (width, height), objects)` of a Pascal-VOC XML annotation.

    Args:
        data: the XML file's bytes.
        where: the file, for messages.

    Returns:
        The annotated file name, its size, and per object a dict of `name`,
        `box` (`(xmin, ymin, xmax, ymax)` floats, VOC pixels), `truncated`
        and `difficult` (bools).

    Raises:
        DatasetError: a field is missing or not a number.
    """
    try:
        root = ET.fromstring(data)
        size = (int(root.findtext("size/width")), int(root.findtext("size/height")))
        objects = [
            {
                "name": obj.findtext("name"),
                "box": tuple(
                    float(obj.findtext(f"bndbox/{k}"))
                    for k in ("xmin", "ymin", "xmax", "ymax")
                ),
                "truncated": obj.findtext("truncated", "0").strip() == "1",
                "difficult": obj.findtext("difficult", "0").strip() == "1",
            }
            for obj in root.findall("object")
        ]
        return root.findtext("filename"), size, objects
    except (ET.ParseError, TypeError, ValueError) as e:
        raise DatasetError(f"{where} is not a Pascal-VOC annotation: {e}") from e


def voc_to_bbox(box, width, height):
    """Normalised `[ymin, xmin, ymax, xmax]` of a VOC `(xmin, ymin, xmax, ymax)`.

    VOC pixels are 1-based and inclusive: `[(ymin - 1) / height, (xmin - 1) /
    width, ymax / height, xmax / width]`, clipped to [0, 1].
    """
    xmin, ymin, xmax, ymax = box
    bbox = [(ymin - 1) / height, (xmin - 1) / width, ymax / height, xmax / width]
    return np.clip(bbox, 0.0, 1.0)


def _csv_rows(builder, path):
    """`{file name: [(width, height, class, xmin, ymin, xmax, ymax), ...]}`."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != _CSV_FIELDS:
            raise DatasetError(
                f"Dataset {builder.name!r}: {path} must have the columns "
                f"{_CSV_FIELDS}. Received: {reader.fieldnames}"
            )
        rows = {}
        for row in reader:
            numbers = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
            size = (int(row["width"]), int(row["height"]))
            rows.setdefault(row["filename"], []).append((*size, row["class"], *numbers))
    return rows


class ZooRaccoon(tfds.core.GeneratorBasedBuilder):
    """The raccoon dataset (`zoo_raccoon`): 1-class detection, manual folder.

    Features `image` (3-channel Image), `image/filename` (Text) and `objects`
    (Sequence of `bbox` BBoxFeature, `label` ClassLabel `["raccoon"]`,
    `is_truncated` and `is_difficult` bool), as the catalog's `voc`, read
    from the shared data folder `raccoon/`: `train` (160 images, 173 boxes)
    and `test` (40, 44), the author's split of data/*_labels.csv, with the
    boxes of annotations/*.xml checked against the CSV rows. `SHA256SUMS`' and
    the CSVs' sha256 are pinned in `MANUAL_FILES`, and every image and
    annotation is checked against its line in `SHA256SUMS` as it is read.

    There is no online download (the dataset is not in the catalog).

    Example:

    ```python
    from training.data_source import prepare

    builder = prepare("zoo_raccoon", manual_dir="../shared/data/raccoon")
    ds = builder.as_dataset(split="test")
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First version: datitran/raccoon_dataset's images, VOC "
        "annotations and train/test CSV split.",
    }
    MANUAL_FILES = {
        SHA256SUMS: "61698553494250528c943a8f7cc752dd03c3e85d8c0ca5f470e7565bc72cf0e1",
        "data/train_labels.csv": (
            "64a37eda7571d9874bff53497e3b7f9cc49f576739f53de73573be6bf0d548ba"
        ),
        "data/test_labels.csv": (
            "cd17c00ef8e7fd167531e8e5d7085b40cdff226819a327ec2557f74e3bad25c2"
        ),
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = _INSTRUCTIONS

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "image/filename": tfds.features.Text(),
                    "objects": tfds.features.Sequence(
                        {
                            "bbox": tfds.features.BBoxFeature(),
                            "is_difficult": np.bool_,
                            "is_truncated": np.bool_,
                            "label": tfds.features.ClassLabel(names=NAMES),
                        }
                    ),
                }
            ),
            homepage="https://github.com/datitran/raccoon_dataset",
            citation=_CITATION,
            license="MIT (the repository); the photos' own copyright is unclear",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        paths = verified_manual_files(self, dl_manager)
        sums = read_sha256sums(self, paths[SHA256SUMS])
        folder = dl_manager.manual_dir
        check_listing(self, folder, ["images", "annotations"], sums)
        rows = {split: _csv_rows(self, paths[f]) for split, f in SPLITS.items()}
        images = {os.path.basename(n) for n in sums if n.startswith("images/")}
        in_both = sorted(set(rows["train"]) & set(rows["test"]))
        unknown = sorted((set(rows["train"]) | set(rows["test"])) - images)
        unsplit = sorted(images - set(rows["train"]) - set(rows["test"]))
        if in_both or unknown or unsplit:
            raise DatasetError(
                f"Dataset {self.name!r}: the CSVs of {folder} do not split its "
                f"images in two: in both {in_both[:5]}, without an image "
                f"{unknown[:5]}, in neither {unsplit[:5]}."
            )
        return {
            split: self._generate_examples(folder, rows[split], sums)
            for split in SPLITS
        }

    def _generate_examples(self, folder, rows, sums):
        """`(file name, example)` per image of the split's CSV, in name order.

        Raises:
            DatasetError: an annotation disagrees with its image (file name,
                size) or with the CSV rows of its image.
        """
        for file_name in sorted(rows):
            stem = os.path.splitext(file_name)[0]
            name, xml_name = f"images/{file_name}", f"annotations/{stem}.xml"
            data = verified_bytes(self, folder, name, sums)
            image, height, width = rgb_image(self, name, data)
            where = os.path.join(folder, xml_name)
            annotated, size, objects = voc_objects(
                verified_bytes(self, folder, xml_name, sums), where
            )
            if annotated != file_name or size != (width, height):
                raise DatasetError(
                    f"Dataset {self.name!r}: {where} annotates {annotated!r} of "
                    f"size {size}, not {file_name!r} of size {(width, height)}."
                )
            strange = sorted({o["name"] for o in objects} - set(NAMES))
            if strange:
                raise DatasetError(
                    f"Dataset {self.name!r}: {where} has objects of classes "
                    f"{strange}, not of {list(NAMES)}."
                )
            from_xml = [(*size, o["name"], *o["box"]) for o in objects]
            if from_xml != rows[file_name]:
                raise DatasetError(
                    f"Dataset {self.name!r}: the boxes of {where} are not the CSV "
                    f"rows of {file_name}. Received: {from_xml} and "
                    f"{rows[file_name]}"
                )
            boxes = [voc_to_bbox(o["box"], width, height) for o in objects]
            yield (
                file_name,
                {
                    "image": image,
                    "image/filename": file_name,
                    "objects": {
                        "bbox": np.reshape(np.array(boxes, np.float32), (-1, 4)),
                        "is_difficult": [o["difficult"] for o in objects],
                        "is_truncated": [o["truncated"] for o in objects],
                        "label": [NAMES.index(o["name"]) for o in objects],
                    },
                },
            )

"""COCO128, with the catalog's `coco` layout, from a manual folder."""

import os
import re

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

# config.yaml's `names`, in id order: contiguous ids 0-79 (COCO's own category
# ids, 1-90 with gaps, are not used).
NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train",
    "truck", "boat", "traffic light", "fire hydrant", "stop sign",
    "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip
# split -> folder name under images/ and labels/.
SPLITS = {"train": "train2017", "validation": "val2017"}

_DESCRIPTION = """\
COCO128: the first 128 images of MS COCO train2017 (Ultralytics' "coco128")
and the first 128 of val2017 (Lin et al. 2014), with YOLO box labels of the 80
detection classes. Features as in the catalog's `coco` (less `objects/id`: the
YOLO labels carry no COCO annotation ids).

Splits: `train` (images/train2017: 128 images, 929 boxes; 000000000250 and
000000000508 have no label file and no objects; the label files
000000000656.txt and 000000000659.txt have no image and are not read) and
`validation` (images/val2017: 128 images, 898 boxes). One example per image,
in file-name order, keyed by the file name; `image/id` is the COCO image id
(the file name's number).

Boxes: each label line `class x_center y_center width height` (normalised to
the image) becomes `bbox = [yc - h/2, xc - w/2, yc + h/2, xc + w/2]` clipped
to [0, 1] (some lines reach a little past the border by rounding). `label` is
the line's class, 0-79 in config.yaml's order (`person` is 0). `area` is the
clipped box's area in pixels of the image, rounded (COCO's own `area` is the
segmentation's, not available here); `is_crowd` is False (YOLO labels keep no
crowd boxes). Images are 3-channel: the two grayscale photos (train
000000000086, val 000000007888) are converted to RGB (stored as PNG), the
others keep their original JPEG bytes.

Licence: annotations CC BY 4.0 (COCO Consortium); the images are Flickr
photos under their own licences (mostly CC BY / BY-NC / BY-SA) per COCO's
terms of use. Fine for tests and research; attribute COCO (Lin et al. 2014).
"""

_CITATION = """\
@inproceedings{lin2014microsoft,
  title={Microsoft {COCO}: Common Objects in Context},
  author={Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James
    and Perona, Pietro and Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick,
    C. Lawrence},
  booktitle={European Conference on Computer Vision (ECCV)},
  pages={740--755},
  year={2014}
}
"""

_INSTRUCTIONS = """\
Use the shared data folder coco128/ as the manual folder. It comes from GitHub
lightly-ai/coco128_yolo, commit 6d6f7a059ea63efffdbe48aca2d52c04d4c510e9:
images/ unchanged, object_detection/labels moved to labels/ and
object_detection/config.yaml to config.yaml, with a SHA256SUMS of every file.
"""

_NAME_LINE = re.compile(r"^\s+(\d+):\s*(.+?)\s*$")


def config_names(text):
    """The class names of config.yaml's `names:` block (`"  0: person"` lines)."""
    names, inside = {}, False
    for line in text.splitlines():
        if line.startswith("names:"):
            inside = True
        elif inside and (match := _NAME_LINE.match(line)):
            names[int(match[1])] = match[2]
        elif inside and line.strip():
            break
    return tuple(names[i] for i in sorted(names))


def yolo_boxes(text, where):
    """`(boxes, labels)` of a YOLO label file's text.

    Args:
        text: lines `class x_center y_center width height`, normalised.
        where: the file, for messages.

    Returns:
        `boxes`, `(N, 4)` float64 `[ymin, xmin, ymax, xmax]` clipped to
        [0, 1], and `labels`, `(N,)` int64.

    Raises:
        DatasetError: a line is not 5 numbers, or its class is not 0-79.
    """
    boxes, labels = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            label = int(fields[0])
            xc, yc, w, h = (float(f) for f in fields[1:])
        except ValueError:
            label, w = None, None
        if len(fields) != 5 or label is None or not 0 <= label < len(NAMES):
            raise DatasetError(
                f"Line {number} of {where} is not 'class x_center y_center width "
                f"height' with a class in 0-{len(NAMES) - 1}. Received: {line!r}"
            )
        box = [yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2]
        boxes.append(np.clip(box, 0.0, 1.0))
        labels.append(label)
    return np.reshape(np.array(boxes, np.float64), (-1, 4)), np.array(labels, np.int64)


class ZooCoco128(tfds.core.GeneratorBasedBuilder):
    """COCO128 (`zoo_coco128`): 80-class object detection, from a manual folder.

    The layout of the catalog's `coco` (features `image` 3-channel Image,
    `image/filename` Text, `image/id` int64, `objects` Sequence of `bbox`
    BBoxFeature, `label` ClassLabel of the 80 names, `area` int64, `is_crowd`
    bool; no `objects/id`), read from the shared data folder `coco128/`:
    `train` (images/train2017, 128 images, 929 boxes) and `validation`
    (images/val2017, 128, 898). `SHA256SUMS`' sha256 is pinned in
    `MANUAL_FILES`, and every image and label file is checked against its line
    in it as it is read (`training.detection_datasets.source_files`).

    There is no online download: the catalog's `coco/2017` is the full
    dataset online.

    Example:

    ```python
    from training.data_source import prepare

    builder = prepare("zoo_coco128", manual_dir="../shared/data/coco128")
    ds = builder.as_dataset(split="validation")
    ```
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First version: lightly-ai/coco128_yolo's object-detection "
        "labels, 128 train2017 and 128 val2017 images.",
    }
    MANUAL_FILES = {
        SHA256SUMS: "3c593c4cb4a1790631529278d087c7dec283725408871a0525066d42638907ed",
        "config.yaml": (
            "40133bfbee3649b31a1985732adcde1eb303f06f9c7c6700b534302051368c73"
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
                    "image/id": np.int64,
                    "objects": tfds.features.Sequence(
                        {
                            "area": np.int64,
                            "bbox": tfds.features.BBoxFeature(),
                            "is_crowd": np.bool_,
                            "label": tfds.features.ClassLabel(names=NAMES),
                        }
                    ),
                }
            ),
            homepage="https://github.com/lightly-ai/coco128_yolo",
            citation=_CITATION,
            license="CC BY 4.0 (annotations); images under their Flickr licences",
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager):
        paths = verified_manual_files(self, dl_manager)
        names = config_names(paths["config.yaml"].read_text(encoding="utf-8"))
        if names != NAMES:
            raise DatasetError(
                f"Dataset {self.name!r}: the class names of {paths['config.yaml']} "
                f"are not the builder's. Received: {names}"
            )
        sums = read_sha256sums(self, paths[SHA256SUMS])
        folder = dl_manager.manual_dir
        subfolders = [f"{k}/{s}" for s in SPLITS.values() for k in ("images", "labels")]
        check_listing(self, folder, subfolders, sums)
        return {
            split: self._generate_examples(folder, sub, sums)
            for split, sub in SPLITS.items()
        }

    def _generate_examples(self, folder, sub, sums):
        """`(file name, example)` per image of `images/<sub>`, in name order.

        An image's boxes come from `labels/<sub>/<stem>.txt`; an image without
        one has no objects. Every file is checked against `sums` as it is read.
        """
        images = sorted(n for n in sums if os.path.dirname(n) == f"images/{sub}")
        for name in images:
            file_name = os.path.basename(name)
            stem = os.path.splitext(file_name)[0]
            image, height, width = rgb_image(
                self, name, verified_bytes(self, folder, name, sums)
            )
            label_name = f"labels/{sub}/{stem}.txt"
            if label_name in sums:
                text = verified_bytes(self, folder, label_name, sums).decode("utf-8")
                boxes, labels = yolo_boxes(text, os.path.join(folder, label_name))
            else:
                boxes, labels = np.zeros((0, 4)), np.zeros((0,), np.int64)
            pixels = (boxes[:, 2] - boxes[:, 0]) * height * (boxes[:, 3] - boxes[:, 1])
            yield (
                file_name,
                {
                    "image": image,
                    "image/filename": file_name,
                    "image/id": int(stem),
                    "objects": {
                        "area": np.round(pixels * width).astype(np.int64),
                        "bbox": boxes.astype(np.float32),
                        "is_crowd": np.zeros(len(labels), np.bool_),
                        "label": labels,
                    },
                },
            )

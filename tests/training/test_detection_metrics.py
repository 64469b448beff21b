"""COCO mAP (`training.detection_metrics`): hand-computed APs.

With one ground-truth box and one detection, COCO's AP at an IoU threshold is
1 when the IoU reaches it and 0 otherwise; `map` averages the 10 thresholds
0.50, 0.55, ..., 0.95.
"""

import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.detection_datasets.zoo_coco128 import NAMES, yolo_boxes
from training.detection_metrics import coco_metrics, ground_truth_from_example

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BOX = [0.0, 0.0, 0.5, 0.5]  # 50 x 50 pixels of a 100 x 100 image


def _truth(boxes, labels, height=100, width=100):
    return {"boxes": boxes, "labels": labels, "height": height, "width": width}


def _found(boxes, scores, classes):
    return {"boxes": boxes, "scores": scores, "classes": classes}


EMPTY_TRUTH = _truth([], [])
NOTHING = _found([], [], [])


def test_perfect_detections_score_one():
    truth = [_truth([BOX, [0.5, 0.5, 1.0, 0.9]], [0, 3]), _truth([BOX], [3])]
    found = [_found(t["boxes"], [0.9] * len(t["labels"]), t["labels"]) for t in truth]
    assert coco_metrics(truth, found, 5) == pytest.approx(
        {"map": 1.0, "map_50": 1.0, "map_75": 1.0}
    )


def test_a_shifted_box_counts_up_to_its_iou():
    # Shifted right by 10 pixels: intersection 50 x 40, union 50 x 60, IoU
    # 2/3: a match at 0.50, 0.55, 0.60 and 0.65, not from 0.70 on.
    shifted = [0.0, 0.1, 0.5, 0.6]
    metrics = coco_metrics([_truth([BOX], [0])], [_found([shifted], [0.8], [0])], 1)
    assert metrics == pytest.approx({"map": 0.4, "map_50": 1.0, "map_75": 0.0})


def test_class_zero_is_a_class():
    # Class 0 found, class 1 missed: the mean over both classes is 0.5 (it
    # would be 0 if class 0 were dropped, as in keras-cv#2402).
    truth = [_truth([BOX], [0]), _truth([BOX], [1])]
    found = [_found([BOX], [0.9], [0]), NOTHING]
    assert coco_metrics(truth, found, 2)["map"] == pytest.approx(0.5)
    alone = coco_metrics([_truth([BOX], [0])], [_found([BOX], [0.9], [0])], 1)
    assert alone["map"] == pytest.approx(1.0)


def test_scores_order_the_detections():
    wrong = [0.5, 0.5, 1.0, 1.0]
    truth = [_truth([BOX], [0])]
    # Right one first: precision 1 at recall 1. Wrong one first: 1/2.
    first = coco_metrics(truth, [_found([BOX, wrong], [0.9, 0.5], [0, 0])], 1)
    assert first["map_50"] == pytest.approx(1.0)
    second = coco_metrics(truth, [_found([BOX, wrong], [0.5, 0.9], [0, 0])], 1)
    assert second["map_50"] == pytest.approx(0.5)


def test_images_without_boxes_are_fine():
    truth = [_truth([BOX], [0]), EMPTY_TRUTH]
    found = [_found([BOX], [0.9], [0]), NOTHING]
    assert coco_metrics(truth, found, 3)["map"] == pytest.approx(1.0)
    assert coco_metrics(truth, [NOTHING, NOTHING], 3)["map"] == 0.0
    empty = coco_metrics([EMPTY_TRUTH, EMPTY_TRUTH], [NOTHING, NOTHING], 3)
    assert all(math.isnan(v) for v in empty.values())
    assert math.isnan(
        coco_metrics([EMPTY_TRUTH], [_found([BOX], [1.0], [0])], 1)["map"]
    )


def test_negative_classes_are_padding():
    found = _found([BOX, [0, 0, 0, 0]], [0.9, 0.0], [0, -1])
    assert coco_metrics([_truth([BOX], [0])], [found], 1)["map"] == pytest.approx(1.0)


def test_pycocotools_prints_nothing(capsys):
    coco_metrics([_truth([BOX], [0])], [_found([BOX], [0.9], [0])], 1)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "truth, found, num_classes, message",
    [
        ([EMPTY_TRUTH], [], 1, "one entry per image.*1 and 0"),
        ([_truth([BOX], [2])], [NOTHING], 2, r"labels` of image 0 must be in \[0, 2\)"),
        ([EMPTY_TRUTH], [_found([BOX], [1.0], [5])], 2, r"classes=\[5\]"),
        ([_truth([[0, 0, 1]], [0])], [NOTHING], 1, r"boxes.shape=\(1, 3\)"),
        ([_truth([BOX], [0, 1])], [NOTHING], 2, "1 boxes, 2 labels"),
        ([EMPTY_TRUTH], [_found([BOX], [1.0, 0.5], [0])], 1, "1 boxes, 2 scores"),
        ([_truth([], [], height=0)], [NOTHING], 1, "height=0"),
        ([EMPTY_TRUTH], [NOTHING], 0, "num_classes=0"),
    ],
)
def test_bad_inputs_raise_naming_them(truth, found, num_classes, message):
    with pytest.raises(ValueError, match=message):
        coco_metrics(truth, found, num_classes)


def test_coco128_labels_as_detections_score_one():
    """The 898 boxes of val2017 (73 classes, `person` = 0 among them)."""
    folder = SHARED_DATA / "coco128"
    truth, found = [], []
    for name in sorted(os.listdir(folder / "images" / "val2017")):
        with Image.open(folder / "images" / "val2017" / name) as image:
            width, height = image.size
        label_file = folder / "labels" / "val2017" / f"{name[:-4]}.txt"
        boxes, labels = yolo_boxes(label_file.read_text(), label_file)
        truth.append(
            ground_truth_from_example(
                {
                    "image": np.zeros((height, width, 3)),
                    "objects": {"bbox": boxes, "label": labels},
                }
            )
        )
        found.append(_found(boxes, np.linspace(1.0, 0.5, len(labels)), labels))
    assert sum(len(t["labels"]) for t in truth) == 898
    assert 0 in np.concatenate([t["labels"] for t in truth])
    metrics = coco_metrics(truth, found, len(NAMES))
    assert metrics == pytest.approx({"map": 1.0, "map_50": 1.0, "map_75": 1.0})

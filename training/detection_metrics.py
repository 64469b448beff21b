"""COCO box mAP of detections (pycocotools' `COCOeval`), from normalised boxes.

`coco_metrics(ground_truth, detections, num_classes)` takes, per image in a
fixed order, the ground truth (normalised `[ymin, xmin, ymax, xmax]` boxes,
labels, the image's height and width) and the detections (boxes, scores,
classes), converts them to COCO's pixel `[x, y, width, height]`, and returns
COCO's AP averaged over IoU 0.50:0.05:0.95 (`"map"`), at IoU 0.5
(`"map_50"`) and at 0.75 (`"map_75"`), over the classes that have ground
truth, at most `max_detections` per image (COCO: 100), areas all.

Ids: the project's labels are 0-based (`person` is 0 in COCO128), and class
0 is a real class (keras-cv#2402 dropped it). pycocotools records a match by
the matched annotation's id with 0 for "no match", so every id given to it is
1-based: category `label + 1`, image `index + 1`, annotation `index + 1`.
Every class `0 .. num_classes - 1` is a category, so a class without ground
truth is left out of the mean (COCO's rule) rather than counted as 0.

pycocotools prints as it works; its output is captured (and dropped).
"""

import contextlib
import io
import math

import numpy as np

from layers.validation import check_positive_int


def _array(name, value, shape_tail, dtype):
    """`value` as a numpy array of shape `(N, *shape_tail)` (`shape_tail` is
    `(4,)` or `()`)."""
    array = np.asarray(value, dtype=dtype)
    if array.size == 0:
        array = array.reshape((0, *shape_tail))
    if array.ndim != 1 + len(shape_tail) or array.shape[1:] != shape_tail:
        expected = "(N, 4)" if shape_tail else "(N,)"
        raise ValueError(
            f"Argument `{name}` must have shape {expected}. "
            f"Received: {name}.shape={array.shape}"
        )
    return array


def _xywh(boxes, height, width):
    """COCO pixel `[x, y, width, height]` of normalised `[y0, x0, y1, x1]`."""
    y0, x0, y1, x1 = (boxes[:, i] for i in range(4))
    return np.stack(
        [x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height], axis=-1
    )


def _check_classes(name, classes, num_classes, where):
    bad = classes[(classes < 0) | (classes >= num_classes)]
    if bad.size:
        raise ValueError(
            f"Argument `{name}` of image {where} must be in [0, {num_classes}). "
            f"Received: {name}={bad.tolist()}"
        )


def ground_truth_from_example(example):
    """The ground truth `coco_metrics` takes, from a detection builder's example.

    Args:
        example: a dict of numpy values (`tfds.as_numpy`) with `"image"` and
            `"objects"` (`bbox`, `label`, optional `is_crowd`).

    Returns:
        `{"boxes", "labels", "height", "width"[, "is_crowd"]}`.
    """
    objects = example["objects"]
    height, width = np.shape(example["image"])[:2]
    truth = {
        "boxes": objects["bbox"],
        "labels": objects["label"],
        "height": int(height),
        "width": int(width),
    }
    if "is_crowd" in objects:
        truth["is_crowd"] = objects["is_crowd"]
    return truth


def coco_datasets(ground_truth, detections, num_classes):
    """The COCO-format dicts of ground truth and detections (1-based ids).

    Args:
        ground_truth, detections, num_classes: as `coco_metrics` takes them.

    Returns:
        `(truth, results)`: COCO dataset dicts (`images`, `categories`,
        `annotations`), the results' with a `score` per annotation.

    Raises:
        ValueError: the two lists differ in length, or a shape, size or
            class is out of range (the message names it and the image).
    """
    num_classes = check_positive_int("num_classes", num_classes)
    ground_truth, detections = list(ground_truth), list(detections)
    if len(ground_truth) != len(detections):
        raise ValueError(
            "Arguments `ground_truth` and `detections` must have one entry per "
            f"image, in the same order. Received: {len(ground_truth)} and "
            f"{len(detections)} entries"
        )
    images, truths, results = [], [], []
    for index, (truth, found) in enumerate(zip(ground_truth, detections, strict=True)):
        height = check_positive_int("height", int(truth["height"]))
        width = check_positive_int("width", int(truth["width"]))
        image_id = index + 1
        images.append({"id": image_id, "height": height, "width": width})
        boxes = _array("boxes", truth["boxes"], (4,), np.float64)
        labels = _array("labels", truth["labels"], (), np.int64)
        crowd = np.asarray(truth.get("is_crowd", np.zeros(len(labels))), bool)
        if not len(boxes) == len(labels) == len(crowd):
            raise ValueError(
                f"Ground truth of image {index} has {len(boxes)} boxes, "
                f"{len(labels)} labels and {len(crowd)} is_crowd flags."
            )
        _check_classes("labels", labels, num_classes, index)
        for box, label, is_crowd in zip(
            _xywh(boxes, height, width), labels, crowd, strict=True
        ):
            truths.append(
                {
                    "id": len(truths) + 1,
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "iscrowd": int(is_crowd),
                }
            )
        boxes = _array("boxes", found["boxes"], (4,), np.float64)
        scores = _array("scores", found["scores"], (), np.float64)
        classes = _array("classes", found["classes"], (), np.int64)
        if not len(boxes) == len(scores) == len(classes):
            raise ValueError(
                f"Detections of image {index} have {len(boxes)} boxes, "
                f"{len(scores)} scores and {len(classes)} classes."
            )
        real = classes >= 0  # negative classes: padding of fixed-size outputs
        boxes, scores, classes = boxes[real], scores[real], classes[real]
        _check_classes("classes", classes, num_classes, index)
        for box, score, label in zip(
            _xywh(boxes, height, width), scores, classes, strict=True
        ):
            results.append(
                {
                    "id": len(results) + 1,
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "score": float(score),
                    "iscrowd": 0,
                }
            )
    categories = [{"id": c + 1, "name": str(c)} for c in range(num_classes)]
    return (
        {"images": images, "categories": categories, "annotations": truths},
        {"images": images, "categories": categories, "annotations": results},
    )


def _coco(dataset):
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = dataset
    coco.createIndex()
    return coco


def coco_metrics(ground_truth, detections, num_classes, max_detections=100):
    """COCO box mAP@[.5:.95], mAP@0.5 and mAP@0.75 of `detections`.

    Args:
        ground_truth: one dict per image: `"boxes"` `(N, 4)` normalised
            `[ymin, xmin, ymax, xmax]`, `"labels"` `(N,)` in
            `[0, num_classes)`, `"height"` and `"width"` (pixels, to convert
            the boxes), optional `"is_crowd"` `(N,)` bools.
            `ground_truth_from_example` makes one from a builder's example.
        detections: one dict per image, in the same order: `"boxes"` `(M, 4)`
            normalised `[ymin, xmin, ymax, xmax]`, `"scores"` `(M,)`,
            `"classes"` `(M,)` in `[0, num_classes)`; entries with a negative
            class are padding and ignored.
        num_classes: number of classes.
        max_detections: detections per image kept, the best scored (COCO's
            100).

    Returns:
        `{"map": ..., "map_50": ..., "map_75": ...}`, floats in [0, 1]; `nan`
        when no image has a ground-truth box (COCO's -1: nothing to average).
        Images without ground truth or detections are fine.

    Raises:
        ValueError: the inputs do not match (see `coco_datasets`).
    """
    from pycocotools.cocoeval import COCOeval

    max_detections = check_positive_int("max_detections", max_detections)
    truth, results = coco_datasets(ground_truth, detections, num_classes)
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = COCOeval(_coco(truth), _coco(results), iouType="bbox")
        evaluation.params.maxDets = [1, 10, max_detections]
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [float(s) if s >= 0 else math.nan for s in evaluation.stats[:3]]
    return {"map": stats[0], "map_50": stats[1], "map_75": stats[2]}

"""Decoding CenterNet outputs: hand-computed peaks, thresholds, shapes."""

import math

import keras
import numpy as np
import pytest

from zoo.detection.decoding import decode_detections
from zoo.detection.targets import centernet_targets

HIGH = math.log(0.9 / 0.1)  # sigmoid = 0.9
LOW = -10.0


def _two_peaks():
    """An 8x8 grid, 3 classes, peaks of class 2 at (2, 3) and class 0 at (5, 6)."""
    logits = np.full((1, 8, 8, 3), LOW, "float32")
    size = np.zeros((1, 8, 8, 2), "float32")
    offset = np.zeros((1, 8, 8, 2), "float32")
    logits[0, 2, 3, 2] = HIGH
    logits[0, 2, 4, 2] = 0.0  # a neighbour of the first peak, not a peak
    logits[0, 5, 6, 0] = 0.0  # sigmoid = 0.5
    size[0, 2, 3] = (2.0, 4.0)
    offset[0, 2, 3] = (0.5, 0.0)
    size[0, 5, 6] = (1.0, 1.0)
    offset[0, 5, 6] = (0.25, 0.75)
    return logits, size, offset


def test_two_peaks_hand_computed():
    boxes, scores, classes = decode_detections(
        *_two_peaks(), max_detections=3, score_threshold=0.3
    )
    boxes, scores, classes = (
        keras.ops.convert_to_numpy(t) for t in (boxes, scores, classes)
    )
    assert boxes.shape == (1, 3, 4) and scores.shape == classes.shape == (1, 3)
    assert classes.dtype == np.int32
    # Centre (2.5, 3), size 2x4: rows 1.5..3.5, columns 1..5, over 8.
    # Centre (5.25, 6.75), size 1x1: rows 4.75..5.75, columns 6.25..7.25.
    np.testing.assert_allclose(
        boxes[0],
        [
            [1.5 / 8, 1 / 8, 3.5 / 8, 5 / 8],
            [4.75 / 8, 6.25 / 8, 5.75 / 8, 7.25 / 8],
            [0, 0, 0, 0],
        ],
        rtol=1e-6,
    )
    np.testing.assert_allclose(scores[0], [0.9, 0.5, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(classes[0], [2, 0, -1])


def test_threshold_zero_keeps_the_top_k_sorted():
    _, scores, classes = decode_detections(
        *_two_peaks(), max_detections=5, score_threshold=0.0
    )
    scores = keras.ops.convert_to_numpy(scores)[0]
    assert (np.diff(scores) <= 0).all()
    assert (keras.ops.convert_to_numpy(classes) >= 0).all()


def test_boxes_are_clipped():
    logits = np.full((1, 4, 4, 1), LOW, "float32")
    logits[0, 0, 3, 0] = HIGH
    size = np.full((1, 4, 4, 2), 3.0, "float32")
    boxes, _, _ = decode_detections(logits, size, np.zeros_like(size), max_detections=1)
    # Centre (0, 3), size 3x3: rows -1.5..1.5, columns 1.5..4.5, over 4.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(boxes)[0, 0], [0.0, 1.5 / 4, 1.5 / 4, 1.0]
    )


def test_max_detections_larger_than_the_grid():
    logits = np.zeros((2, 2, 2, 1), "float32")
    boxes, scores, classes = decode_detections(
        logits, np.ones((2, 2, 2, 2)), np.zeros((2, 2, 2, 2)), max_detections=100
    )
    assert tuple(boxes.shape) == (2, 4, 4)
    assert tuple(scores.shape) == tuple(classes.shape) == (2, 4)


def test_decodes_its_targets():
    # Targets turned into "perfect" outputs decode to the original boxes.
    boxes = np.array([[0.1, 0.2, 0.45, 0.5], [0.5, 0.55, 0.95, 0.9]], "float32")
    t = centernet_targets(boxes, [1, 0], (16, 16), num_classes=2)
    t = {k: np.asarray(v)[None] for k, v in t.items()}
    logits = np.where(t["heatmap"] >= 1.0, 5.0, -5.0).astype("float32")
    got, scores, classes = decode_detections(
        logits, t["size"][..., :2], t["offset"][..., :2], max_detections=2
    )
    got = keras.ops.convert_to_numpy(got)[0]
    order = np.argsort(keras.ops.convert_to_numpy(classes)[0])[::-1]
    np.testing.assert_allclose(got[order], boxes, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [dict(max_detections=0), dict(score_threshold=1.5), dict(score_threshold=-0.1)],
)
def test_bad_arguments(kwargs):
    name, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=f"{name}={value}"):
        decode_detections(*_two_peaks(), **kwargs)

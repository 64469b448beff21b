"""CenterNet training targets: a hand-computed case and a NumPy reference."""

import math

import numpy as np
import pytest
import tensorflow as tf

from zoo.detection.targets import MASK_CHANNEL, centernet_targets, gaussian_radius


def _reference_radius(height, width, min_overlap=0.7):
    """CenterNet's `gaussian_radius` (src/lib/utils/image.py), verbatim."""
    a1 = 1
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2 = 4
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def _reference_targets(boxes, labels, grid, num_classes):
    """CenterNet's `draw_umich_gaussian` loop, in NumPy float64."""
    h, w = grid
    heatmap = np.zeros((h, w, num_classes))
    size = np.zeros((h, w, 3))
    offset = np.zeros((h, w, 3))
    owner_area = np.full((h, w), np.inf)
    for box, label in zip(boxes, labels, strict=True):
        ymin, xmin, ymax, xmax = np.clip(box, 0, 1) * [h, w, h, w]
        bh, bw = ymax - ymin, xmax - xmin
        if label < 0 or label >= num_classes or bh <= 0 or bw <= 0:
            continue
        cy, cx = (ymin + ymax) / 2, (xmin + xmax) / 2
        iy, ix = min(int(cy), h - 1), min(int(cx), w - 1)
        radius = max(0, int(_reference_radius(math.ceil(bh), math.ceil(bw))))
        sigma = (2 * radius + 1) / 6
        for i in range(max(0, iy - radius), min(h, iy + radius + 1)):
            for j in range(max(0, ix - radius), min(w, ix + radius + 1)):
                g = math.exp(-((i - iy) ** 2 + (j - ix) ** 2) / (2 * sigma**2))
                heatmap[i, j, label] = max(heatmap[i, j, label], g)
        if bh * bw < owner_area[iy, ix]:
            owner_area[iy, ix] = bh * bw
            size[iy, ix] = (bh, bw, 1)
            offset[iy, ix] = (cy - iy, cx - ix, 1)
    return {"heatmap": heatmap, "size": size, "offset": offset}


def _numpy(targets):
    return {k: v.numpy() for k, v in targets.items()}


def test_hand_computed_box():
    # On an 8x8 grid: rows 2..6, columns 2.5..6.5: a 4x4 box centred at
    # (4, 4.5): cell (4, 4), offset (0, 0.5). Radius: min(7.63, 14.69, 1.09)
    # floored to 1, sigma = 0.5: the 4 neighbours get exp(-2), the corners
    # exp(-4).
    boxes = [[0.25, 0.3125, 0.75, 0.8125]]
    t = _numpy(centernet_targets(boxes, [1], (8, 8), num_classes=2))
    assert t["heatmap"].shape == (8, 8, 2)
    np.testing.assert_allclose(t["heatmap"][..., 0], 0.0)
    expected = np.zeros((8, 8))
    expected[3:6, 3:6] = [
        [math.exp(-4), math.exp(-2), math.exp(-4)],
        [math.exp(-2), 1.0, math.exp(-2)],
        [math.exp(-4), math.exp(-2), math.exp(-4)],
    ]
    np.testing.assert_allclose(t["heatmap"][..., 1], expected, rtol=1e-6)
    mask = np.zeros((8, 8))
    mask[4, 4] = 1
    np.testing.assert_array_equal(t["size"][..., MASK_CHANNEL], mask)
    np.testing.assert_array_equal(t["offset"][..., MASK_CHANNEL], mask)
    np.testing.assert_allclose(t["size"][4, 4], [4.0, 4.0, 1.0])
    np.testing.assert_allclose(t["offset"][4, 4], [0.0, 0.5, 1.0])
    assert np.count_nonzero(t["size"][..., :2]) == 2
    assert np.count_nonzero(t["offset"][..., :2]) == 1


def test_radius_matches_centernet():
    heights = np.array([1.0, 4.0, 7.0, 30.0, 64.0])
    widths = np.array([3.0, 4.0, 2.0, 11.0, 64.0])
    expected = [_reference_radius(h, w) for h, w in zip(heights, widths, strict=True)]
    np.testing.assert_allclose(gaussian_radius(heights, widths), expected, rtol=1e-5)


def test_matches_numpy_reference():
    rng = np.random.default_rng(0)
    corners = rng.uniform(-0.1, 1.1, (12, 2, 2))
    boxes = np.concatenate([corners.min(1), corners.max(1)], axis=1)
    boxes = boxes.astype("float32")
    labels = rng.integers(-1, 4, 12)  # -1: padding
    labels[2:4] = [1, 1]
    boxes[2] = [0.2, 0.3, 0.6, 0.8]
    # Box 3 shares box 2's centre (the smaller gives size and offset).
    centre, half = (boxes[2, :2] + boxes[2, 2:]) / 2, (boxes[2, 2:] - boxes[2, :2]) / 4
    boxes[3] = np.concatenate([centre - half, centre + half])
    boxes[5, 2] = boxes[5, 0]  # empty box
    grid = (12, 20)
    got = _numpy(centernet_targets(boxes, labels, grid, num_classes=3))
    expected = _reference_targets(boxes, labels, grid, num_classes=3)
    assert got["size"][..., MASK_CHANNEL].sum() >= 5
    np.testing.assert_allclose(got["size"][4, 11, :2], [2.4, 5.0], rtol=1e-5)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], atol=1e-5, err_msg=key)


def test_no_objects():
    empty = np.zeros((0, 4), "float32")
    t = _numpy(centernet_targets(empty, np.zeros((0,), "int32"), (4, 6), 3))
    assert t["heatmap"].shape == (4, 6, 3)
    assert t["size"].shape == t["offset"].shape == (4, 6, 3)
    for value in t.values():
        np.testing.assert_array_equal(value, 0.0)


def test_overlapping_objects_take_the_maximum():
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.0, 0.125, 0.5, 0.625]]
    both = _numpy(centernet_targets(boxes, [0, 0], (8, 8), 1))["heatmap"]
    first = _numpy(centernet_targets(boxes[:1], [0], (8, 8), 1))["heatmap"]
    second = _numpy(centernet_targets(boxes[1:], [0], (8, 8), 1))["heatmap"]
    np.testing.assert_allclose(both, np.maximum(first, second))
    assert (both > first).any() and (both > second).any()  # not vacuous


@pytest.mark.parametrize("order", [[0, 1], [1, 0]])
def test_shared_centre_does_not_depend_on_order(order):
    boxes = np.array([[0.25, 0.25, 0.75, 0.75], [0.4, 0.4, 0.6, 0.6]], "float32")
    t = _numpy(centernet_targets(boxes[order], np.array([0, 0])[order], (8, 8), 1))
    np.testing.assert_allclose(t["size"][4, 4], [1.6, 1.6, 1.0], rtol=1e-6)


def test_in_dataset_map_with_padded_boxes():
    boxes = tf.constant([[[0.1, 0.1, 0.5, 0.4], [0, 0, 0, 0]]], tf.float32)
    labels = tf.constant([[2, -1]])
    dataset = tf.data.Dataset.from_tensor_slices((boxes, labels)).map(
        lambda b, y: centernet_targets(b, y, (16, 16), num_classes=3)
    )
    (targets,) = list(dataset.batch(1))
    assert targets["heatmap"].shape == (1, 16, 16, 3)
    assert float(tf.reduce_sum(targets["size"][..., MASK_CHANNEL])) == 1.0
    assert float(tf.reduce_max(targets["heatmap"][..., 2])) == 1.0


def test_dynamic_grid_size():
    @tf.function(input_signature=[tf.TensorSpec((), tf.int32)] * 2)
    def targets(h, w):
        return centernet_targets([[0.1, 0.2, 0.5, 0.9]], [0], (h, w), 1)

    t = targets(tf.constant(6), tf.constant(10))
    assert t["heatmap"].shape == (6, 10, 1)

"""Object-detection signatures: decoding and NMS, letterboxed bytes, odd images.

The export sweep (test_all_models.py) checks every detector's signatures
against Keras; here, exact numbers from a model with fixed outputs, and what
the bytes path does with images of other sizes and channel counts.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import perturb
from zoo import build_model
from zoo.export import export_model, serving_signatures
from zoo.export.inspection import signature_defs
from zoo.export.object_detection import MAX_DETECTIONS, suppress_detections

SIZE = 64
GRID = SIZE // 4
NUM_CLASSES = 3
OUTPUTS = {
    "boxes": (tf.float32, [-1, MAX_DETECTIONS, 4]),
    "scores": (tf.float32, [-1, MAX_DETECTIONS]),
    "classes": (tf.int64, [-1, MAX_DETECTIONS]),
    "num_detections": (tf.int64, [-1]),
}


class FixedMaps(keras.layers.Layer):
    """Outputs `value` for every image of the batch, whatever the image."""

    def __init__(self, value, **kwargs):
        super().__init__(**kwargs)
        self.value = np.asarray(value, np.float32)

    def call(self, image):
        batch = keras.ops.shape(image)[0]
        return keras.ops.broadcast_to(self.value, (batch, *self.value.shape))


def fixed_detector(peaks=()):
    """A detector of `SIZE` x `SIZE` images whose outputs are fixed.

    Every box is 8 x 8 cells with its centre in the middle of its cell.

    Args:
        peaks: `(row, column, class, logit)` heatmap peaks; every other logit
            is -10 (score 4.5e-5, below the threshold).
    """
    heatmap = np.full((GRID, GRID, NUM_CLASSES), -10.0, np.float32)
    for row, column, label, logit in peaks:
        heatmap[row, column, label] = logit
    maps = {
        "heatmap": heatmap,
        "size": np.full((GRID, GRID, 2), 8.0, np.float32),
        "offset": np.full((GRID, GRID, 2), 0.5, np.float32),
    }
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    outputs = {k: FixedMaps(v, name=k)(inputs) for k, v in maps.items()}
    return keras.Model(inputs, outputs, name="fixed_detector")


def _box(row, column):
    """The normalised box of a peak of `fixed_detector`, clipped."""
    centre = np.array([row, column, row, column], np.float32) + 0.5
    return np.clip((centre + np.array([-4, -4, 4, 4])) / GRID, 0.0, 1.0)


def _signatures(model):
    return {s.name: s for s in serving_signatures(model, "object_detection")}


def _call(signature, **inputs):
    outputs = signature.function(**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def _png(pixels):
    return tf.io.encode_png(np.asarray(pixels, np.uint8)).numpy()


def _bytes(*encoded):
    return np.array(encoded, dtype=object)


def _assert_valid(outputs, batch, num_classes):
    """Shapes, dtypes and the padding convention of a detection answer."""
    boxes, scores = outputs["boxes"], outputs["scores"]
    classes, count = outputs["classes"], outputs["num_detections"]
    assert boxes.shape == (batch, MAX_DETECTIONS, 4) and boxes.dtype == np.float32
    assert scores.shape == (batch, MAX_DETECTIONS) and scores.dtype == np.float32
    assert classes.shape == (batch, MAX_DETECTIONS) and classes.dtype == np.int64
    assert count.shape == (batch,) and count.dtype == np.int64
    assert np.all((boxes >= 0) & (boxes <= 1))
    assert np.all(boxes[..., :2] <= boxes[..., 2:])
    assert np.all(np.diff(scores, axis=1) <= 0)
    for i, n in enumerate(count):
        assert np.all((classes[i, :n] >= 0) & (classes[i, :n] < num_classes))
        assert np.all(scores[i, :n] >= 0.1)
        assert np.all(classes[i, n:] == -1)
        assert np.all(scores[i, n:] == 0) and np.all(boxes[i, n:] == 0)


# Decoding and non-maximum suppression, exactly.


def _iou(a, b):
    top_left = np.maximum(a[:2], b[:2])
    bottom_right = np.minimum(a[2:], b[2:])
    overlap = np.prod(np.clip(bottom_right - top_left, 0, None))
    areas = np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2])
    return overlap / (areas - overlap)


def _greedy_nms(boxes, scores, classes, iou_threshold):
    """Indices kept by class-aware greedy NMS, best first (NumPy)."""
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if classes[i] < 0:
            continue
        if all(
            classes[j] != classes[i] or _iou(boxes[i], boxes[j]) <= iou_threshold
            for j in kept
        ):
            kept.append(i)
    return kept


def test_suppression_matches_greedy_class_aware_nms():
    rng = np.random.default_rng(0)
    k = 40
    corners = rng.uniform(0, 0.7, (2, k, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(0.1, 0.3, (2, k, 2))], -1)
    scores = np.sort(rng.uniform(0.1, 1.0, (2, k)), axis=1)[:, ::-1].copy()
    classes = rng.integers(-1, 3, (2, k))
    got = {
        key: value.numpy()
        for key, value in suppress_detections(
            boxes.astype(np.float32), scores.astype(np.float32), classes, 3, 0.3
        ).items()
    }
    for i in range(2):
        kept = _greedy_nms(boxes[i], scores[i], classes[i], 0.3)
        n = len(kept)
        assert 0 < n < (classes[i] >= 0).sum(), "nothing suppressed: vacuous"
        assert got["num_detections"][i] == n
        np.testing.assert_allclose(got["boxes"][i, :n], boxes[i, kept], atol=1e-6)
        np.testing.assert_allclose(got["scores"][i, :n], scores[i, kept], atol=1e-6)
        np.testing.assert_array_equal(got["classes"][i, :n], classes[i, kept])
        assert np.all(got["classes"][i, n:] == -1)


def test_fixed_outputs_decode_and_suppress_a_duplicate():
    # Class 0 at (4, 4) and (4, 6): IoU 0.6, the weaker one goes. Class 1 at
    # (4, 6) overlaps the first as much but is another class: it stays.
    peaks = [(4, 4, 0, 2.0), (4, 6, 0, 1.0), (4, 6, 1, 0.5), (12, 12, 2, 0.0)]
    signatures = _signatures(fixed_detector(peaks))
    images = np.zeros((2, SIZE, SIZE, 3), np.float32)
    expected_boxes = np.stack([_box(4, 4), _box(4, 6), _box(12, 12)])
    expected_scores = 1 / (1 + np.exp(-np.array([2.0, 0.5, 0.0])))
    for name in ("serving_default", "serving_xla"):
        outputs = _call(signatures[name], image=images)
        _assert_valid(outputs, 2, NUM_CLASSES)
        np.testing.assert_array_equal(outputs["num_detections"], [3, 3])
        for i in range(2):
            np.testing.assert_array_equal(outputs["classes"][i, :3], [0, 1, 2])
            np.testing.assert_allclose(
                outputs["boxes"][i, :3], expected_boxes, atol=1e-6
            )
            np.testing.assert_allclose(
                outputs["scores"][i, :3], expected_scores, atol=1e-6
            )
    # Without NMS, the duplicate would be second.
    assert _iou(_box(4, 4), _box(4, 6)) == pytest.approx(0.6)


def test_an_image_without_objects_has_zero_detections():
    signatures = _signatures(fixed_detector())
    outputs = _call(
        signatures["serving_default"], image=np.zeros((1, SIZE, SIZE, 3), np.float32)
    )
    _assert_valid(outputs, 1, NUM_CLASSES)
    assert outputs["num_detections"].tolist() == [0]
    outputs = _call(
        signatures["serving_bytes"],
        image_bytes=_bytes(_png(np.zeros((40, 90, 3))), _png(np.zeros((1, 1, 3)))),
    )
    _assert_valid(outputs, 2, NUM_CLASSES)
    assert outputs["num_detections"].tolist() == [0, 0]


def test_bytes_boxes_are_mapped_back_to_the_original_image():
    # A 32 x 64 image is letterboxed unscaled into rows 16 to 48.
    peaks = [(8, 3, 0, 1.0), (2, 8, 1, 0.5)]
    signatures = _signatures(fixed_detector(peaks))
    outputs = _call(
        signatures["serving_bytes"], image_bytes=_bytes(_png(np.zeros((32, 64, 3))))
    )
    letterboxed = np.stack([_box(8, 3), _box(2, 8)])
    expected = (letterboxed * SIZE - [16, 0, 16, 0]) / [32, 64, 32, 64]
    assert outputs["num_detections"].tolist() == [2]
    np.testing.assert_allclose(
        outputs["boxes"][0, :2], np.clip(expected, 0, 1), atol=1e-6
    )
    assert expected.min() < 0, "a box reaching into the border is clipped"


# A real (untrained) detector.


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    model = build_model("attention_detector_tiny")
    perturb(model)
    return model, _signatures(model)


def test_untrained_detector_answers_valid_detections(tiny):
    model, signatures = tiny
    num_classes = model.output["heatmap"].shape[-1]
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)
    outputs = _call(signatures["serving_default"], image=images)
    _assert_valid(outputs, 2, num_classes)
    assert outputs["num_detections"].min() > 0, "some detections, not vacuous"
    # A 1 x 1 image, a 3 x 500 strip and a 12-megapixel photo.
    photo = tf.io.encode_jpeg(np.full((3000, 4000, 3), 90, np.uint8)).numpy()
    encoded = _bytes(
        _png(np.full((1, 1, 3), 200)), _png(rng.integers(0, 256, (3, 500, 3))), photo
    )
    _assert_valid(
        _call(signatures["serving_bytes"], image_bytes=encoded), 3, num_classes
    )


def test_bytes_match_serving_default_on_the_letterboxed_image(tiny):
    model, signatures = tiny
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
    served = _call(signatures["serving_bytes"], image_bytes=_bytes(_png(pixels)))
    # By hand: unscaled (64 / 64 = 1), centred, zero border above and below.
    letterboxed = np.zeros((1, SIZE, SIZE, 3), np.float32)
    letterboxed[0, 16:48] = pixels
    direct = _call(signatures["serving_default"], image=letterboxed)
    n = int(direct["num_detections"][0])
    assert n > 0 and served["num_detections"][0] == n
    np.testing.assert_array_equal(served["classes"], direct["classes"])
    np.testing.assert_allclose(served["scores"], direct["scores"], atol=1e-6)
    mapped = (direct["boxes"][0, :n] * SIZE - [16, 0, 16, 0]) / [32, 64, 32, 64]
    np.testing.assert_allclose(served["boxes"][0, :n], np.clip(mapped, 0, 1), atol=1e-5)


@pytest.mark.parametrize("channels", [1, 2, 4])
def test_grayscale_and_alpha_images_are_read_as_rgb(tiny, channels):
    _, signatures = tiny
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (50, 30, channels), dtype=np.uint8)
    colour = pixels[..., :3] if channels >= 3 else pixels[..., :1].repeat(3, -1)
    got = _call(signatures["serving_bytes"], image_bytes=_bytes(_png(pixels)))
    want = _call(signatures["serving_bytes"], image_bytes=_bytes(_png(colour)))
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_export_names_the_task_and_the_outputs(tmp_path):
    """A plain detector (as `zoo train` saves it) exports as a detector."""
    exported = export_model(fixed_detector([(4, 4, 0, 2.0)]), tmp_path / "d" / "1")
    assert exported.task == "object_detection"
    defs = signature_defs(exported.path)
    assert sorted(defs) == ["serving_bytes", "serving_default", "serving_xla"]
    for signature in defs.values():
        assert sorted(signature.outputs) == sorted(OUTPUTS)
        for key, (dtype, dims) in OUTPUTS.items():
            info = signature.outputs[key]
            assert info.dtype == dtype.as_datatype_enum, key
            assert [d.size for d in info.tensor_shape.dim] == dims, key
    loaded = tf.saved_model.load(exported.path)
    answer = loaded.signatures["serving_bytes"](
        image_bytes=tf.constant(_bytes(_png(np.zeros((1, 1, 1)))))
    )
    # A 1 x 1 image fills the letterbox: its boxes are the letterbox's.
    assert answer["num_detections"].numpy().tolist() == [1]
    np.testing.assert_allclose(answer["boxes"].numpy()[0, 0], _box(4, 4), atol=1e-6)


def test_model_contract_is_checked():
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="'heatmap', 'offset' and 'size'"):
        serving_signatures(keras.Model(inputs, logits), "object_detection")
    model = build_model("attention_detector_tiny", input_shape=(None, None, 3))
    with pytest.raises(ValueError, match=r"known H, W and C"):
        serving_signatures(model, "object_detection")


def test_no_bytes_signature_for_a_non_square_detector():
    model = build_model("attention_detector_tiny", input_shape=(32, 64, 3))
    names = [s.name for s in serving_signatures(model, "object_detection")]
    assert names == ["serving_default", "serving_xla"]

"""Box-aware augmentation (`training.box_augmentation`): hand-computed boxes.

The images are synthetic: a black image with a white rectangle where a box
is, so that a transformation's boxes can be checked against the pixels it
moved.
"""

import numpy as np
import pytest
import tensorflow as tf

from training import box_augmentation as ba

SEED = tf.constant([1, 2], tf.int64)


def _example(height=100, width=200, boxes=((0.2, 0.1, 0.6, 0.5),), labels=None):
    """A black uint8 image with the first box painted white, and its objects."""
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    image = np.zeros((height, width, 3), np.uint8)
    if len(boxes):
        y0, x0, y1, x1 = boxes[0]
        image[
            round(y0 * height) : round(y1 * height),
            round(x0 * width) : round(x1 * width),
        ] = 255
    labels = np.arange(len(boxes)) if labels is None else np.array(labels)
    area = np.round(
        (boxes[:, 2] - boxes[:, 0]) * height * (boxes[:, 3] - boxes[:, 1]) * width
    )
    return {
        "image": tf.constant(image),
        "image/filename": tf.constant("a.jpg"),
        "objects": {
            "bbox": tf.constant(boxes),
            "label": tf.constant(labels, tf.int64),
            "area": tf.constant(area, tf.int64),
        },
    }


def _bright_box(image):
    """Normalised `[ymin, xmin, ymax, xmax]` of the pixels brighter than 127."""
    image = np.asarray(image)
    rows, cols = np.nonzero(image[..., 0] > 127)
    height, width = image.shape[:2]
    return np.array(
        [
            rows.min() / height,
            cols.min() / width,
            (rows.max() + 1) / height,
            (cols.max() + 1) / width,
        ]
    )


# ---------------------------------------------------------------------------
# Flip
# ---------------------------------------------------------------------------


def test_flip_of_a_known_box():
    ex = _example(boxes=[(0.1, 0.2, 0.5, 0.6), (0.0, 0.0, 1.0, 0.25)])
    out = ba.flip_horizontal(ex)
    # [y0, x0, y1, x1] -> [y0, 1 - x1, y1, 1 - x0]
    np.testing.assert_allclose(
        out["objects"]["bbox"], [[0.1, 0.4, 0.5, 0.8], [0.0, 0.75, 1.0, 1.0]]
    )
    np.testing.assert_array_equal(out["image"], np.asarray(ex["image"])[:, ::-1])
    np.testing.assert_allclose(
        _bright_box(out["image"]), out["objects"]["bbox"][0], atol=1e-6
    )
    assert out["objects"]["label"].numpy().tolist() == [0, 1]
    assert out["image/filename"] == b"a.jpg"


def test_random_flip_flips_about_half_the_seeds():
    ex = _example()
    flipped = [
        bool(ba.random_flip(ex, tf.constant([s, 0]))["objects"]["bbox"][0, 1] != 0.1)
        for s in range(40)
    ]
    assert 10 < sum(flipped) < 30


# ---------------------------------------------------------------------------
# Crop
# ---------------------------------------------------------------------------

# On a 100 x 200 image, the window rows 20-80, columns 50-150 (top 20, left 50,
# height 60, width 100):
# - box a [0.1, 0.1, 0.5, 0.5] = rows 10-50, columns 20-100 (40 x 80 = 3200
#   pixels): visible rows 20-50, columns 50-100 (30 x 50 = 1500: 0.46875), in
#   the window [0, 0, 30 / 60, 50 / 100] = [0, 0, 0.5, 0.5];
# - box b [0.3, 0.3, 0.6, 0.6] = rows 30-60, columns 60-120, wholly inside:
#   [10 / 60, 10 / 100, 40 / 60, 70 / 100], 30 x 60 = 1800 pixels;
# - box c [0.9, 0.9, 1.0, 1.0] = rows 90-100: outside.
CROP_BOXES = [(0.1, 0.1, 0.5, 0.5), (0.3, 0.3, 0.6, 0.6), (0.9, 0.9, 1.0, 1.0)]
A_IN_WINDOW = [0.0, 0.0, 0.5, 0.5]
B_IN_WINDOW = [1 / 6, 0.1, 2 / 3, 0.7]


def test_crop_of_known_boxes_clips_and_drops_by_visible_fraction():
    ex = _example(boxes=CROP_BOXES, labels=[7, 8, 9])
    kept = ba.crop(ex, 20, 50, 60, 100, min_visibility=0.4)
    np.testing.assert_array_equal(kept["image"], np.asarray(ex["image"])[20:80, 50:150])
    np.testing.assert_allclose(
        kept["objects"]["bbox"], [A_IN_WINDOW, B_IN_WINDOW], atol=1e-6
    )
    assert kept["objects"]["label"].numpy().tolist() == [7, 8]
    assert kept["objects"]["area"].numpy().tolist() == [1500, 1800]
    # a shows 0.46875 of itself: dropped at 0.5, kept at 0.46875.
    strict = ba.crop(ex, 20, 50, 60, 100, min_visibility=0.5)
    np.testing.assert_allclose(strict["objects"]["bbox"], [B_IN_WINDOW], atol=1e-6)
    assert strict["objects"]["label"].numpy().tolist() == [8]
    edge = ba.crop(ex, 20, 50, 60, 100, min_visibility=0.46875)
    assert edge["objects"]["label"].numpy().tolist() == [7, 8]
    # min_visibility 0 still drops c, which has nothing left in the window.
    loose = ba.crop(ex, 20, 50, 60, 100, min_visibility=0.0)
    assert loose["objects"]["label"].numpy().tolist() == [7, 8]
    # A box wholly inside is kept at min_visibility 1.
    full = ba.crop(ex, 20, 50, 60, 100, min_visibility=1.0)
    assert full["objects"]["label"].numpy().tolist() == [8]


def test_crop_can_drop_every_box():
    ex = _example(boxes=CROP_BOXES)
    out = ba.crop(ex, 0, 0, 5, 5)
    assert out["objects"]["bbox"].shape == (0, 4)
    assert out["objects"]["label"].shape == (0,)


def test_random_crop_keeps_boxes_on_the_pixels():
    ex = _example(boxes=[(0.2, 0.1, 0.6, 0.5)])
    for s in range(6):
        out = ba.random_crop(ex, 0.7, 0.0, tf.constant([s, 3]))
        height, width = out["image"].shape[:2]
        assert 70 <= height <= 100 and 140 <= width <= 200
        if out["objects"]["bbox"].shape[0]:
            np.testing.assert_allclose(
                _bright_box(out["image"]), out["objects"]["bbox"][0], atol=1e-6
            )


# ---------------------------------------------------------------------------
# Scale jitter
# ---------------------------------------------------------------------------


def test_rescale_maps_boxes_with_the_image():
    ex = _example()  # white rows 20-60, columns 20-100 of 100 x 200
    out = ba.rescale(ex, 0.5)
    assert out["image"].shape == (50, 100, 3) and out["image"].dtype == tf.uint8
    np.testing.assert_allclose(out["objects"]["bbox"], [[0.2, 0.1, 0.6, 0.5]])
    np.testing.assert_allclose(_bright_box(out["image"]), [0.2, 0.1, 0.6, 0.5])
    assert out["objects"]["area"].numpy().tolist() == [800]  # 20 x 40 pixels


def test_random_scale_stays_in_range_and_on_the_pixels():
    ex = _example()
    sizes = set()
    for s in range(5):
        out = ba.random_scale(ex, 0.5, 1.5, tf.constant([s, 7]))
        height, width = out["image"].shape[:2]
        assert 50 <= height <= 150
        assert abs(width / 200 - height / 100) <= 1 / 100 + 1 / 200  # same factor
        sizes.add(height)
        np.testing.assert_allclose(
            _bright_box(out["image"]), out["objects"]["bbox"][0], atol=1.5 / height
        )
        area = 0.4 * height * 0.4 * width
        assert abs(int(out["objects"]["area"][0]) - area) <= 1
    assert len(sizes) > 1


# ---------------------------------------------------------------------------
# Colour
# ---------------------------------------------------------------------------


def test_colour_jitter_keeps_dtype_and_boxes():
    ex = _example()
    image = tf.fill([10, 20, 3], tf.constant(100, tf.uint8))
    ex = {**ex, "image": image}
    out = ba.random_colour(ex, SEED, brightness=0.1)
    assert out["image"].dtype == tf.uint8
    shift = out["image"].numpy().astype(int) - 100
    assert (shift == shift.flat[0]).all() and abs(shift.flat[0]) <= 26
    np.testing.assert_array_equal(out["objects"]["bbox"], ex["objects"]["bbox"])
    again = ba.random_colour(ex, SEED, brightness=0.1, contrast=0.3, saturation=0.3)
    same = ba.random_colour(ex, SEED, brightness=0.1, contrast=0.3, saturation=0.3)
    np.testing.assert_array_equal(again["image"], same["image"])


# ---------------------------------------------------------------------------
# Letterbox
# ---------------------------------------------------------------------------


def test_letterbox_maps_boxes_and_back():
    ex = _example()  # 100 x 200, box [0.2, 0.1, 0.6, 0.5]
    image, boxes = ba.letterbox(ex["image"], ex["objects"]["bbox"], 64, pad_value=114)
    # scale min(64 / 100, 64 / 200) = 0.32: 32 x 64, top (64 - 32) // 2 = 16.
    # y: (0.2 * 32 + 16) / 64 = 0.35, (0.6 * 32 + 16) / 64 = 0.55; x unchanged.
    assert image.shape == (64, 64, 3) and image.dtype == tf.uint8
    np.testing.assert_allclose(boxes, [[0.35, 0.1, 0.55, 0.5]], atol=1e-6)
    image = image.numpy()
    assert (image[:16] == 114).all() and (image[48:] == 114).all()
    np.testing.assert_allclose(_bright_box(image), boxes[0], atol=1.5 / 64)
    back = ba.unletterbox_boxes(boxes, 100, 200, 64)
    np.testing.assert_allclose(back, ex["objects"]["bbox"], atol=1e-6)


def test_unletterbox_takes_a_batch_of_image_sizes():
    boxes = tf.constant([[[0.35, 0.1, 0.55, 0.5]], [[0.1, 0.35, 0.5, 0.55]]])
    heights, widths = tf.constant([[100], [200]]), tf.constant([[200], [100]])
    back = ba.unletterbox_boxes(boxes, heights, widths, 64)
    np.testing.assert_allclose(
        back, [[[0.2, 0.1, 0.6, 0.5]], [[0.1, 0.2, 0.5, 0.6]]], atol=1e-6
    )


def test_letterbox_of_odd_sizes_round_trips():
    # 3 x 7 into 10: scale 10 / 7, 4 x 10 (round(4.29)), top 3.
    assert [int(v) for v in ba.letterbox_geometry(3, 7, 10)] == [4, 10, 3, 0]
    boxes = tf.constant([[0.0, 0.0, 1.0, 1.0], [0.25, 0.5, 0.75, 0.9]])
    image, mapped = ba.letterbox(tf.zeros([3, 7, 3]), boxes, 10)
    assert image.shape == (10, 10, 3) and image.dtype == tf.float32
    np.testing.assert_allclose(mapped[0], [0.3, 0.0, 0.7, 1.0], atol=1e-6)
    np.testing.assert_allclose(ba.unletterbox_boxes(mapped, 3, 7, 10), boxes, atol=1e-6)


def test_letterbox_example_recomputes_area():
    out = ba.letterbox_example(_example(), 64)
    assert out["image"].shape == (64, 64, 3)
    # 0.2 x 64 rows by 0.4 x 64 columns = 12.8 x 25.6 = 327.68 pixels.
    assert out["objects"]["area"].numpy().tolist() == [328]


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda ex: ba.letterbox(ex["image"], ex["objects"]["bbox"], 0), "size=0"),
        (
            lambda ex: ba.letterbox(ex["image"], ex["objects"]["bbox"], 8, 300),
            "pad_value=300",
        ),
        (
            lambda ex: ba.letterbox(ex["image"], tf.zeros([2, 3]), 8),
            r"boxes.shape=\(2, 3\)",
        ),
        (
            lambda ex: ba.letterbox(tf.zeros([4, 4]), tf.zeros([0, 4]), 8),
            r"image.shape=\(4, 4\)",
        ),
        (lambda ex: ba.crop(ex, 0, 0, 5, 5, min_visibility=1.5), "min_visibility=1.5"),
        (lambda ex: ba.crop(ex, -1, 0, 5, 5), "top=-1"),
        (lambda ex: ba.crop(ex, 0, 0, 0, 5), "height=0"),
        (lambda ex: ba.random_crop(ex, 0.0, 0.5, SEED), "min_size=0.0"),
        (lambda ex: ba.random_scale(ex, 2.0, 1.0, SEED), r"scale=\(2.0, 1.0\)"),
        (lambda ex: ba.rescale(ex, -1.0), "factor=-1.0"),
        (lambda ex: ba.random_colour(ex, SEED, contrast=1.0), "contrast=1.0"),
        (lambda ex: ba.random_colour(ex, SEED, brightness=-0.1), "brightness=-0.1"),
        (
            lambda ex: ba.flip_horizontal({"image": ex["image"]}),
            "'objects' with 'bbox'",
        ),
    ],
)
def test_bad_arguments_raise_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call(_example())


@pytest.mark.parametrize(
    "settings, message",
    [
        ("flip", "augmentation='flip'"),
        ({"rotate": 10}, r"unknown keys \['rotate'\]"),
        ({"flip": "yes"}, "flip='yes'"),
        ({"scale": 1.2}, "scale=1.2"),
        ({"scale": (0.0, 1.0)}, r"scale=\(0.0, 1.0\)"),
        ({"scale": (1.0, 5.0)}, r"scale=\(1.0, 5.0\)"),
        ({"crop": 1.5}, "crop=1.5"),
        ({"min_visibility": 0.5}, "`min_visibility` only applies with `crop`"),
        ({"crop": 0.5, "min_visibility": -0.1}, "min_visibility=-0.1"),
        ({"saturation": 1.0}, "saturation=1.0"),
    ],
)
def test_bad_settings_raise_naming_them(settings, message):
    with pytest.raises(ValueError, match=message):
        ba.check_box_augmentation(settings)


def test_settings_are_checked_into_a_new_dict():
    settings = {"scale": [0.5, 2], "crop": 0.6, "min_visibility": 0, "flip": True}
    checked = ba.check_box_augmentation(settings)
    assert checked == {
        "scale": (0.5, 2.0),
        "crop": 0.6,
        "min_visibility": 0.0,
        "flip": True,
    }
    assert checked is not settings and settings["scale"] == [0.5, 2]
    assert ba.check_box_augmentation(None) == {}


# ---------------------------------------------------------------------------
# All together, in tf.data
# ---------------------------------------------------------------------------

SETTINGS = {
    "scale": (0.6, 1.4),
    "crop": 0.7,
    "min_visibility": 0.3,
    "flip": True,
    "brightness": 0.1,
    "contrast": 0.2,
    "saturation": 0.2,
}


def test_augment_example_is_deterministic_with_a_seed():
    ex = _example(boxes=CROP_BOXES)
    first = ba.augment_example(ex, SETTINGS, SEED)
    second = ba.augment_example(ex, SETTINGS, SEED)
    tf.nest.map_structure(np.testing.assert_array_equal, first, second)
    other = [ba.augment_example(ex, SETTINGS, tf.constant([s, 9])) for s in range(3)]
    assert len({o["image"].shape for o in other} | {first["image"].shape}) > 1


def _dataset():
    def generate():
        for n, (h, w) in enumerate([(100, 200), (120, 90), (64, 64)]):
            ex = _example(h, w, boxes=CROP_BOXES[: n + 1])
            yield {"image": ex["image"], "objects": ex["objects"]}

    spec = {
        "image": tf.TensorSpec((None, None, 3), tf.uint8),
        "objects": {
            "bbox": tf.TensorSpec((None, 4), tf.float32),
            "label": tf.TensorSpec((None,), tf.int64),
            "area": tf.TensorSpec((None,), tf.int64),
        },
    }
    return tf.data.Dataset.from_generator(generate, output_signature=spec)


def _epoch(ds):
    return [
        (
            ex["image"].numpy(),
            ex["objects"]["bbox"].numpy(),
            ex["objects"]["label"].numpy(),
        )
        for ex in ds
    ]


def test_augment_dataset_in_tf_data_is_seeded_and_letterboxes_to_batches():
    ds = ba.augment_dataset(_dataset(), SETTINGS, seed=5)
    first, again = _epoch(ds), _epoch(ba.augment_dataset(_dataset(), SETTINGS, seed=5))
    for (i1, b1, l1), (i2, b2, l2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(b1, b2)
        np.testing.assert_array_equal(l1, l2)
    for _, boxes, labels in first:
        assert boxes.shape == (len(labels), 4)
        assert (boxes >= 0).all() and (boxes <= 1).all()
    batches = ds.map(lambda ex: ba.letterbox_example(ex, 32)).padded_batch(3)
    batch = next(iter(batches))
    assert batch["image"].shape == (3, 32, 32, 3)
    plain = _dataset()
    assert ba.augment_dataset(plain, None, seed=5) is plain

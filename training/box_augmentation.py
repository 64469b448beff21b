"""Random transformations of detection examples: the image and its boxes together.

Like `training.augmentation`, each transformation takes and returns a dict of
one example's features, in the layout of the project's detection builders
(`training.detection_datasets`, the catalog's `coco` / `voc`):

    {"image": (height, width, 3) uint8 (or float in [0, 1]),
     "objects": {"bbox": (N, 4) float32 normalised [ymin, xmin, ymax, xmax],
                 "label": (N,), ...},
     ...}

Every entry of `"objects"` is per box (leading dimension N): a transformation
that drops boxes drops the same rows of all of them, and one that changes the
image size recomputes `"area"` (pixels of the new image, rounded) when there
is one. Other features pass through. Images keep their dtype.

All are TensorFlow ops (`tf.image`, `tf.random.stateless_*`) of a `(2,)` int
seed, for `tf.data.Dataset.map`: the same seed gives the same result, and no
Python randomness is involved. The settings of a variant are a dict such as
`{"flip": True, "scale": (0.75, 1.25), "crop": 0.6, "brightness": 0.1}`
(`check_box_augmentation`); `augment_example` applies them in the order
scale, crop, flip, colour. `letterbox` (resize with padding to a square) is
not random and belongs to training and serving alike: `unletterbox_boxes`
maps a model's boxes back to the original image.
"""

import numbers

import tensorflow as tf

from layers.validation import (
    check_float,
    check_int,
    check_non_negative_int,
    check_positive_int,
    check_rank,
    check_rate,
)

# Settings keys, with what each does (see `augment_example`).
AUGMENTATIONS = {
    "scale": "(low, high): resize by a factor uniform in [low, high]",
    "crop": "random crop whose height and width are at least this fraction",
    "min_visibility": "with crop: keep a box when this fraction of it is left",
    "flip": "True: horizontal flip with probability 0.5",
    "brightness": "add a delta uniform in [-b, b] (image in [0, 1])",
    "contrast": "contrast factor uniform in [1 - c, 1 + c]",
    "saturation": "saturation factor uniform in [1 - s, 1 + s]",
}
DEFAULT_MIN_VISIBILITY = 0.5
# Largest scale-jitter factor accepted (images grow quadratically).
MAX_SCALE = 4.0
# Slack of the visible-fraction test: a box wholly inside a crop computes a
# fraction of 1 only up to float32 rounding.
_VISIBILITY_SLACK = 1e-5
# Fixed sub-seed per transformation, so that enabling one leaves the draws of
# the others unchanged.
_SEED_INDEX = {"scale": 0, "crop": 1, "flip": 2, "colour": 3}


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------


def check_box_augmentation(settings):
    """Validates detection augmentation settings; returns them as a new dict.

    Args:
        settings: `None` or a dict with keys from `AUGMENTATIONS`: `scale` a
            pair `(low, high)` with `0 < low <= high <= 4`; `crop` in (0, 1];
            `min_visibility` in [0, 1], only with `crop` (default 0.5);
            `flip` a bool; `brightness` in [0, 1]; `contrast` and
            `saturation` in [0, 1).

    Returns:
        A dict (empty for none; `scale` as a tuple of floats).

    Raises:
        ValueError: an unknown key or a value out of range, naming it.
    """
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ValueError(
            "Argument `augmentation` must be a dict such as {'flip': True} or "
            f"None. Received: augmentation={settings!r}"
        )
    unknown = sorted(set(settings) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(
            f"Argument `augmentation` has unknown keys {unknown}; valid keys: "
            f"{sorted(AUGMENTATIONS)}. Received: augmentation={settings!r}"
        )
    if "min_visibility" in settings and "crop" not in settings:
        raise ValueError(
            "Argument `min_visibility` only applies with `crop`. Received: "
            f"augmentation={settings!r}"
        )
    checked = dict(settings)
    if "scale" in checked:
        checked["scale"] = check_scale_range("scale", checked["scale"])
    if "crop" in checked:
        checked["crop"] = check_float("crop", checked["crop"], 0.0, 1.0)
    if "min_visibility" in checked:
        checked["min_visibility"] = check_float(
            "min_visibility", checked["min_visibility"], 0.0, 1.0, low_open=False
        )
    if "flip" in checked and not isinstance(checked["flip"], bool):
        raise ValueError(
            f"Argument `flip` must be a bool. Received: flip={checked['flip']!r}"
        )
    if "brightness" in checked:
        checked["brightness"] = check_float(
            "brightness", checked["brightness"], 0.0, 1.0, low_open=False
        )
    for key in ("contrast", "saturation"):
        if key in checked:
            checked[key] = check_rate(key, checked[key])
    return checked


def check_scale_range(name, value):
    """Raises unless `value` is `(low, high)` with `0 < low <= high <= 4`."""
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
        and 0.0 < value[0] <= value[1] <= MAX_SCALE
    )
    if not ok:
        raise ValueError(
            f"Argument `{name}` must be a pair (low, high) with 0 < low <= high "
            f"<= {MAX_SCALE}. Received: {name}={value!r}"
        )
    return (float(value[0]), float(value[1]))


def _check_image(image):
    check_rank("image", image.shape, 3)
    return image


def _check_boxes(name, boxes):
    if boxes.shape.rank is None or boxes.shape.rank < 1 or boxes.shape[-1] != 4:
        raise ValueError(
            f"Input `{name}` must have a last dimension of 4 ([ymin, xmin, ymax, "
            f"xmax]). Received: {name}.shape={tuple(boxes.shape)}"
        )
    return boxes


def _check_features(features):
    if not isinstance(features, dict) or "image" not in features:
        raise ValueError(
            "Argument `features` must be a dict with 'image' and 'objects' "
            "(whose 'bbox' are the boxes). Received: features of type "
            f"{type(features).__name__}"
            + (f" with keys {sorted(features)}" if isinstance(features, dict) else "")
        )
    if "bbox" not in (features.get("objects") or {}):
        raise ValueError(
            "Argument `features` must have 'objects' with 'bbox'. Received: "
            f"features keys {sorted(features)}"
        )
    _check_image(features["image"])
    _check_boxes("bbox", features["objects"]["bbox"])


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _size(image):
    """`(height, width)` of `image` as float32 scalars."""
    shape = tf.shape(image)
    return tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)


def _as_dtype(image, dtype):
    """`image` (float) cast to `dtype`, rounded and clipped for integers."""
    if dtype.is_integer:
        image = tf.clip_by_value(tf.round(image), dtype.min, dtype.max)
    return tf.cast(image, dtype)


def _resize(image, height, width):
    """`image` resized to `(height, width)` (bilinear, antialiased), same dtype."""
    resized = tf.image.resize(image, tf.stack([height, width]), antialias=True)
    return _as_dtype(resized, image.dtype)


def _box_area(boxes, height, width):
    return (boxes[:, 2] - boxes[:, 0]) * height * (boxes[:, 3] - boxes[:, 1]) * width


def _with(features, image, boxes, keep=None):
    """`features` with a new image and boxes; rows of `keep` only, if given.

    Every per-box entry of `"objects"` is masked with `keep`; `"area"` is
    recomputed in pixels of the new image.
    """
    objects = dict(features["objects"])
    if keep is not None:
        objects = {k: tf.boolean_mask(v, keep) for k, v in objects.items()}
        boxes = tf.boolean_mask(boxes, keep)
    objects["bbox"] = boxes
    if "area" in objects:
        area = tf.round(_box_area(boxes, *_size(image)))
        objects["area"] = tf.cast(area, objects["area"].dtype)
    return {**features, "image": image, "objects": objects}


# ---------------------------------------------------------------------------
# Transformations
# ---------------------------------------------------------------------------


def flip_horizontal(features):
    """Mirrors the image left-right; a box `[y0, x0, y1, x1]` becomes
    `[y0, 1 - x1, y1, 1 - x0]`.

    Args:
        features: dict with `"image"` and `"objects"` (see the module).

    Returns:
        A new dict, flipped.
    """
    _check_features(features)
    boxes = tf.convert_to_tensor(features["objects"]["bbox"])
    y0, x0, y1, x1 = tf.unstack(boxes, 4, axis=-1)
    flipped = tf.stack([y0, 1.0 - x1, y1, 1.0 - x0], axis=-1)
    return _with(features, tf.image.flip_left_right(features["image"]), flipped)


def random_flip(features, seed):
    """`flip_horizontal` with probability 0.5.

    Args:
        features: dict with `"image"` and `"objects"`.
        seed: `(2,)` int tensor, the stateless seed.

    Returns:
        A new dict, flipped or not.
    """
    _check_features(features)
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return tf.cond(flip, lambda: flip_horizontal(features), lambda: dict(features))


def rescale(features, factor):
    """Resizes the image by `factor` (bilinear, antialiased).

    The new size is `max(1, round(factor * size))` in each dimension; the
    normalised boxes stay as they are (they cover the same content), and
    `"area"` becomes pixels of the new size.

    Args:
        features: dict with `"image"` and `"objects"`.
        factor: positive float (or float scalar tensor).

    Returns:
        A new dict, resized.
    """
    _check_features(features)
    if isinstance(factor, numbers.Real):
        check_float("factor", factor)
    image = features["image"]
    height, width = _size(image)
    factor = tf.cast(factor, tf.float32)
    new_height = tf.maximum(tf.cast(tf.round(height * factor), tf.int32), 1)
    new_width = tf.maximum(tf.cast(tf.round(width * factor), tf.int32), 1)
    resized = _resize(image, new_height, new_width)
    return _with(features, resized, tf.convert_to_tensor(features["objects"]["bbox"]))


def random_scale(features, low, high, seed):
    """`rescale` by a factor uniform in `[low, high]` (scale jitter).

    Args:
        features: dict with `"image"` and `"objects"`.
        low: smallest factor, in (0, 4].
        high: largest factor, in [low, 4].
        seed: `(2,)` int tensor, the stateless seed.

    Returns:
        A new dict, resized.
    """
    low, high = check_scale_range("scale", (low, high))
    factor = tf.random.stateless_uniform([], seed, low, high)
    return rescale(features, factor)


def crop(features, top, left, height, width, min_visibility=DEFAULT_MIN_VISIBILITY):
    """Crops the image to a window of pixels; boxes are clipped to it.

    A box is mapped into the window (`(y * H - top) / height`, same for x),
    clipped to [0, 1], and kept when its visible part has a positive area of
    at least `min_visibility` of its own area (both in pixels of the
    original image). Zero-area boxes are always dropped.

    Args:
        features: dict with `"image"` and `"objects"`.
        top, left: the window's first row and column (ints or int tensors).
        height, width: the window's size in pixels (at least 1, inside the
            image).
        min_visibility: float in [0, 1].

    Returns:
        A new dict with the cropped image and the boxes kept.
    """
    _check_features(features)
    min_visibility = check_float(
        "min_visibility", min_visibility, 0.0, 1.0, low_open=False
    )
    for name, value in (("top", top), ("left", left)):
        if not tf.is_tensor(value):
            check_non_negative_int(name, value)
    for name, value in (("height", height), ("width", width)):
        if not tf.is_tensor(value):
            check_positive_int(name, value)
    image = features["image"]
    cropped = tf.image.crop_to_bounding_box(image, top, left, height, width)
    image_height, image_width = _size(image)
    top, left, height, width = (
        tf.cast(v, tf.float32) for v in (top, left, height, width)
    )
    boxes = tf.convert_to_tensor(features["objects"]["bbox"])
    y0, x0, y1, x1 = tf.unstack(boxes, 4, axis=-1)
    moved = tf.stack(
        [
            (y0 * image_height - top) / height,
            (x0 * image_width - left) / width,
            (y1 * image_height - top) / height,
            (x1 * image_width - left) / width,
        ],
        axis=-1,
    )
    clipped = tf.clip_by_value(moved, 0.0, 1.0)
    visible = _box_area(clipped, height, width)
    whole = _box_area(boxes, image_height, image_width)
    fraction = tf.math.divide_no_nan(visible, whole)
    keep = (visible > 0) & (fraction >= min_visibility - _VISIBILITY_SLACK)
    return _with(features, cropped, clipped, keep)


def random_crop(features, min_size, min_visibility, seed):
    """`crop` to a random window at least `min_size` of the height and width.

    The window's height and width are `round(f * size)` with `f` uniform in
    `[min_size, 1]`, drawn separately; its position is uniform over the
    positions inside the image.

    Args:
        features: dict with `"image"` and `"objects"`.
        min_size: float in (0, 1], the smallest side as a fraction.
        min_visibility: float in [0, 1] (see `crop`).
        seed: `(2,)` int tensor, the stateless seed.

    Returns:
        A new dict, cropped.
    """
    min_size = check_float("min_size", min_size, 0.0, 1.0)
    _check_features(features)
    shape = tf.shape(features["image"])
    seeds = tf.random.experimental.stateless_split(seed, 4)
    sides = []
    for i in range(2):
        fraction = tf.random.stateless_uniform([], seeds[i], min_size, 1.0)
        side = tf.cast(tf.round(fraction * tf.cast(shape[i], tf.float32)), tf.int32)
        sides.append(tf.clip_by_value(side, 1, shape[i]))
    offsets = [
        tf.random.stateless_uniform(
            [], seeds[2 + i], 0, shape[i] - sides[i] + 1, dtype=tf.int32
        )
        for i in range(2)
    ]
    return crop(features, *offsets, *sides, min_visibility=min_visibility)


def random_colour(features, seed, brightness=0.0, contrast=0.0, saturation=0.0):
    """Jitters brightness, contrast and saturation (in that order).

    On the image as float in [0, 1] (uint8 / 255): brightness adds a delta
    uniform in `[-brightness, brightness]`, contrast and saturation multiply
    by a factor uniform in `[1 - c, 1 + c]`; the result is clipped to [0, 1]
    and returned in the image's dtype. Boxes are unchanged. A zero setting
    is skipped.

    Args:
        features: dict with `"image"` (3 channels) and `"objects"`.
        seed: `(2,)` int tensor, the stateless seed.
        brightness: float in [0, 1].
        contrast: float in [0, 1).
        saturation: float in [0, 1).

    Returns:
        A new dict with the jittered image.
    """
    brightness = check_float("brightness", brightness, 0.0, 1.0, low_open=False)
    contrast = check_rate("contrast", contrast)
    saturation = check_rate("saturation", saturation)
    _check_features(features)
    image = features["image"]
    if image.shape[-1] != 3:
        raise ValueError(
            "Input `image` must have 3 channels for colour jitter. Received: "
            f"image.shape={tuple(image.shape)}"
        )
    seeds = tf.random.experimental.stateless_split(seed, 3)
    jittered = tf.image.convert_image_dtype(image, tf.float32)
    if brightness:
        jittered = tf.image.stateless_random_brightness(jittered, brightness, seeds[0])
    if contrast:
        jittered = tf.image.stateless_random_contrast(
            jittered, 1.0 - contrast, 1.0 + contrast, seeds[1]
        )
    if saturation:
        jittered = tf.image.stateless_random_saturation(
            jittered, 1.0 - saturation, 1.0 + saturation, seeds[2]
        )
    jittered = tf.clip_by_value(jittered, 0.0, 1.0)
    jittered = tf.image.convert_image_dtype(jittered, image.dtype, saturate=True)
    return {**features, "image": jittered}


# ---------------------------------------------------------------------------
# Letterbox: resize with padding to a square, for training and serving
# ---------------------------------------------------------------------------


def letterbox_geometry(height, width, size):
    """How `letterbox` places an image of `height` x `width` in `size` x `size`.

    The image is scaled by `min(size / height, size / width)` to
    `new_height = clip(round(height * scale), 1, size)` (width alike) and
    centred: `top = (size - new_height) // 2`, `left = (size - new_width) // 2`.

    Args:
        height, width: int or float tensors of any shape (broadcastable).
        size: positive int.

    Returns:
        `(new_height, new_width, top, left)`, int32 tensors.
    """
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    scale = tf.minimum(size / height, size / width)
    new_height = tf.clip_by_value(tf.cast(tf.round(height * scale), tf.int32), 1, size)
    new_width = tf.clip_by_value(tf.cast(tf.round(width * scale), tf.int32), 1, size)
    return new_height, new_width, (size - new_height) // 2, (size - new_width) // 2


def letterbox(image, boxes, size, pad_value=0):
    """Resizes `image` to fit a `size` x `size` square, padded; maps `boxes`.

    The aspect ratio is kept (see `letterbox_geometry`); the border is filled
    with `pad_value`. A normalised box coordinate `y` becomes
    `(y * new_height + top) / size` (x alike): the box covers the same
    content. `unletterbox_boxes` is the inverse.

    Args:
        image: `(height, width, channels)` tensor, uint8 or float.
        boxes: `(N, 4)` normalised `[ymin, xmin, ymax, xmax]`.
        size: positive int, the side of the square.
        pad_value: number in [0, 255], the border's value (in the image's
            units: 0-255 for uint8, 0-1 for float images).

    Returns:
        `(image, boxes)`: the `(size, size, channels)` image in the dtype of
        `image`, and the boxes in its normalised coordinates (float32).
    """
    size = check_positive_int("size", size)
    pad_value = check_float("pad_value", pad_value, 0.0, 255.0, low_open=False)
    image = _check_image(tf.convert_to_tensor(image))
    boxes = _check_boxes("boxes", tf.convert_to_tensor(boxes, tf.float32))
    shape = tf.shape(image)
    new_height, new_width, top, left = letterbox_geometry(shape[0], shape[1], size)
    resized = _resize(image, new_height, new_width)
    padded = tf.pad(
        resized,
        [[top, size - new_height - top], [left, size - new_width - left], [0, 0]],
        constant_values=tf.cast(pad_value, image.dtype),
    )
    padded = tf.ensure_shape(padded, (size, size, image.shape[-1]))
    scale = tf.cast(tf.stack([new_height, new_width] * 2), tf.float32)
    offset = tf.cast(tf.stack([top, left] * 2), tf.float32)
    return padded, (boxes * scale + offset) / size


def unletterbox_boxes(boxes, height, width, size):
    """Maps boxes of a letterboxed image back to the original image.

    The inverse of `letterbox`'s box mapping: `y = (y' * size - top) /
    new_height` (x alike), clipped to [0, 1]. For serving: a model reads the
    letterboxed image and its boxes are wanted on the original.

    Args:
        boxes: `(..., 4)` normalised `[ymin, xmin, ymax, xmax]` in the
            letterboxed image.
        height, width: the original image's size: numbers or tensors
            broadcastable to `boxes.shape[:-1]` (e.g. `(batch, 1)` for boxes
            of shape `(batch, N, 4)`).
        size: positive int, the letterbox side.

    Returns:
        float32 boxes of the same shape, normalised to the original image.
    """
    size = check_positive_int("size", size)
    boxes = _check_boxes("boxes", tf.convert_to_tensor(boxes, tf.float32))
    new_height, new_width, top, left = letterbox_geometry(height, width, size)
    scale = tf.cast(tf.stack([new_height, new_width] * 2, axis=-1), tf.float32)
    offset = tf.cast(tf.stack([top, left] * 2, axis=-1), tf.float32)
    return tf.clip_by_value((boxes * size - offset) / scale, 0.0, 1.0)


def letterbox_example(features, size, pad_value=0):
    """`letterbox` of an example's image and boxes (`"area"` recomputed).

    Args:
        features: dict with `"image"` and `"objects"`.
        size: positive int.
        pad_value: the border's value (see `letterbox`).

    Returns:
        A new dict with the `(size, size, 3)` image and mapped boxes.
    """
    _check_features(features)
    image, boxes = letterbox(
        features["image"], features["objects"]["bbox"], size, pad_value
    )
    return _with(features, image, boxes)


# ---------------------------------------------------------------------------
# All together
# ---------------------------------------------------------------------------


def augment_example(features, settings, seed):
    """Applies the transformations of `settings` to one example.

    In the order scale (`random_scale`), crop (`random_crop`), flip
    (`random_flip`), colour (`random_colour`), each with its own sub-seed of
    `seed` (fixed per transformation).

    Args:
        features: dict with `"image"` and `"objects"` (see the module).
        settings: settings as `check_box_augmentation` accepts them.
        seed: `(2,)` int tensor, the stateless seed of this example.

    Returns:
        The transformed features (a new dict).
    """
    settings = check_box_augmentation(settings)
    _check_features(features)
    seeds = tf.random.experimental.stateless_split(seed, len(_SEED_INDEX))
    features = dict(features)
    if "scale" in settings:
        features = random_scale(
            features, *settings["scale"], seeds[_SEED_INDEX["scale"]]
        )
    if "crop" in settings:
        features = random_crop(
            features,
            settings["crop"],
            settings.get("min_visibility", DEFAULT_MIN_VISIBILITY),
            seeds[_SEED_INDEX["crop"]],
        )
    if settings.get("flip"):
        features = random_flip(features, seeds[_SEED_INDEX["flip"]])
    colour = {k: settings.get(k, 0.0) for k in ("brightness", "contrast", "saturation")}
    if any(colour.values()):
        features = random_colour(features, seeds[_SEED_INDEX["colour"]], **colour)
    return features


def augment_dataset(ds, settings, seed):
    """Maps `augment_example` over the examples of `ds`, seeded.

    The seeds as in `training.augmentation.augment_dataset`: one stateless seed
    per example from a random stream seeded with `seed` that draws anew each
    epoch (same seed, same augmented epochs; each epoch differs).

    Args:
        ds: a `tf.data.Dataset` of single (unbatched) examples, dicts with
            `"image"` and `"objects"`; other features pass through.
        settings: settings (see `check_box_augmentation`).
        seed: int, the seed of the stream.

    Returns:
        The augmented dataset (`ds` itself when `settings` is empty).
    """
    settings = check_box_augmentation(settings)
    if not settings:
        return ds
    seed = check_int("seed", seed)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    seeds = seeds.batch(2, drop_remainder=True)
    return tf.data.Dataset.zip((ds, seeds)).map(
        lambda features, example_seed: augment_example(
            features, settings, example_seed
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )

"""Random transformations of training examples, in the `tf.data` pipeline.

Augmentation belongs to training, not to the model: a model's `call` is then
deterministic (`model(x)` equals `model.predict(x)` on every call and after
reloading), and the exported SavedModel holds no random op. A variant's
settings are its `training["augmentation"]` dict, e.g. `{"translation": 0.08}`.

Each transformation takes and returns a dict of one example's features, so
that transformations of other features (boxes, for detection) go with the
image's: `"image"` is a `(height, width, channels)` tensor.
"""

import tensorflow as tf

from layers.validation import check_float, check_int

# Settings keys, with what each does (see `augment_example`).
AUGMENTATIONS = {
    "translation": "random shift of up to this fraction of the height and width",
}


def check_augmentation(settings):
    """Validates augmentation settings; returns them as a new dict.

    Args:
        settings: `None` or a dict with keys from `AUGMENTATIONS`.

    Returns:
        A dict (empty for none).

    Raises:
        ValueError: an unknown key or a value out of range.
    """
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise ValueError(
            "Argument `augmentation` must be a dict such as {'translation': 0.08} "
            f"or None. Received: augmentation={settings!r}"
        )
    unknown = sorted(set(settings) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(
            f"Argument `augmentation` has unknown keys {unknown}; valid keys: "
            f"{sorted(AUGMENTATIONS)}. Received: augmentation={settings!r}"
        )
    checked = dict(settings)
    if "translation" in checked:
        checked["translation"] = check_float(
            "translation", checked["translation"], 0.0, 0.5, low_open=False
        )
    return checked


def _shift(size, fraction):
    return int(round(size * fraction))


def random_translation(features, fraction, seed):
    """Shifts the image by whole pixels, filling the border with zeros.

    The shift is uniform in `[-round(fraction * size), round(fraction * size)]`
    pixels, drawn separately for height and width.

    Args:
        features: dict with `"image"`, a `(height, width, channels)` tensor of
            static height and width.
        fraction: float in [0, 0.5], the largest shift as a fraction of the size.
        seed: `(2,)` int tensor, the stateless seed of this example.

    Returns:
        A new dict whose `"image"` is shifted.
    """
    image = features["image"]
    height, width, channels = image.shape
    max_dy, max_dx = _shift(height, fraction), _shift(width, fraction)
    if not max_dy and not max_dx:
        return dict(features)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    dy = tf.random.stateless_uniform([], seeds[0], -max_dy, max_dy + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([], seeds[1], -max_dx, max_dx + 1, dtype=tf.int32)
    padded = tf.pad(image, [[max_dy, max_dy], [max_dx, max_dx], [0, 0]])
    shifted = tf.slice(padded, [max_dy - dy, max_dx - dx, 0], [height, width, -1])
    shifted = tf.ensure_shape(shifted, (height, width, channels))
    return {**features, "image": shifted}


def augment_example(features, settings, seed):
    """Applies the transformations of `settings` to one example.

    Args:
        features: dict of the example's features (`"image"`).
        settings: checked settings (see `check_augmentation`).
        seed: `(2,)` int tensor, the stateless seed of this example.

    Returns:
        The transformed features (a new dict).
    """
    features = dict(features)
    if settings.get("translation"):
        features = random_translation(features, settings["translation"], seed)
    return features


def augment_dataset(ds, settings, seed):
    """Maps `augment_example` over the examples of `ds`, seeded.

    Every example gets its own stateless seed from a random stream seeded with
    `seed` that draws anew each epoch: the same seed gives the same augmented
    epochs, and each epoch differs from the last.

    Args:
        ds: a `tf.data.Dataset` of single (unbatched) examples, each a dict of
            features with `"image"`; other features pass through.
        settings: augmentation settings (see `check_augmentation`).
        seed: int, the seed of the stream.

    Returns:
        The augmented dataset (`ds` itself when `settings` is empty).
    """
    settings = check_augmentation(settings)
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

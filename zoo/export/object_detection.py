"""Serving signatures of object detectors: images or encoded bytes in, boxes out."""

import numpy as np
import tensorflow as tf

from training.box_augmentation import letterbox, unletterbox_boxes
from zoo.detection.decoding import decode_detections
from zoo.export.image_classification import (
    bad_image_bytes_requests,
    checked_image,
    checked_image_bytes,
)
from zoo.export.serving_signature import ServingSignature

# Detections per image in every answer, padded (TF Object Detection API and
# COCO evaluation: 100).
MAX_DETECTIONS = 100
# Lowest score of a detection (`decode_detections`' default).
SCORE_THRESHOLD = 0.1
# Class-aware non-maximum suppression: a box overlapping a better one of its
# class by more than this IoU is dropped.
IOU_THRESHOLD = 0.5
# The detectors read pixels in [0, 255].
PIXEL_MAX = 255.0
# Border value of the letterboxed images of `serving_bytes`; training
# letterboxes the same way (`training.box_augmentation.letterbox`).
LETTERBOX_PAD_VALUE = 0
# The outputs of a detector (`zoo.attention_detector`).
DETECTOR_OUTPUTS = ("heatmap", "offset", "size")
# Channel counts that `decode_png` and `decode_jpeg` convert any image to.
_DECODABLE_CHANNELS = (1, 3)


def object_detection_signatures(model):
    """Signatures of a CenterNet-style detector, from images to boxes.

    - `serving_default`: `image` float32 `(None, H, W, C)`, pixels in
      `[0, 255]` (the model's own input) -> `boxes` float32 `(None, 100, 4)`
      normalised `[ymin, xmin, ymax, xmax]`, `scores` float32 `(None, 100)`
      in decreasing order, `classes` int64 `(None, 100)` and
      `num_detections` int64 `(None,)`. The model's outputs are decoded
      (`decode_detections`: the 100 best heatmap peaks scoring at least
      `SCORE_THRESHOLD`), then class-aware non-maximum suppression
      (`IOU_THRESHOLD`) keeps the first `num_detections` entries; the rest is
      padding: box 0, score 0, class -1.
    - `serving_xla`: the same, with the model and the decoding in a
      `jit_compile=True` function (non-maximum suppression runs outside it).
    - `serving_bytes` (when `H == W` and `C` is 1 or 3): `image_bytes`
      tf.string `(None,)` of PNG or JPEG images of any size up to
      `MAX_IMAGE_PIXELS` pixels -> the same outputs, boxes normalised to
      each original image. Each image is decoded to `C` channels (grayscale
      expanded, alpha dropped), letterboxed to `H x W` (resized keeping its
      aspect ratio, padded with `LETTERBOX_PAD_VALUE`) and its boxes mapped
      back (`training.box_augmentation.unletterbox_boxes`).

    Requests are checked inside the graph: a wrong shape, an empty batch,
    values outside [0, 255] (or NaN), empty strings, bytes that are not PNG
    or JPEG, and images over `MAX_IMAGE_PIXELS` fail with a message naming
    the input. An image without objects answers `num_detections` 0.

    Args:
        model: a `keras.Model` with one input of shape `(None, H, W, C)` and
            the dict outputs `"heatmap"`, `"size"` and `"offset"` of
            `zoo.attention_detector`, on the TensorFlow backend.

    Returns:
        A list of `ServingSignature`.
    """
    shape, num_classes = _detector_shapes(model)

    def network(image):
        outputs = model(image, training=False)
        return [tf.cast(outputs[k], tf.float32) for k in ("heatmap", "size", "offset")]

    def decode(image):
        return decode_detections(
            *network(image),
            max_detections=MAX_DETECTIONS,
            score_threshold=SCORE_THRESHOLD,
        )

    @tf.function(autograph=False)
    def detect(image):
        return suppress_detections(*decode(image), num_classes)

    @tf.function(autograph=False, jit_compile=True)
    def decode_xla(image):
        return decode(image)

    image_spec = tf.TensorSpec((None, *shape), tf.float32, name="image")

    @tf.function(input_signature=[image_spec], autograph=False)
    def serving_default(image):
        return detect(checked_image(image, shape, high=PIXEL_MAX))

    @tf.function(input_signature=[image_spec], autograph=False)
    def serving_xla(image):
        image = checked_image(image, shape, high=PIXEL_MAX)
        return suppress_detections(*decode_xla(image), num_classes)

    def make_image(batch_size, seed):
        rng = np.random.default_rng(seed)
        pixels = rng.uniform(0.0, PIXEL_MAX, (batch_size, *shape))
        return {"image": pixels.astype(np.float32)}

    def reference(inputs):
        return reference_detections(model, inputs["image"])

    image_kwargs = dict(
        make_example=make_image,
        reference=reference,
        bad_requests=_bad_image_requests(shape),
    )
    signatures = [
        ServingSignature("serving_default", serving_default, **image_kwargs),
        ServingSignature(
            "serving_xla", serving_xla, atol=1e-4, jit_compile=True, **image_kwargs
        ),
    ]
    height, width, channels = shape
    if height == width and channels in _DECODABLE_CHANNELS:
        signatures.append(_bytes_signature(model, detect, shape))
    return signatures


def suppress_detections(
    boxes, scores, classes, num_classes, iou_threshold=IOU_THRESHOLD
):
    """Class-aware non-maximum suppression of decoded detections, padded.

    Greedy, per class (`tf.image.combined_non_max_suppression`, a core
    TensorFlow op): a box whose IoU with a better-scoring box of its class
    exceeds `iou_threshold` is dropped. Entries of class -1 (below the score
    threshold) are dropped.

    Args:
        boxes: float32 `(batch, K, 4)` normalised `[ymin, xmin, ymax, xmax]`.
        scores: float32 `(batch, K)`.
        classes: int `(batch, K)` class ids, -1 for no detection.
        num_classes: int, the number of classes `C` (ids in `[0, C)`).
        iou_threshold: float in [0, 1].

    Returns:
        A dict: `"boxes"` float32 `(batch, K, 4)`, `"scores"` float32
        `(batch, K)` in decreasing order, `"classes"` int64 `(batch, K)` and
        `"num_detections"` int64 `(batch,)`; entries past `num_detections`
        have box 0, score 0 and class -1.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    scores = tf.convert_to_tensor(scores, tf.float32)
    classes = tf.cast(classes, tf.int32)
    k = boxes.shape[1]
    # `(batch, K, C)`: the op suppresses within each class's column; class -1
    # is a row of zeros.
    per_class = tf.one_hot(classes, num_classes) * scores[..., None]
    nmsed_boxes, nmsed_scores, nmsed_classes, valid = (
        tf.image.combined_non_max_suppression(
            boxes[:, :, None, :],
            per_class,
            max_output_size_per_class=k,
            max_total_size=k,
            iou_threshold=iou_threshold,
            score_threshold=0.0,  # strictly above: drops the class -1 zeros
            pad_per_class=False,
            clip_boxes=False,
        )
    )
    kept = tf.range(k)[None, :] < valid[:, None]
    return {
        "boxes": tf.where(kept[..., None], nmsed_boxes, 0.0),
        "scores": tf.where(kept, nmsed_scores, 0.0),
        "classes": tf.where(kept, tf.cast(nmsed_classes, tf.int64), -1),
        "num_detections": tf.cast(valid, tf.int64),
    }


def reference_detections(model, images):
    """The detections of `images` by the Keras model, outside any signature.

    `model(images)` run eagerly, `decode_detections` and
    `suppress_detections` with the signatures' settings.

    Args:
        model: the detector.
        images: float32 `(batch, H, W, C)` pixels in [0, 255].

    Returns:
        A dict of NumPy arrays keyed like the signatures' outputs.
    """
    outputs = model(images, training=False)
    decoded = decode_detections(
        *(np.asarray(outputs[k], np.float32) for k in ("heatmap", "size", "offset")),
        max_detections=MAX_DETECTIONS,
        score_threshold=SCORE_THRESHOLD,
    )
    num_classes = int(outputs["heatmap"].shape[-1])
    detections = suppress_detections(*decoded, num_classes)
    return {k: v.numpy() for k, v in detections.items()}


def _detector_shapes(model):
    """`((H, W, C), num_classes)` of a detector, checked."""
    output_names = sorted(getattr(model, "output_names", None) or ())
    if len(model.inputs) != 1 or output_names != sorted(DETECTOR_OUTPUTS):
        raise ValueError(
            "A detector must have one input and the outputs 'heatmap', 'offset' "
            f"and 'size'. Received: {len(model.inputs)} inputs, outputs "
            f"{output_names}"
        )
    input_shape = tuple(model.inputs[0].shape)
    if len(input_shape) != 4 or any(d is None for d in input_shape[1:]):
        raise ValueError(
            "The input of a detector must have shape (None, H, W, C) with known "
            f"H, W and C. Received: input_shape={input_shape}"
        )
    num_classes = model.output["heatmap"].shape[-1]
    return tuple(int(d) for d in input_shape[1:]), int(num_classes)


def _bad_image_requests(shape):
    height, width, channels = shape
    good = np.full((1, *shape), 127.0, np.float32)
    wrong_shape = "Input `image` must have shape"
    out_of_range = r"Input `image` must hold float32 values in \[0, 255\]"
    return (
        ("float64", {"image": good.astype(np.float64)}, "float.*double"),
        ("uint8", {"image": good.astype(np.uint8)}, "float.*uint8"),
        (
            "wrong width",
            {"image": np.zeros((1, height, width + 4, channels), np.float32)},
            wrong_shape,
        ),
        (
            "channels last missing",
            {"image": np.zeros((1, height, width), np.float32)},
            wrong_shape,
        ),
        ("no batch dimension", {"image": np.zeros(shape, np.float32)}, wrong_shape),
        ("empty batch", {"image": np.zeros((0, *shape), np.float32)}, wrong_shape),
        ("above 255", {"image": good * 2.1}, out_of_range),
        ("negative", {"image": good - 200.0}, out_of_range),
        ("NaN", {"image": np.where(good > 0, np.nan, good)}, out_of_range),
        ("no input", {}, "image"),
    )


# ---------------------------------------------------------------------------
# Encoded images
# ---------------------------------------------------------------------------


def letterboxed_images(image_bytes, shape):
    """Decodes and letterboxes PNG or JPEG images for a detector, in the graph.

    Args:
        image_bytes: tf.string `(batch,)`, checked by `checked_image_bytes`.
        shape: the detector's `(size, size, channels)`.

    Returns:
        `(images, sizes)`: float32 `(batch, size, size, channels)` pixels in
        [0, 255] and the int32 `(batch, 2)` original heights and widths.
    """
    size, _, channels = shape
    image_bytes = checked_image_bytes(image_bytes)

    def decode(encoded):
        # Decoded and letterboxed as uint8: the full image is never floats.
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        original = tf.shape(image)[:2]
        boxed, _ = letterbox(image, tf.zeros((0, 4)), size, LETTERBOX_PAD_VALUE)
        return tf.cast(boxed, tf.float32), original

    return tf.map_fn(
        decode,
        image_bytes,
        fn_output_signature=(
            tf.TensorSpec(shape, tf.float32),
            tf.TensorSpec([2], tf.int32),
        ),
    )


def original_detections(detections, sizes, size):
    """`detections` of letterboxed images with boxes on the original images.

    Args:
        detections: a dict of `suppress_detections`.
        sizes: int `(batch, 2)` original heights and widths.
        size: the letterbox side.

    Returns:
        A new dict: boxes mapped with `unletterbox_boxes`, padding kept 0.
    """
    boxes = unletterbox_boxes(detections["boxes"], sizes[:, :1], sizes[:, 1:], size)
    kept = detections["classes"] >= 0
    return {**detections, "boxes": tf.where(kept[..., None], boxes, 0.0)}


def example_image_bytes(batch_size, seed, shape):
    """Encoded images of several sizes, formats and channel counts.

    Image `i` is, in turn, an RGB PNG, an RGB JPEG, a grayscale PNG, an RGBA
    PNG and a grayscale JPEG, each of a random size between 1/4 and 2 times
    the model's side (so most are not square).

    Args:
        batch_size: number of images.
        seed: NumPy seed.
        shape: the detector's `(size, size, channels)`.

    Returns:
        A `(batch_size,)` object array of bytes.
    """
    size = shape[0]
    rng = np.random.default_rng(seed)
    kinds = ((3, tf.io.encode_png), (3, tf.io.encode_jpeg), (1, tf.io.encode_png))
    kinds += ((4, tf.io.encode_png), (1, tf.io.encode_jpeg))
    encoded = []
    for i in range(batch_size):
        channels, encode = kinds[i % len(kinds)]
        height, width = rng.integers(max(1, size // 4), 2 * size + 1, 2)
        pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
        encoded.append(encode(pixels).numpy())
    return np.array(encoded, dtype=object)


def _bytes_signature(model, detect, shape):
    size, _, channels = shape

    @tf.function(
        input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")],
        autograph=False,
    )
    def serving_bytes(image_bytes):
        images, sizes = letterboxed_images(image_bytes, shape)
        return original_detections(detect(images), sizes, size)

    def make_bytes(batch_size, seed):
        return {"image_bytes": example_image_bytes(batch_size, seed, shape)}

    def reference(inputs):
        # Decoded by TensorFlow's own decoder (JPEG is lossy), letterboxed
        # eagerly.
        images, sizes = [], []
        for encoded in inputs["image_bytes"]:
            image = tf.io.decode_image(
                encoded, channels=channels, expand_animations=False
            )
            sizes.append(image.shape[:2])
            boxed, _ = letterbox(image, np.zeros((0, 4)), size, LETTERBOX_PAD_VALUE)
            images.append(np.asarray(boxed, np.float32))
        detections = reference_detections(model, np.stack(images))
        sizes = np.array(sizes, np.int32)
        return {
            k: np.asarray(v)
            for k, v in original_detections(detections, sizes, size).items()
        }

    jpeg = tf.io.encode_jpeg(np.full(shape, 128, np.uint8)).numpy()
    bad_requests = (
        *bad_image_bytes_requests(shape),
        (
            "truncated JPEG",
            {"image_bytes": np.array([jpeg[: len(jpeg) // 2]], dtype=object)},
            "Invalid JPEG",
        ),
    )
    return ServingSignature(
        "serving_bytes",
        serving_bytes,
        make_example=make_bytes,
        reference=reference,
        bad_requests=bad_requests,
    )

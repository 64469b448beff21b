"""Serving signatures of image classifiers: float images and encoded bytes."""

import functools
import struct
import zlib

import numpy as np
import tensorflow as tf

from zoo.export.serving_signature import ServingSignature

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# Channel counts that both `decode_png` and `decode_jpeg` can convert to.
_DECODABLE_CHANNELS = (1, 3)

# The most pixels (height x width) that `serving_bytes` decodes: 16.8 million,
# a 4096x4096 image or a 12-megapixel photo. The size is read from the PNG or
# JPEG header first, so a small file claiming a large image is refused before
# any memory is taken; an image at the limit takes `channels` bytes per pixel
# while it is decoded (50 MB in RGB).
MAX_IMAGE_PIXELS = 4096 * 4096
# A PNG starts with its signature and the IHDR chunk: length, "IHDR", then
# width and height as big-endian uint32 (bytes 16 to 24).
_PNG_SIZE_OFFSET = 16


def image_classification_signatures(model):
    """Signatures of a classifier from `"image"` (float32 in [0, 1]) to logits.

    - `serving_default`: `image` float32 `(None, H, W, C)` -> `logits`,
      `probabilities` (float32 `(None, num_classes)`), `classes` (int64
      `(None,)`).
    - `serving_xla`: the same, with the model in a `jit_compile=True` function.
    - `serving_bytes` (when `C` is 1 or 3): `image_bytes` tf.string `(None,)` of
      PNG or JPEG images of up to `MAX_IMAGE_PIXELS` pixels (height x width)
      -> the same outputs; each image is decoded to `C` channels, resized
      (bilinear) to `H, W` and scaled to [0, 1].

    Requests are checked inside the graph (TF Serving checks only dtypes): a
    wrong shape, an empty batch, values outside [0, 1] (or NaN), empty strings,
    bytes that are not PNG or JPEG, and images over `MAX_IMAGE_PIXELS` (read
    from their headers, before any image is decoded) fail with a message
    naming the input.

    Args:
        model: a `keras.Model` with one input of shape `(None, H, W, C)` and
            one output of shape `(None, num_classes)`, on the TensorFlow
            backend.

    Returns:
        A list of `ServingSignature`.
    """
    height, width, channels = _image_shape(model)
    shape = (height, width, channels)

    @tf.function(autograph=False)
    def classify(image):
        logits = tf.cast(model(image, training=False), tf.float32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "classes": tf.argmax(logits, axis=-1, output_type=tf.int64),
        }

    @tf.function(autograph=False, jit_compile=True)
    def classify_xla(image):
        return classify(image)

    image_spec = tf.TensorSpec((None, *shape), tf.float32, name="image")

    @tf.function(input_signature=[image_spec], autograph=False)
    def serving_default(image):
        return classify(checked_image(image, shape))

    @tf.function(input_signature=[image_spec], autograph=False)
    def serving_xla(image):
        return classify_xla(checked_image(image, shape))

    def make_image(batch_size, seed):
        rng = np.random.default_rng(seed)
        return {"image": rng.random((batch_size, *shape), dtype=np.float32)}

    def reference(inputs):
        return _classifier_outputs(model, inputs["image"])

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
    if channels in _DECODABLE_CHANNELS:
        signatures.append(_bytes_signature(model, classify, shape))
    return signatures


def _image_shape(model):
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            "An image classifier must have one input and one output. Received: "
            f"{len(model.inputs)} inputs and {len(model.outputs)} outputs."
        )
    input_shape = tuple(model.inputs[0].shape)
    if len(input_shape) != 4 or any(d is None for d in input_shape[1:]):
        raise ValueError(
            "The input of an image classifier must have shape (None, H, W, C) with "
            f"known H, W and C. Received: input_shape={input_shape}"
        )
    output_shape = tuple(model.outputs[0].shape)
    if len(output_shape) != 2 or output_shape[-1] is None:
        raise ValueError(
            "The output of an image classifier must have shape (None, "
            f"num_classes). Received: output_shape={output_shape}"
        )
    return tuple(int(d) for d in input_shape[1:])


def batch_shape_check(tensor, name, shape, note=""):
    """An in-graph assertion that `tensor` is a batch (>= 1) of `shape`.

    Args:
        tensor: a request input.
        name: its input name, for the message.
        shape: the shape of one example.
        note: words after "batch >= 1" in the message, e.g. `" (...)"`.

    Returns:
        The `tf.debugging.Assert` op (run it first with
        `tf.control_dependencies`).
    """
    actual = tf.shape(tensor)
    rank = len(shape) + 1
    # Padding keeps the slice valid when a request has a lower rank.
    padded = tf.concat([actual, tf.zeros([rank], tf.int32)], axis=0)
    shape_ok = tf.reduce_all(
        [
            tf.equal(tf.size(actual), rank),
            tf.reduce_all(tf.equal(padded[1:rank], shape)),
            padded[0] > 0,
        ]
    )
    expected = "(batch, " + ", ".join(str(d) for d in shape) + ")"
    return tf.debugging.Assert(
        shape_ok,
        [
            f"Input `{name}` must have shape {expected}, batch >= 1{note}. Received:",
            actual,
        ],
    )


def checked_image(image, shape, high=1.0):
    """`image` after in-graph checks of its shape and values.

    Args:
        image: the float32 `image` input of a request.
        shape: the `(H, W, C)` of one image.
        high: the largest pixel value (1 for the classifiers, 255 for the
            detectors).

    Returns:
        `image`, once a batch (>= 1) of `shape` holding values in
        `[0, high]` (no NaN); otherwise the graph fails naming the input.
    """
    check_shape = batch_shape_check(image, "image", shape)
    with tf.control_dependencies([check_shape]):
        in_range = tf.reduce_all(tf.logical_and(image >= 0.0, image <= high))
        check_range = tf.debugging.Assert(
            in_range,
            [
                f"Input `image` must hold float32 values in [0, {high:g}] (no NaN). "
                "Received min and max:",
                tf.strings.as_string(tf.reduce_min(image)),
                tf.strings.as_string(tf.reduce_max(image)),
            ],
        )
    with tf.control_dependencies([check_range]):
        return tf.identity(image)


def _bytes_signature(model, classify, shape):
    channels = shape[-1]

    @tf.function(
        input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")],
        autograph=False,
    )
    def serving_bytes(image_bytes):
        return classify(_decoded_images(image_bytes, shape))

    def make_bytes(batch_size, seed):
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, (batch_size, *shape), dtype=np.uint8)
        encoders = (tf.io.encode_png, tf.io.encode_jpeg)
        encoded = [encoders[i % 2](p).numpy() for i, p in enumerate(pixels)]
        return {"image_bytes": np.array(encoded, dtype=object)}

    def reference(inputs):
        # Decoded by TensorFlow's own decoder: JPEG is lossy.
        pixels = np.stack(
            [
                tf.io.decode_image(b, channels=channels, expand_animations=False)
                for b in inputs["image_bytes"]
            ]
        )
        return _classifier_outputs(model, pixels.astype(np.float32) / 255.0)

    return ServingSignature(
        "serving_bytes",
        serving_bytes,
        make_example=make_bytes,
        reference=reference,
        bad_requests=bad_image_bytes_requests(shape),
    )


def bad_image_bytes_requests(shape):
    """The bad requests of an `image_bytes` input checked by `checked_image_bytes`.

    Args:
        shape: `(H, W, C)` of the (valid) images to corrupt, `C` 1 or 3.

    Returns:
        A tuple of `(description, inputs, error_pattern)` (see
        `ServingSignature.bad_requests`).
    """
    png = tf.io.encode_png(np.zeros(shape, np.uint8)).numpy()
    jpeg = tf.io.encode_jpeg(np.zeros(shape, np.uint8)).numpy()
    # Small files whose headers claim 8000x8000 pixels.
    big_png = with_png_size(png, 8000, 8000)
    big_jpeg = with_jpeg_size(jpeg, 8000, 8000)
    not_image = "Input `image_bytes` must hold PNG or JPEG images"
    big = r"more than \d+ pixels .*at index:\] \[\d\] \[height x width:\] \[8000x8000\]"
    return (
        ("empty string", {"image_bytes": _strings([png, b""])}, "empty string"),
        ("no image", {"image_bytes": _strings([])}, "at least one image"),
        ("text", {"image_bytes": _strings([b"not an image"])}, not_image),
        ("GIF", {"image_bytes": _strings([b"GIF89a" + bytes(32)])}, not_image),
        ("truncated PNG", {"image_bytes": _strings([png[:40]])}, "Invalid PNG"),
        ("PNG over the pixel limit", {"image_bytes": _strings([png, big_png])}, big),
        ("JPEG over the pixel limit", {"image_bytes": _strings([big_jpeg])}, big),
        ("floats", {"image_bytes": np.zeros(1, np.float32)}, "string"),
        ("no input", {}, "image_bytes"),
    )


def checked_image_bytes(image_bytes):
    """`image_bytes` after in-graph checks, before anything is decoded.

    The batch must hold at least one string; each must be non-empty, start
    like a PNG or a JPEG, and have a header claiming at most
    `MAX_IMAGE_PIXELS` pixels (height x width). Otherwise the graph fails
    with a message naming the input and the index of the bad image.

    Args:
        image_bytes: the tf.string `(None,)` `image_bytes` input of a request.

    Returns:
        `image_bytes`, once checked.
    """
    check_batch = tf.debugging.Assert(
        tf.size(image_bytes) > 0, ["Input `image_bytes` must hold at least one image."]
    )
    empty = tf.equal(tf.strings.length(image_bytes), 0)
    check_empty = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(empty)),
        ["Input `image_bytes` holds an empty string at index:", _indices(empty)],
    )
    known = tf.logical_or(
        tf.equal(tf.strings.substr(image_bytes, 0, len(_PNG_MAGIC)), _PNG_MAGIC),
        tf.equal(tf.strings.substr(image_bytes, 0, len(_JPEG_MAGIC)), _JPEG_MAGIC),
    )
    check_format = tf.debugging.Assert(
        tf.reduce_all(tf.logical_or(known, empty)),
        [
            "Input `image_bytes` must hold PNG or JPEG images; not one at index:",
            _indices(tf.logical_not(tf.logical_or(known, empty))),
        ],
    )
    with tf.control_dependencies([check_batch, check_empty, check_format]):
        is_png = tf.equal(
            tf.strings.substr(image_bytes, 0, len(_PNG_MAGIC)), _PNG_MAGIC
        )
        sizes = _encoded_sizes(image_bytes, is_png)
    pixels = sizes[:, 0] * sizes[:, 1]
    too_large = pixels > MAX_IMAGE_PIXELS
    check_size = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(too_large)),
        [
            f"Input `image_bytes` holds an image of more than {MAX_IMAGE_PIXELS} "
            "pixels (height x width) at index:",
            _indices(too_large),
            "height x width:",
            tf.boolean_mask(
                tf.strings.join(
                    [
                        tf.strings.as_string(sizes[:, 0]),
                        tf.strings.as_string(sizes[:, 1]),
                    ],
                    separator="x",
                ),
                too_large,
            ),
        ],
    )
    with tf.control_dependencies([check_size]):
        return tf.identity(image_bytes)


def _decoded_images(image_bytes, shape):
    height, width, channels = shape
    image_bytes = checked_image_bytes(image_bytes)

    def decode(encoded):
        # Decoded as uint8 and resized to float32 at the model size: the full
        # image is never held as floats (4x the memory).
        image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
        image = tf.image.resize(image, (height, width), method="bilinear")
        return tf.ensure_shape(image / 255.0, shape)

    return tf.map_fn(
        decode, image_bytes, fn_output_signature=tf.TensorSpec(shape, tf.float32)
    )


def _encoded_sizes(image_bytes, is_png):
    """`(height, width)` int64 per image, read from its PNG or JPEG header.

    Nothing is decoded: PNG sizes are bytes 16 to 24 (IHDR), JPEG sizes come
    from `tf.image.extract_jpeg_shape` (which reads the frame header only).
    PNGs too short to hold their size get `(0, 0)`: decoding them fails later.
    """
    size_bytes = 8
    # Padded first: `substr` fails on a start past the end of a string.
    header = tf.strings.join(
        [
            tf.strings.substr(image_bytes, 0, _PNG_SIZE_OFFSET + size_bytes),
            b"\0" * (_PNG_SIZE_OFFSET + size_bytes),
        ]
    )
    raw = tf.io.decode_raw(
        tf.strings.substr(header, _PNG_SIZE_OFFSET, size_bytes), tf.uint8
    )
    big_endian = tf.constant([2**24, 2**16, 2**8, 1], tf.int64)
    raw = tf.reshape(tf.cast(raw, tf.int64), [-1, 2, 4])
    width_height = tf.reduce_sum(raw * big_endian, axis=-1)
    png_sizes = tf.reverse(width_height, axis=[1])
    # Each PNG is swapped for a tiny JPEG, so that every string given to
    # `extract_jpeg_shape` is a JPEG (and no conditional is needed).
    jpegs = tf.where(is_png, tf.constant(_tiny_jpeg()), image_bytes)
    jpeg_sizes = tf.map_fn(
        lambda encoded: tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64),
        jpegs,
        fn_output_signature=tf.TensorSpec([2], tf.int64),
    )
    return tf.where(is_png[:, None], png_sizes, jpeg_sizes)


@functools.cache
def _tiny_jpeg():
    with tf.init_scope():  # Eager, even while a signature is traced.
        return tf.io.encode_jpeg(np.zeros((1, 1, 1), np.uint8)).numpy()


def with_png_size(png, width, height):
    """`png` whose IHDR header claims `width` x `height` pixels (CRC fixed).

    Args:
        png: the bytes of a PNG.
        width: the width to claim.
        height: the height to claim.

    Returns:
        The patched bytes: a PNG that decoders read as that size (its pixel
        data no longer fits, so decoding it fails).
    """
    if png[: len(_PNG_MAGIC)] != _PNG_MAGIC or png[12:16] != b"IHDR":
        raise ValueError("Argument `png` must be the bytes of a PNG.")
    ihdr = png[12:16] + struct.pack(">II", width, height) + png[24:29]
    return png[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + png[33:]


def with_jpeg_size(jpeg, width, height):
    """`jpeg` whose frame header (SOF0) claims `width` x `height` pixels.

    Args:
        jpeg: the bytes of a baseline JPEG (as `tf.io.encode_jpeg` writes).
        width: the width to claim, below 65536.
        height: the height to claim, below 65536.

    Returns:
        The patched bytes.
    """
    start = jpeg.find(b"\xff\xc0")
    if jpeg[: len(_JPEG_MAGIC)] != _JPEG_MAGIC or start < 0:
        raise ValueError("Argument `jpeg` must be the bytes of a baseline JPEG.")
    # Marker (2 bytes), length (2), precision (1), height (2), width (2).
    size = struct.pack(">HH", height, width)
    return jpeg[: start + 5] + size + jpeg[start + 9 :]


def _indices(mask):
    # int32 data keeps `tf.debugging.Assert` a plain op (no `If` around it).
    return tf.cast(tf.where(mask)[:, 0], tf.int32)


def _strings(values):
    return np.array(values, dtype=object)


def _classifier_outputs(model, images):
    logits = np.asarray(model(images, training=False), dtype=np.float32)
    return {"logits": logits, **reference_outputs(logits)}


def reference_outputs(logits):
    """NumPy `probabilities` (float64 softmax, as float32) and `classes` of logits."""
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    return {
        "probabilities": probabilities.astype(np.float32),
        "classes": logits.argmax(axis=-1).astype(np.int64),
    }


def _bad_image_requests(shape):
    height, width, channels = shape
    good = np.full((1, *shape), 0.5, np.float32)
    wrong_shape = "Input `image` must have shape"
    out_of_range = r"Input `image` must hold float32 values in \[0, 1\]"
    return (
        ("float64", {"image": good.astype(np.float64)}, "float.*double"),
        ("int32", {"image": good.astype(np.int32)}, "float.*int32"),
        (
            "wrong height",
            {"image": np.zeros((1, height + 1, width, channels), np.float32)},
            wrong_shape,
        ),
        (
            "channels last missing",
            {"image": np.zeros((1, height, width), np.float32)},
            wrong_shape,
        ),
        (
            "no batch dimension",
            {"image": np.zeros(shape, np.float32)},
            wrong_shape,
        ),
        (
            "empty batch",
            {"image": np.zeros((0, *shape), np.float32)},
            wrong_shape,
        ),
        ("0-255 values", {"image": good * 255.0}, out_of_range),
        ("NaN", {"image": np.where(good > 0, np.nan, good)}, out_of_range),
        ("no input", {}, "image"),
    )

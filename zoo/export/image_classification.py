"""Serving signatures of image classifiers: float images and encoded bytes."""

import numpy as np
import tensorflow as tf

from zoo.export.serving_signature import ServingSignature

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
# Channel counts that both `decode_png` and `decode_jpeg` can convert to.
_DECODABLE_CHANNELS = (1, 3)


def image_classification_signatures(model):
    """Signatures of a classifier from `"image"` (float32 in [0, 1]) to logits.

    - `serving_default`: `image` float32 `(None, H, W, C)` -> `logits`,
      `probabilities` (float32 `(None, num_classes)`), `classes` (int64
      `(None,)`).
    - `serving_xla`: the same, with the model in a `jit_compile=True` function.
    - `serving_bytes` (when `C` is 1 or 3): `image_bytes` tf.string `(None,)` of
      PNG or JPEG images of any size -> the same outputs; each image is decoded
      to `C` channels, resized (bilinear) to `H, W` and scaled to [0, 1].

    Requests are checked inside the graph (TF Serving checks only dtypes): a
    wrong shape, an empty batch, values outside [0, 1] (or NaN), empty strings
    and bytes that are not PNG or JPEG fail with a message naming the input.

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
        return classify(_checked_image(image, shape))

    @tf.function(input_signature=[image_spec], autograph=False)
    def serving_xla(image):
        return classify_xla(_checked_image(image, shape))

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


def _checked_image(image, shape):
    actual = tf.shape(image)
    # Padding keeps the slice valid when a request has rank < 4.
    padded = tf.concat([actual, tf.zeros([4], tf.int32)], axis=0)
    shape_ok = tf.reduce_all(
        [
            tf.equal(tf.size(actual), 4),
            tf.reduce_all(tf.equal(padded[1:4], shape)),
            padded[0] > 0,
        ]
    )
    expected = "(batch, " + ", ".join(str(d) for d in shape) + ")"
    check_shape = tf.debugging.Assert(
        shape_ok,
        [f"Input `image` must have shape {expected}, batch >= 1. Received:", actual],
    )
    with tf.control_dependencies([check_shape]):
        in_range = tf.reduce_all(tf.logical_and(image >= 0.0, image <= 1.0))
        check_range = tf.debugging.Assert(
            in_range,
            [
                "Input `image` must hold float32 values in [0, 1] (no NaN). "
                "Received min and max:",
                tf.strings.as_string(tf.reduce_min(image)),
                tf.strings.as_string(tf.reduce_max(image)),
            ],
        )
    with tf.control_dependencies([check_range]):
        return tf.identity(image)


def _bytes_signature(model, classify, shape):
    height, width, channels = shape

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

    png = tf.io.encode_png(np.zeros((height, width, channels), np.uint8)).numpy()
    not_image = "Input `image_bytes` must hold PNG or JPEG images"
    bad_requests = (
        ("empty string", {"image_bytes": _strings([png, b""])}, "empty string"),
        ("no image", {"image_bytes": _strings([])}, "at least one image"),
        ("text", {"image_bytes": _strings([b"not an image"])}, not_image),
        ("GIF", {"image_bytes": _strings([b"GIF89a" + bytes(32)])}, not_image),
        ("truncated PNG", {"image_bytes": _strings([png[:40]])}, "Invalid PNG"),
        ("floats", {"image_bytes": np.zeros(1, np.float32)}, "string"),
        ("no input", {}, "image_bytes"),
    )
    return ServingSignature(
        "serving_bytes",
        serving_bytes,
        make_example=make_bytes,
        reference=reference,
        bad_requests=bad_requests,
    )


def _decoded_images(image_bytes, shape):
    height, width, channels = shape
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
        image_bytes = tf.identity(image_bytes)

    def decode(encoded):
        image = tf.io.decode_image(
            encoded, channels=channels, dtype=tf.float32, expand_animations=False
        )
        image = tf.image.resize(image, (height, width), method="bilinear")
        return tf.ensure_shape(image, shape)

    return tf.map_fn(
        decode, image_bytes, fn_output_signature=tf.TensorSpec(shape, tf.float32)
    )


def _indices(mask):
    # int32 data keeps `tf.debugging.Assert` a plain op (no `If` around it).
    return tf.cast(tf.where(mask)[:, 0], tf.int32)


def _strings(values):
    return np.array(values, dtype=object)


def _classifier_outputs(model, images):
    logits = np.asarray(model(images, training=False), dtype=np.float32)
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    return {
        "logits": logits,
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

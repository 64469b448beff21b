"""Image-classification signatures: names, dtypes, raw bytes, mixed precision."""

import re
import struct
import zlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import perturb, toy_classifier
from zoo.export import MAX_IMAGE_PIXELS, export_model, serving_signatures
from zoo.export.inspection import signature_defs

SHAPE = (12, 16, 3)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = toy_classifier(SHAPE)
    perturb(model)
    path = export_model(model, tmp_path_factory.mktemp("export") / "toy" / "1").path
    return model, tf.saved_model.load(path), path


def _keras_logits(model, pixels):
    return np.asarray(model(pixels.astype(np.float32) / 255.0))


def _call(loaded, signature, **inputs):
    outputs = loaded.signatures[signature](
        **{k: tf.constant(v) for k, v in inputs.items()}
    )
    return {k: v.numpy() for k, v in outputs.items()}


def _dims(tensor_info):
    return [d.size for d in tensor_info.tensor_shape.dim]


def test_signature_names_dtypes_and_shapes(toy):
    _, _, path = toy
    defs = signature_defs(path)
    assert sorted(defs) == ["serving_bytes", "serving_default", "serving_xla"]
    for name in ("serving_default", "serving_xla"):
        assert list(defs[name].inputs) == ["image"]
        assert defs[name].inputs["image"].dtype == tf.float32.as_datatype_enum
        assert _dims(defs[name].inputs["image"]) == [-1, *SHAPE]
    assert list(defs["serving_bytes"].inputs) == ["image_bytes"]
    assert (
        defs["serving_bytes"].inputs["image_bytes"].dtype == tf.string.as_datatype_enum
    )
    assert _dims(defs["serving_bytes"].inputs["image_bytes"]) == [-1]
    for signature in defs.values():
        outputs = signature.outputs
        assert sorted(outputs) == ["classes", "logits", "probabilities"]
        assert outputs["logits"].dtype == tf.float32.as_datatype_enum
        assert outputs["probabilities"].dtype == tf.float32.as_datatype_enum
        assert outputs["classes"].dtype == tf.int64.as_datatype_enum
        assert _dims(outputs["logits"]) == [-1, 5]
        assert _dims(outputs["classes"]) == [-1]


def test_outputs_are_consistent(toy):
    _, loaded, _ = toy
    image = np.random.default_rng(1).random((4, *SHAPE), dtype=np.float32)
    for signature in ("serving_default", "serving_xla"):
        out = _call(loaded, signature, image=image)
        logits = out["logits"].astype(np.float64)
        expected = np.exp(logits - logits.max(-1, keepdims=True))
        expected /= expected.sum(-1, keepdims=True)
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-6)
        np.testing.assert_array_equal(out["classes"], logits.argmax(-1))


def test_bytes_are_resized_to_the_model_size(toy):
    model, loaded, _ = toy
    pixels = np.random.default_rng(2).integers(0, 256, (2, *SHAPE), dtype=np.uint8)
    # Each pixel repeated 2x2: bilinear resizing (half-pixel centres) back to
    # the model size gives the original pixels exactly.
    large = pixels.repeat(2, axis=1).repeat(2, axis=2)
    encoded = np.array([tf.io.encode_png(p).numpy() for p in large], dtype=object)
    out = _call(loaded, "serving_bytes", image_bytes=encoded)
    np.testing.assert_allclose(out["logits"], _keras_logits(model, pixels), atol=1e-5)


@pytest.mark.parametrize("channels", [1, 4])
def test_bytes_channels_are_converted(toy, channels):
    model, loaded, _ = toy
    rgb = np.random.default_rng(3).integers(0, 256, (1, *SHAPE), dtype=np.uint8)
    if channels == 1:
        rgb = np.repeat(rgb[..., :1], 3, axis=-1)
        stored = rgb[..., :1]
    else:
        stored = np.concatenate([rgb, np.full_like(rgb[..., :1], 7)], axis=-1)
    encoded = np.array([tf.io.encode_png(stored[0]).numpy()], dtype=object)
    out = _call(loaded, "serving_bytes", image_bytes=encoded)
    np.testing.assert_allclose(out["logits"], _keras_logits(model, rgb), atol=1e-5)


def test_jpeg_bytes_match_the_decoded_image(toy):
    _, loaded, _ = toy
    pixels = np.random.default_rng(4).integers(0, 256, SHAPE, dtype=np.uint8)
    jpeg = tf.io.encode_jpeg(pixels, quality=90).numpy()
    decoded = tf.io.decode_jpeg(jpeg).numpy().astype(np.float32) / 255.0
    by_bytes = _call(
        loaded, "serving_bytes", image_bytes=np.array([jpeg], dtype=object)
    )
    by_image = _call(loaded, "serving_default", image=decoded[None])
    np.testing.assert_allclose(by_bytes["logits"], by_image["logits"], atol=1e-5)


def test_bad_bytes_error_names_the_index(toy):
    _, loaded, _ = toy
    png = tf.io.encode_png(np.zeros(SHAPE, np.uint8)).numpy()
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"not one at index:\] \[2\]"
    ):
        _call(
            loaded,
            "serving_bytes",
            image_bytes=np.array([png, png, b"x"], dtype=object),
        )


def test_no_bytes_signature_for_two_channels():
    names = [
        s.name
        for s in serving_signatures(toy_classifier((8, 8, 2)), "image_classification")
    ]
    assert names == ["serving_default", "serving_xla"]


def test_model_contract_is_checked():
    two = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    flat = keras.Input((4,), name="image")
    models = [
        keras.Model(two, keras.layers.Dense(2)(keras.layers.Concatenate()(list(two)))),
        keras.Model(flat, keras.layers.Dense(2)(flat)),
    ]
    for model in models:
        with pytest.raises(ValueError, match="input"):
            serving_signatures(model, "image_classification")


def test_mixed_precision_model_serves_float32(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = toy_classifier(SHAPE)
    perturb(model)
    keras.config.set_dtype_policy("float32")
    path = export_model(model, tmp_path / "toy" / "1").path
    defs = signature_defs(path)
    assert (
        defs["serving_xla"].outputs["probabilities"].dtype
        == tf.float32.as_datatype_enum
    )
    loaded = tf.saved_model.load(path)
    image = np.random.default_rng(5).random((2, *SHAPE), dtype=np.float32)
    expected = np.asarray(model(image), dtype=np.float32)
    for signature in ("serving_default", "serving_xla"):
        out = _call(loaded, signature, image=image)
        assert out["logits"].dtype == np.float32
        np.testing.assert_allclose(out["logits"], expected, atol=2e-2, rtol=2e-2)
        np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-6)


def _png_header(width, height):
    """The first 33 bytes of a PNG: signature and an IHDR claiming the size."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    crc = struct.pack(">I", zlib.crc32(ihdr))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + crc


def _bytes_error(loaded, images):
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        _call(loaded, "serving_bytes", image_bytes=np.array(images, dtype=object))
    return error.value.message


def test_a_png_header_over_the_pixel_limit_is_refused_before_decoding(toy):
    _, loaded, _ = toy
    small = tf.io.encode_png(np.zeros(SHAPE, np.uint8)).numpy()
    message = _bytes_error(loaded, [small, _png_header(8000, 8000), small])
    assert f"more than {MAX_IMAGE_PIXELS} pixels" in message
    assert re.search(r"at index:\] \[1\]", message), message
    assert "8000x8000" in message
    assert "Invalid PNG" not in message


@pytest.mark.parametrize("encode", [tf.io.encode_png, tf.io.encode_jpeg])
def test_a_real_image_over_the_pixel_limit_is_refused(toy, encode):
    """5000x5000 black pixels: small encoded, 25 million pixels decoded."""
    _, loaded, _ = toy
    large = encode(np.zeros((5000, 5000, 1), np.uint8)).numpy()
    assert len(large) < 500_000
    message = _bytes_error(loaded, [large])
    assert f"more than {MAX_IMAGE_PIXELS} pixels" in message
    assert re.search(r"at index:\] \[0\]", message), message
    assert "5000x5000" in message


def test_an_image_at_the_pixel_limit_is_classified(toy):
    model, loaded, _ = toy
    side = int(MAX_IMAGE_PIXELS**0.5)
    assert side * side == MAX_IMAGE_PIXELS
    grey = np.full((side, side, 1), 128, np.uint8)
    encoded = np.array([tf.io.encode_png(grey).numpy()], dtype=object)
    out = _call(loaded, "serving_bytes", image_bytes=encoded)
    pixels = np.full((1, *SHAPE), 128, np.uint8)
    np.testing.assert_allclose(out["logits"], _keras_logits(model, pixels), atol=1e-5)
    just_over = _png_header(side + 1, side)
    assert f"{side}x{side + 1}" in _bytes_error(loaded, [just_over])

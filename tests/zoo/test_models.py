"""Sweep over every registered model: build, forward, train, save and reload.

A newly registered model is covered here without new test code.
"""

import os

import keras
import numpy as np
import pytest

import zoo
from zoo.attention_maps import attention_maps, find_attention_layer

# A shape that no variant uses by default: non-square, 3 channels; every patch
# size in the zoo (4, 7) divides it.
OTHER_SHAPE = (56, 28, 3)
OTHER_CLASSES = 7


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, *shape)).astype("float32")


def _image_models():
    return zoo.list_models(task="image_classification")


def _require_image_task(name):
    task = zoo.get_model_spec(name).task
    if task != "image_classification":
        pytest.skip(f"no sample inputs for task {task!r} in this sweep")


@pytest.mark.parametrize("name", zoo.list_models())
def test_default_build_and_forward(name):
    _require_image_task(name)
    spec = zoo.get_model_spec(name)
    model = zoo.build_model(name)
    assert model.input.name == "image"
    assert model.layers[-1].name == "logits"
    shape = tuple(spec.config["input_shape"])
    logits = keras.ops.convert_to_numpy(model(_images(shape), training=False))
    assert logits.shape == (2, spec.config["num_classes"])
    assert logits.dtype == np.float32
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize("name", zoo.list_models())
def test_other_shape_trains_and_round_trips(name, tmp_path):
    _require_image_task(name)
    model = zoo.build_model(name, input_shape=OTHER_SHAPE, num_classes=OTHER_CLASSES)
    x = _images(OTHER_SHAPE, n=4)
    y = np.array([0, 1, 2, OTHER_CLASSES - 1])

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,
    )
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))

    expected = keras.ops.convert_to_numpy(model(x, training=False))
    assert expected.shape == (4, OTHER_CLASSES)
    assert np.all(np.isfinite(expected))
    path = os.path.join(tmp_path, f"{name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    restored = keras.ops.convert_to_numpy(reloaded(x, training=False))
    np.testing.assert_allclose(restored, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", zoo.list_models())
def test_mixed_precision_logits_are_float32(name):
    _require_image_task(name)
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = zoo.build_model(name)
    shape = tuple(zoo.get_model_spec(name).config["input_shape"])
    logits = model(_images(shape), training=False)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))
    assert model.get_layer("logits").compute_dtype == "float32"


@pytest.mark.parametrize("name", _image_models())
def test_attention_maps(name):
    model = zoo.build_model(name, input_shape=OTHER_SHAPE)
    images = _images(OTHER_SHAPE, n=3)
    maps = attention_maps(model, images)
    assert maps.ndim == 3 and maps.shape[0] == 3
    assert maps.dtype == np.float32
    assert np.all(np.isfinite(maps)) and np.all(maps >= 0)
    # The grid follows the tall image.
    assert maps.shape[1] > maps.shape[2]
    kind = type(find_attention_layer(model)).__name__
    if kind == "ConvolutionalAttentionModule":
        assert np.all(maps <= 1)
    else:
        np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-4)
    resized = attention_maps(model, images, size=(14, 7))
    assert resized.shape == (3, 14, 7)


def test_attention_maps_need_an_attention_layer():
    inputs = keras.Input((4, 4, 1), name="image")
    model = keras.Model(inputs, keras.layers.Flatten()(inputs))
    with pytest.raises(ValueError, match="_attention"):
        attention_maps(model, _images((4, 4, 1)))


@pytest.mark.parametrize(
    "name, overrides, argument",
    [
        ("cbam_cnn_tiny", dict(num_classes=0), "num_classes"),
        ("cbam_cnn_tiny", dict(input_shape=(28, 28)), "input_shape"),
        ("cbam_cnn_tiny", dict(dropout=1.5), "dropout"),
        ("cbam_cnn_tiny", dict(widths=()), "widths"),
        ("attention_cnn_tiny", dict(hidden_dim=-1), "hidden_dim"),
        ("vit_small", dict(input_shape=(30, 30, 1)), "patch_size"),
        ("vit_small", dict(num_heads=5), "num_heads"),
    ],
)
def test_bad_builder_arguments_are_named(name, overrides, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        zoo.build_model(name, **overrides)

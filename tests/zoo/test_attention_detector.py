"""The `attention_detector` family: shapes, saving, arguments and learning.

While `zoo/__init__.py` does not import the family, importing it here would
register its variants for the whole test session, and the registry sweeps of
other modules (which list every registered model) would pick them up: this
module then takes out again the names its import added, and the `registered`
fixture puts them back while a test needs them. Once `zoo` imports the
family, both are no-ops.
"""

import math
import os
import re

import keras
import keras_tuner
import numpy as np
import pytest

from tests.layers.layer_checks import check_gradients, perturb, run_layer_test
from zoo import registry

_BEFORE = set(registry.list_models())
import zoo.attention_detector as family  # noqa: E402  (registers the variants)
from zoo.attention_detector.feature_map_encoder import FeatureMapEncoder  # noqa: E402
from zoo.attention_detector.model import attention_detector  # noqa: E402
from zoo.attention_detector.variants import TRAINING, VARIANTS  # noqa: E402
from zoo.detection.decoding import decode_detections  # noqa: E402
from zoo.detection.losses import box_iou, centernet_losses  # noqa: E402
from zoo.detection.targets import centernet_targets  # noqa: E402

_ADDED = set(registry.list_models()) - _BEFORE


def _unregister(names):
    for name in names:
        del registry._REGISTRY[name]  # no public way to unregister


_unregister(_ADDED)

TINY = {**VARIANTS["attention_detector_tiny"], "num_classes": 2}
OUTPUTS = ("heatmap", "offset", "size")


@pytest.fixture
def registered():
    """The family's variants in the registry for one test."""
    missing = {k: v for k, v in VARIANTS.items() if k not in registry.list_models()}
    registry.register_variants(
        missing,
        TRAINING,
        task="object_detection",
        family="attention_detector",
        builder=family.attention_detector,
        search_space=family.search_space,
    )
    yield
    _unregister(missing)


def _images(n, height=64, width=None, seed=0):
    """`n` random `(height, width, 3)` images of pixels in [0, 255]."""
    shape = (n, height, width or height, 3)
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


def _numpy(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def _assert_same(got, expected, **kwargs):
    assert sorted(got) == sorted(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], err_msg=key, **kwargs)


def _synthetic(size=64):
    """2 images: coloured rectangles (class 0 red, 1 green) on dark noise."""
    objects = [
        [([0.1, 0.15, 0.55, 0.6], 0)],
        [([0.4, 0.3, 0.9, 0.8], 1), ([0.05, 0.05, 0.3, 0.3], 0)],
    ]
    colours = [(230, 40, 40), (40, 220, 60)]
    images = np.random.default_rng(0).uniform(0, 120, (2, size, size, 3))
    for image, boxes in zip(images, objects, strict=True):
        for (y0, x0, y1, x1), label in boxes:
            rows = slice(int(y0 * size), int(y1 * size))
            image[rows, int(x0 * size) : int(x1 * size)] = colours[label]
    grid = (size // 4, size // 4)
    targets = [
        centernet_targets(
            np.array([b for b, _ in boxes], "float32"),
            [label for _, label in boxes],
            grid,
            num_classes=2,
        )
        for boxes in objects
    ]
    y = {k: np.stack([np.asarray(t[k]) for t in targets]) for k in OUTPUTS}
    return images.astype("float32"), y, objects


# Shapes and conventions.


@pytest.mark.parametrize("shape", [(64, 64, 3), (96, 48, 3)])
def test_output_shapes(shape):
    model = attention_detector(**{**TINY, "input_shape": shape})
    assert [t.name for t in model.inputs] == ["image"]
    out = _numpy(model(_images(2, *shape[:2])))
    h, w = shape[0] // 4, shape[1] // 4
    assert out["heatmap"].shape == (2, h, w, 2)
    assert out["size"].shape == out["offset"].shape == (2, h, w, 2)
    for key, value in out.items():
        assert value.dtype == np.float32, key
        assert np.isfinite(value).all(), key
    assert (out["size"] > 0).all()


def test_heatmap_starts_at_the_prior():
    model = attention_detector(**TINY)
    bias = keras.ops.convert_to_numpy(model.get_layer("heatmap_logits").bias)
    np.testing.assert_allclose(bias, math.log(0.1 / 0.9), rtol=1e-6)
    scores = keras.ops.convert_to_numpy(keras.ops.sigmoid(model(_images(2))["heatmap"]))
    np.testing.assert_allclose(scores, 0.1, atol=0.02)


def test_any_multiple_size_with_none_dimensions():
    model = attention_detector(**{**TINY, "input_shape": (None, None, 3)})
    for height, width in [(48, 80), (64, 64)]:
        out = model(_images(1, height, width))
        assert tuple(out["heatmap"].shape) == (1, height // 4, width // 4, 2)


def test_mixed_precision_outputs_are_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = attention_detector(**TINY)
    out = _numpy(model(_images(1)))
    for key, value in out.items():
        assert value.dtype == np.float32, key
        assert np.isfinite(value).all(), key


def test_inference_is_deterministic():
    model = attention_detector(**{**TINY, "dropout": 0.3})
    x = _images(2)
    first = _numpy(model(x, training=False))
    _assert_same(_numpy(model(x, training=False)), first)
    _assert_same(_numpy(model.predict(x, verbose=0)), first, rtol=1e-5, atol=1e-5)


def test_every_weight_gets_a_gradient():
    model = attention_detector(**TINY)
    perturb(model)  # zero-initialised GroupNorm scales (identity blocks)
    outputs = [model.output[k] for k in OUTPUTS]
    probe = keras.Model(model.input, keras.layers.Concatenate()(outputs))
    # The softmax ignores the key bias (it adds q . b_k to every score).
    check_gradients(probe, _images(2), ("self_attention/key/bias",))


def test_parameter_counts():
    tiny = attention_detector(**VARIANTS["attention_detector_tiny"])
    small = attention_detector(**VARIANTS["attention_detector_small"])
    assert tiny.count_params() < 100_000
    assert 300_000 < small.count_params() < 2_000_000


# Arguments.


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_shape=(60, 64, 3)), "input_shape=(60, 64, 3)"),
        (dict(input_shape=(64, 72, 3)), "input_shape=(64, 72, 3)"),
        (dict(input_shape=(64, 64)), "input_shape=(64, 64)"),
        (dict(input_shape=(64, 64, None)), "input_shape=(64, 64, None)"),
        (dict(widths=(16,)), "widths=(16,)"),
        (dict(widths=(16, 20, 32)), "widths=(16, 20, 32), groups=8"),
        (dict(widths=16), "widths=16"),
        (dict(num_classes=0), "num_classes=0"),
        (dict(head_width=12), "head_width=12"),
        (dict(num_heads=3), "num_heads=3"),
        (dict(groups=0), "groups=0"),
        (dict(dropout=1.0), "dropout=1.0"),
        (dict(encoder_layers=0), "encoder_layers=0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        attention_detector(**{**TINY, **kwargs})


# Saving.


def test_config_round_trip():
    model = attention_detector(**TINY)
    clone = keras.Model.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    clone.set_weights(model.get_weights())
    x = _images(2)
    _assert_same(_numpy(clone(x)), _numpy(model(x)), rtol=1e-5, atol=1e-5)


def test_save_and_load_with_safe_mode(tmp_path):
    model = attention_detector(**TINY)
    perturb(model)
    model.compile(optimizer="adam", **centernet_losses(size_weight=0.2))
    model.optimizer.build(model.trainable_variables)
    path = os.path.join(tmp_path, "detector.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = _images(2)
    _assert_same(_numpy(loaded(x)), _numpy(model(x)), rtol=1e-5, atol=1e-5)
    assert loaded.loss["heatmap"].alpha == 2.0
    images, y, _ = _synthetic()
    assert math.isclose(
        loaded.evaluate(images, y, verbose=0, return_dict=True)["loss"],
        model.evaluate(images, y, verbose=0, return_dict=True)["loss"],
        rel_tol=1e-4,
    )


def test_feature_map_encoder_layer():
    run_layer_test(
        FeatureMapEncoder,
        dict(num_layers=2, num_heads=2, intermediate_dim=16, dropout=0.1),
        np.random.default_rng(0).normal(size=(2, 3, 5, 8)).astype("float32"),
        expected_output_shape=(2, 3, 5, 8),
        zero_gradient_weights=("self_attention/key/bias",),
    )


def test_feature_map_encoder_position_encoding():
    layer = FeatureMapEncoder(num_heads=1)
    encoding = keras.ops.convert_to_numpy(layer.position_encoding(3, 4, 6))
    assert encoding.shape == (3, 4, 6)
    # Rows in the first 3 channels, columns in the last 3.
    third = 10000 ** (2 / 3)  # the wavelength factor of features 2 of 3
    np.testing.assert_allclose(
        encoding[1, 2, :3], [math.sin(1), math.cos(1), math.sin(1 / third)], rtol=1e-6
    )
    np.testing.assert_allclose(
        encoding[1, 2, 3:], [math.sin(2), math.cos(2), math.sin(2 / third)], rtol=1e-6
    )
    flat = encoding.reshape(12, 6)
    assert len({tuple(row.round(6)) for row in flat}) == 12  # all positions differ


@pytest.mark.parametrize(
    "kwargs",
    [dict(num_layers=0), dict(num_heads=-1), dict(dropout=1.5), dict(max_wavelength=0)],
)
def test_feature_map_encoder_bad_arguments(kwargs):
    name, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError, match=re.escape(f"{name}={value}")):
        FeatureMapEncoder(**kwargs)


# Training.


def test_loss_is_the_weighted_sum_in_fit():
    images, y, _ = _synthetic()
    model = attention_detector(**TINY)
    model.compile(optimizer="adam", **centernet_losses())
    logs = model.evaluate(images, y, verbose=0, return_dict=True)
    expected = logs["heatmap_loss"] + 0.1 * logs["size_loss"] + logs["offset_loss"]
    assert math.isclose(logs["loss"], expected, rel_tol=1e-5)


def test_overfits_two_images():
    """100 Adam steps on 2 images: decoding recovers every box (IoU > 0.5)."""
    images, y, objects = _synthetic()
    model = attention_detector(**TINY)
    steps = 100
    rate = keras.optimizers.schedules.CosineDecay(3e-3, steps)
    model.compile(optimizer=keras.optimizers.Adam(rate), **centernet_losses())
    repeated = {k: np.tile(v, (steps, 1, 1, 1)) for k, v in y.items()}
    model.fit(np.tile(images, (steps, 1, 1, 1)), repeated, batch_size=2, verbose=0)
    assert model.evaluate(images, y, verbose=0, return_dict=True)["loss"] < 0.5
    out = model.predict(images, verbose=0)
    boxes, scores, classes = (
        keras.ops.convert_to_numpy(t)
        for t in decode_detections(
            out["heatmap"], out["size"], out["offset"], max_detections=10
        )
    )
    for i, image_objects in enumerate(objects):
        # The best detections are the objects, each with its class.
        top = len(image_objects)
        for box, label in image_objects:
            iou = keras.ops.convert_to_numpy(box_iou(np.array(box), boxes[i, :top]))
            j = int(np.argmax(np.where(classes[i, :top] == label, iou, -1.0)))
            assert classes[i, j] == label and iou[j] > 0.5, (i, box, iou, classes[i])
            assert scores[i, j] > 0.2
        assert (scores[i, top:] < 0.2).all()


# Registry and search space.


def test_registered_variants(registered):
    for name in VARIANTS:
        spec = registry.get_model_spec(name)
        assert spec.task == "object_detection"
        assert spec.family == "attention_detector"
        assert spec.training["optimizer"]["name"] == "adam"
        assert 1e-4 <= spec.training["optimizer"]["learning_rate"] <= 1e-3
        assert spec.training["optimizer"]["warmup_steps"] > 0
    model = registry.build_model("attention_detector_tiny", num_classes=3)
    assert model.name == "attention_detector_tiny"
    assert tuple(model.output["heatmap"].shape) == (None, 16, 16, 3)


def test_search_space_defaults_and_fixed_values(registered):
    for name in VARIANTS:
        spec = registry.get_model_spec(name)
        optimizer = spec.training["optimizer"]
        args, optimizer_args = family.search_space(
            keras_tuner.HyperParameters(), spec.config, optimizer
        )
        for key, value in args.items():
            assert value == spec.config[key], (name, key)
        assert optimizer_args["learning_rate"] == optimizer["learning_rate"]
    spec = registry.get_model_spec("attention_detector_small")
    hp = keras_tuner.HyperParameters()
    hp.Fixed("width", 16)
    hp.Fixed("head_width", 32)
    hp.Fixed("encoder_layers", 3)
    args, _ = family.search_space(hp, spec.config, spec.training["optimizer"])
    assert args["widths"] == (16, 32, 48, 64)
    assert args["head_width"] == 32 and args["encoder_layers"] == 3
    model = registry.build_model("attention_detector_small", **args)
    assert model.get_layer("encoder").num_layers == 3
    assert model.get_layer("stage4_block1_1_conv").filters == 64

"""Registry API: names, patterns, tasks, specs and errors."""

import dataclasses
import fnmatch

import keras
import keras_tuner
import pytest

import zoo
from zoo import registry


def test_list_models_sorted_and_covers_families():
    names = zoo.list_models()
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for family in ("cbam_cnn", "attention_cnn", "vit"):
        assert any(zoo.get_model_spec(n).family == family for n in names), family
    assert zoo.DEFAULT_MODEL in names
    assert zoo.get_model_spec(zoo.DEFAULT_MODEL).family == "cbam_cnn"


@pytest.mark.parametrize("pattern", ["cbam_cnn_*", "*_tiny", "vit_s*", "*", "nope*"])
def test_list_models_glob(pattern):
    expected = sorted(n for n in zoo.list_models() if fnmatch.fnmatchcase(n, pattern))
    assert zoo.list_models(pattern=pattern) == expected


def test_list_models_glob_examples():
    assert zoo.list_models(pattern="cbam_cnn_*") == [
        "cbam_cnn_base",
        "cbam_cnn_small",
        "cbam_cnn_tiny",
    ]
    assert "vit_tiny" in zoo.list_models(pattern="*_tiny")
    assert zoo.list_models(pattern="does_not_exist_*") == []


def test_list_models_task_filter():
    image = zoo.list_models(task="image_classification")
    assert image
    assert all(zoo.get_model_spec(n).task == "image_classification" for n in image)
    together = []
    for task in zoo.TASKS:
        together += zoo.list_models(task=task)
    assert sorted(together) == zoo.list_models()
    assert zoo.list_models(task="image_classification", pattern="vit_*") == [
        n for n in image if n.startswith("vit_")
    ]


def test_unknown_task_raises():
    with pytest.raises(ValueError, match="task='image_segmentation'"):
        zoo.list_models(task="image_segmentation")


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="cbam_cnn_smal") as info:
        zoo.build_model("cbam_cnn_smal")
    assert "cbam_cnn_small" in str(info.value)
    with pytest.raises(ValueError, match="Unknown model name"):
        zoo.get_model_spec("resnet50")


def test_unknown_override_is_named():
    with pytest.raises(ValueError, match="num_clases"):
        zoo.build_model("cbam_cnn_tiny", num_clases=3)


def test_spec_fields_and_copies():
    spec = zoo.get_model_spec("cbam_cnn_small")
    assert spec.name == "cbam_cnn_small"
    assert spec.task == "image_classification"
    assert spec.family == "cbam_cnn"
    assert callable(spec.builder) and callable(spec.search_space)
    assert tuple(spec.config["input_shape"]) == (28, 28, 1)
    assert spec.config["num_classes"] == 10
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"
    spec.config["num_classes"] = 3
    assert zoo.get_model_spec("cbam_cnn_small").config["num_classes"] == 10


def test_every_spec_config_is_complete():
    for name in zoo.list_models(task="image_classification"):
        config = zoo.get_model_spec(name).config
        assert {"input_shape", "num_classes"} <= set(config), name
        assert "name" not in config


def test_build_model_applies_overrides_and_name():
    model = zoo.build_model("cbam_cnn_tiny", input_shape=(20, 12, 2), num_classes=4)
    assert isinstance(model, keras.Model)
    assert model.name == "cbam_cnn_tiny"
    assert not model.compiled
    assert tuple(model.input.shape) == (None, 20, 12, 2)
    assert tuple(model.output.shape) == (None, 4)
    assert model.get_layer("logits").dtype_policy.name == "float32"


def test_register_model_errors(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    spec = zoo.get_model_spec("cbam_cnn_tiny")
    common = dict(family="cbam_cnn", builder=spec.builder, config={})
    with pytest.raises(ValueError, match="already registered"):
        zoo.register_model("cbam_cnn_tiny", task="image_classification", **common)
    with pytest.raises(ValueError, match="task='speech'"):
        zoo.register_model("x", task="speech", **common)
    with pytest.raises(ValueError, match="depth"):
        zoo.register_model(
            "y",
            task="image_classification",
            family="cbam_cnn",
            builder=spec.builder,
            config={"depth": 3},
        )
    added = zoo.register_model(
        "cbam_cnn_wide",
        task="image_classification",
        config={"widths": (8, 16)},
        family="cbam_cnn",
        builder=spec.builder,
    )
    assert added.config["widths"] == (8, 16)
    assert added.config["num_classes"] == 10
    assert "cbam_cnn_wide" in zoo.list_models(pattern="cbam_cnn_*")


def test_name_is_an_override_like_the_others():
    # `name` is listed as a valid override: it names the Keras model.
    model = zoo.build_model("vit_tiny", name="my_vit", num_classes=3)
    assert model.name == "my_vit"
    assert zoo.build_model("vit_tiny").name == "vit_tiny"
    hypermodel = zoo.get_hypermodel("vit_tiny", name="my_vit")
    assert hypermodel.build(keras_tuner.HyperParameters()).name == "my_vit"

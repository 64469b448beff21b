"""Search spaces: defaults reproduce the variants, `hp.Fixed` reaches the model."""

import keras
import keras_tuner as kt
import pytest

import zoo
from training.optimizers import build_optimizer


def _with_search_space():
    return [n for n in zoo.list_models() if zoo.get_model_spec(n).search_space]


def _set(args):
    return {k: v for k, v in args.items() if v is not None}


def _other_value(hp):
    """A legal value of `hp` different from its default."""
    if isinstance(hp, kt.engine.hyperparameters.Choice):
        return next(v for v in hp.values if v != hp.default)
    if isinstance(hp, kt.engine.hyperparameters.Boolean):
        return not hp.default
    if isinstance(hp, kt.engine.hyperparameters.Int):
        return hp.default + 1 if hp.default < hp.max_value else hp.default - 1
    if isinstance(hp, kt.engine.hyperparameters.Float):
        middle = (hp.min_value + hp.max_value) / 2
        return middle if middle != hp.default else hp.min_value
    raise TypeError(f"no rule for {hp!r}")


@pytest.mark.parametrize("name", _with_search_space())
def test_default_hp_reproduce_the_variant(name):
    spec = zoo.get_model_spec(name)
    hp = kt.HyperParameters()
    model_args, optimizer_args = zoo.get_hypermodel(name).search_space(hp)
    assert "learning_rate" in hp.values
    assert _set(optimizer_args) == _set(spec.training["optimizer"])
    # A fresh session for each, so that Keras' automatic names (of the ops
    # that compute masks) are the same.
    keras.utils.clear_session()
    model = zoo.build_model(name, **model_args)
    keras.utils.clear_session()
    reference = zoo.build_model(name)
    assert model.count_params() == reference.count_params()
    assert model.get_config() == reference.get_config()


@pytest.mark.parametrize("name", _with_search_space())
def test_every_hyperparameter_reaches_the_arguments(name):
    hypermodel = zoo.get_hypermodel(name)
    defaults = kt.HyperParameters()
    default_args = hypermodel.search_space(defaults)
    assert defaults.space
    for param in defaults.space:
        hp = kt.HyperParameters()
        value = _other_value(param)
        hp.Fixed(param.name, value)
        args = hypermodel.search_space(hp)
        assert hp.values[param.name] == value
        assert args != default_args, f"{param.name}={value!r} changed nothing"


def _encoders(model):
    return sum(layer.name.startswith("encoder") for layer in model.layers)


@pytest.mark.parametrize(
    "name, key, value, read, expected",
    [
        # Base width 24: the stages keep the tiny variant's 1:2:4 ratio.
        ("cbam_cnn_tiny", "width", 24, lambda m: m.get_layer("stem_conv").filters, 24),
        (
            "cbam_cnn_tiny",
            "width",
            24,
            lambda m: m.get_layer("stage3_block1_2_conv").filters,
            96,
        ),
        (
            "cbam_cnn_tiny",
            "blocks_per_stage",
            2,
            lambda m: len([x for x in m.layers if x.name.endswith("_add")]),
            6,
        ),
        (
            "cbam_cnn_tiny",
            "reduction_ratio",
            2,
            lambda m: m.get_layer("stage1_attention").reduction_ratio,
            2,
        ),
        ("cbam_cnn_tiny", "dropout", 0.25, lambda m: m.get_layer("dropout").rate, 0.25),
        (
            "attention_cnn_tiny",
            "hidden_dim",
            128,
            lambda m: m.get_layer("dense").units,
            128,
        ),
        ("vit_tiny", "num_layers", 3, _encoders, 3),
        (
            "vit_tiny",
            "num_heads",
            2,
            lambda m: m.get_layer("encoder1_attention").num_heads,
            2,
        ),
    ],
)
def test_fixed_hyperparameters_reach_the_model(name, key, value, read, expected):
    hypermodel = zoo.get_hypermodel(name)
    default_args = hypermodel.search_space(kt.HyperParameters())[0]
    assert read(zoo.build_model(name, **default_args)) != expected
    hp = kt.HyperParameters()
    hp.Fixed(key, value)
    model = zoo.build_model(name, **hypermodel.search_space(hp)[0])
    assert read(model) == expected


def test_fixed_optimizer_hyperparameters():
    hp = kt.HyperParameters()
    hp.Fixed("learning_rate", 0.0123)
    hp.Fixed("schedule", "exponential")
    hp.Fixed("global_clipnorm", 1.0)
    _, optimizer_args = zoo.get_hypermodel("cbam_cnn_tiny").search_space(hp)
    assert optimizer_args["learning_rate"] == 0.0123
    assert optimizer_args["schedule"] == "exponential"
    assert optimizer_args["global_clipnorm"] == 1.0


def test_overrides_become_defaults():
    hypermodel = zoo.get_hypermodel(
        "vit_tiny",
        optimizer_args={"decay_steps": 10},
        input_shape=(14, 14, 3),
        num_classes=3,
        hidden_dim=32,
    )
    hp = kt.HyperParameters()
    model_args, optimizer_args = hypermodel.search_space(hp)
    assert hp.values["hidden_dim"] == 32
    assert optimizer_args["decay_steps"] == 10
    model = zoo.build_model("vit_tiny", **model_args)
    assert tuple(model.input.shape) == (None, 14, 14, 3)
    assert tuple(model.output.shape) == (None, 3)
    reference = zoo.build_model(
        "vit_tiny", input_shape=(14, 14, 3), num_classes=3, hidden_dim=32
    )
    assert model.get_config() == reference.get_config()


def test_get_hypermodel_errors():
    with pytest.raises(ValueError, match="vit_tiny"):
        zoo.get_hypermodel("vit_tny")
    with pytest.raises(ValueError, match="hiden_dim"):
        zoo.get_hypermodel("vit_tiny", hiden_dim=32)


@pytest.mark.parametrize("name", _with_search_space())
def test_hypermodel_builds_compiled_with_default_hp(name):
    hypermodel = zoo.get_hypermodel(name)
    assert isinstance(hypermodel, kt.HyperModel)
    model = hypermodel.build(kt.HyperParameters())
    assert model.optimizer is not None
    assert model.count_params() == zoo.build_model(name).count_params()


@pytest.mark.parametrize("schedule", ["constant", "step", "exponential", "cosine"])
def test_every_schedule_builds_an_optimizer(schedule):
    hp = kt.HyperParameters()
    hp.Fixed("schedule", schedule)
    _, optimizer_args = zoo.get_hypermodel(zoo.DEFAULT_MODEL).search_space(hp)
    optimizer = build_optimizer(**optimizer_args)
    assert optimizer.__class__.__name__.lower() == optimizer_args["name"]


def test_recommended_training_settings():
    for name in zoo.list_models(task="image_classification"):
        training = zoo.get_model_spec(name).training
        assert training["epochs"] > 0 and training["batch_size"] > 0, name
        optimizer = training["optimizer"]
        if optimizer.get("schedule") == "cosine":
            steps = -(-60_000 // training["batch_size"]) * training["epochs"]
            assert optimizer["warmup_steps"] + optimizer["decay_steps"] == steps, name


def test_fixed_learning_rate_reaches_the_compiled_optimizer():
    hp = kt.HyperParameters()
    hp.Fixed("learning_rate", 0.0123)
    hp.Fixed("schedule", "constant")
    hp.Fixed("warmup_steps", 0)
    hp.Fixed("global_clipnorm", 5.0)
    model = zoo.get_hypermodel("cbam_cnn_tiny").build(hp)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0123)
    assert model.optimizer.global_clipnorm == 5.0
    expected = zoo.get_model_spec("cbam_cnn_tiny").config["dropout"]
    assert model.get_layer("dropout").rate == expected


def test_trial_warmup_is_capped_like_zoo_train():
    hp = kt.HyperParameters()
    hp.Fixed("warmup_steps", 500)
    hp.Fixed("schedule", "cosine")
    hp.Fixed("learning_rate", 0.002)
    optimizer = zoo.get_hypermodel("cbam_cnn_tiny", train_steps=20).build(hp).optimizer
    # Warm-up capped at 2 of the 20 steps (not 500), then 18 steps of cosine.
    for step, rate in [(1, 0.001), (2, 0.002), (11, 0.001), (20, 0.0)]:
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(rate, abs=1e-9)


def test_detector_hypermodel_compiles_centernet_losses():
    """A detector trial trains on CenterNet targets (dict outputs), not on
    the classifiers' sparse cross-entropy."""
    import numpy as np

    from zoo.detection.losses import HeatmapFocalLoss
    from zoo.detection.targets import centernet_targets

    model = zoo.get_hypermodel("attention_detector_tiny", num_classes=2).build(
        kt.HyperParameters()
    )
    assert isinstance(model.loss["heatmap"], HeatmapFocalLoss)
    boxes = np.array([[0.2, 0.2, 0.6, 0.7]], np.float32)
    targets = centernet_targets(boxes, np.array([1], np.int32), (16, 16), 2)
    targets = {k: np.asarray(v)[None] for k, v in targets.items()}
    image = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3))
    logs = model.train_on_batch(image.astype(np.float32), targets, return_dict=True)
    assert {"heatmap_loss", "size_loss", "offset_loss"} <= set(logs)
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0

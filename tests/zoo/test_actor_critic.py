"""Actor-critic policies: padding never changes an output, attention reads history."""

import keras
import numpy as np
import pytest

import zoo


def _perturbed(name, **overrides):
    model = zoo.build_model(name, **overrides)
    rng = np.random.default_rng(0)
    for w in model.weights:
        value = keras.ops.convert_to_numpy(w)
        w.assign(value + rng.normal(0, 0.2, value.shape).astype(value.dtype))
    return model


def _outputs(model, windows):
    out = model(windows)
    return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}


def _history(steps, seed=0):
    return np.random.default_rng(seed).normal(0, 0.5, (steps, 2)).astype("float32")


def _padded(history, window):
    rows = np.zeros((window, history.shape[-1]), "float32")
    rows[window - len(history) :] = history[-window:]
    return rows


@pytest.mark.parametrize("pooling", ["last", "attention"])
def test_padding_never_changes_the_outputs_whatever_the_window(pooling):
    """3 real steps padded to 4 or to 8 (weights shared) give the same outputs."""
    long = _perturbed("actor_critic_attention_cartpole", pooling=pooling)
    short = zoo.build_model(
        "actor_critic_attention_cartpole", pooling=pooling, window=4
    )
    weights = long.get_weights()
    table = long.get_layer("position_embedding").position_embeddings
    short.set_weights([w[:4] if w.shape == tuple(table.shape) else w for w in weights])
    history = _history(3)
    others = np.stack([_padded(_history(8, seed), 8) for seed in (1, 2)])
    batch = np.concatenate([_padded(history, 8)[None], others])
    expected = _outputs(short, _padded(history, 4)[None])
    got = _outputs(long, batch)
    for key in ("logits", "value"):
        np.testing.assert_allclose(got[key][:1], expected[key], atol=1e-5, err_msg=key)
    # Not vacuous: an older real step does change the outputs.
    changed = history.copy()
    changed[0] += 1.0
    moved = _outputs(long, _padded(changed, 8)[None])
    assert np.abs(moved["logits"] - got["logits"][:1]).max() > 1e-4


def test_the_mlp_baseline_sees_the_current_observation_only():
    model = _perturbed("actor_critic_mlp_cartpole")
    assert tuple(model.inputs[0].shape) == (None, 1, 2)
    out = _outputs(model, _history(5)[-1:][None])
    assert out["logits"].shape == (1, 2) and out["value"].shape == (1,)


def test_the_outputs_are_logits_and_a_value_per_window():
    model = zoo.build_model("actor_critic_tiny")
    assert sorted(model.output_names) == ["logits", "value"]
    out = _outputs(model, np.zeros((3, 4, 2), "float32") + 0.1)
    assert out["logits"].shape == (3, 2) and out["value"].shape == (3,)
    # The first policy is near uniform (the logits' small initialization).
    np.testing.assert_allclose(out["logits"], 0.0, atol=0.05)


@pytest.mark.parametrize(
    "overrides, argument",
    [
        (dict(window=0), "window"),
        (dict(observation_size=-1), "observation_size"),
        (dict(num_actions=0), "num_actions"),
        (dict(encoder="lstm"), "encoder"),
        (dict(pooling="max"), "pooling"),
        (dict(num_heads=3), "num_heads"),
        (dict(head_layers=0), "head_layers"),
    ],
)
def test_bad_builder_arguments_are_named(overrides, argument):
    with pytest.raises(ValueError, match=f"`{argument}`.*Received"):
        zoo.build_model("actor_critic_attention_cartpole", **overrides)


def test_the_search_space_defaults_are_the_variant():
    import keras_tuner

    hypermodel = zoo.get_hypermodel("actor_critic_attention_cartpole")
    hp = keras_tuner.HyperParameters()
    model_args, optimizer_args = hypermodel.search_space(hp)
    config = zoo.get_model_spec("actor_critic_attention_cartpole").config
    for key, value in model_args.items():
        assert config[key] == value, key
    assert {"window", "num_heads", "pooling"} <= set(model_args)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("window", 16)
    assert hypermodel.search_space(hp)[0]["window"] == 16
    mlp = zoo.get_hypermodel("actor_critic_mlp_cartpole")
    assert "window" not in mlp.search_space(keras_tuner.HyperParameters())[0]

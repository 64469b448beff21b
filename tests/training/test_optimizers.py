import keras
import numpy as np
import pytest

from training.optimizers import OPTIMIZERS, build_optimizer
from training.precision import set_precision
from training.warmup_cosine_decay import WarmupCosineDecay


def _step(optimizer, grads):
    """One update of zero-initialised variables; returns their new values."""
    variables = [keras.Variable(np.zeros_like(g)) for g in grads]
    optimizer.apply_gradients(list(zip(grads, variables, strict=True)))
    return [keras.ops.convert_to_numpy(v) for v in variables]


GRADS = [np.array([3.0, -0.2], "float32"), np.array([4.0], "float32")]


def test_no_clipping_is_plain_sgd():
    (a, b) = _step(build_optimizer("sgd", learning_rate=1.0), GRADS)
    np.testing.assert_allclose(a, -GRADS[0])
    np.testing.assert_allclose(b, -GRADS[1])


def test_clipvalue_clips_each_element():
    a, b = _step(build_optimizer("sgd", 1.0, clipvalue=0.5), GRADS)
    np.testing.assert_allclose(a, -np.clip(GRADS[0], -0.5, 0.5))
    np.testing.assert_allclose(b, [-0.5])


def test_clipnorm_clips_each_gradient():
    a, b = _step(build_optimizer("sgd", 1.0, clipnorm=1.0), GRADS)
    np.testing.assert_allclose(a, -GRADS[0] / np.linalg.norm(GRADS[0]), rtol=1e-6)
    np.testing.assert_allclose(b, [-1.0], rtol=1e-6)


def test_global_clipnorm_clips_all_gradients_together():
    a, b = _step(build_optimizer("sgd", 1.0, global_clipnorm=2.0), GRADS)
    norm = np.sqrt(sum(float(np.sum(g.astype("float64") ** 2)) for g in GRADS))
    np.testing.assert_allclose(a, -GRADS[0] * 2.0 / norm, rtol=1e-5)
    np.testing.assert_allclose(b, -GRADS[1] * 2.0 / norm, rtol=1e-5)


def test_weight_decay_is_decoupled():
    optimizer = build_optimizer("sgd", learning_rate=0.5, weight_decay=0.1)
    variable = keras.Variable(np.array([2.0], "float32"))
    optimizer.apply_gradients([(np.zeros(1, "float32"), variable)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [2.0 * 0.95])


def test_optimizer_follows_its_schedule():
    optimizer = build_optimizer(
        "sgd", 0.1, schedule="cosine", warmup_steps=2, decay_steps=4
    )
    variable = keras.Variable(np.zeros(1, "float32"))
    moves = []
    for _ in range(7):
        before = float(keras.ops.convert_to_numpy(variable)[0])
        optimizer.apply_gradients([(np.ones(1, "float32"), variable)])
        moves.append(before - float(keras.ops.convert_to_numpy(variable)[0]))
    expected = [0.0, 0.05, 0.1, 0.1 * 0.5 * (1 + np.cos(np.pi / 4)), 0.05]
    expected += [0.1 * 0.5 * (1 + np.cos(3 * np.pi / 4)), 0.0]
    np.testing.assert_allclose(moves, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_builds_with_a_schedule(name):
    optimizer = build_optimizer(name, 0.01, "exponential", 5, decay_steps=10)
    assert isinstance(optimizer, OPTIMIZERS[name])
    restored = optimizer.__class__.from_config(optimizer.get_config())
    assert float(restored.learning_rate) == pytest.approx(0.0)


def test_compiled_model_with_schedule_survives_keras_save(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    optimizer = build_optimizer("adamw", 0.01, "cosine", 3, 10, global_clipnorm=1.0)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), batch_size=4, epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    schedule = restored.optimizer._learning_rate
    assert isinstance(schedule, WarmupCosineDecay)
    assert schedule.get_config() == optimizer._learning_rate.get_config()
    assert restored.optimizer.global_clipnorm == 1.0
    assert int(restored.optimizer.iterations) == 4
    assert float(restored.optimizer.learning_rate) == pytest.approx(
        float(optimizer.learning_rate)
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"name": "adamm"}, "name"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"clipnorm": 0.0}, "clipnorm"),
        ({"clipvalue": -1.0}, "clipvalue"),
        ({"global_clipnorm": "big"}, "global_clipnorm"),
        ({"clipnorm": 1.0, "clipvalue": 1.0}, "clipnorm"),
        ({"schedule": "cosine"}, "decay_steps"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        build_optimizer(**kwargs)


def test_two_clip_arguments_are_both_named():
    with pytest.raises(ValueError, match="clipnorm=1.0, global_clipnorm=2.0"):
        build_optimizer(clipnorm=1.0, global_clipnorm=2.0)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16", "float32"])
def test_set_precision(policy):
    assert set_precision(policy).name == policy
    layer = keras.layers.Dense(2)
    compute = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
    assert layer.compute_dtype == compute.get(policy, "float32")
    assert layer.variable_dtype == "float32"


def test_set_precision_rejects_unknown_policy():
    with pytest.raises(ValueError, match="Argument `policy`.*float16"):
        set_precision("float16")

"""PPO training: the learner's loss, seeded determinism, exact resume, evaluation."""

import json
import os

import keras
import numpy as np
import pytest

import zoo
from training import ppo
from training.backup_error import BackupError
from training.ppo import evaluate_policy, sample_actions, train_ppo
from training.ppo_config import PPOConfig
from training.ppo_learner import PPOLearner
from training.ppo_loss import ppo_loss

# 4 updates of 2 environments x 16 steps, 2 epochs of 2 minibatches.
TINY = dict(
    total_steps=128,
    num_envs=2,
    rollout_steps=16,
    epochs=2,
    minibatches=2,
    checkpoint_every=1,
)

ONE_UPDATE = {**TINY, "total_steps": 32}


def _policy(seed=0):
    keras.utils.set_random_seed(seed)
    return zoo.build_model("actor_critic_tiny")


def _weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def test_sampled_actions_follow_the_softmax_and_the_seed():
    logits = np.log(np.tile([[0.2, 0.5, 0.3]], (20_000, 1)))
    actions, log_probs = sample_actions(logits, np.random.default_rng(0))
    np.testing.assert_allclose(
        np.bincount(actions) / 20_000, [0.2, 0.5, 0.3], atol=0.01
    )
    expected = np.array([0.2, 0.5, 0.3])[actions]
    np.testing.assert_allclose(np.exp(log_probs), expected, rtol=1e-6)
    again, _ = sample_actions(logits, np.random.default_rng(0))
    np.testing.assert_array_equal(actions, again)


def test_the_learner_loss_is_ppo_loss_and_trains_the_policy():
    policy = _policy()
    learner = PPOLearner(policy, clip=0.2, value_coef=0.5, entropy_coef=0.01)
    learner.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (16, 4, 2)).astype("float32")
    y = {
        "actions": rng.integers(0, 2, 16).astype("int32"),
        "old_log_probs": np.full(16, np.log(0.5), "float32"),
        "advantages": rng.normal(size=16).astype("float32"),
        "returns": rng.normal(size=16).astype("float32"),
    }
    out = policy(x)
    expected = ppo_loss(out["logits"], out["value"], **y, clip=0.2)
    loss = learner.compute_loss(x=x, y=y, y_pred=out)
    np.testing.assert_allclose(float(loss), float(expected["loss"]), rtol=1e-6)
    before = _weights(policy)
    logs = learner.train_on_batch(x, y, return_dict=True)
    assert {"loss", "policy_loss", "value_loss", "entropy", "approx_kl"} <= set(logs)
    np.testing.assert_allclose(
        logs["value_loss"], float(expected["value_loss"]), rtol=1e-5
    )
    assert any(
        not np.array_equal(a, b) for a, b in zip(before, _weights(policy), strict=True)
    )
    with pytest.raises(ValueError, match="returns"):
        learner.compute_loss(x=x, y={"actions": y["actions"]}, y_pred=out)


@pytest.mark.slow
def test_a_run_is_a_function_of_its_seed(tmp_path):
    a = _policy()
    first = train_ppo(a, "CartPole-v1", PPOConfig(**TINY), tmp_path / "a", verbose=0)
    b = _policy()
    second = train_ppo(b, "CartPole-v1", PPOConfig(**TINY), tmp_path / "b", verbose=0)
    for x, y in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_array_equal(x, y)
    strip = lambda h: [{k: v for k, v in e.items() if k != "seconds"} for e in h]  # noqa: E731
    assert strip(first["history"]) == strip(second["history"])
    assert first["env_steps"] == 128 and first["updates"] == 4
    c = _policy()
    train_ppo(c, "CartPole-v1", PPOConfig(**TINY), tmp_path / "c", seed=1, verbose=0)
    assert any(
        not np.array_equal(x, y) for x, y in zip(_weights(a), _weights(c), strict=True)
    )
    assert os.path.exists(tmp_path / "a" / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "a" / "model.keras", safe_mode=True)
    for x, y in zip(_weights(a), _weights(reloaded), strict=True):
        np.testing.assert_array_equal(x, y)
    log = json.loads((tmp_path / "a" / "training_log.json").read_text())
    assert [e["update"] for e in log] == [1, 2, 3, 4]


def test_resume_ends_as_the_uninterrupted_run(tmp_path, monkeypatch):
    """Also the seeded determinism: the resumed run's first updates replay."""
    whole = _policy()
    train_ppo(whole, "CartPole-v1", PPOConfig(**TINY), tmp_path / "whole", verbose=0)

    step = ppo._Run.step
    calls = []

    def interrupted(self):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return step(self)

    monkeypatch.setattr(ppo._Run, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_ppo(
            _policy(), "CartPole-v1", PPOConfig(**TINY), tmp_path / "run", verbose=0
        )
    monkeypatch.setattr(ppo._Run, "step", step)
    # A fresh process would build the model with another initialization.
    resumed = _policy(seed=7)
    summary = train_ppo(
        resumed, "CartPole-v1", PPOConfig(**TINY), tmp_path / "run", verbose=0
    )
    assert summary["resumed_from"] == 2 and summary["updates"] == 4
    for x, y in zip(_weights(whole), _weights(resumed), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    # A finished run resumes to its end: nothing more is trained.
    again = train_ppo(
        _policy(), "CartPole-v1", PPOConfig(**TINY), tmp_path / "run", verbose=0
    )
    assert again["resumed_from"] == 4


def test_a_foreign_or_damaged_checkpoint_is_refused(tmp_path):
    run = tmp_path / "run"
    train_ppo(_policy(), "CartPole-v1", PPOConfig(**ONE_UPDATE), run, verbose=0)
    with pytest.raises(BackupError, match="another model, environment, seed"):
        train_ppo(
            _policy(), "CartPole-v1", PPOConfig(**ONE_UPDATE), run, seed=3, verbose=0
        )
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    weights = run / "checkpoint" / state["weights"]
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(BackupError, match="checksum.*--no-resume"):
        train_ppo(_policy(), "CartPole-v1", PPOConfig(**ONE_UPDATE), run, verbose=0)
    # --no-resume starts afresh.
    summary = train_ppo(
        _policy(),
        "CartPole-v1",
        PPOConfig(**ONE_UPDATE),
        run,
        resume=False,
        verbose=0,
        print_fn=lambda *a: None,
    )
    assert summary["resumed_from"] == 0


def test_a_model_file_without_a_checkpoint_is_not_overwritten(tmp_path):
    policy = _policy()
    policy.save(tmp_path / "model.keras")
    with pytest.raises(ValueError, match="another run"):
        train_ppo(policy, "CartPole-v1", PPOConfig(**TINY), tmp_path, verbose=0)


def test_evaluation_is_seeded_and_independent_of_the_parallelism():
    policy = _policy()
    a = evaluate_policy(policy, "CartPole-v1", episodes=7, seed=3, num_envs=3)
    b = evaluate_policy(policy, "CartPole-v1", episodes=7, seed=3, num_envs=7)
    assert a == b
    assert len(a["returns"]) == 7 and all(r >= 8 for r in a["returns"])
    np.testing.assert_allclose(a["mean_return"], np.mean(a["returns"]))
    c = evaluate_policy(policy, "CartPole-v1", episodes=7, seed=4, num_envs=3)
    assert c["returns"] != a["returns"]


@pytest.mark.parametrize(
    "settings, argument",
    [
        (dict(total_steps=0), "total_steps"),
        (dict(total_steps=10, gamma=1.5), "gamma"),
        (dict(total_steps=10, clip=0.0), "clip"),
        (
            dict(total_steps=10, num_envs=3, rollout_steps=5, minibatches=4),
            "minibatches",
        ),
        (dict(total_steps=10, entropy_coef=-1.0), "entropy_coef"),
    ],
)
def test_bad_ppo_settings_are_named(settings, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        PPOConfig(**settings)

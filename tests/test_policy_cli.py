"""`zoo_cli.policy`: train and evaluate a policy from parsed arguments, export it."""

import argparse
import json

import keras
import numpy as np
import pytest

from zoo_cli.commands import CommandError
from zoo_cli.policy import evaluate_policy, train_policy


def _args(**kwargs):
    defaults = dict(
        model="actor_critic_tiny",
        env="CartPole-v1",
        seed=0,
        output=None,
        steps=None,
        no_resume=False,
        metrics_json=None,
        verbose=0,
        episodes=None,
    )
    return argparse.Namespace(**{**defaults, **kwargs})


def test_train_then_evaluate_then_export(tmp_path, capsys):
    run = tmp_path / "run"
    metrics = tmp_path / "train.json"
    # 1 update of the variant's 8 environments x 256 steps.
    args = _args(output=str(run), steps=2048, metrics_json=str(metrics), episodes=3)
    assert train_policy(args) == 0
    out = capsys.readouterr().out
    assert "mean return" in out and "over 3 greedy episodes" in out
    trained = json.loads(metrics.read_text())
    assert trained["training"]["env_steps"] == 2048
    assert len(trained["evaluation"]["returns"]) == 3
    with pytest.raises(CommandError, match="already holds a trained model"):
        train_policy(_args(output=str(run), steps=2048))

    evaluated = tmp_path / "eval.json"
    assert (
        evaluate_policy(_args(model=str(run), episodes=3, metrics_json=str(evaluated)))
        == 0
    )
    again = json.loads(evaluated.read_text())["evaluation"]
    assert again["mean_return"] == trained["evaluation"]["mean_return"]

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        from zoo.export import export_model
        from zoo.model_files import load_model_file

        policy = load_model_file(str(run))
        exported = export_model(policy, tmp_path / "served" / "1")
        assert exported.task == "reinforcement_learning"
        served = tf.saved_model.load(exported.path).signatures["serving_default"]
        windows = np.zeros((2, 4, 2), np.float32)
        windows[:, -1] = [[0.01, 0.02], [-0.01, 0.03]]
        answer = served(observations=tf.constant(windows))
        outputs = policy(windows)
        np.testing.assert_array_equal(
            answer["action"].numpy(), np.argmax(outputs["logits"], axis=-1)
        )
        np.testing.assert_allclose(answer["value"], outputs["value"], atol=1e-6)


@pytest.mark.parametrize(
    "command, kwargs, pattern",
    [
        (train_policy, dict(env="Pong-v5"), "`--env`.*Pong-v5"),
        (evaluate_policy, dict(env="cartpole"), "`--env`.*cartpole"),
        (train_policy, dict(model="vit_tiny"), "reinforcement_learning model"),
        (train_policy, dict(steps=0), "`--steps`"),
        (train_policy, dict(episodes=0), "`--episodes`"),
        (evaluate_policy, dict(seed=1.5), "`--seed`"),
    ],
)
def test_bad_arguments_are_named(command, kwargs, pattern, tmp_path):
    with pytest.raises(ValueError, match=pattern):
        command(_args(output=str(tmp_path / "run"), **kwargs))


def test_a_policy_of_another_environment_is_refused(tmp_path):
    import zoo

    path = tmp_path / "full.keras"
    zoo.build_model("actor_critic_tiny", observation_size=4).save(path)
    with pytest.raises(ValueError, match="2 values per observation"):
        evaluate_policy(_args(model=str(path)))
    assert (
        evaluate_policy(_args(model=str(path), env="CartPole-v1-full", episodes=2)) == 0
    )

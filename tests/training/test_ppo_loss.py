"""PPO's loss against a NumPy reference, and GAE against hand-computed numbers."""

import numpy as np
import pytest
from keras import ops

from training.ppo_loss import generalized_advantages, ppo_loss


def test_gae_by_hand():
    # gamma 0.9, lambda 0.8; the second step ends its episode.
    # t=2: delta = 1 + 0.9 * 0.2 - 0.3 = 0.88, A = 0.88
    # t=1: delta = 1 - 0.4 = 0.6 (done: no bootstrap), A = 0.6
    # t=0: delta = 1 + 0.9 * 0.4 - 0.5 = 0.86, A = 0.86 + 0.72 * 0.6 = 1.292
    advantages, returns = generalized_advantages(
        rewards=[[1.0], [1.0], [1.0]],
        values=[[0.5], [0.4], [0.3]],
        dones=[[False], [True], [False]],
        last_values=[0.2],
        gamma=0.9,
        gae_lambda=0.8,
    )
    np.testing.assert_allclose(advantages[:, 0], [1.292, 0.6, 0.88], rtol=1e-6)
    np.testing.assert_allclose(returns[:, 0], [1.792, 1.0, 1.18], rtol=1e-6)
    assert advantages.dtype == returns.dtype == np.float32


def test_gae_with_lambda_1_is_the_discounted_return_minus_the_value():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(6, 2))
    values = rng.normal(size=(6, 2))
    last = rng.normal(size=2)
    _, returns = generalized_advantages(
        rewards, values, np.zeros((6, 2)), last, 0.95, 1.0
    )
    expected = np.zeros((6, 2))
    running = last
    for t in reversed(range(6)):
        running = rewards[t] + 0.95 * running
        expected[t] = running
    np.testing.assert_allclose(returns, expected, rtol=1e-5)


def test_gae_with_lambda_0_is_the_one_step_error():
    rewards, values = np.ones((3, 1)), np.array([[1.0], [2.0], [3.0]])
    advantages, _ = generalized_advantages(
        rewards, values, np.zeros((3, 1)), [4.0], 0.5, 0.0
    )
    np.testing.assert_allclose(advantages[:, 0], [1 + 1 - 1, 1 + 1.5 - 2, 1 + 2 - 3])


def _reference(logits, values, actions, old, advantages, returns, clip, vf, ent):
    """PPO's loss in float64 NumPy."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_policy = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    log_probs = log_policy[np.arange(len(actions)), actions]
    a = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = np.exp(log_probs - old)
    surrogate = np.minimum(ratio * a, np.clip(ratio, 1 - clip, 1 + clip) * a)
    policy_loss = -surrogate.mean()
    value_loss = 0.5 * np.mean((returns - values) ** 2)
    entropy = -np.mean(np.sum(np.exp(log_policy) * log_policy, axis=-1))
    return {
        "loss": policy_loss + vf * value_loss - ent * entropy,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": np.mean(old - log_probs),
        "clip_fraction": np.mean(np.abs(ratio - 1) > clip),
    }


@pytest.mark.parametrize("clip", [0.1, 0.2])
def test_ppo_loss_matches_numpy(clip):
    rng = np.random.default_rng(1)
    n, actions_count = 64, 3
    logits = rng.normal(size=(n, actions_count))
    actions = rng.integers(0, actions_count, n)
    # Old log-probabilities near the current ones, some ratios past the clip.
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_policy = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    old = log_policy[np.arange(n), actions] + rng.normal(0, 0.3, n)
    values, returns = rng.normal(size=n), rng.normal(size=n)
    advantages = rng.normal(1.0, 2.0, n)
    got = ppo_loss(
        logits.astype("float32"),
        values.astype("float32"),
        actions.astype("int32"),
        old.astype("float32"),
        advantages.astype("float32"),
        returns.astype("float32"),
        clip=clip,
        value_coef=0.7,
        entropy_coef=0.02,
    )
    expected = _reference(
        logits, values, actions, old, advantages, returns, clip, 0.7, 0.02
    )
    assert 0.1 < expected["clip_fraction"] < 0.9  # both branches of the min
    for key, value in expected.items():
        np.testing.assert_allclose(
            float(ops.convert_to_numpy(got[key])),
            value,
            rtol=1e-4,
            atol=1e-6,
            err_msg=key,
        )


def test_a_clipped_ratio_gives_the_policy_no_gradient():
    """Past the clip on the side the advantage favours, the surrogate is flat."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient through tf.GradientTape")
    import tensorflow as tf

    logits = tf.Variable([[2.0, 0.0], [0.0, 0.0]])
    # Action 0: ratio p / exp(old). Row 0: p = 0.88, old p = 0.5 -> ratio 1.76
    # (clipped, positive advantage); row 1: ratio 1 (inside).
    old = tf.math.log([0.5, 0.5])
    with tf.GradientTape() as tape:
        terms = ppo_loss(
            logits,
            tf.zeros(2),
            tf.constant([0, 0]),
            old,
            tf.constant([1.0, 1.0]),
            tf.zeros(2),
            clip=0.2,
            entropy_coef=0.0,
            normalize_advantages=False,
        )
    gradient = tape.gradient(terms["policy_loss"], logits).numpy()
    np.testing.assert_array_equal(gradient[0], [0.0, 0.0])
    assert np.abs(gradient[1]).sum() > 0
    np.testing.assert_allclose(float(terms["clip_fraction"]), 0.5)

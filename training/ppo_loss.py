"""PPO's clipped-surrogate loss and generalized advantage estimation."""

import numpy as np
from keras import ops


def ppo_loss(
    logits,
    values,
    actions,
    old_log_probs,
    advantages,
    returns,
    clip=0.2,
    value_coef=0.5,
    entropy_coef=0.01,
    normalize_advantages=True,
):
    """PPO's loss on a minibatch, in `keras.ops` (any backend).

    `loss = policy_loss + value_coef * value_loss - entropy_coef * entropy`,
    with `ratio = exp(log pi(a|s) - old_log_probs)`,
    `policy_loss = -mean(min(ratio * A, clip(ratio, 1 - clip, 1 + clip) * A))`,
    `value_loss = mean((returns - values)**2) / 2` and `entropy` the mean
    entropy of the action distributions. With `normalize_advantages`, `A` is
    the advantages standardized over the minibatch.

    Args:
        logits: `(B, num_actions)` action logits.
        values: `(B,)` value estimates.
        actions: `(B,)` int actions taken.
        old_log_probs: `(B,)` log-probabilities of `actions` when they were
            taken.
        advantages: `(B,)` advantage estimates.
        returns: `(B,)` value targets.
        clip: clipping range of the ratio.
        value_coef: weight of the value loss.
        entropy_coef: weight of the entropy bonus.
        normalize_advantages: whether to standardize `advantages`.

    Returns:
        A dict of scalars: `loss`, `policy_loss`, `value_loss`, `entropy`,
        `approx_kl` (mean of `old_log_probs - log pi(a|s)`) and
        `clip_fraction` (share of ratios outside the clipping range).
    """
    logits = ops.cast(logits, "float32")
    log_policy = ops.log_softmax(logits, axis=-1)
    actions = ops.cast(ops.reshape(actions, (-1, 1)), "int32")
    log_probs = ops.take_along_axis(log_policy, actions, axis=-1)[:, 0]
    advantages = ops.cast(advantages, "float32")
    if normalize_advantages:
        mean = ops.mean(advantages)
        std = ops.sqrt(ops.mean(ops.square(advantages - mean)))
        advantages = (advantages - mean) / (std + 1e-8)
    log_ratio = log_probs - ops.cast(old_log_probs, "float32")
    ratio = ops.exp(log_ratio)
    clipped = ops.clip(ratio, 1.0 - clip, 1.0 + clip)
    policy_loss = -ops.mean(ops.minimum(ratio * advantages, clipped * advantages))
    errors = ops.cast(returns, "float32") - ops.cast(values, "float32")
    value_loss = 0.5 * ops.mean(ops.square(errors))
    entropy = -ops.mean(ops.sum(ops.exp(log_policy) * log_policy, axis=-1))
    outside = ops.greater(ops.abs(ratio - 1.0), clip)
    return {
        "loss": policy_loss + value_coef * value_loss - entropy_coef * entropy,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": -ops.mean(log_ratio),
        "clip_fraction": ops.mean(ops.cast(outside, "float32")),
    }


def generalized_advantages(rewards, values, dones, last_values, gamma, gae_lambda):
    """GAE advantages and returns of a rollout (Schulman et al., 2016), NumPy.

    `delta_t = r_t + gamma * V_{t+1} * (1 - done_t) - V_t`,
    `A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}`, `returns = A + V`.
    A step that ends an episode (`done_t`) does not look past it; a time-limit
    truncation should be folded into its reward beforehand (`r + gamma *
    V(final observation)`) and counted as done.

    Args:
        rewards: `(T, N)` rewards of `T` steps in `N` environments.
        values: `(T, N)` value estimates of the observations acted on.
        dones: `(T, N)` whether step `t` ended its episode.
        last_values: `(N,)` values of the observations after the last step.
        gamma: discount factor.
        gae_lambda: GAE's lambda.

    Returns:
        `(advantages, returns)`, float32 `(T, N)` arrays.
    """
    rewards = np.asarray(rewards, np.float64)
    values = np.asarray(values, np.float64)
    not_done = 1.0 - np.asarray(dones, np.float64)
    next_values = np.asarray(last_values, np.float64)
    advantages = np.zeros_like(rewards)
    running = np.zeros_like(next_values)
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * next_values * not_done[t] - values[t]
        running = delta + gamma * gae_lambda * not_done[t] * running
        advantages[t] = running
        next_values = values[t]
    returns = advantages + values
    return advantages.astype(np.float32), returns.astype(np.float32)

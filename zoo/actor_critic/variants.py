"""Registered `actor_critic` variants and their PPO training settings.

zoo train actor_critic_attention_cartpole --env CartPole-v1
# 401,408 steps (about 6 minutes on 2 CPU cores): a mean return of 500
# over 100 greedy episodes with the cart's and pole's velocities hidden
# (benchmarks/cartpole.py); the baseline actor_critic_mlp_cartpole, which
# sees one observation, does not reach 475.
"""

VARIANTS = {
    "actor_critic_tiny": dict(
        window=4, hidden_dim=16, num_heads=2, intermediate_dim=32, pooling="attention"
    ),
    # Attends over the last 8 observations (position and angle only).
    "actor_critic_attention_cartpole": dict(
        window=8, hidden_dim=64, num_layers=1, num_heads=4, intermediate_dim=128
    ),
    # The same heads without attention, on the single current observation.
    "actor_critic_mlp_cartpole": dict(
        encoder="mlp", window=1, hidden_dim=64, num_layers=2
    ),
}


def ppo_training(total_steps, learning_rate=5e-4, **ppo):
    """A variant's recommended PPO settings (`training.ppo.PPOConfig` fields).

    Args:
        total_steps: environment steps of a run (all environments together).
        learning_rate: Adam's learning rate, decayed linearly to 0 over the run.
        **ppo: other `PPOConfig` fields (`num_envs`, `rollout_steps`, ...).

    Returns:
        The `training` dict of `register_model`: `epochs` (PPO epochs per
        update), `batch_size` (minibatch size), `optimizer`
        (`build_optimizer` arguments) and `ppo` (every PPO setting).
    """
    from training.ppo_config import PPOConfig

    config = PPOConfig(total_steps=total_steps, learning_rate=learning_rate, **ppo)
    return {
        "epochs": config.epochs,
        "batch_size": config.minibatch_size,
        "optimizer": config.optimizer_arguments(),
        "ppo": config.to_dict(),
    }


TRAINING = {
    "actor_critic_tiny": ppo_training(100_000),
    "actor_critic_attention_cartpole": ppo_training(400_000),
    "actor_critic_mlp_cartpole": ppo_training(400_000),
}

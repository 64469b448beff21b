"""The settings of a PPO run, checked once."""

import dataclasses
import math

from layers.validation import check_float, check_positive_int


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Proximal policy optimization settings (Schulman et al., 2017).

    Each update collects `rollout_steps` steps in each of `num_envs`
    environments, then runs `epochs` passes over them in `minibatches`
    shuffled minibatches.

    Args:
        total_steps: environment steps of the run, all environments together
            (rounded up to whole updates).
        num_envs: environments stepped side by side.
        rollout_steps: steps per environment per update.
        epochs: passes over each rollout.
        minibatches: minibatches per pass (must divide `num_envs *
            rollout_steps`).
        reward_scale: factor of the rewards PPO learns from (the value
            head then estimates scaled returns; evaluation reports the
            environment's own returns). 0.1 keeps CartPole's returns near
            10, so the value loss does not swamp the policy's gradient in a
            shared network.
        gamma: discount factor in (0, 1].
        gae_lambda: GAE's lambda in [0, 1].
        clip: clipping range of the probability ratio, in (0, 1).
        value_coef: weight of the value loss.
        entropy_coef: weight of the entropy bonus (>= 0).
        learning_rate: Adam's peak learning rate, cosine-decayed to 0 over
            the run.
        max_grad_norm: global gradient-norm clipping.
        checkpoint_every: updates between checkpoints.

    Raises:
        ValueError: a setting out of range (the message names it).
    """

    total_steps: int
    num_envs: int = 8
    rollout_steps: int = 256
    epochs: int = 4
    minibatches: int = 4
    reward_scale: float = 0.1
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    learning_rate: float = 5e-4
    max_grad_norm: float = 0.5
    checkpoint_every: int = 10

    def __post_init__(self):
        for name in (
            "total_steps",
            "num_envs",
            "rollout_steps",
            "epochs",
            "minibatches",
            "checkpoint_every",
        ):
            check_positive_int(name, getattr(self, name))
        check_float("reward_scale", self.reward_scale)
        check_float("gamma", self.gamma, 0.0, 1.0)
        check_float("gae_lambda", self.gae_lambda, 0.0, 1.0, low_open=False)
        check_float("clip", self.clip, 0.0, 1.0)
        check_float("value_coef", self.value_coef)
        check_float("entropy_coef", self.entropy_coef, low_open=False)
        check_float("learning_rate", self.learning_rate)
        check_float("max_grad_norm", self.max_grad_norm)
        if self.batch_size % self.minibatches:
            raise ValueError(
                "Argument `minibatches` must divide num_envs * rollout_steps = "
                f"{self.batch_size}. Received: minibatches={self.minibatches}"
            )

    @property
    def batch_size(self):
        """Steps per update, all environments together."""
        return self.num_envs * self.rollout_steps

    @property
    def minibatch_size(self):
        """Steps per minibatch."""
        return self.batch_size // self.minibatches

    @property
    def updates(self):
        """Updates of the run: `total_steps` rounded up to whole rollouts."""
        return math.ceil(self.total_steps / self.batch_size)

    def optimizer_arguments(self):
        """`training.optimizers.build_optimizer` arguments of the run."""
        return {
            "name": "adam",
            "learning_rate": self.learning_rate,
            "schedule": "cosine",
            "warmup_steps": 0,
            "decay_steps": self.updates * self.epochs * self.minibatches,
            "global_clipnorm": self.max_grad_norm,
        }

    def to_dict(self):
        """The settings as a JSON-able dict (`PPOConfig(**d)` rebuilds them)."""
        return dataclasses.asdict(self)

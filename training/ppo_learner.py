"""A Keras model whose `compute_loss` is PPO's, around a policy network."""

import keras

from layers.validation import check_float
from training.ppo_loss import ppo_loss

# The keys of `y` that `PPOLearner.train_on_batch` takes.
TARGETS = ("actions", "old_log_probs", "advantages", "returns")
_LOGGED = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")


@keras.saving.register_keras_serializable(package="attention_zoo")
class PPOLearner(keras.Model):
    """Trains an actor-critic with PPO through Keras' own `train_step`.

    `call` is the policy's; `compute_loss` is `training.ppo_loss.ppo_loss`
    on the policy's `"logits"` and `"value"`, so `compile` and
    `train_on_batch(observations, targets)` work on every backend (the
    gradient step is Keras'). Besides `loss`, the logs hold the minibatch
    means of `policy_loss`, `value_loss`, `entropy`, `approx_kl` and
    `clip_fraction`. The policy's weights are the learner's: training the
    learner trains `policy`.

    Args:
        policy: a `keras.Model` mapping observations to a dict of `"logits"`
            `(B, num_actions)` and `"value"` `(B,)`.
        clip: clipping range of the probability ratio.
        value_coef: weight of the value loss.
        entropy_coef: weight of the entropy bonus.
        **kwargs: base `keras.Model` arguments (`name`).

    Call arguments:
        inputs: the policy's observations.
        training: passed to the policy.

    Returns:
        The policy's outputs.
    """

    def __init__(self, policy, clip=0.2, value_coef=0.5, entropy_coef=0.01, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(policy, keras.Model):
            raise TypeError(
                f"Argument `policy` must be a keras.Model. Received: policy={policy!r}"
            )
        self.policy = policy
        self.clip = check_float("clip", clip, 0.0, 1.0)
        self.value_coef = check_float("value_coef", value_coef, low_open=False)
        self.entropy_coef = check_float("entropy_coef", entropy_coef, low_open=False)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in _LOGGED}

    def call(self, inputs, training=False):
        return self.policy(inputs, training=training)

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """PPO's loss of `y_pred` for the targets `y` (a dict of `TARGETS`)."""
        missing = sorted(set(TARGETS) - set(y or {}))
        if missing:
            raise ValueError(
                f"Argument `y` must be a dict of {list(TARGETS)}. Missing: {missing}"
            )
        terms = ppo_loss(
            y_pred["logits"],
            y_pred["value"],
            y["actions"],
            y["old_log_probs"],
            y["advantages"],
            y["returns"],
            clip=self.clip,
            value_coef=self.value_coef,
            entropy_coef=self.entropy_coef,
        )
        for name in _LOGGED:
            self.trackers[name].update_state(terms[name])
        return terms["loss"]

    @property
    def metrics(self):
        return [*super().metrics, *self.trackers.values()]

    def get_config(self):
        return {
            **super().get_config(),
            "policy": keras.saving.serialize_keras_object(self.policy),
            "clip": self.clip,
            "value_coef": self.value_coef,
            "entropy_coef": self.entropy_coef,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["policy"] = keras.saving.deserialize_keras_object(config["policy"])
        return cls(**config)

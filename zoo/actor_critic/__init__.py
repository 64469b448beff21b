"""Actor-critic policies (`actor_critic_*`): self-attention or MLP state encoders."""

from zoo.actor_critic.model import actor_critic
from zoo.actor_critic.search_space import search_space
from zoo.actor_critic.variants import TRAINING, VARIANTS
from zoo.registry import register_variants

register_variants(
    VARIANTS,
    TRAINING,
    task="reinforcement_learning",
    family="actor_critic",
    builder=actor_critic,
    search_space=search_space,
)

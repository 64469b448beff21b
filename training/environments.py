"""The environments that `zoo train --env` knows, by name (gymnasium)."""

import dataclasses

# CartPole-v1's observation: cart position, cart velocity, pole angle, pole
# angular velocity.
CARTPOLE_POSITIONS = (0, 2)


@dataclasses.dataclass(frozen=True)
class EnvironmentSpec:
    """A gymnasium environment with some observation values kept.

    Args:
        name: the zoo's name (`--env`).
        gym_id: the gymnasium id.
        kept: indices of the observation values the policy sees.
        max_episode_steps: the time limit of an episode (truncation).
        description: one line for help texts.
    """

    name: str
    gym_id: str
    kept: tuple
    max_episode_steps: int
    description: str

    @property
    def observation_size(self):
        """Values per observation the policy sees."""
        return len(self.kept)


ENVIRONMENTS = {
    spec.name: spec
    for spec in (
        EnvironmentSpec(
            "CartPole-v1",
            "CartPole-v1",
            CARTPOLE_POSITIONS,
            500,
            "CartPole-v1 with the velocities hidden: cart position and pole angle",
        ),
        EnvironmentSpec(
            "CartPole-v1-full",
            "CartPole-v1",
            (0, 1, 2, 3),
            500,
            "CartPole-v1 with its full observation (velocities included)",
        ),
    )
}


def environment_spec(name):
    """The `EnvironmentSpec` of `name`.

    Raises:
        ValueError: an unknown name (the message names `--env`).
    """
    if name not in ENVIRONMENTS:
        raise ValueError(
            f"Argument `--env` must be one of {sorted(ENVIRONMENTS)}. "
            f"Received: --env {name!r}"
        )
    return ENVIRONMENTS[name]


def make_environment(name):
    """One unwrapped gymnasium environment of `name` (no time limit, no checker)."""
    import gymnasium

    spec = environment_spec(name)
    return gymnasium.make(spec.gym_id, disable_env_checker=True).unwrapped

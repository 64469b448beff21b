"""Environments stepped side by side, each seen through its last observations."""

import numpy as np

from layers.validation import check_int, check_positive_int
from training.environments import environment_spec, make_environment


class WindowedVectorEnv:
    """`num_envs` copies of an environment, each observed as a window.

    Each environment's window holds its last `window` observations (only the
    `EnvironmentSpec.kept` values), the most recent last; at an episode's
    start the earlier rows are zeros (the policies' padding). An episode ends
    when the environment terminates or after `max_episode_steps` steps
    (truncation); the environment then resets at once and its window starts
    afresh. Environment `i` is seeded with `seed + i` at its first reset and
    continues its own random stream afterwards.

    The state (physics, random streams, windows, step counts, running
    returns) is a JSON-able dict (`get_state` / `set_state`), so a resumed
    run steps exactly as an uninterrupted one. This needs environments whose
    whole state is `unwrapped.state` and `np_random` (gymnasium's classic
    control, such as CartPole).

    Args:
        env_name: a name of `training.environments.ENVIRONMENTS`.
        num_envs: positive int.
        window: positive int, observations per window.
        seed: int, the first environment's seed.
    """

    def __init__(self, env_name, num_envs, window, seed):
        self.env_name = env_name
        self.spec = environment_spec(env_name)
        self.num_envs = check_positive_int("num_envs", num_envs)
        self.window = check_positive_int("window", window)
        self.seed = check_int("seed", seed)
        self.envs = [make_environment(env_name) for _ in range(self.num_envs)]
        action_space = self.envs[0].action_space
        self.num_actions = int(action_space.n)
        size = self.spec.observation_size
        self.windows = np.zeros((self.num_envs, self.window, size), np.float32)
        self.episode_steps = np.zeros(self.num_envs, np.int64)
        self.episode_returns = np.zeros(self.num_envs, np.float64)
        for i, env in enumerate(self.envs):
            observation, _ = env.reset(seed=self.seed + i)
            self._start(i, observation)

    def _observed(self, observation):
        return np.asarray(observation, np.float32)[list(self.spec.kept)]

    def _start(self, i, observation):
        self.windows[i] = 0.0
        self.windows[i, -1] = self._observed(observation)
        self.episode_steps[i] = 0
        self.episode_returns[i] = 0.0

    def reset_env(self, i, seed=None):
        """Starts a new episode in environment `i` (from `seed` when given).

        Returns:
            The new window of environment `i` (a copy).
        """
        observation, _ = self.envs[i].reset(seed=seed)
        self._start(i, observation)
        return self.windows[i].copy()

    def step(self, actions):
        """Steps every environment with its action.

        Args:
            actions: `(num_envs,)` ints.

        Returns:
            A dict: `windows` (float32 `(num_envs, window, size)`, after the
            step; a finished episode's environment already shows its next
            episode's first observation), `rewards` (float32), `terminated`
            and `truncated` (bool), `final_windows` (the windows that ended a
            truncated episode, float32 `(num_envs, window, size)`, zeros
            elsewhere) and `episode_returns` (list of the returns of the
            episodes that ended, in environment order).
        """
        actions = np.asarray(actions)
        rewards = np.zeros(self.num_envs, np.float32)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        final = np.zeros_like(self.windows)
        finished = []
        for i, env in enumerate(self.envs):
            observation, reward, term, _, _ = env.step(int(actions[i]))
            rewards[i] = reward
            self.episode_steps[i] += 1
            self.episode_returns[i] += reward
            self.windows[i, :-1] = self.windows[i, 1:]
            self.windows[i, -1] = self._observed(observation)
            trunc = not term and self.episode_steps[i] >= self.spec.max_episode_steps
            terminated[i], truncated[i] = term, trunc
            if term or trunc:
                final[i] = self.windows[i]
                finished.append(float(self.episode_returns[i]))
                observation, _ = env.reset()
                self._start(i, observation)
        return {
            "windows": self.windows.copy(),
            "rewards": rewards,
            "terminated": terminated,
            "truncated": truncated,
            "final_windows": final,
            "episode_returns": finished,
        }

    def get_state(self):
        """A JSON-able dict of everything that decides the next steps."""
        return {
            "env_name": self.env_name,
            "num_envs": self.num_envs,
            "window": self.window,
            "windows": self.windows.tolist(),
            "episode_steps": self.episode_steps.tolist(),
            "episode_returns": self.episode_returns.tolist(),
            "envs": [
                {
                    "state": np.asarray(env.state, np.float64).tolist(),
                    "steps_beyond_terminated": env.steps_beyond_terminated,
                    "np_random": env.np_random.bit_generator.state,
                }
                for env in self.envs
            ],
        }

    def set_state(self, state):
        """Restores a `get_state` dict of the same environment and sizes.

        Raises:
            ValueError: a state of another environment, count or window.
        """
        for key in ("env_name", "num_envs", "window"):
            if state.get(key) != getattr(self, key):
                raise ValueError(
                    f"The saved environments have {key}={state.get(key)!r}; these "
                    f"have {key}={getattr(self, key)!r}."
                )
        self.windows[...] = np.asarray(state["windows"], np.float32)
        self.episode_steps[...] = state["episode_steps"]
        self.episode_returns[...] = state["episode_returns"]
        for env, saved in zip(self.envs, state["envs"], strict=True):
            env.state = np.asarray(saved["state"], np.float64)
            env.steps_beyond_terminated = saved["steps_beyond_terminated"]
            env.np_random.bit_generator.state = saved["np_random"]

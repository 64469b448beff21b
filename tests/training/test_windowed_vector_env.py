"""Windows of hidden-velocity CartPole: padding, shifts, resets and exact resume."""

import json

import gymnasium
import numpy as np
import pytest

from training import environments
from training.windowed_vector_env import WindowedVectorEnv


def test_the_window_keeps_positions_only_and_shifts():
    envs = WindowedVectorEnv("CartPole-v1", num_envs=2, window=3, seed=5)
    reference = gymnasium.make("CartPole-v1")
    first, _ = reference.reset(seed=6)  # environment 1 is seeded 5 + 1
    np.testing.assert_array_equal(envs.windows[1, :2], 0.0)
    np.testing.assert_array_equal(envs.windows[1, 2], first[[0, 2]])
    second, *_ = reference.step(1)
    result = envs.step([0, 1])
    np.testing.assert_array_equal(result["windows"][1, 0], 0.0)
    np.testing.assert_array_equal(result["windows"][1, 1], first[[0, 2]])
    np.testing.assert_array_equal(result["windows"][1, 2], second[[0, 2]])
    assert result["windows"].shape == (2, 3, 2)


def test_an_episode_end_resets_the_window_and_reports_its_return():
    envs = WindowedVectorEnv("CartPole-v1", num_envs=1, window=4, seed=0)
    steps = 0
    while True:  # always pushing left: the pole falls within ~10 steps
        result = envs.step([0])
        steps += 1
        if result["terminated"][0]:
            break
    assert result["episode_returns"] == [float(steps)]
    np.testing.assert_array_equal(result["windows"][0, :3], 0.0)
    assert np.any(result["windows"][0, 3] != 0)
    # The episode's last window ends with the observation that ended it.
    assert abs(result["final_windows"][0, 3, 1]) > 0.2  # the pole's angle
    assert envs.episode_steps[0] == 0


def test_the_time_limit_truncates_with_the_final_window(monkeypatch):
    spec = environments.environment_spec("CartPole-v1")
    monkeypatch.setitem(
        environments.ENVIRONMENTS,
        "CartPole-v1",
        type(spec)(spec.name, spec.gym_id, spec.kept, 3, spec.description),
    )
    envs = WindowedVectorEnv("CartPole-v1", num_envs=1, window=2, seed=0)
    for _ in range(2):
        assert not envs.step([0])["truncated"][0]
    before = envs.windows.copy()
    result = envs.step([1])
    assert result["truncated"][0] and not result["terminated"][0]
    np.testing.assert_array_equal(result["final_windows"][0, 0], before[0, 1])
    assert result["episode_returns"] == [3.0]


def test_a_restored_state_steps_exactly_as_the_original():
    envs = WindowedVectorEnv("CartPole-v1", num_envs=3, window=4, seed=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        envs.step(rng.integers(0, 2, 3))
    state = json.loads(json.dumps(envs.get_state()))
    actions = rng.integers(0, 2, (40, 3))
    original = [envs.step(a) for a in actions]
    restored = WindowedVectorEnv("CartPole-v1", num_envs=3, window=4, seed=99)
    restored.set_state(state)
    again = [restored.step(a) for a in actions]
    for a, b in zip(original, again, strict=True):
        np.testing.assert_array_equal(a["windows"], b["windows"])
        assert a["episode_returns"] == b["episode_returns"]
    # Not vacuous: the episodes did end (so resets drew from the restored streams).
    assert sum(len(r["episode_returns"]) for r in original) > 0


def test_a_state_of_other_sizes_is_refused():
    state = WindowedVectorEnv("CartPole-v1", 2, 4, 0).get_state()
    with pytest.raises(ValueError, match="window=4"):
        WindowedVectorEnv("CartPole-v1", 2, 3, 0).set_state(state)


@pytest.mark.parametrize("name", ["CartPole-v0", "cartpole", "MountainCar-v0"])
def test_an_unknown_environment_names_the_flag(name):
    with pytest.raises(ValueError, match="`--env`.*Received: --env"):
        WindowedVectorEnv(name, 1, 1, 0)


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="`num_envs`"):
        WindowedVectorEnv("CartPole-v1", 0, 1, 0)
    with pytest.raises(ValueError, match="`window`"):
        WindowedVectorEnv("CartPole-v1", 1, -2, 0)

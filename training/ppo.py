"""PPO training of an actor-critic, seeded and resumable, and its evaluation.

    from training.ppo import train_ppo, evaluate_policy
    policy = zoo.build_model("actor_critic_attention_cartpole")
    summary = train_ppo(policy, "CartPole-v1", PPOConfig(300_000), "runs/ac")
    evaluate_policy(policy, "CartPole-v1", episodes=100)  # {"mean_return": ...}

Acting uses the policy's compiled `predict_on_batch` with actions drawn by
NumPy from its softmax; learning is `PPOLearner.train_on_batch` (Keras'
train step with PPO's loss), so it runs on any backend. Everything random
after the model is built comes from one NumPy generator and the seeded
environments, so a run is a function of its seed.
"""

import hashlib
import json
import os
import shutil
import time

import keras
import numpy as np

from layers.validation import check_int, check_positive_int
from training.backup_error import BackupError
from training.optimizers import build_optimizer
from training.ppo_config import PPOConfig
from training.ppo_learner import PPOLearner
from training.ppo_loss import generalized_advantages
from training.windowed_vector_env import WindowedVectorEnv

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
MODEL_FILE = "model.keras"
LOG_FILE = "training_log.json"
# Episodes over which the training log's running mean return is taken.
RETURN_WINDOW = 100


def log_softmax(logits):
    """Row-wise log-softmax of `logits` in float64 (NumPy)."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sample_actions(logits, rng):
    """One action per row of `logits` drawn from its softmax with `rng`.

    Returns:
        `(actions, log_probs)`: int32 `(B,)` and their float32
        log-probabilities.
    """
    log_policy = log_softmax(logits)
    cumulative = np.cumsum(np.exp(log_policy), axis=-1)
    draws = rng.random(len(log_policy))[:, None]
    actions = np.minimum((cumulative < draws).sum(axis=-1), log_policy.shape[-1] - 1)
    actions = actions.astype(np.int32)
    chosen = np.take_along_axis(log_policy, actions[:, None], axis=-1)[:, 0]
    return actions, chosen.astype(np.float32)


def _window(policy):
    shape = policy.inputs[0].shape
    return int(shape[1])


def _fingerprint(policy, env_name, seed, config):
    text = json.dumps(
        {
            # Not `get_config()`: it holds names Keras numbers per process.
            "model": policy.name,
            "weights": [list(w.shape) for w in policy.weights],
            "env": env_name,
            "seed": seed,
            "ppo": config.to_dict(),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path, data):
    pending = path + ".pending"
    with open(pending, "w") as f:
        json.dump(data, f)
    os.replace(pending, path)


class _Run:
    """The learner, environments, generator and counters of one PPO run."""

    def __init__(self, policy, env_name, config, seed):
        self.policy = policy
        self.config = config
        self.envs = WindowedVectorEnv(env_name, config.num_envs, _window(policy), seed)
        self.learner = PPOLearner(
            policy,
            clip=config.clip,
            value_coef=config.value_coef,
            entropy_coef=config.entropy_coef,
            name="ppo_learner",
        )
        self.learner.compile(
            optimizer=build_optimizer(**config.optimizer_arguments()),
            jit_compile=False,
        )
        self.learner.optimizer.build(self.learner.trainable_variables)
        self.rng = np.random.default_rng(seed)
        self.update = 0
        self.env_steps = 0
        self.seconds = 0.0
        self.recent_returns = []
        self.episodes = 0
        self.history = []

    # --- checkpoints -----------------------------------------------------

    def _arrays(self):
        values = [keras.ops.convert_to_numpy(v) for v in self.policy.weights]
        values += [
            keras.ops.convert_to_numpy(v) for v in self.learner.optimizer.variables
        ]
        return values

    def save(self, folder, fingerprint):
        os.makedirs(folder, exist_ok=True)
        weights = f"weights-{self.update}.npz"
        pending = os.path.join(folder, "pending.npz")
        np.savez(pending, *self._arrays())
        os.replace(pending, os.path.join(folder, weights))
        state = {
            "fingerprint": fingerprint,
            "update": self.update,
            "env_steps": self.env_steps,
            "seconds": self.seconds,
            "episodes": self.episodes,
            "recent_returns": self.recent_returns,
            "history": self.history,
            "rng": self.rng.bit_generator.state,
            "envs": self.envs.get_state(),
            "weights": weights,
            "weights_sha256": _sha256(os.path.join(folder, weights)),
        }
        _write_json(os.path.join(folder, STATE_FILE), state)
        for name in os.listdir(folder):
            if name.startswith("weights-") and name != weights:
                os.remove(os.path.join(folder, name))

    def restore(self, folder, fingerprint):
        path = os.path.join(folder, STATE_FILE)
        try:
            with open(path) as f:
                state = json.load(f)
            weights = os.path.join(folder, state["weights"])
            if _sha256(weights) != state["weights_sha256"]:
                raise ValueError("its weights file does not match its checksum")
            if state["fingerprint"] != fingerprint:
                raise ValueError(
                    "it is a run of another model, environment, seed or PPO "
                    "settings (--steps included)"
                )
            with np.load(weights) as stored:
                arrays = [stored[f"arr_{i}"] for i in range(len(stored.files))]
            variables = [*self.policy.weights, *self.learner.optimizer.variables]
            if len(arrays) != len(variables) or any(
                tuple(a.shape) != tuple(v.shape)
                for a, v in zip(arrays, variables, strict=True)
            ):
                raise ValueError("its weights do not fit this model")
            for variable, value in zip(variables, arrays, strict=True):
                variable.assign(value)
            self.envs.set_state(state["envs"])
            self.rng.bit_generator.state = state["rng"]
        except (OSError, KeyError, TypeError, ValueError) as error:
            reason = str(error) if isinstance(error, ValueError) else repr(error)
            raise BackupError(folder, reason) from None
        for key in ("update", "env_steps", "seconds", "episodes"):
            setattr(self, key, state[key])
        self.recent_returns = list(state["recent_returns"])
        self.history = list(state["history"])

    # --- one update ------------------------------------------------------

    def _act(self, windows):
        outputs = self.policy.predict_on_batch(windows)
        actions, log_probs = sample_actions(outputs["logits"], self.rng)
        return actions, log_probs, np.asarray(outputs["value"], np.float32)

    def rollout(self):
        """Collects `rollout_steps` steps of every environment."""
        config, envs = self.config, self.envs
        steps, n = config.rollout_steps, config.num_envs
        windows = np.empty((steps, *envs.windows.shape), np.float32)
        actions = np.empty((steps, n), np.int32)
        log_probs = np.empty((steps, n), np.float32)
        values = np.empty((steps, n), np.float32)
        rewards = np.empty((steps, n), np.float32)
        dones = np.empty((steps, n), bool)
        current = envs.windows.copy()
        for t in range(steps):
            windows[t] = current
            actions[t], log_probs[t], values[t] = self._act(current)
            result = envs.step(actions[t])
            rewards[t] = result["rewards"] * config.reward_scale
            if result["truncated"].any():
                # A time limit is not the end of the task: bootstrap from the
                # value of the last observation.
                final = self.policy.predict_on_batch(result["final_windows"])
                bootstrap = np.asarray(final["value"], np.float32)
                rewards[t] += config.gamma * bootstrap * result["truncated"]
            dones[t] = result["terminated"] | result["truncated"]
            for episode_return in result["episode_returns"]:
                self.recent_returns.append(episode_return)
                self.episodes += 1
            self.recent_returns = self.recent_returns[-RETURN_WINDOW:]
            current = result["windows"]
        last = np.asarray(self.policy.predict_on_batch(current)["value"], np.float32)
        advantages, returns = generalized_advantages(
            rewards, values, dones, last, config.gamma, config.gae_lambda
        )
        self.env_steps += steps * n
        flat = lambda a: a.reshape(steps * n, *a.shape[2:])  # noqa: E731
        return flat(windows), {
            "actions": flat(actions),
            "old_log_probs": flat(log_probs),
            "advantages": flat(advantages),
            "returns": flat(returns),
        }

    def learn(self, observations, targets):
        """`epochs` passes of shuffled minibatches; returns the mean logs."""
        config = self.config
        size = config.minibatch_size
        logs = []
        for _ in range(config.epochs):
            order = self.rng.permutation(len(observations))
            for start in range(0, len(order), size):
                index = order[start : start + size]
                batch = {key: value[index] for key, value in targets.items()}
                self.learner.reset_metrics()
                logs.append(
                    self.learner.train_on_batch(
                        observations[index], batch, return_dict=True
                    )
                )
        return {key: float(np.mean([log[key] for log in logs])) for key in logs[0]}

    def step(self):
        start = time.perf_counter()
        observations, targets = self.rollout()
        logs = self.learn(observations, targets)
        if not np.isfinite(logs["loss"]):
            raise FloatingPointError(
                f"PPO's loss is not finite at update {self.update + 1}: {logs}"
            )
        self.seconds += time.perf_counter() - start
        self.update += 1
        mean_return = (
            float(np.mean(self.recent_returns)) if self.recent_returns else None
        )
        entry = {
            "update": self.update,
            "env_steps": self.env_steps,
            "seconds": round(self.seconds, 3),
            "episodes": self.episodes,
            "mean_return": mean_return,
            **{key: round(value, 6) for key, value in logs.items()},
        }
        self.history.append(entry)
        return entry


def train_ppo(
    policy, env_name, config, run_dir, seed=0, resume=True, verbose=1, print_fn=print
):
    """Trains `policy` with PPO in `env_name`, checkpointing to `run_dir`.

    Every `config.checkpoint_every` updates, and after the last, the policy's
    weights, the optimizer's state, the counters, the NumPy generator and the
    environments' states go to `RUN_DIR/checkpoint/` (each file written under
    another name, then renamed: a kill leaves the previous checkpoint). With
    `resume`, a run whose checkpoint is there continues from it and ends as
    an uninterrupted run would (the same weights); a finished run is not
    trained again. At the end the policy is saved to `RUN_DIR/model.keras`
    and the per-update log to `RUN_DIR/training_log.json`.

    Args:
        policy: a built actor-critic (`zoo.actor_critic`): `"observations"`
            `(batch, window, size)` to `"logits"` and `"value"`, its
            observation size and actions those of `env_name`.
        env_name: a name of `training.environments.ENVIRONMENTS`.
        config: a `PPOConfig`.
        run_dir: the run folder.
        seed: int seed of the environments and of the sampling generator
            (seed the model's initialization with `keras.utils.set_random_seed`
            before building it).
        resume: whether to continue from a checkpoint in `run_dir`; `False`
            deletes it first.
        verbose: 0 silent, 1 a line every 10 updates, 2 a line per update.
        print_fn: where the lines go.

    Returns:
        A dict: `updates`, `env_steps`, `seconds` (training time, summed over
        resumed sessions), `episodes`, `mean_return` (of the last 100
        training episodes), `resumed_from` (the update the run resumed
        from, 0 when fresh) and `history` (one dict per update).

    Raises:
        training.BackupError: `run_dir` holds a checkpoint that cannot be
            resumed (another model, environment, seed or settings, or a
            damaged file).
        ValueError: with `resume`, `run_dir` holds a `model.keras` but no
            checkpoint (another run, not overwritten without `resume=False`).
        FloatingPointError: a non-finite loss.
    """
    if not isinstance(config, PPOConfig):
        raise TypeError(f"Argument `config` must be a PPOConfig. Received: {config!r}")
    seed = check_int("seed", seed)
    run_dir = os.fspath(run_dir)
    folder = os.path.join(run_dir, CHECKPOINT_DIR)
    model_path = os.path.join(run_dir, MODEL_FILE)
    if not resume and os.path.isdir(folder):
        print_fn(f"deleting the checkpoint in {folder} (no resume)")
        shutil.rmtree(folder)
    has_checkpoint = os.path.exists(os.path.join(folder, STATE_FILE))
    if resume and os.path.exists(model_path) and not has_checkpoint:
        raise ValueError(
            f"{run_dir} already holds {MODEL_FILE} and no checkpoint to resume "
            "from: it is another run. Train into another --output folder, or "
            "rerun with --no-resume (resume=False) to replace it."
        )
    run = _Run(policy, env_name, config, seed)
    fingerprint = _fingerprint(policy, env_name, seed, config)
    resumed_from = 0
    if has_checkpoint:
        run.restore(folder, fingerprint)
        resumed_from = run.update
        if verbose:
            print_fn(f"resuming from update {run.update} ({run.env_steps} steps)")
    while run.update < config.updates:
        entry = run.step()
        last = run.update == config.updates
        if run.update % config.checkpoint_every == 0 or last:
            run.save(folder, fingerprint)
        if verbose > 1 or (verbose and (run.update % 10 == 0 or last)):
            shown = entry["mean_return"]
            shown = "-" if shown is None else f"{shown:.1f}"
            print_fn(
                f"update {run.update}/{config.updates}, {run.env_steps} steps, "
                f"{run.seconds:.0f} s: mean return {shown}, entropy "
                f"{entry['entropy']:.3f}, approx_kl {entry['approx_kl']:.4f}",
            )
    os.makedirs(run_dir, exist_ok=True)
    pending = os.path.join(run_dir, "pending.keras")
    policy.save(pending)
    os.replace(pending, model_path)
    _write_json(os.path.join(run_dir, LOG_FILE), run.history)
    return {
        "updates": run.update,
        "env_steps": run.env_steps,
        "seconds": run.seconds,
        "episodes": run.episodes,
        "mean_return": (
            float(np.mean(run.recent_returns)) if run.recent_returns else None
        ),
        "resumed_from": resumed_from,
        "history": run.history,
    }


def evaluate_policy(policy, env_name, episodes=100, seed=0, num_envs=20):
    """Mean return of `policy` acting greedily (argmax) over seeded episodes.

    Episode `k` starts from `reset(seed=seed + k)`, whatever `num_envs`:
    the figure depends on the policy, `seed` and `episodes` only.

    Args:
        policy: an actor-critic (see `train_ppo`).
        env_name: a name of `training.environments.ENVIRONMENTS`.
        episodes: positive int.
        seed: int, the first episode's seed.
        num_envs: environments stepped side by side (at most `episodes`).

    Returns:
        A dict: `mean_return`, `std_return`, `min_return`, `max_return`,
        `episodes` and `returns` (per episode, in episode order).
    """
    episodes = check_positive_int("episodes", episodes)
    seed = check_int("seed", seed)
    num_envs = min(check_positive_int("num_envs", num_envs), episodes)
    envs = WindowedVectorEnv(env_name, num_envs, _window(policy), seed)
    running = np.zeros(num_envs, np.int64)  # the episode each env plays
    for i in range(num_envs):
        envs.reset_env(i, seed + i)
        running[i] = i
    next_episode = num_envs
    returns = np.full(episodes, np.nan)
    active = np.ones(num_envs, bool)
    windows = envs.windows.copy()
    while active.any():
        logits = policy.predict_on_batch(windows)["logits"]
        actions = np.argmax(np.asarray(logits), axis=-1)
        before = envs.episode_returns.copy()
        result = envs.step(actions)
        done = result["terminated"] | result["truncated"]
        for i in np.flatnonzero(done & active):
            returns[running[i]] = before[i] + result["rewards"][i]
            if next_episode < episodes:
                envs.reset_env(i, seed + next_episode)
                running[i] = next_episode
                next_episode += 1
            else:
                active[i] = False
        windows = envs.windows.copy()
    return {
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "min_return": float(returns.min()),
        "max_return": float(returns.max()),
        "episodes": episodes,
        "returns": returns.tolist(),
    }

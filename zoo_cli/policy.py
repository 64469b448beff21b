"""`zoo train POLICY --env ENV` and `zoo evaluate RUN --env ENV`: PPO policies.

Both take the parsed `argparse.Namespace` of their command; the wiring in
`zoo_cli` is one dispatch each (a model of task `reinforcement_learning`, or
a run whose model is one, goes here).
"""

import json
import os

import keras

import zoo
from layers.validation import check_int, check_positive_int
from training.environments import environment_spec
from training.ppo import MODEL_FILE, train_ppo
from training.ppo import evaluate_policy as evaluate_episodes
from training.ppo_config import PPOConfig

TASK = "reinforcement_learning"
DEFAULT_EPISODES = 100


def _policy_spec(name):
    spec = zoo.get_model_spec(name)
    if spec.task != TASK:
        raise ValueError(
            f"Argument `model` must be a {TASK} model to train with --env. "
            f"Received: model={name!r} (a {spec.task} model)"
        )
    return spec


def ppo_config(spec, steps=None):
    """The variant's recommended `PPOConfig`, with `steps` env steps if given."""
    settings = dict(spec.training.get("ppo", {}))
    if steps is not None:
        settings["total_steps"] = check_positive_int("--steps", steps)
    if "total_steps" not in settings:
        raise ValueError(
            f"Model {spec.name!r} has no recommended PPO settings: pass --steps."
        )
    return PPOConfig(**settings)


def _write_metrics(metrics, path):
    if path:
        with open(path, "w") as f:
            json.dump(metrics, f, indent=2)
            f.write("\n")


def train_policy(args):
    """Trains a registered actor-critic with PPO, then evaluates it.

    Builds `args.model` for the environment's observation size and actions
    (seeded with `keras.utils.set_random_seed(args.seed)`), trains it with
    the variant's recommended PPO settings (`training.ppo.train_ppo`; resumes
    from `OUTPUT/checkpoint/` unless `args.no_resume`), saves
    `OUTPUT/model.keras` and evaluates it greedily over `args.episodes`
    seeded episodes.

    Args:
        args: an `argparse.Namespace` with `model` (a registered name),
            `env` (`training.environments.ENVIRONMENTS`), `seed` (int,
            default 0), `output` (run folder, default `runs/MODEL-ENV`),
            `steps` (environment steps, default the variant's), `no_resume`,
            `metrics_json` (optional path of a JSON of the training summary
            and the evaluation), `verbose` (0, 1 or 2) and `episodes`
            (evaluation episodes, default 100). Missing attributes take
            their defaults.

    Returns:
        0 (the exit status).

    Raises:
        ValueError: an unknown `--env`, a model of another task, a bad
            `--steps`, `--seed` or `--episodes`, or a run folder that cannot
            be resumed.
    """
    env = environment_spec(args.env)
    spec = _policy_spec(args.model)
    seed = check_int("--seed", _get(args, "seed", 0))
    episodes = check_positive_int(
        "--episodes", _get(args, "episodes", DEFAULT_EPISODES)
    )
    config = ppo_config(spec, _get(args, "steps", None))
    output = _get(args, "output", None) or os.path.join(
        "runs", f"{args.model}-{env.name}"
    )
    from zoo_cli.commands import check_new_run

    check_new_run(output, args, MODEL_FILE)
    verbose = _get(args, "verbose", 1)
    keras.utils.set_random_seed(seed)
    probe = _probe_actions(env.name)
    policy = zoo.build_model(
        args.model, observation_size=env.observation_size, num_actions=probe
    )
    print(
        f"training {args.model} on {env.name} ({env.description}) with PPO: "
        f"{config.updates * config.batch_size} steps, {config.num_envs} "
        f"environments, seed {seed}, into {output}"
    )
    summary = train_ppo(
        policy,
        env.name,
        config,
        output,
        seed=seed,
        resume=not _get(args, "no_resume", False),
        verbose=verbose,
    )
    print(
        f"saved {os.path.join(output, MODEL_FILE)} after {summary['env_steps']} "
        f"steps in {summary['seconds']:.0f} s of training"
    )
    result = evaluate_episodes(policy, env.name, episodes=episodes, seed=seed)
    _report(result, env.name, seed)
    summary = {k: v for k, v in summary.items() if k != "history"}
    _write_metrics(
        {"training": summary, "evaluation": _brief(result)}, args.metrics_json
    )
    return 0


def evaluate_policy(args):
    """Evaluates a trained policy greedily over seeded episodes.

    Args:
        args: an `argparse.Namespace` with `model` (a run folder holding
            `model.keras`, a `.keras` file, or a registered name: its
            untrained policy), `env`, `seed` (episode `k` starts from
            `reset(seed=seed + k)`, default 0), `episodes` (default 100) and
            `metrics_json` (optional path of a JSON of the figures).

    Returns:
        0 (the exit status).

    Raises:
        ValueError: an unknown `--env`, bad `--episodes` or `--seed`, or a
            model whose observations or actions do not fit the environment.
    """
    env = environment_spec(args.env)
    seed = check_int("--seed", _get(args, "seed", 0))
    episodes = check_positive_int(
        "--episodes", _get(args, "episodes", DEFAULT_EPISODES)
    )
    target = args.model
    if os.path.exists(target) or target.endswith(".keras"):
        from zoo.model_files import load_model_file

        policy = load_model_file(target)
    else:
        _policy_spec(target)
        keras.utils.set_random_seed(seed)
        policy = zoo.build_model(
            target,
            observation_size=env.observation_size,
            num_actions=_probe_actions(env.name),
        )
    _check_fits(policy, env, target)
    result = evaluate_episodes(policy, env.name, episodes=episodes, seed=seed)
    _report(result, env.name, seed)
    _write_metrics({"evaluation": _brief(result)}, _get(args, "metrics_json", None))
    return 0


def _get(args, name, default):
    value = getattr(args, name, None)
    return default if value is None else value


def _probe_actions(env_name):
    from training.environments import make_environment

    env = make_environment(env_name)
    try:
        return int(env.action_space.n)
    finally:
        env.close()


def _check_fits(policy, env, target):
    shape = tuple(policy.inputs[0].shape) if len(policy.inputs) == 1 else None
    size = shape[-1] if shape and len(shape) == 3 else None
    if size != env.observation_size or "logits" not in policy.output_names:
        raise ValueError(
            f"Argument `model` must be a policy of {env.observation_size} values "
            f"per observation for --env {env.name!r}. Received: model={target!r} "
            f"(input shape {shape})"
        )


def _brief(result):
    return {k: result[k] for k in result if k != "returns"} | {
        "returns": [round(r, 1) for r in result["returns"]]
    }


def _report(result, env_name, seed):
    print(
        f"{env_name}: mean return {result['mean_return']:.1f} +- "
        f"{result['std_return']:.1f} (min {result['min_return']:.0f}, max "
        f"{result['max_return']:.0f}) over {result['episodes']} greedy episodes, "
        f"seeds {seed}..{seed + result['episodes'] - 1}"
    )

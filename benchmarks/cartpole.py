"""CartPole benchmark: a self-attention policy against the same network without.

Trains `actor_critic_attention_cartpole` (self-attention over the last 8
observations) and `actor_critic_mlp_cartpole` (an MLP on the single current
observation) with PPO on CartPole-v1 with the cart's and pole's velocities
hidden (`training.environments`), with the same seed and environment-step
budget (each variant's recommended PPO settings, `zoo.get_model_spec(name)
.training["ppo"]`), then evaluates each greedily over 100 seeded episodes
(episode k starts from `reset(seed=k)`). Prints a Markdown table (training
time, environment steps, mean and standard deviation of the return) and
appends it, with the date, machine and command, to `benchmarks/RESULTS.md`;
a full run also appends each policy's mean return to
`benchmarks/results/reinforcement_learning.csv` (`zoo.results`). The goal
(issue 13): the attention policy at a mean return of at least 475, the
baseline below.

    python benchmarks/cartpole.py                       # both, ~10 minutes on 2 cores
    python benchmarks/cartpole.py --quick --no-append   # smoke run: 2 updates each
    python benchmarks/cartpole.py --models actor_critic_mlp_cartpole --steps 200000
"""

import argparse
import datetime
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
from vision import machine  # noqa: E402

from training.environments import environment_spec  # noqa: E402
from training.ppo import evaluate_policy, train_ppo  # noqa: E402
from zoo import build_model, get_model_spec  # noqa: E402
from zoo.results import append_results, result_row  # noqa: E402
from zoo_cli.policy import ppo_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
DEFAULT_MODELS = "actor_critic_attention_cartpole,actor_critic_mlp_cartpole"
ENV = "CartPole-v1"
GOAL = 475.0
# --quick: 2 updates of 8 environments x 256 steps, 5 episodes.
QUICK_STEPS, QUICK_EPISODES = 4096, 5


def run_one(name, steps, seed, episodes, output):
    """Trains and evaluates `name`; returns its table row."""
    spec = get_model_spec(name)
    config = ppo_config(spec, steps)
    env = environment_spec(ENV)
    keras.utils.set_random_seed(seed)
    policy = build_model(name, observation_size=env.observation_size)
    summary = train_ppo(
        policy,
        ENV,
        config,
        output,
        seed=seed,
        resume=False,
        verbose=1,
        print_fn=lambda line: print(f"{name}: {line}", flush=True),
    )
    result = evaluate_policy(policy, ENV, episodes=episodes, seed=0)
    return dict(
        model=name,
        encoder=spec.config["encoder"],
        window=spec.config["window"],
        params=policy.count_params(),
        env_steps=summary["env_steps"],
        updates=summary["updates"],
        seconds=summary["seconds"],
        training_return=summary["mean_return"],
        **{k: result[k] for k in ("mean_return", "std_return", "min_return")},
        episodes=episodes,
    )


def table(rows):
    lines = [
        "| model | encoder | window | params | env steps | training time "
        "| last 100 training episodes | greedy mean return | std | min |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['encoder']} | {r['window']} | {r['params']:,} "
            f"| {r['env_steps']:,} | {r['seconds']:.0f} s "
            f"| {r['training_return']:.1f} | **{r['mean_return']:.1f}** "
            f"| {r['std_return']:.1f} | {r['min_return']:.0f} |"
        )
    return "\n".join(lines)


def goal_text(rows):
    """Whether the attention policy reaches `GOAL` and the baselines do not."""
    parts = []
    for r in rows:
        met = r["mean_return"] >= GOAL
        if r["encoder"] == "attention":
            parts.append(
                f"{r['model']} {'reaches' if met else 'does not reach'} {GOAL:.0f}"
            )
        else:
            parts.append(
                f"{r['model']} {'reaches' if met else 'stays below'} {GOAL:.0f}"
            )
    return "; ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help=f"comma-separated registered policies (default: {DEFAULT_MODELS})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        help="environment steps per policy (default: each variant's recommended)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument(
        "--episodes", type=int, default=100, help="evaluation episodes (default 100)"
    )
    parser.add_argument("--quick", action="store_true", help="2 updates, 5 episodes")
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--results", default=RESULTS, help="Markdown file to append")
    parser.add_argument(
        "--output", help="folder of the runs (default: a temporary folder)"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for name in names:
        if get_model_spec(name).task != "reinforcement_learning":
            parser.error(f"--models: {name!r} is not a reinforcement_learning model")
    steps = QUICK_STEPS if args.quick else args.steps
    episodes = QUICK_EPISODES if args.quick else args.episodes
    root = args.output or tempfile.mkdtemp(prefix="cartpole-")
    rows = []
    for name in names:
        rows.append(run_one(name, steps, args.seed, episodes, os.path.join(root, name)))
        print(rows[-1], flush=True)
    mode = "quick" if args.quick else "full"
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = " ".join(["python benchmarks/cartpole.py", *(argv or sys.argv[1:])])
    report = (
        f"## CartPole benchmark ({mode}), {stamp}\n\n"
        f"Machine: {machine()}.\n"
        f"Command: `{command}`. CartPole-v1 with the velocities hidden (the policy "
        "sees cart position and pole angle), PPO on `keras.ops` "
        "(`training.ppo`) with each variant's recommended settings and seed "
        f"{args.seed}; greedy evaluation over {episodes} episodes seeded "
        f"0..{episodes - 1}. "
        "Training time: rollouts and updates, tracing included, evaluation left "
        "out.\n\n"
        f"{table(rows)}\n\nGoal (issue 13, mean return >= {GOAL:.0f}): "
        f"{goal_text(rows)}.\n"
    )
    print(report)
    if not args.no_append:
        with open(args.results, "a") as f:
            f.write("\n" + report)
        print(f"appended to {args.results}")
        if not args.quick:
            append_results(results_rows(rows, command))
    return 0


def results_rows(rows, command):
    """`zoo.results` rows: each policy's greedy mean return on CartPole-v1."""
    out = []
    for r in rows:
        spec = get_model_spec(r["model"])
        out.append(
            result_row(
                spec,
                "mean_return",
                r["mean_return"],
                command,
                dataset=ENV,
                split=f"{r['episodes']} episodes, velocities hidden",
                train_seconds=round(r["seconds"], 1),
                params=r["params"],
                precision="float32",
            )
        )
    return out


if __name__ == "__main__":
    raise SystemExit(main())

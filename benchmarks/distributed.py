"""Distributed benchmark: a search and a training run, one process against several.

Runs the `zoo` command as a user would, each process on its own:

- tuning: `zoo tune MODEL --max-trials T` in one process, then the same
  search served by `--chief` to `--workers` worker processes on 127.0.0.1;
  wall time, trials completed and the best validation accuracy;
- training: `KERAS_BACKEND=jax zoo train MODEL` in one process, then
  `--strategy multiworker` over `--workers` processes (`TF_CONFIG` on
  127.0.0.1); wall time and the largest weight difference between the
  chief's model and the one-process model.

On one machine the workers share its cores, so the times show the overhead
and what a machine's cores give, not a cluster's speed-up. Prints a Markdown
table and appends it, with the date, machine and command, to
`benchmarks/RESULTS.md`.

    python benchmarks/distributed.py                  # 4 trials, 2 workers
    python benchmarks/distributed.py --quick --no-append
"""

import argparse
import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
MNIST_DIR = os.path.join(ROOT, "data", "mnist")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zoo(argv, env=None):
    """Starts `python -m zoo ARGV` (stdout captured)."""
    return subprocess.Popen(
        [sys.executable, "-m", "zoo", *argv],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait(processes):
    outs = []
    for p in processes:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"{p.args} failed:\n{out[-2000:]}")
        outs.append(out)
    return outs


def data_flags(args, data_dir):
    return [
        "--dataset", "mnist", "--manual-dir", MNIST_DIR, "--data-dir", data_dir,
        "--train-split", f"train[:{args.examples}]", "--test-split", "test[:1024]",
        "--batch-size", str(args.batch_size), "--verbose", "0",
    ]  # fmt: skip


def search_summary(project):
    trials = []
    for name in sorted(os.listdir(project)):
        path = os.path.join(project, name, "trial.json")
        if os.path.exists(path):
            with open(path) as f:
                trials.append(json.load(f))
    done = [t for t in trials if t["status"] == "COMPLETED"]
    best = max((t["score"] for t in done if t["score"] is not None), default=None)
    return len(done), best


def tuning(args, data_dir, workers):
    folder = tempfile.mkdtemp(prefix="tune-")
    flags = [args.model, *data_flags(args, data_dir), "--directory", folder]
    flags += ["--max-trials", str(args.trials), "--epochs", "1"]
    start = time.perf_counter()
    if workers == 0:
        wait([zoo(["tune", *flags])])
    else:
        address = f"127.0.0.1:{free_port()}"
        chief = zoo(["tune", *flags, "--chief", address])
        team = [
            zoo(["tune", *flags, "--worker", address, "--tuner-id", f"w{i}"])
            for i in range(workers)
        ]
        wait([*team, chief])
    seconds = time.perf_counter() - start
    done, best = search_summary(os.path.join(folder, f"{args.model}-mnist"))
    return dict(seconds=seconds, trials=done, best=best)


def training(args, data_dir, workers):
    folder = tempfile.mkdtemp(prefix="train-")
    flags = [args.model, *data_flags(args, data_dir), "--epochs", "1"]
    flags += ["--no-augmentation", "--output", folder]
    env = {"KERAS_BACKEND": "jax"}
    start = time.perf_counter()
    if workers == 0:
        wait([zoo(["train", *flags], env)])
    else:
        hosts = [f"127.0.0.1:{free_port()}" for _ in range(workers)]
        team = []
        for i in range(workers):
            config = {
                "cluster": {"worker": hosts},
                "task": {"type": "worker", "index": i},
            }
            team.append(
                zoo(
                    ["train", *flags, "--strategy", "multiworker"],
                    {**env, "TF_CONFIG": json.dumps(config)},
                )
            )
        wait(team)
    return dict(seconds=time.perf_counter() - start, model=folder)


def weight_difference(a, b):
    os.environ["KERAS_BACKEND"] = "jax"
    import keras
    import numpy as np

    import zoo as _  # noqa: F401  (registers the layers)

    one, other = (
        keras.saving.load_model(os.path.join(path, "model.keras")) for path in (a, b)
    )
    return max(
        float(np.abs(np.asarray(x) - np.asarray(y)).max())
        for x, y in zip(one.get_weights(), other.get_weights(), strict=True)
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cbam_cnn_tiny")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="2 trials, 512 images")
    parser.add_argument("--results", default=RESULTS, help="Markdown file to append")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.examples = 2, 512
    data_dir = tempfile.mkdtemp(prefix="tfds-")
    # Prepares MNIST once, so that no two processes prepare it at the same time.
    prepare = ["evaluate", args.model, "--dataset", "mnist", "--manual-dir"]
    prepare += [MNIST_DIR, "--data-dir", data_dir, "--test-split", "test[:64]"]
    wait([zoo(prepare)])
    rows = []
    for workers in (0, args.workers):
        t = tuning(args, data_dir, workers)
        who = "1 process" if workers == 0 else f"chief + {workers} workers"
        rows.append(
            f"| tune, {args.trials} trials | {who} | {t['seconds']:.0f} s | "
            f"{t['trials']} completed, best val_accuracy {t['best']:.4f} |"
        )
    single = training(args, data_dir, 0)
    multi = training(args, data_dir, args.workers)
    difference = weight_difference(single["model"], multi["model"])
    steps = args.examples // args.batch_size
    rows.append(
        f"| train, 1 epoch ({steps} steps) | 1 process (JAX) | "
        f"{single['seconds']:.0f} s | - |"
    )
    rows.append(
        f"| train, 1 epoch ({steps} steps) | {args.workers} workers (JAX "
        f"DataParallel) | {multi['seconds']:.0f} s | largest weight difference "
        f"from 1 process: {difference:.1e} |"
    )
    table = "\n".join(
        ["| run | processes | wall time | result |", "|---|---|---:|---|", *rows]
    )
    print(table)
    if args.no_append:
        return 0
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = (
        "python benchmarks/distributed.py"
        + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    )
    from vision import machine  # after the JAX processes: it loads TensorFlow

    with open(args.results, "a") as f:
        f.write(
            f"\n## Distributed tuning and training, {now}\n\n"
            f"Machine: {machine()}.\nCommand: `{command}`. {args.model} on "
            f"{args.examples} MNIST training images, batch {args.batch_size}, "
            f"processes on 127.0.0.1 sharing the machine's cores (wall time "
            "includes each process's start).\n\n"
            f"{table}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Vision benchmark: MNIST accuracy, size, training time and speed of image models.

Per model (TensorFlow backend, MNIST from `data/mnist`): trains the variant
with its recommended settings (`get_model_spec(name).training`: optimizer,
schedule, batch size, epochs) under each `--policies` entry, then reports the
test accuracy, parameters, training time (whole `fit`, tracing included) and
training images/s; separately it times `--steps` training steps (after a
warm-up) under float32 and mixed_bfloat16, taking turns, and gives the
speed-up. Prints a Markdown table and appends it, with the date and machine,
to `benchmarks/RESULTS.md`.

    python benchmarks/vision.py                       # the DEFAULT_MODELS below
    python benchmarks/vision.py --quick               # smoke run: 2,048 images
    python benchmarks/vision.py --models 'vit_*' --epochs 3
    python benchmarks/vision.py --policies float32,mixed_bfloat16 --no-append
"""

import argparse
import datetime
import fnmatch
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from training.data import load_image_classification  # noqa: E402
from training.fit import compile_model  # noqa: E402
from training.optimizers import build_optimizer  # noqa: E402
from training.precision import set_precision  # noqa: E402
from training.recipes import optimizer_arguments  # noqa: E402
from zoo import DEFAULT_MODEL, build_model, get_model_spec, list_models  # noqa: E402
from zoo.results import append_results, cpu_name, result_row  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
MNIST_DIR = os.path.join(ROOT, "data", "mnist")
DEFAULT_MODELS = f"{DEFAULT_MODEL},attention_cnn_small,vit_small"
POLICIES = ("float32", "mixed_bfloat16")
QUICK = dict(train_split="train[:2048]", test_split="test[:1024]", epochs=1, steps=10)


def select_models(patterns):
    """Image-classification names matching the comma-separated names/globs."""
    image = list_models(task="image_classification")
    names = []
    for pattern in patterns.split(","):
        matched = [n for n in image if fnmatch.fnmatchcase(n, pattern.strip())]
        if not matched:
            get_model_spec(pattern.strip())  # raises with close matches
            raise ValueError(f"{pattern!r} is not an image-classification model")
        names += [n for n in matched if n not in names]
    return names


def _data(spec, quick):
    kwargs = {}
    if quick:
        kwargs = dict(train_split=QUICK["train_split"], test_split=QUICK["test_split"])
    return load_image_classification(
        "mnist",
        batch_size=spec.training.get("batch_size", 128),
        manual_dir=MNIST_DIR,
        augmentation=spec.training.get("augmentation"),
        **kwargs,
    )


def _compiled(name, policy, steps_per_epoch, epochs):
    set_precision(policy)
    keras.utils.set_random_seed(0)
    spec = get_model_spec(name)
    model = build_model(name)
    recommended = spec.training.get("optimizer", {})
    options = optimizer_arguments(recommended, steps_per_epoch * epochs)
    optimizer = build_optimizer(**options)
    return compile_model(model, optimizer)


def train(name, policy, epochs, data):
    """Trains `name` under `policy`; returns accuracy, size and timings."""
    train_ds, test_ds, _ = data
    steps = int(train_ds.cardinality())
    model = _compiled(name, policy, steps, epochs)
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, verbose=2)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(test_ds, verbose=0)
    images = sum(int(x.shape[0]) for x, _ in train_ds) * epochs
    return dict(
        model=name,
        policy=policy,
        params=model.count_params(),
        epochs=epochs,
        accuracy=accuracy,
        seconds=seconds,
        images_per_second=images / seconds,
    )


def throughputs(name, data, steps, rounds=5, warmup=3):
    """Training images/s of `name` under each of `POLICIES`, `steps` batches each.

    The policies take turns, `rounds` times `steps // rounds` batches each, and
    each rate is the median over its rounds, so that a passing load on the
    machine does not favour one policy.
    """
    train_ds = data[0]
    models = {}
    for policy in POLICIES:
        models[policy] = _compiled(name, policy, int(train_ds.cardinality()), 1)
        models[policy].fit(train_ds.take(warmup), verbose=0)
    batches = train_ds.repeat().take(max(1, steps // rounds)).cache()
    images = sum(int(x.shape[0]) for x, _ in batches)
    rates = {policy: [] for policy in POLICIES}
    for round_ in range(rounds):
        order = POLICIES if round_ % 2 == 0 else POLICIES[::-1]
        for policy in order:
            start = time.perf_counter()
            models[policy].fit(batches, verbose=0)
            rates[policy].append(images / (time.perf_counter() - start))
    return tuple(statistics.median(rates[policy]) for policy in POLICIES)


def machine():
    """CPU, load, OS and versions, for the reports."""
    cpu = cpu_name()
    load = ", load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} CPUs visible{load}, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}"
    )


def table(rows, speeds):
    lines = [
        "| model | params | policy | epochs | test accuracy | training time | "
        "training img/s | float32 img/s | bfloat16 img/s | bf16 speed-up |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        f32, bf16 = speeds[r["model"]]
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['policy']} | {r['epochs']} "
            f"| {100 * r['accuracy']:.2f}% | {r['seconds']:.0f} s "
            f"| {r['images_per_second']:.0f} | {f32:.0f} | {bf16:.0f} "
            f"| {bf16 / f32:.2f}x |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        default=DEFAULT_MODELS,
        help=f"comma-separated names or globs (default: {DEFAULT_MODELS})",
    )
    parser.add_argument(
        "--epochs", type=int, help="epochs (default: each variant's recommended)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2,048 training images, 1 epoch"
    )
    parser.add_argument(
        "--policies",
        default="float32",
        help="comma-separated policies to train with (float32, mixed_bfloat16)",
    )
    parser.add_argument(
        "--steps", type=int, help="batches timed per policy for the speed-up"
    )
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--results", default=RESULTS, help="Markdown file to append")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "tensorflow":
        parser.error("the vision benchmark needs KERAS_BACKEND=tensorflow")
    policies = [p.strip() for p in args.policies.split(",")]
    for policy in policies:
        if policy not in POLICIES:
            parser.error(f"--policies: {policy!r} is not one of {list(POLICIES)}")
    names = select_models(args.models)
    steps = args.steps or (QUICK["steps"] if args.quick else 100)
    rows, speeds = [], {}
    for name in names:
        spec = get_model_spec(name)
        epochs = args.epochs or (
            QUICK["epochs"] if args.quick else spec.training.get("epochs", 1)
        )
        data = _data(spec, args.quick)
        speeds[name] = throughputs(name, data, steps)
        for policy in policies:
            rows.append(train(name, policy, epochs, data))
            print(rows[-1], flush=True)
    set_precision("float32")
    mode = "quick" if args.quick else "full"
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = " ".join(["python benchmarks/vision.py", *(argv or sys.argv[1:])])
    report = (
        f"## Vision benchmark ({mode}), {stamp}\n\n"
        f"Machine: {machine()}.\n"
        f"Command: `{command}`. MNIST ({'subset' if args.quick else '60,000'} "
        "training images, test split), recommended optimizer and schedule per "
        "variant, XLA off on CPU (`compile_model` default). Training time: the "
        f"whole `fit`, tracing included. Speed-up: {steps} training batches "
        "per policy after a warm-up, the policies taking turns in 5 rounds "
        "(median).\n\n"
        f"{table(rows, speeds)}\n"
    )
    print(report)
    if not args.no_append:
        with open(args.results, "a") as f:
            f.write("\n" + report)
        print(f"appended to {args.results}")
        if not args.quick:
            append_results([_result(r, command) for r in rows])


def _result(row, command):
    return result_row(
        get_model_spec(row["model"]),
        "accuracy",
        row["accuracy"],
        command,
        dataset="mnist",
        split="test",
        epochs=row["epochs"],
        train_seconds=round(row["seconds"], 1),
        params=row["params"],
        precision=row["policy"],
    )


if __name__ == "__main__":
    main()

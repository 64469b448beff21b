"""Ensemble benchmark: MNIST accuracy of three tiny models and of their ensembles.

Trains each member (TensorFlow backend, MNIST from `data/mnist`, 10% of the
training split held out for validation) with its recommended settings
(`get_model_spec(name).training`: optimizer, schedule, batch size, epochs,
augmentation), then evaluates every member and the ensembles of the three
(`zoo.build_ensemble`): the mean of the probabilities and weights fitted on
the validation split (`method="fitted"`), on the test split. Prints a
Markdown table (test accuracy, validation NLL, training time per member,
their total) and appends it, with the date, machine and command, to
`benchmarks/RESULTS.md`; a full run also appends the ensembles' rows (as
`ensemble_mnist_tiny`, the fitted one with its weights as settings) to
`benchmarks/results/` (`zoo.results`).

    python benchmarks/ensemble.py                     # the three tiny members
    python benchmarks/ensemble.py --quick --no-append  # smoke run: 2,048 images
    python benchmarks/ensemble.py --members vit_tiny,cbam_cnn_tiny --epochs 3
"""

import argparse
import datetime
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
from vision import machine  # noqa: E402

from training.data import load_image_classification  # noqa: E402
from training.fit import compile_model  # noqa: E402
from training.optimizers import build_optimizer  # noqa: E402
from training.precision import set_precision  # noqa: E402
from training.recipes import optimizer_arguments  # noqa: E402
from zoo import build_model, get_model_spec  # noqa: E402
from zoo.ensemble import build_ensemble  # noqa: E402
from zoo.ensemble.model import member_log_probabilities, validation_nll  # noqa: E402
from zoo.results import append_results, result_row  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
MNIST_DIR = os.path.join(ROOT, "data", "mnist")
ENSEMBLE = "ensemble_mnist_tiny"
DEFAULT_MEMBERS = ",".join(get_model_spec(ENSEMBLE).config["members"])
VALIDATION_SPLIT = 0.1
QUICK = dict(train_split="train[:2048]", test_split="test[:1024]", epochs=1)


def _data(spec, quick):
    kwargs = {}
    if quick:
        kwargs = dict(train_split=QUICK["train_split"], test_split=QUICK["test_split"])
    return load_image_classification(
        "mnist",
        batch_size=spec.training.get("batch_size", 128),
        manual_dir=MNIST_DIR,
        validation_split=VALIDATION_SPLIT,
        augmentation=spec.training.get("augmentation"),
        **kwargs,
    )


def train_member(name, epochs, quick):
    """Trains `name` with its recommended settings; returns the model and a row."""
    spec = get_model_spec(name)
    train_ds, _, _ = _data(spec, quick)
    keras.utils.set_random_seed(0)
    model = build_model(name)
    steps = int(train_ds.cardinality())
    options = optimizer_arguments(spec.training.get("optimizer", {}), steps * epochs)
    compile_model(model, build_optimizer(**options))
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, verbose=2)
    seconds = time.perf_counter() - start
    return model, dict(
        model=name, params=model.count_params(), epochs=epochs, seconds=seconds
    )


def accuracy(model, test_ds):
    """Test accuracy of `model` (compiled here with the zoo's loss and metric)."""
    compile_model(model, jit_compile=False)
    return float(model.evaluate(test_ds, verbose=0, return_dict=True)["accuracy"])


def table(rows, total_seconds):
    lines = [
        "| model | params | epochs | training time | validation NLL | test accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        seconds = "-" if r.get("seconds") is None else f"{r['seconds']:.0f} s"
        epochs = "-" if r.get("epochs") is None else str(r["epochs"])
        lines.append(
            f"| {r['model']} | {r['params']:,} | {epochs} | {seconds} "
            f"| {r['nll']:.4f} | {100 * r['accuracy']:.2f}% |"
        )
    lines.append(f"\nTotal training time of the members: {total_seconds:.0f} s.")
    return "\n".join(lines)


def run(names, epochs_override, quick):
    """Trains the members, builds both ensembles; returns the table rows."""
    _, test_ds, info = _data(get_model_spec(names[0]), quick)
    val_ds = info.validation_ds
    models, rows = [], []
    for name in names:
        spec = get_model_spec(name)
        epochs = epochs_override or (
            QUICK["epochs"] if quick else spec.training.get("epochs", 1)
        )
        model, row = train_member(name, epochs, quick)
        models.append(model)
        rows.append(row)
        print(row, flush=True)
    log_p, labels = member_log_probabilities(models, val_ds)
    for i, (model, row) in enumerate(zip(models, rows, strict=True)):
        row["nll"] = validation_nll(log_p[i : i + 1], labels)
        row["accuracy"] = accuracy(model, test_ds)
    mean = build_ensemble(models, name="ensemble_mean")
    fitted = build_ensemble(
        models, method="fitted", validation_data=val_ds, name="ensemble_fitted"
    )
    weights = fitted.get_layer("logits").member_weights
    shares = ", ".join(f"{w:.3f}" for w in weights)
    for label, model, w in (
        ("mean", mean, None),
        (f"fitted ({shares})", fitted, weights),
    ):
        rows.append(
            dict(
                model=f"ensemble, {label}",
                params=model.count_params(),
                nll=validation_nll(log_p, labels, w),
                accuracy=accuracy(model, test_ds),
                weights=w,
            )
        )
    return rows, info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--members",
        default=DEFAULT_MEMBERS,
        help=f"comma-separated registered names (default: {DEFAULT_MEMBERS})",
    )
    parser.add_argument(
        "--epochs", type=int, help="epochs (default: each member's recommended)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2,048 training images, 1 epoch"
    )
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--results", default=RESULTS, help="Markdown file to append")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "tensorflow":
        parser.error("the ensemble benchmark needs KERAS_BACKEND=tensorflow")
    names = [n.strip() for n in args.members.split(",") if n.strip()]
    for name in names:
        if get_model_spec(name).task != "image_classification":
            parser.error(f"--members: {name!r} is not an image-classification model")
    set_precision("float32")
    start = time.perf_counter()
    rows, info = run(names, args.epochs, args.quick)
    wall = time.perf_counter() - start
    members = rows[: len(names)]
    total = sum(r["seconds"] for r in members)
    mode = "quick" if args.quick else "full"
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = " ".join(["python benchmarks/ensemble.py", *(argv or sys.argv[1:])])
    report = (
        f"## Ensemble benchmark ({mode}), {stamp}\n\n"
        f"Machine: {machine()}.\n"
        f"Command: `{command}`. MNIST ({info.train_examples:,} training images, "
        f"{info.validation_examples:,} held out for validation, "
        f"{info.test_examples:,} test images), each member trained with its "
        "recommended optimizer, schedule and epochs, XLA off on CPU. Ensembles "
        "(`zoo.build_ensemble`): the mean of the members' probabilities, and "
        "weights fitted on the validation split (minimum validation NLL). "
        f"Training time: the whole `fit`, tracing included; the run took {wall:.0f} "
        "s in all.\n\n"
        f"{table(rows, total)}\n"
    )
    print(report)
    if not args.no_append:
        with open(args.results, "a") as f:
            f.write("\n" + report)
        print(f"appended to {args.results}")
        if not args.quick:
            append_results(_results(rows, members, names, command))


def _results(rows, members, names, command):
    """Results rows of the two ensembles, as `ensemble_mnist_tiny`."""
    spec = get_model_spec(ENSEMBLE)
    epochs = max(r["epochs"] for r in members)
    seconds = round(sum(r["seconds"] for r in members), 1)
    out = []
    for row in rows[len(names) :]:
        settings = {"members": tuple(names)}
        if row["weights"] is not None:
            settings["weights"] = [round(w, 4) for w in row["weights"]]
        out.append(
            result_row(
                spec,
                "accuracy",
                row["accuracy"],
                command,
                dataset="mnist",
                split="test",
                epochs=epochs,
                train_seconds=seconds,
                params=row["params"],
                settings=settings,
                precision="float32",
            )
        )
    return out


if __name__ == "__main__":
    main()

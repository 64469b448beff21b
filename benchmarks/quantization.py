"""int8 export benchmark: size, MNIST accuracy and serving speed against float32.

Per image model (TensorFlow backend, MNIST from `data/mnist`): trains it with
its recommended optimizer for `--epochs` (default 1: the comparison is of the
same weights before and after quantization, not of the best accuracy),
exports it twice (`export_model(model, ...)` and with `quantize="int8"`),
then from the two SavedModels' `serving_default`: stored variable bytes, test
accuracy on the 10,000 test images, latency at batch 1 and throughput at
batch 64 (the two exports taking turns). Prints a Markdown table and appends
it, with the date and machine, to `benchmarks/RESULTS.md`.

Goals (issue 14): int8 variables at most 0.3x the float32 ones; accuracy
within 0.3 points of the float model.

    python benchmarks/quantization.py                      # every image model
    python benchmarks/quantization.py --models vit_tiny --epochs 1 --no-append
"""

import argparse
import datetime
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from serving import _interleaved_medians  # noqa: E402
from vision import _compiled, _data, machine, select_models  # noqa: E402

from zoo import get_model_spec, list_models  # noqa: E402
from zoo.export import export_model  # noqa: E402
from zoo.export.inspection import export_sizes  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")


def _accuracy(signature, test_ds):
    hits = total = 0
    for images, labels in test_ds:
        classes = signature(image=images)["classes"].numpy()
        hits += int(np.sum(classes == labels.numpy()))
        total += len(classes)
    return hits / total


def bench(name, epochs, workdir, calls):
    """One row: float32 against int8 exports of `name` trained `epochs`."""
    spec = get_model_spec(name)
    data = _data(spec, quick=False)
    train_ds, test_ds, _ = data
    model = _compiled(name, "float32", int(train_ds.cardinality()), epochs)
    model.fit(train_ds, epochs=epochs, verbose=0)
    paths = {
        "float32": export_model(model, os.path.join(workdir, name, "1")).path,
        "int8": export_model(
            model, os.path.join(workdir, f"{name}_int8", "1"), quantize="int8"
        ).path,
    }
    signatures = {
        key: tf.saved_model.load(path).signatures["serving_default"]
        for key, path in paths.items()
    }
    row = {"model": name, "epochs": epochs}
    for key, path in paths.items():
        row[f"bytes/{key}"] = export_sizes(path)["weights"]
        row[f"accuracy/{key}"] = _accuracy(signatures[key], test_ds)
    images = next(iter(test_ds))[0]
    runners = {
        k: (lambda x, f=f: f(image=x)["classes"].numpy()) for k, f in signatures.items()
    }
    for batch, rounds, prefix in ((1, calls, "b1"), (64, max(5, calls // 15), "b64")):
        medians = _interleaved_medians(runners, images[:batch], rounds)
        for key, seconds in medians.items():
            row[f"{prefix}/{key}"] = seconds
    return row


def table(rows):
    lines = [
        "| model | epochs | variables float32 MB | int8 MB | int8/float32 size "
        "| accuracy float32 | accuracy int8 | difference (points) | b1 ms float32 "
        "| b1 ms int8 | b64 img/s float32 | b64 img/s int8 | int8 speed-up b1, b64 "
        "| goals (size <= 0.3x, accuracy within 0.3) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        size = r["bytes/int8"] / r["bytes/float32"]
        points = 100 * (r["accuracy/int8"] - r["accuracy/float32"])
        met = [size <= 0.3, abs(points) <= 0.3]
        lines.append(
            f"| {r['model']} | {r['epochs']} | {r['bytes/float32'] / 2**20:.2f} "
            f"| {r['bytes/int8'] / 2**20:.2f} | {size:.2f}x "
            f"| {100 * r['accuracy/float32']:.2f}% | {100 * r['accuracy/int8']:.2f}% "
            f"| {points:+.2f} | {1e3 * r['b1/float32']:.2f} | {1e3 * r['b1/int8']:.2f} "
            f"| {64 / r['b64/float32']:.0f} | {64 / r['b64/int8']:.0f} "
            f"| {r['b1/float32'] / r['b1/int8']:.2f}x, "
            f"{r['b64/float32'] / r['b64/int8']:.2f}x "
            f"| size {'yes' if met[0] else '**no**'}, "
            f"accuracy {'yes' if met[1] else '**no**'} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = ",".join(list_models(task="image_classification"))
    parser.add_argument("--models", default=default, help="names or globs")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--calls", type=int, default=150, help="batch-1 calls")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args(argv)
    if keras.backend.backend() != "tensorflow":
        parser.error("the quantization benchmark needs KERAS_BACKEND=tensorflow")
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in select_models(args.models):
            rows.append(bench(name, args.epochs, workdir, args.calls))
            print(table(rows[-1:]), flush=True)
    text = table(rows)
    print(text)
    if not args.no_append:
        command = "python benchmarks/quantization.py " + " ".join(argv or sys.argv[1:])
        stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        with open(args.results, "a") as f:
            f.write(
                f"\n## int8 export against float32, {stamp}\n\n`{command}`\n\n"
                f"Machine: {machine()}. Same trained weights exported twice; "
                "`serving_default` of each SavedModel; medians of the two taking "
                f"turns.\n\n{text}\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

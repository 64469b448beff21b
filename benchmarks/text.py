"""Text benchmark: accuracy and training time of text models, trained from scratch.

Per model (TensorFlow backend, data through the project's tfds builders from
`../shared/data`): trains the variant with its recommended settings
(`get_model_spec(name).training`), the way `zoo train` does (vocabulary from
the training split, `zoo.TextClassifier` on raw strings), then reports the
test accuracy, parameters and training time (whole `fit`). `--cells` trains
each `rnn_classifier_*` once per recurrent cell. Prints a Markdown table and
appends it, with the date, machine and command, to `benchmarks/RESULTS.md`.

    python benchmarks/text.py --models transformer_classifier_small \\
        --dataset zoo_sst2 --test-split validation
    python benchmarks/text.py --models rnn_classifier_small \\
        --cells lstm,gru,janet,indrnn --test-split validation
    python benchmarks/text.py --models transformer_classifier_small \\
        --dataset zoo_imdb_reviews --set max_length=512 --epochs 2
    python benchmarks/text.py --quick --no-append      # smoke run: 2,048 sentences

`--set KEY=VALUE` (repeatable) overrides a builder argument of the variant,
as `zoo.build_model(name, KEY=VALUE)` would; the value is a Python literal.
`--log-test` prints the test accuracy after every epoch (information only:
the figure reported is the last epoch's, with the epochs fixed beforehand).
"""

import argparse
import ast
import datetime
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import keras  # noqa: E402
from vision import machine  # noqa: E402

import zoo  # noqa: E402
from training.fit import compile_model  # noqa: E402
from training.optimizers import build_optimizer  # noqa: E402
from training.precision import set_precision  # noqa: E402
from training.recipes import optimizer_arguments  # noqa: E402
from training.text_data import load_text_classification  # noqa: E402
from zoo.results import append_results, result_row  # noqa: E402
from zoo.text_classifier import text_classifier_for  # noqa: E402

ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
SHARED = os.path.join(ROOT, "..", "shared", "data")
MANUAL = {
    "zoo_sst2": "sst2",
    "zoo_imdb_reviews": "imdb",
    "zoo_ag_news_subset": "ag_news_test",
}


def train(name, args, cell=None):
    """Trains `name` on `args.dataset`; returns its row of the table."""
    set_precision(args.precision)
    keras.utils.set_random_seed(args.seed)
    spec = zoo.get_model_spec(name)
    config = {**spec.config, **args.set}
    batch_size = spec.training.get("batch_size", 64)
    epochs = args.epochs or spec.training.get("epochs", 1)
    train_ds, test_ds, info = load_text_classification(
        args.dataset,
        batch_size=batch_size,
        manual_dir=args.manual_dir or os.path.join(SHARED, MANUAL[args.dataset]),
        seed=args.seed,
        train_split="train[:2048]" if args.quick else None,
        test_split=args.test_split,
        vocabulary_size=config["vocabulary_size"],
        max_length=config.get("max_length", 256),
    )
    # The vocabulary size is the adapted vocabulary's (info), not the request.
    overrides = {k: v for k, v in args.set.items() if k != "vocabulary_size"}
    if cell is not None:
        overrides["cell"] = cell
    model = text_classifier_for(name, info, **overrides)
    steps = epochs * math.ceil(info.train_examples / batch_size)
    options = optimizer_arguments(spec.training.get("optimizer", {}), steps)
    compile_model(model, build_optimizer(**options), jit_compile=False)
    start = time.perf_counter()
    model.fit(
        train_ds,
        epochs=epochs,
        verbose=2,
        shuffle=False,
        validation_data=test_ds if args.log_test else None,
    )
    seconds = time.perf_counter() - start
    results = model.evaluate(test_ds, verbose=0, return_dict=True)
    settings = dict(args.set, **({} if cell is None else {"cell": cell}))
    settings.pop("vocabulary_size", None)
    row = result_row(
        spec,
        "accuracy",
        float(results["accuracy"]),
        args.command,
        dataset=args.dataset,
        split=info.test_split,
        epochs=epochs,
        train_seconds=round(seconds, 1),
        params=model.classifier.count_params(),
        settings=settings,
        precision=args.precision,
    )
    return row, dict(
        model=name + "".join(f", {k}={v!r}" for k, v in args.set.items()),
        cell=cell or spec.config.get("cell", "-"),
        dataset=f"{info.name} ({info.train_examples} train, {info.test_split})",
        params=model.classifier.count_params(),
        epochs=epochs,
        accuracy=float(results["accuracy"]),
        seconds=seconds,
    )


def setting(text):
    """`KEY=VALUE` -> `(KEY, literal VALUE)`; a bare word stays a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, received {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def add_set_argument(parser):
    """`--set KEY=VALUE` (repeatable): builder arguments that override the variant's."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=setting,
        metavar="KEY=VALUE",
        help="override a builder argument (a Python literal)",
    )


def table(rows):
    lines = [
        "| model | cell | dataset | params | epochs | test accuracy | training time |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['cell']} | {r['dataset']} | {r['params']:,} | "
            f"{r['epochs']} | {r['accuracy']:.2%} | {r['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="transformer_classifier_small")
    parser.add_argument("--dataset", default="zoo_sst2", choices=sorted(MANUAL))
    parser.add_argument("--manual-dir", help="default ../shared/data/<dataset>")
    parser.add_argument("--test-split", help="default test (SST-2: use validation)")
    parser.add_argument("--cells", help="comma-separated cells for rnn_classifier_*")
    parser.add_argument("--epochs", type=int, help="default: the model's")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    add_set_argument(parser)
    parser.add_argument("--log-test", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args(argv)
    args.set = dict(args.set)
    args.command = "python benchmarks/text.py " + " ".join(argv or sys.argv[1:])
    rows, results = [], []
    for name in args.models.split(","):
        name = name.strip()
        cells = [None]
        if args.cells and zoo.get_model_spec(name).family == "rnn_classifier":
            cells = [c.strip() for c in args.cells.split(",")]
        for cell in cells:
            result, row = train(name, args, cell)
            rows.append(row)
            results.append(result)
            print(table(rows[-1:]), flush=True)
    text = table(rows)
    print(text)
    if not args.no_append:
        command = args.command
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        with open(args.results, "a") as f:
            f.write(
                f"\n## Text classification ({stamp})\n\n`{command}`\n\n"
                f"Machine: {machine()}\n\n{text}\n"
            )
        if not args.quick:
            append_results(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())

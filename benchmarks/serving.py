"""Serving benchmark: exported SavedModel signatures against the Keras model.

Per registered model (TensorFlow backend, random weights): export size against
the weight bytes, SavedModel load time, the XLA signature's first call
(compilation), latency at batch 1 and throughput at batch 64 of
`serving_default`, `serving_xla`, `model.predict_on_batch` and `model(x)`,
and their ratios against the goals. Text classifiers are exported as
`zoo.TextClassifier`s with a vocabulary adapted on SST-2's training sentences
(`zoo_sst2` from `../shared/data/sst2`) and timed on its validation sentences
(batch 1: the first, batch 64: the first 64), strings in, plus
`serving_tokens` on the same sentences tokenized beforehand. Prints a
Markdown table and appends it, with the date and machine, to
`benchmarks/RESULTS.md`.

    python benchmarks/serving.py            # full run
    python benchmarks/serving.py --quick    # few repetitions
    python benchmarks/serving.py --models cbam_cnn_tiny,vit_tiny --no-append
"""

import argparse
import datetime
import os
import random
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from vision import machine  # noqa: E402

from zoo import build_model, get_model_spec, list_models  # noqa: E402
from zoo.export import SIGNATURE_BUILDERS, export_model  # noqa: E402
from zoo.export.inspection import export_sizes, weight_bytes  # noqa: E402
from zoo.registry import SEQ2SEQ_TASKS  # noqa: E402
from zoo.results import append_results, result_row  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "RESULTS.md")
SST2 = os.path.join(HERE, "..", "..", "shared", "data", "sst2")
# (batch-1 calls, batch-64 calls, loads) per mode.
REPEATS = {"quick": (100, 5, 1), "full": (300, 20, 3)}
GOALS = (
    "Goals: XLA >= 1.2x faster than serving_default at batch 1 and not slower at "
    "64; serving_default never slower than predict_on_batch; size <= 1.05x."
)


def _interleaved_medians(runners, x, rounds, warmup=2):
    """Median seconds per call of each runner, timed in turns.

    Taking turns in a shuffled order spreads the load of a shared machine, and
    the after-effects of one runner on the next, over all runners.
    """
    for run in runners.values():
        for _ in range(warmup):
            run(x)
    times = {key: [] for key in runners}
    order = list(runners)
    rng = random.Random(0)
    for _ in range(rounds):
        rng.shuffle(order)
        for key in order:
            run = runners[key]
            start = time.perf_counter()
            run(x)
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def _runners(loaded, model, input_name):
    """Callables of a batch (dict: `input`, and `tokens` for text models)."""

    def as_numpy(outputs):
        return {k: v.numpy() for k, v in outputs.items()}

    def signature(key):
        function = loaded.signatures[key]
        return lambda x: as_numpy(function(**{input_name: x["input"]}))

    runners = {
        "default": signature("serving_default"),
        "xla": signature("serving_xla"),
        "predict_on_batch": lambda x: model.predict_on_batch(x["input"].numpy()),
        "model(x)": lambda x: keras.tree.map_structure(
            np.asarray, model(x["input"], training=False)
        ),
    }
    if "serving_tokens" in loaded.signatures:
        tokens = loaded.signatures["serving_tokens"]
        runners["tokens"] = lambda x: as_numpy(tokens(tokens=x["tokens"]))
    return runners


def _image_case(name):
    """Model, input name and batches of 1 and 64 random images."""
    model = build_model(name)
    height, width, channels = get_model_spec(name).config["input_shape"]
    rng = np.random.default_rng(0)
    batches = [
        {"input": tf.constant(rng.random((n, height, width, channels), "float32"))}
        for n in (1, 64)
    ]
    return model, "image", *batches


def _policy_case(name):
    """Model, input name and batches of 1 and 64 observation windows."""
    from zoo.export.policy import example_windows

    model = build_model(name)
    shape = tuple(model.inputs[0].shape[1:])
    batches = [
        {"input": tf.constant(example_windows(shape, n, seed=0))} for n in (1, 64)
    ]
    return model, "observations", *batches


_SST2 = {}


def _sst2(vocabulary_size):
    """SST-2 through the project's tfds builder: (info, 64 validation texts),
    the vocabulary adapted on the training split (one per size)."""
    if vocabulary_size not in _SST2:
        from training.text_data import load_text_classification

        _, test_ds, info = load_text_classification(
            "zoo_sst2",
            batch_size=64,
            manual_dir=SST2,
            test_split="validation",
            vocabulary_size=vocabulary_size,
        )
        _SST2[vocabulary_size] = info, next(iter(test_ds))[0]
    return _SST2[vocabulary_size]


def _text_case(name):
    """Untrained `TextClassifier` with SST-2's vocabulary; 1 and 64 sentences."""
    from zoo.text_classifier import text_classifier_for

    info, texts = _sst2(get_model_spec(name).config["vocabulary_size"])
    model = text_classifier_for(name, info)
    batches = [{"input": texts[:n]} for n in (1, 64)]
    for batch in batches:
        batch["tokens"] = model.tokenize(batch["input"])
    return model, "text", *batches


def bench_model(name, repeats, workdir):
    calls_1, calls_64, loads = repeats
    task = get_model_spec(name).task
    case = {
        "text_classification": _text_case,
        "reinforcement_learning": _policy_case,
    }.get(task, _image_case)
    model, input_name, batch_1, batch_64 = case(name)
    exported = export_model(model, os.path.join(workdir, name, "1"))
    sizes = export_sizes(exported.path)
    weights = weight_bytes(model)
    load_times = []
    for _ in range(loads):
        start = time.perf_counter()
        loaded = tf.saved_model.load(exported.path)
        load_times.append(time.perf_counter() - start)
    runners = _runners(loaded, model, input_name)
    start = time.perf_counter()
    runners["xla"](batch_1)
    first_xla = time.perf_counter() - start
    row = {
        "model": name,
        "params": model.count_params(),
        "weights_mb": weights / 2**20,
        "variables_ratio": sizes["weights"] / weights,
        "total_ratio": sizes["total"] / weights,
        "load_s": statistics.median(load_times),
        "xla_first_s": first_xla,
    }
    for key, seconds in _interleaved_medians(runners, batch_1, calls_1).items():
        row[f"b1_ms/{key}"] = 1e3 * seconds
    for key, seconds in _interleaved_medians(runners, batch_64, calls_64, 1).items():
        row[f"b64_ips/{key}"] = 64 / seconds
    return row


def _ok(flag):
    return "yes" if flag else "**no**"


def _figure(row, key, spec):
    return format(row[key], spec) if key in row else "n/a"


def table(rows):
    header = (
        "| model | params | weights MB | stored/weights | total/weights | load s "
        "| XLA 1st call s | b1 ms default | b1 ms XLA | b1 ms predict_on_batch "
        "| b1 ms model(x) | b1 ms tokens | b64 ex/s default | b64 ex/s XLA "
        "| b64 ex/s predict_on_batch | b64 ex/s model(x) | b64 ex/s tokens "
        "| XLA speed-up b1 "
        "| XLA/default b64 | default/predict_on_batch b1, b64 | goals met |"
    )
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    for r in rows:
        xla_b1 = r["b1_ms/default"] / r["b1_ms/xla"]
        xla_b64 = r["b64_ips/xla"] / r["b64_ips/default"]
        vs_pob_b1 = r["b1_ms/predict_on_batch"] / r["b1_ms/default"]
        vs_pob_b64 = r["b64_ips/default"] / r["b64_ips/predict_on_batch"]
        goals = (
            xla_b1 >= 1.2,
            xla_b64 >= 1.0,
            min(vs_pob_b1, vs_pob_b64) >= 1.0,
            r["variables_ratio"] <= 1.05,
        )
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['weights_mb']:.2f} "
            f"| {r['variables_ratio']:.3f} | {r['total_ratio']:.2f} "
            f"| {r['load_s']:.2f} | {r['xla_first_s']:.2f} "
            + "".join(
                f"| {_figure(r, f'b1_ms/{k}', '.2f')} "
                for k in ("default", "xla", "predict_on_batch", "model(x)", "tokens")
            )
            + "".join(
                f"| {_figure(r, f'b64_ips/{k}', '.0f')} "
                for k in ("default", "xla", "predict_on_batch", "model(x)", "tokens")
            )
            + f"| {xla_b1:.2f}x | {xla_b64:.2f}x | {vs_pob_b1:.2f}x, {vs_pob_b64:.2f}x "
            f"| {_ok(all(goals))} (XLA b1 {_ok(goals[0])}, XLA b64 {_ok(goals[1])}, "
            f"vs predict_on_batch {_ok(goals[2])}, size {_ok(goals[3])}) |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions")
    parser.add_argument("--models", help="comma-separated names (default: all)")
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--results", default=RESULTS, help="Markdown file to append")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "tensorflow":
        parser.error("the serving benchmark needs KERAS_BACKEND=tensorflow")
    names = args.models.split(",") if args.models else list_models()
    names = [n for n in names if get_model_spec(n).task in SIGNATURE_BUILDERS]
    # Translators decode as long as their (random) weights say: their serving
    # speed is measured trained, by benchmarks/decoding.py --run.
    names = [n for n in names if get_model_spec(n).task not in SEQ2SEQ_TASKS]
    mode = "quick" if args.quick else "full"
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            keras.utils.set_random_seed(0)
            rows.append(bench_model(name, REPEATS[mode], workdir))
            print(f"done: {name}", flush=True)
    calls_1, calls_64, loads = REPEATS[mode]
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    report = (
        f"## Serving benchmark ({mode}), {stamp}\n\n"
        f"Machine: {machine()}.\n"
        f"Median of {calls_1} calls at batch 1 and {calls_64} at batch 64 (the "
        f"runners taking turns), {loads} load(s); random weights. ex/s: images "
        "or texts per second; tokens: `serving_tokens` on pre-tokenized texts. "
        "stored/weights: bytes under variables/ (less the object graph) over the "
        "model's variable bytes; total/weights adds saved_model.pb. "
        "Ratios > 1 favour the first named. "
        f"{GOALS}\n\n{table(rows)}\n"
    )
    print(report)
    if not args.no_append:
        with open(args.results, "a") as f:
            f.write("\n" + report)
        print(f"appended to {args.results}")
        command = " ".join(["python benchmarks/serving.py", *(argv or sys.argv[1:])])
        append_results([r for row in rows for r in _results(row, command)])


def _results(row, command):
    """Speed rows of `serving_default`: batch-64 throughput, batch-1 latency."""
    spec = get_model_spec(row["model"])
    figures = {
        "examples_per_s_b64": row["b64_ips/default"],
        "latency_ms_b1": row["b1_ms/default"],
    }
    return [
        result_row(spec, metric, round(value, 3), command, params=row["params"])
        for metric, value in figures.items()
    ]


if __name__ == "__main__":
    main()

"""Serving benchmark: exported SavedModel signatures against the Keras model.

Per registered model (TensorFlow backend, random weights): export size against
the weight bytes, SavedModel load time, the XLA signature's first call
(compilation), latency at batch 1 and throughput at batch 64 of
`serving_default`, `serving_xla`, `model.predict_on_batch` and `model(x)`,
and their ratios against the goals. Prints a Markdown table and appends it,
with the date and machine, to `benchmarks/RESULTS.md`.

    python benchmarks/serving.py            # full run
    python benchmarks/serving.py --quick    # few repetitions
    python benchmarks/serving.py --models cbam_cnn_tiny,vit_tiny --no-append
"""

import argparse
import datetime
import os
import platform
import random
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from zoo import build_model, get_model_spec, list_models  # noqa: E402
from zoo.export import SIGNATURE_BUILDERS, export_model  # noqa: E402
from zoo.export.inspection import export_sizes, weight_bytes  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")
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


def _runners(loaded, model):
    default = loaded.signatures["serving_default"]
    xla = loaded.signatures["serving_xla"]

    def as_numpy(outputs):
        return {k: v.numpy() for k, v in outputs.items()}

    return {
        "default": lambda x: as_numpy(default(image=x)),
        "xla": lambda x: as_numpy(xla(image=x)),
        "predict_on_batch": lambda x: model.predict_on_batch(x.numpy()),
        "model(x)": lambda x: model(x, training=False).numpy(),
    }


def bench_model(name, repeats, workdir):
    calls_1, calls_64, loads = repeats
    model = build_model(name)
    exported = export_model(model, os.path.join(workdir, name, "1"))
    sizes = export_sizes(exported.path)
    weights = weight_bytes(model)
    load_times = []
    for _ in range(loads):
        start = time.perf_counter()
        loaded = tf.saved_model.load(exported.path)
        load_times.append(time.perf_counter() - start)
    height, width, channels = get_model_spec(name).config["input_shape"]
    rng = np.random.default_rng(0)
    batch_1 = tf.constant(rng.random((1, height, width, channels), dtype=np.float32))
    batch_64 = tf.constant(rng.random((64, height, width, channels), dtype=np.float32))
    runners = _runners(loaded, model)
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


def table(rows):
    header = (
        "| model | params | weights MB | stored/weights | total/weights | load s "
        "| XLA 1st call s | b1 ms default | b1 ms XLA | b1 ms predict_on_batch "
        "| b1 ms model(x) | b64 img/s default | b64 img/s XLA "
        "| b64 img/s predict_on_batch | b64 img/s model(x) | XLA speed-up b1 "
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
                f"| {r[f'b1_ms/{k}']:.2f} "
                for k in ("default", "xla", "predict_on_batch", "model(x)")
            )
            + "".join(
                f"| {r[f'b64_ips/{k}']:.0f} "
                for k in ("default", "xla", "predict_on_batch", "model(x)")
            )
            + f"| {xla_b1:.2f}x | {xla_b64:.2f}x | {vs_pob_b1:.2f}x, {vs_pob_b64:.2f}x "
            f"| {_ok(all(goals))} (XLA b1 {_ok(goals[0])}, XLA b64 {_ok(goals[1])}, "
            f"vs predict_on_batch {_ok(goals[2])}, size {_ok(goals[3])}) |"
        )
    return "\n".join(lines)


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = (line.split(":", 1)[1] for line in f if "model name" in line)
            cpu = next(names).strip()
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs visible, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}, TensorFlow "
        f"{tf.__version__}, Keras {keras.__version__}"
    )


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
        f"four runners taking turns), {loads} load(s); random weights. "
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


if __name__ == "__main__":
    main()

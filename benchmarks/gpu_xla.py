"""XLA on the JAX backend: every registered model on GPU against CPU outputs.

A CPU run writes a reference (weights, inputs, labels, inference logits, the
loss of one SGD step and the logits after it); a GPU run loads the same
weights, runs the same XLA-compiled forward pass and training step, compares,
and appends the figures (device, step times, largest differences) to
`benchmarks/RESULTS.md`. Both modes run on any JAX device.

    KERAS_BACKEND=jax python benchmarks/gpu_xla.py --save-reference   # on CPU
    KERAS_BACKEND=jax python benchmarks/gpu_xla.py --compare          # on GPU
    KERAS_BACKEND=jax python benchmarks/gpu_xla.py --compare --quick --no-append

GPUs run float32 matmuls in TF32 by default; `--precision highest` (the
default here) makes the comparison meaningful, `--precision default` measures
the fast path (compare with a looser `--atol`).
"""

import argparse
import datetime
import os
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from zoo import build_model, get_model_spec, list_models  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "RESULTS.md")
# runs/ is git-ignored.
REFERENCE = os.path.join(HERE, os.pardir, "runs", "gpu_xla_reference.npz")
# Tasks whose inputs this script can make up: float inputs in [0, 1] and
# integer token ids; labels are class ids per output position.
TASKS = (
    "image_classification",
    "text_classification",
    "translation",
    "headline_generation",
)


def example_batch(name, model, batch_size, seed):
    """Random inputs (a list, one per model input) and labels for `model`."""
    rng = np.random.default_rng(seed)
    config = get_model_spec(name).config
    inputs = []
    for tensor in model.inputs:
        shape = (batch_size, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            inputs.append(rng.integers(0, config.get("vocab_size", 2), shape))
        else:
            inputs.append(rng.random(shape, dtype=np.float32))
    output_shape = model.outputs[0].shape
    labels = rng.integers(0, output_shape[-1], (batch_size, *output_shape[1:-1]))
    return inputs, labels


def compiled(model):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    return model


def _median_ms(fn, calls):
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def run_model(name, batch_size, calls, reference=None):
    """Forward pass and one training step of `name`, XLA-compiled.

    Args:
        name: a registered model.
        batch_size: the batch size (ignored with a `reference`).
        calls: timed calls per figure.
        reference: optional dict of `weights`, `inputs` and `labels` to use.

    Returns:
        `(arrays, figures)`: `arrays` has `weights`, `inputs`, `labels`,
        `logits`, `loss` and `logits_after_step`; `figures` has step times in
        milliseconds (median of `calls`).
    """
    keras.utils.set_random_seed(0)
    model = compiled(build_model(name))
    if reference is None:
        inputs, labels = example_batch(name, model, batch_size, seed=0)
    else:
        model.set_weights(reference["weights"])
        inputs, labels = reference["inputs"], reference["labels"]
    weights = [np.asarray(w) for w in model.get_weights()]
    x = inputs if len(inputs) > 1 else inputs[0]
    logits = np.asarray(model.predict_on_batch(x))
    loss = float(model.train_on_batch(x, labels))
    after = np.asarray(model.predict_on_batch(x))
    figures = {
        "forward_ms": _median_ms(lambda: model.predict_on_batch(x), calls),
        "train_step_ms": _median_ms(lambda: model.train_on_batch(x, labels), calls),
    }
    arrays = {
        "weights": weights,
        "inputs": inputs,
        "labels": labels,
        "logits": logits,
        "loss": np.float64(loss),
        "logits_after_step": after,
    }
    return arrays, figures


def save_reference(path, names, batch_size, calls):
    stored = {}
    for name in names:
        arrays, figures = run_model(name, batch_size, calls)
        for key in ("weights", "inputs"):
            for i, value in enumerate(arrays.pop(key)):
                stored[f"{name}/{key}/{i}"] = value
        for key, value in arrays.items():
            stored[f"{name}/{key}"] = value
        print(f"{name}: {figures}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez_compressed(path, device=_device(), **stored)
    print(f"reference for {len(names)} models written to {path}")


def _stored_list(reference, prefix):
    count = sum(k.startswith(prefix) for k in reference.files)
    return [reference[f"{prefix}{i}"] for i in range(count)]


def compare(path, names, calls):
    reference = np.load(path)
    rows = []
    for name in names:
        if f"{name}/logits" not in reference.files:
            print(f"{name}: not in the reference, skipped")
            continue
        given = {
            "weights": _stored_list(reference, f"{name}/weights/"),
            "inputs": _stored_list(reference, f"{name}/inputs/"),
            "labels": reference[f"{name}/labels"],
        }
        arrays, figures = run_model(name, None, calls, given)
        diffs = {
            key: float(np.max(np.abs(arrays[key] - reference[f"{name}/{key}"])))
            for key in ("logits", "loss", "logits_after_step")
        }
        batch_size = len(given["labels"])
        rows.append({"model": name, "batch": batch_size, **figures, **diffs})
        print(f"{name}: {rows[-1]}", flush=True)
    return rows, str(reference["device"])


def table(rows, atol):
    lines = [
        "| model | batch | forward ms | train step ms | max abs diff logits "
        "| loss diff | max abs diff logits after step | within atol |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        worst = max(r["logits"], r["loss"], r["logits_after_step"])
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['forward_ms']:.2f} "
            f"| {r['train_step_ms']:.2f} | {r['logits']:.2e} | {r['loss']:.2e} "
            f"| {r['logits_after_step']:.2e} | {'yes' if worst <= atol else '**no**'} |"
        )
    return "\n".join(lines)


def _device():
    device = jax.devices()[0]
    return f"{device.platform}: {device.device_kind}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save-reference", action="store_true")
    mode.add_argument("--compare", action="store_true")
    parser.add_argument("--reference", default=REFERENCE, help="the .npz file")
    parser.add_argument("--models", help="comma-separated names (default: all)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="batch 8, few calls")
    parser.add_argument(
        "--precision", default="highest", choices=["highest", "default"]
    )
    parser.add_argument("--atol", type=float, default=1e-4)
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--results", default=RESULTS, help="Markdown file to append")
    args = parser.parse_args(argv)
    if keras.backend.backend() != "jax":
        parser.error("run with KERAS_BACKEND=jax")
    if args.precision == "highest":
        jax.config.update("jax_default_matmul_precision", "highest")
    names = args.models.split(",") if args.models else list_models()
    names = [n for n in names if get_model_spec(n).task in TASKS]
    batch_size, calls = (8, 3) if args.quick else (args.batch_size, 20)
    if args.save_reference:
        save_reference(args.reference, names, batch_size, calls)
        return
    rows, reference_device = compare(args.reference, names, calls)
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    report = (
        f"## JAX/XLA on {_device()} against {reference_device}, {stamp}\n\n"
        f"Keras {keras.__version__}, JAX {jax.__version__}, Python "
        f"{platform.python_version()}; matmul precision {args.precision}; "
        f"XLA-compiled `predict_on_batch` and `train_on_batch` (SGD 0.01), "
        f"median of {calls} calls; atol {args.atol:g}.\n\n{table(rows, args.atol)}\n"
    )
    print(report)
    if not args.no_append:
        with open(args.results, "a") as f:
            f.write("\n" + report)
        print(f"appended to {args.results}")


if __name__ == "__main__":
    main()

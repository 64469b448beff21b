"""Training speed of our transformer classifier against keras-hub's layers.

The same architecture twice, side by side in one run: the registered
`transformer_classifier_*` variant (our `TokenAndPositionEmbedding` and
`TransformerEncoder`), and a copy built from `keras_hub.layers`
(`TokenAndPositionEmbedding`, `TransformerEncoder` with the same sizes,
activation, dropout and post-norm, `GlobalAveragePooling1D` over the mask).
The two must have the same parameter count or the script stops. Both train
with the variant's optimizer on the same token batches (random ids, random
lengths, padded with 0), TensorFlow backend, `jit_compile=False` as
`zoo train` compiles text models; the two models take turns, a few steps at a
time, and the median seconds per step gives training tokens/s (padding
included) and the ratio ours/keras-hub time (goal: at most 1.0).

keras-hub is not a dependency of the project (its tensorflow-text requirement
pins the full tensorflow wheel). `make keras-hub` installs it without its
dependencies into `.cache/keras_hub` (pins in
`benchmarks/requirements-keras-hub.txt`), which this script puts on the path.

    make keras-hub
    python benchmarks/text_speed.py                       # lengths 64, 256
    python benchmarks/text_speed.py --lengths 128 --precision mixed_bfloat16
"""

import argparse
import datetime
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
KERAS_HUB = os.path.join(ROOT, ".cache", "keras_hub")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from vision import machine  # noqa: E402

import zoo  # noqa: E402
from training.fit import compile_model  # noqa: E402
from training.optimizers import build_optimizer  # noqa: E402
from training.precision import set_precision  # noqa: E402
from training.recipes import optimizer_arguments  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")


def import_keras_hub(path):
    """Imports keras-hub from `path` (or the environment), or exits with help."""
    if os.path.isdir(path):
        sys.path.insert(0, path)
    try:
        import keras_hub
    except ImportError as error:
        sys.exit(f"keras-hub is needed ({error}); run `make keras-hub` first.")
    return keras_hub


def keras_hub_classifier(keras_hub, config, num_classes):
    """The variant's architecture (`config`) built from `keras_hub.layers`."""
    tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
    x = keras_hub.layers.TokenAndPositionEmbedding(
        config["vocabulary_size"],
        config["max_length"],
        config["hidden_dim"],
        mask_zero=True,
    )(tokens)
    x = keras.layers.Dropout(config["dropout"])(x)
    for _ in range(config["num_layers"]):
        x = keras_hub.layers.TransformerEncoder(
            config["intermediate_dim"],
            config["num_heads"],
            dropout=config["dropout"],
            activation="gelu",
        )(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dropout(config["dropout"])(x)
    logits = keras.layers.Dense(num_classes, dtype="float32")(x)
    return keras.Model(tokens, logits, name="keras_hub_classifier")


def token_batches(config, batch_size, length, count, seed):
    """`count` batches of `(tokens, labels)`: random ids, lengths 1..length."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        ids = rng.integers(2, config["vocabulary_size"], (batch_size, length))
        lengths = rng.integers(1, length + 1, (batch_size, 1))
        ids = np.where(np.arange(length) < lengths, ids, 0).astype("int32")
        labels = rng.integers(0, 2, (batch_size,)).astype("int32")
        batches.append((ids, labels))
    return batches


def seconds_per_step(models, batches, rounds, steps):
    """Median seconds per `train_on_batch` of each model, taking turns."""
    for model in models.values():
        for tokens, labels in batches[:2]:
            model.train_on_batch(tokens, labels)
    times = {key: [] for key in models}
    for r in range(rounds):
        order = list(models) if r % 2 == 0 else list(models)[::-1]
        for key in order:
            model = models[key]
            start = time.perf_counter()
            for i in range(steps):
                model.train_on_batch(*batches[(r * steps + i) % len(batches)])
            times[key].append((time.perf_counter() - start) / steps)
    return {key: statistics.median(values) for key, values in times.items()}


def bench(name, keras_hub, length, args):
    """One row: ours and keras-hub's seconds per step at sequence `length`."""
    set_precision(args.precision)
    spec = zoo.get_model_spec(name)
    config = {**spec.config, "max_length": max(length, spec.config["max_length"])}
    models = {}
    for key in ("ours", "keras_hub"):
        keras.utils.set_random_seed(args.seed)
        if key == "ours":
            model = zoo.build_model(name, max_length=config["max_length"])
        else:
            classes = config.get("num_classes", 2)
            model = keras_hub_classifier(keras_hub, config, classes)
        options = optimizer_arguments(spec.training.get("optimizer", {}), 10_000)
        compile_model(model, build_optimizer(**options), jit_compile=False)
        models[key] = model
    params = {key: model.count_params() for key, model in models.items()}
    if params["ours"] != params["keras_hub"]:
        sys.exit(f"not the same architecture: parameters {params}")
    batches = token_batches(config, args.batch_size, length, 8, args.seed)
    times = seconds_per_step(models, batches, args.rounds, args.steps)
    tokens = args.batch_size * length
    return dict(
        model=name,
        precision=args.precision,
        length=length,
        params=params["ours"],
        ours=tokens / times["ours"],
        keras_hub=tokens / times["keras_hub"],
        ratio=times["ours"] / times["keras_hub"],
    )


def table(rows):
    lines = [
        "| model | precision | batch x length | params | ours tokens/s "
        "| keras-hub tokens/s | ours/keras-hub time | goal <= 1.0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "yes" if r["ratio"] <= 1.0 else "**no**"
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['batch']} x {r['length']} "
            f"| {r['params']:,} | {r['ours']:,.0f} | {r['keras_hub']:,.0f} "
            f"| **{r['ratio']:.2f}** | {met} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="transformer_classifier_small")
    parser.add_argument("--lengths", default="64,256")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="steps per turn")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keras-hub-path", default=KERAS_HUB)
    parser.add_argument("--no-append", action="store_true")
    parser.add_argument("--results", default=RESULTS)
    args = parser.parse_args(argv)
    keras_hub = import_keras_hub(args.keras_hub_path)
    rows = []
    for name in args.models.split(","):
        for length in (int(v) for v in args.lengths.split(",")):
            row = bench(name.strip(), keras_hub, length, args)
            row["batch"] = args.batch_size
            rows.append(row)
            print(table(rows[-1:]), flush=True)
    text = table(rows)
    print(text)
    if not args.no_append:
        command = "python benchmarks/text_speed.py " + " ".join(argv or sys.argv[1:])
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
        with open(args.results, "a") as f:
            f.write(
                f"\n## Text training speed against keras-hub ({stamp})\n\n"
                f"`{command}`\n\nMachine: {machine()}; keras-hub "
                f"{keras_hub.__version__}. Median of {args.rounds} turns of "
                f"{args.steps} `train_on_batch` steps per model.\n\n{text}\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

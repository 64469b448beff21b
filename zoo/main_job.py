"""The main job (`make demo`): MNIST offline, train, test, export, reload, plot.

    python -m zoo.main_job [--model NAME] [--epochs N] [--train-examples N]

1. prepares MNIST from the repository's original files (`data/mnist`, no
   network) into the tfds data directory, once;
2. trains the zoo's default image model (`zoo.DEFAULT_MODEL`) with its
   recommended settings, resumable in `runs/main_job/`, in mixed_bfloat16 on
   CPUs with native bfloat16 arithmetic (1.1-1.8x faster here, same accuracy)
   and in float32 elsewhere (`--precision`);
3. tests it on the MNIST test set;
4. exports a TF Serving SavedModel to `saved_models/NAME/VERSION/` (the next
   free version: 1 on a fresh checkout);
5. reloads that SavedModel in a fresh process that imports only TensorFlow and
   prints its test accuracy (it must match step 3);
6. draws the model's attention maps on a few test digits to a PNG.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from training.choices import PRECISIONS  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANUAL_DIR = os.path.join(REPO, "data", "mnist")
# At most this many epochs by default, so that the whole job stays well under
# 10 minutes on 2 shared cores (cbam_cnn_small's recommended 6 epochs took
# 375-595 s of training alone here; benchmarks/vision.py runs those).
DEMO_EPOCHS = 4
# Reloads a SavedModel and scores it on saved test digits, with TensorFlow only.
RELOAD_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf

path, data = sys.argv[1], sys.argv[2]
arrays = np.load(data)
images, labels = arrays["images"], arrays["labels"]
serve = tf.saved_model.load(path).signatures["serving_default"]
(input_name,) = serve.structured_input_signature[1]
correct = 0
for start in range(0, len(images), 500):
    batch = images[start:start + 500].astype(np.float32) * np.float32(1 / 255)
    outputs = serve(**{input_name: tf.constant(batch)})
    if "classes" in outputs:
        predicted = outputs["classes"].numpy()
    else:
        predicted = next(iter(outputs.values())).numpy().argmax(axis=-1)
    correct += int((predicted == labels[start:start + 500]).sum())
ours = sorted({m.split(".")[0] for m in sys.modules} & {"zoo", "layers", "training"})
print(json.dumps({"accuracy": correct / len(images), "examples": len(images),
                  "project_modules": ours}))
"""


def _default(value, default):
    return default if value is None else value


def build_parser():
    """The command-line flags of the main job."""
    parser = argparse.ArgumentParser(prog="python -m zoo.main_job", description=__doc__)
    parser.add_argument("--model", help="default: zoo.DEFAULT_MODEL")
    parser.add_argument("--epochs", type=int, help="default: the model's")
    parser.add_argument("--batch-size", type=int, help="default: the model's")
    parser.add_argument("--train-examples", type=int, help="default: all 60000")
    parser.add_argument("--test-examples", type=int, help="default: all 10000")
    parser.add_argument("--manual-dir", default=MANUAL_DIR)
    parser.add_argument("--data-dir", help="tfds data directory ($TFDS_DATA_DIR)")
    parser.add_argument("--output", default=os.path.join("runs", "main_job"))
    parser.add_argument("--saved-models", default="saved_models")
    parser.add_argument("--version", type=int, help="default: the next free one")
    parser.add_argument("--figure", help="default: OUTPUT/attention_maps.png")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="default auto: mixed_bfloat16 on CPUs with native bfloat16, else float32",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    return parser


def next_version(folder):
    """1 + the largest version folder in `folder` (1 if none).

    Only names TF Serving takes for versions count (ASCII digits).
    """
    from zoo.export import is_version_name

    if not os.path.isdir(folder):
        return 1
    versions = [int(n) for n in os.listdir(folder) if is_version_name(n)]
    return max(versions, default=0) + 1


def reload_in_fresh_process(saved_model, images, labels, scratch):
    """Test accuracy of `saved_model` computed by a TensorFlow-only process."""
    import numpy as np

    # The child runs in `scratch`: every path it gets is absolute.
    scratch = os.path.abspath(scratch)
    saved_model = os.path.abspath(saved_model)
    data = os.path.join(scratch, "test_digits.npz")
    np.savez(data, images=images, labels=labels)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-c", RELOAD_SCRIPT, saved_model, data],
        capture_output=True,
        text=True,
        env=env,
        cwd=scratch,
        check=False,
    )
    os.remove(data)
    if result.returncode != 0:
        raise RuntimeError(f"Reloading {saved_model} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def plot_attention(model, images, labels, path):
    """Writes a PNG of `images`, the model's predictions and attention maps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from zoo.attention_maps import attention_maps

    maps = attention_maps(model, images, size=images.shape[1:3])
    predicted = np.asarray(model.predict(images, verbose=0)).argmax(axis=-1)
    count = len(images)
    fig, axes = plt.subplots(2, count, figsize=(1.6 * count, 3.6))
    for i in range(count):
        axes[0, i].imshow(images[i, ..., 0], cmap="gray")
        axes[0, i].set_title(f"label {labels[i]}\npred {predicted[i]}", fontsize=8)
        axes[1, i].imshow(images[i, ..., 0], cmap="gray")
        axes[1, i].imshow(maps[i], cmap="jet", alpha=0.5)
        for row in (0, 1):
            axes[row, i].axis("off")
    fig.suptitle(f"{model.name}: attention maps on MNIST test digits", fontsize=10)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _test_arrays(test_ds):
    import numpy as np

    images, labels = [], []
    for x, y in test_ds:
        images.append(np.round(x.numpy() * 255).astype(np.uint8))
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def run(args):
    """Runs the main job; returns a dict of its results."""
    import keras

    import zoo
    from training.data import load_image_classification
    from training.fit import compile_model, fit_model
    from training.optimizers import build_optimizer
    from training.precision import set_precision
    from training.recipes import optimizer_arguments
    from zoo.export import export_model, update_serving_config

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "The main job exports a SavedModel: run it with KERAS_BACKEND=tensorflow."
        )
    started = time.time()
    name = args.model or zoo.DEFAULT_MODEL
    spec = zoo.get_model_spec(name)
    epochs = _default(args.epochs, min(DEMO_EPOCHS, spec.training.get("epochs", 1)))
    batch_size = _default(args.batch_size, spec.training.get("batch_size", 128))
    policy = set_precision(args.precision).name
    keras.utils.set_random_seed(args.seed)

    train_ds, test_ds, info = load_image_classification(
        "mnist",
        batch_size=batch_size,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        seed=args.seed,
        train_split=f"train[:{args.train_examples}]" if args.train_examples else None,
        test_split=f"test[:{args.test_examples}]" if args.test_examples else None,
        augmentation=spec.training.get("augmentation"),
    )
    print(
        f"[{time.time() - started:5.0f}s] MNIST: {info.train_examples} train, "
        f"{info.test_examples} test examples"
    )

    model = zoo.build_model(
        name, input_shape=info.input_shape, num_classes=info.num_classes
    )
    steps = epochs * math.ceil(info.train_examples / batch_size)
    options = optimizer_arguments(spec.training.get("optimizer", {}), steps)
    compile_model(model, build_optimizer(**options))
    print(
        f"[{time.time() - started:5.0f}s] training {name} "
        f"({model.count_params():,} parameters) for {epochs} epochs, {policy}"
    )
    fit_model(
        model,
        train_ds,
        epochs=epochs,
        output_dir=args.output,
        resume=not args.no_resume,
        verbose=args.verbose,
    )
    model.save(os.path.join(args.output, "model.keras"))

    results = model.evaluate(test_ds, verbose=0, return_dict=True)
    accuracy = float(results["accuracy"])
    print(
        f"[{time.time() - started:5.0f}s] test accuracy: {accuracy:.4f} "
        f"(loss {float(results['loss']):.4f})"
    )

    folder = os.path.join(args.saved_models, model.name)
    version = args.version or next_version(folder)
    exported = export_model(model, os.path.join(folder, str(version)))
    print(f"[{time.time() - started:5.0f}s] exported SavedModel to {exported.path}")
    for line in update_serving_config(args.saved_models, model.name, create=True):
        print(f"        {line}")

    images, labels = _test_arrays(test_ds)
    reloaded = reload_in_fresh_process(exported.path, images, labels, args.output)
    print(
        f"[{time.time() - started:5.0f}s] reloaded SavedModel (fresh TensorFlow-only "
        f"process) test accuracy: {reloaded['accuracy']:.4f}"
    )

    figure = args.figure or os.path.join(args.output, "attention_maps.png")
    plot_attention(model, images[:8].astype("float32") / 255.0, labels[:8], figure)
    print(f"[{time.time() - started:5.0f}s] attention maps: {figure}")
    return {
        "model": name,
        "test_accuracy": accuracy,
        "reloaded_accuracy": reloaded["accuracy"],
        "reload_modules": reloaded["project_modules"],
        "saved_model": exported.path,
        "figure": figure,
        "seconds": time.time() - started,
    }


def main(argv=None):
    """Runs the main job with `argv`; returns 0, or 1 if the reloaded SavedModel
    disagrees with the trained model."""
    args = build_parser().parse_args(argv)
    results = run(args)
    gap = abs(results["reloaded_accuracy"] - results["test_accuracy"])
    if gap > 2e-3:
        print(
            f"error: the reloaded SavedModel's accuracy differs by {gap:.4f}",
            file=sys.stderr,
        )
        return 1
    print(f"done in {results['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Detection benchmark: COCO mAP on raccoon and COCO128, and serving speed.

Trains a detector with `zoo train` on `zoo_raccoon` and on `zoo_coco128`
(each run from scratch, with the variant's recommended settings unless
flags change them), or takes existing run folders; scores raccoon's test
split (the author's 40 photos) and COCO128's train and validation splits
with COCO's mAP@[.5:.95], mAP@0.5 and mAP@0.75 (pycocotools, the 100 best
heatmap peaks per image, `zoo_cli.detection.evaluate_detector`); exports the
raccoon detector as a SavedModel and times `serving_default` at batch 1
(median latency) and batch 16 (images/s) on letterboxed test photos. Prints
Markdown tables and appends them, with the date, machine and command, to
`benchmarks/RESULTS.md`; a full run also appends the mAPs to
`benchmarks/results/object_detection.csv` (`zoo.results`).

Goals (issue 11): raccoon test mAP@0.5 >= 0.6 from scratch; COCO128 fits its
training images (train mAP@0.5 >= 0.8).

    python benchmarks/detection.py                         # both trainings (long)
    python benchmarks/detection.py --quick --no-append     # smoke run: tiny, 3 steps
    python benchmarks/detection.py --raccoon-run runs/a --coco128-run runs/b
    python benchmarks/detection.py --datasets zoo_raccoon --epochs 300 \\
        --learning-rate 1e-3
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from vision import machine  # noqa: E402

from training.detection_data import evaluation_batches, load_detection  # noqa: E402
from training.precision import set_precision  # noqa: E402
from zoo import build_model, get_model_spec  # noqa: E402
from zoo.model_files import load_model_file  # noqa: E402
from zoo.results import append_results, result_row  # noqa: E402
from zoo_cli import main as zoo_main  # noqa: E402
from zoo_cli.detection import (  # noqa: E402
    compile_detector,
    evaluate_detector,
    input_size,
    num_classes_of,
    read_run_info,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
MANUAL_DIRS = {"zoo_raccoon": "raccoon", "zoo_coco128": "coco128"}
# The splits scored per dataset, and the goal of each (issue 11): mAP@0.5.
SPLITS = {"zoo_raccoon": ("test",), "zoo_coco128": ("train", "validation")}
GOALS = {("zoo_raccoon", "test"): 0.6, ("zoo_coco128", "train"): 0.8}
DEFAULT_MODEL = "attention_detector_small"
# --quick: the tiny variant, 3 steps per dataset, few timing calls.
QUICK_MODEL, QUICK_STEPS = "attention_detector_tiny", 3
# (batch-1 calls, batch-16 calls) per mode.
REPEATS = {"quick": (10, 3), "full": (100, 20)}
SPEED_BATCH = 16


def train(args, dataset, output):
    """Runs `zoo train` of `args.model` on `dataset` into `output`."""
    argv = ["train", args.model, "--dataset", dataset, "--output", output]
    argv += ["--manual-dir", os.path.join(args.shared, MANUAL_DIRS[dataset])]
    argv += ["--seed", str(args.seed), "--precision", args.precision]
    argv += ["--verbose", "2", "--no-resume"]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    flags = {
        "--epochs": args.epochs,
        "--steps-per-epoch": args.steps_per_epoch,
        "--batch-size": args.batch_size,
        "--learning-rate": args.learning_rate,
    }
    if args.quick:
        flags.update({"--epochs": 1, "--steps-per-epoch": QUICK_STEPS})
    for flag, value in flags.items():
        if value is not None:
            argv += [flag, str(value)]
    if args.augmentation:
        argv += ["--augmentation", args.augmentation]
    print(f"zoo {' '.join(argv)}", flush=True)
    if zoo_main(argv) != 0:
        raise SystemExit(f"training {args.model} on {dataset} failed")
    return output


def evaluate_run(run, dataset, args):
    """Table rows of a run folder: one per split of `SPLITS[dataset]`."""
    info = read_run_info(run)
    if info.get("dataset") not in (None, dataset):
        raise SystemExit(f"{run} was trained on {info['dataset']}, not {dataset}")
    model = load_model_file(run)
    compile_detector(model)
    size = input_size(model, info.get("input_size"))
    rows = []
    for split in SPLITS[dataset]:
        _, data, loaded = load_detection(
            dataset,
            size,
            data_dir=args.data_dir or info.get("data_dir"),
            manual_dir=os.path.join(args.shared, MANUAL_DIRS[dataset]),
            test_split=split,
        )
        start = time.perf_counter()
        metrics = evaluate_detector(model, data, loaded.num_classes, size, loss=False)
        rows.append(
            dict(
                model=model.name,
                dataset=dataset,
                split=split,
                run=run,
                epochs=info.get("epochs"),
                steps=(info.get("epochs") or 0) * (info.get("steps_per_epoch") or 0),
                train_seconds=info.get("train_seconds"),
                precision=info.get("precision"),
                params=model.count_params(),
                eval_seconds=time.perf_counter() - start,
                **{k: metrics[k] for k in ("map", "map_50", "map_75", "images")},
            )
        )
        print(rows[-1], flush=True)
    return rows, model, size


def _export_supported():
    try:
        from zoo.export import SIGNATURE_BUILDERS
    except ImportError as error:
        return False, f"zoo.export does not import ({error})"
    if "object_detection" not in SIGNATURE_BUILDERS:
        return False, "zoo.export has no object_detection signatures yet"
    return True, ""


def float32_copy(model):
    """The detector rebuilt in float32 with `model`'s weights (a run trained in
    mixed_bfloat16 is served in float32 here, as most servers run it)."""
    set_precision("float32")
    copy = build_model(model.name, num_classes=num_classes_of(model))
    copy.set_weights(model.get_weights())
    return copy


def serving_speed(model, size, images, repeats, workdir):
    """Median latency (batch 1) and throughput (batch 16) of `serving_default`."""
    import tensorflow as tf

    from zoo.export import export_model

    exported = export_model(model, os.path.join(workdir, model.name, "1"))
    serve = tf.saved_model.load(exported.path).signatures["serving_default"]
    (input_name,) = serve.structured_input_signature[1]
    batches = {
        1: tf.constant(images[:1]),
        SPEED_BATCH: tf.constant(images[:SPEED_BATCH]),
    }
    seconds = {}
    for (batch, x), calls in zip(batches.items(), repeats, strict=True):
        for _ in range(3):
            serve(**{input_name: x})
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            {k: v.numpy() for k, v in serve(**{input_name: x}).items()}
            times.append(time.perf_counter() - start)
        seconds[batch] = statistics.median(times)
    return {
        "latency_ms_b1": 1000 * seconds[1],
        "images_per_s_b16": len(images[:SPEED_BATCH]) / seconds[SPEED_BATCH],
        "signatures": [s.name for s in exported.signatures],
    }


def _speed_images(dataset, size, args, run):
    """`SPEED_BATCH` letterboxed test images (float32 pixels) of `dataset`."""
    info = read_run_info(run)
    _, _, loaded = load_detection(
        dataset,
        size,
        data_dir=args.data_dir or info.get("data_dir"),
        manual_dir=os.path.join(args.shared, MANUAL_DIRS[dataset]),
    )
    ds = evaluation_batches(
        loaded.builder, loaded.test_split, size, loaded.num_classes, SPEED_BATCH
    )
    images, _ = next(iter(ds))
    return np.asarray(images)


def _value(value):
    return "n/a" if value is None else f"{value:.3f}"


def table(rows):
    lines = [
        "| model | params | dataset | split | images | steps | training time "
        "| precision | mAP@[.5:.95] | mAP@0.5 | mAP@0.75 | goal (mAP@0.5) |",
        "|---|---:|---|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        goal = GOALS.get((r["dataset"], r["split"]))
        if goal is None:
            met = "-"
        else:
            reached = r["map_50"] is not None and r["map_50"] >= goal
            met = f">= {goal}: {'met' if reached else 'not met'}"
        trained = r["train_seconds"]
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['dataset']} | {r['split']} "
            f"| {r['images']} | {r['steps']:,} "
            f"| {'-' if trained is None else f'{trained:.0f} s'} "
            f"| {r['precision'] or '-'} | {_value(r['map'])} "
            f"| **{_value(r['map_50'])}** | {_value(r['map_75'])} | {met} |"
        )
    return "\n".join(lines)


def speed_table(speed):
    return (
        "| model | serving_default latency, batch 1 | throughput, batch 16 |\n"
        "|---|---:|---:|\n"
        f"| {speed['model']} | {speed['latency_ms_b1']:.1f} ms "
        f"| {speed['images_per_s_b16']:.1f} images/s |"
    )


def results_rows(rows, command, precision):
    """`zoo.results` rows: mAP and mAP@0.5 of each split scored."""
    out = []
    for r in rows:
        spec = get_model_spec(r["model"])
        for metric in ("map", "map_50"):
            if r[metric] is None:
                continue
            out.append(
                result_row(
                    spec,
                    metric,
                    round(r[metric], 4),
                    command,
                    dataset=r["dataset"],
                    split=r["split"],
                    epochs=r["epochs"],
                    train_seconds=r["train_seconds"],
                    params=r["params"],
                    precision=r["precision"] or precision,
                )
            )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help=f"registered detector ({DEFAULT_MODEL})")
    parser.add_argument(
        "--datasets",
        default="zoo_raccoon,zoo_coco128",
        help="comma-separated, of zoo_raccoon and zoo_coco128",
    )
    parser.add_argument("--raccoon-run", help="run folder to score, not train")
    parser.add_argument("--coco128-run", help="run folder to score, not train")
    parser.add_argument("--epochs", type=int, help="default: the variant's")
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--augmentation", help="JSON, as `zoo train` takes it")
    parser.add_argument("--precision", default="auto", help="default auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", help="tfds data directory")
    parser.add_argument("--shared", default=SHARED, help="the shared data folder")
    parser.add_argument("--quick", action="store_true", help="tiny, 3 steps each")
    parser.add_argument("--no-append", action="store_true", help="print only")
    parser.add_argument("--results", default=RESULTS, help="Markdown file to append")
    parser.add_argument("--output", help="folder of the runs (default: temporary)")
    args = parser.parse_args(argv)
    args.model = args.model or (QUICK_MODEL if args.quick else DEFAULT_MODEL)
    if get_model_spec(args.model).task != "object_detection":
        parser.error(f"--model: {args.model!r} is not an object_detection model")
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    for dataset in datasets:
        if dataset not in SPLITS:
            parser.error(f"--datasets: {dataset!r} is not one of {sorted(SPLITS)}")
    root = args.output or tempfile.mkdtemp(prefix="detection-")
    given = {"zoo_raccoon": args.raccoon_run, "zoo_coco128": args.coco128_run}
    policy = set_precision(args.precision).name
    rows, speed_source = [], None
    for dataset in datasets:
        run = given[dataset] or train(
            args, dataset, os.path.join(root, f"{args.model}-{dataset}")
        )
        set_precision(args.precision)
        found, model, size = evaluate_run(run, dataset, args)
        rows += found
        if speed_source is None or dataset == "zoo_raccoon":
            speed_source = (model, size, dataset, run)
    speed, note = None, ""
    supported, reason = _export_supported()
    if not supported:
        note = f"Speed: skipped: {reason}."
        print(note)
    else:
        model, size, dataset, run = speed_source
        float_model = float32_copy(model)
        images = _speed_images(dataset, size, args, run)
        mode = "quick" if args.quick else "full"
        with tempfile.TemporaryDirectory() as workdir:
            speed = serving_speed(float_model, size, images, REPEATS[mode], workdir)
        speed["model"] = model.name
        print(speed)
    mode = "quick" if args.quick else "full"
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    command = " ".join(["python benchmarks/detection.py", *(argv or sys.argv[1:])])
    settings = {
        "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "augmentation": args.augmentation,
    }
    changed = json.dumps({k: v for k, v in settings.items() if v is not None})
    report = (
        f"## Detection benchmark ({mode}), {stamp}\n\n"
        f"Machine: {machine()}.\n"
        f"Command: `{command}`. Runs this script trains: `zoo train` from "
        f"scratch, seed {args.seed}, {policy}, the variant's recommended settings"
        + ("" if changed == "{}" else f" changed by {changed}")
        + "; runs given with --raccoon-run / --coco128-run are scored as they "
        "are (their precision is the table's). mAP: pycocotools COCOeval on "
        "the original images (boxes mapped back from the letterbox), the 100 "
        "best heatmap peaks per image, no "
        "NMS. Speed: the exported SavedModel's `serving_default` (decoding and "
        f"NMS included), float32, median of {REPEATS[mode][0]} calls at batch 1 "
        f"and {REPEATS[mode][1]} at batch {SPEED_BATCH}, letterboxed test "
        "photos.\n\n"
        f"{table(rows)}\n\n" + (speed_table(speed) if speed else note) + "\n"
    )
    print(report)
    if not args.no_append:
        with open(args.results, "a") as f:
            f.write("\n" + report)
        print(f"appended to {args.results}")
        if not args.quick:
            append_results(results_rows(rows, command, policy))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

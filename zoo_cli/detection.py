"""The `zoo` commands of object detectors (task `object_detection`).

`zoo train DETECTOR --dataset zoo_raccoon` fits a CenterNet detector on
letterboxed, augmented batches (`training.detection_data`) with CenterNet's
losses and saves `RUN/model.keras` and `RUN/detection.json` (the dataset,
its class names and the input size); `zoo evaluate RUN` scores the test
split with COCO's mAP (pycocotools, `training.detection_metrics`); `zoo
detect RUN photo.jpg --output out.png` prints the boxes and draws them.

Boxes leave the model normalised to the letterboxed square; they are mapped
back to the original image (`unletterbox_boxes`) before scoring or drawing.
"""

import json
import math
import os
import time

import keras
import numpy as np

import zoo
from layers.validation import check_float, check_positive_int
from training.box_augmentation import unletterbox_boxes
from training.detection_data import load_detection, prepare_image
from training.fit import compile_model, fit_model
from training.optimizers import build_optimizer
from training.precision import set_precision
from training.recipes import optimizer_arguments
from zoo.detection.decoding import decode_detections
from zoo.detection.losses import centernet_losses
from zoo.model_files import MODEL_FILE, load_model_file, load_weights
from zoo_cli.commands import CommandError, check_new_run, write_metrics

TASK = "object_detection"
# Beside `model.keras` in a run folder: what the detector was trained on.
DETECTION_FILE = "detection.json"
OUTPUT_NAMES = ("heatmap", "size", "offset")
# COCO's limit of detections per image, and the lowest score kept for mAP
# (CenterNet scores its top 100 peaks whatever their scores).
MAX_DETECTIONS = 100
EVAL_SCORE_THRESHOLD = 0.001
DEFAULT_BATCH_SIZE = 8
# Images read per call of the model in `detect`.
_DETECT_BATCH = 8


# ---------------------------------------------------------------------------
# Models and run folders
# ---------------------------------------------------------------------------


def is_detector(model):
    """Whether `model` has the outputs of a `zoo.attention_detector`."""
    names = getattr(model, "output_names", None) or ()
    return isinstance(model, keras.Model) and set(OUTPUT_NAMES) <= set(names)


def detection_file(target):
    """The `detection.json` of a run folder or beside a model file."""
    target = os.fspath(target)
    folder = target if os.path.isdir(target) else os.path.dirname(target)
    return os.path.join(folder or ".", DETECTION_FILE)


def read_run_info(target):
    """The dict of `detection_file(target)`, `{}` when there is none."""
    path = detection_file(target)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is not a valid {DETECTION_FILE}: {error}") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path} is not a valid {DETECTION_FILE}: not an object.")
    return info


def is_detection_run(target):
    """Whether `target` (a path) is a detector's run folder or model file."""
    return bool(read_run_info(target))


def input_size(model, fallback=None):
    """The side of the square images `model` reads."""
    shape = tuple(model.inputs[0].shape)[1:3]
    if shape[0] is not None and shape[0] == shape[1]:
        return int(shape[0])
    if fallback:
        return int(fallback)
    raise ValueError(
        f"{model.name} takes images of shape {tuple(model.inputs[0].shape)}: a "
        f"square input size is needed (its {DETECTION_FILE} has none)."
    )


def num_classes_of(model):
    """The classes of a detector: the channels of its heatmap."""
    return int(model.get_layer("heatmap").output.shape[-1])


def compile_detector(model, optimizer=None, jit_compile="auto"):
    """`compile_model` with CenterNet's losses (heatmap 1, size 0.1, offset 1)."""
    return compile_model(
        model, optimizer, metrics=[], jit_compile=jit_compile, **centernet_losses()
    )


# ---------------------------------------------------------------------------
# Detections and their scores
# ---------------------------------------------------------------------------


def detections_of(outputs, sizes, size, max_detections, score_threshold):
    """Per image, the boxes, scores and classes of a detector's outputs.

    Args:
        outputs: dict of `"heatmap"`, `"size"` and `"offset"` arrays
            `(N, g, g, ...)` of `N` letterboxed images.
        sizes: `(N, 2)` `(height, width)` of the original images.
        size: the letterbox side.
        max_detections: detections kept per image, the best.
        score_threshold: the lowest score kept.

    Returns:
        A list of `N` dicts of numpy arrays: `"boxes"` `(M, 4)` normalised
        `[ymin, xmin, ymax, xmax]` of the original image, `"scores"` `(M,)`
        in decreasing order, `"classes"` `(M,)` (only the detections kept).
    """
    boxes, scores, classes = decode_detections(
        outputs["heatmap"],
        outputs["size"],
        outputs["offset"],
        max_detections=max_detections,
        score_threshold=score_threshold,
    )
    sizes = np.asarray(sizes, np.float32).reshape(-1, 2)
    boxes = unletterbox_boxes(
        keras.ops.convert_to_numpy(boxes), sizes[:, :1], sizes[:, 1:], size
    ).numpy()
    scores = keras.ops.convert_to_numpy(scores)
    classes = keras.ops.convert_to_numpy(classes)
    found = []
    for b, s, c in zip(boxes, scores, classes, strict=True):
        keep = c >= 0
        found.append({"boxes": b[keep], "scores": s[keep], "classes": c[keep]})
    return found


def evaluate_detector(model, data, num_classes, size, loss=True):
    """COCO mAP (and the losses) of `model` on an `EvaluationData`.

    Args:
        model: a detector (compiled with `compile_detector` for `loss`).
        data: `training.detection_data.EvaluationData`, in file order.
        num_classes: the dataset's classes.
        size: the letterbox side.
        loss: whether to add the test losses (`model.evaluate`).

    Returns:
        A dict: `map` (mAP@[.5:.95]), `map_50`, `map_75` (`None` when the
        split has no box), the losses, and `images`.
    """
    from training.detection_metrics import coco_metrics

    outputs = model.predict(data.batches, verbose=0)
    found = []
    sizes = data.sizes
    for start in range(0, len(sizes), 32):
        chunk = {k: outputs[k][start : start + 32] for k in OUTPUT_NAMES}
        found += detections_of(
            chunk, sizes[start : start + 32], size, MAX_DETECTIONS, EVAL_SCORE_THRESHOLD
        )
    scores = coco_metrics(data.ground_truth, found, num_classes, MAX_DETECTIONS)
    metrics = {k: None if math.isnan(v) else v for k, v in scores.items()}
    if loss:
        results = model.evaluate(data.batches, verbose=0, return_dict=True)
        metrics.update({k: float(v) for k, v in results.items() if k.endswith("loss")})
    metrics["images"] = len(sizes)
    return metrics


def _text(value):
    return "n/a" if value is None else f"{value:.4f}"


def report(metrics, dataset, split, metrics_json=None):
    """Prints the mAPs of `evaluate_detector`; writes them with `write_metrics`."""
    line = (
        f"{dataset} {split} ({metrics['images']} images): "
        f"mAP@[.5:.95] {_text(metrics['map'])}  mAP@0.5 {_text(metrics['map_50'])}  "
        f"mAP@0.75 {_text(metrics['map_75'])}"
    )
    if "loss" in metrics:
        line += f"  loss {metrics['loss']:.4f}"
    print(line)
    write_metrics({**metrics, "dataset": dataset, "split": split}, metrics_json)
    return metrics


# ---------------------------------------------------------------------------
# zoo train / zoo evaluate
# ---------------------------------------------------------------------------


def _augmentation(args, spec):
    if getattr(args, "no_augmentation", False):
        return None
    if getattr(args, "augmentation", None) is not None:
        return args.augmentation
    return spec.training.get("augmentation")


def spec_size(spec):
    shape = spec.config.get("input_shape") or (None, None)
    if shape[0] is None or shape[0] != shape[1]:
        raise CommandError(
            f"{spec.name} has input_shape {shape}: detection trains on square "
            "letterboxed images of a fixed size."
        )
    return int(shape[0])


def load(args, spec, size, batch_size):
    """The flags' detection data: `(train, test, info, steps_per_epoch)`.

    An epoch is `--steps-per-epoch` batches, or one pass over the training
    images without it (the training batches repeat without end).
    """
    train_ds, test, info = load_detection(
        args.dataset,
        size,
        batch_size=batch_size,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        seed=args.seed,
        validation_split=args.validation_split,
        train_split=args.train_split,
        test_split=args.test_split,
        augmentation=_augmentation(args, spec),
    )
    steps_per_epoch = args.steps_per_epoch or math.ceil(
        info.train_examples / batch_size
    )
    return train_ds, test, info, steps_per_epoch


def train(args, spec, batch_size, epochs, optimizer_flags):
    """`zoo train` of a detector: fits, saves the run, evaluates the test split."""
    size = spec_size(spec)
    train_ds, test, info, steps_per_epoch = load(args, spec, size, batch_size)
    options = optimizer_arguments(
        spec.training.get("optimizer", {}), epochs * steps_per_epoch, optimizer_flags
    )
    output = args.output or os.path.join("runs", f"{args.model}-{info.name}")
    check_new_run(output, args)
    print(
        f"training {args.model} on {info.name} ({info.train_examples} images, "
        f"{info.num_classes} classes, {size}x{size}; {epochs} epochs of "
        f"{steps_per_epoch} steps of {batch_size}) into {output}"
    )
    model = zoo.build_model(args.model, num_classes=info.num_classes)
    compile_detector(model, build_optimizer(**options), args.jit_compile)
    start = time.perf_counter()
    fit_model(
        model,
        train_ds,
        info.validation_ds,
        epochs=epochs,
        output_dir=output,
        resume=not args.no_resume,
        verbose=args.verbose,
        steps_per_epoch=steps_per_epoch,
    )
    seconds = time.perf_counter() - start
    path = os.path.join(output, MODEL_FILE)
    model.save(path)
    write_run_info(
        output,
        info,
        size,
        args,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        train_seconds=round(seconds, 1),
    )
    print(f"saved {path} (trained in {seconds:.0f} s)")
    metrics = evaluate_detector(model, test, info.num_classes, size)
    report(metrics, info.name, info.test_split, args.metrics_json)
    return 0


def write_run_info(folder, info, size, args, **fields):
    """Writes `folder/detection.json`: what `zoo evaluate` and `zoo detect`
    need to know of the detector beside it (dataset, classes, input size)."""
    run_info = {
        "dataset": info.name,
        "class_names": list(info.class_names),
        "input_size": size,
        "train_split": info.train_split,
        "test_split": info.test_split,
        **fields,
        "seed": args.seed,
        "precision": keras.config.dtype_policy().name,
        "data_dir": _absolute(args.data_dir),
        "manual_dir": _absolute(args.manual_dir),
    }
    with open(os.path.join(folder, DETECTION_FILE), "w") as f:
        json.dump(run_info, f, indent=2)
        f.write("\n")
    return run_info


def _absolute(path):
    return None if path is None else os.path.abspath(os.path.expanduser(path))


def evaluate(args, is_path, model=None):
    """`zoo evaluate` of a detector's run folder, `.keras` file or name."""
    if getattr(args, "beam_width", None) is not None:
        raise CommandError("--beam-width goes with a translation or headline model.")
    run_info = read_run_info(args.model) if is_path else {}
    dataset = args.dataset or run_info.get("dataset")
    if dataset is None:
        raise CommandError(
            f"{args.model} has no {DETECTION_FILE} naming its dataset: give --dataset."
        )
    spec = None
    if is_path:
        model = model or load_model_file(args.model)
        if not is_detector(model):
            raise CommandError(f"{args.model} holds {model.name!r}, not a detector.")
        size = input_size(model, run_info.get("input_size"))
    else:
        spec = zoo.get_model_spec(args.model)
        size = spec_size(spec)
    set_precision(args.precision)
    default = spec.training.get("batch_size", DEFAULT_BATCH_SIZE) if spec else None
    _, test, info = load_detection(
        dataset,
        size,
        batch_size=args.batch_size or default or DEFAULT_BATCH_SIZE,
        data_dir=args.data_dir or run_info.get("data_dir"),
        manual_dir=args.manual_dir or run_info.get("manual_dir"),
        test_split=args.test_split,
    )
    if model is None:
        model = zoo.build_model(args.model, num_classes=info.num_classes)
        if args.weights:
            load_weights(model, args.weights)
        else:
            print(f"warning: {args.model} has no --weights: evaluating it untrained")
    if num_classes_of(model) != info.num_classes:
        raise CommandError(
            f"{args.model} detects {num_classes_of(model)} classes; {info.name} "
            f"has {info.num_classes}: evaluate it on the dataset it was trained on."
        )
    compile_detector(model, jit_compile=args.jit_compile)
    metrics = evaluate_detector(model, test, info.num_classes, size)
    report(metrics, info.name, info.test_split, args.metrics_json)
    return 0


# ---------------------------------------------------------------------------
# zoo detect
# ---------------------------------------------------------------------------


def read_image(path):
    """An image file as a `(height, width, 3)` uint8 array (EXIF rotation done).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, an empty file, or one PIL cannot read as an
            image (the message names the file).
    """
    from PIL import Image, ImageOps

    if not os.path.exists(path):
        raise FileNotFoundError(f"No image file at {path!r}.")
    if os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder, not an image file.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path!r} is empty, not an image.")
    try:
        with Image.open(path) as image:
            image.load()
            rgb = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise ValueError(
            f"{path!r} is not an image that PIL can read (truncated, corrupt or "
            f"another kind of file): {reason}"
        ) from None
    return np.asarray(rgb, np.uint8)


def output_paths(output, images):
    """Where `detect` draws each image: `output` itself for one image, else
    `OUTPUT_STEM-IMAGE_STEM.EXT` per image (numbered when stems repeat)."""
    if len(images) == 1:
        return [output]
    root, ext = os.path.splitext(output)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in images]
    repeated = {s for s in stems if stems.count(s) > 1}
    return [
        f"{root}-{stem}{f'-{i}' if stem in repeated else ''}{ext}"
        for i, stem in enumerate(stems, start=1)
    ]


def _check_output(output):
    from PIL import Image

    ext = os.path.splitext(output)[1].lower()
    if ext not in Image.registered_extensions():
        raise CommandError(
            f"--output must name an image file such as out.png. Received: {output!r}"
        )


def _colour(index):
    palette = [
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
    ]
    return palette[index % len(palette)]


def draw_detections(image, found, class_names, path):
    """Writes `image` with its boxes, class names and scores to `path` (PIL)."""
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    height, width = image.shape[:2]
    line = max(2, round(min(height, width) / 200))
    font = ImageFont.load_default(size=max(12, round(min(height, width) / 30)))
    for box, score, label in zip(
        found["boxes"], found["scores"], found["classes"], strict=True
    ):
        y0, x0, y1, x1 = box * [height, width, height, width]
        colour = _colour(int(label))
        draw.rectangle([x0, y0, x1, y1], outline=colour, width=line)
        text = f"{class_names[int(label)]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        text_y = max(0, y0 - (bottom - top) - 2 * line)
        draw.rectangle(
            [x0, text_y, x0 + right - left + 2 * line, text_y + bottom + line],
            fill=colour,
        )
        draw.text((x0 + line, text_y), text, fill=(255, 255, 255), font=font)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    picture.save(path)
    return path


def detect(args):
    """`zoo detect`: prints the detections of each image; draws them."""
    threshold = check_float(
        "--score-threshold", args.score_threshold, 0.0, 1.0, low_open=False
    )
    max_detections = check_positive_int("--max-detections", args.max_detections)
    if args.output:
        _check_output(args.output)
    images = [read_image(path) for path in args.images]
    model = load_model_file(args.model)
    if not is_detector(model):
        raise CommandError(
            f"{args.model} holds {model.name!r}, not a detector: detect takes the "
            "run folder or .keras file that `zoo train` wrote for one."
        )
    run_info = read_run_info(args.model)
    size = input_size(model, run_info.get("input_size"))
    classes = num_classes_of(model)
    names = run_info.get("class_names") or []
    if len(names) != classes:
        names = [f"class {i}" for i in range(classes)]
    import tensorflow as tf

    found = []
    for start in range(0, len(images), _DETECT_BATCH):
        chunk = images[start : start + _DETECT_BATCH]
        batch = tf.stack([prepare_image(image, size) for image in chunk])
        outputs = model.predict_on_batch(batch)
        sizes = [image.shape[:2] for image in chunk]
        found += detections_of(outputs, sizes, size, max_detections, threshold)
    paths = output_paths(args.output, args.images) if args.output else []
    for i, (path, image, boxes) in enumerate(
        zip(args.images, images, found, strict=True)
    ):
        height, width = image.shape[:2]
        print(
            f"{path} ({width}x{height}): {len(boxes['scores'])} detections with "
            f"score >= {threshold:g}"
        )
        for box, score, label in zip(
            boxes["boxes"], boxes["scores"], boxes["classes"], strict=True
        ):
            y0, x0, y1, x1 = box * [height, width, height, width]
            print(
                f"  {names[int(label)]}\t{score:.3f}\t"
                f"[x0 {x0:.0f}, y0 {y0:.0f}, x1 {x1:.0f}, y1 {y1:.0f}] px"
            )
        if paths:
            print(f"  drawn: {draw_detections(image, boxes, names, paths[i])}")
    return 0

"""`zoo tune` of object detectors: a random search minimising the validation loss.

Trials train on the same letterboxed, augmented batches as `zoo train`
(`training.detection_data`), `--steps-per-epoch` steps an epoch (default:
one pass over the training images), and are scored on the held-out
`--validation-split` by CenterNet's summed loss (`val_loss`, the default
`--objective`): COCO mAP needs decoding and pycocotools after every epoch,
which would cost more than a small trial's training. The best model is saved
as `PROJECT/best_model.keras` with a `detection.json` beside it, so `zoo
evaluate`, `zoo detect` and `zoo export` take it like a run folder, and it is
scored on the test split (COCO mAP).
"""

import os

import zoo
from training.precision import set_precision
from training.tuning import tune
from zoo_cli.commands import CommandError, best_hyperparameters, tuner_flags
from zoo_cli.detection import (
    DEFAULT_BATCH_SIZE,
    compile_detector,
    evaluate_detector,
    load,
    report,
    spec_size,
    write_run_info,
)

DEFAULT_OBJECTIVE = "val_loss"


def tune_detector(args, spec):
    """`zoo tune DETECTOR`: searches, saves and scores the best trial's model."""
    if getattr(args, "ensemble", None) is not None:
        raise CommandError(
            "--ensemble averages classifiers' probabilities; detectors have no "
            f"ensemble. Received: --ensemble {args.ensemble} for {args.model}."
        )
    size = spec_size(spec)
    set_precision(args.precision)
    batch_size = args.batch_size or spec.training.get("batch_size", DEFAULT_BATCH_SIZE)
    train_ds, test, info, steps_per_epoch = load(args, spec, size, batch_size)
    if info.validation_ds is None:
        raise CommandError("tune needs --validation-split in (0, 1).")
    hypermodel = zoo.get_hypermodel(
        args.model,
        train_steps=args.epochs * steps_per_epoch,
        num_classes=info.num_classes,
    )
    hypermodel.jit_compile = args.jit_compile
    project = args.project_name or f"{args.model}-{info.name}"
    tuner = tune(
        hypermodel,
        train_ds,
        info.validation_ds,
        project_name=project,
        objective=args.objective or DEFAULT_OBJECTIVE,
        steps_per_epoch=steps_per_epoch,
        **tuner_flags(args),
    )
    best = best_hyperparameters(args, tuner, project)
    if best is None:
        return 0
    model = tuner.get_best_models(1)[0]
    folder = tuner.project_dir
    path = os.path.join(folder, "best_model.keras")
    model.save(path)
    write_run_info(
        folder,
        info,
        size,
        args,
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        tuned=best,
    )
    print(f"saved {path}")
    compile_detector(model, jit_compile=args.jit_compile)
    metrics = evaluate_detector(model, test, info.num_classes, size)
    report(metrics, info.name, info.test_split, args.metrics_json)
    return 0

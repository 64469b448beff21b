"""The `zoo` command: list, train, evaluate, tune and export zoo models.

    zoo list [--task T] [--pattern P]
    zoo train MODEL --dataset NAME [--epochs N] [--output DIR] [--metrics-json PATH]
    zoo evaluate MODEL_OR_PATH --dataset NAME [--weights PATH] [--metrics-json PATH]
    zoo tune MODEL --dataset NAME --max-trials N [--resume] [--epochs N]
    zoo export MODEL_OR_PATH [--weights PATH] --output saved_models/NAME/VERSION

Datasets come from tensorflow-datasets (`training.data`): offline from a
folder of original files with `--manual-dir` (or `$ZOO_MANUAL_DIR`; the
repository carries MNIST's in `data/mnist`), prepared copies in `--data-dir`
(or `$TFDS_DATA_DIR`). Errors print one line to stderr and exit with status 1
(`--debug` shows the traceback instead).
"""

import argparse
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_TASK = "image_classification"
SCHEDULES = ("constant", "step", "exponential", "cosine")
from training.precision import CHOICES as PRECISIONS  # noqa: E402


class CommandError(Exception):
    """A user error the command reports in one line."""


def _jit(value):
    choices = {"auto": "auto", "true": True, "false": False}
    if value.lower() not in choices:
        raise argparse.ArgumentTypeError(f"must be auto, true or false, not {value!r}")
    return choices[value.lower()]


def _add_data_arguments(parser, batch_size=True):
    parser.add_argument("--dataset", required=True, help="tensorflow-datasets name")
    parser.add_argument("--manual-dir", help="folder of the original files (offline)")
    parser.add_argument("--data-dir", help="tfds data directory ($TFDS_DATA_DIR)")
    if batch_size:
        parser.add_argument("--batch-size", type=int, help="default: the model's")
    parser.add_argument("--test-split", help="tfds split to test on (default test)")
    parser.add_argument("--metrics-json", help="write the test metrics as JSON here")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="float32",
        help="auto: mixed_bfloat16 on CPUs with native bfloat16, else float32",
    )
    parser.add_argument(
        "--jit-compile", type=_jit, default="auto", metavar="auto|true|false"
    )


def _add_fit_arguments(parser):
    parser.add_argument("--epochs", type=int, help="default: the model's")
    parser.add_argument("--train-split", help="tfds split to train on (default train)")
    parser.add_argument("--validation-split", type=float, help="fraction held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizer", help="e.g. adam, adamw, sgd")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--schedule", choices=SCHEDULES)
    parser.add_argument("--warmup-steps", type=int)
    parser.add_argument("--decay-steps", type=int, help="default: to the end")
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--clipnorm", type=float)
    parser.add_argument("--clipvalue", type=float)
    parser.add_argument("--global-clipnorm", type=float)


def _default(value, default):
    return default if value is None else value


def build_parser():
    """The `argparse` parser of the `zoo` command."""
    parser = argparse.ArgumentParser(prog="zoo", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("list", help="list the registered models")
    p.add_argument("--task", help="e.g. image_classification")
    p.add_argument("--pattern", help="glob, e.g. 'vit_*'")

    p = commands.add_parser("train", help="train a model on a tfds dataset")
    p.add_argument("model")
    _add_data_arguments(p)
    _add_fit_arguments(p)
    p.add_argument("--output", help="run folder (default runs/MODEL-DATASET)")
    p.add_argument("--no-resume", action="store_true", help="ignore a backup")
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)

    p = commands.add_parser("evaluate", help="test a model on a tfds dataset")
    p.add_argument("model", metavar="MODEL_OR_PATH", help="name, .keras or run folder")
    p.add_argument("--weights", help=".keras or .weights.h5 file for a model name")
    _add_data_arguments(p)

    p = commands.add_parser("tune", help="random hyperparameter search")
    p.add_argument("model")
    _add_data_arguments(p)
    p.add_argument("--max-trials", type=int, required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--resume", action="store_true", help="continue the search")
    p.add_argument("--directory", default="runs/tuning")
    p.add_argument("--project-name", help="default MODEL-DATASET")
    p.add_argument("--train-split", help="tfds split to tune on (default train)")
    p.add_argument("--validation-split", type=float, default=0.1)
    p.add_argument("--objective", default="val_accuracy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)

    p = commands.add_parser("export", help="write a TF Serving SavedModel")
    p.add_argument("model", metavar="MODEL_OR_PATH", help="name or .keras file")
    p.add_argument("--weights", help=".keras or .weights.h5 file")
    p.add_argument("--output", required=True, help="saved_models/NAME/VERSION")
    return parser


def _spec(name):
    import zoo

    spec = zoo.get_model_spec(name)
    if spec.task != IMAGE_TASK:
        raise CommandError(
            f"Model {name!r} is a {spec.task} model; this command trains "
            f"{IMAGE_TASK} models on tfds image datasets."
        )
    return spec


def _load(args, batch_size, validation_split=None, train_split=None):
    from training.data import load_image_classification

    return load_image_classification(
        args.dataset,
        batch_size=batch_size,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        seed=getattr(args, "seed", 0),
        validation_split=validation_split,
        train_split=train_split,
        test_split=args.test_split,
    )


def optimizer_arguments(recommended, args, steps):
    """`build_optimizer` arguments: the model's, overridden by the flags.

    `decay_steps` (cosine and exponential) defaults to the steps left after
    the warm-up; the model's warm-up is capped at a tenth of the run.
    """
    options = dict(recommended)
    flags = {
        "name": args.optimizer,
        "learning_rate": args.learning_rate,
        "schedule": args.schedule,
        "weight_decay": args.weight_decay,
        "clipnorm": args.clipnorm,
        "clipvalue": args.clipvalue,
        "global_clipnorm": args.global_clipnorm,
    }
    options.update({k: v for k, v in flags.items() if v is not None})
    if args.warmup_steps is not None:
        options["warmup_steps"] = args.warmup_steps
    elif options.get("warmup_steps"):
        options["warmup_steps"] = min(options["warmup_steps"], steps // 10)
    if args.decay_steps is not None:
        options["decay_steps"] = args.decay_steps
    elif options.get("schedule") in ("cosine", "exponential"):
        options["decay_steps"] = max(1, steps - options.get("warmup_steps", 0))
    return options


def _evaluate(model, test_ds, metrics_json):
    results = model.evaluate(test_ds, verbose=0, return_dict=True)
    metrics = {"accuracy": float(results["accuracy"]), "loss": float(results["loss"])}
    print(f"test accuracy: {metrics['accuracy']:.4f}  loss: {metrics['loss']:.4f}")
    if metrics_json:
        folder = os.path.dirname(os.path.abspath(metrics_json))
        os.makedirs(folder, exist_ok=True)
        with open(metrics_json, "w") as f:
            json.dump(metrics, f, indent=2)
    return metrics


def cmd_list(args):
    import zoo

    for name in zoo.list_models(task=args.task, pattern=args.pattern):
        print(name)
    return 0


def cmd_train(args):
    import zoo
    from training.fit import compile_model, fit_model
    from training.optimizers import build_optimizer
    from training.precision import set_precision

    spec = _spec(args.model)
    set_precision(args.precision)
    batch_size = _default(args.batch_size, spec.training.get("batch_size", 128))
    epochs = _default(args.epochs, spec.training.get("epochs", 1))
    train_ds, test_ds, info = _load(
        args, batch_size, args.validation_split, args.train_split
    )
    steps = epochs * math.ceil(info.train_examples / batch_size)
    options = optimizer_arguments(spec.training.get("optimizer", {}), args, steps)
    model = zoo.build_model(
        args.model, input_shape=info.input_shape, num_classes=info.num_classes
    )
    compile_model(model, build_optimizer(**options), jit_compile=args.jit_compile)
    output = args.output or os.path.join("runs", f"{args.model}-{info.name}")
    print(
        f"training {args.model} on {info.name} ({info.train_examples} examples, "
        f"{epochs} epochs) into {output}"
    )
    fit_model(
        model,
        train_ds,
        info.validation_ds,
        epochs=epochs,
        output_dir=output,
        resume=not args.no_resume,
        verbose=args.verbose,
    )
    path = os.path.join(output, "model.keras")
    model.save(path)
    print(f"saved {path}")
    _evaluate(model, test_ds, args.metrics_json)
    return 0


def _load_model_file(path):
    import keras

    import zoo  # noqa: F401  (registers the zoo's layers)

    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "saved_model.pb")):
            raise CommandError(
                f"{path} is a SavedModel; serve it, or evaluate the .keras file "
                "it was exported from."
            )
        path = os.path.join(path, "model.keras")
    if not path.endswith(".keras") or not os.path.isfile(path):
        raise CommandError(f"No .keras model file at {path}.")
    return keras.saving.load_model(path, safe_mode=True, compile=False)


def cmd_evaluate(args):
    import zoo
    from training.fit import compile_model
    from training.precision import set_precision

    set_precision(args.precision)
    is_path = os.path.exists(args.model) or args.model.endswith(".keras")
    spec = None if is_path else _spec(args.model)
    default = spec.training.get("batch_size", 128) if spec else 128
    _, test_ds, info = _load(args, _default(args.batch_size, default))
    if is_path:
        if args.weights:
            raise CommandError("--weights goes with a model name, not a model file.")
        model = _load_model_file(args.model)
    else:
        model = zoo.build_model(
            args.model, input_shape=info.input_shape, num_classes=info.num_classes
        )
        if args.weights:
            _load_weights(model, args.weights)
        else:
            print(
                f"warning: {args.model} has no --weights: evaluating it untrained",
                file=sys.stderr,
            )
    compile_model(model, jit_compile=args.jit_compile)
    _evaluate(model, test_ds, args.metrics_json)
    return 0


def _load_weights(model, path):
    if path.endswith(".weights.h5"):
        model.load_weights(path)
    else:
        model.set_weights(_load_model_file(path).get_weights())


def cmd_tune(args):
    import zoo
    from training.precision import set_precision
    from training.tuning import tune

    spec = _spec(args.model)
    set_precision(args.precision)
    batch_size = _default(args.batch_size, spec.training.get("batch_size", 128))
    train_ds, test_ds, info = _load(
        args, batch_size, args.validation_split, args.train_split
    )
    if info.validation_ds is None:
        raise CommandError("tune needs --validation-split in (0, 1).")
    steps = args.epochs * math.ceil(info.train_examples / batch_size)
    recommended = spec.training.get("optimizer", {})
    optimizer_args = {}
    if recommended.get("schedule") in ("cosine", "exponential"):
        optimizer_args["decay_steps"] = steps
    hypermodel = zoo.get_hypermodel(
        args.model,
        optimizer_args=optimizer_args,
        input_shape=info.input_shape,
        num_classes=info.num_classes,
    )
    hypermodel.jit_compile = args.jit_compile
    project = args.project_name or f"{args.model}-{info.name}"
    tuner = tune(
        hypermodel,
        train_ds,
        info.validation_ds,
        max_trials=args.max_trials,
        directory=args.directory,
        project_name=project,
        epochs=args.epochs,
        resume=args.resume,
        objective=args.objective,
        seed=args.seed,
        verbose=args.verbose,
    )
    best = tuner.get_best_hyperparameters(1)[0]
    print(f"best hyperparameters: {json.dumps(best.values, sort_keys=True)}")
    model = tuner.get_best_models(1)[0]
    path = os.path.join(args.directory, project, "best_model.keras")
    model.save(path)
    print(f"saved {path}")
    _evaluate(model, test_ds, args.metrics_json)
    return 0


def cmd_export(args):
    from zoo.export import export_model, write_models_config

    target = args.model
    if os.path.exists(target) or target.endswith(".keras"):
        if args.weights:
            raise CommandError("--weights goes with a model name, not a model file.")
        target = _load_model_file(target)
    exported = export_model(target, args.output, weights=args.weights)
    names = ", ".join(s.name for s in exported.signatures)
    print(f"exported {exported.name} to {exported.path} (signatures: {names})")
    # export_model only writes ROOT/NAME/VERSION directories.
    root = os.path.dirname(os.path.dirname(os.path.normpath(exported.path)))
    print(f"wrote {write_models_config(root)}")
    return 0


COMMANDS = {
    "list": cmd_list,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "tune": cmd_tune,
    "export": cmd_export,
}


def _one_line(error):
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    text = " ".join(str(message).split())
    if not isinstance(error, (CommandError, ValueError, OSError)):
        text = f"{type(error).__name__}: {text}"
    return text


def main(argv=None):
    """Runs the `zoo` command with `argv` (default `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 1 on an error, 2 on bad usage.
    """
    args = build_parser().parse_args(argv)
    if not args.debug:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        print(f"zoo: error: {_one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""The `zoo` command: list, train, evaluate, tune, predict, detect and export models.

    zoo list [--task T] [--pattern P] [--details [--sort COLUMN] [--format json]]
    zoo info MODEL [--format json]
    zoo train MODEL --dataset NAME [--epochs N] [--output DIR] [--metrics-json PATH]
              [--strategy multiworker]  (one process per machine, TF_CONFIG)
    zoo train DETECTOR --dataset zoo_raccoon [--epochs N] [--steps-per-epoch S]
              [--augmentation JSON]
    zoo train POLICY --env CartPole-v1 [--steps N] [--seed S] [--output DIR]
    zoo evaluate RUN --env CartPole-v1 [--episodes N]
    zoo evaluate MODEL_OR_PATH --dataset NAME [--weights PATH] [--metrics-json PATH]
    zoo evaluate DETECTOR_RUN [--test-split S]  (COCO mAP; dataset of the run)
    zoo tune MODEL --dataset NAME --max-trials N [--resume] [--epochs N]
             [--objective val_accuracy]  (detectors: val_loss, [--steps-per-epoch S])
             [--ensemble K [--ensemble-method mean|fitted]]
             [--chief HOST:PORT | --worker HOST:PORT [--tuner-id ID]]
    zoo predict RUN_OR_FILE TEXT [TEXT ...] [--attention-map out.png]
    zoo translate RUN_OR_FILE TEXT [TEXT ...] [--beam-width K] [--attention-map out.png]
    zoo detect RUN_OR_FILE IMAGE [IMAGE ...] [--output out.png] [--score-threshold T]
    zoo export MODEL_OR_PATH [--weights PATH] --output saved_models/NAME/VERSION
               [--quantize int8]

Datasets come from tensorflow-datasets (`training.data`): offline from a
folder of original files with `--manual-dir` (or `$ZOO_MANUAL_DIR`; the
repository carries MNIST's in `data/mnist`), prepared copies in `--data-dir`
(or `$TFDS_DATA_DIR`). Errors print one line to stderr and exit with status 1
(`--debug`, before or after the command, shows the traceback instead).

This module imports neither Keras nor TensorFlow: `zoo --help` and usage
errors answer at once, and each command loads what it needs
(`zoo_cli.commands`).
"""

import argparse
import contextlib
import os
import sys

from training.choices import DETAIL_COLUMNS, PRECISIONS, SCHEDULES

__all__ = ["build_parser", "main"]


def _jit(value):
    choices = {"auto": "auto", "true": True, "false": False}
    if value.lower() not in choices:
        raise argparse.ArgumentTypeError(f"must be auto, true or false, not {value!r}")
    return choices[value.lower()]


def _json_object(value):
    import json

    try:
        parsed = json.loads(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"must be a JSON object ({e})") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {value!r}")
    return parsed


def _add_data_arguments(parser, batch_size=True, env=False):
    if env:
        parser.add_argument("--dataset", help="tensorflow-datasets name")
        parser.add_argument(
            "--env", help="policies: gymnasium environment, e.g. CartPole-v1"
        )
        parser.add_argument(
            "--episodes", type=int, help="policies: evaluation episodes (100)"
        )
    else:
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
    parser.add_argument(
        "--no-augmentation",
        action="store_true",
        help="train without the model's data augmentation",
    )
    parser.add_argument(
        "--augmentation",
        type=_json_object,
        metavar="JSON",
        help="replaces the model's augmentation settings, e.g. "
        '\'{"flip": true, "crop": 0.6}\' (training.box_augmentation for detectors)',
    )
    parser.add_argument("--optimizer", help="e.g. adam, adamw, sgd")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--schedule", choices=SCHEDULES)
    parser.add_argument("--warmup-steps", type=int)
    parser.add_argument("--decay-steps", type=int, help="default: to the end")
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--clipnorm", type=float)
    parser.add_argument("--clipvalue", type=float)
    parser.add_argument("--global-clipnorm", type=float)


def build_parser():
    """The `argparse` parser of the `zoo` command."""
    debug = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default must not undo `zoo --debug CMD`.
    debug.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="tracebacks"
    )
    parser = argparse.ArgumentParser(
        prog="zoo", description=__doc__.split("\n")[0], parents=[debug]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, help):
        return commands.add_parser(name, help=help, parents=[debug])

    p = command("list", "list the registered models")
    p.add_argument("--task", help="e.g. image_classification")
    p.add_argument("--pattern", help="glob, e.g. 'vit_*'")
    p.add_argument(
        "--details",
        action="store_true",
        help="parameters, GFLOPs, best measured accuracy and speed",
    )
    p.add_argument("--sort", choices=DETAIL_COLUMNS, help="with --details")
    p.add_argument("--reverse", action="store_true", help="sort descending")
    p.add_argument("--dataset", help="accuracy on this dataset (default per task)")
    p.add_argument("--format", choices=("table", "json"), default="table")

    p = command("info", "what a model is and what it measured")
    p.add_argument("model")
    p.add_argument("--format", choices=("text", "json"), default="text")

    p = command("train", "train a model on a tfds dataset (a policy on --env)")
    p.add_argument("model")
    _add_data_arguments(p, env=True)
    _add_fit_arguments(p)
    p.add_argument("--steps", type=int, help="policies: environment steps")
    p.add_argument(
        "--steps-per-epoch",
        type=int,
        help="detectors: steps of an epoch (default: one pass over the images)",
    )
    p.add_argument("--output", help="run folder (default runs/MODEL-DATASET)")
    p.add_argument("--no-resume", action="store_true", help="ignore a backup")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="train again into an --output that holds a trained model",
    )
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    p.add_argument(
        "--strategy",
        choices=("none", "multiworker"),
        default="none",
        help="multiworker: data-parallel over the processes of TF_CONFIG "
        "(docs/distributed.md)",
    )

    p = command("evaluate", "test a model on a tfds dataset")
    p.add_argument("model", metavar="MODEL_OR_PATH", help="name, .keras or run folder")
    p.add_argument("--weights", help=".keras or .weights.h5 file for a model name")
    p.add_argument("--beam-width", type=int, help="seq2seq models: beams (1: greedy)")
    _add_data_arguments(p, env=True)

    p = command("tune", "random hyperparameter search")
    p.add_argument("model")
    _add_data_arguments(p)
    p.add_argument("--max-trials", type=int, required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--resume", action="store_true", help="continue the search")
    p.add_argument("--directory", default="runs/tuning")
    p.add_argument("--project-name", help="default MODEL-DATASET")
    p.add_argument("--train-split", help="tfds split to tune on (default train)")
    p.add_argument("--validation-split", type=float, default=0.1)
    p.add_argument("--no-augmentation", action="store_true")
    p.add_argument(
        "--objective",
        help="metric of the validation split to optimise (default val_accuracy; "
        "val_loss for detectors)",
    )
    p.add_argument(
        "--steps-per-epoch",
        type=int,
        help="detectors: steps of a trial's epoch (default: one pass over the images)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    p.add_argument(
        "--ensemble",
        type=int,
        metavar="K",
        help="also save the ensemble of the K best trials (PROJECT/ensemble.keras)",
    )
    p.add_argument(
        "--ensemble-method",
        choices=("mean", "fitted"),
        default="mean",
        help="mean of the probabilities, or weights fitted on the validation split",
    )
    role = p.add_mutually_exclusive_group()
    role.add_argument(
        "--chief",
        metavar="HOST:PORT",
        help="serve a distributed search here (trains nothing; docs/distributed.md)",
    )
    role.add_argument(
        "--worker", metavar="HOST:PORT", help="run trials for the chief at HOST:PORT"
    )
    p.add_argument("--tuner-id", help="worker id, unique (default worker-HOST-PID)")
    p.add_argument(
        "--worker-timeout",
        type=float,
        default=60.0,
        help="chief: seconds of silence before a worker's trial goes to another",
    )

    p = command("predict", "classify texts with a trained text model")
    p.add_argument("model", metavar="RUN_OR_FILE", help="run folder or .keras file")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.add_argument("--attention-map", help="PNG of the attention over the words")

    p = command(
        "translate", "translate texts (or write headlines) with a trained model"
    )
    p.add_argument("model", metavar="RUN_OR_FILE", help="run folder or .keras file")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.add_argument("--beam-width", type=int, help="default: the model's (1: greedy)")
    p.add_argument("--attention-map", help="PNG of source words against output words")

    p = command("detect", "draw a trained detector's boxes on images")
    p.add_argument("model", metavar="RUN_OR_FILE", help="run folder or .keras file")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG, PNG, ... files")
    p.add_argument(
        "--output", help="PNG of the boxes (several images: OUTPUT-NAME.png each)"
    )
    p.add_argument("--score-threshold", type=float, default=0.3)
    p.add_argument("--max-detections", type=int, default=100)

    p = command("export", "write a TF Serving SavedModel")
    p.add_argument(
        "model", metavar="MODEL_OR_PATH", help="name, .keras file or run folder"
    )
    p.add_argument("--weights", help=".keras or .weights.h5 file")
    p.add_argument("--output", required=True, help="saved_models/NAME/VERSION")
    p.add_argument(
        "--quantize", choices=("int8",), help="export an int8-quantized copy"
    )
    p.add_argument(
        "--serving-config",
        action="store_true",
        help="create ROOT/models.config and batching.config if absent "
        "(an existing models.config always gets the model's entry)",
    )
    return parser


@contextlib.contextmanager
def quiet_native_stderr():
    """Silences what native code writes to stderr (TensorFlow's start-up notices).

    TensorFlow 2.21 logs them through absl before `TF_CPP_MIN_LOG_LEVEL` is
    read. Python errors are raised after the stream is restored.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _one_line(error):
    message = error.args[0] if isinstance(error, KeyError) and error.args else error
    text = " ".join(str(message).split())
    known = (ValueError, TypeError, OSError)
    if not isinstance(error, known) and type(error).__name__ != "CommandError":
        text = f"{type(error).__name__}: {text}"
    return text


def main(argv=None):
    """Runs the `zoo` command with `argv` (default `sys.argv[1:]`).

    Returns:
        The exit status: 0 on success, 1 on an error, 2 on bad usage.
    """
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if debug:
            from zoo_cli import commands
        else:
            with quiet_native_stderr():
                from zoo_cli import commands
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
        return commands.COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        print(f"zoo: error: {_one_line(e)}", file=sys.stderr)
        return 1

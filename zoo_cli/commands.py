"""What each `zoo` command does (`zoo_cli.main` parses the arguments).

Importing this module loads Keras, TensorFlow and the zoo. Every command
checks its numeric and split arguments before it loads data or builds a model.
"""

import json
import math
import os
import sys

import keras
import tensorflow_datasets as tfds

import zoo
from layers.validation import check_float, check_positive_int
from training.data import load_image_classification
from training.distribution import shard_by_batch, start_distribution, worker_output
from training.fit import compile_model, fit_model
from training.optimizers import build_optimizer
from training.precision import set_precision
from training.recipes import optimizer_arguments
from training.text_data import load_text_classification
from training.tuning import tune
from zoo._text import DEFAULT_MAX_LENGTH
from zoo.model_files import load_model_file, load_weights
from zoo.registry import SEQ2SEQ_TASKS
from zoo.text_classifier import TextClassifier, text_classifier_for, tokenize

IMAGE_TASK = "image_classification"
TEXT_TASK = "text_classification"
DETECTION_TASK = "object_detection"
TASKS = (IMAGE_TASK, TEXT_TASK, DETECTION_TASK, *SEQ2SEQ_TASKS)


class CommandError(Exception):
    """A user error the command reports in one line."""


def _default(value, default):
    return default if value is None else value


def _check_split(flag, spec):
    """Raises unless `spec` is a tfds split spec such as `train[:80%]`."""
    if spec is None:
        return
    try:
        tfds.core.ReadInstruction.from_spec(spec)
    except (ValueError, AssertionError, KeyError) as e:
        raise CommandError(
            f"{flag} must be a tensorflow-datasets split such as 'train[:512]'. "
            f"Received: {flag} {spec!r} ({' '.join(str(e).split())[:200]})"
        ) from None


def _check_common(args):
    """Checks the arguments every data command shares, before any data loads."""
    if getattr(args, "batch_size", None) is not None:
        check_positive_int("--batch-size", args.batch_size)
    if getattr(args, "epochs", None) is not None:
        check_positive_int("--epochs", args.epochs)
    split = getattr(args, "validation_split", None)
    if split is not None:
        check_float("--validation-split", split, 0.0, 1.0)
        if split >= 1.0:
            raise CommandError(
                f"--validation-split must be in (0, 1). Received: {split!r}"
            )
    _check_split("--train-split", getattr(args, "train_split", None))
    _check_split("--test-split", getattr(args, "test_split", None))


def _spec(name):
    spec = zoo.get_model_spec(name)
    if spec.task not in TASKS:
        raise CommandError(
            f"Model {name!r} is a {spec.task} model; this command trains "
            f"{', '.join(TASKS)} models."
        )
    return spec


def _max_length(spec):
    return spec.config.get("max_length", DEFAULT_MAX_LENGTH)


def _augmentation(args, spec):
    if spec is None or getattr(args, "no_augmentation", False):
        return None
    if getattr(args, "augmentation", None) is not None:
        return args.augmentation
    return spec.training.get("augmentation")


def _check_detection_flags(args, spec):
    """Raises if a flag of detectors or of image models goes to another task."""
    if spec.task != DETECTION_TASK and getattr(args, "steps_per_epoch", None):
        raise CommandError(
            f"--steps-per-epoch goes with {DETECTION_TASK} models; {args.model} "
            f"is a {spec.task} model."
        )
    if getattr(args, "steps_per_epoch", None) is not None:
        check_positive_int("--steps-per-epoch", args.steps_per_epoch)
    if spec.task not in (IMAGE_TASK, DETECTION_TASK) and (
        getattr(args, "augmentation", None) is not None
    ):
        raise CommandError(
            f"--augmentation goes with image and detection models; {args.model} "
            f"is a {spec.task} model."
        )


def _load(args, batch_size, spec=None, validation_split=None, train_split=None):
    if spec is not None and spec.task == TEXT_TASK:
        return load_text_classification(
            args.dataset,
            batch_size=batch_size,
            data_dir=args.data_dir,
            manual_dir=args.manual_dir,
            seed=getattr(args, "seed", 0),
            validation_split=validation_split,
            train_split=train_split,
            test_split=args.test_split,
            vocabulary_size=spec.config["vocabulary_size"],
            max_length=_max_length(spec),
        )
    return load_image_classification(
        args.dataset,
        batch_size=batch_size,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        seed=getattr(args, "seed", 0),
        validation_split=validation_split,
        train_split=train_split,
        test_split=args.test_split,
        augmentation=_augmentation(args, spec),
    )


def _optimizer_flags(args):
    return {
        "name": args.optimizer,
        "learning_rate": args.learning_rate,
        "schedule": args.schedule,
        "warmup_steps": args.warmup_steps,
        "decay_steps": args.decay_steps,
        "weight_decay": args.weight_decay,
        "clipnorm": args.clipnorm,
        "clipvalue": args.clipvalue,
        "global_clipnorm": args.global_clipnorm,
    }


def _evaluate(model, test_ds, metrics_json):
    results = model.evaluate(test_ds, verbose=0, return_dict=True)
    metrics = {"accuracy": float(results["accuracy"]), "loss": float(results["loss"])}
    print(f"test accuracy: {metrics['accuracy']:.4f}  loss: {metrics['loss']:.4f}")
    write_metrics(metrics, metrics_json)
    return metrics


def check_new_run(output, args, model_file="model.keras"):
    """Raises unless `output` is free for a new run or `--overwrite` is given.

    A run folder that already holds a trained `model_file` is the user's;
    training into it again would replace that model (a run that stopped
    early holds a backup instead, which `zoo train` resumes).
    """
    path = os.path.join(output, model_file)
    if os.path.exists(path) and not getattr(args, "overwrite", False):
        raise CommandError(
            f"{output} already holds a trained model ({path}): give another "
            "--output, or --overwrite to train it again from scratch."
        )


def write_metrics(metrics, path):
    """Writes `metrics` as JSON to `path` (its folder created); no-op if `None`."""
    if path:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with open(path, "w") as f:
            json.dump(metrics, f, indent=2)


def _is_path(target):
    """Whether `target` names a file or folder rather than a registered model."""
    return (
        os.path.exists(target)
        or os.sep in target
        or (os.altsep is not None and os.altsep in target)
        or target.endswith((".keras", ".h5"))
    )


def _build(name, spec, info):
    """The model to train for `info`'s data (a `TextClassifier` for text)."""
    if spec.task == IMAGE_TASK:
        return zoo.build_model(
            name, input_shape=info.input_shape, num_classes=info.num_classes
        )
    return text_classifier_for(name, info)


def cmd_list(args):
    names = zoo.list_models(task=args.task, pattern=args.pattern)
    if not args.details:
        if args.sort or args.reverse or args.dataset or args.format != "table":
            raise CommandError(
                "--sort, --reverse, --dataset and --format need --details"
            )
        for name in names:
            print(name)
        return 0
    from zoo_cli.details import list_details

    print(list_details(names, args.sort, args.reverse, args.format, args.dataset))
    return 0


def cmd_info(args):
    from zoo_cli.details import info

    print(info(zoo.get_model_spec(args.model).name, args.format))
    return 0


POLICY_TASK = "reinforcement_learning"


def _check_env(args, spec):
    """Whether the command is a policy's (`--env`); checks the pairing."""
    policy = spec is not None and spec.task == POLICY_TASK
    if args.env is None:
        if policy:
            raise CommandError(
                f"{args.model} is a policy: give --env, e.g. CartPole-v1."
            )
        if args.dataset is None:
            raise CommandError("the following arguments are required: --dataset")
        return False
    if args.dataset is not None:
        raise CommandError("--env and --dataset exclude each other.")
    if spec is not None and not policy:
        raise CommandError(
            f"--env trains policies; {args.model} is a {spec.task} model."
        )
    return True


def cmd_train(args):
    _check_common(args)
    if _check_env(args, zoo.get_model_spec(args.model)):
        from zoo_cli import policy

        return policy.train_policy(args)
    spec = _spec(args.model)
    _check_detection_flags(args, spec)
    strategy = getattr(args, "strategy", "none")
    if strategy != "none" and spec.task != IMAGE_TASK:
        raise CommandError(
            f"--strategy {strategy} trains image classifiers; {args.model} is a "
            f"{spec.task} model (docs/distributed.md)."
        )
    # Joins the cluster first: TensorFlow's collectives need it before any op.
    scope, worker, workers = start_distribution(strategy)
    keras.utils.set_random_seed(args.seed)
    set_precision(args.precision)
    batch_size = _default(args.batch_size, spec.training.get("batch_size", 128))
    epochs = _default(args.epochs, spec.training.get("epochs", 1))
    if spec.task in SEQ2SEQ_TASKS:
        from zoo_cli import seq2seq

        return seq2seq.train(args, spec, batch_size, epochs, _optimizer_flags(args))
    if spec.task == DETECTION_TASK:
        from zoo_cli import detection

        return detection.train(args, spec, batch_size, epochs, _optimizer_flags(args))
    if batch_size % workers:
        raise CommandError(
            f"--batch-size is the global batch: it must split evenly over the "
            f"{workers} workers. Received: --batch-size {batch_size}"
        )
    train_ds, test_ds, info = _load(
        args, batch_size, spec, args.validation_split, args.train_split
    )
    steps = epochs * math.ceil(info.train_examples / batch_size)
    options = optimizer_arguments(
        spec.training.get("optimizer", {}), steps, _optimizer_flags(args)
    )
    jit_compile = args.jit_compile
    if spec.task == TEXT_TASK:
        jit_compile = False  # the model tokenizes strings, which XLA cannot
    val_ds = info.validation_ds
    if workers > 1:
        jit_compile = False  # XLA on CPU does not compile the collectives
        train_ds = shard_by_batch(train_ds, batch_size, training=True)
        test_ds = shard_by_batch(test_ds, batch_size, training=False)
        if val_ds is not None:
            val_ds = shard_by_batch(val_ds, batch_size, training=False)
    run = args.output or os.path.join("runs", f"{args.model}-{info.name}")
    output = worker_output(run, worker)
    check_new_run(output, args)
    print(
        f"training {args.model} on {info.name} ({info.train_examples} examples, "
        f"{epochs} epochs) into {output}"
        + (f" (worker {worker} of {workers})" if workers > 1 else "")
    )
    with scope:
        model = _build(args.model, spec, info)
        compile_model(model, build_optimizer(**options), jit_compile=jit_compile)
        fit_model(
            model,
            train_ds,
            val_ds,
            epochs=epochs,
            output_dir=output,
            resume=not args.no_resume,
            verbose=args.verbose,
            tensorboard=worker == 0,
        )
        path = os.path.join(output, "model.keras")
        model.save(path)
        print(f"saved {path}")
        _evaluate(model, test_ds, args.metrics_json if worker == 0 else None)
    return 0


def cmd_evaluate(args):
    _check_common(args)
    is_path = _is_path(args.model)
    if is_path and args.weights:
        raise CommandError("--weights goes with a model name, not a model file.")
    if args.env is None and _is_detection(args.model, is_path):
        from zoo_cli import detection

        return detection.evaluate(args, is_path)
    if _check_env(args, None if is_path else zoo.get_model_spec(args.model)):
        from zoo_cli import policy

        return policy.evaluate_policy(args)
    spec = None if is_path else _spec(args.model)
    if spec is not None and spec.task in (TEXT_TASK, *SEQ2SEQ_TASKS):
        raise CommandError(
            f"{args.model} is a text model: evaluate its run folder or .keras "
            "file, which holds its vocabulary."
        )
    model = load_model_file(args.model) if is_path else None
    set_precision(args.precision)
    if isinstance(model, zoo.Translator):
        from zoo_cli import seq2seq

        return seq2seq.evaluate_file(args, model)
    from zoo_cli import detection

    if detection.is_detector(model):
        return detection.evaluate(args, is_path, model)
    if args.beam_width is not None:
        raise CommandError("--beam-width goes with a translation or headline model.")
    default = spec.training.get("batch_size", 128) if spec else 128
    batch_size = _default(args.batch_size, default)
    if isinstance(model, TextClassifier):
        _, test_ds, _ = load_text_classification(
            args.dataset,
            batch_size=batch_size,
            data_dir=args.data_dir,
            manual_dir=args.manual_dir,
            test_split=args.test_split,
            adapt=False,
        )
        compile_model(model, jit_compile=False)
        _evaluate(model, test_ds, args.metrics_json)
        return 0
    _, test_ds, info = _load(args, batch_size)
    if model is None:
        model = zoo.build_model(
            args.model, input_shape=info.input_shape, num_classes=info.num_classes
        )
        if args.weights:
            load_weights(model, args.weights)
        else:
            print(
                f"warning: {args.model} has no --weights: evaluating it untrained",
                file=sys.stderr,
            )
    compile_model(model, jit_compile=args.jit_compile)
    _evaluate(model, test_ds, args.metrics_json)
    return 0


def _is_detection(target, is_path):
    """Whether `zoo evaluate TARGET` scores a detector (a run folder or file
    with a `detection.json`, or a registered detector's name)."""
    if is_path:
        from zoo_cli import detection

        return detection.is_detection_run(target)
    return zoo.get_model_spec(target).task == DETECTION_TASK


def cmd_tune(args):
    _check_common(args)
    check_positive_int("--max-trials", args.max_trials)
    spec = _spec(args.model)
    _check_detection_flags(args, spec)
    _check_distributed(args)
    if spec.task == DETECTION_TASK:
        from zoo_cli.detection_tuning import tune_detector

        return tune_detector(args, spec)
    from zoo_cli.ensemble import check_ensemble_arguments, tune_ensemble

    check_ensemble_arguments(args, spec.task)
    set_precision(args.precision)
    batch_size = _default(args.batch_size, spec.training.get("batch_size", 128))
    train_ds, test_ds, info = _load(
        args, batch_size, spec, args.validation_split, args.train_split
    )
    if info.validation_ds is None:
        raise CommandError("tune needs --validation-split in (0, 1).")
    steps = args.epochs * math.ceil(info.train_examples / batch_size)
    text = spec.task == TEXT_TASK
    if text:
        # Trials train token models on the data tokenized once by the
        # vocabulary of the training split; the best is saved with it.
        def tokens(ds):
            return ds.map(
                lambda x, y: (tokenize(info.vectorizer, x, info.max_length), y)
            )

        train_ds, val_ds = tokens(train_ds), tokens(info.validation_ds)
        data = dict(vocabulary_size=info.vocabulary_size)
    else:
        val_ds = info.validation_ds
        data = dict(input_shape=info.input_shape)
    hypermodel = zoo.get_hypermodel(
        args.model, train_steps=steps, num_classes=info.num_classes, **data
    )
    hypermodel.jit_compile = args.jit_compile
    project = args.project_name or f"{args.model}-{info.name}"
    tuner = tune(
        hypermodel,
        train_ds,
        val_ds,
        project_name=project,
        objective=args.objective or "val_accuracy",
        **tuner_flags(args),
    )
    if best_hyperparameters(args, tuner, project) is None:
        return 0
    model = tuner.get_best_models(1)[0]
    if text:
        model = TextClassifier(
            model, info.vectorizer, info.class_names, info.max_length, name=args.model
        )
        compile_model(model, jit_compile=False)
    path = os.path.join(args.directory, project, "best_model.keras")
    model.save(path)
    print(f"saved {path}")
    _evaluate(model, test_ds, args.metrics_json)
    if args.ensemble is not None:
        tune_ensemble(args, tuner, info, test_ds)
    return 0


def _check_distributed(args):
    if args.worker_timeout is not None:
        check_float("--worker-timeout", args.worker_timeout)
    from training.distributed_tuning import check_tuner_id, parse_address

    for flag in ("chief", "worker"):
        if getattr(args, flag):
            parse_address(f"--{flag}", getattr(args, flag))
    if args.tuner_id is not None:
        if not args.worker:
            raise CommandError("--tuner-id names a worker: it needs --worker.")
        check_tuner_id(args.tuner_id)
    if args.chief and args.ensemble is not None:
        raise CommandError(
            "--ensemble needs the trials' models: run it after the search, "
            "with --resume and no --chief, in the shared --directory."
        )


def tuner_flags(args):
    """The `training.tuning.tune` arguments that `zoo tune` takes as they are."""
    names = ("max_trials", "directory", "epochs", "resume", "seed", "verbose")
    names += ("chief", "worker", "tuner_id", "worker_timeout")
    return {name: getattr(args, name) for name in names}


def best_hyperparameters(args, tuner, project):
    """The best trial's hyperparameter values, printed; None where none is here.

    A worker's search ends with nothing to save, and a chief whose workers
    keep the checkpoints in their own `--directory` has no model to load.
    """
    if args.worker:
        trials = ", ".join(tuner.trials_run) or "none"
        print(f"worker {tuner.tuner_id}: the search is over; ran trials {trials}")
        return None
    best_trial = tuner.oracle.get_best_trials(1)
    if not best_trial:
        raise CommandError(f"No trial of {project!r} completed.")
    best = dict(sorted(best_trial[0].hyperparameters.values.items()))
    print(f"best hyperparameters: {json.dumps(best)}")
    checkpoint = tuner._get_checkpoint_fname(best_trial[0].trial_id)
    if not os.path.exists(checkpoint):
        print(
            f"The best trial's checkpoint is not in {tuner.project_dir} (the "
            "workers keep them in their --directory): share that folder to get "
            "best_model.keras here."
        )
        return None
    return best


def cmd_predict(args):
    model = load_model_file(args.model)
    if not isinstance(model, TextClassifier):
        raise CommandError(
            f"{args.model} holds {model.name!r}, not a text model: predict takes "
            "the run folder or .keras file of a text model (serve image models "
            "with `zoo export`, run detectors with `zoo detect`)."
        )
    import tensorflow as tf

    logits = model(tf.constant(args.texts, tf.string))
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    labels = []
    for text, row in zip(args.texts, probabilities, strict=True):
        best = int(row.argmax())
        labels.append(model.class_names[best])
        shares = ", ".join(
            f"{n} {p:.3f}" for n, p in zip(model.class_names, row, strict=True)
        )
        shown = text if len(text) <= 60 else text[:57] + "..."
        print(f"{labels[-1]}\t{row[best]:.3f}\t({shares})\t{shown!r}")
    if args.attention_map:
        from zoo.text_attention import plot_text_attention, text_attention

        pairs = text_attention(model, args.texts)
        print(
            f"attention map: {plot_text_attention(pairs, labels, args.attention_map)}"
        )
    return 0


def cmd_translate(args):
    if args.beam_width is not None:
        check_positive_int("--beam-width", args.beam_width)
    model = load_model_file(args.model)
    if not isinstance(model, zoo.Translator):
        raise CommandError(
            f"{args.model} holds {model.name!r}, not a translation or headline "
            "model: translate takes the run folder or .keras file that `zoo "
            "train` wrote for one."
        )
    from zoo_cli import seq2seq

    return seq2seq.translate(args, model)


def cmd_detect(args):
    from zoo_cli import detection

    return detection.detect(args)


def cmd_export(args):
    from zoo.export import export_model, update_serving_config

    target = args.model
    if _is_path(target):
        if args.weights:
            raise CommandError("--weights goes with a model name, not a model file.")
        target = load_model_file(target)
    exported = export_model(
        target, args.output, weights=args.weights, quantize=args.quantize
    )
    names = ", ".join(s.name for s in exported.signatures)
    print(f"exported {exported.name} to {exported.path} (signatures: {names})")
    # export_model only writes ROOT/NAME/VERSION directories.
    name_dir = os.path.dirname(os.path.normpath(exported.path))
    for line in update_serving_config(
        os.path.dirname(name_dir),
        os.path.basename(name_dir),
        create=args.serving_config,
    ):
        print(line)
    return 0


COMMANDS = {
    "list": cmd_list,
    "info": cmd_info,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "tune": cmd_tune,
    "predict": cmd_predict,
    "translate": cmd_translate,
    "detect": cmd_detect,
    "export": cmd_export,
}

"""`zoo tune ... --ensemble K`: the ensemble of the search's K best trials.

`cmd_tune` checks the flags with `check_ensemble_arguments` before any data
loads, and after the search calls `tune_ensemble`, which writes
`DIRECTORY/PROJECT/ensemble.keras` next to `best_model.keras`.
"""

import os

from layers.validation import check_positive_int
from training.fit import compile_model
from zoo.ensemble.from_tuner import ensemble_from_tuner
from zoo_cli.commands import IMAGE_TASK, CommandError

ENSEMBLE_FILE = "ensemble.keras"
ENSEMBLE_METHODS = ("mean", "fitted")


def check_ensemble_arguments(args, task):
    """Raises unless `--ensemble` and `--ensemble-method` fit the model's task.

    Args:
        args: the parsed `zoo tune` arguments (`ensemble`, `ensemble_method`,
            `model`).
        task: the task of `args.model`.

    Raises:
        ValueError: `--ensemble` is not a positive integer.
        CommandError: an ensemble of a model that is not an image classifier,
            or an unknown method.
    """
    k = getattr(args, "ensemble", None)
    if k is None:
        return
    check_positive_int("--ensemble", k)
    method = getattr(args, "ensemble_method", None) or "mean"
    if method not in ENSEMBLE_METHODS:
        raise CommandError(
            f"--ensemble-method must be one of {list(ENSEMBLE_METHODS)}. "
            f"Received: {method!r}"
        )
    if task != IMAGE_TASK:
        raise CommandError(
            f"--ensemble takes {IMAGE_TASK} models; {args.model!r} is a {task} model."
        )


def tune_ensemble(args, tuner, info, test_ds):
    """Saves and evaluates the ensemble of the `args.ensemble` best trials.

    The members are the trials' models (`tuner.get_best_models`, best first),
    averaged with equal weights (`--ensemble-method mean`) or with weights
    fitted on the validation split (`fitted`; see `zoo.build_ensemble`). The
    ensemble is saved to `DIRECTORY/PROJECT/ensemble.keras` (uncompiled; it
    loads with `safe_mode=True`, and `zoo evaluate` and `zoo export` take it
    like a trained model), then compiled (`training.fit.compile_model`) and
    evaluated on `test_ds`.

    Args:
        args: the parsed `zoo tune` arguments (`ensemble`, `ensemble_method`,
            `directory`, `project_name`, `model`, `jit_compile`).
        tuner: the tuner after its search.
        info: the `training.dataset_info.DatasetInfo` of the data (its
            `validation_ds` fits the weights; `name` names the project).
        test_ds: the batched test dataset.

    Returns:
        `(model, metrics)`: the compiled ensemble and its test `accuracy`
        and `loss`.
    """
    k = check_positive_int("--ensemble", args.ensemble)
    method = getattr(args, "ensemble_method", None) or "mean"
    validation = info.validation_ds if method == "fitted" else None
    if method == "fitted" and validation is None:
        raise CommandError("--ensemble-method fitted needs --validation-split.")
    model = ensemble_from_tuner(
        tuner,
        k,
        method=method,
        validation_data=validation,
        name=f"{args.model}_ensemble",
    )
    members = len(model.layers) - 2  # the input, the members, "logits"
    weights = model.get_layer("logits").member_weights
    shares = (
        "equal weights"
        if weights is None
        else "weights " + ", ".join(f"{w:.3f}" for w in weights)
    )
    note = "" if members == k else f" (the search has {members} trials)"
    print(f"ensemble of the {members} best trials{note}: {method}, {shares}")
    project = args.project_name or f"{args.model}-{info.name}"
    path = os.path.join(args.directory, project, ENSEMBLE_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Saved before it is compiled: an optimizer that never ran would only be
    # an empty slot that `load_model` warns about (`zoo evaluate` compiles).
    model.save(path)
    print(f"saved {path}")
    compile_model(model, jit_compile=getattr(args, "jit_compile", "auto"))
    results = model.evaluate(test_ds, verbose=0, return_dict=True)
    metrics = {"accuracy": float(results["accuracy"]), "loss": float(results["loss"])}
    print(
        f"ensemble test accuracy: {metrics['accuracy']:.4f}  "
        f"loss: {metrics['loss']:.4f}"
    )
    return model, metrics

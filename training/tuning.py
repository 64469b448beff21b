"""Hyperparameter search with keras-tuner, resumable across runs."""

import os

import keras
import keras_tuner

from layers.validation import check_int, check_positive_int


def tune(
    hypermodel,
    train_ds,
    val_ds,
    max_trials,
    directory,
    project_name,
    epochs,
    resume=False,
    objective="val_accuracy",
    seed=0,
    verbose=1,
    callbacks=None,
):
    """Random search over a hypermodel's space; resumable.

    The tuner's state lives in `directory/project_name`: the oracle
    (`oracle.json`) and one `trial_*/` folder per trial. With `resume=True`
    keras-tuner reloads it (`overwrite=False`): finished trials are not run
    again, a trial that was interrupted is run again first, and the search
    goes on until `max_trials` trials exist (so a larger `max_trials` extends
    a finished search). With `resume=False` the project is deleted and the
    search starts afresh. Trials stop at a NaN loss (`TerminateOnNaN`).

    Args:
        hypermodel: a `keras_tuner.HyperModel` (or `build(hp)` function)
            returning compiled models.
        train_ds: training data.
        val_ds: validation data (the objective is measured on it).
        max_trials: total number of trials of the search.
        directory: parent folder of the project.
        project_name: name of the project folder.
        epochs: epochs per trial.
        resume: continue the search in `directory/project_name`.
        objective: metric to optimise, e.g. `"val_accuracy"` (maximised) or
            `"val_loss"` (minimised), or a `keras_tuner.Objective`.
        seed: seed of the random search.
        verbose: `fit` verbosity during trials.
        callbacks: extra callbacks for every trial's `fit`.

    Returns:
        The `keras_tuner.RandomSearch` tuner (see `get_best_hyperparameters`,
        `get_best_models`, `results_summary`).
    """
    max_trials = check_positive_int("max_trials", max_trials)
    epochs = check_positive_int("epochs", epochs)
    seed = check_int("seed", seed)
    if not project_name or os.sep in str(project_name):
        raise ValueError(
            "Argument `project_name` must be a folder name. "
            f"Received: project_name={project_name!r}"
        )
    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective=objective,
        max_trials=max_trials,
        seed=seed,
        directory=os.fspath(directory),
        project_name=project_name,
        overwrite=not resume,
    )
    tuner.search(
        train_ds,
        validation_data=val_ds,
        epochs=epochs,
        shuffle=False,
        callbacks=[keras.callbacks.TerminateOnNaN(), *(callbacks or [])],
        verbose=verbose,
    )
    return tuner

"""Hyperparameter search with keras-tuner, resumable across runs."""

import os

import keras
import keras_tuner

from layers.validation import check_float, check_int, check_positive_int
from training.distributed_tuning import (
    CHIEF_ID,
    check_tuner_id,
    default_worker_id,
    parse_address,
    serve_oracle,
    tuner_environment,
)
from training.worker_random_search import WorkerRandomSearch


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
    chief=None,
    worker=None,
    tuner_id=None,
    worker_timeout=60.0,
    heartbeat_seconds=5.0,
    steps_per_epoch=None,
):
    """Random search over a hypermodel's space; resumable, or distributed.

    The tuner's state lives in `directory/project_name`: the oracle
    (`oracle.json`) and one `trial_*/` folder per trial. With `resume=True`
    keras-tuner reloads it (`overwrite=False`): finished trials are not run
    again, a trial that was interrupted is run again first, and the search
    goes on until `max_trials` trials exist (so a larger `max_trials` extends
    a finished search). With `resume=False` the project is deleted and the
    search starts afresh. Trials stop at a NaN loss (`TerminateOnNaN`).

    Distributed (keras-tuner's chief/worker mode, `docs/distributed.md`):
    one process is the chief (`chief="HOST:PORT"`, where it listens): it
    holds the oracle, hands out trials and returns when the search is over,
    training nothing. Each worker (`worker="HOST:PORT"`, the chief's
    address) runs trials until the chief has none left. All processes take
    the same arguments; `directory/project_name` is where the chief keeps
    the oracle and the workers the trials' checkpoints, so with a shared
    folder the chief can load the best models. `resume` is the chief's:
    workers never delete the project. A worker silent for `worker_timeout`
    seconds is dead and its trial goes to another worker; a worker restarted
    with the same `tuner_id` before that resumes its trial from the start.

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
        chief: `"HOST:PORT"` to serve the search on (this process is the
            chief).
        worker: the chief's `"HOST:PORT"` (this process is a worker).
        tuner_id: a worker's id, unique among the workers (default
            `worker-HOST-PID`).
        worker_timeout: chief: seconds of silence after which a worker is
            dead.
        heartbeat_seconds: worker: seconds between two heartbeats while it
            trains (below `worker_timeout`).
        steps_per_epoch: batches of a trial's epoch; needed when `train_ds`
            is endless (detection batches), `None` for one pass.

    Returns:
        The `keras_tuner.RandomSearch` tuner (see `get_best_hyperparameters`,
        `get_best_models`, `results_summary`); a worker's is a
        `WorkerRandomSearch` (see `trials_run`).
    """
    max_trials = check_positive_int("max_trials", max_trials)
    epochs = check_positive_int("epochs", epochs)
    seed = check_int("seed", seed)
    if not project_name or os.sep in str(project_name):
        raise ValueError(
            "Argument `project_name` must be a folder name. "
            f"Received: project_name={project_name!r}"
        )
    if chief is not None and worker is not None:
        raise ValueError(
            "A process is the chief or a worker, not both. Received: "
            f"chief={chief!r}, worker={worker!r}"
        )
    worker_timeout = check_float("worker_timeout", worker_timeout)
    heartbeat_seconds = check_float("heartbeat_seconds", heartbeat_seconds)
    fit = dict(epochs=epochs, verbose=verbose, callbacks=callbacks)
    if steps_per_epoch is not None:
        fit["steps_per_epoch"] = check_positive_int("steps_per_epoch", steps_per_epoch)
    arguments = dict(
        objective=objective,
        max_trials=max_trials,
        seed=seed,
        directory=os.fspath(directory),
        project_name=project_name,
    )
    if chief is not None:
        host, port = parse_address("chief", chief)
        with tuner_environment(CHIEF_ID, host, port):
            tuner = keras_tuner.RandomSearch(
                hypermodel, overwrite=not resume, **arguments
            )
            if resume and os.path.exists(tuner.oracle._get_oracle_fname()):
                tuner.oracle.reload()
            serve_oracle(tuner.oracle, host, port, worker_timeout)
        return tuner
    if worker is not None:
        host, port = parse_address("worker", worker)
        tuner_id = check_tuner_id(tuner_id or default_worker_id())
        with tuner_environment(tuner_id, host, port):
            tuner = WorkerRandomSearch(
                hypermodel,
                overwrite=False,
                heartbeat_seconds=heartbeat_seconds,
                **arguments,
            )
            _search(tuner, train_ds, val_ds, **fit)
        return tuner
    tuner = keras_tuner.RandomSearch(hypermodel, overwrite=not resume, **arguments)
    _search(tuner, train_ds, val_ds, **fit)
    return tuner


def _search(tuner, train_ds, val_ds, callbacks, **fit):
    tuner.search(
        train_ds,
        validation_data=val_ds,
        shuffle=False,
        callbacks=[keras.callbacks.TerminateOnNaN(), *(callbacks or [])],
        **fit,
    )

"""One process of a distributed search, for tests/training/test_distributed_tuning.py.

    python -m tests.training.distributed_tuning_job ROLE ADDRESS DIRECTORY
        [--tuner-id ID] [--max-trials N] [--trial-seconds S]

ROLE is `chief` or `worker`. A trial sleeps `--trial-seconds` in `fit` and
scores `val_accuracy = units / 100`. The last line printed is JSON: the
chief's trials and best trial, or the trials a worker ran.
"""

import argparse
import json
import time

import keras
import keras_tuner

from training.tuning import tune


class Sleeping(keras_tuner.HyperModel):
    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def build(self, hp):
        units = hp.Int("units", 1, 100)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(units)])
        model.compile(loss="mse")
        return model

    def fit(self, hp, model, *args, **kwargs):
        time.sleep(self.seconds)
        return {"val_accuracy": hp.get("units") / 100}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("chief", "worker"))
    parser.add_argument("address")
    parser.add_argument("directory")
    parser.add_argument("--tuner-id")
    parser.add_argument("--max-trials", type=int, default=4)
    parser.add_argument("--trial-seconds", type=float, default=1.0)
    parser.add_argument("--worker-timeout", type=float, default=3.0)
    args = parser.parse_args()
    tuner = tune(
        Sleeping(args.trial_seconds),
        None,
        None,
        max_trials=args.max_trials,
        directory=args.directory,
        project_name="search",
        epochs=1,
        verbose=0,
        chief=args.address if args.role == "chief" else None,
        worker=args.address if args.role == "worker" else None,
        tuner_id=args.tuner_id,
        worker_timeout=args.worker_timeout,
        heartbeat_seconds=0.5,
    )
    if args.role == "chief":
        trials = tuner.oracle.trials
        best = tuner.oracle.get_best_trials(1)[0]
        report = dict(
            trials={i: t.status for i, t in trials.items()},
            scores={i: t.score for i, t in trials.items()},
            best=best.trial_id,
        )
    else:
        report = dict(tuner_id=tuner.tuner_id, trials_run=tuner.trials_run)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()

"""A `RandomSearch` worker that tells the chief it is alive while it trains."""

import threading

import keras_tuner


class WorkerRandomSearch(keras_tuner.RandomSearch):
    """`keras_tuner.RandomSearch` for a worker of a distributed search.

    While a trial trains, a thread calls the chief every `heartbeat_seconds`
    (`CreateTrial` with this worker's tuner id, which returns the trial it
    runs and changes nothing), so that the chief's
    `training.watched_oracle_servicer.WatchedOracleServicer` can tell a
    long epoch from a dead worker. The thread stops before the trial ends.

    Args:
        *args: `keras_tuner.RandomSearch` arguments.
        heartbeat_seconds: seconds between two heartbeats.
        **kwargs: `keras_tuner.RandomSearch` keyword arguments.

    Attributes:
        trials_run: ids of the trials this worker ran, in order.
    """

    def __init__(self, *args, heartbeat_seconds=5.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.heartbeat_seconds = heartbeat_seconds
        self.trials_run = []

    def run_trial(self, trial, *args, **kwargs):
        self.trials_run.append(trial.trial_id)
        print(f"worker {self.tuner_id}: trial {trial.trial_id}", flush=True)
        stop = threading.Event()

        def beat():
            while not stop.wait(self.heartbeat_seconds):
                self.oracle.create_trial(self.tuner_id)

        thread = threading.Thread(target=beat, daemon=True)
        thread.start()
        try:
            return super().run_trial(trial, *args, **kwargs)
        finally:
            stop.set()
            thread.join()

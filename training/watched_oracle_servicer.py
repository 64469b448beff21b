"""keras-tuner's oracle service, with workers that may die."""

import threading
import time

from keras_tuner import synchronized
from keras_tuner.engine import trial as trial_module

# keras-tuner has no public name for its gRPC service (keras-tuner 1.4.8).
from keras_tuner.src.distribute import oracle_chief


class WatchedOracleServicer(oracle_chief.OracleServicer):
    """The chief's oracle service: a dead worker's trial goes to another.

    keras-tuner's own chief (`keras_tuner` 1.4.8, `oracle_chief.start_server`)
    waits for every worker that ever asked for a trial and for every trial
    it handed out. A worker that dies (a killed process, a lost machine)
    never ends its trial, so the search never ends (keras-tuner#915); and
    the live workers stop as soon as `max_trials` trials exist, even when a
    dead worker's trial will never finish. This service:

    - records when each worker (tuner id) last called it; workers call
      `CreateTrial` as a heartbeat while they train
      (`training.worker_random_search.WorkerRandomSearch`);
    - `requeue_silent_workers` puts the trial of a worker silent for
      `worker_timeout` seconds back in the oracle's retry queue (the next
      worker to ask gets it) and forgets that worker;
    - answers a worker that asks for a trial when none is left but others
      are still running with `IDLE` (after `poll_seconds`), not `STOPPED`:
      it stays to take a trial that may come back;
    - drops a trial from the retry queue when its first worker, slow rather
      than dead, ends it after all.

    A worker restarted with the same tuner id before the timeout resumes its
    trial (the oracle returns a tuner's ongoing trial): that trial runs
    again from its first epoch.

    Args:
        oracle: the chief's `keras_tuner.Oracle`.
        worker_timeout: seconds of silence after which a worker is dead.
        poll_seconds: how long an `IDLE` answer waits.
    """

    def __init__(self, oracle, worker_timeout=60.0, poll_seconds=1.0):
        super().__init__(oracle)
        self.worker_timeout = worker_timeout
        self.poll_seconds = poll_seconds
        self.last_seen = {}
        self.requeued = []
        self._lock = threading.Lock()

    def _seen(self, tuner_id):
        with self._lock:
            self.last_seen[tuner_id] = time.monotonic()

    def _tuner_of(self, trial_id):
        for tuner_id, trial in list(self.oracle.ongoing_trials.items()):
            if trial.trial_id == trial_id:
                return tuner_id
        return None

    def CreateTrial(self, request, context):
        self._seen(request.tuner_id)
        trial = self._create_or_wait(request.tuner_id)
        if trial is None:
            time.sleep(self.poll_seconds)
            trial = trial_module.Trial(
                self.oracle.get_space(), status=trial_module.TrialStatus.IDLE
            )
        elif trial.status == trial_module.TrialStatus.STOPPED:
            self.stop_triggered = True
        return oracle_chief.protos.get_service().CreateTrialResponse(
            trial=trial.to_proto()
        )

    def _create_or_wait(self, tuner_id):
        """The oracle's trial for `tuner_id`, or None: wait, others run."""

        @synchronized
        def create(oracle):
            trial = oracle.create_trial(tuner_id)
            if trial.status == trial_module.TrialStatus.STOPPED and (
                oracle.ongoing_trials
            ):
                oracle.tuner_ids.add(tuner_id)
                return None
            return trial

        return create(self.oracle)

    def UpdateTrial(self, request, context):
        tuner_id = self._tuner_of(request.trial_id)
        if tuner_id is not None:
            self._seen(tuner_id)
        return super().UpdateTrial(request, context)

    def EndTrial(self, request, context):
        trial_id = request.trial.trial_id
        tuner_id = self._tuner_of(trial_id)
        if tuner_id is not None:
            self._seen(tuner_id)

        @synchronized
        def unqueue(oracle):
            if trial_id in oracle._retry_queue:
                oracle._retry_queue.remove(trial_id)

        unqueue(self.oracle)
        return super().EndTrial(request, context)

    def requeue_silent_workers(self):
        """Requeues the trials of workers silent for `worker_timeout` seconds.

        Returns:
            A list of `(tuner_id, trial_id or None)` for the workers dropped.
        """
        now = time.monotonic()
        with self._lock:
            silent = [
                tuner_id
                for tuner_id, seen in self.last_seen.items()
                if now - seen > self.worker_timeout
            ]

        @synchronized
        def requeue(oracle):
            dropped = []
            for tuner_id in silent:
                if tuner_id not in oracle.tuner_ids:
                    continue
                oracle.tuner_ids.discard(tuner_id)
                trial = oracle.ongoing_trials.pop(tuner_id, None)
                if trial is not None:
                    oracle._retry_queue.append(trial.trial_id)
                    oracle.save()
                dropped.append((tuner_id, trial and trial.trial_id))
            return dropped

        dropped = requeue(self.oracle)
        with self._lock:
            for tuner_id, _ in dropped:
                self.last_seen.pop(tuner_id, None)
        self.requeued.extend(dropped)
        return dropped

    def finished(self):
        """Whether the search is over: stopped, no trial or worker left."""
        return self.stop_triggered and oracle_chief.exit_chief(self.oracle)

"""keras-tuner's chief/worker mode: addresses, environment, the chief's loop.

keras-tuner runs a distributed search with one chief process, which holds
the oracle and serves it over gRPC, and any number of workers, which ask it
for trials, train them and report back. Each process reads its role from
`KERASTUNER_TUNER_ID` (`"chief"` or a unique worker id) and the chief's
address from `KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT`
(`tuner_environment` sets them). `serve_oracle` replaces keras-tuner's own
chief loop so that a dead worker's trial is run by another
(`WatchedOracleServicer`).
"""

import contextlib
import os
import time
from concurrent import futures

import grpc

# keras-tuner has no public name for its gRPC service (keras-tuner 1.4.8).
from keras_tuner.src.distribute import oracle_chief

from training.watched_oracle_servicer import WatchedOracleServicer

ENVIRONMENT = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
CHIEF_ID = "chief"


def parse_address(flag, address):
    """`(host, port)` of `"HOST:PORT"`; raises a `ValueError` naming `flag`."""
    host, sep, port = str(address).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"{flag} must be HOST:PORT with a port in 1-65535, e.g. "
            f"127.0.0.1:8000. Received: {flag} {address!r}"
        )
    return host, int(port)


def check_tuner_id(tuner_id):
    """Returns `tuner_id` if it can name a worker; raises a `ValueError`."""
    if not isinstance(tuner_id, str) or not tuner_id.strip() or CHIEF_ID in tuner_id:
        raise ValueError(
            "A worker's tuner id must be a non-empty string without "
            f"{CHIEF_ID!r} (keras-tuner takes any id containing it for the "
            f"chief). Received: tuner_id={tuner_id!r}"
        )
    return tuner_id


def default_worker_id():
    """`worker-HOST-PID`: unique per process (restart with `--tuner-id`)."""
    return f"worker-{os.uname().nodename}-{os.getpid()}"


@contextlib.contextmanager
def tuner_environment(tuner_id, host, port):
    """Sets keras-tuner's distribution variables inside the block.

    Args:
        tuner_id: `"chief"` or a worker's id.
        host: the chief's host name or IP address.
        port: the chief's port.
    """
    saved = {name: os.environ.get(name) for name in ENVIRONMENT}
    os.environ.update(
        KERASTUNER_TUNER_ID=tuner_id,
        KERASTUNER_ORACLE_IP=host,
        KERASTUNER_ORACLE_PORT=str(port),
    )
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def serve_oracle(oracle, host, port, worker_timeout=60.0, poll_seconds=1.0, log=print):
    """Serves `oracle` to the workers until the search is over.

    The search is over when a worker was told to stop and no trial and no
    worker is left (as in keras-tuner); a worker silent for `worker_timeout`
    seconds is dropped and its trial requeued.

    Args:
        oracle: the chief tuner's oracle.
        host: address to listen on (e.g. `"0.0.0.0"` or `"127.0.0.1"`).
        port: port to listen on.
        worker_timeout: seconds of silence after which a worker is dead;
            longer than the workers' heartbeat interval.
        poll_seconds: how often the loop checks, and how long a waiting
            worker is put off.
        log: function taking one line (progress messages).

    Returns:
        The `WatchedOracleServicer` (see `requeued`).
    """
    servicer = WatchedOracleServicer(oracle, worker_timeout, poll_seconds)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    oracle_chief.protos.get_service_grpc().add_OracleServicer_to_server(
        servicer, server
    )
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"The chief cannot listen on {host}:{port}.")
    server.start()
    log(f"chief: serving the oracle on {host}:{port}")
    try:
        while not servicer.finished():
            time.sleep(poll_seconds)
            for tuner_id, trial_id in servicer.requeue_silent_workers():
                lost = f"; trial {trial_id} goes back to the queue" if trial_id else ""
                log(f"chief: {tuner_id} silent for {worker_timeout:g} s{lost}")
    finally:
        server.stop(grace=poll_seconds)
    return servicer

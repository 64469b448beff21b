"""keras-tuner's chief/worker search on 127.0.0.1, with a worker killed."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from training.distributed_tuning import check_tuner_id, parse_address
from training.tuning import tune

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOB = "tests.training.distributed_tuning_job"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(role, address, directory, *flags):
    return subprocess.Popen(
        [sys.executable, "-m", JOB, role, address, str(directory), *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def report(process, timeout=120):
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out[-3000:]
    return json.loads(out.strip().splitlines()[-1]), out


@pytest.fixture
def address():
    return f"127.0.0.1:{free_port()}"


def test_chief_and_two_workers_run_every_trial_once(tmp_path, address):
    chief = start("chief", address, tmp_path, "--max-trials", "4")
    workers = [start("worker", address, tmp_path, "--tuner-id", name) for name in "ab"]
    runs = [report(w)[0]["trials_run"] for w in workers]
    result, _ = report(chief)
    ran = sorted(runs[0] + runs[1])
    assert ran == ["0", "1", "2", "3"]
    assert all(runs), runs  # both workers took trials
    assert set(result["trials"].values()) == {"COMPLETED"}
    # The best trial is the one with the highest units (score = units/100).
    best = max(result["scores"], key=result["scores"].get)
    assert result["best"] == best


def test_a_killed_worker_loses_no_trial(tmp_path, address):
    chief = start("chief", address, tmp_path, "--max-trials", "4")
    doomed = start(
        "worker", address, tmp_path, "--tuner-id", "a", "--trial-seconds", "60"
    )
    survivor = start("worker", address, tmp_path, "--tuner-id", "b")
    line = ""
    deadline = time.monotonic() + 120
    while "worker a: trial" not in line:
        line = doomed.stdout.readline()
        assert line or doomed.poll() is None, "worker a ended before a trial"
        assert time.monotonic() < deadline
    lost = line.split()[-1]
    doomed.kill()
    doomed.wait()
    survived, _ = report(survivor)
    result, chief_log = report(chief)
    # The killed worker's trial was run again by the survivor, and ended.
    assert lost in survived["trials_run"]
    assert sorted(survived["trials_run"]) == ["0", "1", "2", "3"]
    assert set(result["trials"].values()) == {"COMPLETED"}
    assert f"a silent for 3 s; trial {lost} goes back to the queue" in chief_log


@pytest.mark.parametrize("address", ["", "host", "host:", ":80", "h:0", "h:99999"])
def test_bad_address(address):
    with pytest.raises(ValueError, match="--chief must be HOST:PORT"):
        parse_address("--chief", address)


def test_address_forms():
    assert parse_address("--worker", "10.0.0.2:8000") == ("10.0.0.2", 8000)
    assert parse_address("--worker", "[::1]:8000") == ("::1", 8000)


@pytest.mark.parametrize("tuner_id", ["", " ", "chief", "my-chief-2", 3])
def test_bad_tuner_id(tuner_id):
    with pytest.raises(ValueError, match="tuner id"):
        check_tuner_id(tuner_id)


def test_chief_and_worker_at_once():
    with pytest.raises(ValueError, match="chief or a worker, not both"):
        tune(None, None, None, 1, "d", "p", 1, chief="h:1", worker="h:1")


@pytest.mark.parametrize("name", ["worker_timeout", "heartbeat_seconds"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan")])
def test_bad_times(name, value):
    with pytest.raises(ValueError, match=name):
        tune(None, None, None, 1, "d", "p", 1, **{name: value})

"""Data-parallel `zoo train --strategy multiworker` on two processes."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.training.mnist_cache import mnist_data_dir
from tests.training.test_distributed_tuning import free_port
from training.distribution import read_tf_config, start_distribution, worker_output

MODEL = "cbam_cnn_tiny"


def tf_config(workers, index):
    return json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    )


def train(output, *flags, env=None):
    argv = [sys.executable, "-m", "zoo", "train", MODEL, "--dataset", "mnist"]
    argv += ["--data-dir", mnist_data_dir(), "--train-split", "train[:128]"]
    argv += ["--test-split", "test[:64]", "--batch-size", "32", "--epochs", "1"]
    argv += ["--no-augmentation", "--verbose", "0", "--output", str(output)]
    environment = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [*argv, *flags],
        env={**environment, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process):
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-3000:]
    return out


def weights(path):
    import zoo  # noqa: F401  (registers the layers)

    return [np.asarray(w) for w in keras.saving.load_model(path).get_weights()]


@pytest.mark.slow  # three JAX processes: about 3 minutes on 2 cores
def test_two_workers_give_the_weights_of_one_process(tmp_path):
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    multi = tmp_path / "multi"
    runs = [
        train(
            multi, "--strategy", "multiworker", env={"TF_CONFIG": tf_config(workers, i)}
        )
        for i in range(2)
    ]
    outs = [finish(run) for run in runs]
    single = finish(train(tmp_path / "single"))
    assert "(worker 1 of 2)" in outs[1]
    chief = weights(multi / "model.keras")
    other = weights(multi / "workers" / "worker-1" / "model.keras")
    alone = weights(tmp_path / "single" / "model.keras")
    for a, b, c in zip(chief, other, alone, strict=True):
        np.testing.assert_array_equal(a, b)  # one model, on both workers
        np.testing.assert_allclose(a, c, atol=1e-5)
    # The test metrics are the same too (each process tests on all of it).
    assert outs[0].splitlines()[-1] == single.splitlines()[-1]


@pytest.mark.parametrize(
    "text, why",
    [
        (None, "it is not set"),
        ("{", "JSONDecodeError"),
        ('{"cluster": {}}', "KeyError"),
        (tf_config(["a:1"], 1), "index 1 is not in the 1 workers"),
        (tf_config(["a:1"], "0"), "integer index"),
        (
            '{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": '
            '{"type": "worker", "index": 0}}',
            "only workers",
        ),
    ],
)
def test_bad_tf_config(text, why):
    environ = {} if text is None else {"TF_CONFIG": text}
    with pytest.raises(ValueError, match="TF_CONFIG must describe") as info:
        read_tf_config(environ)
    assert why in str(info.value)


def test_tf_config():
    assert read_tf_config({"TF_CONFIG": tf_config(["a:1", "b:2"], 1)}) == (
        ["a:1", "b:2"],
        1,
    )


def test_no_strategy_is_one_process():
    _, index, workers = start_distribution("none")
    assert (index, workers) == (0, 1)
    with pytest.raises(ValueError, match="strategy"):
        start_distribution("mirrored")


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TF refusal")
def test_tensorflow_backend_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", tf_config(["a:1", "b:2"], 0))
    with pytest.raises(ValueError, match="KERAS_BACKEND=jax.*keras#20585|20585"):
        start_distribution("multiworker")


def test_worker_output():
    assert worker_output("runs/x", 0) == "runs/x"
    assert worker_output("runs/x", 2) == os.path.join("runs/x", "workers", "worker-2")

import os
import subprocess
import sys

import keras
import pytest

from tests.training.mnist_cache import mnist_data_dir
from zoo import main_job

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the main job exports a SavedModel"
)


def test_next_version(tmp_path):
    assert main_job.next_version(tmp_path / "absent") == 1
    for name in ("1", "3", "notes", "10x"):
        (tmp_path / name).mkdir()
    assert main_job.next_version(tmp_path) == 4


def test_tiny_main_job_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative --output and --saved-models, as in make demo
    argv = ["--model", "cbam_cnn_tiny", "--epochs", "1", "--batch-size", "64"]
    argv += ["--train-examples", "256", "--test-examples", "300"]
    # Mixed precision, so that its export and TensorFlow-only reload are checked.
    argv += ["--precision", "mixed_bfloat16"]
    argv += ["--data-dir", mnist_data_dir(), "--output", "run"]
    argv += ["--saved-models", "saved", "--verbose", "0"]
    results = main_job.run(main_job.build_parser().parse_args(argv))
    saved = tmp_path / "saved" / "cbam_cnn_tiny" / "1"
    assert os.path.samefile(results["saved_model"], saved)
    assert (saved / "saved_model.pb").is_file()
    config = (tmp_path / "saved" / "models.config").read_text()
    assert 'name: "cbam_cnn_tiny"' in config
    assert results["reload_modules"] == [], "the reloading process imported our code"
    assert abs(results["reloaded_accuracy"] - results["test_accuracy"]) <= 1 / 300
    with open(results["figure"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(results["figure"]) > 10_000
    out = capsys.readouterr().out
    assert f"test accuracy: {results['test_accuracy']:.4f}" in out
    assert f"test accuracy: {results['reloaded_accuracy']:.4f}" in out
    assert not (tmp_path / "run" / "test_digits.npz").exists()


@pytest.mark.slow
def test_main_job_command(tmp_path):
    argv = [sys.executable, "-m", "zoo.main_job", "--epochs", "1"]
    argv += ["--train-examples", "512", "--test-examples", "500"]
    argv += ["--data-dir", mnist_data_dir(), "--output", str(tmp_path / "run")]
    argv += ["--saved-models", str(tmp_path / "saved")]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reloaded SavedModel" in result.stdout
    assert (tmp_path / "saved" / "cbam_cnn_small" / "1" / "saved_model.pb").is_file()

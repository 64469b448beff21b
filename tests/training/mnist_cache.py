"""MNIST prepared once from the repository's original files, for the tests."""

import fcntl
import gzip
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
MANUAL_DIR = REPO / "data" / "mnist"


def mnist_data_dir():
    """A tfds data directory holding prepared MNIST (`$TFDS_DATA_DIR` or
    `.cache/tfds` in the repository, prepared offline on first use)."""
    from training.data_source import prepare

    data_dir = os.environ.get("TFDS_DATA_DIR") or str(REPO / ".cache" / "tfds")
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, ".mnist.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        prepare("mnist", data_dir, MANUAL_DIR)
    return data_dir


def read_idx(split):
    """Raw MNIST `(images uint8 (N, 28, 28), labels uint8 (N,))` from the IDX files."""
    prefix = "t10k" if split == "test" else "train"
    with gzip.open(MANUAL_DIR / f"{prefix}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(MANUAL_DIR / f"{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels

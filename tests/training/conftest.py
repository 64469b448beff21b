import pytest

from tests.training.mnist_cache import mnist_data_dir


@pytest.fixture(scope="session")
def mnist_dir():
    return mnist_data_dir()


@pytest.fixture(autouse=True)
def _no_manual_dir_env(monkeypatch):
    monkeypatch.delenv("ZOO_MANUAL_DIR", raising=False)

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A fresh runs folder for each test."""
    d = tmp_path / "sciml-runs"
    monkeypatch.setenv("SCIML_RUNS_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_configure(config):
    os.environ.setdefault("PYTHONHASHSEED", "0")

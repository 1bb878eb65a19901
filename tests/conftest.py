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


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small torch runs: one intra-op thread is faster, and on a shared 2-core machine a
    second spinning thread made them many times slower. Restored after the module."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_configure(config):
    os.environ.setdefault("PYTHONHASHSEED", "0")


def pytest_addoption(parser):
    parser.addoption(
        "--seed-shift", type=int, default=0,
        help="add this to the seed of every engine a test builds (bench/seed_sweep.py runs the "
             "statistical tests over many seeds this way, to measure their k-of-n bounds)")


@pytest.fixture(autouse=True)
def shifted_engine_seeds(request, monkeypatch):
    """With ``--seed-shift k``, every engine a test builds gets ``seed + k`` (tests/seeds.py);
    off (k = 0) in the normal suite."""
    shift = request.config.getoption("--seed-shift")
    if shift:
        import seeds

        monkeypatch.setenv(seeds.ENV, str(shift))  # the example notebooks' kernels shift theirs too
        seeds.shift_engine_seeds(shift, monkeypatch.setattr)
    yield


@pytest.fixture(autouse=True)
def isolated_jobs():
    """Each test starts with an empty job registry (names are unique per kernel, and
    the test session is one kernel); jobs a test left running are stopped."""
    from sciml_lab.runtime import job as jobmod

    yield
    for j in list(jobmod._JOBS.values()):
        if j is not None and j.status in ("queued", "running"):
            j.stop(grace=2.0)
            j.wait(15)
    jobmod._JOBS.clear()


@pytest.fixture(scope="session")
def ipython_shell():
    """One real IPython shell for the whole session (IPython allows one per process),
    with ``%load_ext sciml_lab`` done."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or InteractiveShell.instance()  # None when an earlier test started it
    ip.run_line_magic("load_ext", "sciml_lab")
    return ip

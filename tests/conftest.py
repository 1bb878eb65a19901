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


# Files that each run one long thing end to end (an example notebook in its own kernel, JupyterLab
# and Chromium, a wheel build, a second venv), longest first. ``--dist loadfile`` hands whole files
# to the two workers, and xdist's default order is by number of tests, largest first: these
# one-test files came last, so the suite ended with one worker on a notebook and the other idle.
# Handed out first, the long files are shared between the workers and the many short files fill in
# behind them. The order only moves files in the queue; refresh it from ``--durations`` (seconds
# below: a fresh 2-core machine, 2026-12-02).
LONG_FILES = (
    "tests/test_browser_engines.py",     # 93 (two tests)
    "tests/test_calibrate_notebook.py",  # 53
    "tests/test_browser_views.py",       # 49
    "tests/test_notebooks.py",           # 29 (two tests)
    "tests/test_emulate_notebook.py",    # 23
    "tests/test_browser.py",             # 18
    "tests/test_flowmc_notebook.py",     # 18
    "tests/test_symreg_notebook.py",     # 13
    "tests/test_arviz1.py",
    "tests/test_packaging.py",
)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with LONG_FILES at the head of the queue (any other mode: xdist's own)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongFilesFirst(LoadFileScheduling):
        def _assign_work_unit(self, node):
            if not getattr(self, "_long_first", False):  # once, before the first file is handed out
                self._long_first = True
                for scope in reversed([s for s in LONG_FILES if s in self.workqueue]):
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongFilesFirst(config, log)


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

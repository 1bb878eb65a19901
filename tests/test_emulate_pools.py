"""Specification of the emulator's fan-out of simulator calls (threads, processes, Dask)
and of its batch acquisitions (max-variance and integrated variance reduction).

CPU only, small budgets. A GIL-bound simulator (a pure-Python busy loop) reports its
process id, so the tests see where each call ran.
"""

from __future__ import annotations

import copy
import os
import threading

import numpy as np
import pytest
import torch

from sciml_lab.emulate import EmulateEngine
from sciml_lab.emulate.design import candidates, integrated_variance, select_batch
from sciml_lab.emulate.gp import ExactGP

torch.set_num_threads(1)
BOUNDS = {"a": (0.0, 1.0), "b": (0.0, 1.0)}


def gil_bound_simulator(pid_dir, fail_once=False):
    """A pure-Python simulator (holds the GIL ~50 ms) that leaves a file named after
    its process id in ``pid_dir``; with ``fail_once`` the first call at each point
    fails (a marker file makes it so across processes)."""
    def sim(a, b):
        import math as _math
        import os as _os
        import time as _time

        open(_os.path.join(pid_dir, f"pid-{_os.getpid()}"), "w").close()
        if fail_once:
            marker_dir = pid_dir
            marker = _os.path.join(marker_dir, f"{a:.12f}_{b:.12f}")
            if not _os.path.exists(marker):
                open(marker, "w").close()
                raise ConnectionError("licence server busy")
        t0, s = _time.perf_counter(), 0.0
        while _time.perf_counter() - t0 < 0.05:
            s += 1.0
        return _math.sin(3 * a) + b * b
    return sim


def pids_in(folder) -> set[int]:
    return {int(p.name[4:]) for p in folder.glob("pid-*")}


def run_engine(pool, pid_dir, budget=12, fail_once=False):
    eng = EmulateEngine(gil_bound_simulator(str(pid_dir), fail_once), BOUNDS, budget=budget, n_initial=6,
                        batch_size=6, n_workers=2, pool=pool, poll=0.05, device="cpu", seed=0, n_sobol=64,
                        model="gp")
    while not eng.done():
        eng.step()
    return eng


@pytest.fixture(scope="module")
def thread_engine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("thread_pids")
    eng = run_engine("thread", folder)
    assert pids_in(folder) == {os.getpid()}  # threads: all calls in this process
    return eng


def test_process_pool_runs_a_gil_bound_simulator_in_several_processes_with_the_thread_results(thread_engine,
                                                                                                tmp_path):
    eng = run_engine("process", tmp_path)
    pids = pids_in(tmp_path)
    assert len(pids) > 1 and os.getpid() not in pids
    # ordered by run and seeded: the same points and the same outputs as with threads
    np.testing.assert_array_equal(eng.X, thread_engine.X)
    np.testing.assert_array_equal(eng.Y, thread_engine.Y)
    assert eng.simulator._pool is None  # the worker processes were released when the budget was spent


def test_process_pool_retries_a_failed_call_once(tmp_path):
    eng = run_engine("process", tmp_path, budget=6, fail_once=True)
    d = eng.snapshot()["design"]
    assert not d["failed"].values.any() and np.all(d["attempts"].values == 2)


def test_an_unpicklable_simulator_with_a_process_pool_names_the_argument():
    lock = threading.Lock()

    def sim(a, b):
        with lock:
            return a + b

    with pytest.raises(ValueError, match=r"simulator: pool='process'.*picklable"):
        EmulateEngine(sim, BOUNDS, pool="process")
    with pytest.raises(ValueError, match="pool: expected 'thread', 'process', 'dask'"):
        EmulateEngine(sim, BOUNDS, pool="mpi")


@pytest.mark.parametrize("processes", [False, True])
def test_dask_client_runs_the_simulator_with_the_thread_results(thread_engine, processes, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        eng = run_engine(client, tmp_path, fail_once=True)
    d = eng.snapshot()["design"]
    assert not d["failed"].values.any() and np.all(d["attempts"].values == 2)  # each first call failed, retried
    np.testing.assert_array_equal(eng.X, thread_engine.X)
    np.testing.assert_array_equal(eng.Y, thread_engine.Y)
    if processes:
        assert len(pids_in(tmp_path) - {os.getpid()}) > 1
    assert eng.config()["pool"] == "dask"


# ----------------------------------------------------------------------------- acquisitions
@pytest.fixture(scope="module")
def gp_and_points():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(30, 3, generator=g, dtype=torch.float64)
    y = torch.sin(3 * x[:, :1]) + x[:, 1:2] ** 2
    gp = ExactGP(3).fit(x, (y - y.mean()) / y.std(), generator=g)
    cand = torch.as_tensor(candidates(1024, 3, seed=1))
    ref = torch.as_tensor(candidates(1024, 3, seed=2))
    return gp, x, cand, ref


def integrated_variance_after(gp, x, new, ref) -> float:
    """The GP's integrated variance once conditioned on ``new`` (values do not matter)."""
    gp = copy.deepcopy(gp)
    xb = torch.cat([x, torch.as_tensor(new)])
    gp.condition(xb, torch.zeros(len(xb), 1, dtype=torch.float64))
    return float(integrated_variance(gp, ref))


def test_ivr_batch_lowers_integrated_variance_more_than_random_or_max_variance_points(gp_and_points):
    gp, x, cand, ref = gp_and_points
    ivr = select_batch(gp, x, cand, 8, acquisition="ivr", reference=ref)
    var = select_batch(gp, x, cand, 8, acquisition="variance")
    rng = np.random.default_rng(0)
    randoms = [integrated_variance_after(gp, x, rng.uniform(size=(8, 3)), ref) for _ in range(5)]
    after_ivr = integrated_variance_after(gp, x, ivr, ref)
    assert after_ivr < min(randoms)
    # greedy IVR optimises this very quantity; max variance only approximately
    assert after_ivr <= integrated_variance_after(gp, x, var, ref)


def test_ivr_batch_is_deterministic_and_distinct(gp_and_points):
    gp, x, cand, ref = gp_and_points
    a = select_batch(gp, x, cand, 8, acquisition="ivr", reference=ref)
    b = select_batch(gp, x, cand, 8, acquisition="ivr", reference=ref)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a, axis=0)) == 8


def test_ivr_rank_one_updates_match_a_refit_posterior(gp_and_points):
    """The fantasy update inside a batch is exact: the variance it leaves at the last
    pick equals that of the GP conditioned on the earlier picks."""
    from sciml_lab.emulate.design import _Fantasy

    gp, x, cand, ref = gp_and_points
    fantasy = _Fantasy(gp, cand.to(gp.x_train))
    for j in (3, 10, 50):
        fantasy.condition_on(j)
    g2 = copy.deepcopy(gp)
    xb = torch.cat([x, cand[[3, 10, 50]]])
    g2.condition(xb, torch.zeros(len(xb), 1, dtype=torch.float64))
    _, var = g2(cand)
    # atol: at the picks themselves both are ~1e-9 (noise level) of a signal variance ~1,
    # where cancellation leaves round-off of that order
    torch.testing.assert_close(fantasy.var[0], var[:, 0], rtol=1e-5, atol=1e-7)


def test_engine_runs_with_each_acquisition_and_rejects_an_unknown_one():
    for acq in ("ivr", "variance"):
        eng = EmulateEngine(lambda a, b: np.sin(3 * a) + b, BOUNDS, budget=20, n_initial=8, batch_size=6,
                            acquisition=acq, device="cpu", poll=0.01, n_sobol=64)
        while not eng.done():
            m = eng.step()
        assert m["runs"] == 20 and m["nrmse"] < 0.05
    with pytest.raises(ValueError, match="acquisition"):
        EmulateEngine(lambda a: a, {"a": (0, 1)}, acquisition="ei")


# ----------------------------------------------------------------------------- timeouts
def hang_when_a_is_large(pid_dir):
    """A simulator that never returns (sleeps an hour) where a > 0.75, leaving a file
    named after the process that hangs; elsewhere a quick smooth function."""
    def sim(a, b):
        import math as _math
        import os as _os
        import time as _time

        if a > 0.75:
            open(_os.path.join(pid_dir, f"hang-{_os.getpid()}"), "w").close()
            _time.sleep(3600)
        return _math.sin(3 * a) + b * b
    return sim


def hanging_pids(folder) -> set[int]:
    return {int(p.name[5:]) for p in folder.glob("hang-*")}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (killed, not reaped yet) counts as dead
        return f.read().split(")")[-1].split()[0] != "Z"


def run_with_timeout(pool, pid_dir, timeout=1.0):
    eng = EmulateEngine(hang_when_a_is_large(str(pid_dir)), BOUNDS, budget=10, n_initial=6, batch_size=4,
                        n_workers=2, pool=pool, timeout=timeout, poll=0.05, device="cpu", seed=0, n_sobol=64,
                        model="gp")
    for _ in range(100_000):  # each call ends within the timeout, so this ends
        if eng.done():
            break
        eng.step()
    return eng


@pytest.mark.parametrize("pool", ["thread", "process", "dask"])
def test_a_call_past_the_timeout_is_a_failed_run_with_the_timeout_as_its_error(pool, tmp_path):
    if pool == "dask":
        distributed = pytest.importorskip("distributed")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
                as cluster, distributed.Client(cluster) as client:
            eng = run_with_timeout(client, tmp_path)
    else:
        eng = run_with_timeout(pool, tmp_path)
    hung = eng.X[:, 0] > 0.75
    assert eng.done() and eng.n_runs == 10 and 0 < hung.sum() < 10  # the design has both kinds of points
    np.testing.assert_array_equal(eng.status == 1, hung)  # exactly the hanging calls failed...
    assert np.all(eng.attempts[hung] == 2)  # ...after one retry, like a call that raises
    for i in np.flatnonzero(hung):
        assert eng.errors[i].startswith("TimeoutError: the simulator call did not return within timeout=1 s")
    assert eng.config()["timeout"] == 1.0
    if pool == "process":  # the processes that hung were killed, not left running
        pids = hanging_pids(tmp_path)
        assert len(pids) == 2 * hung.sum() and not any(alive(p) for p in pids)


def test_simulator_threads_are_daemons_and_the_timeout_is_checked(tmp_path):
    from sciml_lab.emulate.simulator import Simulator, SimulatorRun

    sim = Simulator(hang_when_a_is_large(str(tmp_path)), ["a", "b"], n_workers=2)
    run = SimulatorRun(0, np.zeros(2), np.array([0.9, 0.0]))
    sim.submit(run)
    threads = [t for t in threading.enumerate() if t.name.startswith("sciml-sim")]
    assert threads and all(t.daemon for t in threads)  # a hanging call cannot keep the interpreter alive
    sim.shutdown()
    for bad in (0, -1.0, float("nan"), float("inf"), "5", True):
        with pytest.raises(ValueError, match=r"timeout: expected None or a positive number of seconds"):
            EmulateEngine(lambda a, b: a, BOUNDS, timeout=bad)

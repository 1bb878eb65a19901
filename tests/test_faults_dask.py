"""Fault injection: a Dask worker lost or killed mid-job, and simulators that never return.

Real parts only: a ``distributed.LocalCluster`` (2 worker processes x 1 thread) whose
worker processes are killed by PID (``client.run(os.getpid)`` + ``os.kill``), run folders
on disk, and a real Python subprocess for the interpreter-exit check. The durations
printed (``-s``) are measurements, not assertions.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from engines import StepEngine, reference_total
from sciml_lab.runtime import launch
from sciml_lab.runtime.store import read_result

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def client():
    """A small real cluster per test (a test kills its workers), shut down afterwards."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def worker_running(client, job) -> tuple[str, int]:
    """Address and PID of the worker process that runs ``job``'s task."""
    key = job._handle.future.key
    box: dict = {}

    def found() -> bool:
        for addr, keys in client.processing().items():
            if key in keys:
                box["addr"] = addr
                return True
        return False

    wait_for(found, 30, "the job's task to be processing on a worker")
    return box["addr"], client.run(os.getpid)[box["addr"]]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a killed child not yet reaped by its nanny is a zombie: dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def logged_steps(run: Path) -> list[int]:
    with open(run / "events.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["step"] for line in f if line.strip()]


def stat_of(path: Path) -> tuple[int, int]:
    s = path.stat()
    return s.st_mtime_ns, s.st_size


# ----------------------------------------------------------------------------- stop
class DeafEngine(StepEngine):
    """Step ``deaf_at`` leaves a marker file, then sleeps ``deaf_s`` without looking at
    stop requests (the other steps take ``delay``)."""

    def __init__(self, marker: str, deaf_at: int, deaf_s: float, **kw):
        super().__init__(**kw)
        self.marker, self.deaf_at, self.deaf_s = marker, deaf_at, deaf_s

    def step(self):
        if self.n + 1 == self.deaf_at:
            open(self.marker, "w").close()
            time.sleep(self.deaf_s)
        return super().step()


def test_dask_stop_restarts_the_worker_of_a_step_that_ignores_it_and_nothing_is_written_after(client, runs,
                                                                                             tmp_path):
    from sciml_lab.runtime import DaskExecutor

    marker = tmp_path / "in-the-deaf-step"
    job = launch(DeafEngine(str(marker), deaf_at=20, deaf_s=4.0, steps=1000, delay=0.02), name="deaf",
                 executor=DaskExecutor(client), save_every=0.1)
    wait_for(marker.exists, 120, "the deaf step")
    addr, pid = worker_running(client, job)
    t0 = time.monotonic()
    job.stop(grace=0.5)
    assert job.wait(60) == "stopped"
    stop_s = time.monotonic() - t0
    assert not pid_alive(pid), "the worker whose step ignored the stop is still running"
    run = runs / "deaf"
    files = {name: stat_of(run / name) for name in ("result.nc", "checkpoint.pt", "job.json", "events.jsonl")}
    time.sleep(5.0)  # longer than the deaf step: the old task would have finished it and saved by now
    assert {name: stat_of(run / name) for name in files} == files, "the stopped job's files were written again"
    assert json.loads((run / "job.json").read_text())["status"] == "stopped"
    result = read_result(run / "result.nc")
    assert result["trace"].sizes["step"] == logged_steps(run)[-1] <= job.step
    # the cluster is whole again (the worker was restarted) and takes the next job
    wait_for(lambda: len(client.scheduler_info()["workers"]) == 2, 60, "the restarted worker")
    nxt = launch(StepEngine(steps=5), name="after", executor=DaskExecutor(client), save_every=0.1)
    assert nxt.wait(120) == "done" and nxt.step == 5
    print(f"\ndask stop of a deaf step: stopped in {stop_s:.2f} s (grace 0.5 s), worker {pid} gone, "
          f"no write in the 5 s after")


def test_dask_stop_of_a_responsive_task_keeps_its_worker(client, runs):
    from sciml_lab.runtime import DaskExecutor

    job = launch(StepEngine(steps=100_000, delay=0.01), name="polite", executor=DaskExecutor(client), save_every=0.2)
    wait_for(lambda: job.step >= 10, 120, "ten steps")
    addr, pid = worker_running(client, job)
    t0 = time.monotonic()
    job.stop(grace=30)
    assert job.wait(60) == "stopped"
    print(f"\ndask stop of a responsive task: {time.monotonic() - t0:.2f} s")
    assert pid_alive(pid) and client.run(os.getpid)[addr] == pid  # stopped between steps: no restart
    run = runs / "polite"
    assert read_result(run / "result.nc")["trace"].sizes["step"] == job.step == logged_steps(run)[-1]


# ----------------------------------------------------------------------------- lost worker
class ResultWatcher:
    """Reads result.nc in a loop and keeps the step counts it saw (to catch it going backwards)."""

    def __init__(self, path: Path):
        self.path, self.seen, self._stop = path, [], threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.seen.append(int(read_result(self.path)["trace"].sizes["step"]))
            except Exception:  # not written yet
                pass
            time.sleep(0.02)

    def close(self) -> list[int]:
        self._stop.set()
        self.thread.join(10)
        return self.seen


def kill_worker_mid_job(client, job, runs, at_step: int) -> tuple[int, int]:
    run = runs / job.name
    wait_for(lambda: job.step >= at_step and (run / "checkpoint.pt").exists(), 120, f"step {at_step}")
    addr, pid = worker_running(client, job)
    step_at_kill = job.step
    os.kill(pid, signal.SIGKILL)
    return pid, step_at_kill


def test_a_lost_dask_worker_resumes_the_job_from_its_checkpoint_without_duplicate_steps(client, runs):
    from sciml_lab.runtime import DaskExecutor

    n = 150
    job = launch(StepEngine(steps=n, delay=0.02), name="lost", executor=DaskExecutor(client), save_every=0.2)
    run = runs / "lost"
    wait_for(lambda: (run / "result.nc").exists(), 120, "result.nc")
    watcher = ResultWatcher(run / "result.nc")
    pid, step_at_kill = kill_worker_mid_job(client, job, runs, at_step=40)
    assert job.wait(180) == "done"
    seen = watcher.close()
    steps = logged_steps(run)
    dupes = len(steps) - len(set(steps))
    record = json.loads((run / "job.json").read_text())
    print(f"\nlost worker at step {step_at_kill}: {dupes} duplicate steps in events.jsonl, "
          f"resumed from step {record.get('resumed_from')}, result.nc steps seen {min(seen)}..{max(seen)}")
    assert dupes == 0 and steps == list(range(1, n + 1))
    live = [e.step for e in job.events if e.metrics]
    assert live == sorted(set(live)) and live[-1] == n  # the kernel's stream has no step twice either
    assert all(b >= a for a, b in zip(seen, seen[1:])), "result.nc went backwards"
    # the worker runs ahead of the kernel's view by up to one event flush (0.2 s, ~10 steps of 0.02 s)
    # plus the kill's latency, and may checkpoint there: the bound allows 0.5 s of steps
    assert record["worker_losses"] == 1 and 1 <= record["resumed_from"] <= step_at_kill + 25
    result = read_result(run / "result.nc")
    assert result["trace"].sizes["step"] == n
    # the same random stream as an uninterrupted run: the checkpoint carried it
    assert result["trace"].attrs["total"] == pytest.approx(reference_total(n), abs=1e-12)


def test_a_worker_lost_while_a_job_runs_an_extension_resumes_it_without_paying_twice(client, runs):
    from sciml_lab.runtime import DaskExecutor

    job = launch(StepEngine(steps=30, delay=0.02), name="ext", executor=DaskExecutor(client), save_every=0.2)
    assert job.wait(120) == "done"
    job.extend(steps=120)  # a new segment: resumes from the checkpoint, then adds the budget
    pid, step_at_kill = kill_worker_mid_job(client, job, runs, at_step=70)
    assert job.wait(180) == "done"
    steps = logged_steps(runs / "ext")
    assert steps == list(range(1, 151))  # 150 steps: the extension's budget was applied once
    result = read_result(runs / "ext" / "result.nc")
    assert result["trace"].attrs["total"] == pytest.approx(reference_total(150), abs=1e-12)
    assert json.loads((runs / "ext" / "job.json").read_text())["resumed_from"] >= 30


def test_a_lost_dask_worker_fails_the_job_with_the_loss_as_its_reason_when_no_resume_is_allowed(client, runs):
    from sciml_lab.runtime import DaskExecutor

    job = launch(StepEngine(steps=100_000, delay=0.02), name="once", executor=DaskExecutor(client, worker_losses=0),
                 save_every=0.2)
    run = runs / "once"
    pid, step_at_kill = kill_worker_mid_job(client, job, runs, at_step=20)
    assert job.wait(120) == "failed"
    assert "worker" in job.error and "lost" in job.error
    steps = logged_steps(run)
    time.sleep(1.0)  # a silent re-run would be writing again by now
    assert logged_steps(run) == steps and len(steps) == len(set(steps))
    record = json.loads((run / "job.json").read_text())
    assert record["status"] == "failed" and "lost" in record["error"]
    kept = read_result(run / "result.nc")["trace"].sizes["step"]
    assert 1 <= kept <= steps[-1]  # what it produced before the loss is kept


def test_a_task_the_scheduler_gives_up_on_fails_the_job_on_disk_too(runs):
    """With ``allowed-failures`` 0 the scheduler itself fails the task at the first loss
    (KilledWorker): the job fails with the loss as its reason, in job.json as well."""
    import dask

    from sciml_lab.runtime import DaskExecutor

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        job = launch(StepEngine(steps=100_000, delay=0.02), name="given-up", executor=DaskExecutor(client),
                     save_every=0.2)
        kill_worker_mid_job(client, job, runs, at_step=10)
        assert job.wait(120) == "failed"
    assert "KilledWorker" in job.error and "lost" in job.error
    record = json.loads((runs / "given-up" / "job.json").read_text())
    assert record["status"] == "failed" and "KilledWorker" in record["error"]


# ----------------------------------------------------------------------------- hanging simulator
HANGING_JOB = textwrap.dedent("""
    import sys, time
    from sciml_lab.emulate import EmulateEngine
    from sciml_lab.runtime import launch

    def simulator(a, b):
        time.sleep(10 ** 6)  # never returns

    eng = EmulateEngine(simulator, {"a": (0, 1), "b": (0, 1)}, budget=8, n_initial=4, n_workers=2,
                        pool=sys.argv[1], poll=0.1, device="cpu")
    job = launch(eng, store=False)
    while eng.simulator is None or eng.simulator._pool is None or not eng.pending:
        time.sleep(0.05)
    time.sleep(1.0)  # the calls are running (and hanging)
    t0 = time.monotonic()
    job.stop()
    status = job.wait(60)
    print("STOPPED", status, f"{time.monotonic() - t0:.3f}", flush=True)
""")


def session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` (the script and any worker it started)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.getsid(int(p.name)) == sid and pid_alive(int(p.name)):
                    out.append(int(p.name))
            except OSError:
                pass
    return out


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_script_whose_simulator_hangs_stops_and_exits(pool, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", HANGING_JOB, pool], stdout=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=env, start_new_session=True)
    line, left = "", []
    try:
        line = proc.stdout.readline()
        t_stopped = time.monotonic()
        rc = proc.wait(60)
        exit_s = time.monotonic() - t_stopped
        # worker processes notice their parent is gone and end too
        deadline = time.monotonic() + 30
        while (left := session_members(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        for pid in session_members(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.wait()
    assert line.startswith("STOPPED stopped"), line
    print(f"\nhanging simulator ({pool} pool): stopped in {float(line.split()[2]):.2f} s, "
          f"interpreter exited {'never (killed after 60 s)' if rc is None else f'{exit_s:.2f} s later'}")
    assert rc == 0, "the interpreter did not exit: simulator pool threads keep it alive"
    assert not left, f"processes left running after the script exited: {left}"

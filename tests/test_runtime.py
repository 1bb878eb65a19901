"""The job runtime: states, stop, extend, failure, executors, run store, resume."""

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
import torch
import xarray as xr

import sciml_lab
from sciml_lab.runtime import JobFailedError, launch, read_result
from sciml_lab.kit.protocol import check_budget, parse_criteria
from sciml_lab.runtime.executors import ProcessExecutor

from engines import StepEngine, reference_total

TESTS = Path(__file__).parent


def stop_after(job, seconds):
    """Let ``job`` run for ``seconds``, stop it, check it stopped; returns its step."""
    time.sleep(seconds)
    job.stop()
    assert job.wait(10) == "stopped"
    return job.step


def statuses(job):
    return [e.status for e in job.events if not e.metrics]


# ------------------------------------------------------------------ states
def test_job_runs_to_done_through_every_state(runs):
    job = launch(StepEngine(steps=20), name="basic", start=False)
    assert job.status == "queued"
    job.start()
    assert job.wait(30) == "done"
    assert statuses(job) == ["running", "done"]
    assert job.step == 20 and job.progress == 1.0
    assert [e.step for e in job.events if e.metrics] == list(range(1, 21))
    assert job.result["trace"].attrs["total"] == pytest.approx(reference_total(20), abs=1e-12)
    rec = json.loads((runs / "basic" / "job.json").read_text())
    assert rec["status"] == "done" and rec["step"] == 20 and rec["kind"] == "teststep"
    disk = read_result(runs / "basic" / "result.nc")
    assert disk["trace"].sizes["step"] == 20
    for key in ("sciml_lab_version", "engine", "config", "created", "device", "seed", "wall_time_s"):
        assert key in disk.attrs, key
    assert json.loads(disk.attrs["config"])["steps"] == 20


def test_stop_keeps_partial_result_on_disk(runs):
    job = launch(StepEngine(steps=100_000, delay=0.002), name="stopme")
    n = stop_after(job, 0.5)
    assert 10 < n < 100_000
    disk = read_result(runs / "stopme" / "result.nc")
    assert disk["trace"].sizes["step"] == n  # the stop wrote the final snapshot
    assert json.loads((runs / "stopme" / "job.json").read_text())["status"] == "stopped"
    assert job.result["trace"].sizes["step"] == n


def test_extend_after_done_and_while_running_continue_the_exact_state(runs):
    job = launch(StepEngine(steps=10), name="ext")
    assert job.wait(30) == "done"
    job.extend(steps=5)
    assert job.wait(30) == "done"
    assert job.step == 15
    # while running: the extra budget is added without a restart
    slow = launch(StepEngine(steps=30, delay=0.01), name="ext-running")
    time.sleep(0.1)
    slow.extend(steps=10)
    assert slow.wait(30) == "done"
    assert slow.step == 40
    assert statuses(slow) == ["running", "done"]
    assert job.result["trace"].attrs["total"] == pytest.approx(reference_total(15), abs=1e-12)
    assert slow.result["trace"].attrs["total"] == pytest.approx(reference_total(40), abs=1e-12)


def test_exception_in_step_fails_the_job_and_keeps_what_it_made(runs):
    job = launch(StepEngine(steps=50, fail_at=7), name="boom")
    assert job.wait(30) == "failed"
    assert "FloatingPointError" in job.error and "step 7" in job.error
    assert "Traceback" in job.traceback and "engines.py" in job.traceback
    assert job.data["trace"].sizes["step"] == 6
    with pytest.raises(JobFailedError, match="partial result is in .data"):
        job.result
    rec = json.loads((runs / "boom" / "job.json").read_text())
    assert rec["status"] == "failed" and "FloatingPointError" in rec["error"]
    assert read_result(runs / "boom" / "result.nc")["trace"].sizes["step"] == 6
    # extending resumes from the last checkpoint; the cause is not fixed, so it fails again, the same way
    job.extend(steps=1)
    assert job.wait(30) == "failed"
    assert "step 7" in job.error and job.data["trace"].sizes["step"] == 6


def test_wait_returns_the_status_at_the_timeout(runs):
    job = launch(StepEngine(steps=10_000, delay=0.01), name="slow")
    assert job.wait(0.2) == "running"
    job.stop()
    assert job.wait(10) == "stopped"


def test_data_is_a_fresh_snapshot_while_running(runs):
    job = launch(StepEngine(steps=100_000, delay=0.005), name="fresh", save_every=60)
    time.sleep(0.5)
    d = job.data
    n = d["trace"].sizes["step"]
    assert n >= 20 and abs(n - job.step) <= 5  # taken between two steps just now, not 60 s ago
    job.stop()
    job.wait(10)


def test_subscribers_get_every_event_in_order(runs):
    seen = []
    job = launch(StepEngine(steps=30), name="sub", start=False)
    job.subscribe(lambda j, e: seen.append((e.step, e.status, bool(e.metrics))))
    job.start()
    job.wait(30)
    assert [s for s, _, m in seen if m] == list(range(1, 31))
    assert [st for _, st, m in seen if not m] == ["running", "done"]


# ------------------------------------------------------------------ names and input errors
def test_taken_names_get_a_numbered_suffix(runs):
    (runs / "taken").mkdir(parents=True)  # a run folder left by an earlier kernel
    a = launch(StepEngine(steps=1), name="taken")
    b = launch(StepEngine(steps=1), name="taken")
    assert (a.name, b.name) == ("taken-2", "taken-3")
    assert sciml_lab.get_job("taken-3") is b


def test_bad_arguments_get_specific_errors(runs):
    with pytest.raises(ValueError, match="name: 'a b' is not a valid job name"):
        launch(StepEngine(), name="a b")
    with pytest.raises(ValueError, match="executor: expected 'thread'"):
        launch(StepEngine(), executor="gpu")
    with pytest.raises(TypeError, match="does not implement the Engine protocol"):
        launch(object())
    with pytest.raises(ValueError, match="store=False works only with the thread executor"):
        launch(StepEngine(), executor="process", store=False)
    e = StepEngine()
    with pytest.raises(ValueError, match="no budget word 'loops'; expected one of steps"):
        check_budget(e, {"loops": 3})
    with pytest.raises(ValueError, match="steps must be a positive integer, got -2"):
        check_budget(e, {"steps": -2})
    with pytest.raises(KeyError, match="no job named 'nope'"):
        sciml_lab.get_job("nope")
    with pytest.raises(ValueError, match="until: unknown metric 'rhatt'"):
        parse_criteria("rhatt<1.01", known=("rhat", "ess"))
    assert [str(c) for c in parse_criteria("rhat<1.01 ess>=2000")] == ["rhat<1.01", "ess>=2000"]


# ------------------------------------------------------------------ process executor
def test_process_executor_has_the_same_api_and_events(runs):
    scale = 3.0
    # an engine holding a closure defined here: travels by cloudpickle, like a notebook cell's function

    class Scaled(StepEngine):
        kind = "teststep"

        def step(self):
            m = super().step()
            return {**m, "scaled": scale * m["mean"]}

    job = launch(Scaled(steps=25), name="proc", executor="process", save_every=0.2)
    assert job.wait(60) == "done"
    assert statuses(job) == ["running", "done"]
    evs = [e for e in job.events if e.metrics]
    assert [e.step for e in evs] == list(range(1, 26))
    assert evs[-1].metrics["scaled"] == pytest.approx(3 * evs[-1].metrics["mean"])
    assert job.result["trace"].attrs["total"] == pytest.approx(reference_total(25), abs=1e-12)
    job.extend(steps=5)  # resumes in a fresh subprocess from the checkpoint
    assert job.wait(60) == "done"
    assert job.step == 30
    assert job.result["trace"].attrs["total"] == pytest.approx(reference_total(30), abs=1e-12)


class ThreadCount(StepEngine):
    """Reports the torch thread count its steps run with."""

    kind = "teststep"

    def step(self):
        return {**super().step(), "torch_threads": torch.get_num_threads()}


def test_threads_option_applies_to_the_job_in_every_executor_and_on_resume(runs, monkeypatch):
    # Dask's LocalCluster (used by earlier tests) leaves OMP_NUM_THREADS=1 etc. in os.environ
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    # a fresh interpreter's default, which a process worker without the option keeps
    fresh = int(subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                               capture_output=True, text=True, timeout=120).stdout)
    assert fresh > 1, "the test needs a machine where torch uses more than one thread"
    kernel_threads = torch.get_num_threads()  # other test modules may have set it
    for n in (1, 2):
        job = launch(ThreadCount(steps=3), name=f"t{n}", threads=n)
        assert job.wait(30) == "done"
        assert {e.metrics["torch_threads"] for e in job.events if e.metrics} == {n}
    assert torch.get_num_threads() == kernel_threads  # the kernel's own setting is untouched
    assert json.loads((runs / "t1" / "job.json").read_text())["threads"] == 1

    job = launch(ThreadCount(steps=3), name="p1", executor="process", threads=1, save_every=0.2)
    assert job.wait(60) == "done"
    job.extend(steps=2)  # a fresh worker, resumed from the checkpoint: still one thread
    assert job.wait(60) == "done"
    assert [e.metrics["torch_threads"] for e in job.events if e.metrics] == [1] * 5
    job = launch(ThreadCount(steps=2), name="p0", executor="process", save_every=0.2)
    assert job.wait(60) == "done"
    assert {e.metrics["torch_threads"] for e in job.events if e.metrics} == {fresh}
    for bad in (0, 1.5, True, "2"):
        with pytest.raises(ValueError, match=rf"threads: expected None or an integer >= 1, got {bad!r}"):
            launch(StepEngine(), threads=bad)


def test_process_worker_that_never_connects_fails_the_job_with_a_clear_error(runs, tmp_path, monkeypatch):
    # a real worker program that exits at once, then one that hangs without connecting
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(RuntimeError, match="the process worker exited with code 1 before connecting"):
        launch(StepEngine(), name="dead", executor="process")
    assert sciml_lab.get_job("dead").status == "failed"
    assert json.loads((runs / "dead" / "job.json").read_text())["status"] == "failed"

    sleeper = tmp_path / "sleeper"
    sleeper.write_text("#!/bin/sh\nexec sleep 60\n")
    sleeper.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(sleeper))
    ex = ProcessExecutor()
    ex.connect_timeout = 1.0
    # the sleeper lives 60 s: this message (not "exited ... before connecting") means the 1 s limit acted
    with pytest.raises(RuntimeError, match="the process worker did not connect within 1 s"):
        launch(StepEngine(), name="silent", executor=ex)
    job = sciml_lab.get_job("silent")
    assert job.status == "failed" and "did not connect" in job.error
    assert [t.name for t in threading.enumerate()].count("sciml-accept") == 0  # no waiting thread left


def test_process_stop_kills_a_step_that_does_not_return(runs):
    job = launch(StepEngine(steps=1000, hang_at=6, delay=0.05), name="stubborn", executor="process",
                 save_every=0.01)
    deadline = time.monotonic() + 30
    while job._saved_step < 5 and time.monotonic() < deadline:  # step 5 is on disk
        time.sleep(0.05)
    assert job.step == 5  # now inside step 6, which sleeps for ten minutes
    job.stop(grace=1.0)
    assert job.wait(20) == "stopped"  # the step sleeps ten minutes: only the kill after the grace ends it
    assert job._handle.proc.poll() is not None
    assert job.record["note"] == "killed after the stop grace period"
    rec = json.loads((runs / "stubborn" / "job.json").read_text())
    assert rec["status"] == "stopped"
    # saved after every step that took longer than save_every: everything up to step 5
    assert read_result(runs / "stubborn" / "result.nc")["trace"].sizes["step"] == 5


def test_a_killed_worker_leaves_a_readable_result_and_a_failed_job(runs):
    job = launch(StepEngine(steps=100_000, delay=0.002, payload=200_000), name="killed", executor="process",
                 save_every=0.05)
    deadline = time.monotonic() + 30
    while job.step < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(job._handle.proc.pid, signal.SIGKILL)
    assert job.wait(20) == "failed"
    assert "exited unexpectedly" in job.error
    tree = read_result(runs / "killed" / "result.nc")
    blob = tree["blob"]
    assert float(blob["x"].sum()) == pytest.approx(blob.attrs["checksum"])
    assert json.loads((runs / "killed" / "job.json").read_text())["status"] == "failed"
    # the kernel can still resume it from the last checkpoint
    job2 = sciml_lab.open(runs / "killed")
    checkpoint = torch.load(runs / "killed" / "checkpoint.pt", weights_only=True)
    # the same Job, reloaded from disk: it resumes from the step of its last checkpoint
    assert job2 is job and job2.resumable and job2.step == checkpoint["runtime"]["step"] > 0


# ------------------------------------------------------------------ resume in a new process
def test_resume_from_checkpoint_in_a_new_process(runs):
    job = launch(StepEngine(steps=200, delay=0.005), name="resumable")
    n = stop_after(job, 0.3)
    script = textwrap.dedent(f"""
        import sys, json
        sys.path.insert(0, {str(TESTS)!r})
        import engines, sciml_lab
        job = sciml_lab.open({str(runs / 'resumable')!r})
        assert job.status == "stopped" and job.resumable, job.record
        job.extend(steps=7)
        print(json.dumps({{"status": job.wait(60), "step": job.step,
                           "total": float(job.result["trace"].attrs["total"]),
                           "history": len(job.events)}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["status"] == "done"
    assert 0 < n < 200
    assert got["step"] == 207  # the rest of the budget of 200, plus the 7 paid for after the restart
    assert got["total"] == pytest.approx(reference_total(207), abs=1e-9)  # the same random stream throughout
    assert got["history"] >= 207  # the metric history came back from events.jsonl
    with xr.open_datatree(runs / "resumable" / "result.nc", engine="h5netcdf") as t:
        steps = int(t["trace"].sizes["step"])
        total = float(t["trace"].attrs["total"])
    assert steps == got["step"]
    assert total == pytest.approx(reference_total(steps), abs=1e-9)


def test_open_never_unpickles(runs, tmp_path):
    job = launch(StepEngine(steps=3), name="safe")
    job.wait(30)

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"engine": Evil(), "runtime": {"step": 0, "elapsed_s": 0}}, runs / "safe" / "checkpoint.pt")
    job = sciml_lab.open(runs / "safe")  # what is intact comes back; the checkpoint is refused, not run
    assert not (tmp_path / "pwned").exists()
    assert not job.resumable and job.data["trace"].sizes["step"] == 3
    assert any("checkpoint.pt holds objects other than" in p and "can run code" in p for p in job.problems)
    assert "weights_only" not in " ".join(job.problems) + job.record["not_resumable"]


def test_open_explains_what_is_missing(runs, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a sciml_lab run folder"):
        sciml_lab.open(tmp_path)


# ------------------------------------------------------------------ atomic writes
def test_a_writer_killed_mid_write_never_leaves_a_torn_result(tmp_path):
    path = tmp_path / "result.nc"
    writer = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from engines import StepEngine
        from sciml_lab.runtime.store import write_result
        e = StepEngine(steps=10**9, payload=1_000_000)
        while True:
            e.step()
            write_result(e.snapshot(), {str(path)!r})
            print(e.n, flush=True)
    """)
    import random

    rng = random.Random(0)
    for trial in range(4):
        p = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
        for _ in range(2 + trial):  # let it complete a few writes, then kill it mid-way through another
            p.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.15))
        p.kill()
        p.wait()
        t = read_result(path)
        assert float(t["blob"]["x"].sum()) == pytest.approx(t["blob"].attrs["checksum"])
    # a killed writer may leave its temporary file, a hidden dot-file that never shadows result.nc
    assert sorted(x.name for x in tmp_path.iterdir() if not x.name.startswith(".")) == ["result.nc"]


# ------------------------------------------------------------------ dask executor
@pytest.mark.slow
def test_dask_executor_runs_stops_and_extends_on_a_local_cluster(runs):
    from distributed import Client, LocalCluster

    from sciml_lab.runtime import DaskExecutor

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        ex = DaskExecutor(client)
        job = launch(StepEngine(steps=40, delay=0.005), name="dask", executor=ex, save_every=0.2)
        assert job.wait(60) == "done"
        assert [e.step for e in job.events if e.metrics] == list(range(1, 41))
        assert job.result["trace"].attrs["total"] == pytest.approx(reference_total(40), abs=1e-12)
        job.extend(steps=10)
        assert job.wait(60) == "done" and job.step == 50
        long = launch(StepEngine(steps=100_000, delay=0.005), name="dask-stop", executor=ex, save_every=0.2)
        deadline = time.monotonic() + 30
        while long.step < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        long.stop()
        assert long.wait(30) == "stopped"
        assert read_result(runs / "dask-stop" / "result.nc")["trace"].sizes["step"] == long.step

"""Fault injection: full disks, kills, damaged and crafted run files, hostile names.

Every fault here is real: a 2 MB tmpfs filled to the last byte (mounted by the test,
which needs root), ``SIGKILL`` of real processes, files cut, zeroed or rewritten on
disk, and a real IPython shell. What is asserted is what a scientist would see: the
kernel lives, the job says why it stopped, what is intact comes back, and the run
goes on from its last checkpoint with the same random stream.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pytest
import torch
import xarray as xr

import sciml_lab
from sciml_lab.runtime import launch, read_result
from sciml_lab.kit.protocol import MonitorSpec
from sciml_lab.runtime.registry import register_engine
from sciml_lab.runtime.history import HISTORY_RECENT, ThinnedHistory
from sciml_lab.runtime.store import RunStore, valid_name

from engines import StepEngine, reference_total

TESTS = Path(__file__).parent
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs to fill needs root (CI runs as root)")


def uninterrupted_draws(steps: int, seed: int = 0) -> np.ndarray:
    gen = torch.Generator().manual_seed(seed)
    return np.array([float(torch.randn((), generator=gen, dtype=torch.float64)) for _ in range(steps)])


def python(script: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(TESTS.parent), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@register_engine
class FnEngine:
    """The test engine's random walk, but each draw goes through a user function
    ``fn`` that cannot be stored as data (like flow-MCMC's ``log_prob``)."""

    kind = "testfn"
    budget_words = ("steps",)
    monitor = MonitorSpec()

    def __init__(self, fn, steps: int = 10, seed: int = 0):
        self.fn, self.budget, self.seed, self.device = fn, int(steps), int(seed), "cpu"
        self.gen = torch.Generator().manual_seed(self.seed)
        self.draws: list[float] = []

    def step(self) -> Mapping[str, float]:
        x = float(torch.randn((), generator=self.gen, dtype=torch.float64))
        self.fn(len(self.draws) + 1)  # a buggy fn raises here, after the generator moved on
        self.draws.append(x)
        return {"draw": x}

    def done(self) -> bool:
        return len(self.draws) >= self.budget

    def progress(self) -> float:
        return len(self.draws) / self.budget

    def extend(self, steps: int) -> None:
        self.budget += int(steps)

    def snapshot(self) -> xr.DataTree:
        n = len(self.draws)
        return xr.DataTree.from_dict({"/trace": xr.Dataset({"draw": ("step", np.array(self.draws))},
                                                           coords={"step": np.arange(1, n + 1)})})

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "budget": self.budget, "draws": torch.tensor(self.draws, dtype=torch.float64)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.budget, self.draws = int(state["budget"]), state["draws"].tolist()

    def config(self) -> dict[str, Any]:
        return {"steps": self.budget, "seed": self.seed}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], fn=None, **objects: Any) -> "FnEngine":
        if fn is None:
            raise TypeError("fn: pass the function again, e.g. sciml_lab.open(path, fn=f)")
        return cls(fn, **config)


def fails_at(k: int):
    def fn(i: int) -> None:
        if i == k:
            raise ZeroDivisionError(f"fn broke at step {k}")
    return fn


def fine(i: int) -> None:
    return None


# ----------------------------------------------------------------------------- item 2: a full disk
@ROOT_ONLY
def test_a_full_disk_fails_the_job_keeps_the_result_and_resumes_once_space_is_freed(tmp_path):
    """Before: 5/5 runs died with SIGSEGV inside h5py after ENOSPC. The job runs in a
    child process so that a crash is seen as one (a return code of -11), not as the
    end of the test session."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], check=True)
    try:
        out = python(f"""
            import json, os, sys, time
            sys.path.insert(0, {str(TESTS)!r})
            from engines import StepEngine
            from sciml_lab.runtime import launch, read_result
            disk = {str(disk)!r}
            report = []
            for trial in range(3):
                job = launch(StepEngine(steps=300, delay=0.002, payload=20_000, seed=trial), name=f"full{{trial}}",
                             runs_dir=os.path.join(disk, "runs"), save_every=0.01)
                while job.step < 20 and job.status == "running":
                    time.sleep(0.01)
                filler = os.path.join(disk, "filler")
                fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
                try:  # take every free byte while the job writes
                    while True:
                        os.write(fd, b"x" * 4096)
                except OSError:
                    pass
                finally:
                    os.close(fd)
                status, error = job.wait(60), job.error
                tree = read_result(job.store.result_nc)  # the previous result: complete and readable
                blob = tree["blob"]
                intact = abs(float(blob["x"].sum()) - blob.attrs["checksum"]) < 1e-6
                stopped_at = int(tree["trace"].sizes["step"])
                os.remove(filler)
                job.resume()
                report.append({{"status": status, "error": error, "intact": bool(intact), "stopped_at": stopped_at,
                                "resumed": job.wait(60), "steps": job.step,
                                "total": float(job.result["trace"].attrs["total"])}})
                os.system(f"rm -rf {{job.store.path}}")
            print(json.dumps(report))
        """)
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert out.returncode == 0, f"rc={out.returncode}\n{out.stderr[-3000:]}"
    for trial, r in enumerate(json.loads(out.stdout.strip().splitlines()[-1])):
        assert r["status"] == "failed" and "no space left on device" in r["error"].lower(), r
        assert r["intact"] and r["stopped_at"] > 0, r
        assert r["resumed"] == "done" and r["steps"] == 300, r
        assert r["total"] == reference_total(300, seed=trial)  # the same random stream, bit for bit


def test_a_failed_write_leaves_no_temporary_file_and_the_previous_file(tmp_path):
    from sciml_lab.runtime.store import atomic_write

    path = tmp_path / "result.nc"
    path.write_bytes(b"previous")

    def write(tmp):
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="no space left on device while writing result.nc"):
        atomic_write(path, write)
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["result.nc"]


# ----------------------------------------------------------------------------- item 3: resume a failed job
def test_a_failed_job_resumes_in_the_same_kernel_with_new_objects_bit_for_bit(runs):
    job = launch(FnEngine(fails_at(40), steps=120, seed=3), name="buggy", save_every=1e-6)
    assert job.wait(30) == "failed" and "fn broke at step 40" in job.error
    assert job.data["trace"].sizes["step"] == 39
    # the fixed function, in the same kernel: the same Job comes back, with the new function
    again = sciml_lab.open(runs / "buggy", fn=fine)
    assert again is job and job.resumable and job.problems == []
    assert job.step == 39  # the last checkpoint, taken after step 39
    job.extend(steps=30)
    assert job.wait(30) == "done" and job.step == 150
    draws = job.result["trace"]["draw"].values
    assert np.array_equal(draws, uninterrupted_draws(150, seed=3))  # bit for bit
    steps = [json.loads(line)["step"] for line in (runs / "buggy" / "events.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 151))  # no step logged twice
    in_memory = [e.step for e in job.events if e.metrics]
    assert in_memory == list(range(1, 151))


def test_a_failed_job_resumes_in_a_new_process(runs):
    job = launch(FnEngine(fails_at(25), steps=60, seed=1), name="buggy-new", save_every=1e-6)
    assert job.wait(30) == "failed"
    out = python(f"""
        import json, sys
        sys.path.insert(0, {str(TESTS)!r})
        import sciml_lab, test_faults
        job = sciml_lab.open({str(runs / 'buggy-new')!r}, fn=test_faults.fine)
        assert job.status == "failed" and job.resumable and job.step == 24, (job, job.problems)
        job.resume()
        print(json.dumps({{"status": job.wait(60), "draws": job.result["trace"]["draw"].values.tolist()}}))
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["status"] == "done" and np.array_equal(got["draws"], uninterrupted_draws(60, seed=1))


def test_open_of_a_failed_run_without_its_objects_says_what_to_pass(runs):
    job = launch(FnEngine(fails_at(5), steps=20), name="needs-fn", save_every=1e-6)
    assert job.wait(30) == "failed"
    again = sciml_lab.open(runs / "needs-fn")
    assert again is job and not job.resumable and "fn: pass the function again" in job.record["not_resumable"]
    with pytest.raises(RuntimeError, match="pass the function again"):
        job.extend(steps=1)


def test_reopening_a_running_job_with_new_objects_is_refused(runs):
    job = launch(FnEngine(fine, steps=10**6), name="busy")
    while job.step < 3:
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="is running: stop it"):
        sciml_lab.open(runs / "busy", fn=fine)
    assert sciml_lab.open(runs / "busy") is job
    job.stop()
    assert job.wait(10) == "stopped"


def test_the_monitor_extends_a_failed_job_that_can_resume(runs):
    from sciml_lab.widgets import Monitor

    job = launch(StepEngine(steps=30, fail_at=12), name="mon-failed", save_every=1e-6)
    assert job.wait(30) == "failed"
    mon = Monitor(job)
    assert mon.resumable  # the page enables Extend for it
    job.engine.fail_at = -1  # the cause, fixed
    mon._on_custom_msg(mon, {"type": "extend", "budget": {"steps": 5}}, [])
    assert job.wait(30) == "done" and job.step == 35 and mon.note == ""
    assert job.result["trace"].attrs["total"] == reference_total(35)
    mon.close()


def test_magic_open_with_a_new_object_resumes_a_failed_job(ipython_shell, runs, capsys):
    job = launch(FnEngine(fails_at(10), steps=30), name="magicfix", save_every=1e-6)
    assert job.wait(30) == "failed"
    ipython_shell.user_ns["fixed_fn"] = fine
    res = ipython_shell.run_cell(f"%sciml open {runs / 'magicfix'} --object fn=fixed_fn --no-monitor")
    assert res.error_in_exec is None
    assert "extend resumes it" in capsys.readouterr().out
    assert ipython_shell.user_ns["magicfix"] is job and job.engine.fn is fine
    ipython_shell.run_cell("%sciml extend magicfix --steps 5")
    assert job.wait(30) == "done" and np.array_equal(job.result["trace"]["draw"].values, uninterrupted_draws(35))


@pytest.mark.slow
def test_a_flowmc_run_failed_by_its_log_prob_resumes_bit_for_bit(runs, one_torch_thread):
    """A real engine: a log-density that breaks half-way fails the flow-MCMC job; the
    run reopened with a working one resumes from its last checkpoint and ends with
    exactly the draws of an uninterrupted run of the same seed."""
    from sciml_lab.flowmc import sample

    small = dict(n_chains=16, n_training_loops=2, n_loops=2, n_local_steps=10, n_global_steps=10, n_epochs=3,
                 device="cpu", seed=7)
    calls = {"n": 0}

    def lp(x):
        calls["n"] += 1
        return -0.5 * (x ** 2).sum(1)

    reference = sample(lp, dim=2, name="reference", save_every=60, **small)
    assert reference.wait(300) == "done"
    half = calls["n"] // 2

    def breaks_half_way(x):
        calls["n"] += 1
        if calls["n"] == half:
            raise FloatingPointError("the log-density broke")
        return -0.5 * (x ** 2).sum(1)

    calls["n"] = 0
    job = sample(breaks_half_way, dim=2, name="flaky", save_every=1e-6, **small)
    assert job.wait(300) == "failed" and "the log-density broke" in job.error
    assert sciml_lab.open(runs / "flaky", log_prob=lp) is job and job.resumable and job.step > 0
    job.resume()
    assert job.wait(300) == "done"
    got, want = job.result["posterior"], reference.result["posterior"]
    assert list(got.data_vars) == list(want.data_vars)
    for v in want.data_vars:
        assert np.array_equal(got[v].values, want[v].values), v


# ----------------------------------------------------------------------------- item 5: open what is intact
def _cut(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _zero(p: Path) -> None:
    p.write_bytes(b"\0" * p.stat().st_size)


def _evil_checkpoint(p: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {p.parent / 'pwned'}",))

    torch.save({"engine": Evil(), "runtime": {"step": 0, "elapsed_s": 0.0}}, p)


def _edit_json(**fields):
    def edit(p: Path) -> None:
        rec = json.loads(p.read_text())
        rec.update(fields)
        p.write_text(json.dumps(rec))
    return edit


def _append_events(raw: bytes):
    def edit(p: Path) -> None:
        text = p.read_bytes()
        lines = text.splitlines(keepends=True)
        p.write_bytes(b"".join(lines[:5]) + raw + b"".join(lines[5:]))
    return edit


# (file, damage, resumable afterwards, words the problem must contain)
DAMAGE = {
    "result cut": ("result.nc", _cut, True, ["result.nc", "cannot be read", "rebuilt from checkpoint.pt"]),
    "result zeroed": ("result.nc", _zero, True, ["result.nc", "cannot be read"]),
    "result empty": ("result.nc", lambda p: p.write_bytes(b""), True, ["result.nc", "cannot be read"]),
    "checkpoint cut": ("checkpoint.pt", _cut, False, ["checkpoint.pt is damaged"]),
    "checkpoint zeroed": ("checkpoint.pt", _zero, False, ["checkpoint.pt is damaged"]),
    "checkpoint with code": ("checkpoint.pt", _evil_checkpoint, False, ["checkpoint.pt holds objects", "run code"]),
    "checkpoint of another shape": ("checkpoint.pt", lambda p: torch.save({"x": 1}, p), False,
                                    ["not a sciml_lab checkpoint"]),
    "checkpoint of another engine": ("checkpoint.pt", lambda p: torch.save(
        {"engine": {"x": 1}, "runtime": {"step": 3, "elapsed_s": 0.1}}, p), False, ["does not fit a teststep engine"]),
    "job.json cut": ("job.json", _cut, True, ["job.json is not valid JSON", "taken from result.nc"]),
    "job.json not UTF-8": ("job.json", lambda p: p.write_bytes(b"\xff\xfe{" + p.read_bytes()), True,
                           ["job.json is not UTF-8"]),
    "job.json a list": ("job.json", lambda p: p.write_text("[1, 2]"), True, ["job.json holds a list"]),
    "job.json empty": ("job.json", lambda p: p.write_text(""), True, ["job.json is not valid JSON"]),
    "job.json missing": ("job.json", lambda p: p.unlink(), True, ["job.json is missing"]),
    "string metric in job.json": ("job.json", _edit_json(metrics={"mean": "abc"}), True,
                                  ["job.json: metric 'mean' is 'abc'"]),
    "string step in job.json": ("job.json", _edit_json(step="ten", progress="x", elapsed_s=None), True,
                                ["job.json: step is 'ten'", "job.json: progress is 'x'"]),
    "bad status in job.json": ("job.json", _edit_json(status="exploded", save_every=-1), True,
                               ["job.json: status is 'exploded'", "job.json: save_every is -1"]),
    "events not JSON": ("events.jsonl", _append_events(b"{not json\n"), True, ["events.jsonl: 1 line(s)", "line 6"]),
    "events not UTF-8": ("events.jsonl", _append_events(b'{"step": 3, "wall_time": 1, "metrics": {"\xff": 1}}\n'), True,
                         ["events.jsonl: 1 line(s)"]),
    "string metric in events": ("events.jsonl", _append_events(b'{"step": 5, "wall_time": 1, "metrics": {"mean": "x"}}\n'),
                                True, ["events.jsonl: metric values that are not numbers"]),
    "events torn": ("events.jsonl", lambda p: p.write_bytes(p.read_bytes() + b'{"step": 2'), True,
                    ["events.jsonl: 1 line(s)"]),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_open_returns_what_is_intact_and_names_what_is_not(runs, damage):
    file, spoil, resumable, words = DAMAGE[damage]
    job = launch(StepEngine(steps=12, seed=4), name="hurt", save_every=1e-6)
    assert job.wait(30) == "done"
    from sciml_lab.runtime import job as jobmod

    jobmod._JOBS.clear()  # as in a new kernel
    spoil(runs / "hurt" / file)
    opened = sciml_lab.open(runs / "hurt")  # never raises
    text = " | ".join(opened.problems)
    for w in words:
        assert w in text, (w, opened.problems)
    assert "weights_only" not in text + opened.record.get("not_resumable", "")
    assert not (runs / "hurt" / "pwned").exists()
    assert opened.resumable is resumable, (opened.record.get("not_resumable"), opened.problems)
    assert opened.name == "hurt" and opened.kind == "teststep"
    if file != "result.nc" or resumable:
        assert opened.data["trace"].sizes["step"] == 12  # the intact result, or the one rebuilt from the checkpoint
    if resumable:
        opened.extend(steps=3)
        assert opened.wait(30) == "done"
        assert opened.result["trace"].attrs["total"] == reference_total(15, seed=4)
        assert read_result(runs / "hurt" / "result.nc")["trace"].sizes["step"] == 15


# ----------------------------------------------------------------------------- item 6: names
@pytest.mark.parametrize("crafted", ["__builtins__", "get_ipython", "print", "In", "class"])
def test_a_crafted_name_in_job_json_is_not_bound_over_the_notebook(ipython_shell, runs, capsys, crafted):
    job = launch(StepEngine(steps=3), name="plain")
    assert job.wait(30) == "done"
    from sciml_lab.runtime import job as jobmod

    jobmod._JOBS.clear()
    rec = json.loads((runs / "plain" / "job.json").read_text())
    rec["name"] = crafted
    (runs / "plain" / "job.json").write_text(json.dumps(rec))
    ns = ipython_shell.user_ns
    before = {k: ns.get(k) for k in ("__builtins__", "get_ipython", "print", "In", "class")}
    res = ipython_shell.run_cell(f"%sciml open {runs / 'plain'} --no-monitor")
    assert res.error_in_exec is None
    out = capsys.readouterr().out
    assert {k: ns.get(k) for k in before} == before
    bound = [k for k, v in ns.items() if v is not None and getattr(v, "store", None) is not None
             and getattr(v.store, "path", None) == runs / "plain"]
    assert bound and all(not k.startswith("_") and k not in before for k in bound), bound
    assert "instead" in out or "job.json: name" in out
    assert ipython_shell.run_cell("1 + 1").result == 2  # the notebook still works


def test_names_are_matched_whole(runs):
    assert valid_name("banana") and not valid_name("banana\n") and not valid_name("\nbanana")
    with pytest.raises(ValueError, match="not a valid job name"):
        launch(StepEngine(steps=1), name="banana\n")


@pytest.mark.slow
def test_kernels_launching_at_once_never_share_a_run_folder(runs):
    """Twelve processes each launch fifty jobs called "race" into one runs folder,
    all starting at the same moment: every launch must get its own folder. Before,
    the claim was exists() then mkdir(exist_ok=True): 2 of 300 such launches shared
    a folder, in each of two rounds (600 launches here: about 4 expected)."""
    go = runs.parent / "go"
    script = f"""
        import json, os, sys, time
        sys.path.insert(0, {str(TESTS)!r})
        from engines import StepEngine
        from sciml_lab.runtime import launch
        open(os.path.join({str(runs.parent)!r}, f"ready-{{os.getpid()}}"), "w").close()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)
        names = [launch(StepEngine(steps=1), name="race", runs_dir={str(runs)!r}, start=False).name
                 for _ in range(50)]
        print(json.dumps(names))
    """
    env = dict(os.environ, PYTHONPATH=str(TESTS.parent), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(12)]
    deadline = time.monotonic() + 120
    while len(list(runs.parent.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.write_text("")
    names = []
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0
        names += json.loads(out.strip().splitlines()[-1])
    assert len(names) == 600 and len(set(names)) == 600, len(names) - len(set(names))
    assert sorted(p.name for p in runs.iterdir()) == sorted(names)


# ----------------------------------------------------------------------------- item 8: bounded memory
class FastEngine(StepEngine):
    """The test engine without torch in the step: a step costs only the runtime's own work."""

    kind = "testfast"
    live_view = None

    def step(self):
        self.n += 1
        return {"n": self.n, "half": self.n / 2}

    def snapshot(self):
        return xr.DataTree.from_dict({"/trace": xr.Dataset(attrs={"n": self.n})})


def test_thinned_history_keeps_the_latest_in_full_and_a_bounded_older_part():
    h = ThinnedHistory(recent=100)
    for i in range(1, 100_001):
        h.append(i)
        assert len(h) <= 200
    kept = list(h)
    assert kept[-100:] == list(range(99_901, 100_001)) and kept[0] == 1
    gaps = np.diff(kept[:-100])
    assert len(set(gaps)) == 1  # the older part is evenly spaced
    h.retain(lambda x: x <= 50_000)
    assert list(h) and max(h) <= 50_000


def test_a_long_job_keeps_a_bounded_history_in_memory_and_everything_on_disk(runs):
    from sciml_lab.widgets import Monitor
    from sciml_lab.widgets.monitor import MAX_SYNC_ROWS

    steps = 3 * HISTORY_RECENT
    job = launch(FastEngine(steps=steps), name="long", save_every=60, start=False)
    mon = Monitor(job)
    job.start()
    assert job.wait(120) == "done"
    metric_events = [e for e in job.events if e.metrics]
    # at most HISTORY_RECENT in full plus as many thinned: memory does not follow the step count
    assert len(job.events) <= 2 * HISTORY_RECENT + 10
    # the thinned part starts at the run's start: its stride is at most 2 * 10_000 aged / 5_000 recent = 4
    assert metric_events[0].step <= 4 and metric_events[-1].step == steps
    latest = HISTORY_RECENT - 10  # the recent part also holds the status changes at the end
    assert [e.step for e in metric_events[-latest:]] == list(range(steps - latest + 1, steps + 1))
    assert len(mon._rows) <= MAX_SYNC_ROWS and mon._rows[-1][0] == steps
    mon.close()
    with open(runs / "long" / "events.jsonl") as f:
        assert sum(1 for _ in f) == steps  # the disk keeps every step
    from sciml_lab.runtime import job as jobmod

    jobmod._JOBS.clear()
    reopened = sciml_lab.open(runs / "long")
    assert len(reopened.events) <= 2 * HISTORY_RECENT and reopened.events[-1].step == steps


# ----------------------------------------------------------------------------- item 9: hygiene
def test_kill_and_resume_leaves_no_duplicate_steps_in_events(runs):
    # events are flushed at each save and whenever their buffer fills: between two saves 2 s apart
    # some hundred steps (more than a buffer) reach the disk without a checkpoint
    job = launch(StepEngine(steps=1000, delay=0.002), name="killme", executor="process", save_every=2.0)
    deadline = time.monotonic() + 60
    while job.step < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(job._handle.proc.pid, signal.SIGKILL)
    assert job.wait(20) == "failed"
    logged = [json.loads(line)["step"] for line in (runs / "killme" / "events.jsonl").read_text().splitlines()
              if line.endswith("}")]
    checkpoint = torch.load(runs / "killme" / "checkpoint.pt", weights_only=True)["runtime"]["step"]
    assert max(logged) > checkpoint  # steps after the last checkpoint were logged: they come again
    job.resume()
    assert job.wait(60) == "done"
    steps = [json.loads(line)["step"] for line in (runs / "killme" / "events.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 1001))
    assert job.result["trace"].attrs["total"] == reference_total(1000)


def test_open_removes_temporary_files_of_killed_writers(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    writer = f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from engines import StepEngine
        from sciml_lab.runtime.store import RunStore
        s, e = RunStore({str(run)!r}), StepEngine(steps=10**9, payload=2_000_000)
        while True:
            e.step()
            s.write_result(e.snapshot())
            s.write_checkpoint({{"engine": e.state_dict(), "runtime": {{"step": e.n, "elapsed_s": 0.0}}}})
            print(e.n, flush=True)
    """
    env = dict(os.environ, PYTHONPATH=str(TESTS.parent), OMP_NUM_THREADS="1")
    for _ in range(20):  # kill writers while their temporary file exists, until one dies before its rename
        p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(writer)], stdout=subprocess.PIPE, text=True,
                             env=env)
        p.stdout.readline()
        deadline = time.monotonic() + 10
        while not list(run.glob(".*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.0005)
        p.kill()
        p.wait()
        if list(run.glob(".*.tmp")):
            break
    assert list(run.glob(".*.tmp")), "no kill landed in a write"
    live = run / ".result.nc.elsewhere-1.abcd.tmp"  # another host's writer, still at work: left alone
    live.write_bytes(b"")
    job = sciml_lab.open(run)
    assert sorted(p.name for p in run.glob(".*.tmp")) == [live.name]
    assert job.data["blob"].attrs["n"] >= 1  # the last complete result


@pytest.mark.parametrize("budget", [{"steps": 2.9}, {"steps": "3"}, {"steps": True}, {"steps": 1e308},
                                    {"steps": [1]}, {"steps": None}, {"steps": 0}, {"steps": -4},
                                    {"steps": 10**30}, {"loops": 3}, [1, 2], "steps", {}])
def test_monitor_extend_accepts_only_a_positive_whole_budget(runs, budget):
    from sciml_lab.widgets import Monitor

    job = launch(StepEngine(steps=3), name="small")
    assert job.wait(30) == "done"
    mon = Monitor(job)
    mon._on_custom_msg(mon, {"type": "extend", "budget": budget}, [])  # must not raise
    assert "extend" in mon.note and job.status == "done" and job.engine.budget == 3
    mon._on_custom_msg(mon, {"type": "extend", "budget": {"steps": 2}}, [])
    assert job.wait(30) == "done" and job.step == 5 and mon.note == ""
    mon.close()

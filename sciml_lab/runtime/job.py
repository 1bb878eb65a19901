"""Jobs: one engine, run by an executor, watched by anyone.

Job names are unique within the kernel *and* the runs folder. A name that is
taken (by a job of this kernel or by a folder already in ``sciml-runs/``) gets the
next free numbered suffix: ``banana``, ``banana-2``, ``banana-3``... so that
re-running a cell never overwrites a result on disk. ``job.name`` tells which
name a job got. Claiming a folder is an atomic ``mkdir``, so two kernels launching
into the same runs folder at the same moment never share one.

A job keeps its whole metric history on disk (``events.jsonl``) and a bounded,
thinned copy in memory (:class:`~sciml_lab.runtime.history.ThinnedHistory`), so a
job of any length costs the kernel the same memory.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import xarray as xr

from ..kit.protocol import Engine, check_budget
from .executors import Executor, Handle, get_executor
from .history import HISTORY_RECENT, ThinnedHistory
from .loop import clean_metrics, now_iso, python_info
from .store import CheckpointError, RunStore, runs_dir, valid_name
from ..kit.verdict import Verdict

__all__ = ["Job", "Event", "JobFailedError", "launch", "jobs", "get_job", "STATES", "FINAL_STATES"]

STATES = ("queued", "running", "done", "stopped", "failed")
FINAL_STATES = frozenset({"done", "stopped", "failed"})


class JobFailedError(RuntimeError):
    """Raised by ``Job.result`` when the job failed; ``.data`` still has its partial result."""


@dataclasses.dataclass(frozen=True)
class Event:
    """One entry of a job's event stream.

    ``metrics`` is empty for pure status changes.
    """

    step: int
    wall_time: float
    metrics: Mapping[str, float]
    status: str
    progress: float = math.nan


_JOBS: dict[str, "Job"] = {}
_REGISTRY_LOCK = threading.RLock()


def jobs() -> list["Job"]:
    """All jobs of this kernel, oldest first."""
    with _REGISTRY_LOCK:
        return list(_JOBS.values())


def get_job(name: str) -> "Job":
    """The job called ``name``; KeyError naming the known jobs otherwise."""
    with _REGISTRY_LOCK:
        if name in _JOBS:
            return _JOBS[name]
        known = ", ".join(_JOBS) or "none yet"
    raise KeyError(f"no job named {name!r}; jobs in this kernel: {known}")


def _claim_name(base: str, root: Path | None) -> str:
    """Reserve ``base`` (or the next free ``base-N``) in this kernel and, given a
    runs folder, create its run folder: ``mkdir`` without ``exist_ok`` is the claim,
    atomic across kernels and machines sharing the folder."""
    if not valid_name(base):
        raise ValueError(
            f"name: {base!r} is not a valid job name; expected letters, digits, '_', '.' or '-' "
            "(starting with a letter or digit, at most 100 characters)"
        )
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    with _REGISTRY_LOCK:
        n = 1
        while True:
            cand = base if n == 1 else f"{base}-{n}"
            n += 1
            if cand in _JOBS:
                continue
            if root is not None:
                try:
                    (root / cand).mkdir()
                except FileExistsError:
                    continue
            _JOBS[cand] = None  # type: ignore[assignment] - reserved, filled by Job
            return cand


class Job:
    """A running (or finished) engine.

    Do not build one directly: use :func:`launch` (or an engine's Python twin such
    as ``sciml_lab.demo.estimate_pi``), or :func:`sciml_lab.open` for a run on disk.

    States: ``queued -> running -> done | stopped | failed``; ``extend`` takes a
    done, stopped or failed job back to running (a failed one from its last
    checkpoint). ``problems`` lists what :func:`open_run` found damaged on disk.

    Example:
        >>> from sciml_lab.demo import PiEngine
        >>> job = launch(PiEngine(samples_per_step=1000, steps=20, seed=0), store=False)
        >>> job.wait(30)
        'done'
        >>> round(float(job.result["estimate"]["pi_hat"]), 1)
        3.1
    """

    def __init__(self, engine: Engine, *, name: str, executor: Executor, store: RunStore | None,
                 save_every: float, record: dict[str, Any] | None = None, resumable: bool = True,
                 status: str = "queued", data: xr.DataTree | None = None):
        self.engine = engine
        self.name = name
        self.kind = engine.kind if engine is not None else (record or {}).get("kind", "?")
        self.executor = executor
        self.store = store
        self.save_every = float(save_every)
        self.resumable = resumable
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._status = status
        self._events: ThinnedHistory[Event] = ThinnedHistory(HISTORY_RECENT)
        self._subscribers: list[Callable[["Job", Event], None]] = []
        self._handle: Handle | None = None
        self._generation = 0
        self._pending_extends: list[dict] = []
        self._stop_requested = False
        self._killed = False
        self._data = data
        self._data_stale = False
        self._saved_step = -1
        self.view: dict[str, Any] | None = None  # the engine's latest live_view(), if it has one
        self.error: str | None = None
        self.traceback: str | None = None
        self.problems: list[str] = []  # damage found on disk by open_run, one precise sentence each
        self.record: dict[str, Any] = record or {}
        self._step = int(self.record.get("step", 0))
        self._progress = float(self.record.get("progress", math.nan) or math.nan)
        self._metrics: dict[str, float] = dict(self.record.get("metrics") or {})
        self._elapsed_base = float(self.record.get("elapsed_s", 0.0))
        self._running_since: float | None = None
        self._segment: tuple[float, float] | None = None  # (monotonic t0, progress at t0) for the ETA
        if status == "failed":
            self.error = self.record.get("error")
            self.traceback = self.record.get("traceback")

    # ------------------------------------------------------------------ reading
    @property
    def status(self) -> str:
        """One of queued, running, done, stopped, failed."""
        return self._status

    @property
    def step(self) -> int:
        """Steps done so far (over all segments, including before a resume)."""
        return self._step

    @property
    def progress(self) -> float:
        """Fraction of the current budget spent (NaN if the engine cannot tell)."""
        return self._progress

    @property
    def metrics(self) -> dict[str, float]:
        """The latest metrics."""
        with self._lock:
            return dict(self._metrics)

    @property
    def elapsed(self) -> float:
        """Seconds spent running, over all segments."""
        with self._lock:
            extra = time.monotonic() - self._running_since if self._running_since is not None else 0.0
            return self._elapsed_base + extra

    @property
    def eta(self) -> float:
        """Seconds to the end of the current budget, from the progress rate of this segment."""
        with self._lock:
            if self._status != "running" or self._segment is None or not math.isfinite(self._progress):
                return math.nan
            t0, p0 = self._segment
            dp, dt = self._progress - p0, time.monotonic() - t0
            if dp <= 0 or dt <= 0:
                return math.nan
            return max(0.0, (1.0 - self._progress) * dt / dp)

    @property
    def verdict(self) -> Verdict | None:
        """Whether to trust the finished job (see :mod:`sciml_lab.kit.verdict`):
        ``converged``, ``target missed``, ``done``, ``stopped`` or ``failed``, with
        reasons and warnings; None while it runs (or for a run saved without one).

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> job = launch(PiEngine(steps=3), store=False); _ = job.wait(30)
            >>> job.verdict.status
            'done'
        """
        with self._lock:
            data = self.record.get("verdict") if self._status in FINAL_STATES else None
            if data is None and self._status == "failed":
                return Verdict("failed", [self.error or "the job failed"])
            if data is None and self._status == "stopped" and self.record.get("note"):
                return Verdict("stopped", [self.record["note"]])  # e.g. its kernel ended while it ran
        return Verdict.from_json(data) if data else None

    @property
    def events(self) -> list[Event]:
        """The event stream so far (metrics and status changes): the latest
        ``HISTORY_RECENT`` in full, older ones evenly thinned (every step is in the
        run folder's ``events.jsonl``)."""
        with self._lock:
            return list(self._events)

    def history(self) -> xr.Dataset:
        """Metrics against the step as a Dataset (dim ``step``), wall time included."""
        with self._lock:
            evs = [e for e in self._events if e.metrics]
        names: list[str] = []
        for e in evs:
            for k in e.metrics:
                if k not in names:
                    names.append(k)
        steps = [e.step for e in evs]
        data = {k: ("step", [e.metrics.get(k, math.nan) for e in evs]) for k in names}
        data["wall_time"] = ("step", [e.wall_time for e in evs])
        return xr.Dataset(data, coords={"step": steps}, attrs={"job": self.name, "kind": self.kind})

    @property
    def data(self) -> xr.DataTree | None:
        """The latest snapshot of the result: at any time, from any thread.

        While the job runs this asks the loop for a fresh snapshot between two
        steps (waiting at most a second, else the previous one is returned).
        """
        with self._cond:
            if self._status == "running" and self._handle is not None and self._saved_step < self._step:
                target = self._step
                self._handle.send(("snapshot",))
                self._cond.wait_for(lambda: self._saved_step >= target or self._status != "running", timeout=1.0)
            if self._data_stale and self.store is not None and self.store.result_nc.exists():
                self._data = self.store.read_result()
                self._data_stale = False
            return self._data

    @property
    def result(self) -> xr.DataTree:
        """The final result; raises if the job is still going or failed."""
        st = self._status
        if st in ("queued", "running"):
            raise RuntimeError(f"job {self.name!r} is {st}: call .wait() first, or read .data for the latest snapshot")
        if st == "failed":
            raise JobFailedError(
                f"job {self.name!r} failed: {self.error}. Its partial result is in .data"
                + (f" and on disk in {self.store.path}" if self.store else "")
            )
        return self.data

    def wait(self, timeout: float | None = None) -> str:
        """Block until the job is done, stopped or failed (or ``timeout`` seconds
        pass); returns the status."""
        with self._cond:
            self._cond.wait_for(lambda: self._status in FINAL_STATES and not self._pending_extends,
                                timeout=timeout)
            return self._status

    def subscribe(self, callback: Callable[["Job", Event], None], replay: bool = False) -> Callable[[], None]:
        """Call ``callback(job, event)`` for every future event (on the job's
        thread: keep it short). Returns a function that unsubscribes."""
        with self._lock:
            past = list(self._events) if replay else []
            self._subscribers.append(callback)
        for e in past:
            callback(self, e)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # ------------------------------------------------------------------ control
    def start(self) -> "Job":
        with self._lock:
            if self._status != "queued":
                raise RuntimeError(f"job {self.name!r} was already started ({self._status})")
            self._launch(resume=False, budgets=())
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Ask the job to stop between two steps. With the process and Dask
        executors a job that has not stopped after ``grace`` seconds is killed
        (its result.nc is the last complete snapshot). Returns at once."""
        with self._lock:
            if self._status in FINAL_STATES and not self._pending_extends:
                return
            self._stop_requested = True
            self._pending_extends.clear()
            handle = self._handle
            if handle is None:  # queued, never started
                self._set_status("stopped")
                return
        handle.send(("stop",))
        if not self.executor.shares_engine:
            def watchdog():
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline:
                    if self._status in FINAL_STATES:
                        return
                    time.sleep(0.05)
                if self._status not in FINAL_STATES and handle.alive():
                    self._killed = True
                    handle.kill()

            threading.Thread(target=watchdog, daemon=True, name=f"sciml-stop-{self.name}").start()

    def extend(self, **budget: Any) -> None:
        """Pay for more: raise the budget (engine-specific words, e.g. ``steps=100``)
        and keep running from the exact state. A done or stopped job starts again;
        a job reopened from disk, or a failed one, resumes from its last checkpoint
        (fix the cause first: free disk space, or reopen the run with new objects
        such as ``sciml_lab.open(path, log_prob=fixed)``)."""
        budget = check_budget(self.engine, budget) if self.engine is not None else budget
        self._continue((budget,))

    def resume(self) -> None:
        """Run a stopped or failed job on to the end of its budget (from its last
        checkpoint if it failed or was reopened from disk), without paying for more.

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> job = launch(PiEngine(steps=5), store=False, start=False); job.resume(); job.wait(30)
            'done'
        """
        self._continue(())

    def _continue(self, budgets: tuple[dict, ...]) -> None:
        with self._lock:
            if not self.resumable or self.engine is None:
                raise RuntimeError(self._not_resumable_reason())
            if self._status == "failed":
                if self.store is None:
                    raise RuntimeError(f"job {self.name!r} failed ({self.error}) and has no run folder (store=False) "
                                       "holding a checkpoint to resume from")
                self._stop_requested = False
                self._launch(resume=True, budgets=budgets)
                return
            if self._status == "queued":
                if not budgets:
                    self._launch(resume=False, budgets=())
                    return
                for budget in budgets:
                    self.engine.extend(**budget)
                return
            if self._status == "running" and self._handle is not None and not self._stop_requested:
                for budget in budgets:
                    self._pending_extends.append(budget)
                    self._handle.send(("extend", budget))
                return
            self._stop_requested = False
            self._launch(resume=self._needs_resume(), budgets=budgets)

    # ------------------------------------------------------------------ internals
    def _not_resumable_reason(self) -> str:
        return self.record.get("not_resumable", f"job {self.name!r} cannot be resumed")

    def _needs_resume(self) -> bool:
        # a process/dask worker starts from a pickled copy of the engine: it must load
        # the checkpoint; a thread shares the engine object, whose state is current
        return not self.executor.shares_engine

    def _launch(self, resume: bool, budgets: tuple[dict, ...]) -> None:
        self._killed = False
        self._pending_extends = []
        self.record["executor"] = self.executor.name
        self.record["step"] = self._step
        self.record["elapsed_s"] = self.elapsed
        self.record.pop("error", None)
        self.record.pop("traceback", None)
        self.record.pop("verdict", None)
        # running from now on, so that wait() right after extend() waits for this segment
        self._set_status("running")
        self._generation += 1
        gen = self._generation

        def on_message(msg: tuple) -> None:
            # messages of an earlier segment (its worker's exit, say) must not touch this one
            if gen == self._generation:
                self._on_message(msg)

        try:
            self._handle = self.executor.start(
                self.engine, self.store,
                self.record if self.executor.shares_engine else dict(self.record),
                on_message, save_every=self.save_every, resume=resume, budgets=budgets,
            )
        except BaseException as exc:
            # the loop never started (e.g. the worker process could not connect):
            # the job is failed, on disk too, and the caller sees why
            self._handle = None
            info = {"error": f"{type(exc).__name__}: {exc}", "traceback": ""}
            try:
                self._write_record_from_kernel("failed", info)
            finally:
                self._set_status("failed", info)
            raise

    def _notify(self, event: Event) -> None:
        for cb in list(self._subscribers):
            try:
                cb(self, event)
            except Exception:  # a broken subscriber must not break the job
                pass

    def _set_status(self, status: str, info: Mapping[str, Any] | None = None) -> None:
        with self._cond:
            now = time.monotonic()
            if status == "running":
                if self._running_since is None:
                    self._running_since = now
                self._segment = (now, self._progress if math.isfinite(self._progress) else 0.0)
            elif self._running_since is not None:
                self._elapsed_base += now - self._running_since
                self._running_since = None
            self._status = status
            if info and status == "failed":
                self.error = info.get("error")
                self.traceback = info.get("traceback")
            if info and info.get("verdict"):
                self.record["verdict"] = info["verdict"]
            self.record["status"] = status
            ev = Event(self._step, self.elapsed, {}, status, self._progress)
            self._events.append(ev)
            self._cond.notify_all()
        self._notify(ev)

    def _on_message(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "events":
            new = []
            with self._cond:
                for step, wall, metrics, progress in msg[1]:
                    ev = Event(step, wall, metrics, self._status, progress)
                    self._events.append(ev)
                    new.append(ev)
                    self._step, self._progress, self._metrics = step, progress, metrics
                self.record["step"] = self._step
            for ev in new:
                self._notify(ev)
        elif kind == "status":
            status, info = msg[1], msg[2]
            with self._cond:
                start = info.get("step") if status == "running" else None
                if isinstance(start, int) and start < self._step:
                    # resumed from an earlier checkpoint: its steps come again
                    self._events.retain(lambda e: not e.metrics or e.step <= start)
                    self._step = start
                if status == "running" and self._status == "running":
                    return  # already announced by _launch
                restart = status == "done" and self._pending_extends and not self._stop_requested
                if restart:  # an extend raced the end of the budget: run on
                    budgets = tuple(self._pending_extends)
                    self._launch(resume=self._needs_resume(), budgets=budgets)
                    return
                if status in FINAL_STATES:
                    self._pending_extends.clear()
            self._set_status(status, info)
        elif kind == "view":
            self.view = msg[1]
        elif kind == "extended":
            with self._cond:
                if msg[1] in self._pending_extends:
                    self._pending_extends.remove(msg[1])
        elif kind == "saved":
            with self._cond:
                self._saved_step = msg[1]
                if msg[2] is not None:
                    self._data, self._data_stale = msg[2], False
                else:
                    self._data_stale = True
                self._cond.notify_all()
        elif kind == "exited":
            code = msg[1]
            if self._status not in FINAL_STATES:
                if self._killed:
                    self.record["note"] = "killed after the stop grace period"
                    status, info = "stopped", {}
                else:
                    status, info = "failed", {"error": f"the worker exited unexpectedly (exit code {code})",
                                              "traceback": ""}
                self._write_record_from_kernel(status, info)  # on disk before anyone is woken
                self._set_status(status, info)
            with self._cond:
                self._data_stale = True
                self._cond.notify_all()

    def _write_record_from_kernel(self, status: str, info: Mapping[str, Any]) -> None:
        """After a worker died, the kernel records the final status itself."""
        verdict = (Verdict("failed", [info.get("error") or "the worker died"]) if status == "failed"
                   else Verdict("stopped", [self.record.get("note") or "killed"]))
        self.record["verdict"] = verdict.to_json()
        if self.store is None:
            return
        try:
            rec = self.store.read_json() if self.store.job_json.exists() else dict(self.record)
            rec.update(status=status, note=self.record.get("note", ""), updated=now_iso())
            rec.update({k: v for k, v in info.items() if k in ("error", "traceback")}, verdict=verdict.to_json())
            self.store.write_json(rec)
        except Exception:
            pass

    def _reload(self, run: Mapping[str, Any], executor: Executor) -> None:
        """Install what :func:`_read_run` found into this (not running) job."""
        record = run["record"]
        self.engine, self.executor, self.resumable = run["engine"], executor, run["resumable"]
        self.kind = record["kind"]
        self.record = record
        self.save_every = record["save_every"]
        self.problems = list(run["problems"])
        self._data, self._data_stale = run["data"], False
        self._events = run["events"]
        self._step = record["step"]
        self._progress = record["progress"]
        self._elapsed_base = record["elapsed_s"]
        last = next((e for e in reversed(list(self._events)) if e.metrics), None)
        self._metrics = dict(last.metrics) if last is not None else dict(record["metrics"])
        self._status = record["status"]
        self.error = record.get("error") if self._status == "failed" else None
        self.traceback = record.get("traceback") if self._status == "failed" else None

    def __repr__(self) -> str:
        p = f"{100 * self._progress:.0f}%" if math.isfinite(self._progress) else "?"
        return f"<Job {self.name!r} kind={self.kind} status={self._status} step={self._step} progress={p}>"

    def __iter__(self) -> Iterator[Event]:  # pragma: no cover - convenience
        return iter(self.events)


def _register(job: Job) -> None:
    with _REGISTRY_LOCK:
        _JOBS[job.name] = job


def launch(engine: Engine, *, name: str | None = None, executor: "str | Executor" = "thread",
           runs_dir: "str | Path | None" = None, store: bool = True, save_every: float = 5.0,
           threads: int | None = None, start: bool = True) -> Job:
    """Run ``engine`` as a job and return at once.

    Arguments:
        engine: any object implementing :class:`~sciml_lab.kit.protocol.Engine`.
        name: the job's name (default: the engine's kind); a taken name gets a
            numbered suffix (see the module docstring).
        executor: ``"thread"`` (default), ``"process"``, ``"dask"`` or an Executor.
        runs_dir: root of run folders (default ``$SCIML_RUNS_DIR`` or ``sciml-runs``).
        store: write ``job.json``, ``result.nc`` and a checkpoint to the run folder.
            Required by the process and Dask executors.
        save_every: seconds between two writes of the result and checkpoint
            (they are also written at every state change).
        threads: PyTorch CPU threads for the job's loop (``torch.set_num_threads``
            on the thread that runs it, in whichever executor; with PyTorch's
            OpenMP backend this leaves the kernel's own setting alone). None keeps
            torch's default. On a small shared machine 1 is often much faster than
            the default, which oversubscribes the cores. Kept in ``job.json`` so
            that a resumed run uses it too.

    Example:
        >>> from sciml_lab.demo import PiEngine
        >>> job = launch(PiEngine(steps=5), store=False); job.wait(30)
        'done'
    """
    if not isinstance(engine, Engine):
        missing = [m for m in ("kind", "budget_words", "monitor", "step", "done", "progress", "extend",
                               "snapshot", "state_dict", "load_state_dict", "config", "from_config")
                   if not hasattr(engine, m)]
        raise TypeError(f"engine: {type(engine).__name__} does not implement the Engine protocol "
                        f"(missing: {', '.join(missing)})")
    ex = get_executor(executor)
    if not store and not ex.shares_engine:
        raise ValueError(f"store=False works only with the thread executor; the {ex.name} executor "
                         "passes results through the run folder")
    if not (isinstance(save_every, (int, float)) and save_every > 0):
        raise ValueError(f"save_every: expected a positive number of seconds, got {save_every!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads: expected None or an integer >= 1, got {threads!r}")
    root = Path(runs_dir) if runs_dir is not None else runs_dir_default()
    job_name = _claim_name(name or engine.kind, root if store else None)
    try:
        run_store = None
        if store:
            run_store = RunStore(root / job_name)
            run_store.create()
        record = {
            "name": job_name, "kind": engine.kind, "status": "queued", "created": now_iso(),
            "config": engine.config(), "executor": ex.name, "step": 0, "elapsed_s": 0.0,
            "versions": python_info(), "budget_words": list(engine.budget_words),
            "save_every": float(save_every), "threads": threads,
        }
        if run_store is not None:
            run_store.write_json(record)
        job = Job(engine, name=job_name, executor=ex, store=run_store, save_every=save_every, record=record)
    except BaseException:
        with _REGISTRY_LOCK:
            _JOBS.pop(job_name, None)
        raise
    _register(job)
    if start:
        job.start()
    return job


def runs_dir_default() -> Path:
    return runs_dir()


def open_run(path: "str | Path", executor: "str | Executor" = "thread", **objects: Any) -> Job:
    """Reopen a run folder: a Job whose ``.data`` is the result on disk and which,
    where a checkpoint exists and the engine can be rebuilt, ``extend`` resumes.

    ``objects`` are what the engine cannot store as data (e.g. ``log_prob=f`` for
    flow-MCMC); they are passed to the engine's ``from_config``. Nothing is
    unpickled: job.json is JSON, the checkpoint loads with ``weights_only=True``.

    Opening never fails on damage: whatever is intact comes back, and
    ``job.problems`` says what is not (which file, what is wrong); ``job.resumable``
    says whether ``extend`` can resume it (``job.record["not_resumable"]`` why not).
    A run this kernel already has comes back as the same Job object; unless it is
    running it is reloaded from disk with the given objects, so that a failed run
    whose cause is fixed (a new ``log_prob``, space freed) resumes from its checkpoint.

    Example:
        >>> import tempfile
        >>> from sciml_lab.demo import PiEngine
        >>> root = tempfile.mkdtemp()
        >>> job = launch(PiEngine(steps=3), name="pi", runs_dir=root); job.wait(30)
        'done'
        >>> same = open_run(job.store.path)   # here, this kernel's own job comes back
        >>> same is job, same.step, same.problems
        (True, 3, [])
    """
    p = Path(path)
    if p.name == "result.nc":
        p = p.parent
    store = RunStore(p)
    if not any(f.exists() for f in (store.job_json, store.result_nc, store.checkpoint_pt)):
        raise FileNotFoundError(f"path: {str(path)!r} is not a sciml_lab run folder "
                                "(no job.json, result.nc or checkpoint.pt)")
    ex = get_executor(executor)
    with _REGISTRY_LOCK:
        own = next((j for j in _JOBS.values()
                    if j is not None and j.store is not None and j.store.path.resolve() == p.resolve()), None)
    if own is not None:
        with own._lock:
            if own._status not in FINAL_STATES or own._pending_extends:
                if objects:
                    raise RuntimeError(f"job {own.name!r} of this kernel is {own._status}: stop it "
                                       "(job.stop(); job.wait()) before reopening it with new objects")
                return own
            run = _read_run(store, objects)
            own._reload(run, ex)
        return own
    run = _read_run(store, objects)
    record = run["record"]
    with _REGISTRY_LOCK:
        name = record["name"]
        if name in _JOBS:
            name = _claim_name(name, None)
        else:
            _JOBS[name] = None  # type: ignore[assignment]
    record["name"] = name
    job = Job(run["engine"], name=name, executor=ex, store=store, save_every=record["save_every"], record=record,
              resumable=run["resumable"], status=record["status"], data=run["data"])
    job._reload(run, ex)
    _register(job)
    return job


def _read_run(store: RunStore, objects: Mapping[str, Any]) -> dict[str, Any]:
    """Everything intact in a run folder, and a sentence for each thing that is not."""
    from ..kit.protocol import engine_class

    p = store.path
    problems: list[str] = []
    store.remove_stale_temps()
    data = None
    if store.result_nc.exists():
        try:
            data = store.read_result()
        except Exception as exc:  # noqa: BLE001 - h5py/h5netcdf raise many kinds for a damaged file
            problems.append(f"result.nc cannot be read (truncated, overwritten or not netCDF: {type(exc).__name__})")
    raw: dict[str, Any] = {}
    if store.job_json.exists():
        try:
            raw = store.read_json()
        except (OSError, ValueError) as exc:
            problems.append(str(exc))
    else:
        problems.append("job.json is missing")
    if not raw and data is not None:
        raw = _record_from_result(data, problems)
    record = _clean_record(raw, p.name, problems)
    if record["status"] in ("queued", "running"):
        # the kernel that ran it is gone: what is on disk is a stopped run
        record["note"] = f"reopened after the kernel that ran it ended while it was {record['status']}"
        record["status"] = "stopped"
    engine, resumable = None, False
    try:
        state = store.read_checkpoint()
    except CheckpointError as exc:
        problems.append(str(exc))
        state, record["not_resumable"] = None, f"run {p} cannot be resumed: {exc}"
    else:
        if state is None:
            record["not_resumable"] = f"run {p} has no checkpoint.pt to resume from"
    try:
        cls = engine_class(record["kind"])
        engine = cls.from_config(record["config"], **objects)
    except Exception as exc:  # noqa: BLE001 - from_config checks the user's objects: any error means "not now"
        msg = exc.args[0] if exc.args else type(exc).__name__
        record.setdefault("not_resumable", f"run {p} cannot be resumed: {msg}")
        engine = None
    if engine is not None and state is not None:
        try:
            engine.load_state_dict(state["engine"])
            record["step"] = int(state["runtime"]["step"])
            record["elapsed_s"] = float(state["runtime"]["elapsed_s"])
            resumable = True
            record.pop("not_resumable", None)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"checkpoint.pt does not fit a {record['kind']} engine ({type(exc).__name__}: {exc})")
            record["not_resumable"] = f"run {p} cannot be resumed: its checkpoint.pt does not fit the engine"
            engine = None
    if data is None and resumable:
        try:
            data = engine.snapshot()
            problems.append(f"result.nc: .data was rebuilt from checkpoint.pt (step {record['step']})")
        except Exception:  # noqa: BLE001
            pass
    events = load_events(store, record["status"], problems)
    return {"record": record, "data": data, "engine": engine, "resumable": resumable, "problems": problems,
            "events": events}


def _record_from_result(data: xr.DataTree, problems: list[str]) -> dict[str, Any]:
    """What result.nc's root attrs tell of a run whose job.json is lost."""
    import json

    attrs = data.attrs
    raw: dict[str, Any] = {"name": attrs.get("job_name"), "kind": attrs.get("engine"), "status": "stopped",
                           "created": attrs.get("created")}
    try:
        raw["config"] = json.loads(attrs.get("config", "{}"))
    except (TypeError, ValueError):
        problems.append("result.nc: its config attribute is not JSON")
    problems.append("job.json: the run's name, kind and config were taken from result.nc")
    return {k: v for k, v in raw.items() if v is not None}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _clean_record(raw: Mapping[str, Any], folder: str, problems: list[str]) -> dict[str, Any]:
    """A job.json record whose every field the runtime reads has its type: a field
    that has not is replaced by its default and named in ``problems``."""
    rec = dict(raw)

    def fix(key: str, ok: Callable[[Any], bool], default: Any, expected: str) -> None:
        value = raw.get(key, default)
        if ok(value):
            rec[key] = value
            return
        if key in raw:
            problems.append(f"job.json: {key} is {raw[key]!r}, expected {expected}")
        rec[key] = default

    def count(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    fix("name", valid_name, folder if valid_name(folder) else "run", "a job name (letters, digits, '_', '.', '-')")
    fix("kind", lambda v: isinstance(v, str) and bool(v), "?", "an engine kind")
    fix("status", lambda v: v in STATES, "stopped" if "status" in raw else "done", f"one of {', '.join(STATES)}")
    fix("config", lambda v: isinstance(v, dict), {}, "a JSON object")
    fix("step", count, 0, "a step count")
    fix("elapsed_s", lambda v: _is_number(v) and math.isfinite(v) and v >= 0, 0.0, "seconds")
    fix("progress", lambda v: _is_number(v) or v is None, math.nan, "a fraction")
    rec["progress"] = math.nan if rec["progress"] is None else float(rec["progress"])
    fix("save_every", lambda v: _is_number(v) and v > 0, 5.0, "positive seconds")
    rec["save_every"] = float(rec["save_every"])
    fix("budget_words", lambda v: isinstance(v, list) and all(isinstance(w, str) for w in v), [], "a list of words")
    fix("threads", lambda v: v is None or (count(v) and v >= 1), None, "null or a positive integer")
    for key in ("error", "traceback", "note"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(f"job.json: {key} is not text")
            rec[key] = str(raw[key])
    metrics = raw.get("metrics") or {}
    if not isinstance(metrics, dict):
        problems.append(f"job.json: metrics is {metrics!r}, expected a JSON object")
        metrics = {}
    rec["metrics"] = _clean_metrics_noting(metrics, "job.json", problems)
    return rec


def _clean_metrics_noting(metrics: Mapping[str, Any], where: str, problems: list[str] | None) -> dict[str, float]:
    """Metrics as floats; each value that is not a number becomes NaN and, given
    ``problems``, is named there."""
    out = clean_metrics(metrics)
    if problems is not None:
        for k, v in metrics.items():
            if not (_is_number(v) or v is None):
                problems.append(f"{where}: metric {k!r} is {v!r}, not a number (shown as NaN)")
    return out


def load_events(store: RunStore, status: str, problems: list[str] | None = None) -> ThinnedHistory[Event]:
    """A run's metric history from its ``events.jsonl``, streamed into a bounded
    :class:`ThinnedHistory`. A line that is not a valid event (cut by a crash, not
    UTF-8, not JSON, a field of the wrong type) is skipped and, given ``problems``,
    counted there."""
    import json

    out: ThinnedHistory[Event] = ThinnedHistory(HISTORY_RECENT)
    path = store.events_jsonl
    if not path.exists():
        return out
    bad: list[int] = []
    odd_metrics: list[str] = []
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            try:
                d = json.loads(line.decode("utf-8"))
                step, wall, metrics = d["step"], d["wall_time"], d["metrics"]
                if not (isinstance(step, int) and not isinstance(step, bool) and _is_number(wall)
                        and isinstance(metrics, dict)):
                    raise TypeError
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError):
                bad.append(lineno)
                continue
            if len(odd_metrics) < 3 and not all(_is_number(v) or v is None for v in metrics.values()):
                odd_metrics.append(f"line {lineno}")
            out.append(Event(step, float(wall), clean_metrics(metrics), status))
    if problems is not None and bad:
        where = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        problems.append(f"events.jsonl: {len(bad)} line(s) are not valid events (not UTF-8 JSON with step, "
                        f"wall_time and metrics), skipped: line {where}")
    if problems is not None and odd_metrics:
        problems.append(f"events.jsonl: metric values that are not numbers are shown as NaN ({', '.join(odd_metrics)})")
    return out

"""Jobs: one engine, run by an executor, watched by anyone.

A job keeps its whole metric history on disk (``events.jsonl``) and a bounded,
thinned copy in memory (:class:`~sciml_lab.runtime.history.ThinnedHistory`), so a
job of any length costs the kernel the same memory. What the monitor draws (the
engine's spec, its live view) comes from the step loop as messages too: the job
never reads them off its engine object, which under the process and Dask
executors is a copy that does not run.

Launching and reopening are in :mod:`sciml_lab.runtime.launcher`; a job's
handling of the loop's messages in :mod:`sciml_lab.runtime.receiver`.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Iterator

import xarray as xr

from ..kit.protocol import Engine, check_budget
from ..kit.verdict import Verdict
from .event import FINAL_STATES, STATES, Event, JobFailedError
from .executors import Executor, Handle
from .history import HISTORY_RECENT, ThinnedHistory
from .messages import Snapshot, Stop
from .receiver import JobReceiver
from .store import RunStore

__all__ = ["Job", "Event", "JobFailedError", "launch", "jobs", "get_job", "STATES", "FINAL_STATES"]


class Job(JobReceiver):
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
        self._live_view: dict[str, Any] | None = None  # the engine's latest live_view(), if it has one
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
        self._set_spec_from_engine()

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

    @property
    def spec(self) -> dict[str, Any]:
        """What the monitor draws for this job: the engine's monitor spec as JSON
        (charts, badges, key metric, note, phase) plus the ``until`` targets, as the
        step loop last reported it (badges follow ``until``, which may change in a run).

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> job = launch(PiEngine(steps=2), store=False); _ = job.wait(30)
            >>> job.spec["key"], job.spec["charts"][0]["title"]
            ('estimate', 'estimate of pi')
        """
        with self._lock:
            return self._spec

    @property
    def extend_default(self) -> dict[str, int]:
        """What the monitor's Extend button pays for (the engine's ``default_extend()``)."""
        with self._lock:
            return dict(self._extend_default)

    @property
    def live_view(self) -> dict[str, Any] | None:
        """The engine's latest ``live_view()`` table as the loop sent it (None if it has none)."""
        return self._live_view

    @property
    def key_metric(self) -> tuple[str | None, float | None]:
        """The metric ``%sciml jobs`` and the job board show, and its latest value: the
        spec's key metric, else the first metric the job reported ((None, None) before any).

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> job = launch(PiEngine(steps=2), store=False); _ = job.wait(30)
            >>> job.key_metric[0]
            'estimate'
        """
        m = self.metrics
        key = self.spec.get("key") or next(iter(m), None)
        return key, m.get(key) if key is not None else None

    @property
    def budget_words(self) -> list[str]:
        """The words ``extend`` takes, e.g. ``["steps"]``."""
        words = self.record.get("budget_words")
        return list(words or (self.engine.budget_words if self.engine is not None else ()))

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
                self._handle.send(Snapshot())
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
        handle.send(Stop())
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

    def __repr__(self) -> str:
        p = f"{100 * self._progress:.0f}%" if math.isfinite(self._progress) else "?"
        return f"<Job {self.name!r} kind={self.kind} status={self._status} step={self._step} progress={p}>"

    def __iter__(self) -> Iterator[Event]:  # pragma: no cover - convenience
        return iter(self.events)


# launching and reopening build Jobs: imported last, as they import this module
from .launcher import _JOBS, get_job, jobs, launch, open_run  # noqa: E402,F401
from .reopen import load_events  # noqa: E402,F401

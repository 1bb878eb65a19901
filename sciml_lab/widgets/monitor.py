"""The live monitor: an anywidget that follows one Job.

The widget subscribes to the job's event stream (it never drives the engine). Rows
of metrics are buffered on the job's thread and flushed to the browser by one
shared pump thread at most ``max_rate`` times a second, as a single float64
binary buffer per flush, however fast the engine steps (every format the page reads
is defined in ``wire.json``). A view that renders late
(``%sciml show``, a second view of the same widget, a reloaded page) asks for the
whole history with a ``sync`` message: the monitor keeps a bounded, thinned copy
of the rows (the latest ones in full), so its memory does not grow with the job.

Front end: ``js/src/monitor.js`` and its modules (uPlot charts), built into ``static/``.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from ..runtime.history import ThinnedHistory
from .wire import LEADING, json_safe, rows_message

__all__ = ["Monitor", "STATIC", "monitor_spec"]

STATIC = Path(__file__).parent / "static"
MAX_SYNC_ROWS = 20_000
MAX_EXTEND = 10**12  # a budget beyond this is a typo, not a plan
_STEP = LEADING.index("step")  # a row's step column


def _finite_or_none(x: float) -> float | None:
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


class _Pump:
    """One daemon thread that flushes every live widget at a fixed rate."""

    def __init__(self) -> None:
        self.widgets: "weakref.WeakSet[Any]" = weakref.WeakSet()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.period = 0.1

    def add(self, w) -> None:
        with self.lock:
            self.widgets.add(w)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="sciml-widget-pump", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            with self.lock:
                ws = list(self.widgets)
            for w in ws:
                try:
                    w._tick()
                except Exception:  # a closed comm or a broken widget must not stop the others
                    pass


PUMP = _Pump()


def _file(name: str) -> Path | str:
    p = STATIC / name
    if not p.exists():
        raise FileNotFoundError(
            f"the widget bundle {p} is missing: build it with `npm ci && npm run build` in js/ "
            "(pip install builds it too when npm is available)"
        )
    return p


def monitor_spec(job) -> dict[str, Any]:
    """What the monitor draws for ``job``: its engine's charts and badges, plus the
    ``until`` targets (the ETA extrapolates them), as the job's step loop last
    reported them (:attr:`sciml_lab.runtime.Job.spec`; a run reopened without its
    engine gets them from its engine kind and its record).

    Example:
        >>> from sciml_lab.demo import estimate_pi
        >>> job = estimate_pi(steps=2, store=False); _ = job.wait(30)
        >>> monitor_spec(job)["charts"][0]["title"]
        'estimate of pi'
    """
    return dict(job.spec)


class Monitor(anywidget.AnyWidget):
    """Live view of a job: status, progress with ETA, charts, badges, Stop/Extend.

    Arguments:
        job: a :class:`sciml_lab.runtime.Job`.
        max_rate: flushes to the browser per second at most (default 10).

    Example:
        >>> from sciml_lab.demo import estimate_pi
        >>> job = estimate_pi(steps=5, store=False); _ = job.wait(30)
        >>> Monitor(job).status
        'done'
    """

    _esm = _file("monitor.js")
    _css = _file("monitor.css")

    job_name = t.Unicode("").tag(sync=True)
    kind = t.Unicode("").tag(sync=True)
    status = t.Unicode("queued").tag(sync=True)
    step = t.Int(0).tag(sync=True)
    progress = t.Float(None, allow_none=True).tag(sync=True)
    elapsed = t.Float(0.0).tag(sync=True)
    eta = t.Float(None, allow_none=True).tag(sync=True)
    spec = t.Dict().tag(sync=True)
    metrics = t.Dict().tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    traceback = t.Unicode("").tag(sync=True)
    note = t.Unicode("").tag(sync=True)
    budget_words = t.List(t.Unicode()).tag(sync=True)
    extend_default = t.Dict().tag(sync=True)
    run_dir = t.Unicode("").tag(sync=True)
    resumable = t.Bool(False).tag(sync=True)  # whether Extend can take a failed job on from its checkpoint
    view = t.Dict().tag(sync=True)  # the engine's live table (e.g. a Pareto front in LaTeX)
    verdict = t.Dict(None, allow_none=True).tag(sync=True)  # the finished job's verdict (the status pill)

    def __init__(self, job, max_rate: float = 10.0, **kwargs: Any):
        if not (isinstance(max_rate, (int, float)) and 0 < max_rate <= 60):
            raise ValueError(f"max_rate: expected updates per second in (0, 60], got {max_rate!r}")
        super().__init__(**kwargs)
        self.job = job
        self.min_interval = 1.0 / max_rate
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._rows: ThinnedHistory[list[float]] = ThinnedHistory(MAX_SYNC_ROWS // 2)  # for late views
        self._reset = False  # a resumed job went back to its checkpoint: late rows replace the shown ones
        self._pending: list[list[float]] = []
        self._status_dirty = True
        self._last_flush = 0.0
        self._last_view = None
        self.flushes = 0  # messages of rows sent (tests and benchmarks read it)
        spec = monitor_spec(job)
        self._last_spec = job.spec
        words, default = job.budget_words, job.extend_default
        with self.hold_sync():
            self.job_name, self.kind, self.spec = job.name, job.kind, spec
            self.budget_words, self.extend_default = words, default
            self.run_dir = str(job.store.path) if job.store is not None else ""
            self.note = spec.get("note", "") or job.record.get("note", "")
        for e in job.events:
            if e.metrics:
                self._add_row(e)
        self._unsubscribe = job.subscribe(self._on_event)
        self.on_msg(self._on_custom_msg)
        self._tick()
        PUMP.add(self)

    # -------------------------------------------------------------- job -> widget
    def _add_row(self, e) -> None:
        for k in e.metrics:
            if k not in self._names:
                self._names.append(k)
        row = [float(getattr(e, k)) for k in LEADING] + [float(e.metrics.get(k, math.nan)) for k in self._names]
        self._rows.append(row)
        self._pending.append(row)

    def _on_event(self, job, event) -> None:
        with self._lock:
            if event.metrics:
                if self._rows and event.step <= self._rows[-1][_STEP]:
                    # resumed from an earlier checkpoint: forget the steps that come again
                    self._rows.retain(lambda r: r[_STEP] < event.step)
                    self._pending, self._reset = [], True
                self._add_row(event)
            else:
                self._status_dirty = True

    def _tick(self) -> None:
        """Called by the pump: send what changed since the last flush, if the rate allows."""
        now = time.monotonic()
        if now - self._last_flush < self.min_interval - 1e-3:
            return
        job = self.job
        with self._lock:
            reset, self._reset = self._reset, False
            rows, self._pending = (list(self._rows), []) if reset else (self._pending, [])
            status_dirty, self._status_dirty = self._status_dirty, False
            message = rows_message(self._names, rows, reset) if rows else None
        running = job.status == "running"
        view, spec = job.live_view, job.spec
        new_view = view is not None and view is not self._last_view
        new_spec = spec is not self._last_spec
        if not rows and not status_dirty and not running and not new_view and not new_spec:
            return
        self._last_flush = now
        with self.hold_sync():
            self.status = job.status
            self.step = int(job.step)
            self.progress = _finite_or_none(job.progress)
            self.elapsed = float(job.elapsed)
            self.eta = _finite_or_none(job.eta)
            if rows:
                self.metrics = {k: _finite_or_none(v) for k, v in job.metrics.items()}
            if new_view:
                self.view = json_safe(view)
                self._last_view = view
            if new_spec:
                self.spec, self._last_spec = dict(spec), spec
                self.extend_default = job.extend_default
                self.note = self.spec.get("note", "") or job.record.get("note", "")  # e.g. a pipeline's stages
            if status_dirty:
                verdict = job.verdict
                self.verdict = verdict.to_json() if verdict is not None else None
                self.resumable = bool(job.resumable and job.store is not None)
                self.error = job.error or ""
                self.traceback = job.traceback or ""
                self.note = self.spec.get("note", "") or job.record.get("note", "")
        if message is not None:
            header, buf = message
            self.send(header, [buf])
            self.flushes += 1

    def _send_history(self) -> None:
        with self._lock:
            rows = list(self._rows)
            if len(rows) > MAX_SYNC_ROWS:  # keep the shape: an even stride plus the latest row
                stride = math.ceil(len(rows) / MAX_SYNC_ROWS)
                rows = rows[::stride] + ([rows[-1]] if (len(rows) - 1) % stride else [])
            header, buf = rows_message(self._names, rows, reset=True)
        self.send(header, [buf])

    # -------------------------------------------------------------- widget -> job
    def _on_custom_msg(self, widget, content, buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "sync":
            self._send_history()
        elif kind == "stop":
            self.job.stop()
        elif kind == "extend":
            try:
                self.job.extend(**self._budget(content.get("budget")))
                self.note = ""
            except Exception as exc:  # noqa: BLE001 - a message from the page must never raise in the kernel
                self.note = str(exc)

    def _budget(self, budget: Any) -> dict[str, int]:
        """The budget of an extend message: the default if none is given, else a
        mapping of budget words to positive integers (not bool, float or text)."""
        if budget is None:
            return dict(self.extend_default)
        words = list(self.budget_words)
        if not isinstance(budget, dict) or not budget:
            raise ValueError(f"extend: expected a budget such as {{{words[0] if words else 'steps'!r}: 100}}, "
                             f"got {budget!r}")
        for k, v in budget.items():  # the words are checked by the job, against the engine's
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= MAX_EXTEND:
                raise ValueError(f"extend: {k} must be a whole number from 1 to {MAX_EXTEND:.0e}, got {v!r}")
        return dict(budget)

    def close(self) -> None:
        unsubscribe = getattr(self, "_unsubscribe", None)  # absent if __init__ failed
        try:
            if unsubscribe is not None:
                unsubscribe()
        finally:
            super().close()


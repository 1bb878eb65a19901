"""How a :class:`~sciml_lab.runtime.job.Job` starts segments and takes in what its
step loop reports: one handler per message type of :mod:`sciml_lab.runtime.messages`,
called by :func:`~sciml_lab.runtime.messages.deliver` (the same for every executor).
"""

from __future__ import annotations

import math
import time
from typing import Any, Mapping

from ..kit.verdict import Verdict
from .event import FINAL_STATES, Event
from .executors import Executor
from .loop import now_iso
from .messages import Events, Exited, Extend, Extended, LiveView, Message, Saved, Spec, Status, deliver
from .registry import kind as kind_entry
from .spec import default_extend, engine_spec, record_spec

__all__ = ["JobReceiver"]


class JobReceiver:
    """The half of :class:`~sciml_lab.runtime.job.Job` that starts its segments and takes in
    its loop's messages (the state and the public API live in the Job)."""

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
                    self._handle.send(Extend(budget))
                return
            self._stop_requested = False
            self._launch(resume=self._needs_resume(), budgets=budgets)

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

        def on_message(msg: Message) -> None:
            # messages of an earlier segment (its worker's exit, say) must not touch this one
            if gen == self._generation:
                deliver(msg, self)

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

    def on_events(self, msg: Events) -> None:
        new = []
        with self._cond:
            for step, wall, metrics, progress in msg.rows:
                ev = Event(step, wall, metrics, self._status, progress)
                self._events.append(ev)
                new.append(ev)
                self._step, self._progress, self._metrics = step, progress, metrics
            self.record["step"] = self._step
        for ev in new:
            self._notify(ev)

    def on_status(self, msg: Status) -> None:
        status = msg.status
        with self._cond:
            start = msg.step if status == "running" else None
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
        info = {k: v for k, v in (("error", msg.error), ("traceback", msg.traceback), ("verdict", msg.verdict))
                if v is not None}
        self._set_status(status, info)

    def on_spec(self, msg: Spec) -> None:
        with self._lock:
            self._spec, self._extend_default = msg.monitor, dict(msg.default_extend)

    def on_live_view(self, msg: LiveView) -> None:
        self._live_view = msg.table

    def on_extended(self, msg: Extended) -> None:
        with self._cond:
            if msg.budget in self._pending_extends:
                self._pending_extends.remove(msg.budget)

    def on_saved(self, msg: Saved) -> None:
        with self._cond:
            self._saved_step = msg.step
            if msg.tree is not None:
                self._data, self._data_stale = msg.tree, False
            else:
                self._data_stale = True
            self._cond.notify_all()

    def on_exited(self, msg: Exited) -> None:
        if self._status not in FINAL_STATES:
            if self._killed:
                self.record["note"] = "killed after the stop grace period"
                status, info = "stopped", {}
            else:
                status, info = "failed", {"error": f"the worker exited unexpectedly (exit code {msg.code})",
                                          "traceback": ""}
            self._write_record_from_kernel(status, info)  # on disk before anyone is woken
            self._set_status(status, info)
        with self._cond:
            self._data_stale = True
            self._cond.notify_all()

    def _set_spec_from_engine(self) -> None:
        """The spec before the loop reports one: from the engine in this kernel, or, for
        a run reopened without it, from its engine class and record."""
        words = self.budget_words
        if self.engine is not None:
            self._spec, self._extend_default = engine_spec(self.engine), default_extend(self.engine, words)
            return
        entry = kind_entry(self.kind, default=None)
        self._spec = record_spec(entry.engine if entry is not None else None, self.record.get("config") or {})
        self._extend_default = default_extend(None, words)

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
        self._live_view = None
        self._set_spec_from_engine()

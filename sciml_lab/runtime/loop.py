"""The step loop that every executor runs, wherever the engine lives.

An executor only supplies a *link*: ``commands()`` returns what the controlling
:class:`~sciml_lab.runtime.job.Job` asked for since the last call (stop, extend,
snapshot), and ``send(message)`` reports back. Thread, process and Dask executors
differ only in how those two travel, so the monitor cannot tell them apart.

The messages both ways are the dataclasses of :mod:`sciml_lab.runtime.messages`:
the loop sends ``Status``, ``Events``, ``Extended``, ``Saved``, ``Spec`` (the
engine's monitor spec, when it changes) and ``LiveView`` (the engine's optional
``live_view()``, at most 4 Hz), and receives ``Stop``, ``Extend`` and ``Snapshot``.
"""

from __future__ import annotations

import errno
import json
import math
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any, Mapping, Protocol

import xarray as xr

from .._version import __version__
from ..kit.protocol import Engine
from ..kit.verdict import judge
from .messages import Events, Extend, Extended, LiveView, Message, Saved, Snapshot, Spec, Status, Stop, deliver
from .spec import default_extend, engine_spec
from .store import RunStore

__all__ = ["Link", "drive", "stamp_attrs", "clean_metrics"]

VIEW_PERIOD_S = 0.25


class Link(Protocol):
    local: bool  # True when the controller shares the engine's memory (thread executor)

    def commands(self) -> list[Message]: ...

    def send(self, message: Message) -> None: ...


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def clean_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """Metrics as plain floats (NaN for anything that is not a finite-able number)."""
    out: dict[str, float] = {}
    for k, v in (metrics or {}).items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            out[str(k)] = math.nan
    return out


def stamp_attrs(tree: xr.DataTree, engine: Engine, record: Mapping[str, Any], elapsed: float) -> xr.DataTree:
    """Root attrs every result carries (DESIGN.md, data conventions)."""
    attrs = dict(tree.attrs)
    extra = record.get("attrs")
    if isinstance(extra, Mapping):  # the launcher's provenance attrs
        attrs.update({str(k): str(v) for k, v in extra.items()})
    attrs.setdefault("device", str(getattr(engine, "device", "cpu")))
    seed = getattr(engine, "seed", None)
    attrs.setdefault("seed", -1 if seed is None else int(seed))
    attrs.update(
        sciml_lab_version=__version__,
        engine=engine.kind,
        config=json.dumps(record.get("config", {}), default=str),
        created=record.get("created", now_iso()),
        wall_time_s=float(elapsed),
        job_name=record.get("name", ""),
    )
    if record.get("verdict"):  # set when the job has ended (see drive)
        attrs["verdict"] = json.dumps(record["verdict"])
    tree.attrs = attrs
    return tree


def drive(
    engine: Engine,
    link: Link,
    store: RunStore | None,
    record: dict[str, Any],
    *,
    save_every: float = 5.0,
) -> str:
    """Run ``engine`` until it is done, stopped or fails; returns the final status.

    ``record`` is the job's ``job.json`` content; its ``step`` and ``elapsed_s``
    are where this segment starts (non-zero after an extend or a resume).
    Every step's metrics are sent at once; a link with a per-message cost batches
    them itself (see the Dask executor).
    """
    return _Segment(engine, link, store, record, save_every).run()


class _Segment:
    """One run of the loop, from a start (launch, extend, resume) to an end; it is
    also the receiver of the job's commands (see :func:`~sciml_lab.runtime.messages.deliver`)."""

    def __init__(self, engine: Engine, link: Link, store: RunStore | None, record: dict[str, Any],
                 save_every: float):
        self.engine, self.link, self.store, self.record = engine, link, store, record
        self.save_every = save_every
        self.step = int(record.get("step", 0))
        self.elapsed0 = float(record.get("elapsed_s", 0.0))
        self.t0 = time.monotonic()
        self.events_log = None
        self.metrics: dict[str, float] = dict(record.get("metrics") or {})
        self.live_view = getattr(engine, "live_view", None)
        self.last_view = -math.inf
        self.last_spec: tuple | None = None
        self.monitor_sent: Any = None  # the engine's monitor when its spec was last sent
        self.final: str | None = None
        self.want_snapshot = False

    def elapsed(self) -> float:
        return self.elapsed0 + time.monotonic() - self.t0

    # ------------------------------------------------------------- commands
    def on_stop(self, msg: Stop) -> None:
        self.final = "stopped"

    def on_extend(self, msg: Extend) -> None:
        self.engine.extend(**msg.budget)
        self.link.send(Extended(msg.budget))
        self.send_spec()

    def on_snapshot(self, msg: Snapshot) -> None:
        self.want_snapshot = True

    # ------------------------------------------------------------- reports
    def save(self, status: str, last_metrics: Mapping[str, float] | None = None, checkpoint: bool = True) -> None:
        engine, record, store = self.engine, self.record, self.store
        record.update(status=status, step=self.step, elapsed_s=self.elapsed(), progress=_progress(engine),
                      updated=now_iso())
        if last_metrics is not None:
            record["metrics"] = dict(last_metrics)
        tree = stamp_attrs(engine.snapshot(), engine, record, self.elapsed())
        if store is not None:
            if self.events_log is not None:
                self.events_log.flush()
            store.write_result(tree)
            if checkpoint:
                store.write_checkpoint({"engine": engine.state_dict(),
                                        "runtime": {"step": self.step, "elapsed_s": self.elapsed()}})
            store.write_json(record)
        self.link.send(Saved(self.step, tree if self.link.local else None))

    def send_view(self) -> None:
        if self.live_view is not None:
            self.link.send(LiveView(self.live_view()))
            self.last_view = time.monotonic()

    def send_spec(self) -> None:
        """The engine's monitor spec, when it differs from the one last sent."""
        self.monitor_sent = getattr(self.engine, "monitor", None)
        spec = Spec(engine_spec(self.engine), default_extend(self.engine, tuple(self.engine.budget_words)))
        key = (json.dumps(spec.monitor, sort_keys=True, default=str), json.dumps(spec.default_extend, sort_keys=True))
        if key != self.last_spec:
            self.last_spec = key
            self.link.send(spec)

    # ------------------------------------------------------------- the loop
    def run(self) -> str:
        self.record.update(started=self.record.get("started") or now_iso())
        self.record.pop("verdict", None)  # a new segment (extend, resume) is judged when it ends
        # the step this segment starts from: a resumed run forgets what came after its checkpoint
        self.link.send(Status("running", step=self.step))
        try:
            self.send_spec()
            attach = getattr(self.engine, "attach_run_folder", None)
            if self.store is not None and callable(attach):  # an engine with stages keeps their runs in its folder
                attach(self.store.path)
            if self.store is not None:
                self.store.remove_stale_temps()
                self.store.trim_events(self.step)
                self.events_log = open(self.store.events_jsonl, "a", encoding="utf-8")
            self.save("running")  # the run folder holds a readable result from the first moment
            final = self.loop()
            self.send_view()
            self.send_spec()
            self.record["verdict"] = judge(self.engine, final, self.metrics).to_json()
            self.save(final, self.metrics)
            self.link.send(Status(final, verdict=self.record["verdict"]))
            return final
        except BaseException as exc:  # noqa: BLE001 - a failing engine must never take the kernel down
            self.fail(exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return "failed"
        finally:
            if self.events_log is not None:
                try:
                    self.events_log.close()
                except OSError:  # a full disk: the lines that did not fit are lost, the run is not
                    pass

    def loop(self) -> str:
        last_save = time.monotonic()
        while True:
            self.want_snapshot = False
            for cmd in self.link.commands():
                deliver(cmd, self)
            if self.final is not None:
                return self.final
            if self.engine.done():
                return "done"
            self.metrics = metrics = clean_metrics(self.engine.step())
            self.step += 1
            row = (self.step, self.elapsed(), metrics, _progress(self.engine))
            self.link.send(Events((row,)))
            if self.events_log is not None:
                self.events_log.write(json.dumps({"step": row[0], "wall_time": row[1], "metrics": metrics}) + "\n")
            if getattr(self.engine, "monitor", None) is not self.monitor_sent:  # e.g. a pipeline's next stage
                self.send_spec()
            if self.live_view is not None and time.monotonic() - self.last_view >= VIEW_PERIOD_S:
                self.send_view()
            if self.want_snapshot or time.monotonic() - last_save >= self.save_every:
                self.save("running", metrics)
                last_save = time.monotonic()

    def fail(self, exc: BaseException) -> None:
        tb = traceback.format_exc()
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            error += "; free some space, then extend the job to resume it from its last checkpoint"
        record = self.record
        record.update(error=error, traceback=tb, verdict=judge(self.engine, "failed", self.metrics, error).to_json())
        try:
            # keep everything produced so far; the checkpoint stays the last one taken between two
            # steps (an engine that failed inside a step may be half-updated: no state to resume from)
            self.save("failed", self.metrics, checkpoint=False)
        except BaseException as save_exc:  # noqa: BLE001
            record["save_error"] = f"{type(save_exc).__name__}: {save_exc}"
            if self.store is not None:
                try:
                    self.store.write_json(record)
                except Exception:
                    pass
        self.link.send(Status("failed", error=error, traceback=tb, verdict=record["verdict"]))


def _progress(engine: Engine) -> float:
    try:
        p = float(engine.progress())
    except Exception:
        return math.nan
    return min(max(p, 0.0), 1.0) if math.isfinite(p) else math.nan


def python_info() -> dict[str, str]:
    import numpy
    import xarray

    info = {"python": sys.version.split()[0], "sciml_lab": __version__, "numpy": numpy.__version__,
            "xarray": xarray.__version__}
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    return info

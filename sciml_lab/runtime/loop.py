"""The step loop that every executor runs, wherever the engine lives.

An executor only supplies a *link*: ``commands()`` returns what the controlling
:class:`~sciml_lab.runtime.job.Job` asked for since the last call (stop, extend,
snapshot), and ``send(message)`` reports back. Thread, process and Dask executors
differ only in how those two travel, so the monitor cannot tell them apart.

Messages sent by the loop:
    ("status", status, info)                      status changes; info has error/traceback on failure,
                                                  and the step a segment starts from when running
    ("events", [(step, wall_time, metrics, progress), ...])   live metrics, in batches
    ("extended", budget)                          an extend command was applied
    ("saved", step, tree_or_None)                 result.nc and the checkpoint were written
    ("view", table)                               the engine's optional live_view(), at most 4 Hz
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
from .store import RunStore
from ..kit.verdict import judge

__all__ = ["Link", "drive", "stamp_attrs", "clean_metrics"]

VIEW_PERIOD_S = 0.25


class Link(Protocol):
    local: bool  # True when the controller shares the engine's memory (thread executor)

    def commands(self) -> list[tuple]: ...

    def send(self, message: tuple) -> None: ...


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
    step = int(record.get("step", 0))
    elapsed0 = float(record.get("elapsed_s", 0.0))
    t0 = time.monotonic()
    events_log = None

    def elapsed() -> float:
        return elapsed0 + time.monotonic() - t0

    def save(status: str, last_metrics: Mapping[str, float] | None = None, checkpoint: bool = True) -> None:
        record.update(status=status, step=step, elapsed_s=elapsed(), progress=_progress(engine), updated=now_iso())
        if last_metrics is not None:
            record["metrics"] = dict(last_metrics)
        tree = stamp_attrs(engine.snapshot(), engine, record, elapsed())
        if store is not None:
            if events_log is not None:
                events_log.flush()
            store.write_result(tree)
            if checkpoint:
                store.write_checkpoint({"engine": engine.state_dict(),
                                        "runtime": {"step": step, "elapsed_s": elapsed()}})
            store.write_json(record)
        link.send(("saved", step, tree if link.local else None))

    record.update(started=record.get("started") or now_iso())
    record.pop("verdict", None)  # a new segment (extend, resume) is judged when it ends
    # the step this segment starts from: a resumed run forgets what came after its checkpoint
    link.send(("status", "running", {"step": step}))
    metrics: dict[str, float] = dict(record.get("metrics") or {})
    live_view = getattr(engine, "live_view", None)
    last_view = -math.inf

    def send_view() -> None:
        nonlocal last_view
        if live_view is not None:
            link.send(("view", live_view()))
            last_view = time.monotonic()

    try:
        if store is not None:
            store.remove_stale_temps()
            store.trim_events(step)
            events_log = open(store.events_jsonl, "a", encoding="utf-8")
        save("running")  # the run folder holds a readable result from the first moment
        last_save = time.monotonic()
        final = None
        while final is None:
            want_snapshot = False
            for cmd in link.commands():
                if cmd[0] == "stop":
                    final = "stopped"
                elif cmd[0] == "extend":
                    engine.extend(**cmd[1])
                    link.send(("extended", cmd[1]))
                elif cmd[0] == "snapshot":
                    want_snapshot = True
            if final is not None:
                break
            if engine.done():
                final = "done"
                break
            metrics = clean_metrics(engine.step())
            step += 1
            ev = (step, elapsed(), metrics, _progress(engine))
            link.send(("events", [ev]))
            if events_log is not None:
                events_log.write(json.dumps({"step": ev[0], "wall_time": ev[1], "metrics": metrics}) + "\n")
            if live_view is not None and time.monotonic() - last_view >= VIEW_PERIOD_S:
                send_view()
            if want_snapshot or time.monotonic() - last_save >= save_every:
                save("running", metrics)
                last_save = time.monotonic()
        send_view()
        record["verdict"] = judge(engine, final, metrics).to_json()
        save(final, metrics)
        link.send(("status", final, {"verdict": record["verdict"]}))
        return final
    except BaseException as exc:  # noqa: BLE001 - a failing engine must never take the kernel down
        tb = traceback.format_exc()
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            error += "; free some space, then extend the job to resume it from its last checkpoint"
        record.update(error=error, traceback=tb, verdict=judge(engine, "failed", metrics, error).to_json())
        try:
            # keep everything produced so far; the checkpoint stays the last one taken between two
            # steps (an engine that failed inside a step may be half-updated: no state to resume from)
            save("failed", metrics, checkpoint=False)
        except BaseException as save_exc:  # noqa: BLE001
            record["save_error"] = f"{type(save_exc).__name__}: {save_exc}"
            if store is not None:
                try:
                    store.write_json(record)
                except Exception:
                    pass
        link.send(("status", "failed", {"error": error, "traceback": tb, "verdict": record["verdict"]}))
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return "failed"
    finally:
        if events_log is not None:
            try:
                events_log.close()
            except OSError:  # a full disk: the lines that did not fit are lost, the run is not
                pass


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

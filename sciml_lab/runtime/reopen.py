"""Reading a run folder back: everything intact, and a precise sentence for each
thing that is not (a damaged file never stops a run from opening).

Nothing is unpickled: ``job.json`` and ``events.jsonl`` are JSON, the checkpoint
loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Mapping

import xarray as xr

from .event import STATES, Event
from .history import HISTORY_RECENT, ThinnedHistory
from .loop import clean_metrics
from .registry import engine_class
from .store import CheckpointError, RunStore, valid_name

__all__ = ["load_events"]


def _read_run(store: RunStore, objects: Mapping[str, Any]) -> dict[str, Any]:
    """Everything intact in a run folder, and a sentence for each thing that is not."""
    problems: list[str] = []
    store.remove_stale_temps()
    data, record = _read_result_and_record(store, problems)
    if record["status"] in ("queued", "running"):
        # the kernel that ran it is gone: what is on disk is a stopped run
        record["note"] = f"reopened after the kernel that ran it ended while it was {record['status']}"
        record["status"] = "stopped"
    engine, resumable = _rebuild_engine(store, record, objects, problems)
    if data is None and resumable:
        try:
            data = engine.snapshot()
            problems.append(f"result.nc: .data was rebuilt from checkpoint.pt (step {record['step']})")
        except Exception:  # noqa: BLE001
            pass
    events = load_events(store, record["status"], problems)
    return {"record": record, "data": data, "engine": engine, "resumable": resumable, "problems": problems,
            "events": events}


def _read_result_and_record(store: RunStore, problems: list[str]) -> tuple[xr.DataTree | None, dict[str, Any]]:
    """result.nc (None if unreadable) and the cleaned job.json record (rebuilt from
    result.nc's attrs if job.json is lost)."""
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
    return data, _clean_record(raw, store.path.name, problems)


def _rebuild_engine(store: RunStore, record: dict[str, Any], objects: Mapping[str, Any],
                    problems: list[str]) -> tuple[Any, bool]:
    """The engine rebuilt from the record's config and loaded from the checkpoint, and
    whether the run can be resumed (else ``record["not_resumable"]`` says why)."""
    p = store.path
    try:
        state = store.read_checkpoint()
    except CheckpointError as exc:
        problems.append(str(exc))
        state, record["not_resumable"] = None, f"run {p} cannot be resumed: {exc}"
    else:
        if state is None:
            record["not_resumable"] = f"run {p} has no checkpoint.pt to resume from"
    try:
        engine = engine_class(record["kind"]).from_config(record["config"], **objects)
    except Exception as exc:  # noqa: BLE001 - from_config checks the user's objects: any error means "not now"
        msg = exc.args[0] if exc.args else type(exc).__name__
        record.setdefault("not_resumable", f"run {p} cannot be resumed: {msg}")
        return None, False
    if state is None:
        return engine, False
    try:
        engine.load_state_dict(state["engine"])
        record["step"] = int(state["runtime"]["step"])
        record["elapsed_s"] = float(state["runtime"]["elapsed_s"])
    except Exception as exc:  # noqa: BLE001
        problems.append(f"checkpoint.pt does not fit a {record['kind']} engine ({type(exc).__name__}: {exc})")
        record["not_resumable"] = f"run {p} cannot be resumed: its checkpoint.pt does not fit the engine"
        return None, False
    record.pop("not_resumable", None)
    return engine, True


def _record_from_result(data: xr.DataTree, problems: list[str]) -> dict[str, Any]:
    """What result.nc's root attrs tell of a run whose job.json is lost."""
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

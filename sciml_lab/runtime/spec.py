"""What the monitor draws for a job: its engine's :class:`~sciml_lab.kit.protocol.MonitorSpec`
as JSON plus the run's ``until`` targets, and what its Extend button pays for.

The step loop sends them to the job as :class:`~sciml_lab.runtime.messages.Spec`
messages (they may change during a run: badges follow ``until``); a run reopened
without its engine (e.g. flow-MCMC without ``log_prob``) gets them from its engine
class and its record, so its charts keep their titles, scales and reference lines.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..kit.protocol import parse_criteria

__all__ = ["engine_spec", "default_extend", "record_spec"]

EMPTY = {"charts": [], "badges": [], "key": None, "note": ""}


def _until(until: Any) -> list:
    try:
        return parse_criteria(until) if isinstance(until, str) else []
    except ValueError:
        return []


def _with_until(spec: dict[str, Any], criteria: list) -> dict[str, Any]:
    spec["until"] = [{"metric": c.metric, "op": c.op, "value": c.value} for c in criteria]
    return spec


def engine_spec(engine: Any) -> dict[str, Any]:
    """The monitor spec of a live engine: its ``monitor`` (per run) and its ``until``
    targets (its ``criteria``, as the engine kit keeps them, else its ``until`` text).

    Example:
        >>> from sciml_lab.demo import PiEngine
        >>> s = engine_spec(PiEngine(steps=2)); s["key"], s["until"]
        ('estimate', [])
    """
    # EngineBase's class default is an empty list: an engine keeping only ``until`` text counts too
    criteria = getattr(engine, "criteria", None) or _until(getattr(engine, "until", None))
    return _with_until(engine.monitor.to_json(), list(criteria))


def default_extend(engine: Any, words: "list[str] | tuple[str, ...]") -> dict[str, int]:
    """What the Extend button pays for: the engine's ``default_extend()``, else 100
    of its first budget word."""
    if engine is not None and hasattr(engine, "default_extend"):
        return dict(engine.default_extend())
    return {words[0]: 100} if words else {}


def record_spec(engine_cls: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """The monitor spec of a run reopened without its engine: the class's charts and
    badges, the badges showing this run's ``until`` targets (``config["until"]``)."""
    try:
        spec = engine_cls.monitor.to_json()
    except AttributeError:
        spec = dict(EMPTY)
    criteria = _until(config.get("until"))
    targets = {c.metric: c for c in criteria}
    spec["badges"] = [{**b, "op": targets[b["metric"]].op, "value": targets[b["metric"]].value}
                      if b.get("metric") in targets else b for b in spec.get("badges", [])]
    return _with_until(spec, criteria)

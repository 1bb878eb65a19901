"""Verdicts: what a finished job says about whether to trust it.

When a job ends the runtime asks its engine for a :class:`Verdict` (DESIGN.md,
"Verdicts"): ``converged`` (every ``until`` criterion met), ``target missed`` (the
budget ran out first: which metric, its value, its target), ``done`` (no target was
set), ``stopped`` (by the user) or ``failed`` (with the reason), plus warnings in
words and numbers (per parameter, per run, per constant). The verdict is stored in
``job.json`` and in the result's root attrs (``verdict``, JSON text), read back as
``job.verdict``, shown in ``%sciml jobs`` and as the monitor's status pill.

An engine gets the shared judgement of its ``until`` criteria for free
(:func:`criteria_verdict`, the default of ``EngineBase.verdict``); it adds what only
it knows through an optional ``warnings() -> list[str]`` method or its own
``verdict(metrics)``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["Verdict", "STATUSES", "criteria_verdict", "judge", "describe_criterion", "distinct"]

STATUSES = ("converged", "target missed", "done", "stopped", "failed")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A finished job's verdict.

    Attributes:
        status: one of ``STATUSES``.
        reasons: why, in words and numbers (each criterion met or missed, the error).
        warnings: what a careful reader should know even when the status is good.

    Example:
        >>> v = Verdict("target missed", ["R-hat 1.021 > 1.01 (tau)"], ["3 divergent transitions"])
        >>> v.text
        'target missed: R-hat 1.021 > 1.01 (tau)'
        >>> v.level
        'warn'
        >>> Verdict.from_json(v.to_json()) == v
        True
    """

    status: str
    reasons: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status: expected one of {', '.join(STATUSES)}, got {self.status!r}")
        object.__setattr__(self, "reasons", [str(r) for r in self.reasons])
        object.__setattr__(self, "warnings", [str(w) for w in self.warnings])

    @property
    def text(self) -> str:
        """The one-line form shown in the monitor's status pill and ``%sciml jobs``:
        ``converged``, ``target missed: R-hat 1.021 > 1.01 (tau)``, ``done with 2 warnings``."""
        n = len(self.warnings)
        with_warnings = f" with {n} warning{'s' if n != 1 else ''}" if n else ""
        if self.status in ("target missed", "failed") or (self.status == "stopped" and self.reasons):
            return f"{self.status}: {'; '.join(self.reasons)}" if self.reasons else self.status
        return self.status + with_warnings

    @property
    def level(self) -> str:
        """``ok`` (green), ``warn`` (orange), ``error`` (red) or ``neutral`` (stopped
        with nothing to judge): the pill's colour."""
        if self.status == "failed":
            return "error"
        if self.status == "target missed" or self.warnings or (self.status == "stopped" and self.reasons):
            return "warn"
        return "neutral" if self.status == "stopped" else "ok"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``job.json`` and the result's attrs hold), with
        ``text`` and ``level`` for readers that do not know this class."""
        return {"status": self.status, "reasons": list(self.reasons), "warnings": list(self.warnings),
                "text": self.text, "level": self.level}

    @classmethod
    def from_json(cls, data: "Mapping[str, Any] | str") -> "Verdict":
        """Rebuild from :meth:`to_json` (a dict or its JSON text)."""
        if isinstance(data, str):
            data = json.loads(data)
        return cls(str(data["status"]), list(data.get("reasons") or []), list(data.get("warnings") or []))

    def __str__(self) -> str:
        lines = [self.text]
        if self.status not in ("target missed", "failed") and self.reasons:
            lines += [f"  {r}" for r in self.reasons]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def distinct(value: float, target: float, fmt: str = ".4g") -> str:
    """``value`` formatted with ``fmt``, with more digits where that would show it equal
    to a different ``target`` (1.0104 against 1.01 reads 1.0104, not 1.010).

    Example:
        >>> distinct(1.0104, 1.01, ".3f"), distinct(1.021, 1.01, ".3f"), distinct(1.04e-5, 1e-5, ".2g")
        ('1.0104', '1.021', '1.04e-05')
    """
    try:
        text = format(value, fmt)
    except (TypeError, ValueError):
        text = f"{value:.4g}"
    scientific = "e" in text.lower()
    digits = 2 if scientific else len(text.split(".")[1]) + 1 if "." in text else 1
    while (float(text) > target) != (value > target) or (float(text) < target) != (value < target):
        if digits > 15:
            break
        text, digits = f"{value:.{digits}{'g' if scientific else 'f'}}", digits + 1
    return text


def describe_criterion(criterion: Any, value: float | None, label: str | None = None, fmt: str = ".4g",
                       where: str | None = None) -> str:
    """A criterion against its value in words and numbers: ``R-hat 1.021 > 1.01 (tau)``.

    The sign is the true relation of the value to the target (``=`` when equal), so
    a missed ``rhat<1.01`` at exactly 1.01 reads ``R-hat 1.01 = 1.01``.

    Example:
        >>> from sciml_lab.kit.protocol import Criterion
        >>> describe_criterion(Criterion.parse("ess>1000"), 412.3, "ESS", ".0f", "tau")
        'ESS 412 < 1000 (tau)'
        >>> describe_criterion(Criterion.parse("rhat<1.01"), float("nan"), "R-hat")
        'R-hat not computed (target rhat<1.01)'
    """
    label = label or criterion.metric
    if value is None or not math.isfinite(float(value)):
        return f"{label} not computed (target {criterion})"
    v = float(value)
    sign = "<" if v < criterion.value else ">" if v > criterion.value else "="
    text = f"{label} {distinct(v, criterion.value, fmt)} {sign} {criterion.value:g}"
    return f"{text} ({where})" if where else text


def _badges(monitor: Any) -> list[tuple[Any, Any]]:
    """``[(badge, its criterion)]`` of an engine's monitor."""
    from .protocol import Criterion  # engine.py imports this module

    return [(b, Criterion.parse(b.criterion)) for b in getattr(monitor, "badges", ()) or ()]


def criteria_verdict(criteria: Sequence[Any], metrics: Mapping[str, float], *, monitor: Any = None,
                     where: Mapping[str, str] | None = None, warnings: Iterable[str] = (),
                     default_targets: bool = True) -> Verdict:
    """The shared judgement of ``until`` criteria on a finished run's last metrics.

    ``converged`` when every criterion holds, ``target missed`` (one reason per
    missed criterion) otherwise, ``done`` without criteria. A badge of ``monitor``
    whose metric no criterion names is judged on its default target: if it does not
    hold, that is a warning (so "done" alone never hides a missed default target),
    as is a badge metric that is not a number at the end.

    Arguments:
        criteria: :class:`~sciml_lab.kit.protocol.Criterion` objects (all must hold).
        metrics: the run's last metrics.
        monitor: the engine's :class:`~sciml_lab.kit.protocol.MonitorSpec` (labels,
            formats and default targets of its badges).
        where: ``{metric: text}`` put in brackets after a metric, e.g. the parameter
            with the worst R-hat.
        warnings: the engine's own warnings, appended.
        default_targets: judge the badges' default targets (off for an engine whose
            own warnings already cover them).

    Example:
        >>> from sciml_lab.kit.protocol import parse_criteria
        >>> criteria_verdict(parse_criteria("rhat<1.01 ess>1000"), {"rhat": 1.021, "ess": 2400},
        ...                  where={"rhat": "tau"}).text
        'target missed: rhat 1.021 > 1.01 (tau)'
    """
    badges = _badges(monitor)
    labels = {c.metric: (b.label, b.fmt) for b, c in badges}
    where = dict(where or {})

    def describe(c: Any) -> str:
        label, fmt = labels.get(c.metric, (c.metric, ".4g"))
        return describe_criterion(c, metrics.get(c.metric), label, fmt, where.get(c.metric))

    missed = [describe(c) for c in criteria if not c.met(metrics)]
    met = [describe(c) for c in criteria if c.met(metrics)]
    extra: list[str] = []
    named = {c.metric for c in criteria}
    for b, c in badges if default_targets else ():
        if c.metric in named or c.metric not in metrics:
            continue
        value = metrics.get(c.metric)
        if value is None or not math.isfinite(float(value)):
            extra.append(f"{b.label} is not a number at the end: nothing to judge the result by")
        elif not c.met(metrics):
            extra.append(f"{describe(c)}: the default target {c} is not met")
    all_warnings = extra + [str(w) for w in warnings]
    if missed:
        return Verdict("target missed", missed, all_warnings)
    if criteria:
        return Verdict("converged", met, all_warnings)
    return Verdict("done", [], all_warnings)


def judge(engine: Any, status: str, metrics: Mapping[str, float] | None = None,
          error: str | None = None) -> Verdict:
    """The verdict the runtime records when a job ends with ``status`` (done,
    stopped or failed). Never raises: a verdict that cannot be computed becomes a
    warning saying why.

    ``done`` asks the engine (its ``verdict(metrics)`` if it has one, else
    :func:`criteria_verdict` on its ``criteria``, ``monitor`` and ``warnings()``);
    ``stopped`` keeps the engine's verdict when it converged and otherwise says what
    was still missing; ``failed`` gives the error as the reason.

    Example:
        >>> from sciml_lab.demo import PiEngine
        >>> judge(PiEngine(steps=1), "failed", error="ValueError: bad input").text
        'failed: ValueError: bad input'
    """
    metrics = dict(metrics or {})
    try:
        own = getattr(engine, "verdict", None)
        if callable(own):
            v = own(metrics)
        else:
            from .protocol import EngineBase  # engine.py imports this module

            v = EngineBase.verdict(engine, metrics)  # the default, for engines not derived from it
    except Exception as exc:  # noqa: BLE001 - judging must never fail a job
        v = Verdict("done", [], [f"the verdict could not be computed ({type(exc).__name__}: {exc})"])
    if status == "failed":
        return Verdict("failed", [error or "the job failed"], v.warnings)
    if status == "stopped" and v.status != "converged":
        reasons = v.reasons if v.status == "target missed" else []
        return Verdict("stopped", reasons, v.warnings)
    return v

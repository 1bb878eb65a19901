"""The engine protocol: what the runtime needs from a job kind.

An engine is pure computation. The runtime drives it one bounded ``step()`` at a
time, asks it for a ``snapshot()`` (an :class:`xarray.DataTree`) and a
``state_dict()`` (a checkpoint made only of tensors, numbers, strings, lists and
dicts, so that it loads with ``torch.load(weights_only=True)``), and never looks
inside. Engines import neither IPython, ipywidgets nor the executors.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from typing import Any, ClassVar, Mapping, Protocol, runtime_checkable

import xarray as xr

from .verdict import Verdict, criteria_verdict

__all__ = [
    "Engine",
    "EngineBase",
    "Verdict",
    "Badge",
    "Chart",
    "MonitorSpec",
    "Phase",
    "Criterion",
    "parse_criteria",
    "badge_targets",
    "check_budget",
]


@runtime_checkable
class Engine(Protocol):
    """What every job kind implements (see DESIGN.md, "The engine protocol").

    Class attributes:
        kind: the engine's name, e.g. ``"flowmc"``; also its key in the engine registry.
        budget_words: the keyword arguments ``extend`` accepts, e.g. ``("steps",)``;
            ``%sciml extend NAME --steps 100`` checks its options against them.
        monitor: the charts and convergence badges the live monitor draws.

    Example:
        >>> from sciml_lab.demo import PiEngine
        >>> isinstance(PiEngine(samples_per_step=10, steps=2), Engine)
        True
    """

    kind: ClassVar[str]
    budget_words: ClassVar[tuple[str, ...]]
    monitor: ClassVar["MonitorSpec"]

    def step(self) -> Mapping[str, float]:
                """Do one bounded unit of work (well under a second) and return live metrics.

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> m = PiEngine(samples_per_step=1000, steps=2).step()
            >>> sorted(m)
            ['abs_error', 'estimate', 'lower', 'samples', 'stderr', 'upper']
        """

    def done(self) -> bool:
                """True once the budget is spent or the convergence target is met.

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> e = PiEngine(samples_per_step=10, steps=1)
            >>> e.done(), e.step() is not None and e.done()
            (False, True)
        """

    def progress(self) -> float:
                """Fraction of the current budget spent, in [0, 1].

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> e = PiEngine(samples_per_step=10, steps=4); _ = e.step()
            >>> e.progress()
            0.25
        """

    def extend(self, **budget: Any) -> None:
                """Raise the budget by the given amounts, keeping all state.

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> e = PiEngine(samples_per_step=10, steps=1); _ = e.step()
            >>> e.extend(steps=3); e.done(), e.progress()
            (False, 0.25)
        """

    def snapshot(self) -> xr.DataTree:
                """The result so far; cheap; called between steps.

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> e = PiEngine(samples_per_step=10, steps=2); _ = e.step()
            >>> sorted(e.snapshot().children), e.snapshot()["history"].sizes["step"]
            (['estimate', 'history'], 1)
        """

    def state_dict(self) -> dict[str, Any]:
                """A checkpoint: tensors, numbers, strings, lists and dicts only.

        Example:
            >>> import io, torch
            >>> from sciml_lab.demo import PiEngine
            >>> buf = io.BytesIO(); torch.save(PiEngine(steps=1).state_dict(), buf); _ = buf.seek(0)
            >>> sorted(torch.load(buf, weights_only=True))   # loads without unpickling code
            ['budget', 'gen', 'history', 'inside']
        """

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
                """Restore a checkpoint made by ``state_dict``.

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> a = PiEngine(samples_per_step=10, steps=3); _ = a.step()
            >>> b = PiEngine(samples_per_step=10, steps=3); b.load_state_dict(a.state_dict())
            >>> a.step() == b.step()   # the same state: the same next step
            True
        """

    def config(self) -> dict[str, Any]:
                """JSON-serialisable settings; with ``from_config`` they rebuild the engine.

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> PiEngine(steps=5).config()
            {'samples_per_step': 100000, 'steps': 5, 'seed': 0, 'delay': 0.0}
        """

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "Engine":
        """Rebuild an engine from ``config()`` plus objects that cannot be stored as
        data (a user's log-density or simulator), passed by name.

        Example:
            >>> from sciml_lab.demo import PiEngine
            >>> PiEngine.from_config(PiEngine(steps=5, seed=3).config()).config()["seed"]
            3
        """

    # Optional, not part of the runtime check:
    #   default_extend() -> dict        what the monitor's Extend button pays for by default
    #   live_view() -> dict             a small table the monitor shows live (at most ~4 Hz):
    #       {"title": str, "columns": [str], "rows": [[str | float]], "latex": [column names]}
    #   verdict(metrics) -> Verdict     asked when the job ends (see EngineBase and
    #                                   sciml_lab.kit.verdict); default: the until
    #                                   criteria judged on the last metrics
    #   warnings() -> list[str]         what the default verdict adds, in words and numbers


class EngineBase:
    """Optional base class of engines: the default :meth:`verdict`.

    An engine that keeps its ``until`` target as ``self.criteria`` (a list of
    :class:`Criterion`), its badges in ``self.monitor`` and, optionally, its own
    ``warnings()`` gets a verdict without writing one. Engines that do not derive
    from this class get the same default from the runtime
    (:func:`sciml_lab.kit.verdict.judge`).

    Example:
        >>> class Fit(EngineBase):
        ...     criteria = parse_criteria("loss<0.1")
        ...     def warnings(self): return ["2 of 40 points are outliers"]
        >>> Fit().verdict({"loss": 0.3}).text
        'target missed: loss 0.3 > 0.1'
        >>> Fit().verdict({"loss": 0.05}).text
        'converged with 1 warning'
    """

    criteria: list = []

    def warnings(self) -> list[str]:
        """Engine-specific warnings in words and numbers (none by default)."""
        return []

    def verdict(self, metrics: Mapping[str, float] | None = None) -> Verdict:
        """The verdict on the run so far: ``metrics`` are its last live metrics
        (default: ``self.metrics`` if the engine keeps them)."""
        metrics = dict(metrics or getattr(self, "metrics", None) or {})
        warnings = getattr(self, "warnings", None)  # also called on engines not derived from this class
        return criteria_verdict(getattr(self, "criteria", None) or (), metrics,
                                monitor=getattr(self, "monitor", None),
                                warnings=warnings() if callable(warnings) else ())


_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_CRITERION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+0-9.eE]+|inf)\s*$")


@dataclasses.dataclass(frozen=True)
class Criterion:
    """A threshold on a metric, such as ``rhat<1.01``.

    Example:
        >>> Criterion.parse("rhat<1.01").met({"rhat": 1.005})
        True
    """

    metric: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> "Criterion":
        m = _CRITERION.match(text)
        if not m:
            raise ValueError(
                f"criterion {text!r} is not of the form METRIC<VALUE, METRIC>VALUE, "
                "METRIC<=VALUE or METRIC>=VALUE (e.g. 'rhat<1.01')"
            )
        return cls(m.group(1), m.group(2), float(m.group(3)))

    def met(self, metrics: Mapping[str, float]) -> bool:
        v = metrics.get(self.metric)
        if v is None or not math.isfinite(float(v)):
            return False
        return bool(_OPS[self.op](float(v), self.value))

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


def parse_criteria(text: str | None, known: tuple[str, ...] | None = None) -> list[Criterion]:
    """Parse a convergence target such as ``"rhat<1.01 ess>2000"`` (all must hold).

    ``known`` lists the metric names the engine reports; an unknown name is an error.

    Example:
        >>> [str(c) for c in parse_criteria("rhat<1.01 ess>2000")]
        ['rhat<1.01', 'ess>2000']
    """
    if text is None or not str(text).strip():
        return []
    parts = re.split(r"[\s,]+(?=[A-Za-z_])", str(text).strip())
    out = [Criterion.parse(p) for p in parts]
    if known is not None:
        for c in out:
            if c.metric not in known:
                raise ValueError(
                    f"until: unknown metric {c.metric!r}; expected one of {', '.join(known)}"
                )
    return out


def badge_targets(until: str | None, defaults: Mapping[str, str]) -> dict[str, str]:
    """The criterion each badge shows: the user's convergence target where it names
    the badge's metric, else the engine's default.

    Example:
        >>> badge_targets("rhat<1.001", {"rhat": "rhat<1.01", "ess": "ess>400"})
        {'rhat': 'rhat<1.001', 'ess': 'ess>400'}
    """
    out = dict(defaults)
    for c in parse_criteria(until):
        if c.metric in out:
            out[c.metric] = str(c)
    return out


@dataclasses.dataclass(frozen=True)
class Chart:
    """A live line chart of some metrics against the step (or ``x`` metric)."""

    title: str
    series: tuple[str, ...]
    log_y: bool = False
    hlines: tuple[float, ...] = ()
    x: str | None = None  # a metric to use as abscissa, e.g. "runs"; default: wall time
    y_max: float | None = None  # the y-axis ends here at most (larger values leave the chart)


@dataclasses.dataclass(frozen=True)
class Badge:
    """A convergence badge: green when ``criterion`` holds on the latest metrics."""

    label: str
    criterion: str  # e.g. "rhat<1.01"
    fmt: str = ".3g"

    def to_json(self) -> dict[str, Any]:
        c = Criterion.parse(self.criterion)
        return {"label": self.label, "metric": c.metric, "op": c.op, "value": c.value, "fmt": self.fmt}


@dataclasses.dataclass(frozen=True)
class Phase:
    """The phase an engine is in, shown as a pill beside the badges: ``labels[int(m)]``
    for the latest value ``m`` of ``metric``, followed by a counter metric if given.

    Example:
        >>> Phase("production", ("training", "production"), counter="loop").to_json()["labels"]
        ['training', 'production']
    """

    metric: str
    labels: tuple[str, ...]
    counter: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "labels": list(self.labels), "counter": self.counter}


@dataclasses.dataclass(frozen=True)
class MonitorSpec:
    """What the live monitor shows for an engine: charts, badges and the key metric
    printed in ``%sciml jobs``."""

    charts: tuple[Chart, ...] = ()
    badges: tuple[Badge, ...] = ()
    key: str | None = None
    note: str = ""
    phase: Phase | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "charts": [
                {"title": c.title, "series": list(c.series), "log_y": c.log_y,
                 "hlines": list(c.hlines), "x": c.x, "y_max": c.y_max}
                for c in self.charts
            ],
            "badges": [b.to_json() for b in self.badges],
            "key": self.key,
            "note": self.note,
            "phase": self.phase.to_json() if self.phase else None,
        }


def check_budget(engine: Any, budget: Mapping[str, Any]) -> dict[str, int]:
    """Validate ``extend`` keywords against ``engine.budget_words``: positive integers only."""
    words = tuple(getattr(engine, "budget_words", ()))
    if not budget:
        raise ValueError(f"extend needs a budget: one of {', '.join(words)} (e.g. {words[0]}=100)")
    out = {}
    for k, v in budget.items():
        if k not in words:
            raise ValueError(
                f"extend: {type(engine).__name__} has no budget word {k!r}; expected one of {', '.join(words)}"
            )
        if isinstance(v, bool) or not isinstance(v, (int,)) and not (isinstance(v, float) and v.is_integer()):
            raise ValueError(f"extend: {k} must be a positive integer, got {v!r}")
        if int(v) <= 0:
            raise ValueError(f"extend: {k} must be a positive integer, got {v!r}")
        out[k] = int(v)
    return out

"""The symbolic regression settings: one frozen dataclass that is the engine's signature.

Every option is declared once below (default, check, help and, for those
``%sciml symreg`` exposes, its flag); :class:`~sciml_lab.symreg.engine.SymRegEngine`'s
keyword arguments, its ``config()``/``from_config()`` and the magic's options all
come from this declaration.

Live metrics (what ``until`` may name, see :data:`METRICS`): ``loss`` and ``r2``
are the selected equation's mean squared error and R² (on all rows once it has been
scored on them, else on the search rows), ``best_loss`` and ``best_r2`` those of the
most accurate equation on the front (on the search rows), ``complexity`` the selected
equation's number of tokens, ``front_size``, ``iteration`` and ``evals_per_s``.

Example:
    >>> s = SymRegSettings(time_limit=60)
    >>> s.total_iterations, SymRegSettings().total_iterations   # the time is the budget
    (100000, 200)
    >>> [str(c) for c in SymRegSettings(until="r2>0.999 complexity<=9").criteria]
    ['r2>0.999', 'complexity<=9']
    >>> SymRegSettings(maxsize=2)
    Traceback (most recent call last):
    ...
    ValueError: maxsize: expected an integer >= 3, got 2
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from ..kit.checks import at_least, number, one_of, optional, text, tuple_of
from ..kit.device import resolve_device, resolve_dtype
from ..kit.protocol import Criterion, parse_criteria
from ..kit.settings import Settings, option

__all__ = ["SymRegSettings", "METRICS", "DEFAULT_OPS", "DEFAULT_NESTED", "SELECTIONS", "SEARCH_ROWS",
           "SCORE_ROWS_PER_STEP", "EXACT", "FIT_ROWS"]

DEFAULT_OPS = "+ - * / sin cos exp log"
_TRIG = ["sin", "cos", "tan"]
_EXPLOG = ["exp", "log"]
#: nesting forbidden by default: no sin(cos(.)), exp(exp(.)), log(exp(.)), ...
DEFAULT_NESTED: dict[str, list[str]] = {**{t: _TRIG for t in _TRIG}, **{e: _EXPLOG for e in _EXPLOG},
                                        "sqrt": ["sqrt"], "tanh": ["tanh"]}
SELECTIONS = ("best", "accuracy", "score")
# the step budget when none is given: with a time limit, the time is the budget
DEFAULT_ITERATIONS, TIMED_ITERATIONS = 200, 100_000
#: a relative loss below this is "exact to numerical precision" (floor of log-loss and scores)
EXACT = 1e-12
#: default number of rows the search evaluates candidates on (a fixed subsample of larger data)
SEARCH_ROWS = 2048
#: default number of rows the search's constant fits use (a fixed subsample of the search rows)
FIT_ROWS = 128
#: default row-evaluations per step spent scoring the front on all rows
SCORE_ROWS_PER_STEP = 1 << 20
#: the live metrics of a step (``until`` may name any of them; see the module's docstring)
METRICS = ("loss", "r2", "best_loss", "best_r2", "complexity", "front_size", "iteration", "evals_per_s")


def _ops(name: str, v: Any) -> str:
    if isinstance(v, str):
        return v
    return " ".join(tuple_of(text)(name, v))


def _units(name: str, v: Any) -> dict[str, str] | None:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise ValueError(f"{name}: expected a dict {{name: unit}}, got {v!r}")
    return {text(name, k): text(name, u) for k, u in v.items()}


def _nested(name: str, v: Any) -> dict[str, list[str]] | None:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise ValueError(f"{name}: expected a dict {{outer: [inner, ...]}}, got {v!r}")
    return {text(name, k): list(tuple_of(text)(name, inner)) for k, inner in v.items()}


def _stop_loss(name: str, v: Any) -> "float | str | None":
    if v is None or v == "auto":
        return v
    try:
        return number(0)(name, v)
    except ValueError:
        raise ValueError(f"{name}: expected a number >= 0, 'auto' or None, got {v!r}") from None


def _until(name: str, v: Any) -> str | None:
    if v is None:
        return None
    try:
        parse_criteria(text(name, v), METRICS)
    except ValueError as exc:
        raise ValueError(str(exc) if str(exc).startswith(name) else f"{name}: {exc}") from None
    return v


def _device(name: str, v: Any) -> str:
    resolve_device(v)  # a clear error now, not at the first step
    return str(v) if isinstance(v, torch.device) else text(name, v)


def _dtype(name: str, v: Any) -> str:
    return "float64" if resolve_dtype(v) == torch.float64 else "float32"


@dataclasses.dataclass(frozen=True)
class SymRegSettings(Settings):
    """The settings of :class:`~sciml_lab.symreg.engine.SymRegEngine` (its keyword arguments).

    Example:
        >>> SymRegSettings(ops=["+", "*"], population_size=10).ops, SymRegSettings(population_size=10).n_children
        ('+ *', 5)
    """

    target: str | None = option(None, optional(text), "target column/variable of a DataFrame or Dataset",
                                flag="--target")
    features: tuple[str, ...] | None = option(None, optional(tuple_of(text, 1)),
                                              "input columns (default: all but the target)", flag="--features")
    units: dict | None = option(None, _units, "units by feature/target name (default: from the data)")
    ops: str = option(DEFAULT_OPS, _ops, "operators: + - * / ^, sin cos tan exp log sqrt abs tanh neg square cube "
                      "inv and custom_ops names", flag="--ops")
    maxsize: int = option(30, at_least(3), "most tokens per equation", flag="--maxsize")
    maxdepth: int | None = option(None, optional(at_least(2)), "deepest tree (None: no limit)", flag="--maxdepth")
    nested: dict | None = option(None, _nested, "forbidden nestings {outer: [inner, ...]} (None: DEFAULT_NESTED, "
                                 "{}: all allowed)")
    n_islands: int = option(4, at_least(1), "number of populations", flag="--islands")
    population_size: int = option(64, at_least(4), "members per island", flag="--population")
    children: int | None = option(None, optional(at_least(1)), "children bred per island per step "
                                  "(None: population_size // 2)")
    tournament_size: int = option(10, at_least(1), "members drawn per tournament")
    crossover_probability: float = option(0.1, number(0), "share of crossovers among variations")
    iterations: int | None = option(None, optional(at_least(1)), "generation budget (None: 200, or 100000 with a "
                                    "time limit, so that the time is the budget)", flag="--iterations")
    time_limit: float | None = option(None, optional(number(0)), "time budget in seconds (None: none)",
                                      flag="--time")
    until: str | None = option(None, _until, "target that ends the search early, e.g. 'r2>0.999' or "
                               "'loss<1e-6 complexity<=9' (all must hold; metrics: " + " ".join(METRICS) + ")",
                               flag="--until")
    stop_loss: float | str | None = option("auto", _stop_loss, "stop once an equation this accurate (mean squared "
                                           "error) is stable for patience steps ('auto': exact to numerical "
                                           "precision; 'none': never)", flag="--stop-loss")
    patience: int = option(10, at_least(1), "steps the simplest equation under stop_loss must stay the same")
    selection: str = option("best", one_of(*SELECTIONS), "model selection on the front", flag="--selection")
    const_iterations: int = option(8, at_least(0), "Levenberg-Marquardt steps per constant fit")
    optimize_fraction: float = option(0.3, number(0), "share of each step's children whose constants are fitted")
    migration_every: int = option(5, at_least(1), "steps between migrations")
    migration_fraction: float = option(0.05, number(0), "share of each island replaced by migrants")
    parsimony: float = option(1e-3, number(0), "fixed size penalty")
    adaptive_parsimony: float = option(20.0, number(0), "size penalty by the frequency of each size")
    search_rows: int | None = option(SEARCH_ROWS, optional(at_least(3)), "rows the search evaluates candidates on, "
                                     "a fixed subsample of larger data; the front is then scored on all rows "
                                     "(None: all rows)", flag="--search-rows")
    fit_rows: int | None = option(FIT_ROWS, optional(at_least(3)), "rows the constant fits of the search use, a "
                                  "fixed subsample of the search rows; fitted candidates are then scored on "
                                  "all search rows (None: all search rows)")
    score_rows_per_step: int = option(SCORE_ROWS_PER_STEP, at_least(1), "row-evaluations per step scoring the "
                                      "front on all rows")
    device: str = option("auto", _device, "auto, cpu or cuda", flag="--device")
    dtype: str = option("float64", _dtype, "float32 or float64")
    threads: int | None = option(1, optional(at_least(1)), "torch CPU threads inside each step (None: torch's "
                                 "own setting)")
    seed: int = option(0, at_least(0), "random seed", flag="--seed")

    @property
    def n_children(self) -> int:
        """Children bred per island per step."""
        return self.children if self.children is not None else max(self.population_size // 2, 1)

    @property
    def total_iterations(self) -> int:
        """The generation budget: ``iterations``, else 200, or 100 000 with a time limit."""
        if self.iterations is not None:
            return self.iterations
        return DEFAULT_ITERATIONS if self.time_limit is None else TIMED_ITERATIONS

    @property
    def nested_ops(self) -> dict[str, list[str]]:
        """The forbidden nestings in force."""
        return {k: list(v) for k, v in (DEFAULT_NESTED if self.nested is None else self.nested).items()}

    @property
    def criteria(self) -> list[Criterion]:
        """The ``until`` target as criteria (all must hold)."""
        return parse_criteria(self.until, METRICS)

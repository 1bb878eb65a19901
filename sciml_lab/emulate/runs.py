"""The run table: every simulator run (or data row) so far, in run order, and the input box.

:class:`Box` maps user units to the unit cube (log-scaled inputs in log space);
:class:`Runs` is the checkpointed table: inputs, unit-cube inputs, outputs, status,
batch, attempts and error text per run, with the output layout fixed by the first
result. :func:`table_from_data` reads data (a Dataset, a DataFrame, a dict of
columns or ``(X, Y)``) into the same form.

Example:
    >>> box = Box({"a": (0.0, 2.0), "k": (1.0, 100.0)}, ["k"])
    >>> box.to_unit(np.array([[1.0, 10.0]])).round(3).tolist()
    [[0.5, 0.5]]
    >>> runs = Runs.empty(2); runs.adopt_layout(OutputLayout([{"name": "y"}]), box.inputs)
    >>> runs.append(np.array([1.0, 10.0]), np.array([0.5, 0.5]), np.array([3.0]), batch=0, attempts=1, error="")
    >>> runs.n, runs.n_failed, runs.Y.tolist()
    (1, 0, [[3.0]])
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from ..kit.state import State
from .emulator import OutputLayout
from .feasibility import SuccessClassifier
from .settings import RESERVED, EmulateSettings

__all__ = ["Box", "Runs", "data_settings", "table_from_data", "upgrade_checkpoint"]


class Box:
    """The inputs' ranges: ``bounds`` ``{name: (low, high)}``, ``log_inputs`` scaled
    logarithmically."""

    def __init__(self, bounds: Mapping[str, tuple[float, float]], log_inputs: Sequence[str]):
        self.bounds, self.log_inputs = dict(bounds), list(log_inputs)
        self.inputs = list(self.bounds)
        self._log = np.array([k in self.log_inputs for k in self.inputs])
        lo = np.array([self.bounds[k][0] for k in self.inputs])
        hi = np.array([self.bounds[k][1] for k in self.inputs])
        log = self._log
        self._lo = np.where(log, np.log(np.where(log, lo, 1)), lo)
        self._hi = np.where(log, np.log(np.where(log, hi, 1)), hi)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """User units ``(n, d)`` to the unit cube."""
        log = self._log[None]
        xx = np.where(log, np.log(np.where(log, np.clip(x, 1e-300, None), 1)), x)
        return (xx - self._lo) / (self._hi - self._lo)

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """The unit cube ``(n, d)`` to user units."""
        x = u * (self._hi - self._lo) + self._lo
        return np.where(self._log[None], np.exp(np.where(self._log[None], x, 0.0)), x)  # no exp of linear columns


@dataclasses.dataclass
class Runs(State):
    """Per run: inputs ``X`` (user units), ``U`` (unit cube), outputs ``Y`` (NaN rows for
    failed runs), ``status`` (0 ok, 1 failed), ``batch_of``, ``attempts`` and the error of
    a failed run's last attempt; ``layout`` is fixed by the first result."""

    X: np.ndarray
    U: np.ndarray
    Y: np.ndarray
    status: np.ndarray
    batch_of: np.ndarray
    attempts: np.ndarray
    errors: list
    layout: OutputLayout | None = None

    @classmethod
    def empty(cls, d: int) -> "Runs":
        """No run yet, ``d`` inputs."""
        return cls.of(np.zeros((0, d)), np.zeros((0, d)), np.zeros((0, 0)), None)

    @classmethod
    def of(cls, x: np.ndarray, u: np.ndarray, y: np.ndarray, layout: OutputLayout | None) -> "Runs":
        """Successful runs (data rows) ``x`` ``(n, d)``, ``y`` ``(n, m)``."""
        n = len(x)
        return cls(x, u, y, np.zeros(n, dtype=np.int8), np.zeros(n, dtype=np.int32), np.ones(n, dtype=np.int8),
                   [""] * n, layout)

    def __post_init__(self) -> None:
        self._classifier: tuple[int, SuccessClassifier] | None = None

    @property
    def n(self) -> int:
        """Runs so far (failed ones included)."""
        return len(self.X)

    @property
    def n_failed(self) -> int:
        return int((self.status == 1).sum())

    def ok(self) -> np.ndarray:
        """The successful runs (a mask)."""
        return self.status == 0

    def fittable(self) -> np.ndarray:
        """Successful runs whose outputs are all finite (a mask)."""
        return self.ok() & np.all(np.isfinite(self.Y), axis=1) if self.Y.size else self.ok()

    def append(self, x: np.ndarray, u: np.ndarray, flat: np.ndarray | None, *, batch: int, attempts: int,
               error: str) -> None:
        """Add one run; ``flat`` is ``None`` for a failed run (its outputs are NaN)."""
        m = self.layout.size if self.layout is not None else 0
        if self.Y.shape[1] != m:  # first result fixes the width (failures before it were NaN rows)
            self.Y = np.full((len(self.Y), m), np.nan)
        row = flat if flat is not None else np.full(m, np.nan)
        self.X = np.concatenate([self.X, x[None]])
        self.U = np.concatenate([self.U, u[None]])
        self.Y = np.concatenate([self.Y, row[None]]) if m else np.zeros((len(self.X), 0))
        self.status = np.append(self.status, np.int8(0 if flat is not None else 1))
        self.batch_of = np.append(self.batch_of, np.int32(batch))
        self.attempts = np.append(self.attempts, np.int8(attempts))
        self.errors.append(error if flat is None else "")

    def adopt_layout(self, layout: OutputLayout, inputs: Sequence[str]) -> None:
        """Fix the outputs' layout at the first result (an output may not shadow a design
        variable or an input: it is renamed); a later result must match its size."""
        if self.layout is None:
            for v in layout.variables:
                while v["name"] in RESERVED or v["name"] in inputs:
                    v["name"] += "_out"
            self.layout = layout
        elif layout.to_json() != self.layout.to_json() and layout.size != self.layout.size:
            raise ValueError(f"the simulator returned {layout.size} values here but {self.layout.size} "
                             f"before ({layout.labels()[:4]}...)")

    def why_nothing_fits(self, budget: int, n_initial: int) -> str | None:
        """Why the job must fail, once the budget is spent with fewer than two successful
        runs (nothing to fit), or as soon as the initial design and as many runs again
        have all failed (no point paying for the rest); ``None`` while it may go on.

        Example:
            >>> runs = Runs.empty(1)
            >>> for i in range(4):
            ...     runs.append(np.array([0.1 * i]), np.array([0.1 * i]), None, batch=0, attempts=2, error="E: deck")
            >>> runs.why_nothing_fits(budget=10, n_initial=2)[:49]
            'all 4 simulator runs failed; first error: E: deck'
        """
        n_ok = int(self.ok().sum())
        if self.n == 0 or n_ok >= 2 or self.n < (budget if n_ok else min(budget, 2 * n_initial)):
            return None
        first = self.errors[int(np.flatnonzero(self.status == 1)[0])]
        if n_ok:
            return (f"only 1 of {self.n} simulator runs succeeded, an emulator needs 2; "
                    f"first error: {first}. Check the simulator and its bounds")
        early = "" if self.n >= budget else (
            f" (stopped before the budget of {budget}: the initial design and at least as many runs again "
            "all failed)")
        return (f"all {self.n} simulator runs failed; first error: {first}{early}. "
                "Check the simulator on one input by hand, and its bounds")

    def success_model(self, seed: int) -> SuccessClassifier | None:
        """The classifier of run success over the unit cube, fitted on every run so far;
        ``None`` while no run has failed (or none has succeeded)."""
        ok = self.ok()
        if ok.all() or not ok.any():
            return None
        if self._classifier is None or self._classifier[0] != self.n:
            self._classifier = (self.n, SuccessClassifier(seed=seed).fit(self.U, ok))
        return self._classifier[1]

    def state_dict(self) -> dict[str, Any]:
        """The table (runs in flight are not in it: after a resume they are chosen again)."""
        state = super().state_dict()
        state["layout"] = json.dumps(self.layout.to_json()) if self.layout is not None else ""
        return state

    def load_state_dict(self, state: Mapping[str, Any], device: Any = None) -> None:
        layout = state.get("layout", "")
        super().load_state_dict({k: v for k, v in state.items() if k != "layout"})
        self.status, self.batch_of = self.status.astype(np.int8), self.batch_of.astype(np.int32)
        self.attempts, self.errors = self.attempts.astype(np.int8), [str(e) for e in self.errors]
        self.layout = OutputLayout(json.loads(layout)) if layout else None
        self._classifier = None


def data_settings(s: EmulateSettings, data: Any) -> tuple[EmulateSettings, tuple]:
    """The settings of a data fit (bounds inferred from the data unless given, the
    budget its rows, the column names) and the table ``(X, Y, layout)``.

    Example:
        >>> s, (x, y, layout) = data_settings(EmulateSettings(device="cpu"), ([1.0, 3.0, 2.0], [0.0, 1.0, 2.0]))
        >>> s.bounds, s.budget, s.inputs, layout.labels()
        ({'x0': (1.0, 3.0)}, 3, ('x0',), ['y'])
    """
    x, y, names, layout = table_from_data(data, s.inputs, s.outputs)
    if s.bounds is None:
        lo, hi = x.min(0), x.max(0)
        hi = np.where(hi > lo, hi, lo + 1.0)
        s = s.replace(bounds={k: (float(a), float(b)) for k, a, b in zip(names, lo, hi)})
    if list(s.bounds) != names:
        raise ValueError(f"bounds: expected the inputs {names}, got {list(s.bounds)}")
    s = s.replace(inputs=tuple(names), outputs=tuple(v["name"] for v in layout)).resolve(n_rows=len(x))
    return s, (x, y, OutputLayout(layout))


def table_from_data(data: Any, inputs: Sequence[str] | None, outputs: Sequence[str] | None
                    ) -> tuple[np.ndarray, np.ndarray, list[str], list[dict]]:
    """Inputs ``(n, d)``, outputs ``(n, m)``, input names and output layout from a
    Dataset, a DataFrame, a dict of columns or a tuple ``(X, Y)``.

    Example:
        >>> x, y, names, lay = table_from_data({"a": [0, 1], "y": [1, 2]}, ["a"], ["y"])
        >>> x.shape, y.shape, names
        ((2, 1), (2, 1), ['a'])
    """
    if isinstance(data, tuple) and len(data) == 2:
        return _table_from_arrays(data, inputs, outputs)
    if not (isinstance(data, (xr.Dataset, dict)) or hasattr(data, "columns")):
        raise ValueError(f"data: expected an xarray Dataset, a pandas DataFrame, a dict of columns or a tuple (X, Y), "
                         f"got {type(data).__name__}")
    if not inputs or not outputs:
        raise ValueError("inputs/outputs: name the input and output columns, e.g. inputs=['a', 'b'], outputs=['y']")
    missing = [k for k in (*inputs, *outputs) if k not in data]
    if missing:
        raise ValueError(f"inputs/outputs: {missing} not found in the data")
    x = np.stack([np.asarray(data[k], dtype=float).reshape(-1) for k in inputs], 1)
    y = np.stack([np.asarray(data[k], dtype=float).reshape(-1) for k in outputs], 1)
    return x, y, list(inputs), [{"name": o} for o in outputs]


def _table_from_arrays(data: tuple, inputs: Sequence[str] | None, outputs: Sequence[str] | None
                       ) -> tuple[np.ndarray, np.ndarray, list[str], list[dict]]:
    x = np.asarray(data[0], dtype=float)
    y = np.asarray(data[1], dtype=float)
    x = x[:, None] if x.ndim == 1 else x
    y = y[:, None] if y.ndim == 1 else y
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"data: (X, Y) must be arrays (n, d) and (n, m) with the same n, got {x.shape} and {y.shape}")
    names = list(inputs) if inputs else [f"x{i}" for i in range(x.shape[1])]
    outs = list(outputs) if outputs else (["y"] if y.shape[1] == 1 else [f"y{i}" for i in range(y.shape[1])])
    if len(names) != x.shape[1] or len(outs) != y.shape[1]:
        raise ValueError(f"inputs/outputs: {len(names)} input and {len(outs)} output names for arrays with "
                         f"{x.shape[1]} and {y.shape[1]} columns")
    return x, y, names, [{"name": o} for o in outs]


def upgrade_checkpoint(state: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint of the first layout (a bare run budget and ``until_floor``, positional
    validation rows) in the current one."""
    state = dict(state)
    if not isinstance(state.get("budget"), Mapping):
        state["budget"] = {"total": int(state["budget"]), "spent": len(state["X"]),
                           "floor": int(state.pop("until_floor", 0))}
    if "validation_rows" in state:
        state["validation"] = state.pop("validation_rows")
    return state

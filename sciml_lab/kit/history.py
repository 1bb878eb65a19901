"""A named history: one row of numbers per loop (or run, or iteration), by column
name, that becomes an :class:`xarray.Dataset` and a checkpoint by itself.

Rows are stored by name, so a checkpoint written before a column existed loads
with NaN in that column, and a column's meaning never depends on its position.

Example:
    >>> h = History("loop", ["rhat", "ess"])
    >>> h.append(rhat=1.2, ess=40); h.append(rhat=1.01)
    >>> h.to_dataset()["ess"].values.tolist()
    [40.0, nan]
    >>> g = History("loop", ["rhat", "ess", "new"]); g.load_state_dict(h.state_dict())
    >>> len(g), g.last("rhat"), bool(np.isnan(g.last("new")))
    (2, 1.01, True)
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

__all__ = ["History"]


class History:
    """Rows of floats by column name along dimension ``dim``."""

    def __init__(self, dim: str, columns: Sequence[str], attrs: Mapping[str, Mapping[str, Any]] | None = None):
        self.dim = dim
        self.columns = tuple(columns)
        self.attrs = {k: dict(v) for k, v in (attrs or {}).items()}
        self._rows: list[list[float]] = []

    def append(self, **row: float) -> None:
        """Add a row; columns not given are NaN, unknown names are an error."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise KeyError(f"history {self.dim!r}: unknown columns {sorted(unknown)}; known: {list(self.columns)}")
        self._rows.append([float(row.get(c, math.nan)) for c in self.columns])

    def __len__(self) -> int:
        return len(self._rows)

    def column(self, name: str) -> np.ndarray:
        """All values of one column."""
        i = self.columns.index(name)
        return np.array([r[i] for r in self._rows], dtype=float)

    def last(self, name: str, default: float = math.nan) -> float:
        """The latest value of a column (``default`` before the first row)."""
        return self._rows[-1][self.columns.index(name)] if self._rows else default

    def rows(self) -> list[dict[str, float]]:
        """The rows as dicts."""
        return [dict(zip(self.columns, r)) for r in self._rows]

    def to_dataset(self, coord: Sequence[Any] | None = None) -> xr.Dataset:
        """One variable per column along ``dim`` (coordinate: ``coord`` or 0..n-1)."""
        data = np.array(self._rows, dtype=float).reshape(len(self._rows), len(self.columns))
        ds = xr.Dataset({c: ((self.dim,), data[:, i]) for i, c in enumerate(self.columns)},
                        coords={self.dim: np.arange(len(self._rows)) if coord is None else np.asarray(coord)})
        for c, a in self.attrs.items():
            if c in ds:
                ds[c].attrs.update(a)
        return ds

    def state_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns),
                "rows": torch.tensor(self._rows, dtype=torch.float64).reshape(-1, len(self.columns))}

    def load_state_dict(self, state: Any) -> None:
        """Load by column name; a bare tensor (rows in this history's column order, maybe
        fewer columns: an older layout) is accepted too."""
        if torch.is_tensor(state):
            names, rows = list(self.columns[: state.shape[-1] if state.ndim == 2 else 0]), state
        else:
            names, rows = list(state["columns"]), state["rows"]
        where = {c: names.index(c) for c in self.columns if c in names}
        self._rows = [[float(r[where[c]]) if c in where else math.nan for c in self.columns]
                      for r in rows.tolist()]

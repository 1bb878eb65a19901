"""What a search works on: the checked data on its device, the rows the search
evaluates candidates on, the vocabulary and the limits on expressions.

Example:
    >>> from sciml_lab.symreg.settings import SymRegSettings
    >>> X = np.random.default_rng(0).uniform(1, 2, (5000, 2))
    >>> p = Problem.build(X, X[:, 0], None, SymRegSettings(device="cpu", search_rows=100), {})
    >>> len(p.ys), len(p.y), p.vocab.variables
    (100, 5000, ['x0', 'x1'])
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping

import numpy as np
import torch

from ..kit.device import resolve_device, resolve_dtype
from .data import Dataset, prepare_data
from .expression import UNARY, Vocabulary, parse_ops
from .settings import EXACT, SymRegSettings
from .variation import Constraints

__all__ = ["Problem", "cpu_threads"]


class Problem:
    """The data (``X``, ``y``, weights ``w`` on ``device`` in ``dtype``), its search
    subsample (``Xs``, ``ys``, ``ws``; the same tensors when all rows are searched), the
    rows constant fits use (``Xf``, ``yf``, ``wf``: a subsample of the search rows),
    the target's variance ``var_y``, the loss ``floor`` that counts as exact, the
    vocabulary and the constraints.

    Example:
        >>> from sciml_lab.symreg.settings import SymRegSettings
        >>> x = np.linspace(1, 2, 20)
        >>> p = Problem.build(x, 3 * x, None, SymRegSettings(device="cpu"), {})
        >>> p.search_idx is None, round(p.var_y, 4), p.device
        (True, 0.8289, device(type='cpu'))
    """

    def __init__(self, data: Dataset, settings: SymRegSettings, custom_ops: Mapping[str, Any]):
        self.data = data
        unary, binary = parse_ops(settings.ops, custom_ops)
        self.vocab = Vocabulary(data.features, unary, binary)
        nested = settings.nested_ops
        for k, v in nested.items():
            unknown = [o for o in [k, *v] if o not in UNARY and o not in custom_ops]
            if unknown:
                raise ValueError(f"nested: expected unary operator names, got {unknown}")
        self.constraints = Constraints(self.vocab, settings.maxsize, settings.maxdepth, nested)
        self.maxsize = settings.maxsize
        self.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(settings.dtype)
        self.X = torch.as_tensor(data.X, dtype=self.dtype, device=self.device)
        self.y = torch.as_tensor(data.y, dtype=self.dtype, device=self.device)
        self.w = None if data.weights is None else torch.as_tensor(data.weights, dtype=self.dtype, device=self.device)
        self._subsample(settings.search_rows, settings.seed)
        self._fit_subsample(settings.fit_rows, settings.seed)
        wy = data.weights if data.weights is not None else np.ones_like(data.y)
        mean = float(np.average(data.y, weights=wy))
        self.var_y = float(np.average((data.y - mean) ** 2, weights=wy))
        self.floor = EXACT * self.var_y

    @classmethod
    def build(cls, X: Any, y: Any, weights: Any, settings: SymRegSettings, custom_ops: Mapping[str, Any]) -> "Problem":
        """Check the data (see :func:`~sciml_lab.symreg.data.prepare_data`) and build the problem."""
        data = prepare_data(X, y, target=settings.target, features=settings.features, weights=weights,
                            units=settings.units)
        return cls(data, settings, custom_ops)

    def _subsample(self, search_rows: int | None, seed: int) -> None:
        n = len(self.data.y)
        if search_rows is None or n <= search_rows:
            self.search_idx = None
            self.Xs, self.ys, self.ws = self.X, self.y, self.w
            return
        # a fixed subsample, drawn from the seed (not from the search's random stream)
        self.search_idx = np.sort(np.random.default_rng([seed, 1]).choice(n, search_rows, replace=False))
        idx = torch.as_tensor(self.search_idx, device=self.device)
        self.Xs, self.ys = self.X[idx], self.y[idx]
        self.ws = None if self.w is None else self.w[idx]

    def _fit_subsample(self, fit_rows: int | None, seed: int) -> None:
        n = len(self.ys)
        if fit_rows is None or n <= fit_rows:
            self.Xf, self.yf, self.wf = self.Xs, self.ys, self.ws
            return
        # a fixed subsample of the search rows, drawn from the seed (not from the search's random stream)
        idx = torch.as_tensor(np.sort(np.random.default_rng([seed, 2]).choice(n, fit_rows, replace=False)),
                              device=self.device)
        self.Xf, self.yf = self.Xs[idx], self.ys[idx]
        self.wf = None if self.ws is None else self.ws[idx]

    @property
    def n_rows(self) -> int:
        """All rows of the data."""
        return len(self.data.y)


@contextlib.contextmanager
def cpu_threads(n: int | None, device: torch.device):
    """Run torch on ``n`` CPU threads inside the block (restored after).

    The tensors of a search are small (thousands of elements per kernel): on a busy
    machine, intra-op parallelism costs far more in synchronisation than it gains
    (measured here: 0.5 s vs 16 s for the same search with 1 vs 2 threads).

    Example:
        >>> with cpu_threads(1, torch.device("cpu")):
        ...     torch.get_num_threads()
        1
    """
    if n is None or device.type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if old != n:
            torch.set_num_threads(old)

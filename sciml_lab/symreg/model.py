"""The answers of a search, as methods of :class:`~sciml_lab.symreg.engine.SymRegEngine`:
the Pareto front, the selected equation, its predictions and the live table.

:class:`Answers` is a mixin: it reads the engine's ``search``
(:class:`~sciml_lab.symreg.search.Search`), ``results``, ``problem``, ``settings``
and ``vocab``.

Example:
    >>> from sciml_lab.symreg import SymRegEngine
    >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
    >>> str(e.best()), e.front()[e.selected_index()].complexity
    ('x0**2', 3)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .expression import Equation
from .population import max_row_evaluations

__all__ = ["Answers"]

_X = np.linspace(1, 2, 20)  # the data of the examples below


class Answers:
    """The front, the selected equation and its predictions (see the module's docstring).

    Example:
        >>> from sciml_lab.symreg import SymRegEngine
        >>> SymRegEngine(_X, 3 * _X, device="cpu").best_loss()
        inf
    """

    def front_programs(self) -> list[tuple[list[int], list[float], float]]:
        """The Pareto front as ``(tokens, constants, loss)``, by increasing complexity
        (each member strictly more accurate than every simpler one).

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
            >>> losses = [l for _, _, l in e.front_programs()]
            >>> losses == sorted(losses, reverse=True)
            True
        """
        return self.search.front()

    def front(self) -> list[Equation]:
        """The Pareto front as :class:`~sciml_lab.symreg.expression.Equation` objects.

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
            >>> str(e.front()[-1])
            'x0**2'
        """
        return [Equation(t, c, self.vocab) for t, c, _ in self.front_programs()]

    def front_losses(self, front: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The loss of each front member on all rows where scored (else on the search rows),
        and the number of rows each loss was computed on.

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
            >>> e.front_losses()[1].tolist() == [20] * len(e.front())
            True
        """
        return self.search.losses(front)

    def scored_on_all_rows(self) -> bool:
        """True when every front member has been scored on all rows.

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step(); e.scored_on_all_rows()
            True
        """
        return self.search.scored_on_all_rows()

    def selected_index(self, front: list | None = None) -> int:
        """Index in the front of the equation chosen by ``selection`` (see
        :func:`~sciml_lab.symreg.front.selected_index`), on the losses of :meth:`front_losses`.

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
            >>> e.front()[e.selected_index()].complexity
            3
        """
        return self.search.selected_index(self.front_programs() if front is None else front)

    def best(self) -> Equation:
        """The selected equation (see ``selection``).

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
            >>> e.best().latex()
            'x_{0}^{2}'
        """
        front = self.front_programs()
        if not front:
            raise RuntimeError("no equation yet: call step() first")
        t, c, _ = front[self.selected_index(front)]
        return Equation(t, c, self.vocab)

    def best_loss(self) -> float:
        """The lowest mean squared error on the front (``inf`` before the first step).

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> SymRegEngine(_X, _X ** 2).best_loss()
            inf
        """
        return min((l for _, _, l in self.front_programs()), default=math.inf)

    def predict(self, X: Any, complexity: int | None = None) -> np.ndarray:
        """Predictions of the selected equation (or the front member of ``complexity``).

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> e = SymRegEngine(_X, 3 * _X, iterations=3, device="cpu")
            >>> while not e.done(): _ = e.step()
            >>> np.allclose(e.predict(np.array([[1.0]])), 3.0)
            True
        """
        eq = self.best() if complexity is None else next(
            (e for e in self.front() if e.complexity == complexity), None)
        if eq is None:
            raise ValueError(f"complexity: no front member of complexity {complexity}; "
                             f"expected one of {[e.complexity for e in self.front()]}")
        return eq.numpy()(np.asarray(X, dtype=np.float64))

    def max_row_evaluations_per_step(self) -> int:
        """An upper bound of the row-evaluations of one step (see
        :func:`~sciml_lab.symreg.population.max_row_evaluations`); it does not grow with
        the number of rows once they exceed ``search_rows``.

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> X = np.random.default_rng(0).uniform(1, 2, (50_000, 1))
            >>> a = SymRegEngine(X, X[:, 0], device="cpu").max_row_evaluations_per_step()
            >>> a == SymRegEngine(X[:10_000], X[:10_000, 0], device="cpu").max_row_evaluations_per_step()
            True
        """
        return max_row_evaluations(self.settings, len(self.problem.ys))

    def _selected(self) -> tuple[list, int]:
        front = self.front_programs()
        return front, self.selected_index(front) if front else -1

    def live_table(self) -> dict[str, Any]:
        """The current front as a small JSON-able table for a live view (LaTeX in column 1).

        Cheap (sympy conversions are cached) and safe between steps; a monitor can poll it
        a few times a second. ``selected`` is the row of the selected equation (-1: none).

        Example:
            >>> from sciml_lab.symreg import SymRegEngine
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
            >>> t = e.live_table(); t["columns"], t["rows"][t["selected"]][:2]
            (['complexity', 'equation', 'loss', 'R²'], [3, 'x_{0}^{2}'])
        """
        return self.results.live_table(*self._selected())

"""One step of a search: a generation over the islands (then migration and the front's
simplification every few generations), or, once the search is over, a step scoring
the front on all rows; the live metrics; the ``stop_loss`` target.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .front import FrontScores, Member, Simplifier, selected_index
from .snap import Snapper
from .population import Population, temperature
from .problem import Problem
from .settings import SymRegSettings
from .state import SymRegState

__all__ = ["Search"]


class Search:
    """The population, the front's scores on all rows and its simplification, over a
    run's ``state``. ``stop_loss`` (a mean squared error, None: never) is tracked for
    :meth:`target_reached`; ``step_row_evaluations`` counts the last step's work.

    Example:
            >>> x = np.linspace(1, 2, 20)
        >>> s = SymRegSettings(ops="+ *", n_islands=2, population_size=16, device="cpu")
        >>> p = Problem.build(x, 3 * x, None, s, {})
        >>> search = Search(p, s, SymRegState.start(s, p.vocab.names))
        >>> search.front()
        []
        >>> m = search.generation(); m["iteration"], m["r2"]
        (1.0, 1.0)
    """

    def __init__(self, problem: Problem, settings: SymRegSettings, state: SymRegState,
                 stop_loss: float | None = None):
        self.problem, self.settings, self.state, self.stop_loss = problem, settings, state, stop_loss
        self.population = Population(problem, settings, state)
        self.scores = FrontScores(problem)
        self.simplifier = Simplifier(problem.vocab, problem.constraints)
        self.snapper = Snapper(problem, self.simplifier)
        self.step_row_evaluations = 0

    def front(self) -> list[Member]:
        """The Pareto front of the hall of fame (once :meth:`finish` has run, of the finished one)."""
        return (self.state.finished or self.state.hof).front()

    def finish(self) -> None:
        """The search is over: the state's ``finished`` hall of fame holds the front's members with
        their constants snapped to simple values where the data allow, and their shorter forms
        (see :mod:`~sciml_lab.symreg.snap`). The search's own hall of fame is unchanged (the next
        generation clears ``finished``), so an extended search continues exactly as if it had not
        finished."""
        self.state.finished.clear()
        self.state.finished.update(self.snapper.hall_of_fame(self.state.hof.front()))

    def selected_index(self, front: list[Member]) -> int:
        """The selected member of ``front`` on its losses (see :func:`~sciml_lab.symreg.front.selected_index`)."""
        return selected_index(front, self.scores.losses(front)[0], self.problem.n_rows, self.settings.selection,
                              self.problem.floor)

    def generation(self) -> dict[str, float]:
        """One generation over all islands; returns the live metrics."""
        st, pop = self.state, self.population
        st.finished.clear()
        t0, evals0, rows0 = time.perf_counter(), st.evals, pop.row_evaluations
        if not st.islands:
            pop.initialize()
        pop.generation(temperature(st.budget.spent))
        st.budget.spent += 1
        if st.budget.spent % self.settings.migration_every == 0:
            shorter = self.simplifier.shorter(self.front())
            if shorter:
                pop.score(shorter, optimize=True)
            pop.migrate(self.front())
        front = self.front()
        self._track_target(front)
        self._score_front()
        dt = time.perf_counter() - t0
        st.wall += dt
        eps = (st.evals - evals0) / max(dt, 1e-9)
        st.history.append(wall_time=st.wall, best_loss=min((f[2] for f in front), default=math.inf),
                          front_size=len(front), evals_per_s=eps)
        self.step_row_evaluations = pop.row_evaluations - rows0
        st.metrics = self.metrics(front, eps)
        return dict(st.metrics)

    def scoring(self) -> dict[str, float]:
        """A step that only scores the front on all rows (the search is over); returns the live metrics."""
        t0, rows0 = time.perf_counter(), self.population.row_evaluations
        self._score_front()
        self.state.wall += time.perf_counter() - t0
        self.step_row_evaluations = self.population.row_evaluations - rows0
        return self.metrics(self.front(), self.state.history.last("evals_per_s", 0.0))

    def metrics(self, front: list[Member], eps: float) -> dict[str, float]:
        """The live metrics (:data:`~sciml_lab.symreg.settings.METRICS`) of ``front``."""
        best_loss = min((f[2] for f in front), default=math.inf)
        var_y = self.problem.var_y
        sel = self.selected_index(front)
        loss = float(self.scores.losses(front)[0][sel]) if front else math.inf
        return {"best_loss": best_loss, "front_size": float(len(front)), "evals_per_s": eps,
                "best_r2": 1.0 - best_loss / var_y if var_y > 0 else math.nan,
                "complexity": float(len(front[sel][0])) if front else math.nan,
                "iteration": float(self.state.budget.spent),
                "loss": loss, "r2": 1.0 - loss / var_y if var_y > 0 else math.nan}

    def _score_front(self) -> None:
        """Spend at most ``score_rows_per_step`` row-evaluations scoring front members on all
        rows (the selected member first), continuing where the last step stopped."""
        front = self.front()
        self.scores.forget_others(front)
        if front:
            spent = self.scores.advance(front, self.selected_index(front), self.settings.score_rows_per_step)
            self.population.row_evaluations += spent

    def _track_target(self, front: list[Member]) -> None:
        if self.stop_loss is None:
            return
        exact = [len(t) for t, _, l in front if l <= self.stop_loss]
        if not exact:
            self.state.target_since = []
        elif not self.state.target_since or self.state.target_since[0] != min(exact):
            self.state.target_since = [min(exact), self.state.budget.spent]

    def target_reached(self) -> bool:
        """The stop loss holds and the simplest such equation has been stable for
        ``patience`` steps, and the last extension is spent."""
        since, b = self.state.target_since, self.state.budget
        return bool(since) and b.spent - since[1] >= self.settings.patience and b.spent >= b.floor

    def scored_on_all_rows(self) -> bool:
        """Every front member scored on all rows."""
        return self.scores.done(self.front())

    def losses(self, front: list[Member] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The front's losses and the rows each was computed on (see :meth:`FrontScores.losses`)."""
        return self.scores.losses(self.front() if front is None else front)

"""The Pareto front: PySR's scores and model selection, the front's scores on all rows,
and its simplification through sympy.

Example:
    >>> comp, loss = [1, 3, 5, 9], [1.0, 0.1, 1e-3, 9e-4]
    >>> pareto_scores(comp, loss).round(2).tolist(), select(comp, loss, "best")
    ([0.0, 1.15, 2.3, 0.03], 2)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .expression import CONST, Equation, Vocabulary, from_sympy
from .identify import FullScore
from .problem import Problem
from .settings import SELECTIONS
from .variation import Constraints, Program

__all__ = ["pareto_scores", "select", "selected_index", "snap_integers", "FrontScores", "Simplifier"]

Member = tuple[list[int], list[float], float]


def pareto_scores(complexity: Sequence[int], loss: Sequence[float], floor: float = 0.0) -> np.ndarray:
    """PySR's score of each front member: the drop of log-loss per unit of complexity
    from the previous member (0 for the first). Losses are floored at ``floor``.

    Example:
        >>> pareto_scores([1, 3, 5], [1.0, 0.1, 0.01]).round(3).tolist()
        [0.0, 1.151, 1.151]
    """
    c = np.asarray(complexity, dtype=float)
    ll = np.log(np.maximum(np.asarray(loss, dtype=float), max(floor, 1e-300)))
    s = np.zeros(len(c))
    if len(c) > 1:
        s[1:] = -(ll[1:] - ll[:-1]) / np.maximum(c[1:] - c[:-1], 1)
    return s


def select(complexity: Sequence[int], loss: Sequence[float], selection: str = "best", floor: float = 0.0) -> int:
    """Index of the selected front member: ``accuracy`` (lowest loss), ``score``
    (highest score) or ``best`` (highest score among those with a loss at most 1.5
    times the lowest, losses floored at ``floor``), as in PySR.

    Example:
        >>> select([1, 3, 5, 9], [1.0, 0.1, 1e-3, 9e-4], "best"), select([1, 3, 5, 9], [1.0, 0.1, 1e-3, 9e-4], "accuracy")
        (2, 3)
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection: expected one of {', '.join(SELECTIONS)}, got {selection!r}")
    loss = np.maximum(np.asarray(loss, dtype=float), floor)
    if len(loss) == 0:
        raise ValueError("the Pareto front is empty")
    scores = pareto_scores(complexity, loss, floor)
    if selection == "accuracy":
        return int(np.argmin(loss))
    if selection == "score":
        return int(np.argmax(scores))
    ok = loss <= 1.5 * loss.min()
    return int(np.argmax(np.where(ok, scores, -np.inf)))


def selected_index(front: Sequence[Member], loss: np.ndarray, n_rows: int, selection: str, floor: float) -> int:
    """:func:`select` on the front's ``loss``, among the members with at most ``n_rows / 3``
    constants when there are such members (``n_rows`` rows cannot support more); 0 for
    an empty front.

    Example:
        >>> front = [([2], [0.0], 1.0), ([1, 2, 4, 1, 3], [2.0, 0, 0, 1.0, 0], 0.5)]   # x, c*x + c
        >>> loss = np.array([1.0, 0.5])
        >>> selected_index(front, loss, 100, "best", 0.0), selected_index(front, loss, 2, "best", 0.0)
        (1, 0)
    """
    if not front:
        return 0
    comp = np.array([len(t) for t, _, _ in front])
    n_const = np.array([sum(1 for x in t if x == CONST) for t, _, _ in front])
    ok = np.flatnonzero(n_const <= max(1, n_rows // 3))
    if len(ok) == 0 or len(ok) == len(front):
        return select(comp, loss, selection, floor)
    return int(ok[select(comp[ok], loss[ok], selection, floor)])


def snap_integers(expr: Any, rtol: float = 1e-9):
    """Constants within ``rtol`` of an integer become that integer (so ``1.0*x`` becomes ``x``
    and ``x + 1e-17`` becomes ``x``); the result is re-scored before it is kept.

    Example:
        >>> import sympy
        >>> x = sympy.Symbol("x")
        >>> snap_integers(1.0000000000001 * x + 2.5)
        x + 2.5
    """
    import sympy

    reps = {}
    for f in expr.atoms(sympy.Float):
        v = float(f)
        if abs(v - round(v)) <= rtol * max(1.0, abs(v)):
            reps[f] = sympy.Integer(int(round(v)))
    return expr.xreplace(reps) if reps else expr


class FrontScores:
    """The front members' scores on *all* rows (loss and ``JᵀJ``), advanced a bounded
    number of row-evaluations per step, the selected member first. Not checkpointed: a
    reopened run scores its front again.

    Example:
        >>> from sciml_lab.symreg.settings import SymRegSettings
        >>> x = np.linspace(1, 2, 20)
        >>> p = Problem.build(x, 3 * x, None, SymRegSettings(device="cpu"), {})
        >>> scores, front = FrontScores(p), [([2], [0.0], 0.5)]
        >>> scores.advance(front, 0, 10), scores.done(front), scores.losses(front)[1].tolist()
        (10, False, [20])
    """

    def __init__(self, problem: Problem):
        self.problem = problem
        self.full: dict[tuple, FullScore] = {}

    def advance(self, front: Sequence[Member], selected: int, budget: int) -> int:
        """Score members within ``budget`` row-evaluations, from where the last call stopped
        (forgetting members no longer on the front); returns the row-evaluations spent."""
        p = self.problem
        spent = 0
        for i in [selected] + [j for j in range(len(front)) if j != selected]:
            t, c, _ = front[i]
            score = self.full.setdefault((tuple(t), tuple(c)), FullScore(t, c))
            while budget - spent > 0 and not score.done(p.n_rows):
                spent += score.advance(p.X, p.y, p.w, p.vocab, budget - spent)
            if budget - spent <= 0:
                break
        return spent

    def forget_others(self, front: Sequence[Member]) -> None:
        """Drop the scores of members no longer on the front."""
        keys = {(tuple(t), tuple(c)) for t, c, _ in front}
        self.full = {k: v for k, v in self.full.items() if k in keys}

    def get(self, tokens: Sequence[int], constants: Sequence[float]) -> FullScore | None:
        """The member's score on all rows if complete, else None."""
        score = self.full.get((tuple(tokens), tuple(constants)))
        return score if score is not None and score.done(self.problem.n_rows) else None

    def done(self, front: Sequence[Member]) -> bool:
        """Every member scored on all rows."""
        return all(self.get(t, c) is not None for t, c, _ in front)

    def losses(self, front: Sequence[Member]) -> tuple[np.ndarray, np.ndarray]:
        """Each member's loss on all rows where scored (else on the search rows), and the
        number of rows each loss was computed on."""
        n = self.problem.n_rows
        losses, rows = [], []
        for t, c, l in front:
            score = self.get(t, c)
            losses.append(score.loss(n) if score is not None else l)
            rows.append(n if score is not None else len(self.problem.ys))
        return np.array(losses, dtype=float), np.array(rows, dtype=np.int64)


class Simplifier:
    """Front members through sympy's canonical form (constants near integers snapped):
    the shorter results within the limits, cached.

    Example:
        >>> from sciml_lab.symreg.expression import parse_ops
        >>> v = Vocabulary(["x"], *parse_ops("+ *"))                  # c=1, x=2, +=3, *=4
        >>> s = Simplifier(v, Constraints(v, 10))
        >>> s.shorter([([2, 2, 3, 2, 3], [0.0] * 5, 1.0)])          # x + x + x -> 3*x
        [([1, 2, 4], [3.0, 0.0, 0.0])]
    """

    def __init__(self, vocab: Vocabulary, constraints: Constraints, cache_size: int = 5000):
        self.vocab, self.constraints, self.cache_size = vocab, constraints, cache_size
        self.cache: dict[tuple, Program | None] = {}

    def shorter(self, front: Sequence[Member]) -> list[Program]:
        """The simplified forms shorter than their members."""
        out = []
        for tok, const, _ in front:
            key = (tuple(tok), tuple(const))
            if key not in self.cache:
                try:
                    prog = from_sympy(snap_integers(Equation(tok, const, self.vocab).sympy()), self.vocab)
                except Exception:  # sympy may reject exotic custom operators: no simplification then
                    prog = None
                self.cache[key] = prog if prog is not None and len(prog[0]) < len(tok) \
                    and self.constraints.ok(prog[0]) else None
                if len(self.cache) > self.cache_size:
                    self.cache.pop(next(iter(self.cache)))
                if self.cache[key] is not None:
                    out.append(self.cache[key])
        return out

"""The front of a finished search with its constants snapped to simple values.

A search fits its constants on a subsample of rows and stops wherever its time runs out,
so a member that *is* the law often carries ``0.99988`` for ``1`` or ``3.14159265`` for
``pi``, and is then longer or less exact than it reads. Once the search is over, every
front member is refitted on all search rows and its constants within 2 % of a simple value
(:func:`simple_value`: an integer or a fraction ``p/q`` with ``q <= 4``, times 1, ``pi`` or
``1/pi``) are held there, one at a time (the nearest first), while the others are refitted,
then each other constant is tried at zero (an offset, term or factor the data may not need);
a snap is kept when the loss rises by less than what fitting those constants could explain
by noise alone (:func:`snap_tolerance`). Each snapped member replaces its member (as
accurate within noise, with fewer free constants); its shorter forms (sympy's canonical
form, :class:`~sciml_lab.symreg.front.Simplifier`, snapped again) join where they are more
accurate than what the front held at their size.

The search's own hall of fame is unchanged (the snapped members are kept beside it, see
:meth:`~sciml_lab.symreg.search.Search.finish`), so extending a finished search continues
it exactly as if it had not finished.

Example:
    >>> from sciml_lab.symreg.problem import Problem
    >>> from sciml_lab.symreg.settings import SymRegSettings
    >>> x = np.linspace(1, 2, 50)
    >>> s = SymRegSettings(ops="+ *", device="cpu")
    >>> p = Problem.build(x, np.pi * x + 0.5, None, s, {})
    >>> snapper = Snapper(p, Simplifier(p.vocab, p.constraints))
    >>> member = ([1, 2, 4, 1, 3], [3.1416, 0, 0, 0.4999, 0], 1e-6)      # c*x + c (c=1, x=2, +=3, *=4)
    >>> [(t, [round(v, 12) for v in c]) for t, c, _ in snapper.hall_of_fame([member]).front()]
    [([1, 2, 4, 1, 3], [3.14159265359, 0.0, 0.0, 0.5, 0.0])]
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .constants import fit_constants, weighted_mse
from .expression import CONST, evaluate, pack
from .front import Member, Simplifier
from .problem import Problem
from .state import HallOfFame

__all__ = ["simple_value", "snap_tolerance", "Snapper"]

#: the denominators of the simple fractions constants snap to
DENOMINATORS = (1, 2, 3, 4)
#: the factors of the simple values (in order of preference when two are as near)
FACTORS = (1.0, math.pi, 1.0 / math.pi)
#: constants larger than this are never snapped (a simple fraction of them says nothing)
LARGEST = 1e4
#: constants further than this (relatively) from their simple value are not tried
NEAR = 0.02
#: the largest simple fraction, and the largest numerator of a simple multiple of pi or 1/pi
SMALL = 8


def simple_value(v: float) -> float:
    """The simple value nearest ``v``: an integer, a fraction ``p/q`` (``q`` in
    :data:`DENOMINATORS`, ``|p/q| <=`` :data:`SMALL`), or ``pi`` or ``1/pi`` times such a fraction
    (``|p| <=`` :data:`SMALL`); the simplest of equally near ones; ``v`` itself when ``|v|``
    exceeds :data:`LARGEST` or is not finite.

    Example:
        >>> simple_value(3.14159), simple_value(0.49998), simple_value(-0.0795775) == -1 / (4 * math.pi)
        (3.141592653589793, 0.5, True)
        >>> simple_value(2.0000001), simple_value(1e-9), simple_value(5459.7)
        (2.0, 0.0, 5460.0)
    """
    if not math.isfinite(v) or abs(v) > LARGEST:
        return v
    best, dist = float(round(v)), abs(round(v) - v)
    for f in FACTORS:
        for q in DENOMINATORS:
            p = round(v / f * q)
            if (q == 1 and f == 1.0) or abs(p) > SMALL * (q if f == 1.0 else 1):
                continue
            c = p / q * f
            if abs(c - v) < dist * (1 - 1e-9):  # a later (less simple) value must be strictly nearer
                best, dist = c, abs(c - v)
    return float(best)


def _distance(v: float) -> float:
    """How far ``v`` is from its simple value, relatively (0 for 0)."""
    return abs(simple_value(v) - v) / max(abs(v), 1e-300)


def _near(v: float) -> bool:
    return _distance(v) <= NEAR


def _candidates(tokens: Sequence[int], const: torch.Tensor) -> list[tuple[int, float]]:
    """The values a member's constants are tried at, in order: each constant within :data:`NEAR`
    (relatively) of a simple value at that value, the nearest first; then each other constant at
    zero (a term, factor or offset the data may not need), the smallest first.

    Example:
        >>> _candidates([1, 2, 4, 1, 3], torch.tensor([2.9, 0, 0, 0.50001, 0]))   # c*x + c
        [(3, 0.5), (0, 0.0)]
    """
    pos = [i for i, t in enumerate(tokens) if t == CONST]
    near = sorted((i for i in pos if _near(float(const[i]))), key=lambda i: _distance(float(const[i])))
    rest = sorted((i for i in pos if i not in near), key=lambda i: abs(float(const[i])))
    return [(i, simple_value(float(const[i]))) for i in near] + [(i, 0.0) for i in rest]


def snap_tolerance(noise_loss: float, k: int, n: int) -> float:
    """The largest rise of the mean squared error accepted for holding ``k`` constants at
    simple values, on ``n`` rows with a noise variance of ``noise_loss``: freeing ``k``
    constants lowers the sum of squares of a correct model by ``sigma² chi²_k``, whose
    mean is ``k`` and standard deviation ``sqrt(2k)``; three of those above the mean.

    Example:
        >>> snap_tolerance(1.0, 2, 500)
        0.016
    """
    return noise_loss * (k + 3.0 * math.sqrt(2.0 * k)) / n


class Snapper:
    """Snaps the constants of a front (see the module's docstring); losses on the search rows.
    ``iterations``: Levenberg–Marquardt steps of each refit.
    """

    def __init__(self, problem: Problem, simplifier: Simplifier, iterations: int = 10):
        self.problem, self.simplifier, self.iterations = problem, simplifier, iterations

    def _fit(self, tok: torch.Tensor, const: torch.Tensor,
             fixed: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.problem
        c, loss, _ = fit_constants(tok, const, p.Xs, p.ys, p.ws, p.vocab, self.iterations, fixed)
        return c, loss

    def snap(self, front: Sequence[Member], noise: float | None = None,
             simplify: bool = True) -> tuple[list[Member], list[Member]]:
        """The members of ``front`` refitted on all search rows with their constants snapped where
        the data allow (one per member, in order), and the shorter forms sympy finds for them
        (snapped too; none without ``simplify``). ``noise``: the noise variance (None: the lowest
        loss of the refitted front)."""
        if not front:
            return [], []
        p = self.problem
        programs = [(list(t), list(c)) for t, c, _ in front]
        tok, const = pack(programs, p.maxsize, p.device, p.dtype)
        const, loss = self._fit(tok, const, None)          # every member refitted on all search rows
        base, n = loss.clone(), len(p.ys)
        noise = max(float(loss.min()) if noise is None else noise, p.floor)
        fixed = torch.zeros_like(tok, dtype=torch.bool)      # constants held at their simple values
        todo = [_candidates(prog[0], const[b]) for b, prog in enumerate(programs)]
        while any(todo):
            rows, trial_const, trial_fixed = [], [], []
            for b, free in enumerate(todo):
                if not free:
                    continue
                i, value = free.pop(0)
                c, f = const[b].clone(), fixed[b].clone()
                c[i], f[i] = value, True
                rows.append(b)
                trial_const.append(c)
                trial_fixed.append(f)
            idx = torch.as_tensor(rows, device=tok.device)
            f_new = torch.stack(trial_fixed)
            c_new, l_new = self._fit(tok[idx], torch.stack(trial_const), f_new)
            for j, b in enumerate(rows):
                if bool(l_new[j] <= base[b] + snap_tolerance(noise, int(f_new[j].sum()), n)):
                    const[b], loss[b], fixed[b] = c_new[j], l_new[j], f_new[j]
        snapped = self._members(programs, const, loss)
        if not simplify:
            return snapped, []
        shorter = self.simplifier.shorter(snapped)
        # a shorter form may carry constants that sympy merged away from their snapped values
        return snapped, self.snap([(t, c, math.inf) for t, c in shorter], noise, simplify=False)[0]

    def hall_of_fame(self, front: Sequence[Member]) -> HallOfFame:
        """A hall of fame of ``front``'s members, each replaced by its snapped form, and the
        shorter forms of those where they are the most accurate of their size."""
        snapped, shorter = self.snap(front)
        hof = HallOfFame(self.problem.maxsize)
        for t, c, l in snapped:
            hof[len(t)] = (t, c, l)
        for t, c, l in shorter:
            hof.offer(t, c, l)
        return hof

    @staticmethod
    def _members(programs: list, const: torch.Tensor, loss: torch.Tensor) -> list[Member]:
        const_np, loss_np = const.cpu().numpy(), loss.cpu().numpy()
        return [(list(prog[0]), const_np[b, :len(prog[0])].tolist(), float(loss_np[b]))
                for b, prog in enumerate(programs)]

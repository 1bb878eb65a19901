"""Scores of front members on all rows, the uncertainty of their constants, and their display.

A search evaluates candidates on a fixed subsample of rows (``search_rows``); the
members of its Pareto front are then scored on *all* rows, a bounded number of rows
per step (:class:`FullScore` accumulates across steps). The same pass accumulates the
Gauss–Newton matrix ``JᵀJ`` of each member's residuals with respect to its constants,
which gives their standard errors and intervals: the larger of the linearised
least-squares variance (``s² (JᵀJ)⁻¹``, ``s² = SSE / (n - p)``) and the
heteroscedasticity-robust one (White's sandwich with the HC1 factor ``n / (n - p)``),
so that noise proportional to the signal (1 % relative noise) does not give
intervals that are too narrow.

The displayed equation drops constants that are zero within their uncertainty (when
that does not worsen the fit), rounds the others to their uncertainty (two significant
digits of the standard error) and is simplified by sympy.

References:
    Bates & Watts, "Nonlinear Regression Analysis and Its Applications" (1988), ch. 2
    (linear approximation inference for nonlinear least squares); White, "A
    Heteroskedasticity-Consistent Covariance Matrix Estimator" (1980),
    https://doi.org/10.2307/1912934; MacKinnon & White (1985) for HC1.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .expression import CONST, Equation, Vocabulary, evaluate, pack

__all__ = ["FullScore", "ConstantInterval", "display_digits", "display_expression", "few_rows_warning"]

#: rows below which a result always carries a warning about what the data can support
FEW_ROWS = 10


class ConstantInterval(tuple):
    """``(value, std, lower, upper)`` of one fitted constant (``std`` inf: not identified).

    Example:
        >>> ConstantInterval(2.0, 0.1, 1.8, 2.2).identified, ConstantInterval(1.6e8, 2.5e9, -4.8e9, 5.1e9).identified
        (True, False)
    """

    __slots__ = ()

    def __new__(cls, value: float, std: float, lower: float, upper: float):
        return super().__new__(cls, (float(value), float(std), float(lower), float(upper)))

    value = property(lambda self: self[0])
    std = property(lambda self: self[1])
    lower = property(lambda self: self[2])
    upper = property(lambda self: self[3])

    @property
    def identified(self) -> bool:
        """False when the interval is wider than the constant's magnitude (half-width > |value|)."""
        return math.isfinite(self.std) and (self.upper - self.lower) / 2 <= abs(self.value)


class FullScore:
    """Loss and ``JᵀJ`` of one expression, accumulated over chunks of all ``n`` rows.

    Example:
        >>> from sciml_lab.symreg.expression import parse_ops
        >>> v = Vocabulary(["x"], *parse_ops("+ *"))                  # c=1, x=2, +=3, *=4
        >>> X = torch.linspace(1, 2, 50, dtype=torch.float64)[:, None]
        >>> y = 3 * X[:, 0] + 0.01 * torch.sin(40 * X[:, 0])
        >>> s = FullScore([1, 2, 4], [3.0, 0, 0])
        >>> while not s.done(len(y)): _ = s.advance(X, y, None, v, 20)
        >>> ci = s.intervals(len(y))[0]
        >>> round(ci.value, 3), ci.lower < 3 < ci.upper, ci.std < 0.01
        (3.0, True, True)
    """

    def __init__(self, tokens: Sequence[int], constants: Sequence[float], fixed: Sequence[int] = ()):
        self.tokens = list(tokens)
        self.constants = list(constants)
        # the constants fitted (those at positions in ``fixed`` are held at their values)
        self.positions = [i for i, t in enumerate(self.tokens) if t == CONST and i not in set(fixed)]
        k = len(self.positions)
        self.row = 0
        self.sse = 0.0
        self.jtj = np.zeros((k, k))
        self.meat = np.zeros((k, k))  # sum of r_i^2 J_i J_i^T (heteroscedasticity-robust covariance)
        self.finite = True

    @property
    def n_constants(self) -> int:
        return len(self.positions)

    def done(self, n: int) -> bool:
        return self.row >= n or not self.finite

    def advance(self, X: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, vocab: Vocabulary,
                budget: int) -> int:
        """Score the next rows within ``budget`` row-evaluations; returns the row-evaluations spent."""
        n = X.shape[0]
        k = self.n_constants
        rows = int(min(n - self.row, max(1, budget // (k + 1))))
        if rows <= 0:
            return 0
        theta = np.array([self.constants[p] for p in self.positions], dtype=float)
        h = 1e-7 * (1.0 + np.abs(theta))
        variants = [(self.tokens, self.constants)]
        for j, p in enumerate(self.positions):
            c = list(self.constants)
            c[p] = c[p] + h[j]
            variants.append((self.tokens, c))
        tok, const = pack(variants, None, X.device, X.dtype)
        sl = slice(self.row, self.row + rows)
        pred = evaluate(tok, const, X[sl], vocab)
        r = pred[0] - y[sl]
        sw = torch.sqrt(w[sl]) if w is not None else None
        if sw is not None:
            r = r * sw
        if not bool(torch.isfinite(r).all()):
            self.finite = False
            return rows * (k + 1)
        self.sse += float((r * r).sum())
        if k:
            J = (pred[1:] - pred[0]) / torch.as_tensor(h, dtype=X.dtype, device=X.device)[:, None]
            if sw is not None:
                J = J * sw
            J = torch.where(torch.isfinite(J), J, torch.zeros((), dtype=J.dtype, device=J.device))
            self.jtj += (J @ J.T).cpu().numpy()
            Jr = J * r
            self.meat += (Jr @ Jr.T).cpu().numpy()
        self.row += rows
        return rows * (k + 1)

    def loss(self, n: int) -> float:
        """Mean squared error on all ``n`` rows (inf when not finite on some row)."""
        return self.sse / n if self.finite else math.inf

    def intervals(self, n: int, level: float = 0.95) -> list[ConstantInterval]:
        """Linearised intervals of the constants (std inf when the data cannot pin a constant down)."""
        from scipy.special import stdtrit  # Student's t quantile (scipy.stats takes seconds to import)

        k = self.n_constants
        values = [self.constants[p] for p in self.positions]
        dof = n - k
        if not k:
            return []
        if dof <= 0 or not self.finite:
            return [ConstantInterval(v, math.inf, -math.inf, math.inf) for v in values]
        s2 = self.sse / dof
        lam, vec = np.linalg.eigh(self.jtj)
        top = float(lam.max(initial=0.0))
        if top <= 0:
            return [ConstantInterval(v, math.inf, -math.inf, math.inf) for v in values]
        inv = 1.0 / np.maximum(lam, top * 1e-15)  # near-null directions: (almost) unbounded variance
        bread = (vec * inv) @ vec.T
        classical = np.diag(bread) * s2
        robust = np.diag(bread @ self.meat @ bread) * n / dof  # HC1: right when the noise varies by row
        std = np.sqrt(np.maximum(np.maximum(classical, robust), 0.0))
        # exact fits (s2 = 0) are exact to rounding, not infinitely precise
        std = np.maximum(std, 1e-12 * np.abs(values))
        q = float(stdtrit(dof, 0.5 + level / 2))
        out = []
        for v, s in zip(values, std):
            s = float(s) if math.isfinite(s) and s < 1e300 else math.inf
            out.append(ConstantInterval(v, s, v - q * s, v + q * s))
        return out


#: most significant digits displayed (the full constants stay in the result's ``equation``)
MAX_DISPLAY_DIGITS = 6


def display_digits(value: float, std: float) -> int:
    """Significant digits of ``value`` that its uncertainty supports (two digits of ``std``,
    at most :data:`MAX_DISPLAY_DIGITS`).

    Example:
        >>> display_digits(0.0795775, 3e-5), display_digits(1.5012, 0.02), display_digits(2e8, 5e9)
        (5, 4, 1)
    """
    if value == 0 or not math.isfinite(value):
        return 1
    if not math.isfinite(std) or std <= 0:
        return 1 if not math.isfinite(std) else MAX_DISPLAY_DIGITS
    d = math.floor(math.log10(abs(value))) - math.floor(math.log10(std)) + 2
    return int(min(max(d, 1), MAX_DISPLAY_DIGITS))


def _round(value: float, digits: int) -> float:
    return float(f"{value:.{digits}g}")


def display_expression(tokens: Sequence[int], constants: Sequence[float], intervals: Sequence[ConstantInterval],
                       vocab: Vocabulary, loss_of: Callable[[list[float]], float], loss: float, n: int,
                       floor: float = 0.0, full_simplify: bool = True,
                       refit: Callable[[list[float], list[int]], list[ConstantInterval]] | None = None,
                       ) -> tuple[Any, list[int], list[ConstantInterval]]:
    """The displayed sympy expression of a member, the positions of constants dropped as zero,
    and the intervals of its constants.

    A constant whose interval contains zero is set to zero when the loss (``loss_of(constants)``)
    grows by no more than about two residual variances (``loss * 4 / (n - p)``, as for a
    dropped parameter that is truly zero); the others are rounded to their uncertainty; the
    result is simplified by sympy (the shortest of the plain, cancelled and, with
    ``full_simplify``, ``simplify``-ed forms; ``simplify`` can take a second). When
    constants are dropped, ``refit(constants, dropped_positions)`` gives the intervals of
    the kept ones in the reduced equation (dropping can leave the others unidentified:
    ``c1*n/(0.3 + c2*V/T)`` without its 0.3 only pins down ``c1/c2``).

    Example:
        >>> from sciml_lab.symreg.expression import parse_ops
        >>> v = Vocabulary(["x"], *parse_ops("+ *"))                  # c=1, x=2, +=3, *=4
        >>> cis = [ConstantInterval(2.4999999, 1e-4, 2.4997, 2.5002), ConstantInterval(1e-17, 1e-9, -2e-9, 2e-9)]
        >>> expr, dropped, _ = display_expression([1, 2, 4, 1, 3], [2.4999999, 0, 0, 1e-17, 0], cis, v,
        ...                                       lambda c: 0.0, 0.0, 50)
        >>> str(expr), dropped
        ('2.5*x', [3])
    """
    positions = [i for i, t in enumerate(tokens) if t == CONST]
    tolerance = loss * (1.0 + 4.0 / max(n - len(positions), 1)) + floor
    consts, dropped = _drop_zeros(positions, list(constants), intervals, loss_of, tolerance)
    intervals = list(intervals)
    if dropped and refit is not None:
        kept = iter(refit(list(consts), sorted(dropped)))
        intervals = [ci if p in dropped else next(kept) for p, ci in zip(positions, intervals)]
    digits, kept_digits = _round_to_uncertainty(positions, consts, dropped, intervals)
    best = _simplest(Equation(tokens, consts, vocab).sympy(), full_simplify)
    return _round_displayed(best, digits, kept_digits), sorted(dropped), intervals


def _drop_zeros(positions: list[int], consts: list[float], intervals: Sequence[ConstantInterval],
                loss_of: Callable[[list[float]], float], tolerance: float) -> tuple[list[float], list[int]]:
    """Constants whose interval contains zero set to zero, most uncertain first, while the loss stays
    within ``tolerance``: the constants and the positions dropped."""
    dropped: list[int] = []
    order = sorted(range(len(positions)), key=lambda j: abs(intervals[j].value) / max(intervals[j].std, 1e-300))
    for j in order:
        ci = intervals[j]
        if ci.value == 0 or not ci.lower <= 0 <= ci.upper:
            continue
        trial = list(consts)
        trial[positions[j]] = 0.0
        if loss_of(trial) <= tolerance:
            consts = trial
            dropped.append(positions[j])
    return consts, dropped


def _round_to_uncertainty(positions: list[int], consts: list[float], dropped: list[int],
                          intervals: Sequence[ConstantInterval]) -> tuple[int, list[tuple[float, int]]]:
    """Round the kept constants in place (with guard digits); the most digits shown and the
    ``(value, digits)`` of each kept constant."""
    digits, kept_digits = 1, []
    for j, p in enumerate(positions):
        if p in dropped:
            continue
        # a constant the data cannot pin down keeps 4 digits: it may only matter in a combination
        # with others (c1/c2) that is well determined; a warning names it
        d = display_digits(consts[p], intervals[j].std) if intervals[j].identified else 4
        digits = max(digits, d)
        kept_digits.append((consts[p], d))
        # rounded after simplification (1/12.566371 must show 0.0795775, not 1/12.5664 = 0.0795773);
        # three guard digits here let an integer-valued constant become that integer
        consts[p] = _round(consts[p], min(d + 3, 15))
    return digits, kept_digits


def _simplest(expr: Any, full_simplify: bool) -> Any:
    """The shortest of ``expr`` (integer-valued constants made integers), its ``cancel``-ed and,
    with ``full_simplify``, its ``simplify``-ed forms."""
    import sympy

    # an integer-valued rounded constant is that integer (1.0*x is x); 0 terms vanish
    expr = expr.xreplace({f: sympy.Integer(int(f)) for f in expr.atoms(sympy.Float) if float(f).is_integer()})
    best = expr
    for simplify in (sympy.cancel, sympy.simplify) if full_simplify else (sympy.cancel,):
        try:
            cand = simplify(expr)
        except Exception:  # sympy gives up on some custom operators: keep the plain form
            continue
        if sympy.count_ops(cand) < sympy.count_ops(best):
            best = cand
    return best


def _round_displayed(best: Any, digits: int, kept_digits: list[tuple[float, int]]) -> Any:
    """The constants of the simplified ``best`` rounded: one that survived simplification to its own
    digits, a new one (a combination) to the most digits shown; integer-valued ones made integers."""
    import sympy

    def final_digits(v: float) -> int:
        return next((d for c, d in kept_digits if abs(abs(v) - abs(c)) <= 1e-9 * abs(c)), digits)

    best = best.xreplace({f: sympy.Float(_round(float(f), final_digits(float(f))), final_digits(float(f)))
                          for f in best.atoms(sympy.Float)})
    return best.xreplace({f: sympy.Integer(int(f)) for f in best.atoms(sympy.Float) if float(f).is_integer()})


def few_rows_warning(n: int, equation: str, n_constants: int) -> str | None:
    """The warning for a search on fewer than :data:`FEW_ROWS` rows (None otherwise).

    Example:
        >>> few_rows_warning(8, "a**1.5", 1).split(":")[0], few_rows_warning(10, "a**1.5", 1)
        ('only 8 rows of data', None)
    """
    if n >= FEW_ROWS:
        return None
    return (f"only {n} rows of data: the selected equation {equation} has {n_constants} fitted constant"
            f"{'' if n_constants == 1 else 's'}, leaving {n - n_constants} residual degrees of freedom; so few "
            f"points support at most about {max(n // 3, 1)} constants, an equation that fits them closely may be "
            "fitting noise, and intervals are wide: check it on more data")

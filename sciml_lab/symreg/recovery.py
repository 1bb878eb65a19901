"""Exact symbolic recovery, by the SRBench rule.

A found model recovers the truth when, after rounding its constants, the difference
``found - truth`` or the ratio ``found / truth`` simplifies to a constant.

References:
    La Cava et al., "Contemporary Symbolic Regression Methods and their Relative
    Performance" (NeurIPS 2021), https://arxiv.org/abs/2107.14351.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Sequence

__all__ = ["is_exact_recovery", "round_constants"]


def round_constants(expr: Any, digits: int = 6, zero: float = 1e-8):
    """Constants rounded to ``digits`` significant digits, those below ``zero`` dropped,
    then made exact: rationals, or rational multiples of pi where the constant is one to
    ``digits`` digits (a search writes ``sin(x)`` as ``cos(x - 1.5707963267949)``: exact,
    but only with pi/2 in it), so that ``simplify`` can cancel them.

    Example:
        >>> import sympy
        >>> x = sympy.Symbol("x")
        >>> round_constants(0.50000000012 * x + 1e-12)
        x/2
        >>> round_constants(sympy.cos(x - 1.5707963267949)), round_constants(6.28318530718 * x)
        (sin(x), 2*pi*x)
    """
    import sympy

    reps = {}
    for f in expr.atoms(sympy.Float):
        v = float(f)
        reps[f] = sympy.Integer(0) if abs(v) < zero else _exact_constant(v, digits)
    return expr.xreplace(reps)


def _exact_constant(v: float, digits: int):
    import math

    import sympy

    for q in (1, 2, 3, 4, 6, 8, 12):  # the multiples of pi that trigonometric identities produce
        k = round(v * q / math.pi)
        if k and abs(v - k * math.pi / q) <= 10.0 ** -digits * abs(v):
            return sympy.pi * sympy.Rational(k, q)
    return sympy.Rational(f"{v:.{digits}g}")


def _is_constant(e: Any) -> bool:
    import sympy

    e = sympy.simplify(e)
    return not e.free_symbols and e.is_finite is not False and e != sympy.nan


def is_exact_recovery(found: Any, truth: Any, variables: Sequence[str] | None = None, digits: int = 6,
                      max_ops: int = 80, timeout: float | None = 20.0) -> bool:
    """Whether ``found`` recovers ``truth`` (sympy expressions or equation text).

    Text is read by :func:`~sciml_lab.symreg.grammar.parse_equation` (never evaluated);
    its names must be among ``variables`` (default: the symbols of an expression argument).

    Models that differ numerically from the truth on random points are rejected
    without ``simplify``; ``simplify`` runs at most ``timeout`` seconds (in the main
    thread; a timeout counts as not recovered).

    Example:
        >>> xs = ["x0", "x1"]
        >>> is_exact_recovery("2.49999999*x0*x1", "5*x0*x1/2", xs), is_exact_recovery("x0*x1 + 0.1", "x0*x1", xs)
        (True, True)
        >>> is_exact_recovery("x0 + x1", "x0*x1", xs)
        False
    """
    import sympy

    from .grammar import parse_equation

    names = list(variables) if variables is not None else sorted(
        {s.name for e in (found, truth) if not isinstance(e, str) for s in sympy.sympify(e, strict=True).free_symbols})

    def parse(e, what):
        if isinstance(e, str):
            e = parse_equation(e, names, what=what)
        else:
            e = sympy.sympify(e, strict=True)
        # one symbol set for both sides, whatever assumptions they were built with
        return e.xreplace({s: sympy.Symbol(s.name, real=True) for s in e.free_symbols})

    f, t = parse(found, "found"), parse(truth, "truth")
    if sympy.count_ops(f) > max_ops:
        return False
    f = round_constants(f, digits)
    if _numerically_different(f, t):
        return False
    try:
        with _time_limit(timeout):
            if _is_constant(f - t):
                return True
            if t != 0 and f != 0:
                r = sympy.simplify(f / t)
                return not r.free_symbols and r != 0 and r.is_finite is not False
    except (TypeError, ValueError, RecursionError, TimeoutError):  # sympy gives up on some expressions
        return False
    return False


def _numerically_different(f: Any, t: Any, n: int = 64, rtol: float = 1e-4) -> bool:
    """True when neither ``f - t`` nor ``f / t`` is constant on random points (a cheap
    test that spares ``simplify`` most wrong models); False when unsure."""
    import numpy as np
    import sympy

    syms = sorted(f.free_symbols | t.free_symbols, key=lambda s: s.name)
    if not syms:
        return False
    pts = np.random.default_rng(0).uniform(0.5, 2.0, (len(syms), n))
    try:
        with np.errstate(all="ignore"):
            fv = np.broadcast_to(np.asarray(sympy.lambdify(syms, f, "numpy")(*pts), dtype=float), (n,))
            tv = np.broadcast_to(np.asarray(sympy.lambdify(syms, t, "numpy")(*pts), dtype=float), (n,))
    except Exception:  # anything numpy cannot evaluate: let sympy decide
        return False
    ok = np.isfinite(fv) & np.isfinite(tv) & (tv != 0)
    if ok.sum() < 8:
        return False
    fv, tv = fv[ok], tv[ok]
    d, r = fv - tv, fv / tv
    scale = np.abs(tv).mean() + 1e-300
    return bool(d.std() > rtol * scale and r.std() > rtol * np.abs(r).mean())


@contextlib.contextmanager
def _time_limit(seconds: float | None):
    """Raise TimeoutError after ``seconds`` (main thread on Unix only; elsewhere no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def handler(signum, frame):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)

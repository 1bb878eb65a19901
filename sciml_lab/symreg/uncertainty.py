"""Uncertainty of the fitted constants of an equation, by the bootstrap.

The equation's structure is kept; its constants are refitted by nonlinear least
squares on resamples of the data (drawn with replacement). The spread of the refitted
constants is their sampling uncertainty given the structure.

References:
    Efron & Tibshirani, "An Introduction to the Bootstrap" (1993), ch. 9
    (bootstrapping regression models).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = ["bootstrap_constants"]


def bootstrap_constants(result: Any, X: Any = None, y: Any = None, n_boot: int = 200, complexity: int | None = None,
                        seed: int = 0, level: float = 0.95, variables: Any = None) -> xr.Dataset:
    """Bootstrap the constants of the selected equation of ``result`` (or of ``complexity``).

    Arguments:
        result: a symreg result (``job.result``), a sympy expression or equation text
            (read by :func:`~sciml_lab.symreg.grammar.parse_equation`, never evaluated).
        X, y: the data, ``(n, d)`` and ``(n,)``; default: the result's ``/data`` group.
        variables: the names of the columns of ``X`` (default: ``x0, x1, ...`` for text,
            the expression's symbols in name order otherwise).
        n_boot: number of resamples.
        level: probability of the reported interval.

    Returns:
        A Dataset over ``constant``: ``estimate`` (fit on all data), ``std``, ``lower``,
        ``upper`` and the ``draws`` ``(bootstrap, constant)``; attr ``template`` is the
        equation with the constants named ``c0, c1, ...``.

    Example:
        >>> import sympy
        >>> x = np.linspace(1, 2, 50)[:, None]
        >>> y = 2.5 * x[:, 0] + np.random.default_rng(0).normal(0, 0.01, 50)
        >>> ds = bootstrap_constants(2.4 * sympy.Symbol("x0"), x, y, n_boot=50)
        >>> bool(abs(ds.estimate[0] - 2.5) < 0.01 and 0 < ds["std"][0] < 0.01)
        True
    """
    import sympy

    expr, names, X, y = _expression_and_data(result, X, y, variables, complexity)
    floats = sorted(expr.atoms(sympy.Float), key=lambda f: sympy.default_sort_key(f))
    cs = sympy.symbols(f"c0:{len(floats)}") if floats else ()
    template = expr.xreplace(dict(zip(floats, cs)))
    xs = [sympy.Symbol(n, real=True) for n in names]
    template = template.xreplace({s: sympy.Symbol(s.name, real=True) for s in template.free_symbols
                                  if s.name in names})
    fit = _refit(sympy.lambdify([xs, cs], template, modules="numpy"))
    p0 = np.array([float(f) for f in floats])
    est = fit(X, y, p0)
    rng = np.random.default_rng(seed)
    draws = np.array([fit(X[idx], y[idx], est) for idx in (rng.integers(0, len(y), len(y)) for _ in range(n_boot))])
    draws = draws.reshape(n_boot, len(p0))
    a = (1 - level) / 2
    return xr.Dataset(
        {"estimate": ("constant", est), "std": ("constant", draws.std(0, ddof=1) if n_boot > 1 else np.zeros(len(p0))),
         "lower": ("constant", np.quantile(draws, a, axis=0) if len(p0) else est),
         "upper": ("constant", np.quantile(draws, 1 - a, axis=0) if len(p0) else est),
         "draws": (("bootstrap", "constant"), draws)},
        coords={"constant": [str(c) for c in cs]},
        attrs={"template": str(template), "latex_template": sympy.latex(template), "level": level, "n_boot": n_boot},
    )


def _expression_and_data(result: Any, X: Any, y: Any, variables: Any, complexity: int | None):
    """The equation (a sympy expression), its variables' names and the data ``X (n, d)``, ``y (n,)``."""
    import sympy

    if isinstance(result, xr.DataTree):
        from . import equation, result_variables

        expr = equation(result, complexity)
        names = result_variables(result)
        if X is None or y is None:
            data = result["data"]
            X = np.stack([data[n].values for n in names], axis=1)
            y = data[result.attrs["target"]].values
    else:
        if X is None or y is None:
            raise ValueError("X, y: expected the data when result is an expression, got None")
        if isinstance(result, str):
            from .grammar import parse_equation

            names = list(variables) if variables is not None else [
                f"x{i}" for i in range(np.asarray(X, dtype=float).reshape(len(y), -1).shape[1])]
            expr = parse_equation(result, names)
        else:
            expr = sympy.sympify(result, strict=True)  # a sympy object already: no text is read
            names = list(variables) if variables is not None else sorted(s.name for s in expr.free_symbols)
    return expr, names, np.asarray(X, dtype=float).reshape(len(y), -1), np.asarray(y, dtype=float)


def _refit(fn: Any):
    """``fit(X, y, start)``: least-squares constants of the lambdified template ``fn([x...], [c...])``."""
    from scipy.optimize import least_squares

    def fit(Xb: np.ndarray, yb: np.ndarray, start: np.ndarray) -> np.ndarray:
        if not len(start):
            return start

        def resid(p):
            with np.errstate(all="ignore"):
                r = np.broadcast_to(fn(list(Xb.T), list(p)), yb.shape) - yb
            return np.where(np.isfinite(r), r, 1e10)

        return least_squares(resid, start, method="lm" if len(yb) >= len(start) else "trf").x
    return fit

"""Ground-truth problems: AI Feynman (as in SRBench) and Nguyen classics.

Each problem: a name, the variable names with sampling ranges (uniform), and the true
law as equation text (read by the equation grammar, never evaluated). Data: ``n`` points for training and ``n`` for testing,
Gaussian noise of standard deviation ``noise * RMS(y)`` on the training target only.

References:
    Udrescu & Tegmark, "AI Feynman" (2020), https://doi.org/10.1126/sciadv.aay2631;
    La Cava et al., SRBench (2021), https://arxiv.org/abs/2107.14351;
    Uy et al., "Semantically-based crossover in genetic programming" (2011) (Nguyen set).
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Problem", "PROBLEMS", "make_data"]


#: inverse trigonometric functions of the AI Feynman table, outside the search's vocabulary
_INVERSE = {"arcsin": "asin", "arccos": "acos"}


@dataclasses.dataclass(frozen=True)
class Problem:
    """A law: its name, its variables with their sampling ranges (uniform) and its formula as
    equation text, read by :func:`~sciml_lab.symreg.grammar.parse_equation` (never evaluated)."""

    name: str
    variables: dict[str, tuple[float, float]]
    truth: str

    def expr(self, names: list[str] | None = None):
        """The law as a sympy expression, in the variables ``names`` (default: its own names)."""
        import sympy

        from sciml_lab.symreg.grammar import parse_equation

        e = parse_equation(self.truth, list(self.variables), functions=list(_INVERSE), what=f"{self.name} truth")
        for ours, theirs in _INVERSE.items():
            e = e.replace(sympy.Function(ours), getattr(sympy, theirs))
        if names is not None:
            e = e.xreplace({sympy.Symbol(v, real=True): sympy.Symbol(n, real=True)
                            for v, n in zip(self.variables, names)})
        return e

    def f(self, X: np.ndarray) -> np.ndarray:
        import sympy

        syms = [sympy.Symbol(v, real=True) for v in self.variables]
        with np.errstate(all="ignore"):
            return np.asarray(sympy.lambdify(syms, self.expr(), "numpy")(*X.T), dtype=float) * np.ones(len(X))


def _p(name: str, truth: str, **variables: tuple[float, float]) -> Problem:
    return Problem(name, dict(variables), truth)


PROBLEMS: list[Problem] = [
    _p("feynman-I.6.2a", "exp(-theta**2/2)/sqrt(2*pi)", theta=(1, 3)),
    _p("feynman-I.12.1", "mu*Nn", mu=(1, 5), Nn=(1, 5)),
    _p("feynman-I.12.4", "q1/(4*pi*epsilon*r**2)", q1=(1, 5), epsilon=(1, 5), r=(1, 5)),
    _p("feynman-I.12.5", "q2*Ef", q2=(1, 5), Ef=(1, 5)),
    _p("feynman-I.14.3", "m*g*z", m=(1, 5), g=(1, 5), z=(1, 5)),
    _p("feynman-I.14.4", "k_spring*x**2/2", k_spring=(1, 5), x=(1, 5)),
    _p("feynman-I.18.12", "r*F*sin(theta)", r=(1, 5), F=(1, 5), theta=(0, 5)),
    _p("feynman-I.25.13", "q/C", q=(1, 5), C=(1, 5)),
    _p("feynman-I.27.6", "1/(1/d1 + n/d2)", d1=(1, 5), d2=(1, 5), n=(1, 5)),
    _p("feynman-I.29.4", "omega/c", omega=(1, 10), c=(1, 10)),
    _p("feynman-I.34.27", "h*omega/(2*pi)", h=(1, 5), omega=(1, 5)),
    _p("feynman-I.39.1", "3*pr*V/2", pr=(1, 5), V=(1, 5)),
    _p("feynman-I.43.31", "mob*kb*T", mob=(1, 5), kb=(1, 5), T=(1, 5)),
    _p("feynman-I.47.23", "sqrt(gamma*pr/rho)", gamma=(1, 5), pr=(1, 5), rho=(1, 5)),
    _p("feynman-II.3.24", "Pwr/(4*pi*r**2)", Pwr=(1, 5), r=(1, 5)),
    _p("feynman-II.8.31", "epsilon*Ef**2/2", epsilon=(1, 5), Ef=(1, 5)),
    _p("feynman-II.27.16", "epsilon*c*Ef**2", epsilon=(1, 5), c=(1, 5), Ef=(1, 5)),
    _p("feynman-II.38.14", "Y/(2*(1 + sigma))", Y=(1, 5), sigma=(1, 5)),
    _p("feynman-III.12.43", "n*h/(2*pi)", n=(1, 5), h=(1, 5)),
    _p("feynman-I.12.11", "q*(Ef + B*v*sin(theta))", q=(1, 5), Ef=(1, 5), B=(1, 5), v=(1, 5), theta=(1, 5)),
    _p("feynman-I.10.7", "m0/sqrt(1 - v**2/c**2)", m0=(1, 5), v=(1, 2), c=(3, 10)),
    _p("nguyen-1", "x**3 + x**2 + x", x=(-1, 1)),
    _p("nguyen-5", "sin(x**2)*cos(x) - 1", x=(-1, 1)),
    _p("nguyen-7", "log(x + 1) + log(x**2 + 1)", x=(0, 2)),
    _p("nguyen-8", "sqrt(x)", x=(0, 4)),
    _p("nguyen-10", "2*sin(x)*cos(y)", x=(0, 1), y=(0, 1)),
    _p("nguyen-12", "x**4 - x**3 + y**2/2 - y", x=(-1, 1), y=(-1, 1)),
]


def make_data(problem: Problem, n: int = 500, noise: float = 0.0, seed: int = 0):
    """``(X_train, y_train, X_test, y_test)``; noise on the training target only."""
    rng = np.random.default_rng(seed)
    lo = np.array([r[0] for r in problem.variables.values()], dtype=float)
    hi = np.array([r[1] for r in problem.variables.values()], dtype=float)
    X = rng.uniform(lo, hi, (2 * n, len(lo)))
    y = problem.f(X)
    ytr = y[:n] + rng.normal(0, noise * np.sqrt(np.mean(y[:n] ** 2)), n) if noise else y[:n].copy()
    return X[:n], ytr, X[n:], y[n:]

"""Expressions as postfix token sequences: one expression's exports, and the public names of expressions.

An expression is a postfix (reverse Polish) sequence of integer tokens drawn from a
:class:`Vocabulary` (``PAD``, ``CONST``, the input variables, unary then binary
operators) with one constant slot per position (used where the token is ``CONST``).
The vocabulary lives in :mod:`~sciml_lab.symreg.vocabulary`, the batched evaluation of a
population in :mod:`~sciml_lab.symreg.evaluation` and the conversion back from sympy in
:mod:`~sciml_lab.symreg.conversion`; their names are importable from here too.

The exports of one expression (:class:`Equation`: sympy, LaTeX, NumPy and torch
callables) are built from the same operator table, so they agree with the engine.

References:
    Cranmer, "Interpretable Machine Learning for Science with PySR and
    SymbolicRegression.jl" (2023), https://arxiv.org/abs/2305.01582 — operators,
    nesting constraints and the postfix view of trees follow its design.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from .conversion import from_sympy
from .evaluation import evaluate, nan_to_inf
from .vocabulary import BINARY, CONST, PAD, UNARY, Operator, Vocabulary, depth, pack, parse_ops, subtree_start

__all__ = ["Operator", "UNARY", "BINARY", "Vocabulary", "parse_ops", "evaluate", "pack", "Equation", "equation_from_text",
           "subtree_start", "depth", "PAD", "CONST", "from_sympy", "nan_to_inf"]


def _run_scalar(tokens: Sequence[int], constants: Sequence[float], vocab: Vocabulary, leaf: Callable,
                apply: Callable) -> Any:
    stack: list[Any] = []
    for i, t in enumerate(tokens):
        if t == PAD:
            continue
        if t == CONST:
            stack.append(leaf(None, float(constants[i])))
        elif t < vocab.first_unary:
            stack.append(leaf(vocab.variables[t - vocab.first_var], None))
        else:
            op = vocab.ops[t]
            args = [stack.pop() for _ in range(op.arity)][::-1]
            stack.append(apply(op, args))
    return stack[-1]


class Equation:
    """One expression of a search, with its exports.

    Arguments:
        tokens: postfix tokens of ``vocab``.
        constants: one value per position (read where the token is ``CONST``).
        vocab: the search's :class:`Vocabulary`.

    Example:
        >>> v = Vocabulary(["x0", "x1"], *parse_ops("+ * sin"))
        >>> eq = Equation([1, 2, 3, 6, 6], [2.5, 0, 0, 0, 0], v)     # 2.5 * (x0 * x1)
        >>> str(eq.sympy()), eq.latex()
        ('2.5*x0*x1', '2.5 x_{0} x_{1}')
        >>> float(eq.numpy()(np.array([[2.0, 3.0]]))[0])
        15.0
    """

    def __init__(self, tokens: Sequence[int], constants: Sequence[float], vocab: Vocabulary):
        self.tokens = [int(t) for t in tokens if t != PAD]
        self.constants = [float(c) for c in constants[:len(self.tokens)]]
        self.vocab = vocab

    @property
    def complexity(self) -> int:
        return len(self.tokens)

    def sympy(self, digits: int | None = None):
        """The sympy expression (constants rounded to ``digits`` significant digits if given)."""
        import sympy

        symbols = {n: sympy.Symbol(n, real=True) for n in self.vocab.variables}

        def leaf(name, value):
            if name is not None:
                return symbols[name]
            if digits is not None:
                value = float(f"{value:.{digits}g}")
            return sympy.Float(value) if not float(value).is_integer() or digits is None else sympy.Integer(int(value))

        return _run_scalar(self.tokens, self.constants, self.vocab, leaf, lambda op, a: op.sympy(*a))

    def latex(self, digits: int = 4) -> str:
        """LaTeX of the expression, constants to ``digits`` significant digits."""
        import sympy

        expr = self.sympy(digits)
        # sympy merges rounded constants into new ones (0.0003089 - 0.018): round again after
        expr = expr.xreplace({f: sympy.Float(f"{float(f):.{digits}g}", digits) for f in expr.atoms(sympy.Float)})
        return sympy.latex(expr)

    def numpy(self) -> Callable[[np.ndarray], np.ndarray]:
        """A NumPy callable ``f(X)`` with ``X`` of shape ``(n, d)`` (columns in variable order)."""
        vocab, tokens, consts = self.vocab, self.tokens, self.constants
        col = {n: i for i, n in enumerate(vocab.variables)}

        def f(X: np.ndarray) -> np.ndarray:
            X = np.asarray(X, dtype=np.float64).reshape(-1, len(col))
            with np.errstate(all="ignore"):
                out = _run_scalar(tokens, consts, vocab,
                                  lambda n, v: X[:, col[n]] if n is not None else np.full(len(X), v),
                                  lambda op, a: op.numpy(*a))
            return np.broadcast_to(out, (len(X),)).copy()

        return f

    def torch(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """A torch callable ``f(X)`` with ``X (n, d)``; differentiable in ``X``."""
        vocab, tokens, consts = self.vocab, self.tokens, self.constants
        col = {n: i for i, n in enumerate(vocab.variables)}

        def f(X: torch.Tensor) -> torch.Tensor:
            out = _run_scalar(tokens, consts, vocab,
                              lambda n, v: X[:, col[n]] if n is not None else torch.full(
                                  (X.shape[0],), v, dtype=X.dtype, device=X.device),
                              lambda op, a: op.torch(*a))
            return out

        return f

    def __str__(self) -> str:
        return str(self.sympy())

    def __repr__(self) -> str:
        return f"Equation({self}, complexity={self.complexity})"


def equation_from_text(text: str, variables: Sequence[str],
                       functions: Sequence[str] = ()) -> Callable[[np.ndarray], np.ndarray]:
    """A NumPy callable from an equation string of a result's ``/pareto`` group, read by
    :func:`~sciml_lab.symreg.grammar.parse_equation` (never evaluated as code; custom
    operators in ``functions`` cannot be called from text).

    Example:
        >>> f = equation_from_text("2.5*x0*x1", ["x0", "x1"])
        >>> float(f(np.array([[2.0, 3.0]]))[0])
        15.0
    """
    import sympy

    from .grammar import parse_equation

    symbols = [sympy.Symbol(n, real=True) for n in variables]
    expr = parse_equation(text, variables, functions)
    opaque = sorted({type(f).__name__ for f in expr.atoms(sympy.Function) if type(f).__name__ in set(functions)})
    if opaque:
        raise ValueError(f"equation: {', '.join(opaque)} is a custom operator; evaluate it with the engine "
                         "(SymRegEngine.predict) where its function is known")
    fn = sympy.lambdify(symbols, expr, modules="numpy")

    def f(X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(symbols))
        with np.errstate(all="ignore"):
            out = fn(*X.T)
        return np.broadcast_to(np.asarray(out, dtype=np.float64), (len(X),)).copy()

    return f

"""Sympy expressions back to postfix programs of a :class:`~sciml_lab.symreg.vocabulary.Vocabulary`.

Used to simplify: an expression goes to sympy (whose automatic canonical form cancels
``x/x``, merges ``2*(3*x)``...) and comes back shorter. Each kind of sympy node
(symbol, number, sum, product, power, function) has its own writer; a node the
vocabulary cannot express makes the whole conversion give None.
"""

from __future__ import annotations

import math
from typing import Any

from .vocabulary import CONST, Vocabulary

__all__ = ["from_sympy"]

#: sympy function classes and the unary operators that write them
_SYMPY_FUNCS = {"sin": "sin", "cos": "cos", "tan": "tan", "exp": "exp", "log": "log", "tanh": "tanh", "Abs": "abs"}


def from_sympy(expr: Any, vocab: Vocabulary) -> "tuple[list[int], list[float]] | None":
    """Postfix tokens of a sympy expression, or None when the vocabulary cannot express it.

    Used to simplify: an expression goes to sympy (whose automatic canonical form
    cancels ``x/x``, merges ``2*(3*x)``...) and comes back shorter.

    Example:
        >>> import sympy
        >>> from sciml_lab.symreg.expression import Equation, parse_ops
        >>> v = Vocabulary(["x0", "x1"], *parse_ops("+ - * /"))
        >>> x0, x1 = sympy.symbols("x0 x1")
        >>> tok, const = from_sympy(2.5 * x0 * x1 / x1 - x0, v)
        >>> Equation(tok, const, v).sympy(), len(tok)
        (1.5*x0, 3)
        >>> from_sympy(sympy.sin(x0), v) is None                  # no sin in the vocabulary
        True
    """
    import sympy

    if isinstance(expr, str):
        raise TypeError("from_sympy: expected a sympy expression, got text (parse it with parse_equation)")
    writer = _Writer(vocab)
    try:
        ok = writer.node(sympy.sympify(expr, strict=True))
    except (TypeError, ValueError, RecursionError, sympy.SympifyError):
        return None
    return (writer.tokens, writer.consts) if ok else None


class _Writer:
    """The postfix program of one expression, written node by node; every method returns
    whether the vocabulary could express its node (False ends the conversion)."""

    def __init__(self, vocab: Vocabulary):
        self.vocab, self.names = vocab, vocab.names
        self.tokens: list[int] = []
        self.consts: list[float] = []

    def has(self, op: str) -> bool:
        return op in self.names[self.vocab.first_unary:]

    def emit(self, t: int, c: float = 0.0) -> None:
        self.tokens.append(t)
        self.consts.append(c)

    def op(self, name: str) -> bool:
        self.emit(self.names.index(name))
        return True

    def node(self, e: Any) -> bool:
        for kind, write in _NODE_WRITERS:
            if getattr(e, kind):
                return write(self, e)
        return self.function(e)

    def symbol(self, e: Any) -> bool:
        return e.name in self.vocab.variables and self.op(e.name)

    def number(self, v: Any) -> bool:
        try:
            f = float(v)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(f):
            return False
        self.emit(CONST, f)
        return True

    def product(self, factors: list) -> bool:
        if not factors:
            return self.number(1.0)
        if not self.node(factors[0]):
            return False
        for f in factors[1:]:
            if not (self.node(f) and self.has("*")):
                return False
            self.op("*")
        return True

    def add(self, e: Any) -> bool:
        terms = list(e.as_ordered_terms())
        if not self.node(terms[0]):
            return False
        for t in terms[1:]:
            coeff, rest = t.as_coeff_Mul()
            if coeff.is_negative and self.has("-"):
                if not self.node(-t):
                    return False
                self.op("-")
            else:
                if not (self.node(t) and self.has("+")):
                    return False
                self.op("+")
        return True

    def mul(self, e: Any) -> bool:
        num, den = [], []
        for f in e.as_ordered_factors():
            if f.is_Pow and f.exp.is_number and f.exp.is_negative:
                den.append(f.base ** (-f.exp))
            else:
                num.append(f)
        if den and not self.has("/"):
            return False
        if not self.product(num):
            return False
        if den:
            return self.product(den) and self.op("/")
        return True

    def power(self, e: Any) -> bool:
        import sympy

        b, x = e.base, e.exp
        if x == sympy.Rational(1, 2) and self.has("sqrt"):
            return self.node(b) and self.op("sqrt")
        if x.is_number and x.is_negative:
            return self.has("/") and self.number(1.0) and self.node(b ** (-x)) and self.op("/")
        if x == 2 and self.has("square"):
            return self.node(b) and self.op("square")
        if x == 3 and self.has("cube"):
            return self.node(b) and self.op("cube")
        if x.is_Integer and 2 <= int(x) <= 4 and self.has("*"):
            return self.product([b] * int(x))
        if self.has("^"):
            return self.node(b) and self.node(x) and self.op("^")
        return False

    def function(self, e: Any) -> bool:
        fname = _SYMPY_FUNCS.get(type(e).__name__)
        if fname and self.has(fname) and len(e.args) == 1:
            return self.node(e.args[0]) and self.op(fname)
        return False


#: the writer of each kind of node, tried in this order (a node of none of them is a function)
_NODE_WRITERS = (("is_Symbol", _Writer.symbol), ("is_number", _Writer.number), ("is_Add", _Writer.add),
                 ("is_Mul", _Writer.mul), ("is_Pow", _Writer.power))

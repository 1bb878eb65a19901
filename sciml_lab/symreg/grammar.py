"""The equation grammar: text from result files or users becomes sympy objects, never code.

Equation text (a result's ``/pareto`` equations, a truth typed by a user) is read by
a tokenizer and a precedence-climbing parser that build sympy objects directly
(``sympy.Symbol``, ``sympy.Float``, ``sympy.Integer``, sums, products, powers and the
functions of the engine's vocabulary). Nothing is evaluated as Python: a name that is
not a known variable, function or constant is refused with a ``ValueError`` naming it.

Grammar (``^`` and ``**`` are the same right-associative power; unary signs bind
looser than powers, as in Python and sympy's printer, so ``-x**2`` is ``-(x**2)``)::

    expr    := term (('+' | '-') term)*
    term    := unary (('*' | '/') unary)*
    unary   := ('+' | '-') unary | power
    power   := atom (('**' | '^') unary)?
    atom    := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
    NUMBER  := digits ['.' digits] [('e' | 'E') ['+' | '-'] digits]   (also '.5', '2.')
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

__all__ = ["parse_equation", "FUNCTIONS", "CONSTANTS", "MAX_LENGTH", "MAX_DEPTH"]

#: longest equation text accepted (characters)
MAX_LENGTH = 20_000
#: deepest nesting of parentheses, function calls, signs and powers accepted
MAX_DEPTH = 100
#: largest exact power of a number computed (``10**10**10`` would not finish)
_MAX_EXACT_BITS = 100_000

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|[-+*/^(),])
""", re.VERBOSE)


def _function_table() -> dict[str, Any]:
    import sympy

    return {"sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log,
            "sqrt": sympy.sqrt, "Abs": sympy.Abs, "abs": sympy.Abs, "tanh": sympy.tanh}


#: functions of the engine's vocabulary (names as sympy prints them, and the engine's ``abs``)
FUNCTIONS = ("sin", "cos", "tan", "exp", "log", "sqrt", "Abs", "abs", "tanh")
#: named constants sympy's printer may write
CONSTANTS = ("E", "pi", "I", "oo", "zoo", "nan")


def _constant(name: str) -> Any:
    import sympy

    return {"E": sympy.E, "pi": sympy.pi, "I": sympy.I, "oo": sympy.oo, "zoo": sympy.zoo, "nan": sympy.nan}[name]


def _tokens(text: str, what: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # reported when the parser reaches it, so that a bad name before it is named first
            out.append(("bad", text[pos], pos))
            break
        if m.lastgroup != "space":
            out.append((m.lastgroup, m.group(), pos))
        pos = m.end()
    return out


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[:n] + "..."


def parse_equation(text: str, variables: Sequence[str], functions: Iterable[str] = (), *, what: str = "equation",
                   real: bool = True):
    """Parse equation text into a sympy expression without evaluating any code.

    Arguments:
        text: the equation, e.g. ``"2.5*x0*sin(x1)**2 - 1e-3"``.
        variables: the names allowed as variables (the result's features).
        functions: extra function names (custom operators), kept as opaque
            ``sympy.Function`` objects.
        what: the name used in error messages (``equation``, ``truth``...).
        real: variables are real sympy symbols (as the engine builds them).

    Raises:
        ValueError: naming the offending token and its position, for unknown names,
            stray characters, unbalanced parentheses, too deep nesting or too long text.

    Example:
        >>> parse_equation("2.5*x0*x1 - x1^2/3", ["x0", "x1"])
        2.5*x0*x1 - x1**2/3
        >>> parse_equation("__import__('os')", ["x0"])
        Traceback (most recent call last):
        ...
        ValueError: equation: unknown function '__import__' at position 0 of "__import__('os')"; expected one of sin, cos, tan, exp, log, sqrt, Abs, abs, tanh
    """
    if not isinstance(text, str):
        raise ValueError(f"{what}: expected equation text (str), got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"{what}: expected at most {MAX_LENGTH} characters, got {len(text)}")
    toks = _tokens(text, what)
    if not toks:
        raise ValueError(f"{what}: expected an equation, got empty text")
    return _Parser(text, toks, variables, functions, what, real).parse()


class _Parser:
    """Precedence climbing over the tokens: expr = term (+|- term)*, term = unary (*|/ unary)*,
    unary = (+|-) unary | power, power = atom [(**|^) unary], atom = number | name | name(args) | (expr)."""

    def __init__(self, text: str, toks: list, variables: Sequence[str], functions: Iterable[str], what: str,
                 real: bool):
        import sympy

        self.sympy, self.text, self.toks, self.what = sympy, text, toks, what
        self.symbols = {n: sympy.Symbol(n, real=True) if real else sympy.Symbol(n) for n in variables}
        self.table = _function_table()
        self.custom = {n: sympy.Function(n) for n in functions if n not in self.table and n not in self.symbols}
        self.i = 0
        self.depth = 0

    def parse(self) -> Any:
        result = self.expr()
        if self.i != len(self.toks):
            raise self.fail("an operator (+ - * / ** ^) or the end of the equation")
        return result

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def fail(self, expected: str) -> ValueError:
        tok, what, text = self.peek(), self.what, self.text
        if tok is not None and tok[0] == "bad":
            return ValueError(f"{what}: unexpected character {tok[1]!r} at position {tok[2]} of {_short(text)!r}; "
                              "expected numbers, variable and function names, + - * / ** ^ and parentheses")
        got = f"{tok[1]!r} at position {tok[2]}" if tok else "the end of the text"
        return ValueError(f"{what}: expected {expected}, got {got} in {_short(text)!r}")

    def take(self, value: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] == value:
            self.i += 1
            return True
        return False

    def nested(self, parse: Any) -> Any:
        """``parse()`` one level deeper (bounded: deep nesting is an error, not a crash)."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ValueError(f"{self.what}: nesting deeper than {MAX_DEPTH} levels in {_short(self.text)!r}")
        try:
            return parse()
        finally:
            self.depth -= 1

    def expr(self) -> Any:
        terms = [self.term()]
        while True:
            if self.take("+"):
                terms.append(self.term())
            elif self.take("-"):
                terms.append(-self.term())
            else:
                return self.sympy.Add(*terms)

    def term(self) -> Any:
        factors = [self.unary()]
        while True:
            if self.take("*"):
                factors.append(self.unary())
            elif self.take("/"):
                factors.append(self.sympy.Pow(self.unary(), -1))
            else:
                return self.sympy.Mul(*factors)

    def unary(self) -> Any:
        def signed() -> Any:
            if self.take("-"):
                return -self.unary()
            if self.take("+"):
                return self.unary()
            return self.power()
        return self.nested(signed)

    def power(self) -> Any:
        base = self.atom()
        if self.take("**") or self.take("^"):
            exponent = self.unary()
            if base.is_Rational and exponent.is_Integer and abs(int(exponent)) * max(
                    abs(base.p).bit_length(), abs(base.q).bit_length()) > _MAX_EXACT_BITS:
                raise ValueError(f"{self.what}: the power {_short(str(base), 20)}**{_short(str(exponent), 20)} is "
                                 f"too large to compute exactly (more than {_MAX_EXACT_BITS} bits) in "
                                 f"{_short(self.text)!r}")
            return base ** exponent
        return base

    def atom(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise self.fail("a number, a variable, a function or '('")
        kind, value, pos = tok
        if kind == "number":
            self.i += 1
            return self.sympy.Integer(int(value)) if re.fullmatch(r"\d+", value) else self.sympy.Float(value)
        if kind == "name":
            self.i += 1
            return self.call(value, pos) if self.take("(") else self.name(value, pos)
        if self.take("("):
            inner = self.nested(self.expr)
            if not self.take(")"):
                raise self.fail("')'")
            return inner
        raise self.fail("a number, a variable, a function or '('")

    def call(self, value: str, pos: int) -> Any:
        fn = self.table.get(value) or self.custom.get(value)
        if fn is None:
            raise ValueError(f"{self.what}: unknown function {value!r} at position {pos} of {_short(self.text)!r}; "
                             f"expected one of {', '.join(list(self.table) + list(self.custom))}")

        def arguments() -> list:
            args = [self.expr()]
            while self.take(","):
                args.append(self.expr())
            return args
        args = self.nested(arguments)
        if not self.take(")"):
            raise self.fail(f"')' closing {value}(")
        if value in self.table and len(args) != 1:
            raise ValueError(f"{self.what}: {value}() takes one argument, got {len(args)} at position {pos} "
                             f"of {_short(self.text)!r}")
        return fn(*args)

    def name(self, value: str, pos: int) -> Any:
        if value in self.symbols:
            return self.symbols[value]
        if value in CONSTANTS:
            return _constant(value)
        names = ", ".join(self.symbols) or "none"
        funcs = ", ".join(list(self.table) + list(self.custom))
        raise ValueError(f"{self.what}: unknown name {value!r} at position {pos} of {_short(self.text)!r}; expected "
                         f"a variable ({names}), a function ({funcs}) or a constant ({', '.join(CONSTANTS)})")

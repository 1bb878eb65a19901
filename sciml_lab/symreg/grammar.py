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
    import sympy

    if not isinstance(text, str):
        raise ValueError(f"{what}: expected equation text (str), got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"{what}: expected at most {MAX_LENGTH} characters, got {len(text)}")
    toks = _tokens(text, what)
    if not toks:
        raise ValueError(f"{what}: expected an equation, got empty text")
    symbols = {n: sympy.Symbol(n, real=True) if real else sympy.Symbol(n) for n in variables}
    table = _function_table()
    custom = {n: sympy.Function(n) for n in functions if n not in table and n not in symbols}
    i = 0
    depth = 0

    def peek() -> tuple[str, str, int] | None:
        return toks[i] if i < len(toks) else None

    def fail(expected: str) -> ValueError:
        tok = peek()
        if tok is not None and tok[0] == "bad":
            return ValueError(f"{what}: unexpected character {tok[1]!r} at position {tok[2]} of {_short(text)!r}; "
                              "expected numbers, variable and function names, + - * / ** ^ and parentheses")
        got = f"{tok[1]!r} at position {tok[2]}" if tok else "the end of the text"
        return ValueError(f"{what}: expected {expected}, got {got} in {_short(text)!r}")

    def take(value: str) -> bool:
        nonlocal i
        tok = peek()
        if tok is not None and tok[0] == "op" and tok[1] == value:
            i += 1
            return True
        return False

    def enter() -> None:
        nonlocal depth
        depth += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"{what}: nesting deeper than {MAX_DEPTH} levels in {_short(text)!r}")

    def expr() -> Any:
        terms = [term()]
        while True:
            if take("+"):
                terms.append(term())
            elif take("-"):
                terms.append(-term())
            else:
                return sympy.Add(*terms)

    def term() -> Any:
        factors = [unary()]
        while True:
            if take("*"):
                factors.append(unary())
            elif take("/"):
                factors.append(sympy.Pow(unary(), -1))
            else:
                return sympy.Mul(*factors)

    def unary() -> Any:
        nonlocal depth
        enter()
        try:
            if take("-"):
                return -unary()
            if take("+"):
                return unary()
            return power()
        finally:
            depth -= 1

    def power() -> Any:
        base = atom()
        if take("**") or take("^"):
            exponent = unary()
            if base.is_Rational and exponent.is_Integer and abs(int(exponent)) * max(
                    abs(base.p).bit_length(), abs(base.q).bit_length()) > _MAX_EXACT_BITS:
                raise ValueError(f"{what}: the power {_short(str(base), 20)}**{_short(str(exponent), 20)} is too "
                                 f"large to compute exactly (more than {_MAX_EXACT_BITS} bits) in {_short(text)!r}")
            return base ** exponent
        return base

    def atom() -> Any:
        nonlocal i, depth
        tok = peek()
        if tok is None:
            raise fail("a number, a variable, a function or '('")
        kind, value, pos = tok
        if kind == "number":
            i += 1
            if re.fullmatch(r"\d+", value):
                return sympy.Integer(int(value))
            return sympy.Float(value)
        if kind == "name":
            i += 1
            if take("("):
                fn = table.get(value) or custom.get(value)
                if fn is None:
                    raise ValueError(f"{what}: unknown function {value!r} at position {pos} of {_short(text)!r}; "
                                     f"expected one of {', '.join(list(table) + list(custom))}")
                enter()
                try:
                    args = [expr()]
                    while take(","):
                        args.append(expr())
                finally:
                    depth -= 1
                if not take(")"):
                    raise fail(f"')' closing {value}(")
                if value in table and len(args) != 1:
                    raise ValueError(f"{what}: {value}() takes one argument, got {len(args)} at position {pos} "
                                     f"of {_short(text)!r}")
                return fn(*args)
            if value in symbols:
                return symbols[value]
            if value in CONSTANTS:
                return _constant(value)
            names = ", ".join(symbols) or "none"
            funcs = ", ".join(list(table) + list(custom))
            raise ValueError(f"{what}: unknown name {value!r} at position {pos} of {_short(text)!r}; expected a "
                             f"variable ({names}), a function ({funcs}) or a constant ({', '.join(CONSTANTS)})")
        if take("("):
            enter()
            try:
                inner = expr()
            finally:
                depth -= 1
            if not take(")"):
                raise fail("')'")
            return inner
        raise fail("a number, a variable, a function or '('")

    result = expr()
    if i != len(toks):
        raise fail("an operator (+ - * / ** ^) or the end of the equation")
    return result

"""Expressions as postfix token sequences, and their batched evaluation.

An expression is a postfix (reverse Polish) sequence of integer tokens drawn from a
:class:`Vocabulary` (``PAD``, ``CONST``, the input variables, unary then binary
operators) with one constant slot per position (used where the token is ``CONST``).
A population is a pair of padded tensors ``tokens (P, L)`` and ``constants (P, L)``.

:func:`evaluate` runs a stack machine over the *positions* of the whole population at
once: at each position, the rows holding the same token are updated together on all
data points, so the Python loop is over positions and distinct tokens, never over
expressions. Non-finite outputs make an expression invalid (infinite loss). On the CPU the
same machine runs on NumPy arrays with the operators' NumPy twins (a search's kernels are
small, and NumPy's per-call overhead is a fraction of torch's).

The exports of one expression (:class:`Equation`: sympy, LaTeX, NumPy and torch
callables) are built from the same operator table, so they agree with the engine.

References:
    Cranmer, "Interpretable Machine Learning for Science with PySR and
    SymbolicRegression.jl" (2023), https://arxiv.org/abs/2305.01582 — operators,
    nesting constraints and the postfix view of trees follow its design.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

__all__ = ["Operator", "UNARY", "BINARY", "Vocabulary", "parse_ops", "evaluate", "pack", "Equation", "equation_from_text",
           "subtree_start", "depth", "PAD", "CONST"]

PAD, CONST = 0, 1
#: largest evaluation stack (slots x expressions x data points) held at once: 256 MB in float64
MAX_STACK_ELEMENTS = 1 << 25


@dataclasses.dataclass(frozen=True)
class Operator:
    """An operator with its torch, NumPy and sympy twins (all three must agree).

    Example:
        >>> op = Operator("cube", 1, lambda a: a ** 3, lambda a: a ** 3, lambda a: a ** 3)
        >>> float(op.torch(torch.tensor(2.0)))
        8.0
    """

    name: str
    arity: int
    torch: Callable
    numpy: Callable
    sympy: Callable


def _sym(name: str) -> Callable:
    def f(*args):
        import sympy

        return getattr(sympy, name)(*args)

    f.__name__ = name
    return f


BINARY: dict[str, Operator] = {
    "+": Operator("+", 2, torch.add, np.add, lambda a, b: a + b),
    "-": Operator("-", 2, torch.sub, np.subtract, lambda a, b: a - b),
    "*": Operator("*", 2, torch.mul, np.multiply, lambda a, b: a * b),
    "/": Operator("/", 2, torch.div, np.divide, lambda a, b: a / b),
    "^": Operator("^", 2, torch.pow, np.power, lambda a, b: a ** b),
}
UNARY: dict[str, Operator] = {
    "sin": Operator("sin", 1, torch.sin, np.sin, _sym("sin")),
    "cos": Operator("cos", 1, torch.cos, np.cos, _sym("cos")),
    "tan": Operator("tan", 1, torch.tan, np.tan, _sym("tan")),
    "exp": Operator("exp", 1, torch.exp, np.exp, _sym("exp")),
    "log": Operator("log", 1, torch.log, np.log, _sym("log")),
    "sqrt": Operator("sqrt", 1, torch.sqrt, np.sqrt, _sym("sqrt")),
    "abs": Operator("abs", 1, torch.abs, np.abs, _sym("Abs")),
    "tanh": Operator("tanh", 1, torch.tanh, np.tanh, _sym("tanh")),
    "neg": Operator("neg", 1, torch.neg, np.negative, lambda a: -a),
    "square": Operator("square", 1, torch.square, np.square, lambda a: a ** 2),
    "cube": Operator("cube", 1, lambda a: a * a * a, lambda a: a * a * a, lambda a: a ** 3),
    "inv": Operator("inv", 1, torch.reciprocal, np.reciprocal, lambda a: 1 / a),
}
_ALIASES = {"**": "^", "pow": "^", "add": "+", "sub": "-", "mul": "*", "div": "/"}


def parse_ops(ops: "str | Sequence[str]", custom: Mapping[str, Any] | None = None) -> tuple[list[Operator], list[Operator]]:
    """Split an operator list such as ``"+ - * / sin exp"`` into (unary, binary) operators.

    ``custom`` maps a new name to an :class:`Operator` or to ``(arity, torch_fn,
    sympy_fn)``; custom names may then appear in ``ops`` (they are added if absent).

    Example:
        >>> un, bi = parse_ops("+ * sin")
        >>> [o.name for o in un], [o.name for o in bi]
        (['sin'], ['+', '*'])
    """
    custom_ops: dict[str, Operator] = {}
    for name, spec in (custom or {}).items():
        if isinstance(spec, Operator):
            custom_ops[name] = spec
            continue
        if not (isinstance(spec, (tuple, list)) and len(spec) == 3 and spec[0] in (1, 2) and callable(spec[1])
                and callable(spec[2])):
            raise ValueError(f"custom_ops: expected {name!r}: (arity 1 or 2, torch_fn, sympy_fn), got {spec!r}")
        arity, tfn, sfn = spec

        def npfn(*a, _t=tfn):
            return _t(*(torch.as_tensor(x) for x in a)).numpy()

        custom_ops[name] = Operator(name, int(arity), tfn, npfn, sfn)
    words = ops.replace(",", " ").split() if isinstance(ops, str) else [str(o) for o in ops]
    words = [_ALIASES.get(w, w) for w in words]
    for name in custom_ops:
        if name not in words:
            words.append(name)
    unary, binary, seen = [], [], set()
    for w in words:
        if w in seen:
            continue
        seen.add(w)
        op = custom_ops.get(w) or BINARY.get(w) or UNARY.get(w)
        if op is None:
            known = " ".join(list(BINARY) + list(UNARY))
            raise ValueError(f"ops: unknown operator {w!r}; expected some of: {known} (or a custom_ops name)")
        (binary if op.arity == 2 else unary).append(op)
    if not binary:
        raise ValueError(f"ops: at least one binary operator (+ - * / ^) is needed, got {' '.join(words)!r}")
    return unary, binary


class Vocabulary:
    """The token alphabet of a search: ``PAD``, ``CONST``, the variables, unary and binary operators.

    Example:
        >>> v = Vocabulary(["x0", "x1"], *parse_ops("+ * sin"))
        >>> v.names
        ['<pad>', 'c', 'x0', 'x1', 'sin', '+', '*']
        >>> v.arity.tolist()
        [0, 0, 0, 0, 1, 2, 2]
    """

    def __init__(self, variables: Sequence[str], unary: Sequence[Operator], binary: Sequence[Operator]):
        self.variables = list(variables)
        self.unary, self.binary = list(unary), list(binary)
        self.ops: list[Operator | None] = [None, None] + [None] * len(self.variables) + self.unary + self.binary
        self.names = ["<pad>", "c"] + self.variables + [o.name for o in self.unary] + [o.name for o in self.binary]
        self.first_var = 2
        self.first_unary = 2 + len(self.variables)
        self.first_binary = self.first_unary + len(self.unary)
        self.size = len(self.names)
        self.arity = np.array([0, 0] + [0] * len(self.variables) + [1] * len(self.unary) + [2] * len(self.binary))
        # stack-pointer change of each token; PAD is a no-op
        self.delta = np.array([0, 1] + [1] * len(self.variables) + [0] * len(self.unary) + [-1] * len(self.binary))
        self.leaves = np.arange(1, self.first_unary)
        self.var_tokens = np.arange(self.first_var, self.first_unary)
        self.unary_tokens = np.arange(self.first_unary, self.first_binary)
        self.binary_tokens = np.arange(self.first_binary, self.size)

    def token(self, name: str) -> int:
        return self.names.index(name)


def subtree_start(tokens: Sequence[int], end: int, arity: np.ndarray) -> int:
    """First position of the subtree whose root is at ``end`` (postfix order).

    Example:
        >>> v = Vocabulary(["x"], *parse_ops("+ sin"))   # tokens: x=2, sin=3, +=4
        >>> subtree_start([2, 3, 2, 4], 3, v.arity), subtree_start([2, 3, 2, 4], 1, v.arity)
        (0, 0)
    """
    need, j = 1, end
    while True:
        need += int(arity[tokens[j]]) - 1
        if need == 0:
            return j
        j -= 1


def depth(tokens: Sequence[int], arity: np.ndarray) -> int:
    """Depth of the tree (a leaf has depth 1).

    Example:
        >>> v = Vocabulary(["x"], *parse_ops("+ sin"))
        >>> depth([2, 3, 2, 4], v.arity)
        3
    """
    stack: list[int] = []
    for t in tokens:
        a = int(arity[t])
        if a == 0:
            stack.append(1)
        elif a == 1:
            stack[-1] += 1
        else:
            b = stack.pop()
            stack[-1] = max(stack[-1], b) + 1
    return stack[-1] if stack else 0


def evaluate(tokens: torch.Tensor, constants: torch.Tensor, X: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """Evaluate a whole population on all data points: ``(P, L), (P, L), (N, d) -> (P, N)``.

    ``tokens`` are right-padded with ``PAD``; ``constants`` holds each ``CONST``
    token's value at its position. Invalid arithmetic gives NaN/inf, never an error.

    Example:
        >>> v = Vocabulary(["x0", "x1"], *parse_ops("+ *"))       # c=1, x0=2, x1=3, +=4, *=5
        >>> tok = torch.tensor([[1, 2, 5, 3, 4], [2, 3, 4, 0, 0]])  # 2.5*x0 + x1 ; x0 + x1
        >>> const = torch.tensor([[2.5, 0, 0, 0, 0], [0.0] * 5], dtype=torch.float64)
        >>> evaluate(tok, const, torch.tensor([[1.0, 2.0]], dtype=torch.float64), v)[:, 0].tolist()
        [4.5, 3.0]
    """
    P, L = tokens.shape
    N = X.shape[0]
    dev, dtype = X.device, X.dtype
    tok_np = tokens.detach().cpu().numpy()
    delta = vocab.delta[tok_np]
    sp_before = np.cumsum(delta, axis=1) - delta
    S = max(int((sp_before + delta).max(initial=1)), 1)
    if S * P * N > MAX_STACK_ELEMENTS and P > 1:  # bound memory: evaluate in chunks of expressions
        step = max(1, MAX_STACK_ELEMENTS // (S * N))
        return torch.cat([evaluate(tokens[i:i + step], constants[i:i + step], X, vocab) for i in range(0, P, step)])
    if dev.type == "cpu" and not (X.requires_grad or constants.requires_grad):
        return _evaluate_numpy(tok_np, constants, X, vocab, sp_before, S)
    # the stack is (slot, expression) flattened to rows of N values, so that every read and
    # write is a contiguous row gather (index_select) or scatter (index_copy_)
    stack = torch.empty(S * P, N, dtype=dtype, device=dev)
    stack[:P] = math.nan  # an empty program evaluates to NaN (invalid), never to garbage
    table = torch.empty(vocab.first_unary, N, dtype=dtype, device=dev)
    table[:CONST + 1] = 1.0
    table[vocab.first_var:] = X.T
    scale = torch.where(tokens == CONST, constants.to(dtype), torch.ones((), dtype=dtype, device=dev))
    first_op = vocab.first_unary
    base = np.arange(P)  # row p of slot k is k * P + p
    for t, rows, groups in _schedule(tok_np, first_op):
        if len(rows):
            r = torch.as_tensor(rows, device=dev)
            vals = table.index_select(0, tokens[r, t]) * scale[r, t, None]
            stack.index_copy_(0, torch.as_tensor(sp_before[rows, t] * P + base[rows], device=dev), vals)
        for tk, rows in groups:
            op = vocab.ops[tk]
            sp = sp_before[rows, t]
            if op.arity == 1:
                dst = torch.as_tensor((sp - 1) * P + base[rows], device=dev)
                res = op.torch(stack.index_select(0, dst))
            else:
                dst = torch.as_tensor((sp - 2) * P + base[rows], device=dev)
                right = torch.as_tensor((sp - 1) * P + base[rows], device=dev)
                res = op.torch(stack.index_select(0, dst), stack.index_select(0, right))
            stack.index_copy_(0, dst, res)
    return stack[:P]


def _schedule(tok_np: np.ndarray, first_op: int):
    """The stack machine's work, position by position (trailing all-``PAD`` positions are no-ops):
    yields ``(t, leaf rows, [(operator token, rows), ...])``, rows grouped by token so that each
    group is one kernel call."""
    used = np.flatnonzero((tok_np != PAD).any(0))
    for t in range(int(used[-1]) + 1 if used.size else 0):
        col = tok_np[:, t]
        order = np.argsort(col, kind="stable")
        sorted_col = col[order]
        cuts = np.flatnonzero(sorted_col[1:] != sorted_col[:-1]) + 1
        starts, ends = np.concatenate(([0], cuts)), np.concatenate((cuts, [len(col)]))
        leaves = order[np.searchsorted(sorted_col, CONST):np.searchsorted(sorted_col, first_op)]
        yield t, leaves, [(int(sorted_col[a]), order[a:b]) for a, b in zip(starts, ends) if sorted_col[a] >= first_op]


def _evaluate_numpy(tok_np: np.ndarray, constants: torch.Tensor, X: torch.Tensor, vocab: Vocabulary,
                    sp_before: np.ndarray, S: int) -> torch.Tensor:
    """:func:`evaluate` on the CPU with NumPy arrays (the same stack machine and the same
    operators' NumPy twins): NumPy's per-call overhead is a fraction of torch's, and a search's
    kernels are small (a few hundred rows per token group), so this is the CPU path."""
    P = tok_np.shape[0]
    Xn = X.detach().numpy()
    dtype = Xn.dtype
    N = Xn.shape[0]
    stack = np.empty((S * P, N), dtype=dtype)
    stack[:P] = np.nan  # an empty program evaluates to NaN (invalid), never to garbage
    table = np.empty((vocab.first_unary, N), dtype=dtype)
    table[:CONST + 1] = 1.0
    table[vocab.first_var:] = Xn.T
    scale = np.where(tok_np == CONST, constants.detach().cpu().numpy().astype(dtype, copy=False), 1.0).astype(dtype)
    first_op = vocab.first_unary
    base = np.arange(P)
    with np.errstate(all="ignore"):
        for t, rows, groups in _schedule(tok_np, first_op):
            if len(rows):
                stack[sp_before[rows, t] * P + rows] = table[tok_np[rows, t]] * scale[rows, t, None]
            for tk, rows in groups:
                op = vocab.ops[tk]
                sp = sp_before[rows, t]
                if op.arity == 1:
                    dst = (sp - 1) * P + base[rows]
                    stack[dst] = op.numpy(stack[dst])
                else:
                    dst = (sp - 2) * P + base[rows]
                    stack[dst] = op.numpy(stack[dst], stack[(sp - 1) * P + base[rows]])
    return torch.from_numpy(stack[:P])


def pack(programs: Sequence[tuple[Sequence[int], Sequence[float]]], length: int | None = None,
         device: "torch.device | str" = "cpu", dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad a list of ``(tokens, constants)`` into ``(P, L)`` tensors.

    Example:
        >>> tok, const = pack([([2, 3, 4], [0.0, 0.0, 0.0]), ([1], [1.5])])
        >>> tok.tolist(), const[1, 0].item()
        ([[2, 3, 4], [1, 0, 0]], 1.5)
    """
    L = length or max((len(t) for t, _ in programs), default=1)
    tok = np.zeros((len(programs), L), dtype=np.int64)
    const = np.zeros((len(programs), L), dtype=np.float64)
    for i, (t, c) in enumerate(programs):
        tok[i, :len(t)] = t
        const[i, :len(c)] = c
    return torch.as_tensor(tok, device=device), torch.as_tensor(const, device=device, dtype=dtype)


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


def nan_to_inf(loss: torch.Tensor) -> torch.Tensor:
    """Non-finite losses become ``+inf`` (an invalid expression).

    Example:
        >>> nan_to_inf(torch.tensor([1.0, float("nan")])).tolist()
        [1.0, inf]
    """
    return torch.where(torch.isfinite(loss), loss, torch.full_like(loss, math.inf))


_SYMPY_FUNCS = {"sin": "sin", "cos": "cos", "tan": "tan", "exp": "exp", "log": "log", "tanh": "tanh", "Abs": "abs"}


def from_sympy(expr: Any, vocab: Vocabulary) -> "tuple[list[int], list[float]] | None":
    """Postfix tokens of a sympy expression, or None when the vocabulary cannot express it.

    Used to simplify: an expression goes to sympy (whose automatic canonical form
    cancels ``x/x``, merges ``2*(3*x)``...) and comes back shorter.

    Example:
        >>> import sympy
        >>> v = Vocabulary(["x0", "x1"], *parse_ops("+ - * /"))
        >>> x0, x1 = sympy.symbols("x0 x1")
        >>> tok, const = from_sympy(2.5 * x0 * x1 / x1 - x0, v)
        >>> Equation(tok, const, v).sympy(), len(tok)
        (1.5*x0, 3)
    """
    import sympy

    names = vocab.names
    tokens: list[int] = []
    consts: list[float] = []

    def has(op: str) -> bool:
        return op in names[vocab.first_unary:]

    def emit(t: int, c: float = 0.0) -> None:
        tokens.append(t)
        consts.append(c)

    def number(v: Any) -> bool:
        try:
            f = float(v)
        except (TypeError, ValueError):
            return False
        if not math.isfinite(f):
            return False
        emit(CONST, f)
        return True

    def product(factors: list) -> bool:
        if not factors:
            return number(1.0)
        if not go(factors[0]):
            return False
        for f in factors[1:]:
            if not (go(f) and has("*")):
                return False
            emit(names.index("*"))
        return True

    def go(e: Any) -> bool:
        if e.is_Symbol:
            if e.name not in vocab.variables:
                return False
            emit(names.index(e.name))
            return True
        if e.is_number:
            return number(e)
        if e.is_Add:
            terms = list(e.as_ordered_terms())
            if not go(terms[0]):
                return False
            for t in terms[1:]:
                coeff, rest = t.as_coeff_Mul()
                if coeff.is_negative and has("-"):
                    if not go(-t):
                        return False
                    emit(names.index("-"))
                else:
                    if not (go(t) and has("+")):
                        return False
                    emit(names.index("+"))
            return True
        if e.is_Mul:
            num, den = [], []
            for f in e.as_ordered_factors():
                if f.is_Pow and f.exp.is_number and f.exp.is_negative:
                    den.append(f.base ** (-f.exp))
                else:
                    num.append(f)
            if den and not has("/"):
                return False
            if not product(num):
                return False
            if den:
                if not product(den):
                    return False
                emit(names.index("/"))
            return True
        if e.is_Pow:
            b, x = e.base, e.exp
            if x == sympy.Rational(1, 2) and has("sqrt"):
                return go(b) and (emit(names.index("sqrt")) or True)
            if x.is_number and x.is_negative:
                return has("/") and number(1.0) and go(b ** (-x)) and (emit(names.index("/")) or True)
            if x == 2 and has("square"):
                return go(b) and (emit(names.index("square")) or True)
            if x == 3 and has("cube"):
                return go(b) and (emit(names.index("cube")) or True)
            if x.is_Integer and 2 <= int(x) <= 4 and has("*"):
                return product([b] * int(x))
            if has("^"):
                return go(b) and go(x) and (emit(names.index("^")) or True)
            return False
        fname = _SYMPY_FUNCS.get(type(e).__name__)
        if fname and has(fname) and len(e.args) == 1:
            return go(e.args[0]) and (emit(names.index(fname)) or True)
        return False

    if isinstance(expr, str):
        raise TypeError("from_sympy: expected a sympy expression, got text (parse it with parse_equation)")
    try:
        ok = go(sympy.sympify(expr, strict=True))
    except (TypeError, ValueError, RecursionError, sympy.SympifyError):
        return None
    return (tokens, consts) if ok else None

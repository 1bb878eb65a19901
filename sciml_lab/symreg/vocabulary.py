"""The token alphabet of expressions: operators, the :class:`Vocabulary` and padded programs.

An expression is a postfix (reverse Polish) sequence of integer tokens drawn from a
:class:`Vocabulary` (``PAD``, ``CONST``, the input variables, unary then binary
operators) with one constant slot per position (used where the token is ``CONST``).
A population is a pair of padded tensors ``tokens (P, L)`` and ``constants (P, L)``
(:func:`pack`). Each :class:`Operator` carries its torch, NumPy and sympy twins, so the
evaluators (:mod:`~sciml_lab.symreg.evaluation`) and the exports
(:class:`~sciml_lab.symreg.expression.Equation`) are built from one table.

References:
    Cranmer, "Interpretable Machine Learning for Science with PySR and
    SymbolicRegression.jl" (2023), https://arxiv.org/abs/2305.01582 — operators,
    nesting constraints and the postfix view of trees follow its design.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

__all__ = ["Operator", "UNARY", "BINARY", "Vocabulary", "parse_ops", "pack", "subtree_start", "depth", "PAD", "CONST"]

PAD, CONST = 0, 1


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

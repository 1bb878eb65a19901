"""Variation operators on postfix programs: random trees, mutations, crossover, folding.

A program is a pair ``(tokens, constants)`` of equal-length Python lists (see
:mod:`sciml_lab.symreg.vocabulary`). These functions act on one program at a time
(cheap list surgery, tens of microseconds); the expensive part, evaluation, is
batched over the population in :func:`~sciml_lab.symreg.evaluation.evaluate`.

References:
    Cranmer (2023), https://arxiv.org/abs/2305.01582 (mutation menu and weights);
    Burlacu et al., "Operon C++" (GECCO 2020), https://doi.org/10.1145/3377929.3398099.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np

from .vocabulary import CONST, PAD, Vocabulary, depth, subtree_start

__all__ = ["Program", "Constraints", "random_program", "mutate", "crossover", "fold_constants", "MUTATIONS"]

Program = tuple[list[int], list[float]]

#: mutation kinds and their relative weights: PySR's emphasis on inserting and deleting
#: nodes; measured here on Feynman problems (4 s, 3 seeds) it doubled exact recovery
#: over weights favouring "add"
MUTATIONS: dict[str, float] = {
    "constant": 0.1, "operator": 0.5, "add": 0.5, "insert": 2.0, "delete": 1.0, "subtree": 0.2, "swap": 0.1,
    "leaf": 0.4,
}


class Constraints:
    """Limits on size, depth and nesting of operators.

    Arguments:
        vocab: the search's vocabulary.
        maxsize: most tokens in an expression.
        maxdepth: deepest tree (None: no limit besides maxsize).
        nested: ``{outer: [inner, ...]}``: ``inner`` may not appear anywhere below
            ``outer`` (e.g. ``{"sin": ["sin", "cos"]}`` forbids ``sin(cos(x))``).

    Example:
        >>> from sciml_lab.symreg.expression import parse_ops
        >>> v = Vocabulary(["x"], *parse_ops("+ sin"))                  # x=2, sin=3, +=4
        >>> c = Constraints(v, maxsize=10, nested={"sin": ["sin"]})
        >>> c.ok([2, 3, 3]), c.ok([2, 3, 2, 4])
        (False, True)
    """

    def __init__(self, vocab: Vocabulary, maxsize: int, maxdepth: int | None = None,
                 nested: Mapping[str, Sequence[str]] | None = None):
        self.vocab, self.maxsize, self.maxdepth = vocab, int(maxsize), maxdepth
        self.forbidden: dict[int, set[int]] = {}
        for outer, inners in (nested or {}).items():
            if outer not in vocab.names:
                continue
            ids = {vocab.token(i) for i in inners if i in vocab.names}
            if ids:
                self.forbidden[vocab.token(outer)] = ids

    def ok(self, tokens: Sequence[int]) -> bool:
        if not 0 < len(tokens) <= self.maxsize:
            return False
        if self.maxdepth is not None and depth(tokens, self.vocab.arity) > self.maxdepth:
            return False
        if self.forbidden:
            for i, t in enumerate(tokens):
                bad = self.forbidden.get(t)
                if bad:
                    s = subtree_start(tokens, i, self.vocab.arity)
                    if any(tokens[j] in bad for j in range(s, i)):
                        return False
        return True


def _leaf(rng: np.random.Generator, vocab: Vocabulary, p_const: float = 0.25) -> tuple[int, float]:
    if rng.random() < p_const:
        return CONST, float(rng.normal() * 2.0)
    return int(rng.choice(vocab.var_tokens)), 0.0


def random_program(rng: np.random.Generator, vocab: Vocabulary, max_depth: int = 3, p_leaf: float = 0.3) -> Program:
    """A random tree grown to at most ``max_depth`` levels.

    Example:
        >>> from sciml_lab.symreg.expression import parse_ops
        >>> v = Vocabulary(["x0", "x1"], *parse_ops("+ * sin"))
        >>> tok, const = random_program(np.random.default_rng(0), v)
        >>> 1 <= len(tok) == len(const) <= 15
        True
    """
    tokens: list[int] = []
    consts: list[float] = []
    n_un, n_bi = len(vocab.unary_tokens), len(vocab.binary_tokens)

    def grow(d: int) -> None:
        if d <= 1 or rng.random() < p_leaf:
            t, c = _leaf(rng, vocab)
            tokens.append(t)
            consts.append(c)
            return
        if n_un and rng.random() < 0.25:
            grow(d - 1)
            tokens.append(int(rng.choice(vocab.unary_tokens)))
        else:
            grow(d - 1)
            grow(d - 1)
            tokens.append(int(rng.choice(vocab.binary_tokens)))
        consts.append(0.0)

    assert n_bi
    grow(max_depth)
    return tokens, consts


def _splice(prog: Program, start: int, end: int, new: Program) -> Program:
    tok, const = prog
    return tok[:start] + new[0] + tok[end + 1:], const[:start] + new[1] + const[end + 1:]


def _span(prog: Program, end: int, vocab: Vocabulary) -> tuple[int, int]:
    return subtree_start(prog[0], end, vocab.arity), end


def mutate(prog: Program, rng: np.random.Generator, vocab: Vocabulary, kind: str | None = None) -> Program:
    """One random mutation of ``prog`` (a new program; ``prog`` is unchanged).

    Kinds: ``constant`` (perturb a constant), ``operator`` (swap an operator for
    another of the same arity), ``leaf`` (change a variable or constant), ``add``
    (wrap a subtree in a new operator), ``insert`` (alias of ``add`` deeper in the
    tree), ``delete`` (replace an operator by one of its operands), ``subtree``
    (replace a subtree by a random one) and ``swap`` (exchange the operands of a
    binary operator).

    Example:
        >>> from sciml_lab.symreg.expression import parse_ops
        >>> v = Vocabulary(["x0", "x1"], *parse_ops("+ * sin"))
        >>> tok, const = mutate(([2, 3, 6], [0.0, 0.0, 0.0]), np.random.default_rng(1), v, "operator")
        >>> tok
        [2, 3, 5]
    """
    tok, const = list(prog[0]), list(prog[1])
    kind = kind or str(rng.choice(list(MUTATIONS), p=np.array(list(MUTATIONS.values())) / sum(MUTATIONS.values())))
    mutation = _MUTATORS.get(kind)
    if mutation is None:
        raise ValueError(f"kind: unknown mutation {kind!r}; expected one of {', '.join(MUTATIONS)}")
    return mutation(tok, const, rng, vocab)


def _pick(tok: list[int], rng: np.random.Generator, where: Callable[[int], bool]) -> int | None:
    """A random position whose token satisfies ``where`` (None when there is none)."""
    positions = [i for i, t in enumerate(tok) if where(t)]
    return int(rng.choice(positions)) if positions else None


def _perturb_constant(tok: list[int], const: list[float], rng: np.random.Generator, vocab: Vocabulary) -> Program:
    i = _pick(tok, rng, lambda t: t == CONST)
    if i is None:
        return mutate((tok, const), rng, vocab, "leaf")
    c = const[i]
    const[i] = c * float(np.exp(rng.normal() * 0.5)) * (-1 if rng.random() < 0.1 else 1) + float(rng.normal() * 0.1)
    return tok, const


def _change_operator(tok: list[int], const: list[float], rng: np.random.Generator, vocab: Vocabulary) -> Program:
    ar = vocab.arity
    i = _pick(tok, rng, lambda t: ar[t] > 0)
    if i is None:
        return mutate((tok, const), rng, vocab, "add")
    same = vocab.unary_tokens if ar[tok[i]] == 1 else vocab.binary_tokens
    if len(same) > 1:
        tok[i] = int(rng.choice([s for s in same if s != tok[i]]))
    return tok, const


def _change_leaf(tok: list[int], const: list[float], rng: np.random.Generator, vocab: Vocabulary) -> Program:
    leaves = [i for i, t in enumerate(tok) if vocab.arity[t] == 0]
    i = int(rng.choice(leaves))
    tok[i], const[i] = _leaf(rng, vocab, p_const=0.3)
    return tok, const


def _add_operator(tok: list[int], const: list[float], rng: np.random.Generator, vocab: Vocabulary) -> Program:
    """Wrap the whole tree (half of the time) or a random subtree in a new operator."""
    end = len(tok) - 1 if rng.random() < 0.5 else int(rng.integers(len(tok)))
    return _wrap(tok, const, end, rng, vocab)


def _insert_operator(tok: list[int], const: list[float], rng: np.random.Generator, vocab: Vocabulary) -> Program:
    """Wrap a random subtree in a new operator."""
    return _wrap(tok, const, int(rng.integers(len(tok))), rng, vocab)


def _wrap(tok: list[int], const: list[float], end: int, rng: np.random.Generator, vocab: Vocabulary) -> Program:
    """The subtree ending at ``end`` wrapped in a random unary operator, or in a binary one with a
    random leaf on either side."""
    s, e = _span((tok, const), end, vocab)
    sub = (tok[s:e + 1], const[s:e + 1])
    if len(vocab.unary_tokens) and rng.random() < 0.3:
        new = (sub[0] + [int(rng.choice(vocab.unary_tokens))], sub[1] + [0.0])
    else:
        lt, lc = _leaf(rng, vocab, p_const=0.5)
        op = int(rng.choice(vocab.binary_tokens))
        if rng.random() < 0.5:
            new = (sub[0] + [lt, op], sub[1] + [lc, 0.0])
        else:
            new = ([lt] + sub[0] + [op], [lc] + sub[1] + [0.0])
    return _splice((tok, const), s, e, new)


def _delete_operator(tok: list[int], const: list[float], rng: np.random.Generator, vocab: Vocabulary) -> Program:
    ar = vocab.arity
    i = _pick(tok, rng, lambda t: ar[t] > 0)
    if i is None:
        return mutate((tok, const), rng, vocab, "leaf")
    s, e = _span((tok, const), i, vocab)
    if ar[tok[i]] == 1:
        keep = (tok[s:i], const[s:i])
    else:
        right_s = subtree_start(tok, i - 1, ar)
        keep = (tok[s:right_s], const[s:right_s]) if rng.random() < 0.5 else (tok[right_s:i], const[right_s:i])
    return _splice((tok, const), s, e, keep)


def _replace_subtree(tok: list[int], const: list[float], rng: np.random.Generator, vocab: Vocabulary) -> Program:
    end = int(rng.integers(len(tok)))
    s, e = _span((tok, const), end, vocab)
    return _splice((tok, const), s, e, random_program(rng, vocab, max_depth=int(rng.integers(1, 4))))


def _swap_operands(tok: list[int], const: list[float], rng: np.random.Generator, vocab: Vocabulary) -> Program:
    ar = vocab.arity
    i = _pick(tok, rng, lambda t: ar[t] == 2)
    if i is None:
        return mutate((tok, const), rng, vocab, "add")
    s = subtree_start(tok, i, ar)
    m = subtree_start(tok, i - 1, ar)
    new = (tok[m:i] + tok[s:m] + [tok[i]], const[m:i] + const[s:m] + [const[i]])
    return _splice((tok, const), s, i, new)


#: the function of each mutation kind of :data:`MUTATIONS`: ``(tokens, constants, rng, vocab) -> program``
#: (it may change the copies of the lists it is given)
_MUTATORS = {"constant": _perturb_constant, "operator": _change_operator, "add": _add_operator,
              "insert": _insert_operator, "delete": _delete_operator, "subtree": _replace_subtree,
              "swap": _swap_operands, "leaf": _change_leaf}


def crossover(a: Program, b: Program, rng: np.random.Generator, vocab: Vocabulary) -> tuple[Program, Program]:
    """Exchange a random subtree of ``a`` with a random subtree of ``b``.

    Example:
        >>> from sciml_lab.symreg.expression import parse_ops
        >>> v = Vocabulary(["x0", "x1"], *parse_ops("+ *"))
        >>> c, d = crossover(([2], [0.0]), ([3], [0.0]), np.random.default_rng(0), v)
        >>> c[0], d[0]
        ([3], [2])
    """
    ea, eb = int(rng.integers(len(a[0]))), int(rng.integers(len(b[0])))
    sa, sb = subtree_start(a[0], ea, vocab.arity), subtree_start(b[0], eb, vocab.arity)
    sub_a = (a[0][sa:ea + 1], a[1][sa:ea + 1])
    sub_b = (b[0][sb:eb + 1], b[1][sb:eb + 1])
    return _splice(a, sa, ea, sub_b), _splice(b, sb, eb, sub_a)


def fold_constants(prog: Program, vocab: Vocabulary) -> Program:
    """Replace every operator whose operands are all constants by one constant
    (when the value is finite), and drop ``PAD`` tokens.

    Example:
        >>> from sciml_lab.symreg.expression import parse_ops
        >>> v = Vocabulary(["x"], *parse_ops("+ *"))                 # c=1, x=2, +=3, *=4
        >>> fold_constants(([1, 1, 3, 2, 4], [2.0, 0.5, 0, 0, 0]), v)
        ([1, 2, 4], [2.5, 0.0, 0.0])
    """
    out_t: list[int] = []
    out_c: list[float] = []
    is_const: list[bool] = []  # per stack entry: the subtree is a single folded constant
    for t, c in zip(*prog):
        if t == PAD:
            continue
        a = int(vocab.arity[t])
        if a == 0:
            out_t.append(t)
            out_c.append(c if t == CONST else 0.0)
            is_const.append(t == CONST)
            continue
        if all(is_const[-a:]):
            args = out_c[-a:]
            with np.errstate(all="ignore"):
                v = float(vocab.ops[t].numpy(*[np.float64(x) for x in args]))
            if math.isfinite(v):
                del out_t[-a:], out_c[-a:], is_const[-a:]
                out_t.append(CONST)
                out_c.append(v)
                is_const.append(True)
                continue
        del is_const[-a:]
        out_t.append(t)
        out_c.append(0.0)
        is_const.append(False)
    return out_t, out_c

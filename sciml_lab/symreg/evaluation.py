"""Batched evaluation of a population of postfix expressions on all data points.

:func:`evaluate` runs a stack machine over the *positions* of the whole population at
once: at each position, the rows holding the same token are updated together on all
data points, so the Python loop is over positions and distinct tokens, never over
expressions. Non-finite outputs make an expression invalid (infinite loss,
:func:`nan_to_inf`). On the CPU the same machine runs on NumPy arrays with the
operators' NumPy twins (a search's kernels are small, and NumPy's per-call overhead is
a fraction of torch's).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .vocabulary import CONST, PAD, Vocabulary

__all__ = ["evaluate", "nan_to_inf", "MAX_STACK_ELEMENTS"]

#: largest evaluation stack (slots x expressions x data points) held at once: 256 MB in float64
MAX_STACK_ELEMENTS = 1 << 25


def evaluate(tokens: torch.Tensor, constants: torch.Tensor, X: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """Evaluate a whole population on all data points: ``(P, L), (P, L), (N, d) -> (P, N)``.

    ``tokens`` are right-padded with ``PAD``; ``constants`` holds each ``CONST``
    token's value at its position. Invalid arithmetic gives NaN/inf, never an error.

    Example:
        >>> from sciml_lab.symreg.vocabulary import parse_ops
        >>> v = Vocabulary(["x0", "x1"], *parse_ops("+ *"))       # c=1, x0=2, x1=3, +=4, *=5
        >>> tok = torch.tensor([[1, 2, 5, 3, 4], [2, 3, 4, 0, 0]])  # 2.5*x0 + x1 ; x0 + x1
        >>> const = torch.tensor([[2.5, 0, 0, 0, 0], [0.0] * 5], dtype=torch.float64)
        >>> evaluate(tok, const, torch.tensor([[1.0, 2.0]], dtype=torch.float64), v)[:, 0].tolist()
        [4.5, 3.0]
    """
    P, N = tokens.shape[0], X.shape[0]
    tok_np = tokens.detach().cpu().numpy()
    delta = vocab.delta[tok_np]
    sp_before = np.cumsum(delta, axis=1) - delta
    S = max(int((sp_before + delta).max(initial=1)), 1)
    if S * P * N > MAX_STACK_ELEMENTS and P > 1:  # bound memory: evaluate in chunks of expressions
        step = max(1, MAX_STACK_ELEMENTS // (S * N))
        return torch.cat([evaluate(tokens[i:i + step], constants[i:i + step], X, vocab) for i in range(0, P, step)])
    if X.device.type == "cpu" and not (X.requires_grad or constants.requires_grad):
        return _evaluate_numpy(tok_np, constants, X, vocab, sp_before, S)
    return _evaluate_torch(tokens, tok_np, constants, X, vocab, sp_before, S)


def _evaluate_torch(tokens: torch.Tensor, tok_np: np.ndarray, constants: torch.Tensor, X: torch.Tensor,
                    vocab: Vocabulary, sp_before: np.ndarray, S: int) -> torch.Tensor:
    """:func:`evaluate` with torch tensors (any device; differentiable in ``X`` and ``constants``)."""
    P, N = tokens.shape[0], X.shape[0]
    dev, dtype = X.device, X.dtype
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
    group is one kernel call. One stable sort of all (position, token) keys finds every group at
    once; within a group, rows are in ascending order."""
    P = tok_np.shape[0]
    used = np.flatnonzero((tok_np != PAD).any(0))
    if not used.size:
        return
    T = int(used[-1]) + 1
    # keys t * V + token: V above every token and at least first_op, so that each position's leaf range
    # [t * V + CONST, t * V + first_op) stays inside that position even in a matrix without operators
    V = max(int(tok_np[:, :T].max()) + 1, first_op)
    positions = np.arange(T) * V
    keys = (tok_np[:, :T].T + positions[:, None]).ravel()   # position-major: index t * P + row
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    rows = order % P
    starts = np.concatenate(([0], np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1))
    ends = np.append(starts[1:], len(keys))
    group_t, group_tok = np.divmod(sorted_keys[starts], V)
    is_op = group_tok >= first_op
    op_t, op_tok, op_a, op_b = group_t[is_op], group_tok[is_op].tolist(), starts[is_op].tolist(), ends[is_op].tolist()
    leaf_a = np.searchsorted(sorted_keys, positions + CONST).tolist()
    leaf_b = np.searchsorted(sorted_keys, positions + first_op).tolist()
    per_t = np.searchsorted(op_t, np.arange(T + 1)).tolist()
    for t in range(T):
        yield t, rows[leaf_a[t]:leaf_b[t]], [(op_tok[j], rows[op_a[j]:op_b[j]]) for j in range(per_t[t], per_t[t + 1])]


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


def nan_to_inf(loss: torch.Tensor) -> torch.Tensor:
    """Non-finite losses become ``+inf`` (an invalid expression).

    Example:
        >>> nan_to_inf(torch.tensor([1.0, float("nan")])).tolist()
        [1.0, inf]
    """
    return torch.where(torch.isfinite(loss), loss, torch.full_like(loss, math.inf))

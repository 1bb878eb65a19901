"""The chains' initial points: given (an array, a dict of named arrays), drawn by a
prior sampler ``init(n_chains)``, or uniform in a box inside the bounds; always where
the log-density is finite.

Example:
    >>> t = Target(lambda x: -(x ** 2).sum(1), dim=2)
    >>> gen = torch.Generator().manual_seed(0)
    >>> u = initial_points(t, None, 4, (-2.0, 2.0), gen)
    >>> tuple(u.shape), bool((u.abs() < 2).all())
    ((4, 2), True)
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from .target import Target

__all__ = ["initial_points", "check_finite"]


def box_points(t: Target, n: int, box: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """``n`` points uniform in ``box`` per dimension, moved inside the bounds (a box
    beside a one-sided bound), in the unconstrained space."""
    lo, hi = box
    r = torch.rand(n, t.dim, generator=gen, dtype=t.dtype, device=t.device)
    a = torch.where(torch.isfinite(t.lo), t.lo, torch.full_like(t.lo, lo))
    b = torch.where(torch.isfinite(t.hi), t.hi, torch.full_like(t.hi, hi))
    a = torch.where(t.lower, t.lo + 1e-3 * (hi - lo), a)  # one open side: a box beside the bound
    b = torch.where(t.lower, t.lo + (hi - lo), b)
    a = torch.where(t.upper, t.hi - (hi - lo), a)
    b = torch.where(t.upper, t.hi - 1e-3 * (hi - lo), b)
    x = a + (b - a) * (0.02 + 0.96 * r)  # stay off the bounds themselves
    return t.unconstrain(x)


def as_flat(t: Target, value: Any, n: int) -> torch.Tensor:
    """Initial points in the user's space (an array, one point for all chains, or a
    dict of named arrays) as a flat ``(n, dim)`` tensor."""
    if isinstance(value, Mapping):
        missing = [k for k in t.shapes if k not in value]
        if missing:
            raise ValueError(f"init: missing parameters {missing}")
        cols = [torch.as_tensor(np.asarray(value[k]) if not torch.is_tensor(value[k]) else value[k],
                                dtype=t.dtype, device=t.device).reshape(n, -1)
                for k in t.shapes]
        x = torch.cat(cols, 1)
    else:
        x = torch.as_tensor(value if torch.is_tensor(value) else np.asarray(value), dtype=t.dtype, device=t.device)
        if x.ndim == 1:
            x = x.expand(n, -1).clone()
    if tuple(x.shape) != (n, t.dim):
        raise ValueError(f"init: expected initial points of shape ({n}, {t.dim}), got {tuple(x.shape)}")
    return x


def initial_points(t: Target, init: Any, n: int, box: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """``n`` initial points in the unconstrained space from ``init`` (None: the box)."""
    if init is None:
        return box_points(t, n, box, gen)
    return t.unconstrain(as_flat(t, init(n) if callable(init) else init, n))


def check_finite(t: Target, u: torch.Tensor, init: Any, box: tuple[float, float], gen: torch.Generator) -> None:
    """Redraw (up to 100 times, when drawn: a box or a sampler) the initial points
    where the log-density is not finite, in place; a clear error for those left."""
    lp = t.log_prob(u)
    bad = ~torch.isfinite(lp) | ~torch.isfinite(u).all(1)
    tries = 0
    while bool(bad.any()) and (init is None or callable(init)) and tries < 100:
        fresh = initial_points(t, init, len(u), box, gen)
        u[bad] = fresh[bad]
        lp_new = t.log_prob(u)
        lp[bad] = lp_new[bad]
        bad = ~torch.isfinite(lp) | ~torch.isfinite(u).all(1)
        tries += 1
    if bool(bad.any()):
        idx = torch.nonzero(bad).flatten().tolist()
        shown = ", ".join(map(str, idx[:20])) + (" ..." if len(idx) > 20 else "")
        raise ValueError(f"init: log_prob is -inf or NaN at the initial point of chains [{shown}] "
                         f"({len(idx)} of {len(u)}); give initial points inside the support "
                         "(init=...) or bounds=... for constrained parameters")

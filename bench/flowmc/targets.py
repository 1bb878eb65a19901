"""Benchmark targets, written once for torch and for JAX (``xp`` is the array module).

Every target has exact independent samples (``reference``), so the error of the
posterior mean and the mode weights are measured against truth, not against a
longer MCMC run:

- ``rosenbrock2``: the classic Rosenbrock banana exp(-((1-x1)^2 + 100 (x2-x1^2)^2) / 20).
- ``rosenbrock10``: the hybrid Rosenbrock of Pagani et al. (2022) with one block,
  exp(-(x1-1)^2/20 - 5 sum_j (x_j - x1^2)^2): a banana in every direction, and the
  2-D case is exactly the classic one.
- ``funnel10``: Neal's funnel, v ~ N(0, 3^2), x_i | v ~ N(0, e^v), 9 x's.
- ``mixture2``/``mixture10``: four unit Gaussians with weights 0.1/0.2/0.3/0.4, at the
  corners (+-5, +-5) of the first two coordinates (and fixed offsets of +-3 in the
  other eight for the 10-D one): modes 10 apart.
- ``gauss50``: a 50-D Gaussian with a random rotation and variances from 1e-2 to 1e2
  (condition number 1e4).

References:
    | Pagani, Wiegand & Nadarajah, An n-dimensional Rosenbrock distribution for MCMC
    | testing (Scand. J. Stat., 2022) https://doi.org/10.1111/sjos.12532
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

WEIGHTS = np.array([0.1, 0.2, 0.3, 0.4])


@dataclasses.dataclass
class BenchTarget:
    name: str
    dim: int
    log_prob: Callable  # log_prob(x, xp): x (..., dim) -> (...)
    reference: Callable  # reference(n, rng) -> (n, dim) exact draws
    modes: np.ndarray | None = None  # mixture means, for the mode-weight TV


def _rosenbrock(dim: int) -> BenchTarget:
    def log_prob(x, xp):
        x1 = x[..., 0]
        return -((x1 - 1.0) ** 2) / 20.0 - 5.0 * xp.sum((x[..., 1:] - x1[..., None] ** 2) ** 2, axis=-1)

    def reference(n, rng):
        x1 = rng.normal(1.0, math.sqrt(10.0), size=n)
        rest = x1[:, None] ** 2 + rng.normal(0.0, math.sqrt(0.1), size=(n, dim - 1))
        return np.column_stack([x1, rest])

    return BenchTarget(f"rosenbrock{dim}", dim, log_prob, reference)


def _funnel(dim: int) -> BenchTarget:
    def log_prob(x, xp):
        v = x[..., 0]
        return -(v ** 2) / 18.0 - 0.5 * xp.sum(x[..., 1:] ** 2, axis=-1) * xp.exp(-v) - 0.5 * (dim - 1) * v

    def reference(n, rng):
        v = rng.normal(0.0, 3.0, size=n)
        return np.column_stack([v, rng.normal(size=(n, dim - 1)) * np.exp(v / 2)[:, None]])

    return BenchTarget(f"funnel{dim}", dim, log_prob, reference)


def _mixture(dim: int) -> BenchTarget:
    corners = np.array([[-5.0, -5.0], [5.0, -5.0], [-5.0, 5.0], [5.0, 5.0]])
    if dim > 2:
        offsets = 3.0 * np.sign(np.random.default_rng(7).normal(size=(4, dim - 2)))
        means = np.column_stack([corners, offsets])
    else:
        means = corners
    log_w = np.log(WEIGHTS)

    def log_prob(x, xp):
        m = xp.asarray(means, dtype=x.dtype) if hasattr(xp, "asarray") else means
        d2 = xp.sum((x[..., None, :] - m) ** 2, axis=-1)
        lw = xp.asarray(log_w, dtype=x.dtype)
        a = lw - 0.5 * d2
        top = xp.max(a, axis=-1)
        return top + xp.log(xp.sum(xp.exp(a - top[..., None]), axis=-1))

    def reference(n, rng):
        k = rng.choice(4, size=n, p=WEIGHTS)
        return means[k] + rng.normal(size=(n, dim))

    return BenchTarget(f"mixture{dim}", dim, log_prob, reference, modes=means)


def _gauss(dim: int) -> BenchTarget:
    rng = np.random.default_rng(11)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    var = np.logspace(-2, 2, dim)
    cov = (q * var) @ q.T
    prec = (q / var) @ q.T
    chol = np.linalg.cholesky(cov)

    def log_prob(x, xp):
        p = xp.asarray(prec, dtype=x.dtype)
        return -0.5 * xp.sum((x @ p) * x, axis=-1)

    def reference(n, rng):
        return rng.normal(size=(n, dim)) @ chol.T

    return BenchTarget(f"gauss{dim}", dim, log_prob, reference)


TARGETS = {t.name: t for t in (_rosenbrock(2), _rosenbrock(10), _funnel(10), _mixture(2), _mixture(10), _gauss(50))}


def torch_log_prob(target: BenchTarget):
    """The target as a batched torch function ``(n, dim) -> (n,)``."""
    import torch

    class _XP:  # the few array functions the targets use, for torch
        sum = staticmethod(lambda a, axis: torch.sum(a, dim=axis))
        max = staticmethod(lambda a, axis: torch.amax(a, dim=axis))
        exp, log = staticmethod(torch.exp), staticmethod(torch.log)

        @staticmethod
        def asarray(a, dtype=None):
            return torch.as_tensor(a, dtype=dtype)

    return lambda x: target.log_prob(x, _XP)


def jax_log_prob(target: BenchTarget):
    """The target as a JAX function of one point ``(dim,) -> ()``."""
    import jax.numpy as jnp

    return lambda x: target.log_prob(x, jnp)


def mode_weight_tv(draws: np.ndarray, modes: np.ndarray) -> float:
    """Total-variation distance between the fraction of draws nearest each mode and the
    true weights."""
    d2 = ((draws[:, None, :] - modes[None]) ** 2).sum(-1)
    w = np.bincount(d2.argmin(1), minlength=len(modes)) / len(draws)
    return 0.5 * float(np.abs(w - WEIGHTS).sum())

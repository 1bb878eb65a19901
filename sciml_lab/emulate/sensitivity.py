"""Variance-based (Sobol') sensitivity indices, computed on an emulator.

First-order indices by Saltelli's estimator, total indices by Jansen's, from one
scrambled Sobol' sample of the ``A``, ``B`` and ``A_B^(i)`` matrices; inputs are
uniform on their (possibly log-scaled) ranges. The estimate uses the emulator's
mean. Its 95 % interval combines, in quadrature, two sources of error (the
decomposition of Marrel et al. 2009): the Monte Carlo error (bootstrap percentile
interval over the base sample's rows) and the emulator's own uncertainty: the
spread of the indices computed on joint posterior draws of a GP (whole sample
functions, exact, on the first ``n_joint`` rows of the same Saltelli design). For a
model without joint draws (the deep ensemble) the emulator's part is a proxy:
indices of the mean perturbed by independent noise of the predictive std.
For several output columns (a vector output) the indices are the variance-
weighted ("generalised") ones of Gamboa, Janon, Klein & Lagnoux (2013).

References:
    | Variance based sensitivity analysis of model output (Saltelli et al., Computer
    | Physics Communications 181, 2010) https://doi.org/10.1016/j.cpc.2009.09.018
    | Calculations of Sobol indices for the Gaussian process metamodel (Marrel, Iooss,
    | Laurent & Roustant, Reliability Engineering & System Safety 94, 2009)
    | https://doi.org/10.1016/j.ress.2008.07.008
    | Sensitivity indices for multivariate outputs (Gamboa et al., Comptes Rendus
    | Mathématique 351, 2013) https://doi.org/10.1016/j.crma.2013.04.016
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.stats import qmc

__all__ = ["sobol_indices", "saltelli_points"]


def saltelli_points(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``A`` and ``B`` base matrices ``(n, dim)`` from one ``2*dim`` Sobol' sample.

    Example:
        >>> a, b = saltelli_points(16, 3)
        >>> a.shape, b.shape
        ((16, 3), (16, 3))
    """
    m = int(np.ceil(np.log2(max(n, 2))))
    ab = qmc.Sobol(2 * dim, scramble=True, seed=seed).random_base2(m)[:n]
    return ab[:, :dim], ab[:, dim:]


def _indices(fa: np.ndarray, fb: np.ndarray, fab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fa, fb: (..., n, m); fab: (d, ..., n, m) -> first-order and total, each (d, ...)
    (the leading ``...``: replicates, e.g. bootstrap resamples, computed at once)."""
    var = np.concatenate([fa, fb], axis=-2).var(-2)  # (..., m)
    total_var = np.maximum(var.sum(-1), 1e-300)
    s1 = (fb[None] * (fab - fa[None])).mean(-2).sum(-1) / total_var
    st = 0.5 * ((fa[None] - fab) ** 2).mean(-2).sum(-1) / total_var
    return s1, st


def _bootstrap(fa: np.ndarray, fb: np.ndarray, fab: np.ndarray, n_boot: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_indices` on ``n_boot`` resamples of the base rows, ``(n_boot, d)`` each.

    Every term of the estimators is a mean over rows, so a resample's is its count
    of each row times the per-row value: one product with the ``(n_boot, n)`` count
    matrix, whatever the number of output columns."""
    n = len(fa)
    rows = rng.integers(0, n, (n_boot, n))  # the same stream as one draw of n per resample
    w = np.bincount((rows + n * np.arange(n_boot)[:, None]).ravel(), minlength=n_boot * n).reshape(n_boot, n) / n
    centre = 0.5 * (fa.mean(0) + fb.mean(0))  # the variance is shift-invariant; centred, its moments are exact
    ca, cb = fa - centre, fb - centre
    mean = 0.5 * (w @ ca + w @ cb)  # (n_boot, m)
    var = 0.5 * (w @ (ca * ca) + w @ (cb * cb)) - mean * mean
    total_var = np.maximum(var.sum(-1), 1e-300)[:, None]
    s1 = w @ (fb[None] * (fab - fa[None])).sum(-1).T / total_var
    st = w @ (0.5 * ((fa[None] - fab) ** 2).sum(-1)).T / total_var
    return s1, st


def split_k(f: np.ndarray, k: int, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluations stacked as ``[A; B; A_B^(1); ...]`` -> ``f(A)``, ``f(B)``, ``f(A_B)`` ``(dim, k, m)``."""
    return f[:k], f[k:2 * k], f[2 * k:].reshape(dim, k, -1)


def sobol_indices(predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]], dim: int, n: int = 4096,
                  n_boot: int = 200, n_draws: int = 8, seed: int = 0,
                  sample: Callable[[np.ndarray], np.ndarray] | None = None, n_joint: int | None = None
                  ) -> dict[str, np.ndarray]:
    """First-order and total Sobol' indices of ``predict`` on the unit cube.

    Arguments:
        predict: ``u (N, dim) -> (mean (N, m), std (N, m))`` (std may be zeros).
        dim: number of inputs.
        n: base sample size (the cost is ``n * (dim + 2)`` predictions).
        n_boot: bootstrap replicates for the Monte Carlo interval.
        n_draws: draws of the emulator's uncertainty for its part of the interval
            (without ``sample``: perturbations of the mean).
        seed: seed of the Sobol' scrambling and the bootstrap.
        sample: ``u (N, dim) -> draws (S, N, m)``, joint posterior draws of the
            emulator (e.g. :meth:`~sciml_lab.emulate.Emulator.sample_unit`): the
            emulator's part of the interval is then the spread of the indices over
            these sample functions.
        n_joint: base rows given to ``sample`` (default: as many as keep its
            ``n_joint * (dim + 2)`` points within 2048, at least 64).

    Returns:
        ``first_order``, ``total`` and their ``*_low`` / ``*_high`` 95 % bounds, each ``(dim,)``.

    Example:
        >>> f = lambda u: (u[:, :1] + 2 * u[:, 1:2], np.zeros((len(u), 1)))
        >>> s = sobol_indices(f, 2, n=1024)
        >>> np.round(s["first_order"], 2).tolist()
        [0.2, 0.8]
    """
    a, b = saltelli_points(n, dim, seed)
    ab = np.repeat(a[None], dim, 0)
    for i in range(dim):
        ab[i, :, i] = b[:, i]
    pts = np.concatenate([a, b, ab.reshape(-1, dim)])
    mean, std = predict(pts)
    mean, std = np.asarray(mean, float).reshape(len(pts), -1), np.asarray(std, float).reshape(len(pts), -1)
    s1, st = _indices(*split_k(mean, n, dim))
    rng = np.random.default_rng(seed)
    boot1, boott = _bootstrap(*split_k(mean, n, dim), n_boot, rng)
    # the emulator's part: the spread of the indices over the emulator's draws
    draw1: list[np.ndarray] = []
    drawt: list[np.ndarray] = []
    if sample is not None:
        k = min(n, int(n_joint) if n_joint else max(64, 2048 // (dim + 2)))
        draw1, drawt = _joint_spread(sample, a[:k], b[:k], ab[:, :k], mean.shape[1])
    elif n_draws and np.any(std > 0):
        for _ in range(n_draws):
            d1, dt = _indices(*split_k(mean + std * rng.standard_normal(mean.shape), n, dim))
            draw1.append(d1 - s1)
            drawt.append(dt - st)
    out = {"first_order": s1, "total": st}
    for name, est, boot, draws in (("first_order", s1, boot1, draw1), ("total", st, boott, drawt)):
        out[f"{name}_low"], out[f"{name}_high"] = _interval(est, boot, draws)
    return out


def _joint_spread(sample: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray, ab: np.ndarray,
                  m: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Deviations of the first-order and total indices from their mean over the joint
    posterior draws of ``sample`` on the Saltelli rows ``a``, ``b``, ``ab`` ``(d, k, dim)``;
    a list of ``(d,)`` per draw each. The same rows for every path, so the spread is the
    emulator's, not the Monte Carlo's."""
    dim, k = ab.shape[0], len(a)
    pts_j = np.concatenate([a, b, ab.reshape(-1, dim)])
    paths = np.asarray(sample(pts_j), dtype=float).reshape(-1, len(pts_j), m)
    s_paths = len(paths)  # all sample functions at once: (S, k, m) and (d, S, k, m)
    fab_j = paths[:, 2 * k:].reshape(s_paths, dim, k, -1).swapaxes(0, 1)
    i1, it = (x.T for x in _indices(paths[:, :k], paths[:, k:2 * k], fab_j))
    return list(i1 - i1.mean(0)), list(it - it.mean(0))


def _interval(est: np.ndarray, boot: np.ndarray, draws: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The 95 % bounds of the estimate ``est``: the bootstrap percentile interval, widened
    by the emulator's spread ``draws`` (the two error sources combined in quadrature)."""
    lo, hi = np.quantile(boot, [0.025, 0.975], axis=0)
    if draws:
        emu_sd = np.sqrt(np.mean(np.square(draws), axis=0))
        lo = est - np.sqrt((est - lo) ** 2 + (1.96 * emu_sd) ** 2)
        hi = est + np.sqrt((hi - est) ** 2 + (1.96 * emu_sd) ** 2)
    return lo, hi

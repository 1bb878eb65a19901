"""Reduction of functional outputs (curves, spectra, fields) to a few principal components.

The emulator standardises each output column, projects the runs on the leading
principal directions and emulates the component scores. What the truncation
discards is not lost from the uncertainty: each column's share of it is added to
that column's predictive variance, estimated out of sample (the residual of each
run projected on a basis fitted without it, by k-fold over the runs), because the
in-sample residual of a basis fitted to few runs underrates what new runs leave
out.

References:
    | Computer model calibration using high-dimensional output (Higdon, Gattiker,
    | Williams & Rightley, JASA 103, 2008), section 2.1: the basis representation
    | and its discrepancy term. https://doi.org/10.1198/016214507000000888
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["PCABasis", "fit_pca", "check_n_components", "DEFAULT_TOL", "AUTO_MIN_COLUMNS"]

# the variance share the automatic truncation may leave out (in standardised units);
# the left-out part goes into the predictive variance, so the tolerance trades the
# number of components (cheap with a shared kernel) against a floor on the std
DEFAULT_TOL = 1e-4
# "auto" reduces only outputs with more columns than this (a few scalars are fitted as they are)
AUTO_MIN_COLUMNS = 10
_FOLDS = 5


@dataclass
class PCABasis:
    """Directions ``(m, k)`` (orthonormal, sign-fixed), the scores' standard
    deviations ``(k,)`` and the truncation variance per column ``(m,)``."""

    directions: torch.Tensor
    latent_sd: torch.Tensor
    resid_var: torch.Tensor


def check_n_components(n_components: Any) -> "int | str | None":
    """Validate the ``n_components`` argument: ``None`` (no reduction), ``"auto"``
    or a positive integer.

    Example:
        >>> check_n_components("auto"), check_n_components(4), check_n_components(None)
        ('auto', 4, None)
    """
    if n_components is None or n_components == "auto":
        return n_components
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ValueError(f"n_components: expected None, 'auto' or a positive integer, got {n_components!r}")
    return int(n_components)


def _directions(ys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    _, s, vt = torch.linalg.svd(ys, full_matrices=False)
    v = vt.T
    return v * torch.sign(v[v.abs().argmax(0), torch.arange(v.shape[1])]), s  # a fixed sign per direction


def _n_kept(s: torch.Tensor, n_components: "int | str", tol: float, n: int) -> int:
    if n_components == "auto":
        share = s ** 2 / (s ** 2).sum().clamp_min(1e-300)
        left = 1 - torch.cumsum(share, 0)  # variance share left out with k = 1, 2, ...
        k = int((left > tol).sum()) + 1
    else:
        k = int(n_components)
    # a basis fitted on n runs has at most n - 1 directions with any variance
    return max(1, min(k, len(s), n - 1))


def cross_validated_residual(ys: torch.Tensor, k: int, folds: int = _FOLDS) -> torch.Tensor:
    """Mean squared residual per column ``(m,)`` of each run (row of the
    standardised ``ys``) projected on the ``k`` leading directions of the other runs
    (runs dealt to ``folds`` folds in turn).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> ys = torch.randn(60, 2, generator=g, dtype=torch.float64) @ torch.randn(2, 8, generator=g, dtype=torch.float64)
        >>> ys = ys + 0.1 * torch.randn(60, 8, generator=g, dtype=torch.float64)
        >>> bool(cross_validated_residual(ys, 2).mean() > 0.005), bool(cross_validated_residual(ys, 8).max() < 1e-20)
        (True, True)
    """
    n = len(ys)
    folds = min(folds, n)
    fold = torch.arange(n) % folds
    resid = torch.zeros_like(ys)
    for f in range(folds):
        held = fold == f
        v = _directions(ys[~held])[0][:, :k]
        resid[held] = ys[held] - (ys[held] @ v) @ v.T
    return resid.pow(2).mean(0)


def fit_pca(ys: torch.Tensor, n_components: "int | str" = "auto", tol: float = DEFAULT_TOL) -> PCABasis:
    """Principal directions of standardised outputs ``ys`` ``(n, m)``.

    Arguments:
        n_components: the number of directions, or ``"auto"``: as many as leave out
            at most ``tol`` of the variance (at most ``n - 1``).
        tol: see ``n_components``.

    Returns:
        A :class:`PCABasis`; its ``resid_var`` is the larger of the in-sample and the
        cross-validated truncation error per column.

    Example:
        >>> t = torch.linspace(0, 1, 50, dtype=torch.float64)
        >>> a = torch.rand(40, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        >>> y = torch.sin(3 * t + a[:, :1]) * a[:, 1:]
        >>> b = fit_pca((y - y.mean(0)) / y.std(0), "auto")
        >>> b.directions.shape[0], 2 <= b.directions.shape[1] <= 8, bool(b.resid_var.max() < 1e-3)
        (50, True, True)
    """
    n = len(ys)
    v, s = _directions(ys)
    k = _n_kept(s, n_components, tol, n)
    v = v[:, :k]
    in_sample = (ys - (ys @ v) @ v.T).pow(2).mean(0)
    resid = torch.maximum(in_sample, cross_validated_residual(ys, k)) if n >= 2 * _FOLDS else in_sample
    return PCABasis(v, (s[:k] / math.sqrt(max(n - 1, 1))).clamp_min(1e-12), resid)

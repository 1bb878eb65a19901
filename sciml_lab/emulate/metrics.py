"""Validation metrics of an emulator's predictions: normalised RMSE with a bootstrap
interval, 95 % coverage and Gaussian NLL, and the calibration scale on the predictive
standard deviation.

Example:
    >>> y = np.random.default_rng(0).normal(size=(200, 2))
    >>> m = validation_metrics(y, y, np.ones_like(y))
    >>> m["nrmse"], m["scale"] < 1
    (0.0, True)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["validation_metrics", "calibrate_scale", "nrmse_interval"]

_Z95 = 1.959963984540054


def calibrate_scale(z: np.ndarray) -> float:
    """The factor on the predictive std that makes 95 % of ``|z|`` fall inside 1.96
    (``z``: standardised validation residuals).

    Example:
        >>> round(calibrate_scale(np.random.default_rng(0).normal(size=20000) * 2.0), 1)
        2.0
    """
    z = np.abs(np.asarray(z, dtype=float).ravel())
    z = z[np.isfinite(z)]
    if len(z) == 0:
        return 1.0
    return float(max(np.quantile(z, 0.95) / _Z95, 1e-3))


def nrmse_interval(y: np.ndarray, mean: np.ndarray, level: float = 0.95, n_boot: int = 2000,
                   seed: int = 0) -> tuple[float, float, float]:
    """Normalised RMSE of predictions ``mean`` of ``y`` ``(n, m)`` and a bootstrap
    interval over the runs (percentile, ``level``; the column standard deviations
    that normalise it are held fixed).

    With a few dozen runs one badly predicted run can move the error by a factor of
    two from one budget to the next; the interval says how far such a move is noise.

    Example:
        >>> rng = np.random.default_rng(0); y = rng.normal(size=(400, 1))
        >>> e, lo, hi = nrmse_interval(y, y + 0.1 * rng.normal(size=(400, 1)))
        >>> bool(lo < e < hi), round(e, 2), bool(hi - lo < 0.03)
        (True, 0.1, True)
    """
    y, mean = (np.asarray(a, dtype=float).reshape(len(y), -1) for a in (y, mean))
    col_sd = y.std(0)
    col_sd = np.where(col_sd > 0, col_sd, 1.0)
    per_run = (((mean - y) / col_sd) ** 2).mean(1)  # (n,): squared error per run, averaged over columns
    nrmse = float(np.sqrt(per_run.mean()))
    if len(per_run) < 2 or not np.all(np.isfinite(per_run)):
        return nrmse, math.nan, math.nan
    idx = np.random.default_rng(seed).integers(len(per_run), size=(n_boot, len(per_run)))
    boot = np.sqrt(per_run[idx].mean(1))
    tail = 100 * (1 - level) / 2
    return nrmse, float(np.percentile(boot, tail)), float(np.percentile(boot, 100 - tail))


def validation_metrics(y: np.ndarray, mean: np.ndarray, std: np.ndarray, recalibrate: bool = True,
                       band: tuple[float, float] = (0.90, 0.98)) -> dict[str, float]:
    """Normalised RMSE, 95 % coverage and Gaussian NLL of validation predictions.

    ``nrmse`` is the RMSE of each output column divided by that column's standard
    deviation, then the root mean square over columns; ``nrmse_low`` and
    ``nrmse_high`` bound its 95 % bootstrap interval over the runs
    (:func:`nrmse_interval`). ``nll`` is per value in
    units of the column's standard deviation (so it compares across problems).
    When the raw coverage is outside ``band`` and ``recalibrate`` is on, a scale on
    the std is fitted by :func:`calibrate_scale`; the reported ``coverage`` and
    ``nll`` are then cross-fitted (the scale fitted on half of the points is
    scored on the other half), not scored on the points that set it.

    Example:
        >>> rng = np.random.default_rng(0); y = rng.normal(size=(400, 1))
        >>> m = validation_metrics(y, np.zeros_like(y), np.full_like(y, 0.5))
        >>> m["raw_coverage"] < 0.9, 0.9 < m["coverage"] < 0.99, round(m["scale"])
        (True, True, 2)
    """
    y, mean, std = (np.asarray(a, dtype=float).reshape(len(y), -1) for a in (y, mean, std))
    col_sd = y.std(0)
    col_sd = np.where(col_sd > 0, col_sd, 1.0)
    nrmse, nrmse_low, nrmse_high = nrmse_interval(y, mean)
    std = np.maximum(std, 1e-12 * col_sd)
    z = (y - mean) / std
    raw_cov = float(np.mean(np.abs(z) < _Z95))

    def nll_of(zz: np.ndarray, ss: np.ndarray) -> float:
        return float(np.mean(0.5 * zz ** 2 + np.log(ss / col_sd) + 0.5 * math.log(2 * math.pi)))

    scale, cov, nll = 1.0, raw_cov, nll_of(z, std)
    if recalibrate and not band[0] <= raw_cov <= band[1] and len(y) >= 4:
        scale = calibrate_scale(z)
        halves = (np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1)
        covs, nlls = [], []
        for fit_on, score_on in (halves, halves[::-1]):
            s = calibrate_scale(z[fit_on])
            zs = z[score_on] / s
            covs.append(np.abs(zs) < _Z95)
            nlls.append(0.5 * zs ** 2 + np.log(std[score_on] * s / col_sd) + 0.5 * math.log(2 * math.pi))
        cov = float(np.mean(np.concatenate([c.ravel() for c in covs])))
        nll = float(np.mean(np.concatenate([c.ravel() for c in nlls])))
    return {"nrmse": nrmse, "nrmse_low": nrmse_low, "nrmse_high": nrmse_high, "coverage": cov, "nll": nll,
            "raw_coverage": raw_cov, "scale": scale}

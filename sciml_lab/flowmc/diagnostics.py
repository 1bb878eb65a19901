"""Convergence diagnostics: rank-normalized split R-hat, bulk and tail effective
sample size and Monte Carlo standard errors of the mean and sd.

All follow Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), the definitions
used by Stan and ArviZ, and are vectorised over parameters so that the engine can
afford them after every loop. Inputs are arrays of shape ``(chain, draw, param)``.

References:
    | Rank-normalization, folding, and localization: an improved R-hat for
    | assessing convergence of MCMC (Vehtari et al., 2021)
    | https://doi.org/10.1214/20-BA1221
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

__all__ = ["rank_normalize", "split_chains", "rhat", "ess_bulk", "ess_tail", "ess_mean", "mcse_mean", "mcse_sd",
           "parameter_diagnostics", "summary_diagnostics", "thinned_draws"]


def split_chains(draws: np.ndarray) -> np.ndarray:
    """Split every chain in two halves (the middle draw of an odd chain is dropped).

    Example:
        >>> split_chains(np.zeros((4, 11, 2))).shape
        (8, 5, 2)
    """
    draws = np.asarray(draws, dtype=float)
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, draws.shape[1] - half:]], axis=0)


def rank_normalize(draws: np.ndarray, ties: str = "average") -> np.ndarray:
    """Replace each parameter's draws by the normal quantiles of their pooled ranks
    (Blom's offset 3/8). ``ties="average"`` gives tied draws their average rank (as
    ArviZ does); ``"ordinal"`` breaks ties by position, which is three times faster
    and identical for continuous draws.

    Example:
        >>> z = rank_normalize(np.arange(12.0).reshape(2, 6, 1))
        >>> bool(abs(z.mean()) < 1e-12)
        True
    """
    draws = np.asarray(draws, dtype=float)
    c, n, p = draws.shape
    size = c * n
    flat = np.ascontiguousarray(draws.transpose(2, 0, 1).reshape(p, size))
    if ties == "ordinal":
        ranks = np.empty((p, size))
        ranks[np.arange(p)[:, None], np.argsort(flat, axis=1)] = np.arange(1, size + 1, dtype=float)
    else:
        ranks = stats.rankdata(flat, method="average", axis=1)
    z = special.ndtri((ranks - 0.375) / (size + 0.25))
    return z.reshape(p, c, n).transpose(1, 2, 0)


def _classic_rhat(draws: np.ndarray) -> np.ndarray:
    n = draws.shape[1]
    chain_mean = draws.mean(axis=1)
    between = n * chain_mean.var(axis=0, ddof=1)
    within = draws.var(axis=1, ddof=1).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _rhat_from_split(split: np.ndarray, z_bulk: np.ndarray, ties: str = "average") -> np.ndarray:
    folded = np.abs(split - np.median(split.reshape(-1, split.shape[2]), axis=0))
    return np.fmax(_classic_rhat(z_bulk), _classic_rhat(rank_normalize(folded, ties)))


def rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalized split R-hat per parameter: the larger of the bulk R-hat and the
    R-hat of the folded draws (tails). Needs at least 2 chains and 4 draws.

    Arguments:
        draws: array ``(chain, draw, param)``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> bool(rhat(rng.normal(size=(4, 500, 3))).max() < 1.01)
        True
    """
    split = split_chains(draws)
    return _rhat_from_split(split, rank_normalize(split))


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance along axis 1 of ``(chain, draw, param)``, by FFT."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(f * np.conjugate(f), n=size, axis=1)[:, :n]
    return acov / n


def _ess(draws: np.ndarray) -> np.ndarray:
    """ESS of ``(chain, draw, param)`` draws with Geyer's initial monotone sequence
    estimator of the autocorrelation time, pooled over chains."""
    c, n, _ = draws.shape
    acov = _autocovariance(draws).mean(axis=0)  # (draw lag, param), averaged over chains
    mean_var = acov[0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if c > 1:
        var_plus = var_plus + draws.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var - acov) / var_plus  # (lag, param)
    rho[0] = 1.0  # by definition (the formula above gives 1 - acov0 / ((n - 1) var_plus))
    # pairs (rho_2k + rho_2k+1); Stan/ArviZ examine pairs k < (n - 2) / 2
    k_max = max((n - 1) // 2 - 1, 0)
    pairs = rho[0: 2 * k_max + 2: 2] + rho[1: 2 * k_max + 2: 2]  # (k_max + 1, param)
    positive = pairs > 0
    positive[0] = True
    # first non-positive pair after pair 0 (k_max when all are positive)
    bad = ~positive
    bad[-1] = True
    k_stop = np.argmax(bad, axis=0)
    monotone = np.minimum.accumulate(pairs, axis=0)
    keep = np.arange(len(pairs))[:, None] < k_stop[None, :]
    tail_even = np.take_along_axis(rho[0: 2 * k_max + 2: 2], k_stop[None, :], axis=0)[0]
    tau = -1.0 + 2.0 * np.where(keep, monotone, 0.0).sum(axis=0) + np.maximum(tail_even, 0.0)
    total = c * n
    tau = np.maximum(tau, 1.0 / np.log10(total))
    return total / tau


def ess_bulk(draws: np.ndarray) -> np.ndarray:
    """Bulk effective sample size per parameter (rank-normalized split chains).

    Arguments:
        draws: array ``(chain, draw, param)``; needs at least 4 draws per chain.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> e = ess_bulk(rng.normal(size=(4, 500, 2)))
        >>> bool(1500 < e.min() < 2500)
        True
    """
    return _ess(rank_normalize(split_chains(draws)))


def ess_tail(draws: np.ndarray, probs: tuple[float, float] = (0.05, 0.95)) -> np.ndarray:
    """Tail effective sample size per parameter: the smaller ESS of the indicators
    ``draw <= q`` for the 5 % and 95 % quantiles ``q`` (split chains), as in ArviZ.
    Low tail ESS means the posterior intervals are unreliable even if the mean is not.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> bool(1000 < ess_tail(rng.normal(size=(4, 500, 2))).min() < 2500)
        True
    """
    draws = np.asarray(draws, dtype=float)
    flat = draws.reshape(-1, draws.shape[2])
    out = np.full(draws.shape[2], np.inf)
    for p in probs:
        q = np.quantile(flat, p, axis=0)  # R's type 7, ArviZ's choice
        out = np.fmin(out, _ess(split_chains((draws <= q).astype(float))))
    return out


def ess_mean(draws: np.ndarray) -> np.ndarray:
    """Effective sample size for the mean: ESS of the raw (not rank-normalized) split
    chains, the one in the Monte Carlo standard error of the mean.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> bool(1500 < ess_mean(rng.normal(size=(4, 500, 2))).min() < 2500)
        True
    """
    return _ess(split_chains(draws))


def mcse_mean(draws: np.ndarray) -> np.ndarray:
    """Monte Carlo standard error of the posterior mean: ``sd / sqrt(ESS_mean)``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> bool(abs(mcse_mean(rng.normal(size=(4, 500, 1)))[0] - 1 / np.sqrt(2000)) < 0.005)
        True
    """
    draws = np.asarray(draws, dtype=float)
    sd = draws.reshape(-1, draws.shape[2]).std(axis=0, ddof=1)
    return sd / np.sqrt(ess_mean(draws))


def mcse_sd(draws: np.ndarray) -> np.ndarray:
    """Monte Carlo standard error of the posterior sd (ArviZ's delta-method estimate
    from the ESS of the squared deviations).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> bool(0.01 < mcse_sd(rng.normal(size=(4, 500, 1)))[0] < 0.02)
        True
    """
    draws = np.asarray(draws, dtype=float)
    flat = draws.reshape(-1, draws.shape[2])
    sq = (draws - flat.mean(axis=0)) ** 2
    var = sq.reshape(-1, draws.shape[2]).mean(axis=0)
    var_of_var = ((sq ** 2).reshape(-1, draws.shape[2]).mean(axis=0) - var ** 2) / ess_mean(sq)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(var_of_var / var / 4)


def parameter_diagnostics(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Per-parameter convergence diagnostics of ``(chain, draw, param)`` draws, the
    columns of ``arviz.summary``: ``r_hat``, ``ess_bulk``, ``ess_tail``, ``mcse_mean``,
    ``mcse_sd`` (NaN where there are fewer than 4 draws or 2 chains, or a
    non-finite draw).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> d = parameter_diagnostics(rng.normal(size=(4, 500, 2)))
        >>> sorted(d), bool(d["r_hat"].max() < 1.01)
        (['ess_bulk', 'ess_tail', 'mcse_mean', 'mcse_sd', 'r_hat'], True)
    """
    draws = np.asarray(draws, dtype=float)
    c, n, p = draws.shape
    names = ("r_hat", "ess_bulk", "ess_tail", "mcse_mean", "mcse_sd")
    out = {k: np.full(p, np.nan) for k in names}
    ok = np.isfinite(draws).all(axis=(0, 1))
    if n < 4 or c * n < 8 or not ok.any():
        return out
    d = draws[..., ok]
    split = split_chains(d)
    z_bulk = rank_normalize(split)  # shared by R-hat and bulk ESS
    with np.errstate(divide="ignore", invalid="ignore"):
        r = _rhat_from_split(split, z_bulk) if c >= 2 else np.full(d.shape[2], np.nan)
        values = (r, _ess(z_bulk), ess_tail(d), mcse_mean(d), mcse_sd(d))
    for k, v in zip(names, values):
        out[k][ok] = v
    return out


def thinned_draws(n_chains: int, n_draws: int, n_params: int, max_draws: int = 1000,
                  max_values: int = 100_000) -> np.ndarray:
    """Indices of evenly spaced draws that keep at most ``max_draws`` per chain and
    ``max_values`` numbers in all (but at least 50 draws per chain).

    Example:
        >>> thinned_draws(64, 720, 50).size
        50
        >>> thinned_draws(4, 720, 2).size
        720
    """
    keep = min(max_draws, max(50, max_values // max(n_chains * n_params, 1)))
    if n_draws <= keep:
        return np.arange(n_draws)
    return np.unique(np.linspace(0, n_draws - 1, keep).round().astype(int))


def summary_diagnostics(draws: np.ndarray, max_draws: int = 1000, max_values: int = 100_000) -> tuple[float, float]:
    """Worst R-hat and smallest bulk ESS over parameters, cheaply enough to run after
    every loop.

    The cost is bounded by evenly thinning each chain to at most ``max_draws`` draws
    and to at most ``max_values`` numbers in all (never below 50 draws per chain).
    Thinning can only lower ESS, so for long runs the live ESS is a conservative
    estimate; the final summary (``plots.summary``, ArviZ) uses every draw.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> r, e = summary_diagnostics(rng.normal(size=(8, 4000, 2)), max_draws=500)
        >>> r < 1.01 and e > 3000
        True
    """
    c, n, p = draws.shape
    if c < 2 or n < 8:
        return float("nan"), float("nan")
    draws = np.asarray(draws[:, thinned_draws(c, n, p, max_draws, max_values)], dtype=float)
    if not np.isfinite(draws).all():
        return float("nan"), float("nan")
    split = split_chains(draws)
    z_bulk = rank_normalize(split, "ordinal")  # shared by R-hat and ESS
    return float(np.nanmax(_rhat_from_split(split, z_bulk, "ordinal"))), float(np.nanmin(_ess(z_bulk)))

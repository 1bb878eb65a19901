"""The posterior summary of a flow-MCMC result, from xarray only: every scalar
parameter's mean, sd, HDI, MCSE, bulk and tail ESS and R-hat (the columns and values
of ``arviz.summary``). The views (:mod:`sciml_lab.flowmc.plots`) and the verdict use it.

Example:
    >>> ds = xr.Dataset({"w": (("chain", "draw", "w_dim_0"), np.ones((2, 10, 2)))})
    >>> list(summary(ds)["mean"])
    [1.0, 1.0]
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .diagnostics import parameter_diagnostics

__all__ = ["flat_draws", "summary"]


def dataset(tree: "xr.DataTree | xr.Dataset", group: str) -> xr.Dataset:
    """One group of the result as a Dataset (a Dataset is taken as that group)."""
    if isinstance(tree, xr.Dataset):
        return tree
    if group not in tree.children:
        raise ValueError(f"the result has no /{group} group yet (groups: {', '.join(tree.children) or 'none'}); "
                         "production draws appear after the training loops")
    return tree[group].to_dataset()


def flat_draws(tree: "xr.DataTree | xr.Dataset", group: str = "posterior",
               var_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Every scalar coordinate of every parameter as an array ``(chain, draw)``, keyed
    ``"mu"``, ``"theta[0]"``... (``(sample,)`` arrays for the ``flow_samples`` group).

    Example:
        >>> ds = xr.Dataset({"theta": (("chain", "draw", "theta_dim_0"), np.zeros((2, 5, 2)))})
        >>> sorted(flat_draws(ds))
        ['theta[0]', 'theta[1]']
    """
    ds = dataset(tree, group)
    names = list(var_names) if var_names is not None else list(ds.data_vars)
    out: dict[str, np.ndarray] = {}
    lead = 1 if "sample" in ds.dims else 2
    for name in names:
        if name not in ds:
            raise KeyError(f"var_names: no parameter {name!r}; parameters are {', '.join(map(str, ds.data_vars))}")
        a = ds[name].values
        if a.ndim == lead:
            out[str(name)] = a
        else:
            for idx in np.ndindex(*a.shape[lead:]):
                out[f"{name}[{','.join(map(str, idx))}]"] = a[(slice(None),) * lead + idx]
    return out


def _hdi(x: np.ndarray, prob: float) -> tuple[float, float]:
    s = np.sort(x)
    n = len(s)
    k = max(1, int(math.floor(prob * n)))
    if k >= n:
        return float(s[0]), float(s[-1])
    widths = s[k:] - s[: n - k]
    i = int(np.argmin(widths))
    return float(s[i]), float(s[i + k])


def summary(tree: "xr.DataTree | xr.Dataset", var_names: Sequence[str] | None = None,
            hdi_prob: float = 0.94) -> pd.DataFrame:
    """Posterior summary per scalar parameter (every element of a vector parameter):
    mean, sd, highest-density interval, Monte Carlo standard errors of the mean and
    sd, bulk and tail ESS and R-hat (the columns of ``arviz.summary``, same values).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ds = xr.Dataset({"mu": (("chain", "draw"), rng.normal(size=(4, 200)))})
        >>> t = summary(ds)
        >>> list(t.columns)
        ['mean', 'sd', 'hdi_3%', 'hdi_97%', 'mcse_mean', 'mcse_sd', 'ess_bulk', 'ess_tail', 'r_hat']
    """
    flat = flat_draws(tree, "posterior", var_names)
    lo_name = f"hdi_{100 * (1 - hdi_prob) / 2:g}%"
    hi_name = f"hdi_{100 * (1 + hdi_prob) / 2:g}%"
    rows = {}
    diag = parameter_diagnostics(np.stack(list(flat.values()), axis=-1))  # (chain, draw, param)
    for i, (name, a) in enumerate(flat.items()):
        lo, hi = _hdi(a.ravel(), hdi_prob)
        rows[name] = {"mean": a.mean(), "sd": a.std(ddof=1), lo_name: lo, hi_name: hi,
                      **{k: diag[k][i] for k in ("mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat")}}
    return pd.DataFrame.from_dict(rows, orient="index")

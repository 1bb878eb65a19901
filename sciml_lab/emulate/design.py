"""Where to run the simulator: space-filling initial designs and active-learning batches.

All points are in the unit cube; the :class:`~sciml_lab.emulate.emulator.Emulator`
maps them to the user's bounds.

References:
    | Sobol' sequences with Owen scrambling: scipy.stats.qmc (Roy et al., 2023)
    | https://docs.scipy.org/doc/scipy/reference/stats.qmc.html
    | Batch selection by greedy posterior-variance reduction ("kriging believer": the
    | GP variance does not depend on the values, so chosen points are conditioned on
    | before choosing the next): Ginsbourger, Le Riche & Carraro, "Kriging is
    | well-suited to parallelize optimization" (2010) https://doi.org/10.1007/978-3-642-10701-6_6
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import qmc

__all__ = ["initial_design", "candidates", "select_batch", "DESIGNS"]

DESIGNS = ("sobol", "lhs", "random")


def initial_design(n: int, dim: int, kind: str = "sobol", seed: int = 0, start: int = 0) -> np.ndarray:
    """``n`` space-filling points in ``[0, 1]^dim``.

    Arguments:
        kind: ``"sobol"`` (scrambled Sobol', points ``start`` to ``start + n`` of the
            sequence, so later calls continue an earlier design), ``"lhs"``
            (optimised Latin hypercube) or ``"random"``.

    Example:
        >>> initial_design(8, 2, "lhs", seed=0).shape
        (8, 2)
    """
    if kind not in DESIGNS:
        raise ValueError(f"design: expected one of {', '.join(DESIGNS)}, got {kind!r}")
    if kind == "sobol":
        # n need not be a power of two: take the next n points (balance is only
        # approximate then, which is fine for a design)
        m = int(np.ceil(np.log2(max(start + n, 2))))
        return qmc.Sobol(dim, scramble=True, seed=seed).random_base2(m)[start:start + n]
    if kind == "lhs":
        return qmc.LatinHypercube(dim, seed=seed, optimization="random-cd" if dim > 1 else None).random(n)
    return np.random.default_rng(seed).uniform(size=(n, dim))


def candidates(n: int, dim: int, seed: int) -> np.ndarray:
    """A fresh scrambled Sobol' cloud of candidate points for the next batch."""
    return initial_design(n, dim, "sobol", seed)


def _min_distance(c: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    if len(chosen) == 0:
        return torch.full((len(c),), np.inf, dtype=c.dtype)
    return torch.cdist(c, chosen).min(1).values


def select_batch(model: torch.nn.Module, x_train: torch.Tensor, cand: torch.Tensor, size: int) -> np.ndarray:
    """Greedy batch of maximum predictive variance (summed over outputs).

    For an :class:`~sciml_lab.emulate.gp.ExactGP` the candidates' variances are
    updated after each pick by conditioning on it (rank-one update of the
    posterior covariance), so a batch spreads out instead of piling up where the
    variance is largest. For other models (the deep ensemble) a minimum distance
    between picks, half the typical spacing of the design, does the spreading.

    Arguments:
        model: the fitted model, called on unit-cube points, returning ``(mean, var)``.
        x_train: the points already run ``(n, d)`` (unit cube).
        cand: candidate points ``(M, d)`` (unit cube).
        size: number of points to pick.

    Example:
        >>> from sciml_lab.emulate.gp import ExactGP
        >>> x = torch.rand(10, 2, dtype=torch.float64)
        >>> gp = ExactGP(2).fit(x, torch.sin(3 * x[:, :1]), max_iter=20)
        >>> select_batch(gp, x, torch.rand(200, 2, dtype=torch.float64), 4).shape
        (4, 2)
    """
    from .gp import ExactGP

    size = min(int(size), len(cand))
    picks: list[int] = []
    with torch.no_grad():
        if isinstance(model, ExactGP):
            cand = cand.to(model.x_train)
            _, var = model(cand)  # (M, m)
            var = var.T.clone()  # (m, M)
            scale = var.max(1, keepdim=True).values.clamp_min(1e-30)  # each output counts alike
            noise = model.noise()[:, None]
            us: list[torch.Tensor] = []  # rank-one terms of the conditioning so far, (m, M) each
            for _ in range(size):
                score = (var / scale).sum(0)
                if picks:
                    score[picks] = -np.inf
                j = int(score.argmax())
                picks.append(j)
                cov = model.posterior_covariance(cand, cand[j:j + 1])[..., 0]  # (m, M)
                for u in us:
                    cov = cov - u * u[:, j:j + 1]
                u = cov / (cov[:, j:j + 1].clamp_min(0) + noise).sqrt()
                us.append(u)
                var = (var - u * u).clamp_min(0)
        else:
            x_train = x_train.to(cand)
            _, var = model(cand.to(next(model.parameters())))
            score = var.to(cand).sum(1).clone()
            spacing = 0.5 * float(len(x_train) + size) ** (-1.0 / cand.shape[1])
            chosen = torch.zeros(0, cand.shape[1], dtype=cand.dtype)
            for _ in range(size):
                s = score.clone()
                s[_min_distance(cand, torch.cat([x_train, chosen])) < spacing] = -np.inf
                if picks:
                    s[picks] = -np.inf
                j = int(s.argmax()) if bool(torch.isfinite(s).any()) else int(score.argmax())
                picks.append(j)
                chosen = torch.cat([chosen, cand[j:j + 1]])
                score[j] = -np.inf
    return cand[picks].cpu().numpy()

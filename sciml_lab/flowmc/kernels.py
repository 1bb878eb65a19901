"""Markov kernels: local moves (MALA, HMC, random walk) and the global flow move.

Local kernels act in whitened coordinates ``z = L^{-1} x``, where ``L L^T`` is the
mass matrix learned in training (the chains' pooled covariance when their cloud
looks Gaussian, else their within-chain covariance): one
preconditioning for all three kernels. The map is linear, so its Jacobian cancels
in every acceptance ratio. Each kernel returns the per-chain acceptance
probability, which drives step-size adaptation (Robbins-Monro on ``log eps``).

The global kernel is independence Metropolis-Hastings with a proposal ``q``:
``alpha = min(1, p(y) q(x) / (p(x) q(y)))``, exact for any ``q`` with a
tractable density.

References:
    | Exponential convergence of Langevin distributions and their discrete
    | approximations (Roberts & Tweedie, 1996) https://doi.org/10.2307/3318418
    | MCMC using Hamiltonian dynamics (Neal, 2011) https://arxiv.org/abs/1206.1901
    | flowMC: Normalizing flow enhanced sampling package for probabilistic inference
    | in JAX (Wong, Gabrié & Foreman-Mackey, JOSS 2023) https://doi.org/10.21105/joss.05021
"""

from __future__ import annotations

import dataclasses
import math
from typing import Protocol

import numpy as np
import torch

from ..kit.state import State
from .target import Target

__all__ = ["ChainState", "Proposal", "local_step", "DIVERGENCE_THRESHOLD", "divergent", "global_block", "KERNELS", "nominal_step_size",
           "within_chain_cholesky", "pooled_cholesky", "skew_and_excess_kurtosis",
           "mass_cholesky", "gradient_step_scale", "GRADIENT_SCALE_MAX", "importance_resample"]

KERNELS = ("mala", "hmc", "rw")
TARGET_ACCEPTANCE = {"mala": 0.574, "hmc": 0.75, "rw": 0.3}
#: a local proposal whose energy error exceeds this is a divergent transition (Stan's
#: threshold); a proposal with a non-finite position, log-density or gradient too
DIVERGENCE_THRESHOLD = 1000.0


@dataclasses.dataclass
class ChainState(State):
    """Positions ``x`` (n, dim), their log-density ``lp`` (n,) and gradient ``grad``
    (n, dim, or None for a kernel without gradients); a part of the checkpoint."""

    x: torch.Tensor
    lp: torch.Tensor
    grad: torch.Tensor | None


class Proposal(Protocol):
    def log_prob(self, x: torch.Tensor) -> torch.Tensor: ...

    def sample_and_log_prob(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]: ...


def nominal_step_size(kernel: str, dim: int) -> float:
    """A step size in whitened coordinates that is about right for a standard normal
    target (the optimal-scaling results), the starting point of adaptation.

    Example:
        >>> round(nominal_step_size("rw", 4), 2)
        1.19
    """
    if kernel == "mala":
        return 1.65 * dim ** (-1 / 3) * 0.8
    if kernel == "hmc":
        return 1.0 * dim ** (-1 / 4) * 0.5
    return 2.38 / math.sqrt(dim)


def _shrunk_cholesky(cov: torch.Tensor, n_points: int, shrink: float) -> torch.Tensor:
    """Cholesky factor of ``cov`` shrunk towards a small diagonal as in Stan's
    warm-up (weight ``shrink / (n_points + shrink)``), diagonal if it is not positive
    definite."""
    dim = cov.shape[0]
    eye = torch.eye(dim, dtype=cov.dtype, device=cov.device)
    scale = cov.diagonal().mean().clamp_min(1e-12)
    cov = n_points / (n_points + shrink) * cov + shrink / (n_points + shrink) * 1e-3 * scale * eye
    chol, info = torch.linalg.cholesky_ex(cov)
    if int(info) != 0 or not torch.isfinite(chol).all():
        chol = torch.diag(cov.diagonal().clamp_min(1e-12).sqrt())
    return chol


def within_chain_cholesky(draws: torch.Tensor, shrink: float = 5.0) -> torch.Tensor:
    """Cholesky factor of the within-chain covariance of ``draws`` (chain, draw, dim):
    the average of each chain's covariance, shrunk towards a small diagonal as in
    Stan's warm-up. Chains sitting in different modes still give the local scale.

    Example:
        >>> d = torch.randn(8, 100, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 0.1])
        >>> [round(v, 1) for v in within_chain_cholesky(d).diagonal().tolist()]
        [1.0, 0.1]
    """
    c, n, dim = draws.shape
    xc = draws - draws.mean(1, keepdim=True)
    cov = torch.einsum("cni,cnj->ij", xc, xc) / max(c * (n - 1), 1)
    return _shrunk_cholesky(cov, c * n, shrink)


def pooled_cholesky(draws: torch.Tensor, shrink: float = 5.0) -> torch.Tensor:
    """Cholesky factor of the covariance of all ``draws`` (chain, draw, dim) pooled
    over chains (shrunk like :func:`within_chain_cholesky`): the target's global
    shape once the chains are spread over it, which short within-chain windows
    underestimate along the wide directions of an ill-conditioned target.

    Example:
        >>> d = torch.randn(8, 100, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 0.1])
        >>> spread = torch.tensor([[-3.0, 0.0], [3.0, 0.0]]).repeat(4, 1)[:, None, :]  # chains apart along x0
        >>> [round(v, 1) for v in pooled_cholesky(d + spread).diagonal().tolist()]
        [3.2, 0.1]
    """
    c, n, dim = draws.shape
    flat = draws.reshape(c * n, dim)
    xc = flat - flat.mean(0)
    return _shrunk_cholesky(xc.T @ xc / max(c * n - 1, 1), c * n, shrink)


def skew_and_excess_kurtosis(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample skewness and excess kurtosis of each column of ``y`` (points, k): both 0
    for a normal; separated modes give a negative excess kurtosis (-2 for two equal
    ones), heavy tails a positive one, a curved (banana) shape a skew.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> two = torch.cat([torch.randn(500, generator=g) - 4, torch.randn(500, generator=g) + 4])
        >>> skew, kurt = skew_and_excess_kurtosis(torch.stack([two, torch.randn(1000, generator=g)], 1))
        >>> [round(v, 1) for v in kurt.tolist()]
        [-1.8, 0.0]
    """
    y = y.double()
    yc = y - y.mean(0)
    var = yc.pow(2).mean(0).clamp_min(1e-300)
    return yc.pow(3).mean(0) / var ** 1.5, yc.pow(4).mean(0) / var ** 2 - 3.0


#: bounds on |skew| and on the excess kurtosis within which the pooled draws count as
#: Gaussian-like (a normal sample of ~2000 points has sd 0.06 and 0.11 for them; chains
#: still spreading out add more; 2-D mixtures gave excess kurtosis -1 to -1.8)
GAUSSIAN_SKEW, GAUSSIAN_KURTOSIS = 0.5, (-0.8, 1.5)


def mass_cholesky(draws: torch.Tensor, shrink: float = 5.0, n_directions: int = 3) -> tuple[torch.Tensor, str]:
    """The mass matrix's Cholesky factor from training draws (chain, draw, dim), and
    which estimator made it (``"pooled"`` or ``"within"``).

    For a near-Gaussian target the pooled covariance is the right preconditioner (the
    within-chain one of short windows underestimates its wide directions: on the
    benchmark's 50-D Gaussian with condition number 1e4 it left R-hat at 1.30 where the
    pooled one reaches 1.03). For separated modes it would mix the distance between
    modes into the local scale, and for curved or heavy-tailed targets (Rosenbrock,
    funnel) the average local covariance served MALA better in the benchmark. So the
    pooled draws are projected on the ``n_directions`` directions where their spread
    exceeds the within-chain spread most (generalized eigenvectors); the pooled
    estimate is used only if every projection looks Gaussian (skew and excess kurtosis
    within ``GAUSSIAN_SKEW`` and ``GAUSSIAN_KURTOSIS``).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> one = torch.randn(16, 30, 2, generator=g) * torch.tensor([3.0, 0.3])
        >>> mass_cholesky(one)[1]
        'pooled'
        >>> modes = torch.tensor([-5.0, 5.0]).repeat(8)[:, None, None]
        >>> mass_cholesky(torch.randn(16, 30, 2, generator=g) + modes)[1]
        'within'
    """
    within = within_chain_cholesky(draws, shrink)
    pooled = pooled_cholesky(draws, shrink)
    c, n, dim = draws.shape
    # generalized eigenvectors of (pooled, within): directions v maximising v'Pv / v'Wv
    a = torch.linalg.solve_triangular(within, pooled, upper=False)
    u = torch.linalg.svd(a)[0][:, : min(n_directions, dim)]
    directions = torch.linalg.solve_triangular(within.T, u, upper=True)
    flat = draws.reshape(c * n, dim)
    skew, kurtosis = skew_and_excess_kurtosis((flat - flat.mean(0)) @ directions)
    low, high = GAUSSIAN_KURTOSIS
    gaussian = bool((skew.abs() < GAUSSIAN_SKEW).all() and (kurtosis > low).all() and (kurtosis < high).all())
    return (pooled, "pooled") if gaussian else (within, "within")


def divergent(energy_error: "torch.Tensor | np.ndarray"):
    """Which transitions diverged: energy error above ``DIVERGENCE_THRESHOLD`` or
    ``+inf`` (NaN, a move without an energy error, is not divergent).

    Example:
        >>> divergent(torch.tensor([0.3, 2000.0, float("inf"), float("nan")])).tolist()
        [False, True, True, False]
    """
    return energy_error > DIVERGENCE_THRESHOLD  # NaN compares False


def _accept(log_alpha: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    log_alpha = torch.nan_to_num(log_alpha, nan=-math.inf)
    u = torch.rand(log_alpha.shape, generator=generator, dtype=log_alpha.dtype, device=log_alpha.device)
    accepted = torch.log(u) < log_alpha
    alpha = torch.exp(log_alpha.clamp(max=0.0))
    return accepted, alpha


def _finite_rows(*tensors: torch.Tensor | None) -> torch.Tensor:
    ok = None
    for t in tensors:
        if t is None:
            continue
        f = torch.isfinite(t) if t.ndim == 1 else torch.isfinite(t).all(-1)
        ok = f if ok is None else ok & f
    return ok


#: ``step_scale="gradient"``: the largest factor by which a flat region (a small
#: gradient, near a mode) widens MALA's step (see :func:`gradient_step_scale`)
GRADIENT_SCALE_MAX = 3.0


def gradient_step_scale(gz: torch.Tensor, top: float = GRADIENT_SCALE_MAX) -> torch.Tensor:
    """The factor of MALA's step size at points whose whitened gradients are ``gz``
    (n, dim): ``(|gz|^2 / dim + 1 / top^2)^(-1/2)``, a column (n, 1).

    In the typical set of a locally Gaussian target of scale ``s`` (in whitened units)
    the gradient is about ``sqrt(dim) / s`` long, so the factor is about ``s``: small
    in a funnel's neck, large in its mouth, near 1 everywhere on a Gaussian that the
    mass matrix has whitened; ``top`` bounds it where the gradient vanishes (a mode).

    Example:
        >>> [round(v, 3) for v in gradient_step_scale(torch.tensor([[1.0, 1.0], [10.0, 10.0], [0.0, 0.0]])).flatten().tolist()]
        [0.949, 0.1, 3.0]
    """
    return (gz.pow(2).sum(-1, keepdim=True) / gz.shape[-1] + top ** -2).rsqrt()


def local_step(kernel: str, target: Target, state: ChainState, eps: "float | torch.Tensor", chol: torch.Tensor,
               generator: torch.Generator, n_leapfrog: int = 8, scale: str = "fixed"
               ) -> tuple[ChainState, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One local move of every chain; returns ``(state, accepted, alpha, energy_error)``.

    ``energy_error`` is minus the log Metropolis-Hastings ratio of the proposal: for
    HMC the change of the Hamiltonian along the trajectory (Stan's and ArviZ's
    ``energy_error``), for MALA and the random walk its analogue; ``+inf`` for a
    proposal with a non-finite position, log-density or gradient. Above
    ``DIVERGENCE_THRESHOLD`` the transition is divergent: the integrator left the
    region where it is accurate, a sign of high curvature (a funnel).

    ``eps`` is one step size for all chains or one per chain (a ``(n,)`` tensor); a
    step size drawn independently of the chain's position leaves each move reversible
    with respect to the target, so the same acceptance ratio holds. With ``scale=
    "gradient"`` MALA's step at ``x`` is ``eps`` times :func:`gradient_step_scale` of
    the gradient at ``x``, a function of the position: the reverse proposal then uses
    the step at the proposed point and the ratio of the proposal densities gains
    ``dim * log(step_x / step_y)``, so the move stays exact (HMC and the random walk
    ignore ``scale``).

    Example:
        >>> t = Target(lambda x: -0.5 * (x ** 2).sum(1), dim=2)
        >>> x = torch.zeros(4, 2); lp, g = t.log_prob_and_grad(x)
        >>> s, acc, alpha, energy = local_step("mala", t, ChainState(x, lp, g), 0.5, torch.eye(2),
        ...                                    torch.Generator().manual_seed(0))
        >>> acc.shape, bool(alpha.min() > 0), bool((energy.abs() < 5).all())
        (torch.Size([4]), True, True)
    """
    x, lp, grad = state.x, state.lp, state.grad
    g = generator
    if torch.is_tensor(eps):
        eps = eps.to(dtype=x.dtype, device=x.device).reshape(-1, 1)
    xi = torch.randn(x.shape, generator=g, dtype=x.dtype, device=x.device)
    if kernel == "rw":
        y = x + eps * xi @ chol.T
        lp_y, grad_y = target.log_prob(y), None
        log_alpha = lp_y - lp
    elif kernel == "mala":
        gz = grad @ chol  # gradient in whitened coordinates (L^T g, row-wise)
        ex = eps * gradient_step_scale(gz) if scale == "gradient" else eps
        y = x + (0.5 * ex ** 2 * gz + ex * xi) @ chol.T
        lp_y, grad_y = target.log_prob_and_grad(y)
        gz_y = grad_y @ chol
        ey = eps * gradient_step_scale(gz_y) if scale == "gradient" else ex
        dz = torch.linalg.solve_triangular(chol, (x - y).T, upper=False).T
        back = (dz - 0.5 * ey ** 2 * gz_y) / ey
        log_alpha = lp_y - lp - 0.5 * (back ** 2).sum(-1) + 0.5 * (xi ** 2).sum(-1)
        if scale == "gradient":  # the proposal densities' normalisers: dim * log(step_x / step_y)
            log_alpha = log_alpha + x.shape[-1] * torch.log(ex / ey).squeeze(-1)
    elif kernel == "hmc":
        p0 = xi
        p = p0 + 0.5 * eps * (grad @ chol)
        y = x
        for i in range(n_leapfrog):
            y = y + eps * p @ chol.T
            lp_y, grad_y = target.log_prob_and_grad(y)
            gz_y = torch.nan_to_num(grad_y @ chol, nan=0.0, posinf=0.0, neginf=0.0)
            p = p + (eps if i < n_leapfrog - 1 else 0.5 * eps) * gz_y
        log_alpha = lp_y - lp - 0.5 * (p ** 2).sum(-1) + 0.5 * (p0 ** 2).sum(-1)
    else:
        raise ValueError(f"kernel: expected one of {', '.join(KERNELS)}, got {kernel!r}")
    ok = _finite_rows(lp_y, grad_y, y) & ~torch.isnan(log_alpha)
    log_alpha = torch.where(ok, log_alpha, torch.full_like(log_alpha, -math.inf))
    accepted, alpha = _accept(log_alpha, g)
    new_x = torch.where(accepted[:, None], y, x)
    new_lp = torch.where(accepted, lp_y, lp)
    new_grad = None if grad is None or grad_y is None else torch.where(accepted[:, None], grad_y, grad)
    return ChainState(new_x, new_lp, new_grad), accepted, alpha, -log_alpha


def global_block(target: Target, proposal: Proposal, state: ChainState, n_steps: int, generator: torch.Generator,
                 proposals: list | None = None
                 ) -> tuple[ChainState, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n_steps`` independence Metropolis-Hastings moves of every chain with a fixed
    proposal. All proposals and their target densities are computed in one batch
    (the proposal does not depend on the chain), then accepted in sequence.

    Returns ``(state, positions (n, steps, dim), lp (n, steps), accepted (n, steps),
    alpha (n, steps))``; the gradient in ``state`` is recomputed for moved chains. With a
    list ``proposals``, every proposal is appended to it as rows ``(y, log p(y), log q(y))``.

    Example:
        >>> from sciml_lab.flowmc.flow import GaussianProposal
        >>> t = Target(lambda x: -0.5 * (x ** 2).sum(1), dim=2)
        >>> x = torch.zeros(3, 2); lp, g = t.log_prob_and_grad(x)
        >>> q = GaussianProposal(torch.zeros(2), torch.eye(2))
        >>> s, xs, lps, acc, alpha = global_block(t, q, ChainState(x, lp, g), 5, torch.Generator().manual_seed(0))
        >>> bool(acc.all())  # proposal == target: every move is accepted
        True
    """
    n, dim = state.x.shape
    y, logq_y = proposal.sample_and_log_prob(n * n_steps, generator)
    y = y.to(state.x.dtype)
    lp_y = target.log_prob(y).reshape(n_steps, n)
    logq_y = logq_y.to(state.x.dtype).reshape(n_steps, n)
    if proposals is not None:
        proposals.append(torch.cat([y, lp_y.reshape(-1, 1), logq_y.reshape(-1, 1)], 1))
    y = y.reshape(n_steps, n, dim)
    u = torch.log(torch.rand((n_steps, n), generator=generator, dtype=state.x.dtype, device=state.x.device))
    x, lp = state.x, state.lp
    logq_x = proposal.log_prob(x).to(x.dtype)
    xs, lps, accs, alphas = [], [], [], []
    moved = torch.zeros(n, dtype=torch.bool, device=x.device)
    for k in range(n_steps):
        log_alpha = lp_y[k] - lp + logq_x - logq_y[k]
        log_alpha = torch.where(torch.isfinite(lp_y[k]) & torch.isfinite(logq_y[k]), log_alpha,
                                torch.full_like(log_alpha, -math.inf))
        log_alpha = torch.nan_to_num(log_alpha, nan=-math.inf)
        acc = u[k] < log_alpha
        x = torch.where(acc[:, None], y[k], x)
        lp = torch.where(acc, lp_y[k], lp)
        logq_x = torch.where(acc, logq_y[k], logq_x)
        moved |= acc
        xs.append(x)
        lps.append(lp)
        accs.append(acc)
        alphas.append(torch.exp(log_alpha.clamp(max=0.0)))
    grad = state.grad
    if grad is not None and bool(moved.any()):
        lp_m, grad_m = target.log_prob_and_grad(x[moved])
        grad = grad.clone()
        grad[moved] = grad_m
        lp = lp.clone()
        lp[moved] = lp_m
    return (ChainState(x, lp, grad), torch.stack(xs, 1), torch.stack(lps, 1), torch.stack(accs, 1),
            torch.stack(alphas, 1))


def importance_resample(proposals: torch.Tensor, share: float, n_points: int, generator: torch.Generator
                        ) -> torch.Tensor:
    """Points to add to ``n_points`` flow-training points so that they make ``share`` of
    the set: drawn with replacement from ``proposals`` (rows ``(y, log p(y), log q(y))``,
    as :func:`global_block` keeps them) with probabilities proportional to the
    importance weights ``p(y) / q(y)``, truncated at ``sqrt(N)`` times their mean
    (truncated importance sampling, Ionides 2008) so that one point cannot take them all,
    and never more points than the weights' effective number ``(sum w)^2 / sum w^2``
    (more would only repeat the same few: on the benchmark's 50-D Gaussian, whose
    weights are nearly degenerate, such repeats halved the ESS).

    The weighted proposals estimate the target itself, not the chains' current spread:
    where the flow is too narrow (a funnel's mouth and neck, a banana's arms), the few
    proposals that land there carry large weights and pull the next fit outwards.

    Example:
        >>> y = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, -50.0], [2.0, 0.0, float("nan")]])
        >>> importance_resample(y, 0.5, 4, torch.Generator().manual_seed(0))  # one weight: one point
        tensor([[1.]])
    """
    m = int(round(n_points * share / (1.0 - share))) if share < 1 else n_points
    lw = (proposals[:, -2] - proposals[:, -1]).double()
    lw = torch.where(torch.isfinite(lw), lw, torch.full_like(lw, -math.inf))
    if m < 1 or not bool(torch.isfinite(lw).any()):
        return proposals[:0, :-2]
    w = torch.exp(lw - lw.max())
    w = torch.minimum(w, w.mean() * math.sqrt(len(w)))
    m = min(m, max(1, int(w.sum() ** 2 / w.pow(2).sum())))  # no more points than the weights' effective number
    idx = torch.multinomial(w, m, replacement=True, generator=generator)
    return proposals[idx.to(proposals.device), :-2]

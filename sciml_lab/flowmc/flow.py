"""The global proposal: a whitened coupling flow with rational-quadratic splines.

Chain states are first whitened with the mean and the Cholesky factor of their
covariance (so the flow sees roughly standard data, where zuko's splines act, on
[-5, 5], and so that correlations are learned by a linear map for free), then a
stack of coupling layers with monotonic rational-quadratic splines models what is
left. It is trained by maximum likelihood on recent chain states and used as an
independence Metropolis-Hastings proposal, so its density must be exact: both
``sample_and_log_prob`` and ``log_prob`` include the whitening's Jacobian.

References:
    | Neural Spline Flows (Durkan et al., 2019) https://arxiv.org/abs/1906.04032
    | Adaptive Monte Carlo augmented with normalizing flows
    | (Gabrié, Rotskoff & Vanden-Eijnden, PNAS 2022) https://doi.org/10.1073/pnas.2109420119
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import zuko
from torch import nn

__all__ = ["FlowProposal", "GaussianProposal"]


def _coupling_flow(dim: int, layers: int, hidden: tuple[int, ...], bins: int) -> zuko.flows.Flow:
    transforms = []
    for i in range(layers):
        mask = torch.arange(dim) % 2 == i % 2
        if dim > 2 and i >= 2:  # beyond the first pair, vary the split so every pair of coordinates meets
            g = torch.Generator().manual_seed(i)
            mask = torch.randperm(dim, generator=g) % 2 == 0
        transforms.append(zuko.flows.GeneralCouplingTransform(
            dim, mask=mask, univariate=zuko.transforms.MonotonicRQSTransform,
            shapes=[(bins,), (bins,), (bins - 1,)], hidden_features=tuple(hidden)))
    base = zuko.flows.UnconditionalDistribution(
        zuko.distributions.DiagNormal, torch.zeros(dim), torch.ones(dim), buffer=True)
    return zuko.flows.Flow(transforms, base)


def _start_at_identity(flow: zuko.flows.Flow) -> None:
    """Zero the output layer of every coupling network (and the parameters of 1-D
    element-wise splines): all-zero spline parameters are the identity map, so the
    untrained proposal is exactly the whitening Gaussian, already a good proposal for
    near-Gaussian targets; training then learns only what is not Gaussian."""
    with torch.no_grad():
        for module in flow.modules():
            if isinstance(module, zuko.flows.GeneralCouplingTransform):
                last = [m for m in module.hyper.modules() if hasattr(m, "weight") and hasattr(m, "bias")][-1]
                last.weight.zero_()
                last.bias.zero_()
            elif isinstance(module, zuko.flows.ElementWiseTransform):
                for p in module.parameters():
                    p.zero_()


class FlowProposal(nn.Module):
    """Whitening + coupling spline flow, trained by maximum likelihood.

    Arguments:
        dim: number of (unconstrained) coordinates.
        layers: coupling layers.
        hidden: hidden widths of each coupling layer's network.
        bins: spline bins.
        learning_rate: Adam's learning rate.
        seed: seed of the weight initialisation (the global RNG is left untouched).

    Example:
        >>> q = FlowProposal(2, seed=0)
        >>> x = torch.randn(500, 2) * torch.tensor([1.0, 3.0])
        >>> loss = q.fit(x, epochs=2, generator=torch.Generator().manual_seed(0))
        >>> y, lq = q.sample_and_log_prob(4, torch.Generator().manual_seed(1))
        >>> torch.allclose(lq, q.log_prob(y), atol=1e-4)
        True
    """

    def __init__(self, dim: int, layers: int = 4, hidden: tuple[int, ...] = (64, 64), bins: int = 8,
                 learning_rate: float = 1e-3, seed: int = 0, defensive: float = 0.1, defensive_scale: float = 2.0):
        super().__init__()
        self.dim = int(dim)
        if not 0.0 <= defensive < 1.0:
            raise ValueError(f"defensive: expected a weight in [0, 1), got {defensive!r}")
        self.defensive, self.defensive_scale = float(defensive), float(defensive_scale)
        #: scale of the base normal when sampling; above 1 the proposal reaches a little
        #: beyond the states it was trained on (along the flow's learned geometry)
        self.temperature = 1.0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.flow = _coupling_flow(self.dim, layers, tuple(hidden), bins)
        _start_at_identity(self.flow)
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("chol", torch.eye(dim))
        self.learning_rate = float(learning_rate)
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=self.learning_rate)

    def _rebuild_optimizer(self) -> None:
        self.optimizer = torch.optim.Adam(self.flow.parameters(), lr=self.learning_rate)

    def to(self, *args, **kwargs) -> "FlowProposal":  # keep the optimizer on the parameters' device
        super().to(*args, **kwargs)
        self._rebuild_optimizer()
        return self

    # ------------------------------------------------------------------ whitening
    def set_whitening(self, x: torch.Tensor) -> None:
        """Whiten with the mean and covariance of ``x`` (rows are points)."""
        with torch.no_grad():
            mean = x.mean(0)
            xc = x - mean
            cov = xc.T @ xc / max(len(x) - 1, 1)
            jitter = 1e-6 * cov.diagonal().mean().clamp_min(1e-12)
            eye = torch.eye(self.dim, dtype=x.dtype, device=x.device)
            chol, info = torch.linalg.cholesky_ex(cov + jitter * eye)
            if int(info) != 0 or not torch.isfinite(chol).all():
                chol = torch.diag(cov.diagonal().clamp_min(1e-12).sqrt())
            self.shift.copy_(mean)
            self.chol.copy_(chol)

    def _whiten(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve_triangular(self.chol, (x - self.shift).T, upper=False).T

    def _log_det_chol(self) -> torch.Tensor:
        return torch.log(self.chol.diagonal()).sum()

    # ------------------------------------------------------------------ density
    def _log_wide(self, z: torch.Tensor) -> torch.Tensor:
        s = self.defensive_scale
        return (-0.5 * (z / s).pow(2).sum(-1) - self.dim * (math.log(s) + 0.5 * math.log(2 * math.pi)))

    def _mix(self, log_flow: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.defensive == 0.0:
            return log_flow
        return torch.logaddexp(math.log1p(-self.defensive) + log_flow,
                               math.log(self.defensive) + self._log_wide(z))

    def _log_base(self, eps: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        return -0.5 * (eps / t).pow(2).sum(-1) - self.dim * (math.log(t) + 0.5 * math.log(2 * math.pi))

    def _log_flow(self, z: torch.Tensor) -> torch.Tensor:
        eps, ladj = self.flow().transform.call_and_ladj(z)
        return self._log_base(eps) + ladj

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log-density of the proposal at ``x`` (chain space)."""
        with torch.no_grad():
            z = self._whiten(x)
            return self._mix(self._log_flow(z), z) - self._log_det_chol()

    def sample_and_log_prob(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` independent draws and their exact log-density (reproducible with ``generator``).

        With probability ``defensive`` a draw comes from a wide Gaussian (``defensive_scale``
        times the whitening scale) instead of the flow: the mixture's tails are never
        lighter than that Gaussian's, so a chain far in the target's tails, where the
        flow has little mass, can still be moved (defensive importance sampling,
        Hesterberg 1995).
        """
        with torch.no_grad():
            dist = self.flow()
            kw = dict(dtype=self.chol.dtype, device=self.chol.device)
            noise = torch.randn(n, self.dim, generator=generator, **kw)
            wide = torch.rand(n, generator=generator, **kw) < self.defensive
            eps = noise * self.temperature
            z, ladj = dist.transform.inv.call_and_ladj(eps)
            log_flow = self._log_base(eps) - ladj
            if bool(wide.any()):
                zw = noise[wide] * self.defensive_scale
                z = z.clone()
                z[wide] = zw
                log_flow = log_flow.clone()
                log_flow[wide] = self._log_flow(zw)
            logq = self._mix(log_flow, z) - self._log_det_chol()
            x = z @ self.chol.T + self.shift
        return x, logq

    # ------------------------------------------------------------------ training
    def fit(self, x: torch.Tensor, epochs: int, generator: torch.Generator, batch_size: int = 1024) -> float:
        """Maximum-likelihood epochs on ``x``; returns the mean negative log-likelihood
        (chain space, nats per point) of the last epoch."""
        z = self._whiten(x.detach())
        n = len(z)
        batch_size = max(1, min(batch_size, n))
        last = math.nan
        for _ in range(int(epochs)):
            order = torch.randperm(n, generator=generator, device=generator.device).to(z.device)
            total, count = 0.0, 0
            for i in range(0, n - batch_size + 1, batch_size):
                batch = z[order[i:i + batch_size]]
                loss = -self.flow().log_prob(batch).mean()
                if not torch.isfinite(loss):
                    continue  # skip a degenerate batch rather than poison the weights
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.flow.parameters(), 10.0)
                self.optimizer.step()
                total += loss.item() * len(batch)
                count += len(batch)
            if count:
                last = total / count + float(self._log_det_chol())
        return last

    # ------------------------------------------------------------------ checkpoint
    def checkpoint(self) -> dict[str, Any]:
        """Weights, whitening and optimizer state (tensors, numbers, dicts, lists only)."""
        opt = self.optimizer.state_dict()
        groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt["param_groups"]]
        return {"module": dict(self.state_dict()), "optimizer": {"state": opt["state"], "param_groups": groups}}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`checkpoint`."""
        self.load_state_dict(state["module"])
        opt = state["optimizer"]
        groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in opt["param_groups"]]
        self.optimizer.load_state_dict({"state": opt["state"], "param_groups": groups})


class GaussianProposal:
    """A fixed multivariate normal proposal with the same interface as
    :class:`FlowProposal` (used to check the global kernel's exactness).

    Example:
        >>> q = GaussianProposal(torch.zeros(2), torch.eye(2))
        >>> x, lq = q.sample_and_log_prob(3, torch.Generator().manual_seed(0))
        >>> torch.allclose(lq, q.log_prob(x))
        True
    """

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor):
        self.mean, self.chol = mean, torch.linalg.cholesky(cov)
        self.dist = torch.distributions.MultivariateNormal(mean, scale_tril=self.chol)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(x)

    def sample_and_log_prob(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        eps = torch.randn(n, len(self.mean), generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        x = self.mean + eps @ self.chol.T
        return x, self.dist.log_prob(x)

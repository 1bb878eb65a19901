"""A deep ensemble of small MLPs with a Gaussian output head, for large budgets and
many outputs.

Each member predicts a mean and a log-variance per output and is trained by
Gaussian negative log-likelihood from its own random initialisation; the ensemble's
prediction is the mixture's mean and variance (spread between members plus their
mean predicted variance).

References:
    | Simple and Scalable Predictive Uncertainty Estimation using Deep Ensembles
    | (Lakshminarayanan, Pritzel & Blundell, NeurIPS 2017) https://arxiv.org/abs/1612.01474
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
from torch import nn

__all__ = ["DeepEnsemble"]


class DeepEnsemble(nn.Module):
    """``n_members`` MLPs evaluated together as one batched network.

    Arguments:
        dim: number of inputs (expected in [0, 1]).
        n_outputs: number of outputs (expected standardised).
        n_members: ensemble size.
        hidden: hidden widths.

    Example:
        >>> x = torch.rand(200, 2)
        >>> y = torch.sin(4 * x[:, :1]) * x[:, 1:]
        >>> ens = DeepEnsemble(2, 1, n_members=3, hidden=(32, 32)).fit(x, y, steps=200)
        >>> mean, var = ens(torch.rand(4, 2))
        >>> mean.shape
        torch.Size([4, 1])
    """

    def __init__(self, dim: int, n_outputs: int = 1, n_members: int = 5, hidden: Sequence[int] = (64, 64)):
        super().__init__()
        self.dim, self.n_outputs, self.n_members, self.hidden = int(dim), int(n_outputs), int(n_members), tuple(hidden)
        widths = (self.dim, *self.hidden, 2 * self.n_outputs)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(widths[:-1], widths[1:]):
            w = torch.empty(self.n_members, a, b)
            for i in range(self.n_members):
                nn.init.kaiming_uniform_(w[i].T, a=math.sqrt(5))
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(self.n_members, 1, b)))

    def members(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's mean and variance: two ``(n_members, n, m)`` tensors."""
        return self._forward_members(x.to(self.weights[0]).unsqueeze(0).expand(self.n_members, -1, -1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixture mean and variance ``(n, m)``, differentiable with respect to ``x``."""
        mean, var = self.members(x)
        mu = mean.mean(0)
        return mu, (var + mean * mean).mean(0) - mu * mu

    def _forward_members(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < len(self.weights) - 1:
                h = torch.nn.functional.silu(h)
        mean, raw = h.split(self.n_outputs, dim=-1)
        return mean, torch.nn.functional.softplus(raw) + 1e-6

    def fit(self, x: torch.Tensor, y: torch.Tensor, steps: int = 1000, batch_size: int = 256, lr: float = 3e-3,
            weight_decay: float = 1e-5, beta: float = 0.5, generator: torch.Generator | None = None) -> "DeepEnsemble":
        """Train every member on all of ``(x, y)`` (each on its own mini-batches) with Adam,
        a cosine learning-rate schedule and the β-NLL loss (Seitzer et al., ICLR 2022,
        https://arxiv.org/abs/2203.09168), which keeps the mean from being neglected
        where the predicted variance is large. The count is in gradient steps, not
        epochs, so a small design is trained as thoroughly as a large one.

        Example:
            >>> ens = DeepEnsemble(1, 1, n_members=2, hidden=(8,)).fit(torch.rand(50, 1), torch.rand(50, 1), steps=5)
            >>> ens.n_members
            2
        """
        x, y = x.to(self.weights[0]), y.to(self.weights[0])
        n, dev = len(x), x.device
        b = min(int(batch_size), n)
        opt = torch.optim.Adam(self.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(steps), 1))
        self.train()
        for _ in range(int(steps)):
            if b == n:
                xb, yb = x.expand(self.n_members, -1, -1), y.expand(self.n_members, -1, -1)
            else:
                idx = torch.randint(0, n, (self.n_members, b), generator=generator).to(dev)
                xb, yb = x[idx], y[idx]
            mean, var = self._forward_members(xb)
            nll = 0.5 * (torch.log(var) + (yb - mean) ** 2 / var)
            loss = (nll * var.detach() ** beta).mean() if beta else nll.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        self.eval()
        return self

    def extra_state(self) -> dict[str, Any]:
        return {"dim": self.dim, "n_outputs": self.n_outputs, "n_members": self.n_members, "hidden": list(self.hidden)}

    @classmethod
    def from_state(cls, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> "DeepEnsemble":
        ens = cls(int(config["dim"]), int(config["n_outputs"]), int(config["n_members"]), tuple(config["hidden"]))
        ens.load_state_dict(tensors)
        return ens

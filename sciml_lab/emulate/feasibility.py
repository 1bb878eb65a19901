"""Where the simulator succeeds: a Gaussian-process classifier of run success over the inputs.

A simulator that fails in part of the box (a solver that diverges, a mesh that
tangles) would otherwise attract the active learning: the emulator knows least
where it has no data, and it has no data exactly where runs fail. The classifier
is fitted on the success / failure of every run so far; its probability of success
weighs the acquisition, so new runs go where they are both informative and likely
to succeed, and it describes the failure region in the result.

The model is a GP prior on a latent function (isotropic Matérn-5/2 on the unit
cube, constant prior mean at the logit of the observed success share) with a
logistic likelihood. The posterior is the Laplace approximation; the predictive
probability the probit approximation of the logistic-Gaussian integral. The
length scale and signal variance are the best of a small grid by the Laplace
approximation of the marginal likelihood (a handful of Newton solves: cheap next
to the emulator's own fit).

References:
    | Rasmussen & Williams, Gaussian Processes for Machine Learning (MIT Press 2006),
    | section 3.4 (Laplace approximation, algorithms 3.1 and 3.2) and 3.4.2 (probit
    | approximation of the predictive probability) http://gaussianprocess.org/gpml/
    | Gelbart, Snoek & Adams, "Bayesian optimization with unknown constraints" (UAI 2014):
    | the acquisition weighted by the probability of feasibility https://arxiv.org/abs/1403.5607
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .gp import matern52

__all__ = ["SuccessClassifier"]

# length scales (unit cube) and signal variances tried; the largest variance lets a
# deterministic boundary become confident (P(success) ~ 1e-3 deep inside a failed region)
_LENGTHSCALES = (0.05, 0.1, 0.2, 0.4, 0.8)
_VARIANCES = (1.0, 10.0, 100.0)
_NEWTON_ITER = 30
_LBFGS_ITER = 30
# bounds of the length scales (20: an input without effect) and of the latent variance
_LOG_LS = (math.log(0.02), math.log(20.0))
_LOG_VAR = (math.log(0.1), math.log(400.0))


def _clamp(theta: torch.Tensor) -> torch.Tensor:
    """Log length scales and log variance ``(d + 1,)`` clamped to their bounds."""
    return torch.cat([theta[:-1].clamp(*_LOG_LS), theta[-1:].clamp(*_LOG_VAR)])


class SuccessClassifier:
    """Probability that a simulator run succeeds, as a function of its unit-cube inputs.

    Arguments:
        max_points: runs the classifier is fitted on at most (a random subset
            beyond, the same for a given ``seed``: the cost is cubic).
        seed: the subset's seed.

    Example:
        >>> u = np.random.default_rng(0).uniform(size=(60, 2))
        >>> clf = SuccessClassifier().fit(u, u[:, 0] < 0.7)
        >>> p = clf.predict(np.array([[0.2, 0.5], [0.95, 0.5]]))
        >>> bool(p[0] > 0.6 and p[1] < 0.4)
        True
    """

    def __init__(self, max_points: int = 400, seed: int = 0):
        self.max_points, self.seed = int(max_points), int(seed)
        self.theta = torch.zeros(0, dtype=torch.float64)  # log length scales, log variance
        self.prior_mean = 0.0
        self.log_evidence = -math.inf
        self._x = torch.zeros(0, 0, dtype=torch.float64)

    def fit(self, u: np.ndarray, ok: np.ndarray) -> "SuccessClassifier":
        """Fit on inputs ``u`` ``(n, d)`` in the unit cube and success flags ``ok`` ``(n,)``."""
        u = np.asarray(u, dtype=float)
        ok = np.asarray(ok, dtype=bool).reshape(-1)
        if u.ndim != 2 or len(u) != len(ok) or len(u) == 0:
            raise ValueError(f"u, ok: expected inputs (n, d) and n success flags, got {u.shape} and {ok.shape}")
        if len(u) > self.max_points:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(u), self.max_points, replace=False))
            u, ok = u[keep], ok[keep]
        x = torch.as_tensor(u, dtype=torch.float64)
        t = torch.as_tensor(ok, dtype=torch.float64)
        d = x.shape[1]
        # the prior mean: the observed success share, shrunk (one pseudo-run each way)
        share = (float(t.sum()) + 1.0) / (len(t) + 2.0)
        self.prior_mean = math.log(share / (1.0 - share))
        # a coarse isotropic grid, then the ARD length scales and the variance by L-BFGS
        best = None
        for ls in _LENGTHSCALES:
            for var in _VARIANCES:
                theta = torch.tensor([math.log(ls)] * d + [math.log(var)], dtype=torch.float64)
                ev = -float(self._neg_evidence(theta, x, t, torch.zeros(len(t), dtype=torch.float64))[0])
                if best is None or ev > best[0]:
                    best = (ev, theta)
        theta = best[1].clone().requires_grad_(True)
        mode = torch.zeros(len(t), dtype=torch.float64)
        opt = torch.optim.LBFGS([theta], lr=0.5, max_iter=_LBFGS_ITER, line_search_fn="strong_wolfe")

        def closure():
            nonlocal mode
            opt.zero_grad()
            loss, mode = self._neg_evidence(theta, x, t, mode)
            loss.backward()
            return loss

        try:
            opt.step(closure)
        except RuntimeError:  # a failed factorisation mid line-search: keep the grid's best
            pass
        with torch.no_grad():
            theta = _clamp(theta.detach())
            loss, mode = self._neg_evidence(theta, x, t, torch.zeros(len(t), dtype=torch.float64))
            if not math.isfinite(float(loss)) or -float(loss) < best[0]:
                theta = best[1]
        self.theta = theta.clone()
        self._x = x
        self._posterior(t)
        return self

    @property
    def lengthscale(self) -> np.ndarray:
        """Fitted length scales per input (unit cube)."""
        return self.theta[:-1].exp().numpy()

    @property
    def variance(self) -> float:
        """Fitted variance of the latent logit."""
        return float(self.theta[-1].exp())

    @staticmethod
    def _kernel(a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return matern52(a, b, theta[None, :-1].exp(), theta[-1:].exp())[0]

    def _newton(self, k: torch.Tensor, t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """One Newton step for the posterior mode of the latent minus the prior mean
        (R&W algorithm 3.1); returns the new mode and ``a = K^-1 g``."""
        p = torch.sigmoid(g + self.prior_mean)
        w = (p * (1 - p)).clamp_min(1e-12)
        sw = w.sqrt()
        chol = torch.linalg.cholesky(torch.eye(len(t), dtype=k.dtype) + sw[:, None] * k * sw[None, :])
        b = w * g + (t - p)
        a = b - sw * torch.cholesky_solve((sw * (k @ b))[:, None], chol)[:, 0]
        return k @ a, a

    def _neg_evidence(self, theta: torch.Tensor, x: torch.Tensor, t: torch.Tensor, g0: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Minus the Laplace log evidence per run at log hyper-parameters ``theta``,
        and the mode. The mode is found without gradients, from ``g0``; one more
        Newton step on the graph then carries the exact first derivative of the mode
        (a Newton map's Jacobian vanishes at its fixed point)."""
        theta = _clamp(theta)
        k = self._kernel(x, x, theta)
        with torch.no_grad():
            g = g0.detach()
            for _ in range(_NEWTON_ITER):
                g_new = self._newton(k, t, g)[0]
                if float((g_new - g).abs().max()) < 1e-8:
                    g = g_new
                    break
                g = g_new
        g, a = self._newton(k, t, g)
        f = g + self.prior_mean
        loglik = (t * f - torch.nn.functional.softplus(f)).sum()
        p = torch.sigmoid(f)
        sw = (p * (1 - p)).clamp_min(1e-12).sqrt()
        chol = torch.linalg.cholesky(torch.eye(len(t), dtype=k.dtype) + sw[:, None] * k * sw[None, :])
        log_evidence = -0.5 * (a * g).sum() + loglik - chol.diagonal().log().sum()
        return -log_evidence / len(t), g.detach()

    @torch.no_grad()
    def _posterior(self, t: torch.Tensor) -> None:
        k = self._kernel(self._x, self._x, self.theta)
        loss, g = self._neg_evidence(self.theta, self._x, t, torch.zeros(len(t), dtype=torch.float64))
        self.log_evidence = -float(loss) * len(t)
        p = torch.sigmoid(g + self.prior_mean)
        self._sw = (p * (1 - p)).clamp_min(1e-12).sqrt()
        self._chol = torch.linalg.cholesky(torch.eye(len(t), dtype=k.dtype) + self._sw[:, None] * k * self._sw[None, :])
        self._grad = t - p

    def latent(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and variance of the latent logit at ``u`` ``(m, d)`` (R&W algorithm 3.2)."""
        if self._x.shape[0] == 0:
            raise RuntimeError("the classifier is not fitted yet: call fit(u, ok)")
        xs = torch.as_tensor(np.asarray(u, dtype=float), dtype=torch.float64)
        ks = self._kernel(self._x, xs, self.theta)  # (n, m)
        mean = self.prior_mean + ks.T @ self._grad
        v = torch.linalg.solve_triangular(self._chol, self._sw[:, None] * ks, upper=False)
        var = (self.variance - (v * v).sum(0)).clamp_min(0)
        return mean.numpy(), var.numpy()

    def predict(self, u: np.ndarray) -> np.ndarray:
        """Probability of success at unit-cube inputs ``u`` ``(m, d)``: the probit
        approximation ``sigmoid(mean / sqrt(1 + pi var / 8))`` of the predictive."""
        mean, var = self.latent(u)
        return 1.0 / (1.0 + np.exp(-mean / np.sqrt(1.0 + math.pi * var / 8.0)))

    def marginals(self, d: int, n_grid: int = 41, n_other: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Per input, the probability of success averaged over the other inputs
        (uniform over the box): grid ``(n_grid,)`` in the unit interval and the
        averages ``(d, n_grid)``."""
        from scipy.stats import qmc

        grid = np.linspace(0.0, 1.0, n_grid)
        others = qmc.Sobol(d, scramble=True, seed=seed).random(n_other)
        out = np.empty((d, n_grid))
        for i in range(d):
            u = np.repeat(others[None], n_grid, 0)  # (n_grid, n_other, d)
            u[:, :, i] = grid[:, None]
            out[i] = self.predict(u.reshape(-1, d)).reshape(n_grid, n_other).mean(1)
        return grid, out

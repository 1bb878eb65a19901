"""Exact GPs for many outputs that share one kernel (:class:`SharedGP`), e.g. the
principal components of a curve: one Cholesky factorisation for all of them.

Example:
    >>> x = torch.linspace(0, 1, 12, dtype=torch.float64)[:, None]
    >>> gp = SharedGP(1, 3).fit(x, torch.cat([x, -x, x ** 2], 1), max_iter=20)
    >>> gp.hypers()[0].shape, gp.hypers()[1].shape
    (torch.Size([1, 1]), torch.Size([3]))
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .gp import _JITTER, _LOG_LS, _LOG_NOISE, _LOG_SCALE, _PRIOR_SD, ExactGP, matern52

__all__ = ["SharedGP"]


class SharedGP(ExactGP):
    """Exact GPs for many outputs that share one kernel: one set of ARD length scales
    and one noise-to-signal ratio.

    All outputs then have the same correlation matrix, so a likelihood evaluation
    costs one Cholesky factorisation of ``n x n`` whatever the number of outputs
    (:class:`ExactGP` needs one per output), and the posterior mean does not change
    under a linear map of the outputs (a PCA rotation). This suits the components
    of a functional output: fitted one by one, the trailing ones (little variance,
    little signal) get poorly determined scales of their own.

    The kernel is fitted to the likelihood of all outputs with one signal variance
    (profiled out), so each output weighs by its variance: on PCA scores in their own
    units this is the likelihood of a GP on the standardised columns they rotate,
    the multi-output model of scikit-learn's ``GaussianProcessRegressor``. Given the
    kernel, each output then gets its own maximum-likelihood signal variance (and
    noise, at the shared ratio) for its predictive variance, and its own trend.

    The interface is :class:`ExactGP`'s; :meth:`hypers` returns length scales
    ``(1, d)``, and signal and noise variances ``(m,)``.

    Example:
        >>> x = torch.rand(40, 2, dtype=torch.float64)
        >>> t = torch.linspace(0, 1, 30, dtype=torch.float64)
        >>> y = torch.sin(4 * x[:, :1] + 3 * t) * (1 + x[:, 1:])  # a curve per run
        >>> gp = SharedGP(2, 30).fit(x, (y - y.mean(0)) / y.std(0), max_iter=50)
        >>> mean, var = gp(torch.rand(5, 2, dtype=torch.float64))
        >>> mean.shape, var.shape, tuple(gp.chol.shape)
        (torch.Size([5, 30]), torch.Size([5, 30]), (1, 40, 40))
    """

    def __init__(self, dim: int, n_outputs: int = 1, mean: str = "constant"):
        super().__init__(dim, n_outputs, mean)
        f64 = torch.float64
        self.log_lengthscale = nn.Parameter(torch.full((1, dim), math.log(0.3), dtype=f64))
        # the signal variances are profiled (set by condition()), not optimised
        del self.log_outputscale
        self.register_buffer("log_outputscale", torch.zeros(n_outputs, dtype=f64))
        # the noise variance of each output as a share of its signal variance
        self.log_noise = nn.Parameter(torch.full((1,), math.log(1e-4), dtype=f64))
        self.chol = torch.zeros(1, 0, 0, dtype=f64)

    def hypers(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Length scales ``(1, d)``, signal variances ``(m,)`` and noise variances ``(m,)``."""
        ls = self.log_lengthscale.clamp(*_LOG_LS).exp()
        os_ = self.log_outputscale.clamp(*_LOG_SCALE).exp()
        return ls, os_, os_ * self.log_noise.clamp(*_LOG_NOISE).exp()

    def _correlation(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The shared kernel with unit signal variance, ``(na, nb)``."""
        ls = self.log_lengthscale.clamp(*_LOG_LS).exp()
        return matern52(a, b, ls, ls.new_ones(1))[0]

    def _kernel_matrix(self, x: torch.Tensor) -> torch.Tensor:
        ratio = self.log_noise.clamp(*_LOG_NOISE).exp()
        eye = torch.eye(len(x), dtype=x.dtype, device=x.device)
        return (self._correlation(x, x) + (ratio + _JITTER) * eye).unsqueeze(0)  # (1, n, n)

    def _gls_weights(self, x: torch.Tensor, y: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
        h = self._basis(x)
        if h.shape[1] == 0:
            return h.new_zeros(self.n_outputs, 0)
        kinv_h = torch.cholesky_solve(h, chol[0])  # (n, p), one solve for all outputs
        a = h.T @ kinv_h
        a = a + 1e-10 * a.diagonal().mean() * torch.eye(h.shape[1], dtype=h.dtype, device=h.device)
        return torch.linalg.solve(a, kinv_h.T @ y).T  # (m, p)

    def _profile(self, x: torch.Tensor, y: torch.Tensor, chol: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trend weights ``(m, p)``, ``C^-1 r`` ``(n, m)`` and the maximum-likelihood
        signal variances ``(m,)`` for the correlation factor ``chol``."""
        weights = self._gls_weights(x, y, chol)
        r = y - self.mean_function(x, weights)
        alpha = torch.cholesky_solve(r, chol[0])
        # floor: an output the kernel interpolates exactly would send log(0) to -inf
        scale = ((r * alpha).sum(0) / len(x)).clamp_min(math.exp(_LOG_SCALE[0]) * 1e-6)
        return weights, alpha, scale

    def neg_log_marginal_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Negative log marginal likelihood per point and per output, with one signal
        variance for all outputs and each output's trend at their maximum-likelihood
        values, plus the weak length-scale prior of :class:`ExactGP`."""
        n = len(x)
        chol = self._cholesky(self._kernel_matrix(x))
        _, _, scale = self._profile(x, y, chol)
        logdet = chol[0].diagonal().log().sum()
        nll = 0.5 * scale.mean().log() + logdet / n + 0.5 * (1 + math.log(2 * math.pi))
        prior = 0.5 * ((self.log_lengthscale - math.log(0.5)) ** 2).sum() / _PRIOR_SD ** 2
        return nll + prior / n

    @torch.no_grad()
    def condition(self, x: torch.Tensor, y: torch.Tensor) -> "SharedGP":
        """Store the training data, the Cholesky factor of the correlation matrix and
        the profiled signal variances and trends (no fitting of the kernel)."""
        self.x_train, self.y_train = x.to(self.log_noise).clone(), y.to(self.log_noise).clone()
        self.chol = self._cholesky(self._kernel_matrix(self.x_train))
        self.mean_weights, alpha, scale = self._profile(self.x_train, self.y_train, self.chol)
        self.alpha = alpha.T.contiguous()  # (m, n): C^-1 r, the posterior mean's weights
        self.log_outputscale = scale.log().clamp(*_LOG_SCALE)
        return self

    def _whitened(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ks = self._correlation(self.x_train, x)  # (n, N)
        return ks, torch.linalg.solve_triangular(self.chol[0], ks, upper=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and variance ``(n, m)`` of the latent functions at ``x``;
        differentiable with respect to ``x``."""
        x = x.to(self.x_train)
        ks, v = self._whitened(x)
        mean = ks.T @ self.alpha.T + self.mean_function(x)
        corr = (1 - (v * v).sum(0)).clamp_min(1e-12)  # (N,): the same for every output
        return mean, corr[:, None] * self.hypers()[1][None, :]

    @torch.no_grad()
    def loo(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed-form leave-one-out means and variances ``(n, m)`` (GPML eq. 5.12)."""
        eye = torch.eye(len(self.x_train), dtype=self.chol.dtype, device=self.chol.device)
        diag = torch.cholesky_solve(eye, self.chol[0]).diagonal()  # (n,)
        mean = self.y_train - (self.alpha / diag).T
        return mean, self.hypers()[1][None, :] / diag[:, None]

    @torch.no_grad()
    def _posterior_correlation(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        va, vb = self._whitened(a)[1], self._whitened(b)[1]
        return self._correlation(a, b) - va.T @ vb

    @torch.no_grad()
    def posterior_covariance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Posterior covariance ``(m, na, nb)`` of the latent functions between point sets."""
        return self.hypers()[1][:, None, None] * self._posterior_correlation(a, b)[None]

    @torch.no_grad()
    def sample_joint(self, x: torch.Tensor, n_draws: int = 64, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """Exact joint draws ``(n_draws, N, m)`` at ``x`` ``(N, d)``: one Cholesky
        factorisation of the ``N x N`` posterior correlation serves all outputs.

        Example:
            >>> x = torch.rand(20, 1, dtype=torch.float64)
            >>> gp = SharedGP(1, 3).fit(x, torch.cat([torch.sin(5 * x), x, x ** 2], 1), max_iter=30)
            >>> gp.sample_joint(torch.rand(5, 1, dtype=torch.float64), 8).shape
            torch.Size([8, 5, 3])
        """
        x = x.to(self.x_train)
        mean, _ = self(x)
        corr = self._posterior_correlation(x, x)
        eye = torch.eye(len(x), dtype=corr.dtype, device=corr.device)
        chol = self._cholesky((corr + 1e-10 * eye)[None])[0]
        z = torch.randn(self.n_outputs, len(x), n_draws, generator=generator, dtype=corr.dtype).to(corr)
        draws = mean.T.unsqueeze(-1) + self.hypers()[1].sqrt()[:, None, None] * (chol @ z)
        return draws.permute(2, 1, 0)

    def correlation_view(self) -> ExactGP:
        """A one-output :class:`ExactGP` with this model's kernel at unit signal
        variance, sharing its training points and factor: every output's posterior
        variance is this one's times its signal variance, so a variance-driven choice
        of new runs can work on it alone.

        Example:
            >>> x = torch.rand(20, 1, dtype=torch.float64)
            >>> gp = SharedGP(1, 2).fit(x, torch.cat([torch.sin(5 * x), x], 1), max_iter=30)
            >>> u = torch.rand(4, 1, dtype=torch.float64)
            >>> torch.allclose(gp.correlation_view()(u)[1][:, 0] * gp.hypers()[1][1], gp(u)[1][:, 1])
            True
        """
        view = ExactGP(self.dim, 1, "zero")
        with torch.no_grad():
            view.log_lengthscale.copy_(self.log_lengthscale.detach())
            view.log_outputscale.zero_()
            view.log_noise.copy_(self.log_noise.detach())
        view.x_train, view.chol = self.x_train, self.chol
        view.y_train = self.x_train.new_zeros(len(self.x_train), 1)
        view.alpha = self.x_train.new_zeros(1, len(self.x_train))
        return view

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "kernel": "shared"}

"""A compact exact Gaussian process in torch: ARD Matérn-5/2, fitted by marginal likelihood.

Inputs are expected in the unit cube and outputs standardised (the :class:`Emulator`
does both); several outputs are fitted as independent GPs in one batch, each with
its own length scales, signal variance and noise (:class:`ExactGP`), or, for many
outputs such as the principal components of a curve, as GPs that share one kernel
(:class:`~sciml_lab.emulate.sharedgp.SharedGP`: one Cholesky factorisation for all
of them). Float64 throughout: the Cholesky factor of a kernel matrix of a
deterministic simulator is badly conditioned in float32.

References:
    | Gaussian Processes for Machine Learning (Rasmussen & Williams, MIT Press 2006),
    | chapters 2 (prediction), 4.2 (Matérn class) and 5.4 (marginal likelihood, LOO-CV)
    | http://gaussianprocess.org/gpml/
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["ExactGP", "SharedGP", "matern52"]

_SQRT5 = math.sqrt(5.0)
# Bounds on hyper-parameters in unit-cube / standardised units: a length scale beyond
# 1e3 is a switched-off input; a noise at the 1e-10 floor is a deterministic simulator.
# The floor and the fixed 1e-10 diagonal jitter match scikit-learn's WhiteKernel lower
# bound and its ``alpha``: a larger nugget (the old 1e-9 floor plus a jitter of 1e-10 x
# the signal variance, ~1e-7 for the long-scale fits of 1000 smooth runs) over-smooths
# and cost 2-14 % NRMSE at 1000 runs; a failed factorisation still gets jitter added.
_LOG_LS = (math.log(1e-3), math.log(1e3))
_LOG_NOISE = (math.log(1e-10), math.log(1.0))
_JITTER = 1e-10
_LOG_SCALE = (math.log(1e-3), math.log(1e5))
# A log-normal prior on the length scales, around 0.5 with sd 100 in log space: only a
# tie-breaker on flat directions of the likelihood. At sd 10 it still pulled the long
# scales of switched-off inputs down (piston, 50 runs: 368 instead of 510) and cost
# 0.2-0.9 % NRMSE at 50 runs on 4 of the 5 bench functions; the clamp to _LOG_LS keeps
# the scales in range without it.
_PRIOR_SD = 100.0
MEANS = ("zero", "constant", "linear")


def matern52(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor, outputscale: torch.Tensor) -> torch.Tensor:
    """ARD Matérn-5/2 kernel, batched over outputs.

    Arguments:
        x1, x2: points ``(n1, d)`` and ``(n2, d)``.
        lengthscale: ``(m, d)``; outputscale: ``(m,)``.

    Returns:
        ``(m, n1, n2)``.

    Example:
        >>> k = matern52(torch.zeros(2, 3), torch.zeros(1, 3), torch.ones(1, 3), torch.ones(1))
        >>> k.shape, float(k[0, 0, 0])
        (torch.Size([1, 2, 1]), 1.0)
    """
    a = x1.unsqueeze(0) / lengthscale[:, None, :]
    b = x2.unsqueeze(0) / lengthscale[:, None, :]
    d2 = (a * a).sum(-1)[:, :, None] + (b * b).sum(-1)[:, None, :] - 2 * a @ b.transpose(1, 2)
    r = torch.sqrt(d2.clamp_min(1e-30))
    # the clamp keeps the gradient of sqrt finite at r = 0 (the kernel is smooth there)
    sr = _SQRT5 * r
    return outputscale[:, None, None] * (1 + sr + sr * sr / 3) * torch.exp(-sr)


class ExactGP(nn.Module):
    """Independent exact GPs, one per output column, sharing the inputs.

    Arguments:
        dim: number of inputs (expected in [0, 1]).
        n_outputs: number of outputs (expected standardised).
        mean: ``"constant"`` (default), ``"linear"`` (a linear trend in the inputs,
            "universal kriging"; it can extrapolate strong main effects better) or
            ``"zero"``. The trend's weights are the generalised-least-squares estimate
            for the current kernel, profiled out of the marginal likelihood.

    Example:
        >>> x = torch.rand(30, 2, dtype=torch.float64)
        >>> y = torch.sin(6 * x[:, :1]) + x[:, 1:]
        >>> gp = ExactGP(2, 1).fit(x, (y - y.mean()) / y.std(), max_iter=50)
        >>> mean, var = gp(torch.rand(5, 2, dtype=torch.float64))
        >>> mean.shape, bool((var > 0).all())
        (torch.Size([5, 1]), True)
    """

    def __init__(self, dim: int, n_outputs: int = 1, mean: str = "constant"):
        super().__init__()
        if mean not in MEANS:
            raise ValueError(f"mean: expected one of {', '.join(MEANS)}, got {mean!r}")
        self.dim, self.n_outputs, self.mean = int(dim), int(n_outputs), mean
        f64 = torch.float64
        n_basis = {"zero": 0, "constant": 1, "linear": dim + 1}[mean]
        # the trend's weights are not optimised: for given kernel hyper-parameters they
        # are the generalised-least-squares estimate (profiled out of the likelihood)
        self.register_buffer("mean_weights", torch.zeros(n_outputs, n_basis, dtype=f64))
        self.log_lengthscale = nn.Parameter(torch.full((n_outputs, dim), math.log(0.3), dtype=f64))
        self.log_outputscale = nn.Parameter(torch.zeros(n_outputs, dtype=f64))
        self.log_noise = nn.Parameter(torch.full((n_outputs,), math.log(1e-4), dtype=f64))
        self.register_buffer("x_train", torch.zeros(0, dim, dtype=f64))
        self.register_buffer("y_train", torch.zeros(0, n_outputs, dtype=f64))
        self.register_buffer("chol", torch.zeros(n_outputs, 0, 0, dtype=f64))
        self.register_buffer("alpha", torch.zeros(n_outputs, 0, dtype=f64))

    # ------------------------------------------------------------------ hyper-parameters
    def hypers(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Length scales ``(m, d)``, signal variances ``(m,)`` and noise variances ``(m,)``."""
        ls = self.log_lengthscale.clamp(*_LOG_LS).exp()
        return ls, self.log_outputscale.clamp(*_LOG_SCALE).exp(), self.log_noise.clamp(*_LOG_NOISE).exp()

    def _kernel_matrix(self, x: torch.Tensor) -> torch.Tensor:
        ls, os_, noise = self.hypers()
        k = matern52(x, x, ls, os_)
        eye = torch.eye(len(x), dtype=x.dtype, device=x.device)
        return k + (noise + _JITTER)[:, None, None] * eye

    def _cholesky(self, k: torch.Tensor) -> torch.Tensor:
        chol, info = torch.linalg.cholesky_ex(k)
        jitter = 1e-8
        while bool((info > 0).any()) and jitter < 1.0:
            # deterministic simulators give near-singular kernels: add jitter until it factors
            eye = torch.eye(k.shape[-1], dtype=k.dtype, device=k.device)
            chol, info = torch.linalg.cholesky_ex(k + jitter * k.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None] * eye)
            jitter *= 10
        return chol

    def _basis(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean == "zero":
            return x.new_zeros(len(x), 0)
        one = x.new_ones(len(x), 1)
        return one if self.mean == "constant" else torch.cat([one, x - 0.5], 1)

    def mean_function(self, x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The fitted trend ``(n, m)`` at ``x``."""
        return self._basis(x) @ (self.mean_weights if weights is None else weights).T

    def _gls_weights(self, x: torch.Tensor, y: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
        """GLS trend weights ``(m, p)``: ``(H' K^-1 H)^-1 H' K^-1 y`` per output."""
        h = self._basis(x)
        if h.shape[1] == 0:
            return h.new_zeros(self.n_outputs, 0)
        kinv_h = torch.cholesky_solve(h.expand(self.n_outputs, -1, -1), chol)  # (m, n, p)
        a = h.T @ kinv_h  # (m, p, p)
        b = (kinv_h * y.T.unsqueeze(-1)).sum(1)  # (m, p)
        a = a + 1e-10 * a.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None] * torch.eye(h.shape[1], dtype=h.dtype,
                                                                                           device=h.device)
        return torch.linalg.solve(a, b)

    def neg_log_marginal_likelihood(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Negative log marginal likelihood per point, summed over outputs, plus a weak
        log-normal prior on the length scales (it keeps tiny designs from
        interpolating with absurdly short or long scales)."""
        n = len(x)
        chol = self._cholesky(self._kernel_matrix(x))
        r = y - self.mean_function(x, self._gls_weights(x, y, chol))
        alpha = torch.cholesky_solve(r.T.unsqueeze(-1), chol).squeeze(-1)  # (m, n)
        fit = 0.5 * (r.T * alpha).sum(-1)
        logdet = chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        nll = (fit + logdet).sum() / n + 0.5 * math.log(2 * math.pi) * self.n_outputs
        prior = 0.5 * ((self.log_lengthscale - math.log(0.5)) ** 2).sum() / _PRIOR_SD ** 2
        return nll + prior / n

    def fit(self, x: torch.Tensor, y: torch.Tensor, max_iter: int = 100, restarts: int = 1,
            max_fit_points: int = 500, polish_iter: int = 20,
            generator: torch.Generator | None = None) -> "ExactGP":
        """Fit the hyper-parameters by L-BFGS on the marginal likelihood, warm-started
        from the current ones (the previous batch's fit), then condition on the data.

        Arguments:
            x: ``(n, d)`` inputs in [0, 1]; y: ``(n, m)`` standardised outputs.
            max_iter: L-BFGS iterations.
            restarts: extra starts from default hyper-parameters (the best is kept).
            max_fit_points: above this many points the hyper-parameters are fitted on a
                random subset of this size (the cost is cubic), then polished by
                ``polish_iter`` L-BFGS iterations on all points.

        Example:
            >>> x = torch.rand(20, 1, dtype=torch.float64)
            >>> gp = ExactGP(1).fit(x, torch.cos(5 * x), max_iter=30)
            >>> float(gp.hypers()[0][0, 0].detach()) > 0
            True
        """
        x, y = x.to(self.log_noise), y.to(self.log_noise)
        xs, ys = x, y
        if len(x) > max_fit_points:
            keep = torch.randperm(len(x), generator=generator)[:max_fit_points].to(x.device)
            xs, ys = x[keep], y[keep]
        starts = [{k: v.detach().clone() for k, v in self.named_parameters()}]
        for r in range(restarts):
            # the first restart isotropic, the others with random ARD scales in [0.1, 3]
            if r == 0:
                ls = torch.full_like(self.log_lengthscale, math.log(0.5))
            else:
                ls = math.log(0.1) + math.log(30.0) * torch.rand(self.log_lengthscale.shape, generator=generator,
                                                                 dtype=self.log_lengthscale.dtype)
            starts.append({"log_lengthscale": ls.to(self.log_lengthscale),
                           "log_outputscale": torch.zeros_like(self.log_outputscale),
                           "log_noise": torch.full_like(self.log_noise, math.log(1e-4))})
        best, best_loss = None, math.inf
        for start in starts:
            with torch.no_grad():
                for k, v in self.named_parameters():
                    v.copy_(start[k])
            loss = self._lbfgs(xs, ys, max_iter)
            if loss < best_loss:
                best_loss, best = loss, {k: v.detach().clone() for k, v in self.named_parameters()}
        with torch.no_grad():
            for k, v in self.named_parameters():
                v.copy_(best[k])
        if len(xs) < len(x) and polish_iter > 0:
            before = {k: v.detach().clone() for k, v in self.named_parameters()}
            if not math.isfinite(self._lbfgs(x, y, polish_iter)):
                with torch.no_grad():
                    for k, v in self.named_parameters():
                        v.copy_(before[k])
        return self.condition(x, y)

    def _lbfgs(self, x: torch.Tensor, y: torch.Tensor, max_iter: int) -> float:
        params = list(self.parameters())
        opt = torch.optim.LBFGS(params, lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-6, tolerance_change=1e-9)

        def closure():
            opt.zero_grad()
            loss = self.neg_log_marginal_likelihood(x, y)
            loss.backward()
            return loss

        try:
            opt.step(closure)
        except RuntimeError:  # a failed factorisation mid line-search: keep what we have
            pass
        with torch.no_grad():
            for p, (lo, hi) in ((self.log_lengthscale, _LOG_LS), (self.log_outputscale, _LOG_SCALE),
                                (self.log_noise, _LOG_NOISE)):
                p.clamp_(lo, hi)
            loss = float(self.neg_log_marginal_likelihood(x, y))
        return loss if math.isfinite(loss) else math.inf

    @torch.no_grad()
    def condition(self, x: torch.Tensor, y: torch.Tensor) -> "ExactGP":
        """Store the training data and the Cholesky factor for prediction (no fitting)."""
        self.x_train, self.y_train = x.to(self.log_noise).clone(), y.to(self.log_noise).clone()
        self.chol = self._cholesky(self._kernel_matrix(self.x_train))
        self.mean_weights = self._gls_weights(self.x_train, self.y_train, self.chol)
        r = self.y_train - self.mean_function(self.x_train)
        self.alpha = torch.cholesky_solve(r.T.unsqueeze(-1), self.chol).squeeze(-1)
        return self

    # ------------------------------------------------------------------ prediction
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and variance of the latent function at ``x`` ``(n, d)``:
        two ``(n, m)`` tensors, differentiable with respect to ``x``."""
        ls, os_, _ = self.hypers()
        x = x.to(self.x_train)
        ks = matern52(self.x_train, x, ls, os_)  # (m, n_train, n)
        mean = (ks * self.alpha[:, :, None]).sum(1).T + self.mean_function(x)
        v = torch.linalg.solve_triangular(self.chol, ks, upper=False)
        var = (os_[:, None] - (v * v).sum(1)).clamp_min(1e-12 * os_[:, None]).T
        return mean, var

    def noise(self) -> torch.Tensor:
        """Fitted noise variances ``(m,)`` (standardised units)."""
        return self.hypers()[2]

    @torch.no_grad()
    def loo(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Closed-form leave-one-out predictions (GPML eq. 5.12): means and variances
        ``(n, m)`` of each training output predicted from all the others."""
        eye = torch.eye(len(self.x_train), dtype=self.chol.dtype, device=self.chol.device)
        kinv = torch.cholesky_solve(eye.expand_as(self.chol), self.chol)
        diag = kinv.diagonal(dim1=-2, dim2=-1)  # (m, n)
        mean = self.y_train - (self.alpha / diag).T
        var = (1.0 / diag).T
        return mean, var

    @torch.no_grad()
    def posterior_covariance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Posterior covariance ``(m, na, nb)`` of the latent function between point sets."""
        ls, os_, _ = self.hypers()
        va = torch.linalg.solve_triangular(self.chol, matern52(self.x_train, a, ls, os_), upper=False)
        vb = torch.linalg.solve_triangular(self.chol, matern52(self.x_train, b, ls, os_), upper=False)
        return matern52(a, b, ls, os_) - va.transpose(1, 2) @ vb

    @torch.no_grad()
    def sample_joint(self, x: torch.Tensor, n_draws: int = 64, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
        """Exact joint draws of the latent function at ``x`` ``(N, d)`` from the
        posterior: ``(n_draws, N, m)``. The cost is a Cholesky factorisation of the
        ``N x N`` posterior covariance, so keep ``N`` to a few thousand.

        Example:
            >>> x = torch.rand(20, 1, dtype=torch.float64)
            >>> gp = ExactGP(1).fit(x, torch.sin(5 * x), max_iter=30)
            >>> gp.sample_joint(torch.rand(5, 1, dtype=torch.float64), 8).shape
            torch.Size([8, 5, 1])
        """
        x = x.to(self.x_train)
        mean, _ = self(x)  # (N, m)
        cov = self.posterior_covariance(x, x)  # (m, N, N)
        # the posterior covariance is near singular where x sits on training points: a
        # jitter of 1e-10 x the signal variance is the same order as the noise floor
        eye = torch.eye(len(x), dtype=cov.dtype, device=cov.device)
        chol = self._cholesky(cov + 1e-10 * self.hypers()[1].detach()[:, None, None] * eye)
        z = torch.randn(self.n_outputs, len(x), n_draws, generator=generator, dtype=cov.dtype).to(cov)
        return (mean.T.unsqueeze(-1) + chol @ z).permute(2, 1, 0)

    def extra_state(self) -> dict[str, Any]:
        return {"dim": self.dim, "n_outputs": self.n_outputs, "mean": self.mean}

    @classmethod
    def from_state(cls, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> "ExactGP":
        gp = cls(int(config["dim"]), int(config["n_outputs"]), str(config.get("mean", "zero")))
        for k in ("x_train", "y_train", "chol", "alpha"):
            setattr(gp, k, tensors[k])
        gp.load_state_dict(tensors)
        return gp


def __getattr__(name: str) -> Any:
    # SharedGP builds on ExactGP, in its own module; it stays importable from here
    if name == "SharedGP":
        from .sharedgp import SharedGP

        return SharedGP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


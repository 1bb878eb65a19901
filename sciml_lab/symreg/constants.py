"""Batched Levenberg–Marquardt fit of the constants of many expressions at once.

The Jacobian of each expression's residuals with respect to its own constants is
taken by forward differences, all perturbed copies evaluated in one population
call together with the trial step's own residuals (a rejected step keeps the
Jacobian it had); the damped normal equations of every expression are solved as
one batch.

References:
    Marquardt, "An Algorithm for Least-Squares Estimation of Nonlinear Parameters"
    (1963), https://doi.org/10.1137/0111030; Kommenda et al., "Parameter
    identification for symbolic regression using nonlinear least squares" (2020),
    https://doi.org/10.1007/s10710-019-09371-3 (LM inside GP, as in Operon).
"""

from __future__ import annotations

import torch

from .evaluation import evaluate, nan_to_inf
from .vocabulary import CONST, Vocabulary

__all__ = ["fit_constants", "weighted_mse", "scaled_mse", "STALL_STEPS", "STALL_RTOL", "STALL_DAMPING", "TINY_LOSS"]

#: a row stops once it has not improved its loss by more than ``STALL_RTOL`` (relative) for this many
#: iterations in a row: its fit has converged (or is stuck), and further iterations only cost evaluations
STALL_STEPS = 2
STALL_RTOL = 1e-6
#: a rejected step counts as no progress only once the damping has grown to this
STALL_DAMPING = 1.0
#: a row stops once its mean squared error is below this fraction of ``mean(y**2)`` (exact to precision)
TINY_LOSS = 1e-26


def weighted_mse(pred: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error per row of ``pred (P, N)``; non-finite -> ``inf``.

    Example:
        >>> weighted_mse(torch.tensor([[1.0, 2.0], [float("nan"), 0.0]]), torch.tensor([1.0, 1.0]), None).tolist()
        [0.5, inf]
    """
    r2 = (pred - y) ** 2
    loss = (r2 * w).mean(1) if w is not None else r2.mean(1)
    return nan_to_inf(loss)


def scaled_mse(pred: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error per row of ``pred (P, N)`` after the best linear scaling ``a * pred + b``
    of each row (closed form, no fit): how good a row's *shape* is, whatever its constants; a
    row that is constant (or not finite) scores the variance of ``y`` (or ``inf``).

    References:
        Keijzer, "Improving Symbolic Regression with Interval Arithmetic and Linear Scaling"
        (EuroGP 2003), https://doi.org/10.1007/3-540-36599-0_7.

    Example:
        >>> y = torch.tensor([1.0, 3.0, 5.0], dtype=torch.float64)
        >>> pred = torch.tensor([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
        >>> scaled_mse(pred, y, None).tolist()   # 2*p + 1 fits; a constant scores the variance of y
        [0.0, 2.6666666666666665]
    """
    w = torch.ones_like(y) if w is None else w
    wn = w / w.mean()
    ym = (wn * y).mean()
    pm = (pred * wn).mean(1, keepdim=True)
    dp, dy = pred - pm, y - ym
    var_p = (wn * dp * dp).mean(1)
    cov = (wn * dp * dy).mean(1)
    var_y = (wn * dy * dy).mean()
    loss = var_y - torch.where(var_p > 0, cov * cov / torch.where(var_p > 0, var_p, 1.0), torch.zeros_like(var_p))
    return nan_to_inf(loss.clamp(min=0.0))


def fit_constants(tokens: torch.Tensor, constants: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                  w: torch.Tensor | None, vocab: Vocabulary, iterations: int = 8,
                  fixed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Fit the constants of every row by Levenberg–Marquardt; returns (constants, loss, evaluations).
    ``fixed`` (a boolean mask like ``tokens``, optional) holds the constants where it is true.

    Rows without constants, or whose fit does not improve, keep their constants. A row leaves
    the batch once it has converged (for :data:`STALL_STEPS` iterations, no accepted step gaining
    more than :data:`STALL_RTOL` and no rejected step below a damping of :data:`STALL_DAMPING`, or a loss below :data:`TINY_LOSS` of ``mean(y**2)``), so
    that later iterations evaluate only the rows still improving.

    Example:
        >>> from sciml_lab.symreg.expression import Vocabulary, parse_ops
        >>> v = Vocabulary(["x"], *parse_ops("+ *"))                # c=1, x=2, +=3, *=4
        >>> X = torch.linspace(0, 1, 20, dtype=torch.float64)[:, None]
        >>> tok, c = torch.tensor([[1, 2, 4, 1, 3]]), torch.zeros(1, 5, dtype=torch.float64)  # a*x + b
        >>> c2, loss, _ = fit_constants(tok, c, X, 3 * X[:, 0] - 1, None, v)
        >>> [round(v, 6) for v in c2[0, [0, 3]].tolist()], loss.item() < 1e-20
        ([3.0, -1.0], True)
    """
    fit = _LevenbergMarquardt(tokens, constants, X, y, w, vocab, fixed)
    if fit.C == 0 or iterations <= 0:
        return constants, fit.loss, fit.evals
    fit.start()
    for i in range(iterations):
        idx = fit.active_rows()
        if idx.numel() == 0:
            break
        fit.step(idx, last=i == iterations - 1)
    return fit.constants, fit.loss, fit.evals


class _LevenbergMarquardt:
    """One batched fit: per row, its constants (in place and compacted to ``theta (B, C)``),
    residuals, loss, damping and the count of iterations without progress."""

    def __init__(self, tokens: torch.Tensor, constants: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                 w: torch.Tensor | None, vocab: Vocabulary, fixed: torch.Tensor | None = None):
        self.tokens, self.constants, self.X, self.y, self.vocab = tokens, constants, X, y, vocab
        self.sw = torch.sqrt(w) if w is not None else None
        self.cmask = (tokens == CONST) if fixed is None else (tokens == CONST) & ~fixed
        self.n_const = self.cmask.sum(1)
        B = tokens.shape[0]
        self.C = int(self.n_const.max()) if B else 0
        self.r = self.residuals(constants, tokens)
        self.loss = nan_to_inf((self.r ** 2).mean(1))
        self.evals = B

    def residuals(self, c: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
        r = evaluate(tok, c, self.X, self.vocab) - self.y
        return r * self.sw if self.sw is not None else r

    def start(self) -> None:
        """The per-row state of the iterations (the constants are copied: updated in place, row by row),
        and the Jacobian at the starting constants."""
        B, C = self.tokens.shape[0], self.C
        dev, dtype = self.X.device, self.X.dtype
        self.constants = self.constants.clone()
        # positions of each row's constants, compacted to (B, C)
        order = torch.argsort((~self.cmask).to(torch.int8), dim=1, stable=True)
        self.pos = order[:, :C]
        self.valid = torch.arange(C, device=dev)[None, :] < self.n_const[:, None]
        self.theta = self.constants.gather(1, self.pos) * self.valid
        self.lam = torch.full((B,), 1e-3, dtype=dtype, device=dev)
        self.stalled = torch.zeros(B, dtype=torch.int64, device=dev)
        self.tiny = TINY_LOSS * float((self.y ** 2).mean()) if self.y.numel() else 0.0
        idx = self.active_rows()
        self.J = torch.zeros(B, C, self.r.shape[1], dtype=dtype, device=dev)
        if idx.numel():
            k = int(self.n_const[idx].max())
            _, self.J[idx, :k] = self.trial(self.tokens[idx], self.constants[idx], self.theta[idx, :k],
                                            self.pos[idx, :k], self.valid[idx, :k], self.r[idx])

    def active_rows(self) -> torch.Tensor:
        """The rows still improving: a row leaves the batch once its loss is negligible or it has not
        improved (by more than STALL_RTOL) for STALL_STEPS iterations, so the work of an iteration
        shrinks with the rows left."""
        active = torch.isfinite(self.loss) & (self.n_const > 0) & (self.stalled < STALL_STEPS) & (self.loss > self.tiny)
        return torch.nonzero(active)[:, 0]

    def step(self, idx: torch.Tensor, last: bool = False) -> None:
        """One damped Gauss–Newton step of the rows ``idx``, kept where it lowers the loss. The residuals
        at the trial constants and the Jacobian there are one evaluation; a row whose step is rejected
        keeps its Jacobian (its constants did not move), so every iteration costs one evaluation call.
        ``last``: no step follows, so the Jacobian at the trial constants is not evaluated."""
        k = int(self.n_const[idx].max())
        tok_a, const_a, th_a = self.tokens[idx], self.constants[idx], self.theta[idx, :k]
        pos_a, val_a = self.pos[idx, :k], self.valid[idx, :k]
        r_a, lam_a, loss_a, J = self.r[idx], self.lam[idx], self.loss[idx], self.J[idx, :k]
        th_new = th_a + self.damped_step(J, r_a, lam_a, val_a)
        c_new = const_a.scatter(1, pos_a, th_new)
        if last:
            r_new, J_new = self.residuals(c_new, tok_a), J
            self.evals += len(idx)
        else:
            r_new, J_new = self.trial(tok_a, c_new, th_new, pos_a, val_a)
        loss_new = nan_to_inf((r_new ** 2).mean(1))
        better = loss_new < loss_a
        self.theta[idx, :k] = torch.where(better[:, None], th_new, th_a)
        self.constants[idx] = torch.where(better[:, None], c_new, const_a)
        self.r[idx] = torch.where(better[:, None], r_new, r_a)
        self.J[idx, :k] = torch.where(better[:, None, None], J_new, J)
        self.loss[idx] = torch.where(better, loss_new, loss_a)
        self.lam[idx] = torch.where(better, lam_a / 3.0, lam_a * 4.0).clamp(1e-12, 1e12)
        # no progress: an accepted step that gained less than STALL_RTOL, or a rejected step already
        # heavily damped (rejections at small damping are LM's search for its step size, not a stall)
        stuck = (better & (loss_new >= loss_a * (1.0 - STALL_RTOL))) | (~better & (lam_a >= STALL_DAMPING))
        self.stalled[idx] = torch.where(stuck, self.stalled[idx] + 1, torch.zeros_like(self.stalled[idx]))

    def trial(self, tok_a: torch.Tensor, c_a: torch.Tensor, th_a: torch.Tensor, pos_a: torch.Tensor,
              val_a: torch.Tensor, r_a: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The residuals ``(b, N)`` at the constants ``c_a`` (whose fitted ones are ``th_a``) and their
        ``(b, k, N)`` forward differences there, in one evaluation (``r_a``: the residuals, when known)."""
        b, k = th_a.shape
        h = 1e-7 * (1.0 + th_a.abs())                                   # (b, k)
        th_pert = th_a[:, None, :] + torch.diag_embed(h)                # (b, k, k)
        c_pert = c_a.repeat_interleave(k, dim=0).scatter(1, pos_a.repeat_interleave(k, dim=0),
                                                         th_pert.reshape(b * k, k))
        tok_pert = tok_a.repeat_interleave(k, dim=0)
        if r_a is None:
            r_all = self.residuals(torch.cat([c_a, c_pert]), torch.cat([tok_a, tok_pert]))
            r_a, r_pert = r_all[:b], r_all[b:]
            self.evals += b
        else:
            r_pert = self.residuals(c_pert, tok_pert)
        self.evals += b * k
        J = (r_pert.reshape(b, k, -1) - r_a[:, None, :]) / h[:, :, None]
        J = torch.where(torch.isfinite(J) & val_a[:, :, None], J, torch.zeros((), dtype=self.X.dtype,
                                                                             device=self.X.device))
        return r_a, J

    def damped_step(self, J: torch.Tensor, r_a: torch.Tensor, lam_a: torch.Tensor, val_a: torch.Tensor) -> torch.Tensor:
        """The solution of the damped normal equations of every row (zero where not finite or padded)."""
        dev, dtype = self.X.device, self.X.dtype
        k = J.shape[1]
        A = J @ J.transpose(1, 2)                                       # (b, k, k)
        g = (J @ torch.nan_to_num(r_a, nan=0.0, posinf=0.0, neginf=0.0)[:, :, None])[..., 0]
        diag = torch.diagonal(A, dim1=1, dim2=2)
        damp = lam_a[:, None] * (diag + 1e-9 * (diag.max(1, keepdim=True).values + 1.0))
        A = A + torch.diag_embed(damp) + torch.eye(k, dtype=dtype, device=dev) * (~val_a)[:, None, :].to(dtype)
        try:
            delta = torch.linalg.solve(A, -g[..., None])[..., 0]
        except RuntimeError:
            delta = torch.linalg.lstsq(A, -g[..., None]).solution[..., 0]
        return torch.where(torch.isfinite(delta), delta, torch.zeros((), dtype=dtype, device=dev)) * val_a

"""Batched Levenberg–Marquardt fit of the constants of many expressions at once.

The Jacobian of each expression's residuals with respect to its own constants is
taken by forward differences, all perturbed copies evaluated in one population
call; the damped normal equations of every expression are solved as one batch.

References:
    Marquardt, "An Algorithm for Least-Squares Estimation of Nonlinear Parameters"
    (1963), https://doi.org/10.1137/0111030; Kommenda et al., "Parameter
    identification for symbolic regression using nonlinear least squares" (2020),
    https://doi.org/10.1007/s10710-019-09371-3 (LM inside GP, as in Operon).
"""

from __future__ import annotations

import torch

from .expression import CONST, Vocabulary, evaluate, nan_to_inf

__all__ = ["fit_constants", "weighted_mse"]


def weighted_mse(pred: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error per row of ``pred (P, N)``; non-finite -> ``inf``.

    Example:
        >>> weighted_mse(torch.tensor([[1.0, 2.0], [float("nan"), 0.0]]), torch.tensor([1.0, 1.0]), None).tolist()
        [0.5, inf]
    """
    r2 = (pred - y) ** 2
    loss = (r2 * w).mean(1) if w is not None else r2.mean(1)
    return nan_to_inf(loss)


def fit_constants(tokens: torch.Tensor, constants: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                  w: torch.Tensor | None, vocab: Vocabulary, iterations: int = 8) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Fit the constants of every row by Levenberg–Marquardt; returns (constants, loss, evaluations).

    Rows without constants, or whose fit does not improve, keep their constants.

    Example:
        >>> from sciml_lab.symreg.expression import Vocabulary, parse_ops
        >>> v = Vocabulary(["x"], *parse_ops("+ *"))                # c=1, x=2, +=3, *=4
        >>> X = torch.linspace(0, 1, 20, dtype=torch.float64)[:, None]
        >>> tok, c = torch.tensor([[1, 2, 4, 1, 3]]), torch.zeros(1, 5, dtype=torch.float64)  # a*x + b
        >>> c2, loss, _ = fit_constants(tok, c, X, 3 * X[:, 0] - 1, None, v)
        >>> [round(v, 6) for v in c2[0, [0, 3]].tolist()], loss.item() < 1e-20
        ([3.0, -1.0], True)
    """
    B, L = tokens.shape
    dev, dtype = X.device, X.dtype
    sw = torch.sqrt(w) if w is not None else None
    cmask = tokens == CONST
    n_const = cmask.sum(1)
    C = int(n_const.max()) if B else 0

    def residuals(c: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
        r = evaluate(tok, c, X, vocab) - y
        return r * sw if sw is not None else r

    r = residuals(constants, tokens)
    loss = nan_to_inf((r ** 2).mean(1))
    evals = B
    if C == 0 or iterations <= 0:
        return constants, loss, evals
    # positions of each row's constants, compacted to (B, C)
    order = torch.argsort((~cmask).to(torch.int8), dim=1, stable=True)
    pos = order[:, :C]
    valid = torch.arange(C, device=dev)[None, :] < n_const[:, None]
    theta = constants.gather(1, pos) * valid
    lam = torch.full((B,), 1e-3, dtype=dtype, device=dev)
    eye = torch.eye(C, dtype=dtype, device=dev)
    tok_rep = tokens.repeat_interleave(C, dim=0)
    for _ in range(iterations):
        active = torch.isfinite(loss) & (n_const > 0)
        if not bool(active.any()):
            break
        h = 1e-7 * (1.0 + theta.abs())                                  # (B, C)
        th_pert = theta[:, None, :] + torch.diag_embed(h)                # (B, C, C)
        c_pert = constants.repeat_interleave(C, dim=0).scatter(1, pos.repeat_interleave(C, dim=0),
                                                               th_pert.reshape(B * C, C))
        r_pert = residuals(c_pert, tok_rep).reshape(B, C, -1)
        evals += B * C
        J = (r_pert - r[:, None, :]) / h[:, :, None]                     # (B, C, N)
        J = torch.where(torch.isfinite(J) & valid[:, :, None], J, torch.zeros((), dtype=dtype, device=dev))
        A = J @ J.transpose(1, 2)                                        # (B, C, C)
        g = (J @ torch.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)[:, :, None])[..., 0]
        diag = torch.diagonal(A, dim1=1, dim2=2)
        damp = lam[:, None] * (diag + 1e-9 * (diag.max(1, keepdim=True).values + 1.0))
        A = A + torch.diag_embed(damp) + eye * (~valid)[:, None, :].to(dtype)
        try:
            delta = torch.linalg.solve(A, -g[..., None])[..., 0]
        except RuntimeError:
            delta = torch.linalg.lstsq(A, -g[..., None]).solution[..., 0]
        delta = torch.where(torch.isfinite(delta), delta, torch.zeros((), dtype=dtype, device=dev)) * valid
        th_new = theta + delta
        c_new = constants.scatter(1, pos, th_new)
        r_new = residuals(c_new, tokens)
        evals += B
        loss_new = nan_to_inf((r_new ** 2).mean(1))
        better = (loss_new < loss) & active
        theta = torch.where(better[:, None], th_new, theta)
        constants = torch.where(better[:, None], c_new, constants)
        r = torch.where(better[:, None], r_new, r)
        loss = torch.where(better, loss_new, loss)
        lam = torch.where(better, lam / 3.0, lam * 4.0).clamp(1e-12, 1e12)
    return constants, loss, evals

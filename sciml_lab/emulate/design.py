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
    | Integrated variance reduction (IMSE / ALC): Sacks, Welch, Mitchell & Wynn, "Design and
    | analysis of computer experiments", Statistical Science 4 (1989) https://doi.org/10.1214/ss/1177012413;
    | Cohn, "Neural network exploration using optimal experiment design" (NeurIPS 1994), as used by
    | Gramacy & Lee, "Adaptive design and analysis of supercomputer experiments", Technometrics 51
    | (2009) https://doi.org/10.1198/TECH.2009.0015
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import qmc

__all__ = ["initial_design", "candidates", "select_batch", "integrated_variance", "DESIGNS", "ACQUISITIONS"]

DESIGNS = ("sobol", "lhs", "random")
ACQUISITIONS = ("variance", "ivr")
# once the simulator has failed somewhere, candidates less likely than this to succeed are not
# picked while any candidate reaches it
MIN_SUCCESS = 0.8


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


class _Fantasy:
    """The GP's posterior covariance between point sets, updated in place as batch
    points are conditioned on (rank-one updates; exact because a GP's variance does
    not depend on the values observed).

    The whitened cross-covariances ``L^-1 k(X, .)`` are computed once, so each pick
    costs ``O(m * n * M)`` instead of a triangular solve with all candidates.
    """

    def __init__(self, model, cand: torch.Tensor):
        from .gp import matern52

        self.model, self.cand, self._kernel = model, cand, matern52
        self.ls, self.os, _ = (t.detach() for t in model.hypers())
        self.noise = model.noise().detach()[:, None]  # (m, 1)
        self.v_cand = self.whiten(cand)  # (m, n, M)
        self.var = (self.os[:, None] - (self.v_cand * self.v_cand).sum(1)).clamp_min(0)  # (m, M)
        self.terms: list[torch.Tensor] = []  # rank-one terms on the candidates, (m, M) each

    def whiten(self, x: torch.Tensor) -> torch.Tensor:
        """``L^-1 k(X_train, x)`` ``(m, n, len(x))``."""
        k = self._kernel(self.model.x_train, x, self.ls, self.os)
        return torch.linalg.solve_triangular(self.model.chol, k, upper=False)

    def cross(self, x: torch.Tensor, v_x: torch.Tensor) -> torch.Tensor:
        """Posterior covariance ``(m, len(x), M)`` between ``x`` and the candidates
        (given the training runs, before any batch point), from ``v_x = whiten(x)``."""
        return self._kernel(x, self.cand, self.ls, self.os) - v_x.transpose(1, 2) @ self.v_cand

    def condition_on(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition on candidate ``j``; returns its rank-one term on the candidates
        ``(m, M)`` and the square root of its predictive variance ``(m, 1)``."""
        cj = self.cand[j:j + 1]
        cov = self._kernel(self.cand, cj, self.ls, self.os)[..., 0] \
            - (self.v_cand * self.v_cand[:, :, j:j + 1]).sum(1)  # (m, M)
        for u in self.terms:
            cov = cov - u * u[:, j:j + 1]
        root = (cov[:, j:j + 1].clamp_min(0) + self.noise).sqrt()
        u = cov / root
        self.terms.append(u)
        self.var = (self.var - u * u).clamp_min(0)
        return u, root


def integrated_variance(model: torch.nn.Module, reference: torch.Tensor) -> torch.Tensor:
    """Mean posterior variance of a fitted :class:`~sciml_lab.emulate.gp.ExactGP` over
    ``reference`` points, per output ``(m,)`` (the quantity IVR acquisition lowers).

    Example:
        >>> from sciml_lab.emulate.gp import ExactGP
        >>> x = torch.rand(10, 2, dtype=torch.float64)
        >>> gp = ExactGP(2).fit(x, torch.sin(3 * x[:, :1]), max_iter=20)
        >>> integrated_variance(gp, torch.rand(100, 2, dtype=torch.float64)).shape
        torch.Size([1])
    """
    with torch.no_grad():
        return model(reference.to(model.x_train))[1].mean(0)


def select_batch(model: torch.nn.Module, x_train: torch.Tensor, cand: torch.Tensor, size: int,
                 acquisition: str = "variance", reference: torch.Tensor | None = None,
                 success: torch.Tensor | None = None, reference_success: torch.Tensor | None = None,
                 seen: torch.Tensor | None = None) -> np.ndarray:
    """Greedy batch of candidates where the emulator is least certain.

    ``acquisition="variance"``: each pick maximises the predictive variance (summed
    over outputs, each scaled by its largest). ``acquisition="ivr"`` (integrated
    variance reduction, GP only): each pick maximises the drop of the posterior
    variance integrated over ``reference`` points (by default the candidates),
    ``sum_r cov(r, c)^2 / (var(c) + noise)``, so it favours points that inform a large
    part of the input space rather than corners where the variance is merely high.
    A GP's batch is the exact greedy one (:func:`_gp_batch`); other models (the deep
    ensemble) take ``"variance"`` only, with picks spread apart (:func:`_spaced_batch`).

    Where the simulator fails in part of the box, ``success`` (the probability that a
    run at each candidate succeeds) multiplies each candidate's score (the expected
    gain of a run that may fail; for ``"ivr"`` the reference points are weighted by
    ``reference_success`` too, since variance where no run can succeed cannot be
    reduced). Candidates below an even chance of success are left out while any
    candidate has one: where the emulator has no data the variance can be orders of
    magnitude above the rest, more than a small probability can offset.

    Arguments:
        model: the fitted model, called on unit-cube points, returning ``(mean, var)``.
        x_train: the points already run ``(n, d)`` (unit cube).
        cand: candidate points ``(M, d)`` (unit cube).
        size: number of points to pick.
        acquisition: ``"variance"`` or ``"ivr"``.
        reference: points ``(R, d)`` the variance is integrated over (``"ivr"``).
        success: probability of success per candidate ``(M,)`` (default: 1).
        reference_success: probability of success per reference point ``(R,)``.
        seen: points ``(F, d)`` (unit cube) whose outcome the batch need not learn though
            the model was not fitted on them (failed runs, the batch's own space-filling
            points): a GP is conditioned on them, other models count them in the spacing.

    Example:
        >>> from sciml_lab.emulate.gp import ExactGP
        >>> x = torch.rand(10, 2, dtype=torch.float64)
        >>> gp = ExactGP(2).fit(x, torch.sin(3 * x[:, :1]), max_iter=20)
        >>> select_batch(gp, x, torch.rand(200, 2, dtype=torch.float64), 4, acquisition="ivr").shape
        (4, 2)
    """
    from .gp import ExactGP

    model = _acquisition_model(model, acquisition)
    size = min(int(size), len(cand))
    with torch.no_grad():
        if isinstance(model, ExactGP):
            return _gp_batch(model, cand, size, acquisition, reference, success, reference_success, seen)
        return _spaced_batch(model, x_train, cand, size, success, seen)


def _acquisition_model(model: torch.nn.Module, acquisition: str) -> torch.nn.Module:
    """``model`` checked against ``acquisition``, as the model that scores candidates."""
    from .gp import ExactGP

    if acquisition not in ACQUISITIONS:
        raise ValueError(f"acquisition: expected one of {', '.join(ACQUISITIONS)}, got {acquisition!r}")
    if acquisition == "ivr" and not isinstance(model, ExactGP):
        raise ValueError(f"acquisition: 'ivr' needs a GP model, got {type(model).__name__}; use 'variance'")
    if hasattr(model, "correlation_view"):
        # outputs sharing one kernel: every variance is one correlation's times a scale,
        # so the one-output view picks the same batch at a fraction of the cost
        model = model.correlation_view()
    return model


def _gp_batch(model: torch.nn.Module, cand: torch.Tensor, size: int, acquisition: str,
              reference: torch.Tensor | None, success: torch.Tensor | None,
              reference_success: torch.Tensor | None, seen: torch.Tensor | None) -> np.ndarray:
    """:func:`select_batch` for an :class:`~sciml_lab.emulate.gp.ExactGP`: it conditions on
    each pick before choosing the next (rank-one update of the posterior covariance;
    exact, since the variance does not depend on the values), so a batch is the exact
    greedy one; the ``seen`` points are conditioned on as if they had been observed."""
    n_cand = len(cand)
    cand = cand.to(model.x_train)
    if seen is not None and len(seen):  # conditioned on first, never picked
        cand = torch.cat([cand, seen.to(cand)])
    fantasy = _Fantasy(model, cand)
    if acquisition == "ivr":
        cov_rc, weight = _ivr_start(model, fantasy, cand[:n_cand], reference, success, reference_success)
    else:
        scale = fantasy.var[:, :n_cand].max(1, keepdim=True).values.clamp_min(1e-30)

    def condition_on(j: int) -> None:
        u, root = fantasy.condition_on(j)
        if acquisition == "ivr":
            cov_rc.sub_((cov_rc[:, :, j] / root)[:, :, None] * u[:, None, :])  # (m, R) x (m, M)

    for j in range(n_cand, len(cand)):
        condition_on(j)
    p_ok = None if success is None else success.to(cand)
    picks: list[int] = []
    for _ in range(size):
        if acquisition == "ivr":
            gain = (cov_rc * cov_rc).sum(1) / (fantasy.var + fantasy.noise)  # (m, M)
            score = (weight * gain).sum(0)[:n_cand]
        else:
            score = (fantasy.var / scale).sum(0)[:n_cand]
        if p_ok is not None:
            score = score * p_ok
            if bool((p_ok >= MIN_SUCCESS).any()):
                score[p_ok < MIN_SUCCESS] = -np.inf
        if picks:
            score[picks] = -np.inf
        j = int(score.argmax())
        picks.append(j)
        condition_on(j)
    return cand[picks].cpu().numpy()


def _ivr_start(model: torch.nn.Module, fantasy: _Fantasy, cand: torch.Tensor, reference: torch.Tensor | None,
               success: torch.Tensor | None, reference_success: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior covariance ``(m, R, M)`` between the reference points and the
    candidates ``cand``, weighted by the references' chance of success, and the weight
    ``(m, 1)`` of each output in the integrated variance."""
    ref = cand if reference is None else reference.to(cand)
    cov_rc = fantasy.cross(ref, fantasy.whiten(ref))  # (m, R, M)
    # each output counts alike: weight by its current integrated variance
    weight = 1.0 / model(ref)[1].mean(0).clamp_min(1e-30)[:, None]  # (m, 1)
    if reference_success is not None or (reference is None and success is not None):
        ref_w = (success if reference is None else reference_success).to(cand)
        cov_rc = cov_rc * ref_w.sqrt()[None, :, None]  # gain sums ref_w * cov^2
    return cov_rc, weight


def _spaced_batch(model: torch.nn.Module, x_train: torch.Tensor, cand: torch.Tensor, size: int,
                  success: torch.Tensor | None, seen: torch.Tensor | None) -> np.ndarray:
    """:func:`select_batch` for a model without a posterior covariance (the deep
    ensemble): the highest variance, with a minimum distance between picks, half the
    typical spacing of the design (``seen`` points count as run), to spread them."""
    x_train = x_train.to(cand)
    if seen is not None and len(seen):
        x_train = torch.cat([x_train, seen.to(cand)])
    _, var = model(cand.to(next(model.parameters())))
    score = var.to(cand).sum(1).clone()
    if success is not None:
        score = score * success.to(score)
    spacing = 0.5 * float(len(x_train) + size) ** (-1.0 / cand.shape[1])
    chosen = torch.zeros(0, cand.shape[1], dtype=cand.dtype)
    picks: list[int] = []
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

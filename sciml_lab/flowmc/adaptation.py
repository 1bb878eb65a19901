"""Adaptation in the training loops: the step size (Robbins-Monro towards a target
acceptance), the mass matrix (from the last training loop's draws) and, with
``kernel="auto"``, the choice between MALA and HMC from split trial loops.

Production loops change none of it: the production chain is a fixed, valid Markov chain.

Example:
    >>> a = Adaptation.start("mala", dim=2, target_acceptance=None, auto=False, trials={})
    >>> a.kernel, a.target_acceptance, a.mass_estimator
    ('mala', 0.574, 'identity')
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from ..kit.state import State
from .kernels import TARGET_ACCEPTANCE, mass_cholesky, nominal_step_size

__all__ = ["Adaptation", "AUTO_TRIALS", "auto_trials", "whitened_jump_per_eval", "adapt_step", "adapt_steps",
           "split_halves", "hmc_move_steps"]

#: ``kernel="auto"``: the trial loops after the MALA burn-in ones; each is a *split* loop
#: (MALA on three chains in four, HMC on the others, the same loop for both, so that a
#: trend as the chains settle favours neither and the flow keeps most of its data)
AUTO_TRIALS = ("split", "split", "split", "split")


def auto_trials(n_training_loops: int) -> dict[int, str]:
    """The training loops where ``kernel="auto"`` measures both candidate kernels, as
    ``{loop: "split"}``: loops 2-5 with 7 or more training loops (1-4 with 6), loops 1-2
    with 3 to 5, none with fewer (then MALA is kept). In a split loop every fourth chain
    runs HMC and the others MALA (:func:`split_halves`). The loops before are MALA
    burn-in (the first with an identity mass matrix), not scored: trials from loop 1
    compared MALA's first loop with a learned mass matrix, still settling, and chose HMC
    on the benchmark's 50-D Gaussian, where MALA is better. The loops after the trials
    run the chosen kernel on all chains.

    Example:
        >>> auto_trials(8)
        {2: 'split', 3: 'split', 4: 'split', 5: 'split'}
        >>> auto_trials(2)
        {}
    """
    n = 4 if n_training_loops >= 6 else 2 if n_training_loops >= 3 else 0
    first = 2 if n_training_loops >= 7 else 1
    return {first + i: k for i, k in enumerate(AUTO_TRIALS[:n])}


def whitened_jump_per_eval(u: torch.Tensor, chol: torch.Tensor, evals_per_step: int) -> float:
    """Mean squared jump ``|L^-1 (x_t+1 - x_t)|^2`` between consecutive local draws
    ``u`` (chain, draw, dim) in the coordinates whitened by the mass matrix ``L L^T``,
    per target evaluation (rejected moves count as jumps of 0). Only the second half of
    the jumps is used: the first ones come while the step size is still adapting.
    ``nan`` with fewer than two draws.

    Example:
        >>> u = torch.cumsum(torch.ones(2, 5, 3), 1)  # every draw moves by (1, 1, 1)
        >>> whitened_jump_per_eval(u, 2 * torch.eye(3), 1)
        0.75
    """
    if u.shape[1] < 2:
        return math.nan
    d = u[:, 1:] - u[:, :-1]
    d = d[:, d.shape[1] // 2:].reshape(-1, u.shape[-1]).to(chol.dtype)
    z = torch.linalg.solve_triangular(chol, d.T, upper=False)
    return float(z.pow(2).sum(0).mean()) / evals_per_step


def adapt_step(eps: float, t: int, alpha: torch.Tensor, target: float) -> tuple[float, int]:
    """One Robbins-Monro step on log(step size) towards the target acceptance:
    returns ``(eps, t)`` after the ``t+1``-th update with acceptance probabilities ``alpha``.

    Example:
        >>> adapt_step(0.1, 0, torch.tensor([0.5]), 0.5)   # on target: the step size stays
        (0.1, 1)
    """
    t += 1
    rate = 1.0 / math.sqrt(t + 1.0)
    return eps * math.exp(rate * (float(alpha.mean()) - target)), t


def adapt_steps(eps: torch.Tensor, t: int, alpha: torch.Tensor, target: float) -> tuple[torch.Tensor, int]:
    """:func:`adapt_step` for each chain apart: ``eps`` (n,) moves towards the target
    acceptance with each chain's own acceptance probability ``alpha`` (n,).

    Example:
        >>> e, t = adapt_steps(torch.tensor([0.1, 0.1]), 0, torch.tensor([0.9, 0.1]), 0.5)
        >>> [round(v, 3) for v in e.tolist()], t
        ([0.133, 0.075], 1)
    """
    t += 1
    rate = 1.0 / math.sqrt(t + 1.0)
    return eps * torch.exp(rate * (alpha.to(eps.dtype) - target)), t


def split_halves(n_chains: int, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The chains of a split trial loop, ``(mala, hmc)``: every fourth chain (index 3,
    7, ...; the last one with fewer than 4 chains) runs HMC, the others MALA. A quarter,
    not a half: with half of the chains on HMC the 10-D mixture lost mode hopping on
    some seeds (the flow is fitted to fewer points from those chains).

    Example:
        >>> [t.tolist() for t in split_halves(8)]
        [[0, 1, 2, 4, 5, 6], [3, 7]]
    """
    idx = torch.arange(n_chains, device=device)
    hmc = idx % 4 == 3 if n_chains >= 4 else idx == n_chains - 1
    return idx[~hmc], idx[hmc]


def hmc_move_steps(n_local_steps: int, n_leapfrog: int) -> list[int]:
    """Steps of a split trial loop at which the HMC chains move: every ``n_leapfrog``-th
    (they hold in between), so both kernels spend the same evaluations.

    Example:
        >>> hmc_move_steps(10, 4), hmc_move_steps(3, 8)
        ([3, 7], [2])
    """
    n, L = n_local_steps, n_leapfrog
    return [s for s in range(n) if (s + 1) % L == 0] or [n - 1]


@dataclasses.dataclass
class Adaptation(State):
    """The adapted parts of the local kernel (a part of the checkpoint).

    ``kernel`` is the kernel of the current loop (``"split"`` in a trial loop), ``eps``
    its step size (MALA's in a trial loop, HMC's there is ``eps_hmc``), ``chol`` the
    Cholesky factor of the mass matrix; ``auto_scores``/``auto_choice``: the trial
    loops' scores and the choice of ``kernel="auto"``.
    """

    kernel: str = "mala"
    eps: float = 0.1
    adapt_t: int = 0
    chol: torch.Tensor | None = None
    mass_estimator: str = "identity"  # then "pooled" or "within" (see kernels.mass_cholesky)
    target_acceptance: float = 0.574
    eps_hmc: float = math.nan
    adapt_t_hmc: int = 0
    auto_scores: dict = dataclasses.field(default_factory=lambda: {"mala": [], "hmc": []})
    auto_choice: str | None = None
    loop_jump: float = math.nan  # the last loop's whitened jump per evaluation
    #: ``step_adaptation="chain"``: each chain's own step size (``eps`` is their geometric mean)
    eps_chains: torch.Tensor | None = None

    @classmethod
    def start(cls, kernel: str, dim: int, target_acceptance: float | None, auto: bool, trials: dict,
              device: Any = "cpu", dtype: torch.dtype = torch.float32) -> "Adaptation":
        """The adaptation before the first loop: the nominal step size of ``kernel``, an
        identity mass matrix; with ``auto`` and no trial loops, MALA is chosen at once."""
        return cls(kernel=kernel, eps=nominal_step_size(kernel, dim),
                   chol=torch.eye(dim, dtype=dtype, device=device),
                   target_acceptance=float(target_acceptance or TARGET_ACCEPTANCE[kernel]),
                   auto_choice=None if trials or not auto else "mala")

    @property
    def step_kernel(self) -> str:
        """The kernel whose step size is ``eps`` (MALA's in a split trial loop)."""
        return "mala" if self.kernel == "split" else self.kernel

    def restart_step_sizes(self, dim: int) -> None:
        """Back to the nominal step sizes (after a new mass matrix or kernel)."""
        self.eps, self.adapt_t = nominal_step_size(self.step_kernel, dim), 0
        self.eps_hmc, self.adapt_t_hmc = nominal_step_size("hmc", dim), 0
        if self.eps_chains is not None:
            self.eps_chains = torch.full_like(self.eps_chains, self.eps)

    def per_chain(self, n_chains: int) -> None:
        """``step_adaptation="chain"``: from now on every chain adapts its own step size."""
        self.eps_chains = torch.full((n_chains,), self.eps, dtype=self.chol.dtype, device=self.chol.device)

    def local_step_sizes(self, n_chains: int, production: bool, jitter: float, generator: torch.Generator
                         ) -> "float | torch.Tensor":
        """The step size of each chain for one local move (a float when all share one).

        In training a chain moves with its own adapted step size (``eps_chains``) or the
        shared one; in production, with per-chain step sizes, every chain draws one of
        the chains' adapted step sizes at random for every move, so a chain that a
        global move took from a wide region (a funnel's mouth) to a narrow one (its
        neck) still makes moves of the size the narrow region needs. ``jitter`` > 0
        multiplies each by ``exp(jitter * u)``, ``u`` uniform on [-1, 1]. Both draws
        are independent of the chain's position: the moves stay reversible.

        Example:
            >>> a = Adaptation.start("mala", dim=2, target_acceptance=None, auto=False, trials={})
            >>> a.local_step_sizes(3, False, 0.0, torch.Generator()) == a.eps
            True
            >>> a.per_chain(3); a.eps_chains = torch.tensor([0.1, 0.2, 0.4])
            >>> bool(torch.isin(a.local_step_sizes(3, True, 0.0, torch.Generator()), a.eps_chains).all())
            True
        """
        eps: "float | torch.Tensor" = self.eps
        if self.eps_chains is not None:
            eps = self.eps_chains
            if production:
                pick = torch.randint(n_chains, (n_chains,), generator=generator, device=generator.device)
                eps = eps[pick.to(eps.device)]
        if jitter > 0:
            u = torch.rand(n_chains, generator=generator, device=generator.device, dtype=self.chol.dtype)
            eps = eps * torch.exp(jitter * (2 * u - 1)).to(self.chol.device)
        return eps

    def adapt_local(self, alpha: torch.Tensor) -> None:
        """One Robbins-Monro update of the step size(s) from a local move's acceptance
        probabilities ``alpha`` (n,): shared (:func:`adapt_step`) or per chain
        (:func:`adapt_steps`)."""
        if self.eps_chains is None:
            self.eps, self.adapt_t = adapt_step(self.eps, self.adapt_t, alpha, self.target_acceptance)
        else:
            self.eps_chains, self.adapt_t = adapt_steps(self.eps_chains, self.adapt_t, alpha, self.target_acceptance)
            self.eps = float(self.eps_chains.log().mean().exp())

    def switch(self, loop: int, trials: dict, target_acceptance: float | None, dim: int) -> None:
        """``kernel="auto"``, at the start of a training loop: the kernel of this loop."""
        new = self.auto_choice or trials.get(loop, "mala")
        if new != self.kernel:
            self.kernel = new
            self.target_acceptance = float(target_acceptance or TARGET_ACCEPTANCE[self.step_kernel])
            self.restart_step_sizes(dim)

    def update_mass(self, draws: torch.Tensor, mass: str, dim: int) -> None:
        """A new mass matrix from the last training loop's local draws (``mass`` "full"
        or "diag"), and the step sizes adapted again from their nominal values."""
        chol, self.mass_estimator = mass_cholesky(draws)
        self.chol = chol if mass == "full" else torch.diag(chol.diagonal())
        self.restart_step_sizes(dim)

    def record_scores(self, loop: int, trials: dict, mala: float, hmc: float) -> None:
        """``kernel="auto"``, at the end of a split trial loop's local moves: keep both
        kernels' scores and, after the last trial loop, choose."""
        if self.auto_choice is not None or loop not in trials:
            return
        self.auto_scores["mala"].append(mala)
        self.auto_scores["hmc"].append(hmc)
        if loop == max(trials):
            mean = {k: float(np.mean(v)) if v and np.all(np.isfinite(v)) else -math.inf
                    for k, v in self.auto_scores.items()}
            self.auto_choice = "hmc" if mean["hmc"] > mean["mala"] else "mala"

    def choice(self, requested: str, auto: bool, trials: dict, n_leapfrog: int) -> dict[str, Any]:
        """Why the local kernel is what it is (see ``FlowMCEngine.kernel_choice``)."""
        if not auto:
            return {"requested": requested, "choice": self.kernel}
        means = {k: (float(np.mean(v)) if v else None) for k, v in self.auto_scores.items()}
        return {"requested": "auto", "choice": self.auto_choice, "trial_loops": trials,
                "scores": {k: list(v) for k, v in self.auto_scores.items()}, "mean_scores": means,
                "n_leapfrog": n_leapfrog,
                "criterion": "mean squared jump of the local draws in whitened coordinates (current mass "
                             "matrix) per target evaluation, second half of each trial loop; larger wins"}

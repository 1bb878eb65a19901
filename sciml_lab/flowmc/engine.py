"""The flow-MCMC engine: local gradient moves + a normalizing flow for global moves.

A run is a sequence of *loops*. A training loop is (local steps, flow training
epochs, global steps): the local kernel explores each mode, adapts its step size to
a target acceptance and, from the second loop on, its mass matrix to the chains'
covariance (pooled over chains when their cloud looks Gaussian, else within chains); the flow is fitted by maximum likelihood to the pooled
chain states and proposes independence moves between modes. A production loop is
(local steps, global steps) with everything frozen (step size, mass matrix, flow),
so the production chain is a valid, time-homogeneous Markov chain; only its draws
make the posterior. Training draws are kept apart (``/warmup_posterior``).

The runtime drives the engine one *phase* at a time (a chunk of local steps, a
training block or a global block), each well under a second with the defaults.

References:
    | Adaptive Monte Carlo augmented with normalizing flows (Gabrié, Rotskoff &
    | Vanden-Eijnden, PNAS 2022) https://doi.org/10.1073/pnas.2109420119
    | flowMC (Wong, Gabrié & Foreman-Mackey, JOSS 2023) https://doi.org/10.21105/joss.05021
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import torch
import xarray as xr

from ..kit.device import resolve_device, resolve_dtype
from ..kit.protocol import Badge, Chart, Criterion, EngineBase, MonitorSpec, Phase, badge_targets, parse_criteria, \
    register_engine
from ..kit.verdict import Verdict, criteria_verdict, distinct
from .diagnostics import summary_diagnostics, thinned_draws
from .flow import FlowProposal
from .kernels import DIVERGENCE_THRESHOLD, KERNELS, TARGET_ACCEPTANCE, ChainState, divergent, global_block, \
    local_step, mass_cholesky, nominal_step_size
from .target import Target

__all__ = ["FlowMCEngine", "METRICS", "auto_trials", "whitened_jump_per_eval"]

METRICS = ("lp_mean", "local_acceptance", "global_acceptance", "flow_loss", "rhat", "ess", "step_size",
           "production", "loop", "stuck_chains")
_DIAG_VARS = ("rhat_max", "ess_bulk_min", "local_acceptance", "global_acceptance", "flow_loss", "lp_mean",
              "step_size", "stuck_chains", "production", "wall_time", "local_kernel", "jump_per_eval")
#: codes of the ``local_kernel`` column of ``/diagnostics``
_KERNEL_CODES = {"mala": 0, "hmc": 1, "rw": 2, "split": 3}
#: ``kernel="auto"``: the trial loops after the MALA burn-in ones; each is a *split* loop
#: (MALA on three chains in four, HMC on the others, the same loop for both, so that a
#: trend as the chains settle favours neither and the flow keeps most of its data)
AUTO_TRIALS = ("split", "split", "split", "split")
#: what is kept of every draw (``/posterior`` and ``/sample_stats`` are made of them)
_DRAW_FIELDS = ("u", "lp", "accepted", "kernel", "energy_error")
_GRADIENT_FREE_NOTE = ("log_prob has no torch gradient: sampling with the gradient-free random-walk "
                       "local kernel (slower mixing within modes)")


def _monitor(until: str | None, note: str = "") -> MonitorSpec:
    targets = badge_targets(until, {"rhat": "rhat<1.01", "ess": "ess>400"})
    rhat_badge, ess_badge = targets["rhat"], targets["ess"]
    # the axis ends near the target, so that 1.02 and 1.01 are far apart (early values of 2-3
    # would squash them together); the badge shows any value
    rhat_target = Criterion.parse(rhat_badge).value
    rhat_top = round(max(1.1, 1.0 + 10 * (rhat_target - 1.0)), 3)
    return MonitorSpec(
        charts=(
            Chart("log density (mean over chains)", ("lp_mean",)),
            Chart("acceptance", ("local_acceptance", "global_acceptance")),
            Chart("flow loss (NLL per point)", ("flow_loss",)),
            Chart(f"worst R-hat (axis ends at {rhat_top:g})", ("rhat",), hlines=(rhat_target,), y_max=rhat_top),
            Chart("smallest bulk ESS", ("ess",), log_y=True),
        ),
        badges=(Badge("R-hat", rhat_badge, ".3f"), Badge("ESS", ess_badge, ".0f")),
        key="rhat",
        note=note,
        phase=Phase("production", ("training", "production"), counter="loop"),
    )


def auto_trials(n_training_loops: int) -> dict[int, str]:
    """The training loops where ``kernel="auto"`` measures both candidate kernels, as
    ``{loop: "split"}``: loops 2-5 with 7 or more training loops (1-4 with 6), loops 1-2
    with 3 to 5, none with fewer (then MALA is kept). In a split loop every fourth chain
    runs HMC and the others MALA (``FlowMCEngine._split_local_phase``). The loops before
    are MALA burn-in (the first with an identity mass matrix), not scored: trials from
    loop 1 compared MALA's first loop with a learned mass matrix, still settling, and
    chose HMC on the benchmark's 50-D Gaussian, where MALA is better. The loops after
    the trials run the chosen kernel on all chains.

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


def _adapt_step(eps: float, t: int, alpha: torch.Tensor, target: float) -> tuple[float, int]:
    """One Robbins-Monro step on log(step size) towards the target acceptance:
    returns ``(eps, t)`` after the ``t+1``-th update with acceptance probabilities ``alpha``."""
    t += 1
    rate = 1.0 / math.sqrt(t + 1.0)
    return eps * math.exp(rate * (float(alpha.mean()) - target)), t


def _positive_int(name: str, v: Any, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v!r}")
    return int(v)


@register_engine
class FlowMCEngine(EngineBase):
    """Normalizing-flow-enhanced MCMC (flowMC's method) as a sciml_lab engine.

    Arguments:
        log_prob: batched log-density: ``(n_chains, dim) -> (n_chains,)`` torch
            function (gradients by autograd), or with ``params`` a function of a dict
            of named tensors ``(n_chains, *shape)``; a NumPy function works too
            (then the gradient-free random-walk kernel is used).
        dim: number of dimensions (without ``params``; inferred from ``init``).
        params: parameter names ``["a", "b"]`` or shapes ``{"theta": 3}``.
        bounds: ``{name: (low, high)}``; ``None`` for an open side.
        init: initial points in the user's space: array ``(n_chains, dim)``, dict of
            arrays, or a function ``init(n_chains)`` returning either (a prior
            sampler). Default: uniform in ``init_box`` (inside the bounds).
        n_chains: chains run in parallel.
        n_loops: production loops (the budget ``extend(loops=...)`` raises). With
            ``until`` and no ``n_loops`` it is a cap of 200.
        n_training_loops: training loops before production.
        n_local_steps / n_global_steps: steps of each kernel per loop.
        n_epochs: flow training epochs per training loop.
        kernel: ``"mala"`` (default), ``"hmc"``, ``"rw"`` or ``"auto"``. With ``"auto"``
            the training loops choose between MALA and HMC: after MALA burn-in loops,
            four *split* trial loops (:func:`auto_trials`) run HMC on every fourth chain
            and MALA on the others, with the same target evaluations per chain (an HMC
            chain moves every ``n_leapfrog`` steps and holds in between), each kernel
            with its own step size adapted from its nominal one; the flow is fitted to
            the MALA chains' draws and the HMC chains' trajectory ends. Each kernel is
            scored in each trial loop by the mean squared jump of its chains' local
            draws in the coordinates whitened by the current mass matrix per target
            evaluation (:func:`whitened_jump_per_eval`; a MALA move costs 1 gradient
            evaluation, an HMC move ``n_leapfrog``). The kernel with the larger mean
            score runs, on all chains, the remaining training loops and all production
            loops (the production chain is a fixed, valid Markov chain). After the
            trials an HMC loop makes ``max(1, round(n_local_steps / n_leapfrog))`` moves
            (equal evaluations). Measured (``bench/flowmc``, budget ``small``, seeds
            0-2): HMC chosen on the Rosenbrocks (mean R-hat 1.10 and 1.12 vs MALA's 1.15
            and 1.20, flowMC's 1.15 and 1.20), MALA on the 50-D Gaussian and the
            mixtures, either on the funnel; every chain visits every mode of the 10-D
            mixture on seeds 0-6, but its smallest ESS there is 0.84x MALA's in total.
            The trials used to be whole loops (MALA, HMC, HMC, MALA): the HMC loops'
            5x fewer draws made the flow drop the mixture's lightest mode on a seed. The
            choice and both kernels' scores are in the run's attrs (``kernel``,
            ``kernel_choice``), the kernel of each loop (``split`` for a trial) and the
            MALA chains' score in ``/diagnostics`` (``local_kernel``, ``jump_per_eval``).
        n_leapfrog: leapfrog steps per HMC move.
        target_acceptance: local acceptance the step size adapts to (default per kernel:
            0.574 for MALA, 0.75 for HMC, 0.3 for the random walk).
        mass: ``"full"``, ``"diag"`` or ``"identity"`` preconditioning learned in training:
            from the chains' pooled covariance when their cloud looks Gaussian, else their
            within-chain covariance (:func:`~sciml_lab.flowmc.kernels.mass_cholesky`).
        flow_layers / flow_hidden / flow_bins: the coupling spline flow's size.
        learning_rate / batch_size / max_train_points: flow training.
        defensive: weight of a wide Gaussian mixed into the flow proposal, so that its
            tails are never too light (chains far in the tails can still jump).
        train_temperature: in training loops the flow's base normal is widened by this
            factor (default 1: off), so proposals reach beyond the explored region along
            the learned shape; production uses the flow as trained. Measured: 1.25 helps
            a little on the 2-D Rosenbrock, costs a little on the mixtures.
        train_window: the flow (and its whitening) is fitted to the local draws of the
            last ``train_window`` training loops (default 1; 3 helped the 10-D mixture
            and hurt the 50-D Gaussian in the benchmark).
        until: convergence target, e.g. ``"rhat<1.01 ess>2000"``, checked on the
            production draws after each production loop whose R-hat/ESS were computed
            (they take at most ``DIAGNOSTICS_SHARE`` of the time, and always after the
            last loop of the budget).
        thin: keep every ``thin``-th draw.
        device / dtype / seed: placement, precision and reproducibility (a CPU run is
            deterministic given the seed).

    Example:
        >>> eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=16,
        ...                    n_training_loops=2, n_loops=2, n_local_steps=10,
        ...                    n_global_steps=10, n_epochs=2, device="cpu")
        >>> while not eng.done(): m = eng.step()
        >>> dict(eng.snapshot()["posterior"].sizes)
        {'chain': 16, 'draw': 40, 'x_dim_0': 2}
    """

    kind = "flowmc"
    budget_words = ("loops",)
    monitor = _monitor(None)
    #: bound on chains x steps per ``step()`` call (about half a second on one CPU core)
    CHAIN_EVALS_PER_CALL = 32768
    #: largest share of the sampling time the live R-hat/ESS may take (see ``_diagnostics_due``)
    DIAGNOSTICS_SHARE = 0.03

    def __init__(self, log_prob: Callable, dim: int | None = None, *, params=None, bounds=None, init=None,
                 n_chains: int = 128, n_loops: int | None = None, n_training_loops: int = 8,
                 n_local_steps: int = 30, n_global_steps: int = 30, n_epochs: int = 10, kernel: str = "mala",
                 n_leapfrog: int = 8, target_acceptance: float | None = None, mass: str = "full",
                 flow_layers: int = 4, flow_hidden=(64, 64), flow_bins: int = 8, learning_rate: float = 1e-3,
                 batch_size: int = 1024, max_train_points: int = 10_000, defensive: float = 0.1,
                 train_temperature: float = 1.0, train_window: int = 1, until: str | None = None,
                 thin: int = 1, init_box: tuple[float, float] = (-2.0, 2.0), gradient: "bool | str" = "auto",
                 device: str = "auto", dtype: str = "float32", seed: int = 0, chunk: int = 65536,
                 _restoring: bool = False):
        self.n_chains = _positive_int("n_chains", n_chains, 2)
        self.n_training_loops = _positive_int("n_training_loops", n_training_loops, 1)
        self.n_local_steps = _positive_int("n_local_steps", n_local_steps, 1)
        self.n_global_steps = _positive_int("n_global_steps", n_global_steps, 0)
        self.n_epochs = _positive_int("n_epochs", n_epochs, 0)
        self.n_leapfrog = _positive_int("n_leapfrog", n_leapfrog, 1)
        self.thin = _positive_int("thin", thin, 1)
        self.flow_layers = _positive_int("flow_layers", flow_layers, 1)
        self.flow_bins = _positive_int("flow_bins", flow_bins, 2)
        self.batch_size = _positive_int("batch_size", batch_size, 1)
        self.max_train_points = _positive_int("max_train_points", max_train_points, 2)
        self.flow_hidden = [_positive_int("flow_hidden", h, 1) for h in flow_hidden]
        if kernel not in KERNELS + ("auto",):
            raise ValueError(f"kernel: expected one of {', '.join(KERNELS + ('auto',))}, got {kernel!r}")
        if mass not in ("full", "diag", "identity"):
            raise ValueError(f"mass: expected 'full', 'diag' or 'identity', got {mass!r}")
        self.kernel_requested, self.mass = kernel, mass
        self.learning_rate = float(learning_rate)
        self.defensive = float(defensive)
        self.train_temperature = float(train_temperature)
        self.train_window = _positive_int("train_window", train_window, 1)
        if not self.train_temperature >= 1.0:
            raise ValueError(f"train_temperature: expected a number >= 1, got {train_temperature!r}")
        self.until = until
        self.criteria = parse_criteria(until, known=METRICS)
        if n_loops is None:
            n_loops = 200 if self.criteria else 20
        self.n_loops = _positive_int("n_loops", n_loops, 1)
        self.init_box = (float(init_box[0]), float(init_box[1]))
        self.seed = int(seed)
        self.device_obj = resolve_device(device)
        self.device = str(self.device_obj)
        self.dtype = resolve_dtype(dtype)
        self.gen = torch.Generator(device=self.device_obj).manual_seed(self.seed)

        if dim is None and params is None and init is not None and not callable(init) \
                and not isinstance(init, Mapping):
            dim = int(np.shape(init)[-1])
        self.target = Target(log_prob, params=params, dim=dim, bounds=bounds, gradient=gradient,
                             device=self.device_obj, dtype=self.dtype, chunk=chunk)
        self.dim = self.target.dim
        self._params_config = None if params is None else {k: list(s) for k, s in self.target.shapes.items()}
        u0 = self._initial_points(init)
        has_grad = self.target.resolve_gradient(u0)
        self.kernel = ("mala" if kernel == "auto" else kernel) if has_grad else "rw"
        self.auto = kernel == "auto" and has_grad
        self._target_acceptance_arg = target_acceptance
        self.auto_trials = auto_trials(self.n_training_loops) if self.auto else {}
        self.auto_scores: dict[str, list[float]] = {"mala": [], "hmc": []}
        self.auto_choice: str | None = None if self.auto_trials or not self.auto else "mala"
        self._loop_jump = math.nan
        self.eps_hmc, self.adapt_t_hmc = math.nan, 0  # HMC's step size in split trial loops
        note = "" if has_grad else _GRADIENT_FREE_NOTE
        self.monitor = _monitor(until, note)  # per run: badges follow ``until``
        self.note = note
        self.target_acceptance = float(target_acceptance or TARGET_ACCEPTANCE[self.kernel])
        if not _restoring:  # a checkpoint is about to replace these points
            self._check_finite(u0, self.target.log_prob(u0), init)
        lp, grad = (self.target.log_prob_and_grad(u0) if self.kernel != "rw" else (self.target.log_prob(u0), None))
        self.state = ChainState(u0, lp, grad)
        self.eps = nominal_step_size(self.kernel, self.dim)
        self.chol = torch.eye(self.dim, dtype=self.dtype, device=self.device_obj)
        self.mass_estimator = "identity"  # then "pooled" or "within" (see kernels.mass_cholesky)
        self.adapt_t = 0
        self.flow = FlowProposal(self.dim, self.flow_layers, tuple(self.flow_hidden), self.flow_bins,
                                 self.learning_rate, seed=self.seed, defensive=self.defensive)
        self.flow.to(device=self.device_obj, dtype=self.dtype)
        # initial points are data, not settings: the config only says where they came from
        self._init_config = None if init is None else ("function" if callable(init) else "given")
        self._prev_local_u: torch.Tensor | None = None  # last training loop's local draws (mass matrix)
        self._train_history: list[torch.Tensor] = []  # local draws of earlier training loops (flow data)
        self.loop, self.phase, self.phase_steps = 0, "local", 0
        self.floor = 0
        self.wall = 0.0
        self.diag_wall = 0.0  # part of ``wall`` spent on the live R-hat/ESS
        self.diagnostics_fresh = True
        self.flow_loss = math.nan
        self._reset_loop_buffers()
        self.draws: dict[str, dict[str, list[torch.Tensor]]] = {
            "warmup": {k: [] for k in _DRAW_FIELDS},
            "posterior": {k: [] for k in _DRAW_FIELDS},
        }
        self.counters = {"warmup": 0, "posterior": 0}
        self.diag_rows: list[list[float]] = []
        self.metrics: dict[str, float] = {k: math.nan for k in METRICS}
        self.stuck: list[int] = []

    # ------------------------------------------------------------------ setup
    def _box_points(self, n: int) -> torch.Tensor:
        lo, hi = self.init_box
        r = torch.rand(n, self.dim, generator=self.gen, dtype=self.dtype, device=self.device_obj)
        t = self.target
        a = torch.where(torch.isfinite(t.lo), t.lo, torch.full_like(t.lo, lo))
        b = torch.where(torch.isfinite(t.hi), t.hi, torch.full_like(t.hi, hi))
        a = torch.where(t.lower, t.lo + 1e-3 * (hi - lo), a)  # one open side: a box beside the bound
        b = torch.where(t.lower, t.lo + (hi - lo), b)
        a = torch.where(t.upper, t.hi - (hi - lo), a)
        b = torch.where(t.upper, t.hi - 1e-3 * (hi - lo), b)
        x = a + (b - a) * (0.02 + 0.96 * r)  # stay off the bounds themselves
        return t.unconstrain(x)

    def _as_flat(self, value: Any, n: int) -> torch.Tensor:
        if isinstance(value, Mapping):
            missing = [k for k in self.target.shapes if k not in value]
            if missing:
                raise ValueError(f"init: missing parameters {missing}")
            cols = [torch.as_tensor(np.asarray(value[k]) if not torch.is_tensor(value[k]) else value[k],
                                    dtype=self.dtype, device=self.device_obj).reshape(n, -1)
                    for k in self.target.shapes]
            x = torch.cat(cols, 1)
        else:
            x = torch.as_tensor(value if torch.is_tensor(value) else np.asarray(value), dtype=self.dtype,
                                device=self.device_obj)
            if x.ndim == 1:
                x = x.expand(n, -1).clone()
        if tuple(x.shape) != (n, self.dim):
            raise ValueError(f"init: expected initial points of shape ({n}, {self.dim}), got {tuple(x.shape)}")
        return x

    def _initial_points(self, init: Any) -> torch.Tensor:
        n = self.n_chains
        if init is None:
            return self._box_points(n)
        if callable(init):
            return self.target.unconstrain(self._as_flat(init(n), n))
        return self.target.unconstrain(self._as_flat(init, n))

    def _check_finite(self, u: torch.Tensor, lp: torch.Tensor, init: Any) -> None:
        bad = ~torch.isfinite(lp) | ~torch.isfinite(u).all(1)
        tries = 0
        while bool(bad.any()) and (init is None or callable(init)) and tries < 100:
            fresh = self._initial_points(init)
            u[bad] = fresh[bad]
            lp_new = self.target.log_prob(u)
            lp[bad] = lp_new[bad]
            bad = ~torch.isfinite(lp) | ~torch.isfinite(u).all(1)
            tries += 1
        if bool(bad.any()):
            idx = torch.nonzero(bad).flatten().tolist()
            shown = ", ".join(map(str, idx[:20])) + (" ..." if len(idx) > 20 else "")
            raise ValueError(f"init: log_prob is -inf or NaN at the initial point of chains [{shown}] "
                             f"({len(idx)} of {self.n_chains}); give initial points inside the support "
                             "(init=...) or bounds=... for constrained parameters")

    def _reset_loop_buffers(self) -> None:
        self.cur = {"local_u": [], "local_acc": [], "local_alpha": [], "global_acc": []}

    # ------------------------------------------------------------------ protocol
    def default_extend(self) -> dict[str, int]:
        """What the monitor's extend button asks for."""
        return {"loops": max(1, min(self.n_loops, 10))}

    @property
    def production(self) -> bool:
        return self.loop >= self.n_training_loops

    @property
    def production_loops(self) -> int:
        return max(0, self.loop - self.n_training_loops)

    def done(self) -> bool:
        if self.phase != "local" or self.phase_steps:
            return False
        if self.production_loops >= self.n_loops:
            return True
        if self.criteria and self.production_loops >= max(self.floor, 1) and self.diagnostics_fresh:
            return all(c.met(self.metrics) for c in self.criteria)
        return False

    def progress(self) -> float:
        if self.done():  # the budget is spent or the ``until`` target is met
            return 1.0
        total = self.n_training_loops + self.n_loops
        if self.phase == "local":
            partial = 0.4 * self.phase_steps / self._local_steps()
        elif self.phase == "train":
            partial = 0.4
        else:
            partial = 0.6 + 0.4 * self.phase_steps / max(self.n_global_steps, 1)
        return min(1.0, (self.loop + partial) / total)

    def extend(self, loops: int) -> None:
        loops = _positive_int("loops", loops, 1)
        self.n_loops = max(self.n_loops, self.production_loops) + loops
        self.floor = self.production_loops + loops

    def step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        if self.phase == "local":
            self._local_phase()
        elif self.phase == "train":
            self._train_phase()
        else:
            self._global_phase()
        self.wall += time.perf_counter() - t0
        out = dict(self.metrics)
        # the monitor's phase pill shows the loop in progress; the other metrics are
        # those of the last finished loop
        out["production"] = float(self.production)
        out["loop"] = float(self.loop + (0 if self.done() else 1))
        return out

    # ------------------------------------------------------------------ phases
    def _local_steps(self) -> int:
        """Local moves in this loop: ``n_local_steps``, but with ``kernel="auto"`` an
        HMC move stands for ``n_leapfrog`` of them (equal target evaluations)."""
        if self.auto and self.kernel == "hmc":
            return max(1, round(self.n_local_steps / self.n_leapfrog))
        return self.n_local_steps

    def _step_kernel(self) -> str:
        """The kernel whose step size is ``self.eps`` (MALA's in a split trial loop)."""
        return "mala" if self.kernel == "split" else self.kernel

    def _auto_switch(self) -> None:
        """``kernel="auto"``, at the start of a training loop: the kernel of this loop."""
        new = self.auto_choice or self.auto_trials.get(self.loop, "mala")
        if new != self.kernel:
            self.kernel = new
            step = self._step_kernel()
            self.target_acceptance = float(self._target_acceptance_arg or TARGET_ACCEPTANCE[step])
            self.eps, self.adapt_t = nominal_step_size(step, self.dim), 0
            self.eps_hmc, self.adapt_t_hmc = nominal_step_size("hmc", self.dim), 0

    def _split_halves(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The chains of a split trial loop, ``(mala, hmc)``: every fourth chain (index 3,
        7, ...; the last one with fewer than 4 chains) runs HMC, the others MALA. A quarter,
        not a half: with half of the chains on HMC the 10-D mixture lost mode hopping on
        some seeds (the flow is fitted to fewer points from those chains)."""
        idx = torch.arange(self.n_chains, device=self.device_obj)
        hmc = idx % 4 == 3 if self.n_chains >= 4 else idx == self.n_chains - 1
        return idx[~hmc], idx[hmc]

    def _hmc_move_steps(self) -> list[int]:
        """Steps of a split trial loop at which the HMC half moves: every ``n_leapfrog``-th
        (the HMC chains hold in between), so both halves spend the same evaluations."""
        n, L = self.n_local_steps, self.n_leapfrog
        return [s for s in range(n) if (s + 1) % L == 0] or [n - 1]

    def _split_local_phase(self) -> None:
        """A ``kernel="auto"`` trial loop: MALA on three chains in four and HMC on the
        others (:meth:`_split_halves`) with the same target evaluations per chain, each
        kernel with its own step size adapted from its nominal one. An HMC chain moves
        every ``n_leapfrog`` steps and holds in between. The flow is fitted to all the
        MALA chains' draws and the HMC chains' trajectory ends (no held copies)."""
        ev, od = self._split_halves()
        moves = set(self._hmc_move_steps())
        ta_m = float(self._target_acceptance_arg or TARGET_ACCEPTANCE["mala"])
        ta_h = float(self._target_acceptance_arg or TARGET_ACCEPTANCE["hmc"])
        n_local = self.n_local_steps
        todo = min(n_local - self.phase_steps, self._chunk(2))
        us, lps, accs, energies = [], [], [], []

        def sub(st, i):
            return ChainState(st.x[i], st.lp[i], st.grad[i])

        for k in range(todo):
            s = self.phase_steps + k
            st = self.state
            x, lp, grad = st.x.clone(), st.lp.clone(), st.grad.clone()
            acc = torch.zeros(self.n_chains, dtype=torch.bool, device=x.device)
            energy = torch.full((self.n_chains,), math.nan, dtype=lp.dtype, device=x.device)  # NaN: held
            m, a_m, al_m, e_m = local_step("mala", self.target, sub(st, ev), self.eps, self.chol, self.gen,
                                           self.n_leapfrog)
            x[ev], lp[ev], grad[ev], acc[ev], energy[ev] = m.x, m.lp, m.grad, a_m, e_m
            self.eps, self.adapt_t = _adapt_step(self.eps, self.adapt_t, al_m, ta_m)
            if s in moves:
                h, a_h, al_h, e_h = local_step("hmc", self.target, sub(st, od), self.eps_hmc, self.chol, self.gen,
                                               self.n_leapfrog)
                x[od], lp[od], grad[od], acc[od], energy[od] = h.x, h.lp, h.grad, a_h, e_h
                self.eps_hmc, self.adapt_t_hmc = _adapt_step(self.eps_hmc, self.adapt_t_hmc, al_h, ta_h)
            self.state = ChainState(x, lp, grad)
            us.append(x)
            lps.append(lp)
            accs.append(acc)
            energies.append(energy)
            self.cur["local_alpha"].append(float(al_m.mean()))
        self._keep_local_chunk(us, lps, accs, energies)
        self.phase_steps += todo
        if self.phase_steps >= n_local:
            u = torch.cat(self.cur["local_u"], 1)
            steps = torch.tensor(sorted(moves), device=u.device)
            mala = whitened_jump_per_eval(u[ev], self.chol, 1)
            hmc = whitened_jump_per_eval(u[od][:, steps], self.chol, self.n_leapfrog)
            self._loop_jump = mala
            self._auto_record(mala, hmc)
            self._local_phase_done()

    def _keep_local_chunk(self, us: list, lps: list, accs: list, energies: list) -> None:
        """Store a chunk of local draws (lists of ``(chain, dim)`` / ``(chain,)`` per step)."""
        u, acc = torch.stack(us, 1), torch.stack(accs, 1)
        self.cur["local_u"].append(u)
        self.cur["local_acc"].append(acc)
        self._record(u, torch.stack(lps, 1), acc, 0, torch.stack(energies, 1))

    def _local_phase_done(self) -> None:
        """After the loop's last local step: flow training, global moves, or the loop's end."""
        self.phase_steps = 0
        if not self.production and self.n_epochs:
            self.phase = "train"
        elif self.n_global_steps:
            self.phase = "global"
        else:
            self._end_loop()

    def _auto_record(self, mala: float, hmc: float) -> None:
        """``kernel="auto"``, at the end of a split trial loop's local moves: keep both
        kernels' scores and, after the last trial loop, choose."""
        if self.auto_choice is not None or self.loop not in self.auto_trials:
            return
        self.auto_scores["mala"].append(mala)
        self.auto_scores["hmc"].append(hmc)
        if self.loop == max(self.auto_trials):
            mean = {k: float(np.mean(v)) if v and np.all(np.isfinite(v)) else -math.inf
                    for k, v in self.auto_scores.items()}
            self.auto_choice = "hmc" if mean["hmc"] > mean["mala"] else "mala"

    def kernel_choice(self) -> dict[str, Any]:
        """Why the local kernel is what it is: with ``kernel="auto"``, the choice (``None``
        until the trial loops are done) and each candidate's whitened squared jump per
        target evaluation in its trial loops.

        Example:
            >>> FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, kernel="auto",
            ...              device="cpu").kernel_choice()["choice"] is None
            True
        """
        if not self.auto:
            return {"requested": self.kernel_requested, "choice": self.kernel}
        means = {k: (float(np.mean(v)) if v else None) for k, v in self.auto_scores.items()}
        return {"requested": "auto", "choice": self.auto_choice, "trial_loops": self.auto_trials,
                "scores": {k: list(v) for k, v in self.auto_scores.items()}, "mean_scores": means,
                "n_leapfrog": self.n_leapfrog,
                "criterion": "mean squared jump of the local draws in whitened coordinates (current mass "
                             "matrix) per target evaluation, second half of each trial loop; larger wins"}

    def _local_phase(self) -> None:
        starting = self.phase_steps == 0 and not self.production
        if starting and self.auto:
            self._auto_switch()
        if starting and self.mass != "identity" and self._prev_local_u is not None:
            chol, self.mass_estimator = mass_cholesky(self._prev_local_u)
            self.chol = chol if self.mass == "full" else torch.diag(chol.diagonal())
            self.eps, self.adapt_t = nominal_step_size(self._step_kernel(), self.dim), 0
            self.eps_hmc, self.adapt_t_hmc = nominal_step_size("hmc", self.dim), 0
        if self.kernel == "split":
            self._split_local_phase()
            return
        evals = self.n_leapfrog if self.kernel == "hmc" else 1
        n_local = self._local_steps()
        todo = min(n_local - self.phase_steps, self._chunk(evals))
        us, lps, accs, energies = [], [], [], []
        for _ in range(todo):
            self.state, acc, alpha, energy = local_step(self.kernel, self.target, self.state, self.eps, self.chol,
                                                        self.gen, self.n_leapfrog)
            if not self.production:  # Robbins-Monro on log(eps), reset at each mass update
                self.eps, self.adapt_t = _adapt_step(self.eps, self.adapt_t, alpha, self.target_acceptance)
            us.append(self.state.x)
            lps.append(self.state.lp)
            accs.append(acc)
            energies.append(energy)
            self.cur["local_alpha"].append(float(alpha.mean()))
        self._keep_local_chunk(us, lps, accs, energies)
        self.phase_steps += todo
        if self.phase_steps >= n_local:
            # (``kernel="auto"`` scores its kernels in the split trial loops only)
            self._loop_jump = whitened_jump_per_eval(torch.cat(self.cur["local_u"], 1), self.chol, evals)
            self._local_phase_done()

    def _train_phase(self) -> None:
        recent = self._train_history[-(self.train_window - 1):] if self.train_window > 1 else []
        pts = torch.cat(recent + self.cur["local_u"], 1).reshape(-1, self.dim)
        if self.kernel == "split":  # the MALA chains' draws and the HMC chains' trajectory ends
            u = torch.cat(self.cur["local_u"], 1)
            ev, od = self._split_halves()
            steps = torch.tensor(self._hmc_move_steps(), device=u.device)
            pts = torch.cat([t.reshape(-1, self.dim) for t in recent]
                            + [u[ev].reshape(-1, self.dim), u[od][:, steps].reshape(-1, self.dim)])
        if len(pts) > self.max_train_points:
            idx = torch.randperm(len(pts), generator=self.gen, device=self.gen.device)[: self.max_train_points]
            pts = pts[idx.to(pts.device)]
        self.flow.set_whitening(pts)
        self.flow_loss = self.flow.fit(pts, self.n_epochs, self.gen, self.batch_size)
        self.phase = "global"
        if self.n_global_steps == 0:
            self._end_loop()

    def _chunk(self, evals_per_step: int) -> int:
        """Steps per ``step()`` call: at most 64, and at most ``CHAIN_EVALS_PER_CALL``
        target evaluations in all, so that a call stays short with many chains."""
        return max(1, min(64 // evals_per_step, self.CHAIN_EVALS_PER_CALL // (self.n_chains * evals_per_step)))

    def _global_phase(self) -> None:
        self.flow.temperature = 1.0 if self.production else self.train_temperature
        todo = min(self.n_global_steps - self.phase_steps, self._chunk(1))
        self.state, xs, lps, acc, _ = global_block(self.target, self.flow, self.state, todo, self.gen)
        self.cur["global_acc"].append(acc)
        self._record(xs, lps, acc, 1, torch.full(acc.shape, math.nan, dtype=lps.dtype, device=acc.device))
        self.phase_steps += todo
        if self.phase_steps >= self.n_global_steps:
            self._end_loop()

    def _record(self, u: torch.Tensor, lp: torch.Tensor, acc: torch.Tensor, kernel: int,
                energy: torch.Tensor) -> None:
        group = "posterior" if self.production else "warmup"
        steps = u.shape[1]
        keep = (self.counters[group] + torch.arange(steps)) % self.thin == 0
        self.counters[group] += steps
        if not bool(keep.any()):
            return
        keep = keep.to(u.device)
        d = self.draws[group]
        d["u"].append(u[:, keep].detach().cpu())
        d["lp"].append(lp[:, keep].detach().cpu())
        d["accepted"].append(acc[:, keep].cpu())
        d["kernel"].append(torch.full((u.shape[0], int(keep.sum())), kernel, dtype=torch.int8))
        d["energy_error"].append(energy[:, keep.to(energy.device)].detach().cpu())

    def _end_loop(self) -> None:
        local_acc = torch.cat(self.cur["local_acc"], 1)
        global_acc = torch.cat(self.cur["global_acc"], 1) if self.cur["global_acc"] else None
        moved = local_acc.any(1) if global_acc is None else (local_acc.any(1) | global_acc.any(1))
        self.stuck = torch.nonzero(~moved).flatten().tolist()
        lp_now = self.state.lp
        self._prev_local_u = torch.cat(self.cur["local_u"], 1)
        if not self.production:
            self._train_history = (self._train_history + [self._prev_local_u])[-max(self.train_window - 1, 0):] \
                if self.train_window > 1 else []
        t0 = time.perf_counter()
        if not self.production:
            draws = torch.cat(self.cur["local_u"], 1).double().cpu().numpy()
            rhat, ess = summary_diagnostics(draws)
            fresh = True
        elif self._diagnostics_due():
            rhat, ess = self._production_diagnostics()
            fresh = True
        else:  # the monitor keeps the last values; the history row says "not computed"
            rhat, ess = self.metrics["rhat"], self.metrics["ess"]
            fresh = False
        self.diag_wall += time.perf_counter() - t0
        self.diagnostics_fresh = fresh  # ``until`` is judged on fresh values only
        was_production = self.production
        self.metrics = {
            "lp_mean": float(lp_now[torch.isfinite(lp_now)].mean()) if bool(torch.isfinite(lp_now).any()) else math.nan,
            "local_acceptance": float(local_acc.float().mean()),
            "global_acceptance": float(global_acc.float().mean()) if global_acc is not None else math.nan,
            "flow_loss": self.flow_loss if not was_production else math.nan,
            "rhat": rhat,
            "ess": ess,
            "step_size": float(self.eps),
            "production": float(was_production),
            "loop": float(self.loop + 1),
            "stuck_chains": float(len(self.stuck)),
        }
        self.diag_rows.append([rhat if fresh else math.nan, ess if fresh else math.nan, self.metrics["local_acceptance"], self.metrics["global_acceptance"],
                               self.metrics["flow_loss"], self.metrics["lp_mean"], self.metrics["step_size"],
                               float(len(self.stuck)), float(was_production), self.wall,
                               float(_KERNEL_CODES[self.kernel]), self._loop_jump])
        self.loop += 1
        self.phase, self.phase_steps = "local", 0
        self._reset_loop_buffers()

    def _diagnostics_due(self) -> bool:
        """Whether to compute R-hat/ESS after this production loop: always after the last
        loop of the budget, otherwise only while their time so far stays within
        ``DIAGNOSTICS_SHARE`` of the sampling time (a loop of a cheap 2-D target takes
        ~30 ms and its diagnostics up to ~8 ms, so computing them after every loop cost
        ~17 % of production there). ``until`` is only judged after a loop whose values
        are fresh, so a stop can come a few loops later than with a check after every
        loop, never earlier, and the last history row always holds computed values."""
        if self.production_loops + 1 >= self.n_loops:
            return True
        return self.diag_wall <= self.DIAGNOSTICS_SHARE * max(self.wall - self.diag_wall, 0.0)

    def _production_diagnostics(self) -> tuple[float, float]:
        u = self.draws["posterior"]["u"]
        if not u:
            return math.nan, math.nan
        n_chains, n_draws = u[0].shape[0], sum(block.shape[1] for block in u)
        # a fixed subset of chains and evenly thinned draws bound the cost (see
        # summary_diagnostics); ESS is scaled back up by the share of chains used
        chains = torch.linspace(0, n_chains - 1, min(n_chains, 256)).round().long()
        keep = torch.as_tensor(thinned_draws(len(chains), n_draws, self.dim))
        draws = torch.cat(u, 1)[chains][:, keep].double().numpy()
        rhat, ess = summary_diagnostics(draws)
        return rhat, ess * n_chains / len(chains)

    # ------------------------------------------------------------------ results
    def _named(self, x: np.ndarray, lead: tuple[str, ...]) -> dict[str, tuple]:
        """Flat points ``(*lead, dim)`` as named variables with ArviZ-style dims."""
        out = {}
        for name, sl in self.target.slices.items():
            shape = self.target.shapes[name]
            dims = lead + tuple(f"{name}_dim_{i}" for i in range(len(shape)))
            out[name] = (dims, x[..., sl].reshape(*x.shape[:-1], *shape))
        return out

    def _group(self, group: str) -> tuple[xr.Dataset, xr.Dataset] | None:
        d = self.draws[group]
        if not d["u"]:
            return None
        u = torch.cat(d["u"], 1)
        c, n, dim = u.shape
        flat = u.reshape(-1, dim).to(self.dtype).to(self.device_obj)
        x = self.target.constrain(flat)
        log_j = self.target.log_jacobian(flat)
        lp_user = torch.cat(d["lp"], 1).to(self.device_obj) - log_j.reshape(c, n)
        x = x.reshape(c, n, dim).detach().cpu().double().numpy()
        coords = {"chain": np.arange(c), "draw": np.arange(n)}
        energy = torch.cat(d["energy_error"], 1).double().numpy()
        diverging = divergent(energy)
        posterior = xr.Dataset(self._named(x, ("chain", "draw")), coords=coords)
        for name, (low, high) in self.target.bounds.items():
            posterior[name].attrs.update(lower_bound=low, upper_bound=high)  # "bounds" means a variable in CF
        stats = xr.Dataset(
            {"lp": (("chain", "draw"), lp_user.detach().cpu().double().numpy(),
                    {"long_name": "log density of the draw (user's log_prob)"}),
             "accepted": (("chain", "draw"), torch.cat(d["accepted"], 1).numpy()),
             "kernel": (("chain", "draw"), torch.cat(d["kernel"], 1).numpy(),
                        {"flag_values": [0, 1], "flag_meanings": "local global"}),
             "energy_error": (("chain", "draw"), energy, {
                 "long_name": "energy error of the local proposal (minus its log Metropolis-Hastings ratio)",
                 "comment": "NaN for a global (flow) move or a chain holding in a split trial loop; "
                            "inf for a proposal with a non-finite log density or gradient"}),
             "diverging": (("chain", "draw"), diverging, {
                 "long_name": f"divergent local proposal (energy error > {DIVERGENCE_THRESHOLD:g} or not finite)"})},
            coords=coords,
        )
        return posterior, stats

    def _flow_samples(self, n: int = 1000) -> xr.Dataset:
        # a generator of its own: looking at the flow must not change the chains
        gen = torch.Generator(device=self.device_obj).manual_seed(self.seed * 1_000_003 + self.loop)
        u, _ = self.flow.sample_and_log_prob(n, gen)
        x = self.target.constrain(u).detach().cpu().double().numpy()
        return xr.Dataset(self._named(x, ("sample",)), coords={"sample": np.arange(n)},
                          attrs={"description": "independent draws from the current normalizing flow"})

    def snapshot(self) -> xr.DataTree:
        groups: dict[str, xr.Dataset] = {}
        prod = self._group("posterior")
        if prod is not None:
            groups["/posterior"], groups["/sample_stats"] = prod
        warm = self._group("warmup")
        if warm is not None:
            groups["/warmup_posterior"], groups["/warmup_sample_stats"] = warm
        if self.loop >= 1 and self.n_epochs:
            groups["/flow_samples"] = self._flow_samples()
        rows = np.array(self.diag_rows, dtype=float).reshape(-1, len(_DIAG_VARS))
        diag = xr.Dataset({k: ("iteration", rows[:, i]) for i, k in enumerate(_DIAG_VARS)},
                          coords={"iteration": np.arange(len(rows))})
        diag["production"] = diag["production"].astype(np.int8)
        diag["wall_time"].attrs["units"] = "s"
        diag["local_kernel"].attrs.update(flag_values=list(_KERNEL_CODES.values()),
                                          flag_meanings=" ".join(_KERNEL_CODES))
        diag["jump_per_eval"].attrs["long_name"] = ("mean squared jump of the loop's local draws in whitened "
                                                    "coordinates per target evaluation (second half of the loop)")
        diag["rhat_max"].attrs["long_name"] = "worst rank-normalized split R-hat"
        diag["ess_bulk_min"].attrs["long_name"] = "smallest bulk ESS (draws thinned to <= 1000 per chain)"
        for k in ("rhat_max", "ess_bulk_min"):
            diag[k].attrs["comment"] = "NaN after a production loop where it was not computed (time budget)"
        groups["/diagnostics"] = diag
        tree = xr.DataTree.from_dict(groups)
        tree.attrs.update(
            parameters=json.dumps(self.target.names),
            kernel=self.kernel, kernel_choice=json.dumps(self.kernel_choice()),
            phase="production" if self.production else "training",
            step_size=float(self.eps), mass_estimator=self.mass_estimator,
            stuck_chains=json.dumps(self.stuck[:100]), note=self.note,
            inference_library="sciml_lab.flowmc",
        )
        return tree

    # ------------------------------------------------------------------ verdict
    #: parameters named one by one in the warnings (the worst first); the rest are counted
    MAX_PARAMETER_WARNINGS = 5

    #: values (chains x draws x parameters) the verdict's summary reads at most; a larger
    #: posterior is thinned evenly along the draws (ESS of thinned draws is conservative)
    VERDICT_MAX_VALUES = 1_000_000

    def parameter_summary(self, max_values: int | None = None) -> "pd.DataFrame | None":
        """The summary of the production draws so far (:func:`~sciml_lab.flowmc.plots.summary`:
        mean, sd, HDI, MCSE, bulk and tail ESS and R-hat per scalar parameter), or None
        before the first production draw. With ``max_values`` the draws are first thinned
        evenly to at most that many numbers (never below 50 draws per chain)."""
        from .plots import summary

        group = self._group("posterior")
        if group is None:
            return None
        posterior = group[0]
        if max_values is not None:
            c, n = posterior.sizes["chain"], posterior.sizes["draw"]
            keep = thinned_draws(c, n, self.dim, max_draws=n, max_values=max_values)
            posterior = posterior.isel(draw=keep)
        return summary(posterior)

    def verdict(self, metrics: Mapping[str, float] | None = None) -> Verdict:
        """The shared ``until`` judgement (:func:`~sciml_lab.kit.verdict.criteria_verdict`),
        naming the parameter with the worst R-hat and bulk ESS, plus :meth:`warnings`."""
        table = self.parameter_summary(self.VERDICT_MAX_VALUES)
        where = {}
        if table is not None and table["r_hat"].notna().any():
            where["rhat"] = str(table["r_hat"].idxmax())
        if table is not None and table["ess_bulk"].notna().any():
            where["ess"] = str(table["ess_bulk"].idxmin())
        return criteria_verdict(self.criteria, dict(metrics or self.metrics), monitor=self.monitor, where=where,
                                warnings=self._warnings(table), default_targets=False)

    def warnings(self) -> list[str]:
        """What a statistician should know about the draws, in words and numbers: each
        parameter whose R-hat or bulk/tail ESS misses the badges' targets (``until``'s
        where it names them, else R-hat < 1.01 and ESS > 400), divergent transitions
        of the local kernel, chains that did not move, a run with no production draws.

        Example:
            >>> eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=4, device="cpu")
            >>> eng.warnings()
            ['no production draws yet (0 of 8 training loops done): nothing to judge the posterior by']
        """
        return self._warnings(self.parameter_summary(self.VERDICT_MAX_VALUES))

    def _when(self) -> str:
        n = self.production_loops
        return (f"after the loop cap ({n} production loops)" if n >= self.n_loops
                else f"after {n} production loop{'s' if n != 1 else ''}")

    def _warnings(self, table: "pd.DataFrame | None") -> list[str]:
        if table is None:
            return [f"no production draws yet ({min(self.loop, self.n_training_loops)} of {self.n_training_loops} "
                    "training loops done): nothing to judge the posterior by"]
        out = self._parameter_warnings(table)
        energy = torch.cat(self.draws["posterior"]["energy_error"], 1).numpy()
        proposals = int((~np.isnan(energy)).sum())
        n_div = int(divergent(energy).sum())
        if n_div:
            out.append(f"{n_div} divergent transitions ({100 * n_div / max(proposals, 1):.2g} % of the "
                       f"{proposals} local proposals after training; energy error > {DIVERGENCE_THRESHOLD:g} or "
                       "not finite): the posterior has regions of high curvature (a funnel?) that the sampler "
                       "cannot explore reliably; reparameterise (e.g. non-centred) or raise target_acceptance "
                       "(e.g. 0.9) for smaller steps")
        if self.stuck:
            shown = ", ".join(map(str, self.stuck[:10])) + (" ..." if len(self.stuck) > 10 else "")
            out.append(f"{len(self.stuck)} of {self.n_chains} chains did not move in the last loop (chains "
                       f"{shown}): they sit where neither kernel can leave; check the log-density there or "
                       "give init=... inside the bulk of the posterior")
        return out

    def _parameter_warnings(self, table: "pd.DataFrame") -> list[str]:
        """One warning per parameter whose R-hat or ESS misses the badges' targets."""
        targets = {c.metric: c for c in (Criterion.parse(b.criterion) for b in self.monitor.badges)}
        rhat_c, ess_c = targets["rhat"], targets["ess"]
        bad = []
        for name, row in table.iterrows():
            r, eb, et = float(row["r_hat"]), float(row["ess_bulk"]), float(row["ess_tail"])
            problems = []
            if not rhat_c.met({"rhat": r}):
                problems.append(f"R-hat {distinct(r, rhat_c.value, '.3f')} > {rhat_c.value:g}" if math.isfinite(r)
                                else "R-hat not computed")
            low = [f"{label} ESS {v:.0f}" for label, v in (("bulk", eb), ("tail", et))
                   if not ess_c.met({"ess": v}) and math.isfinite(v)]
            if low:
                problems.append(f"{' and '.join(low)} < {ess_c.value:g}")
            if problems:
                badness = (r if math.isfinite(r) else math.inf, -min(eb, et))
                bad.append((badness, str(name), problems, not rhat_c.met({"rhat": r})))
        bad.sort(reverse=True)
        out = []
        for _, name, problems, mixing in bad[: self.MAX_PARAMETER_WARNINGS]:
            fix = ("extend the run or reparameterise (e.g. non-centred for a hierarchical scale)" if mixing
                   else "extend the run (more loops or chains)")
            out.append(f"{name}: {', '.join(problems)} {self._when()}; {fix}")
        if len(bad) > self.MAX_PARAMETER_WARNINGS:
            rest = [name for _, name, _, _ in bad[self.MAX_PARAMETER_WARNINGS:]]
            out.append(f"{len(rest)} more parameters miss R-hat < {rhat_c.value:g} or ESS > {ess_c.value:g}: "
                       + ", ".join(rest[:10]) + (" ..." if len(rest) > 10 else ""))
        return out

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        empty = torch.zeros(0)
        draws = {g: {k: (torch.cat(v, 1) if v else empty) for k, v in d.items()} for g, d in self.draws.items()}
        cur = {k: ([torch.cat(v, 1)] if v and torch.is_tensor(v[0]) else list(v)) for k, v in self.cur.items()}
        prev = self._prev_local_u
        return {
            "version": 1, "gen": self.gen.get_state(), "x": self.state.x, "lp": self.state.lp,
            "grad": self.state.grad if self.state.grad is not None else empty,
            "eps": float(self.eps), "chol": self.chol, "mass_estimator": self.mass_estimator,
            "adapt_t": int(self.adapt_t), "flow": self.flow.checkpoint(),
            "flow_loss": float(self.flow_loss), "loop": int(self.loop), "phase": self.phase,
            "phase_steps": int(self.phase_steps), "n_loops": int(self.n_loops), "floor": int(self.floor),
            "wall": float(self.wall), "diag_wall": float(self.diag_wall),
            "diagnostics_fresh": bool(self.diagnostics_fresh), "cur": cur,
            "prev_local_u": prev if prev is not None else empty,
            "draws": draws, "counters": dict(self.counters), "train_history": list(self._train_history),
            "diag_rows": torch.tensor(self.diag_rows, dtype=torch.float64).reshape(-1, len(_DIAG_VARS)),
            "metrics": dict(self.metrics), "stuck": list(self.stuck), "kernel": self.kernel,
            "auto": {"scores": {k: list(v) for k, v in self.auto_scores.items()},
                     "choice": self.auto_choice, "target_acceptance": float(self.target_acceptance),
                     "loop_jump": float(self._loop_jump), "eps_hmc": float(self.eps_hmc),
                     "adapt_t_hmc": int(self.adapt_t_hmc)},
            "gradient": bool(self.target.gradient),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        dev = self.device_obj
        self.gen.set_state(state["gen"].cpu() if self.device_obj.type == "cpu" else state["gen"])
        self.target.gradient = bool(state["gradient"])
        self.kernel = state["kernel"]
        grad = state["grad"].to(dev) if state["grad"].numel() else None
        self.state = ChainState(state["x"].to(dev), state["lp"].to(dev), grad)
        self.eps, self.chol, self.adapt_t = float(state["eps"]), state["chol"].to(dev), int(state["adapt_t"])
        self.mass_estimator = str(state.get("mass_estimator", "within"))
        self.flow.restore(state["flow"])
        self.flow_loss = float(state["flow_loss"])
        self.loop, self.phase, self.phase_steps = int(state["loop"]), str(state["phase"]), int(state["phase_steps"])
        self.n_loops, self.floor, self.wall = int(state["n_loops"]), int(state["floor"]), float(state["wall"])
        self.diag_wall = float(state.get("diag_wall", 0.0))
        self.diagnostics_fresh = bool(state.get("diagnostics_fresh", True))
        self._reset_loop_buffers()
        for k, v in state["cur"].items():
            self.cur[k] = [t.to(dev) if torch.is_tensor(t) else t for t in v]
        prev = state["prev_local_u"]
        self._prev_local_u = prev.to(dev) if prev.numel() else None
        self._train_history = [t.to(dev) for t in state["train_history"]]
        self.draws = {g: {k: ([v] if v.numel() else []) for k, v in d.items()} for g, d in state["draws"].items()}
        for d in self.draws.values():  # a checkpoint from before energy errors were kept: NaN (unknown)
            if "energy_error" not in d:
                d["energy_error"] = [torch.full_like(t, math.nan, dtype=torch.float64) for t in d["lp"]]
        self.counters = {k: int(v) for k, v in state["counters"].items()}
        rows = state["diag_rows"].tolist()  # a checkpoint from before a column was added: NaN there
        self.diag_rows = [r + [math.nan] * (len(_DIAG_VARS) - len(r)) for r in rows]
        auto = state.get("auto")
        if auto:
            self.auto_scores = {k: [float(x) for x in v] for k, v in auto["scores"].items()}
            self.auto_choice = auto["choice"]
            self.target_acceptance = float(auto["target_acceptance"])
            self._loop_jump = float(auto["loop_jump"])
            self.eps_hmc = float(auto.get("eps_hmc", math.nan))
            self.adapt_t_hmc = int(auto.get("adapt_t_hmc", 0))
        self.metrics = {k: float(v) for k, v in state["metrics"].items()}
        self.stuck = [int(i) for i in state["stuck"]]

    def config(self) -> dict[str, Any]:
        return {
            "dim": self.dim if self._params_config is None else None, "params": self._params_config,
            "bounds": {k: list(v) for k, v in self.target.bounds.items()} or None, "init": self._init_config,
            "n_chains": self.n_chains, "n_loops": self.n_loops, "n_training_loops": self.n_training_loops,
            "n_local_steps": self.n_local_steps, "n_global_steps": self.n_global_steps, "n_epochs": self.n_epochs,
            "kernel": self.kernel_requested, "n_leapfrog": self.n_leapfrog,
            "target_acceptance": (self._target_acceptance_arg if self.auto else self.target_acceptance), "mass": self.mass, "flow_layers": self.flow_layers,
            "flow_hidden": list(self.flow_hidden), "flow_bins": self.flow_bins,
            "learning_rate": self.learning_rate, "batch_size": self.batch_size,
            "max_train_points": self.max_train_points, "defensive": self.defensive,
            "train_temperature": self.train_temperature, "train_window": self.train_window, "until": self.until, "thin": self.thin,
            "init_box": list(self.init_box), "device": self.device,
            "dtype": "float64" if self.dtype == torch.float64 else "float32", "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "FlowMCEngine":
        """Rebuild from :meth:`config`; ``log_prob`` (and ``init`` if it was a function
        or an array, optionally) must be passed again.

        Example:
            >>> e = FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=3, n_chains=4, device="cpu")
            >>> FlowMCEngine.from_config(e.config(), log_prob=lambda x: -(x ** 2).sum(1)).dim
            3
        """
        if "log_prob" not in objects or not callable(objects["log_prob"]):
            raise TypeError("flowmc: reopening this run needs its log-density: pass log_prob=<function>, "
                            "e.g. sciml_lab.open(path, log_prob=log_prob)")
        cfg = dict(config)
        init_kind = cfg.pop("init", None)
        init = objects.get("init") if init_kind else None
        cfg["init_box"] = tuple(cfg.get("init_box", (-2.0, 2.0)))
        if cfg.get("bounds"):
            cfg["bounds"] = {k: tuple(v) for k, v in cfg["bounds"].items()}
        if cfg.get("params"):
            cfg["params"] = {k: tuple(v) for k, v in cfg["params"].items()}
        if cfg.get("device") not in (None, "auto", "cpu") and not torch.cuda.is_available():
            cfg["device"] = "cpu"  # a GPU run reopened on a CPU machine
        return cls(objects["log_prob"], init=init, _restoring=True, **cfg)

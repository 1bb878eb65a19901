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
This module is the engine protocol's adapter; the parts live by concern in
``settings`` (the options), ``state`` (chains, loops, draws), ``adaptation`` (step
size, mass matrix, kernel choice), ``schedule`` (the loop machine), ``results`` (the
DataTree) and ``verdicts`` (warnings).

References:
    | Adaptive Monte Carlo augmented with normalizing flows (Gabrié, Rotskoff &
    | Vanden-Eijnden, PNAS 2022) https://doi.org/10.1073/pnas.2109420119
    | flowMC (Wong, Gabrié & Foreman-Mackey, JOSS 2023) https://doi.org/10.21105/joss.05021
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Callable, Mapping

import numpy as np
import torch
import xarray as xr

from ..kit.budget import Budget
from ..kit.device import resolve_device, restore_device
from ..kit.protocol import Badge, Chart, Criterion, EngineBase, MonitorSpec, Phase, badge_targets, parse_criteria
from ..kit.verdict import Verdict, criteria_verdict
from . import results, verdicts
from .adaptation import Adaptation, auto_trials, whitened_jump_per_eval
from .flow import FlowProposal
from .kernels import ChainState
from .schedule import Schedule
from .settings import METRICS, FlowMCSettings
from .start import check_finite, initial_points
from .state import Draws, RunState, upgrade_checkpoint
from .target import Target

__all__ = ["FlowMCEngine", "METRICS", "auto_trials", "whitened_jump_per_eval"]

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


class FlowMCEngine(EngineBase):
    """Normalizing-flow-enhanced MCMC (flowMC's method) as a sciml_lab engine.

    Arguments:
        log_prob: batched log-density: ``(n_chains, dim) -> (n_chains,)`` torch
            function (gradients by autograd), or with ``params`` a function of a dict
            of named tensors ``(n_chains, *shape)``; a NumPy function works too
            (then the gradient-free random-walk kernel is used).
        dim: number of dimensions (without ``params``; inferred from ``init``).
        init: initial points in the user's space: array ``(n_chains, dim)``, dict of
            arrays, or a function ``init(n_chains)`` returning either (a prior
            sampler). Default: uniform in ``init_box`` (inside the bounds).
        settings: the keywords of :class:`~sciml_lab.flowmc.settings.FlowMCSettings`
            (``n_chains``, ``n_loops`` (the budget ``extend(loops=...)`` raises),
            ``kernel``, ``until``, ``params``, ``bounds``, ``device``, ``seed``...).

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
    CHAIN_EVALS_PER_CALL = Schedule.CHAIN_EVALS_PER_CALL
    VERDICT_MAX_VALUES = verdicts.VERDICT_MAX_VALUES

    def __init__(self, log_prob: Callable, dim: int | None = None, *, init: Any = None, _restoring: bool = False,
                 **settings: Any):
        s = FlowMCSettings(dim=dim, **settings)
        self.criteria = parse_criteria(s.until, known=METRICS)
        device = resolve_device(s.device)
        self.gen = torch.Generator(device=device).manual_seed(s.seed)
        dim = s.dim
        if dim is None and s.params is None and init is not None and not callable(init) \
                and not isinstance(init, Mapping):
            dim = int(np.shape(init)[-1])
        self.target = t = Target(log_prob, params=s.params, dim=dim, bounds=s.bounds, gradient=s.gradient,
                                 device=device, dtype=torch.float64 if s.dtype == "float64" else torch.float32,
                                 chunk=s.chunk)
        self.settings = s = s.replace(  # the run's signature as resolved: stored in its config
            dim=t.dim if s.params is None else None, device=str(device),
            params=None if s.params is None else {k: tuple(v) for k, v in t.shapes.items()},
            bounds={k: tuple(v) for k, v in t.bounds.items()} or None)
        # initial points are data, not settings: the config only says where they came from
        self._init_kind = None if init is None else ("function" if callable(init) else "given")
        u0 = initial_points(t, init, s.n_chains, s.init_box, self.gen)
        has_grad = t.resolve_gradient(u0)
        kernel = ("mala" if s.auto else s.kernel) if has_grad else "rw"
        self.monitor = _monitor(s.until, "" if has_grad else _GRADIENT_FREE_NOTE)  # badges follow ``until``
        if not _restoring:  # a checkpoint is about to replace these points
            check_finite(t, u0, init, s.init_box, self.gen)
        lp, grad = t.log_prob_and_grad(u0) if kernel != "rw" else (t.log_prob(u0), None)
        self.adapt = Adaptation.start(kernel, t.dim, s.target_acceptance, s.auto and has_grad,
                                      auto_trials(s.n_training_loops), device, t.dtype)
        self.flow = FlowProposal(t.dim, s.flow_layers, s.flow_hidden, s.flow_bins, s.learning_rate, seed=s.seed,
                                 defensive=s.defensive)
        self.flow.to(device=device, dtype=t.dtype)
        self.run = RunState(ChainState(u0, lp, grad), Budget("loops", s.loops, self.criteria), Draws(s.thin),
                            metrics={k: math.nan for k in METRICS})
        self.schedule = Schedule(s, t, self.flow, self.gen, self.run, self.adapt)

    # ------------------------------------------------------------------ protocol
    @property
    def metrics(self) -> dict[str, float]:
        """The last finished loop's metrics."""
        return self.run.metrics

    @property
    def production_loops(self) -> int:
        """Production loops done (the budget's spent units)."""
        return self.schedule.production_loops

    def default_extend(self) -> dict[str, int]:
        """What the monitor's extend button asks for: the budget again, at most 10 loops.

        Example:
            >>> FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, n_loops=3,
            ...              device="cpu").default_extend()
            {'loops': 3}
        """
        return {"loops": max(1, min(self.run.budget.total, 10))}

    def done(self) -> bool:
        """Between loops, with the production budget spent or the ``until`` target met
        (judged on freshly computed R-hat/ESS only).

        Example:
            >>> FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu").done()
            False
        """
        return self.schedule.done()

    def progress(self) -> float:
        """Loops done (training and production, the current one in part) over all.

        Example:
            >>> FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu").progress()
            0.0
        """
        return self.schedule.progress()

    def extend(self, loops: int) -> None:
        """Pay for ``loops`` more production loops (:class:`~sciml_lab.kit.budget.Budget`'s
        rule: counted from where the run is; ``until`` may end it again only after them).

        Example:
            >>> eng = FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, n_loops=3, device="cpu")
            >>> eng.extend(loops=2); eng.run.budget.total
            5
        """
        self.run.budget.extend(loops, ended=self.done())

    def step(self) -> dict[str, float]:
        """One bounded chunk of the current loop; the last finished loop's metrics, with
        the phase pill's ``production`` and ``loop`` of the loop in progress.

        Example:
            >>> eng = FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu")
            >>> m = eng.step(); m["loop"], m["production"]
            (1.0, 0.0)
        """
        self.schedule.step()
        out = dict(self.run.metrics)
        out["production"] = float(self.schedule.production)
        out["loop"] = float(self.run.loop + (0 if self.done() else 1))
        return out

    def snapshot(self) -> xr.DataTree:
        """The result so far (:mod:`sciml_lab.flowmc.results`).

        Example:
            >>> FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu").snapshot().children
            Frozen({'diagnostics': ...})
        """
        return results.snapshot(self)

    def kernel_choice(self) -> dict[str, Any]:
        """Why the local kernel is what it is: with ``kernel="auto"``, the choice (``None``
        until the trial loops are done) and each candidate's whitened squared jump per
        target evaluation in its trial loops.

        Example:
            >>> FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, kernel="auto",
            ...              device="cpu").kernel_choice()["choice"] is None
            True
        """
        return self.adapt.choice(self.settings.kernel, self.schedule.auto, self.schedule.trials,
                                 self.settings.n_leapfrog)

    # ------------------------------------------------------------------ verdict
    def parameter_summary(self, max_values: int | None = None):
        """The summary of the production draws (:func:`~sciml_lab.flowmc.verdicts.parameter_summary`).

        Example:
            >>> FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu").parameter_summary()
        """
        return verdicts.parameter_summary(self, max_values)

    def verdict(self, metrics: Mapping[str, float] | None = None) -> Verdict:
        """The shared ``until`` judgement (:func:`~sciml_lab.kit.verdict.criteria_verdict`),
        naming the parameter with the worst R-hat and bulk ESS, plus :meth:`warnings`.

        Example:
            >>> FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu",
            ...              until="rhat<1.01").verdict().status
            'target missed'
        """
        table = self.parameter_summary(self.VERDICT_MAX_VALUES)
        where = {}
        if table is not None and table["r_hat"].notna().any():
            where["rhat"] = str(table["r_hat"].idxmax())
        if table is not None and table["ess_bulk"].notna().any():
            where["ess"] = str(table["ess_bulk"].idxmin())
        return criteria_verdict(self.criteria, dict(metrics or self.metrics), monitor=self.monitor, where=where,
                                warnings=verdicts.warnings(self, table), default_targets=False)

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
        return verdicts.warnings(self, self.parameter_summary(self.VERDICT_MAX_VALUES))

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """A checkpoint (tensors, numbers, strings, lists and dicts): the run's and the
        adaptation's state, the flow and the random generator.

        Example:
            >>> sorted(FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu").state_dict())[:4]
            ['adapt_t', 'adapt_t_hmc', 'auto_choice', 'auto_scores']
        """
        return {"version": 2, "gen": self.gen.get_state(), "flow": self.flow.checkpoint(),
                "gradient": bool(self.target.gradient), **self.run.state_dict(), **self.adapt.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a checkpoint of :meth:`state_dict` (or of the first layout, see
        :func:`~sciml_lab.flowmc.state.upgrade_checkpoint`).

        Example:
            >>> lp = lambda x: -(x ** 2).sum(1)
            >>> a = FlowMCEngine(lp, dim=2, n_chains=4, device="cpu"); _ = a.step()
            >>> b = FlowMCEngine(lp, dim=2, n_chains=4, device="cpu"); b.load_state_dict(a.state_dict())
            >>> bool((b.run.chains.x == a.run.chains.x).all()), b.run.phase_steps == a.run.phase_steps
            (True, True)
        """
        s = upgrade_checkpoint(state, self.settings.n_training_loops)
        device = self.target.device
        self.gen.set_state(s["gen"].cpu() if device.type == "cpu" else s["gen"])
        self.target.gradient = bool(s["gradient"])
        self.flow.restore(s["flow"])
        self.run.load_state_dict(s, device)
        self.adapt.load_state_dict(s, device)

    def config(self) -> dict[str, Any]:
        """The settings as JSON data, and where the initial points came from.

        Example:
            >>> FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu").config()["n_chains"]
            4
        """
        return {**self.settings.config(), "init": self._init_kind}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "FlowMCEngine":
        """Rebuild from :meth:`config`; ``log_prob`` (and ``init`` if it was a function
        or an array, optionally) must be passed again. A GPU run reopened where torch
        sees no GPU continues on the CPU.

        Example:
            >>> e = FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=3, n_chains=4, device="cpu")
            >>> FlowMCEngine.from_config(e.config(), log_prob=lambda x: -(x ** 2).sum(1)).target.dim
            3
        """
        if "log_prob" not in objects or not callable(objects["log_prob"]):
            raise TypeError("flowmc: reopening this run needs its log-density: pass log_prob=<function>, "
                            "e.g. sciml_lab.open(path, log_prob=log_prob)")
        init = objects.get("init") if config.get("init") else None
        s = FlowMCSettings.from_config(config, device=restore_device(config.get("device", "auto")))
        return cls(objects["log_prob"], init=init, _restoring=True, **{n: getattr(s, n) for n in s.names()})


def _signature() -> inspect.Signature:
    """``FlowMCEngine(log_prob, dim=None, *, init=None, <every setting>)``: the settings
    are the signature (``help()``, ``inspect`` and keyword binding see them)."""
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD), P("log_prob", P.POSITIONAL_OR_KEYWORD),
              P("dim", P.POSITIONAL_OR_KEYWORD, default=None), P("init", P.KEYWORD_ONLY, default=None)]
    for f in dataclasses.fields(FlowMCSettings):
        if f.name != "dim":
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            params.append(P(f.name, P.KEYWORD_ONLY, default=default))
    return inspect.Signature(params + [P("_restoring", P.KEYWORD_ONLY, default=False)])


FlowMCEngine.__init__.__signature__ = _signature()

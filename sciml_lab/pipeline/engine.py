"""``calibrate``: emulate a simulator, sample its inputs' posterior on the emulator
with flow-MCMC, refine the emulator where the posterior lives, round after round,
until the posterior stops moving; then check it against the real simulator.

Each stage is an ordinary run in the pipeline's run folder (see
:mod:`~sciml_lab.pipeline.stages`): ``stages/r0-emulate`` (the emulator over the
prior), ``stages/r0-sample`` (flow-MCMC on the emulator's likelihood, with the
emulator's predictive variance added to the noise), ``stages/r1-emulate`` (the same
emulator with ``runs_per_round`` more simulator runs chosen among the posterior's
draws where it is least certain), ``stages/r1-sample``, ... A round ends with the
posterior's **move**: the largest shift between this round's and the last round's
posterior, over the parameters, of the mean (in posterior sd) and of the sd (as
``|log sd ratio|``). The run ends when ``until`` holds (default ``move<0.1``) or
the rounds are spent; a final check runs the real simulator at fresh posterior
draws (:mod:`~sciml_lab.pipeline.check`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from ..emulate.engine import EmulateEngine
from ..emulate.simulator import Simulator
from ..flowmc.engine import FlowMCEngine
from ..symreg.engine import SymRegEngine
from ..kit.base import KitEngine
from ..kit.budget import Budget
from ..kit.device import resolve_device
from ..kit.protocol import parse_criteria
from ..kit.verdict import Verdict, criteria_verdict
from ..runtime.store import read_result
from .check import PosteriorCheck
from .likelihood import EmulatorLikelihood, emulator_sd_ratio, flat_observations
from .results import (STAGES, CalibrateState, calibrate_warnings, monitor_spec, posterior_move, relation,
                      snapshot_tree)
from .settings import (DISCOVER_DEFAULTS, DISCOVER_ROWS, EMULATOR_DEFAULTS, METRICS, SAMPLER_DEFAULTS,
                       CalibrateSettings)
from .stages import Stage, StageFailed

__all__ = ["CalibrateEngine"]


class CalibrateEngine(KitEngine):
    """Calibrate ``simulator``'s inputs against ``observed`` data with noise sd ``noise``
    under a uniform prior on ``bounds`` (all options: :class:`CalibrateSettings`).

    Example:
        >>> def sim(k):                       # a decay observed at 5 times
        ...     return np.exp(-k * np.linspace(0.5, 2.5, 5))
        >>> eng = CalibrateEngine(sim, {"k": (0.1, 2.0)}, observed=sim(0.7), noise=0.02, rounds=2,
        ...                       initial_runs=8, runs_per_round=4, n_check=4, device="cpu",
        ...                       sampler={"n_chains": 16, "n_training_loops": 2, "n_loops": 3})
        >>> while not eng.done(): m = eng.step()
        >>> post = eng.snapshot()["posterior"]["k"]
        >>> bool(abs(float(post.mean()) - 0.7) < 4 * float(post.std()) + 0.01), m["calls"]
        (True, 16.0)
    """

    kind, budget_words, settings_class = "calibrate", ("rounds",), CalibrateSettings

    def __init__(self, simulator: Callable, bounds: Mapping[str, Any] | None = None, *, observed: Any = None,
                 noise: Any = None, **options: Any):
        if simulator is None or not callable(simulator):
            raise ValueError(f"simulator: expected a callable, got {type(simulator).__name__}")
        self.settings = s = CalibrateSettings(bounds=bounds, observed=observed, noise=noise, **options).resolve()
        self.simulator, self.seed = simulator, s.seed
        self.device = str(resolve_device(s.device))
        self.names = list(s.bounds)
        self.criteria = parse_criteria(s.until, known=METRICS)
        self.state = CalibrateState.new(self.names, Budget("rounds", s.rounds, self.criteria))
        self.monitor = monitor_spec(self.names, s.until, [], check=s.n_check > 0)
        self.folder: Path | None = None
        self.stage: Stage | None = None
        self._emulators: dict[int, EmulateEngine] = {}
        self.metrics: dict[str, float] = {}
        self._check_sim: Simulator | None = None
        self._sample_result: xr.DataTree | None = None
        self._monitor_key: tuple = ()

    def attach_run_folder(self, path: "str | Path") -> None:
        """Where the stages' run folders go (``<path>/stages``); the runtime calls it."""
        self.folder = Path(path)

    # ------------------------------------------------------------------ protocol
    def done(self) -> bool:
        return self.state.stage == "finished"

    def progress(self) -> float:
        b = self.state.budget
        return 1.0 if self.done() else min(1.0, b.spent / max(b.total, 1))

    def extend(self, rounds: int) -> None:
        """Pay for ``rounds`` more rounds of refinement (the kit's budget rule); a run
        that had ended goes back to refining, and its check runs again at the end."""
        st = self.state
        ended = st.stage in ("check", "discover", "finished")
        st.budget.extend(rounds, ended=ended)
        if ended:
            st.round, st.stage, st.check, self.stage = st.round + 1, "emulate", None, None
            st.discovered = []

    def step(self) -> dict[str, float]:
        """Advance the current stage for ``slice_s`` seconds (or the check by one wait)."""
        st = self.state
        if st.stage == "check":
            self._check_step()
            return self._metrics()
        if self.stage is None:
            self.stage = self._open_stage()
        live = self.stage.engine
        status = self.stage.advance(self.settings.slice_s)
        if st.stage == "emulate":
            st.calls, st.failed = int(live.runs.n), int(live.runs.n_failed)
        self.metrics.update({f"{st.stage}_{k}": float(v) for k, v in self.stage.metrics.items()
                             if k in ("nrmse", "coverage", "runs", "rhat", "ess", "loop", "r2", "best_loss")})
        if status == "done":
            self._stage_done()
        return self._metrics()

    def snapshot(self) -> xr.DataTree:
        """The result so far: ``/posterior`` (the latest round's, ArviZ schema),
        ``/rounds`` (the convergence of the chain: calls, move, emulator sd, posterior
        mean and sd per round), ``/observed``, ``/check`` and ``/stages`` (provenance:
        each stage's run folder)."""
        return snapshot_tree(self, self._sample_tree())

    def emulator(self) -> Any:
        """The emulator of the latest finished round (an :class:`~sciml_lab.emulate.Emulator`)."""
        st, r = self.state, self._last_round()
        if r < 0 or len(st.history) == 0:
            raise RuntimeError("no emulator yet: the first round has not finished")
        return self._emulate_engine(r).get_emulator()

    def _last_round(self) -> int:
        """The latest round whose sampler has finished (-1 before the first)."""
        st = self.state
        return st.round if st.stage in ("check", "discover", "finished") else st.round - 1

    def verdict(self, metrics: Mapping[str, float] | None = None) -> Verdict:
        """``until`` judged on the last round; the warnings say what the badges' default
        targets would (with the numbers and what to do)."""
        return criteria_verdict(self.criteria, dict(metrics or self.metrics), monitor=self.monitor,
                                warnings=self.warnings(), default_targets=False)

    def warnings(self) -> list[str]:
        """What the verdict adds, in words and numbers (see :func:`~sciml_lab.pipeline.results.warnings`)."""
        return calibrate_warnings(self)

    # ------------------------------------------------------------------ stages
    def _stage_folder(self, name: str) -> Path | None:
        return None if self.folder is None else self.folder / "stages" / name

    def _open_stage(self) -> Stage:
        st = self.state
        name = f"r{st.round}-{st.stage}"
        if st.stage == "discover":
            name += f"-{self.settings.discover[len(st.discovered)]}"
        folder = self._stage_folder(name)
        if name not in st.stages:
            st.stages.append(name)
        if folder is not None and (folder / "checkpoint.pt").exists():  # a resumed run: the stage goes on
            engine = self._rebuild(st.stage, st.round, Stage.saved_config(folder))
            stage = Stage.reopen(engine, folder)
        else:
            engine = {"emulate": self._new_emulate, "sample": self._new_sampler,
                      "discover": self._new_discover}[st.stage](st.round)
            stage = Stage(engine, folder, parent=self.folder.name if self.folder else "")
        if st.stage == "emulate":
            self._emulators[st.round] = stage.engine
        return stage

    def _emulate_options(self) -> dict[str, Any]:
        """The emulator's settings: over the prior, a space-filling design and then
        active batches of ``runs_per_round`` (one refit per round after it)."""
        s, d = self.settings, len(self.names)
        first = s.initial_runs - s.runs_per_round if s.initial_runs - s.runs_per_round >= d + 2 else s.initial_runs
        return {**EMULATOR_DEFAULTS, "device": "cpu", "n_initial": first, "batch_size": s.runs_per_round,
                **s.emulator, "seed": s.seed}

    def _rebuild(self, kind: str, r: int, config: Mapping[str, Any]) -> Any:
        if kind == "emulate":
            return EmulateEngine.from_config(config, simulator=self.simulator)
        if kind == "discover":
            return SymRegEngine.from_config(config, data=self._discover_table(self._discover_target()))
        return FlowMCEngine.from_config(config, log_prob=self._likelihood(r))

    def _discover_target(self) -> str:
        return self.settings.discover[len(self.state.discovered)]

    def _discover_table(self, target: str) -> pd.DataFrame:
        """Posterior draws (at most ``DISCOVER_ROWS``, a seeded pick): ``target`` and the other parameters."""
        draws = self.state.draws
        rows = np.random.default_rng(self.settings.seed).permutation(len(draws))[:DISCOVER_ROWS]
        return pd.DataFrame({k: draws[rows, i] for i, k in enumerate(self.names)})

    def _new_discover(self, r: int) -> SymRegEngine:
        target = self._discover_target()
        opts = {**DISCOVER_DEFAULTS, **self.settings.discover_options}
        return SymRegEngine(self._discover_table(target), target=target,
                            features=tuple(k for k in self.names if k != target), **{**opts, "seed": self.settings.seed})

    def _emulate_engine(self, r: int) -> EmulateEngine:
        """Round ``r``'s emulator engine (from memory, else from its stage folder)."""
        if r not in self._emulators:
            folder = self._stage_folder(f"r{r}-emulate")
            if folder is None or not (folder / "checkpoint.pt").exists():
                raise StageFailed(f"the emulator of round {r} is neither in memory nor on disk ({folder})")
            engine = self._rebuild("emulate", r, Stage.saved_config(folder))
            self._emulators = {r: Stage.reopen(engine, folder).engine}
        return self._emulators[r]

    def _new_emulate(self, r: int) -> EmulateEngine:
        s = self.settings
        if r == 0:
            return EmulateEngine(self.simulator, s.bounds, budget=s.initial_runs, **self._emulate_options())
        engine = self._emulate_engine(r - 1)
        engine.focus_on(self.state.draws)
        engine.extend(budget=s.runs_per_round)
        return engine

    def _likelihood(self, r: int) -> EmulatorLikelihood:
        emu = self._emulate_engine(r).get_emulator()
        obs, sd = flat_observations(self.settings.observed, self.settings.noise, emu.layout)
        return EmulatorLikelihood(emu, obs, sd, self.names)

    def _new_sampler(self, r: int) -> FlowMCEngine:
        s = self.settings
        opts = {**SAMPLER_DEFAULTS, **s.sampler}
        init = None
        if self.state.draws is not None:  # start where the last round's posterior was
            rng = np.random.default_rng(s.seed + r)
            n = int(opts["n_chains"])
            rows = rng.choice(len(self.state.draws), n, replace=len(self.state.draws) < n)
            init = {k: self.state.draws[rows, i] for i, k in enumerate(self.names)}
        return FlowMCEngine(self._likelihood(r), params=self.names, bounds=s.bounds, init=init,
                            device=self.device, **{**opts, "seed": s.seed + r})

    def _draws(self, tree: xr.DataTree) -> np.ndarray:
        post = tree["posterior"].to_dataset()
        return np.stack([post[k].values.reshape(-1) for k in self.names], -1)

    def _stage_done(self) -> None:
        st, s = self.state, self.settings
        if st.stage == "emulate":
            st.stage, self.stage = "sample", None
            return
        if st.stage == "discover":
            st.discovered.append(relation(self._discover_target(), self.stage.engine.snapshot()))
            self.stage = None
            if len(st.discovered) == len(s.discover):
                st.stage = "finished"
            return
        self._sample_result = self.stage.engine.snapshot()
        draws = self._draws(self._sample_result)
        mean, sd = draws.mean(0), draws.std(0, ddof=1)
        move = posterior_move(st.history, self.names, mean, sd)
        emu = self._emulate_engine(st.round).get_emulator()
        _, noise = flat_observations(s.observed, s.noise, emu.layout)
        rng = np.random.default_rng(s.seed)
        sub = draws[rng.choice(len(draws), min(len(draws), 256), replace=False)]
        ratio = emulator_sd_ratio(emu, sub, noise)
        st.history.append(calls=st.calls, move=move, emulator_sd=ratio,
                          **{f"mean_{k}": mean[i] for i, k in enumerate(self.names)},
                          **{f"sd_{k}": sd[i] for i, k in enumerate(self.names)})
        st.draws, st.budget.spent = draws, st.budget.spent + 1
        self.metrics.update(move=move, emulator_sd=ratio, round=float(st.round + 1), calls=float(st.calls))
        if st.budget.done(self.metrics):
            st.stage = "check" if s.n_check else self._after_check()
        else:
            st.round, st.stage = st.round + 1, "emulate"
        self.stage = None

    # ------------------------------------------------------------------ the check
    def _check_step(self) -> None:
        st, s = self.state, self.settings
        if st.check is None:
            rng = np.random.default_rng(s.seed + 7919)
            st.check = PosteriorCheck.start(st.draws[rng.choice(len(st.draws), s.n_check, replace=False)]
                                            if len(st.draws) >= s.n_check else st.draws)
        if self._check_sim is None:
            opts = self._emulate_options()
            self._check_sim = Simulator(self.simulator, self.names, n_workers=opts.get("n_workers", 4),
                                        call=opts.get("call", "auto"), output_name=opts.get("output_name", "y"),
                                        pool=opts.get("pool", "thread"), timeout=opts.get("timeout"))
        before = len(st.check.pending())
        st.check.run(self._check_sim, s.slice_s)
        st.calls += before - len(st.check.pending())
        if not st.check.pending():
            emu = self._emulate_engine(st.round).get_emulator()
            obs, noise = flat_observations(s.observed, s.noise, emu.layout)
            st.scores = st.check.scores(emu, obs, noise, s.seed)
            st.stage = self._after_check()
            self._check_sim.shutdown()
            self._check_sim = None

    def _after_check(self) -> str:
        return "discover" if self.settings.discover else "finished"

    def _metrics(self) -> dict[str, float]:
        st = self.state
        self.metrics.update(stage=float(STAGES.index(st.stage)), calls=float(st.calls), round=float(st.round),
                            **{k: float(v) for k, v in (st.scores or {}).items()})
        key = (tuple(st.stages), st.stage)
        if key != self._monitor_key:  # a new object only when it changes: the step loop then sends it
            self._monitor_key = key
            self.monitor = monitor_spec(self.names, self.settings.until, st.stages, st.stage,
                                        check=self.settings.n_check > 0)
        return dict(self.metrics)

    def _sample_tree(self) -> xr.DataTree | None:
        """The latest finished sampler's result (its posterior group goes into this result)."""
        st = self.state
        r = self._last_round()
        if self._sample_result is None and r >= 0 and len(st.history):
            folder = self._stage_folder(f"r{r}-sample")
            if folder is not None and (folder / "result.nc").exists():
                self._sample_result = read_result(folder / "result.nc")
        return self._sample_result

    # ------------------------------------------------------------------ checkpoint
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.stage, self._emulators, self._sample_result = None, {}, None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "CalibrateEngine":
        """Rebuild from ``config()``; the simulator must be passed again (``simulator=f``)."""
        sim = objects.get("simulator")
        if sim is None or not callable(sim):
            raise TypeError("calibrate: reopening this run needs its simulator: pass simulator=<function>, "
                            "e.g. sciml_lab.open(path, simulator=f)")
        s = CalibrateSettings.from_config(config)
        return cls(sim, s.bounds, **{k: getattr(s, k) for k in s.names() if k != "bounds"})

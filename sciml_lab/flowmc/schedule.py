"""The loop machine of flow-MCMC: each loop is (local steps, flow training, global
steps) in training and (local steps, global steps) in production, run one bounded
phase chunk per ``step()``; the end of a loop computes its metrics.

Example:
    >>> from sciml_lab.flowmc import FlowMCEngine
    >>> eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=4, n_local_steps=5,
    ...                    n_global_steps=5, n_epochs=1, n_training_loops=1, n_loops=1, device="cpu")
    >>> eng.schedule.step(); eng.run.phase      # the 5 local steps fit in one call
    'train'
"""

from __future__ import annotations

import math
import time

import torch

from .adaptation import Adaptation, adapt_step, auto_trials, hmc_move_steps, split_halves, whitened_jump_per_eval
from .diagnostics import summary_diagnostics, thinned_draws
from .flow import FlowProposal
from .kernels import TARGET_ACCEPTANCE, ChainState, global_block, importance_resample, local_step
from .settings import FlowMCSettings
from .state import KERNEL_CODES, RunState
from .target import Target

__all__ = ["Schedule"]


class Schedule:
    """Runs the loops of one sampler: the chains in ``run``, the kernels' adaptation
    in ``adapt``, the flow, all drawing from the generator ``gen``."""

    #: bound on chains x steps per ``step()`` call (about half a second on one CPU core)
    CHAIN_EVALS_PER_CALL = 32768
    #: largest share of the sampling time the live R-hat/ESS may take (see :meth:`diagnostics_due`)
    DIAGNOSTICS_SHARE = 0.03

    def __init__(self, settings: FlowMCSettings, target: Target, flow: FlowProposal, gen: torch.Generator,
                 run: RunState, adapt: Adaptation):
        self.s, self.target, self.flow, self.gen, self.run, self.adapt = settings, target, flow, gen, run, adapt

    # ------------------------------------------------------------------ where the run is
    @property
    def auto(self) -> bool:
        """``kernel="auto"`` with a gradient (without one the random walk is used)."""
        return self.s.auto and bool(self.target.gradient)

    @property
    def trials(self) -> dict[int, str]:
        return auto_trials(self.s.n_training_loops) if self.auto else {}

    @property
    def production(self) -> bool:
        return self.run.loop >= self.s.n_training_loops

    @property
    def production_loops(self) -> int:
        return max(0, self.run.loop - self.s.n_training_loops)

    def between_loops(self) -> bool:
        return self.run.phase == "local" and not self.run.phase_steps

    def done(self) -> bool:
        """Between loops, with the budget spent or the target met on fresh diagnostics."""
        if not self.between_loops():
            return False
        b = self.run.budget
        return b.exhausted() or (self.run.diagnostics_fresh and b.target_met(self.run.metrics))

    def progress(self) -> float:
        """Loops done (training and production) over all loops of the budget."""
        if self.done():
            return 1.0
        run, total = self.run, self.s.n_training_loops + self.run.budget.total
        if run.phase == "local":
            partial = 0.4 * run.phase_steps / self.local_steps()
        elif run.phase == "train":
            partial = 0.4
        else:
            partial = 0.6 + 0.4 * run.phase_steps / max(self.s.n_global_steps, 1)
        return min(1.0, (run.loop + partial) / total)

    def local_steps(self) -> int:
        """Local moves in this loop: ``n_local_steps``, but with ``kernel="auto"`` an
        HMC move stands for ``n_leapfrog`` of them (equal target evaluations)."""
        if self.auto and self.adapt.kernel == "hmc":
            return max(1, round(self.s.n_local_steps / self.s.n_leapfrog))
        return self.s.n_local_steps

    def chunk(self, evals_per_step: int) -> int:
        """Steps per ``step()`` call: at most 64, and at most ``CHAIN_EVALS_PER_CALL``
        target evaluations in all, so that a call stays short with many chains."""
        return max(1, min(64 // evals_per_step, self.CHAIN_EVALS_PER_CALL // (self.s.n_chains * evals_per_step)))

    # ------------------------------------------------------------------ phases
    def step(self) -> None:
        """One chunk of the current phase."""
        t0 = time.perf_counter()
        phase = self.run.phase
        if phase == "local":
            self.local_phase()
        elif phase == "train":
            self.train_phase()
        else:
            self.global_phase()
        self.run.wall += time.perf_counter() - t0

    def local_phase(self) -> None:
        run, adapt, s = self.run, self.adapt, self.s
        starting = run.phase_steps == 0 and not self.production
        if starting and self.auto:
            adapt.switch(run.loop, self.trials, s.target_acceptance, self.target.dim)
        if starting and s.mass != "identity" and run.prev_local_u is not None:
            adapt.update_mass(run.prev_local_u, s.mass, self.target.dim)
        if adapt.kernel == "split":
            self.split_local_phase()
            return
        evals = s.n_leapfrog if adapt.kernel == "hmc" else 1
        n_local = self.local_steps()
        todo = min(n_local - run.phase_steps, self.chunk(evals))
        us, lps, accs, energies = [], [], [], []
        if adapt.eps_chains is None and s.step_adaptation == "chain":
            adapt.per_chain(s.n_chains)
        for _ in range(todo):
            eps = adapt.local_step_sizes(s.n_chains, self.production, s.step_jitter, self.gen)
            run.chains, acc, alpha, energy = local_step(adapt.kernel, self.target, run.chains, eps, adapt.chol,
                                                        self.gen, s.n_leapfrog, s.step_scale)
            if not self.production:  # Robbins-Monro on log(eps), reset at each mass update
                adapt.adapt_local(alpha)
            us.append(run.chains.x)
            lps.append(run.chains.lp)
            accs.append(acc)
            energies.append(energy)
            run.cur["local_alpha"].append(float(alpha.mean()))
        self.keep_local_chunk(us, lps, accs, energies)
        run.phase_steps += todo
        if run.phase_steps >= n_local:
            # (``kernel="auto"`` scores its kernels in the split trial loops only)
            adapt.loop_jump = whitened_jump_per_eval(torch.cat(run.cur["local_u"], 1), adapt.chol, evals)
            self.local_phase_done()

    def split_local_phase(self) -> None:
        """A ``kernel="auto"`` trial loop: MALA on three chains in four and HMC on the
        others (:func:`~sciml_lab.flowmc.adaptation.split_halves`) with the same target
        evaluations per chain, each kernel with its own step size adapted from its
        nominal one. An HMC chain moves every ``n_leapfrog`` steps and holds in between."""
        run, adapt, s = self.run, self.adapt, self.s
        ev, od = split_halves(s.n_chains, self.target.device)
        moves = set(hmc_move_steps(s.n_local_steps, s.n_leapfrog))
        todo = min(s.n_local_steps - run.phase_steps, self.chunk(2))
        us, lps, accs, energies = [], [], [], []
        for k in range(todo):
            st = run.chains
            x, lp, grad = st.x.clone(), st.lp.clone(), st.grad.clone()
            acc = torch.zeros(s.n_chains, dtype=torch.bool, device=x.device)
            energy = torch.full((s.n_chains,), math.nan, dtype=lp.dtype, device=x.device)  # NaN: held
            for kernel, rows in (("mala", ev), ("hmc", od)):
                if kernel == "hmc" and run.phase_steps + k not in moves:
                    continue
                eps = adapt.eps if kernel == "mala" else adapt.eps_hmc
                new, a, alpha, e = local_step(kernel, self.target, ChainState(st.x[rows], st.lp[rows], st.grad[rows]),
                                              eps, adapt.chol, self.gen, s.n_leapfrog, s.step_scale)
                x[rows], lp[rows], grad[rows], acc[rows], energy[rows] = new.x, new.lp, new.grad, a, e
                target = float(s.target_acceptance or TARGET_ACCEPTANCE[kernel])
                if kernel == "mala":
                    adapt.eps, adapt.adapt_t = adapt_step(adapt.eps, adapt.adapt_t, alpha, target)
                    run.cur["local_alpha"].append(float(alpha.mean()))
                else:
                    adapt.eps_hmc, adapt.adapt_t_hmc = adapt_step(adapt.eps_hmc, adapt.adapt_t_hmc, alpha, target)
            run.chains = ChainState(x, lp, grad)
            us.append(x)
            lps.append(lp)
            accs.append(acc)
            energies.append(energy)
        self.keep_local_chunk(us, lps, accs, energies)
        run.phase_steps += todo
        if run.phase_steps >= s.n_local_steps:
            u = torch.cat(run.cur["local_u"], 1)
            steps = torch.tensor(sorted(moves), device=u.device)
            adapt.loop_jump = whitened_jump_per_eval(u[ev], adapt.chol, 1)
            hmc = whitened_jump_per_eval(u[od][:, steps], adapt.chol, s.n_leapfrog)
            adapt.record_scores(run.loop, self.trials, adapt.loop_jump, hmc)
            self.local_phase_done()

    def keep_local_chunk(self, us: list, lps: list, accs: list, energies: list) -> None:
        """Store a chunk of local draws (lists of ``(chain, dim)`` / ``(chain,)`` per step)."""
        u, acc = torch.stack(us, 1), torch.stack(accs, 1)
        self.run.cur["local_u"].append(u)
        self.run.cur["local_acc"].append(acc)
        self.record(u, torch.stack(lps, 1), acc, 0, torch.stack(energies, 1))

    def record(self, u, lp, acc, kernel: int, energy) -> None:
        self.run.draws.record("posterior" if self.production else "warmup", u, lp, acc, kernel, energy)

    def local_phase_done(self) -> None:
        """After the loop's last local step: flow training, global moves, or the loop's end."""
        self.run.phase_steps = 0
        if not self.production and self.s.n_epochs:
            self.run.phase = "train"
        elif self.s.n_global_steps:
            self.run.phase = "global"
        else:
            self.end_loop()

    def train_phase(self) -> None:
        """Fit the flow (and its whitening) to this training loop's local draws (and
        those of the ``train_window - 1`` loops before)."""
        run, s, dim = self.run, self.s, self.target.dim
        recent = run.train_history[-(s.train_window - 1):] if s.train_window > 1 else []
        pts = torch.cat(recent + run.cur["local_u"], 1).reshape(-1, dim)
        if self.adapt.kernel == "split":  # the MALA chains' draws and the HMC chains' trajectory ends
            u = torch.cat(run.cur["local_u"], 1)
            ev, od = split_halves(s.n_chains, self.target.device)
            steps = torch.tensor(hmc_move_steps(s.n_local_steps, s.n_leapfrog), device=u.device)
            pts = torch.cat([t.reshape(-1, dim) for t in recent]
                            + [u[ev].reshape(-1, dim), u[od][:, steps].reshape(-1, dim)])
        if len(pts) > s.max_train_points:
            idx = torch.randperm(len(pts), generator=self.gen, device=self.gen.device)[: s.max_train_points]
            pts = pts[idx.to(pts.device)]
        if s.train_reweighted > 0 and run.prev_proposals is not None:
            pts = torch.cat([pts, importance_resample(run.prev_proposals, s.train_reweighted, len(pts), self.gen)])
        self.flow.set_whitening(pts)
        run.flow_loss = self.flow.fit(pts, s.n_epochs, self.gen, s.batch_size)
        run.phase = "global"
        if s.n_global_steps == 0:
            self.end_loop()

    def global_phase(self) -> None:
        run = self.run
        self.flow.temperature = 1.0 if self.production else self.s.train_temperature
        todo = min(self.s.n_global_steps - run.phase_steps, self.chunk(1))
        keep = run.cur["proposals"] if self.s.train_reweighted > 0 and not self.production else None
        run.chains, xs, lps, acc, _ = global_block(self.target, self.flow, run.chains, todo, self.gen, keep)
        run.cur["global_acc"].append(acc)
        self.record(xs, lps, acc, 1, torch.full(acc.shape, math.nan, dtype=lps.dtype, device=acc.device))
        run.phase_steps += todo
        if run.phase_steps >= self.s.n_global_steps:
            self.end_loop()

    # ------------------------------------------------------------------ the end of a loop
    def end_loop(self) -> None:
        """The loop's metrics and diagnostics row; then the next loop."""
        run, s = self.run, self.s
        local_acc = torch.cat(run.cur["local_acc"], 1)
        global_acc = torch.cat(run.cur["global_acc"], 1) if run.cur["global_acc"] else None
        moved = local_acc.any(1) if global_acc is None else (local_acc.any(1) | global_acc.any(1))
        run.stuck = torch.nonzero(~moved).flatten().tolist()
        run.prev_local_u = torch.cat(run.cur["local_u"], 1)
        if not self.production and run.cur["proposals"]:
            run.prev_proposals = torch.cat(run.cur["proposals"])
        if not self.production:
            run.train_history = (run.train_history + [run.prev_local_u])[-max(s.train_window - 1, 0):] \
                if s.train_window > 1 else []
        rhat, ess, fresh = self.loop_diagnostics()
        lp_now, production = run.chains.lp, self.production
        finite = torch.isfinite(lp_now)
        run.metrics = {
            "lp_mean": float(lp_now[finite].mean()) if bool(finite.any()) else math.nan,
            "local_acceptance": float(local_acc.float().mean()),
            "global_acceptance": float(global_acc.float().mean()) if global_acc is not None else math.nan,
            "flow_loss": run.flow_loss if not production else math.nan,
            "rhat": rhat, "ess": ess, "step_size": float(self.adapt.eps), "production": float(production),
            "loop": float(run.loop + 1), "stuck_chains": float(len(run.stuck)),
        }
        m = run.metrics
        run.diagnostics.append(
            rhat_max=rhat if fresh else math.nan, ess_bulk_min=ess if fresh else math.nan,
            **{k: m[k] for k in ("local_acceptance", "global_acceptance", "flow_loss", "lp_mean", "step_size")},
            stuck_chains=m["stuck_chains"], production=float(production), wall_time=run.wall,
            local_kernel=float(KERNEL_CODES[self.adapt.kernel]), jump_per_eval=self.adapt.loop_jump)
        run.new_loop()
        run.budget.spent = self.production_loops

    def loop_diagnostics(self) -> tuple[float, float, bool]:
        """R-hat and ESS after a loop, and whether they are fresh: of the loop's local
        draws in training, of all production draws when :meth:`diagnostics_due`, else
        the last values again (the monitor keeps them; the history row says NaN)."""
        run = self.run
        t0 = time.perf_counter()
        if not self.production:
            rhat, ess = summary_diagnostics(torch.cat(run.cur["local_u"], 1).double().cpu().numpy())
            fresh = True
        elif self.diagnostics_due():
            rhat, ess = self.production_diagnostics()
            fresh = True
        else:
            rhat, ess = run.metrics["rhat"], run.metrics["ess"]
            fresh = False
        run.diag_wall += time.perf_counter() - t0
        run.diagnostics_fresh = fresh
        return rhat, ess, fresh

    def diagnostics_due(self) -> bool:
        """Whether to compute R-hat/ESS after this production loop: always after the last
        loop of the budget, otherwise only while their time so far stays within
        ``DIAGNOSTICS_SHARE`` of the sampling time (a loop of a cheap 2-D target takes
        ~30 ms and its diagnostics up to ~8 ms, so computing them after every loop cost
        ~17 % of production there). ``until`` is only judged after a loop whose values
        are fresh, so a stop can come a few loops later than with a check after every
        loop, never earlier, and the last history row always holds computed values."""
        if self.production_loops + 1 >= self.run.budget.total:
            return True
        return self.run.diag_wall <= self.DIAGNOSTICS_SHARE * max(self.run.wall - self.run.diag_wall, 0.0)

    def production_diagnostics(self) -> tuple[float, float]:
        draws = self.run.draws
        if draws.empty("posterior"):
            return math.nan, math.nan
        u = draws.cat("posterior", "u")
        n_chains, n_draws = u.shape[0], u.shape[1]
        # a fixed subset of chains and evenly thinned draws bound the cost (see
        # summary_diagnostics); ESS is scaled back up by the share of chains used
        chains = torch.linspace(0, n_chains - 1, min(n_chains, 256)).round().long()
        keep = torch.as_tensor(thinned_draws(len(chains), n_draws, self.target.dim))
        rhat, ess = summary_diagnostics(u[chains][:, keep].double().numpy())
        return rhat, ess * n_chains / len(chains)

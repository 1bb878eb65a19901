"""What a statistician should know about a flow-MCMC run's draws: the summary of the
production draws, and the warnings in words and numbers that the verdict lists.

Example:
    >>> from sciml_lab.flowmc import FlowMCEngine
    >>> eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=4, device="cpu")
    >>> parameter_summary(eng) is None       # no production draws yet
    True
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..kit.protocol import Criterion
from ..kit.verdict import distinct
from .diagnostics import thinned_draws
from .kernels import DIVERGENCE_THRESHOLD, divergent
from .results import draws_group
from .summary import summary

if TYPE_CHECKING:
    from .engine import FlowMCEngine

__all__ = ["parameter_summary", "warnings", "MAX_PARAMETER_WARNINGS", "VERDICT_MAX_VALUES"]

#: parameters named one by one in the warnings (the worst first); the rest are counted
MAX_PARAMETER_WARNINGS = 5
#: values (chains x draws x parameters) the verdict's summary reads at most; a larger
#: posterior is thinned evenly along the draws (ESS of thinned draws is conservative)
VERDICT_MAX_VALUES = 1_000_000


def parameter_summary(eng: "FlowMCEngine", max_values: int | None = None) -> "pd.DataFrame | None":
    """The summary of the production draws so far (:func:`~sciml_lab.flowmc.plots.summary`:
    mean, sd, HDI, MCSE, bulk and tail ESS and R-hat per scalar parameter), or None
    before the first production draw. With ``max_values`` the draws are first thinned
    evenly to at most that many numbers (never below 50 draws per chain)."""
    group = draws_group(eng.target, eng.run.draws, "posterior")
    if group is None:
        return None
    posterior = group[0]
    if max_values is not None:
        c, n = posterior.sizes["chain"], posterior.sizes["draw"]
        keep = thinned_draws(c, n, eng.target.dim, max_draws=n, max_values=max_values)
        posterior = posterior.isel(draw=keep)
    return summary(posterior)


def warnings(eng: "FlowMCEngine", table: "pd.DataFrame | None") -> list[str]:
    """The warnings on the draws (see ``FlowMCEngine.warnings``), given their summary ``table``."""
    s, run = eng.settings, eng.run
    if table is None:
        return [f"no production draws yet ({min(run.loop, s.n_training_loops)} of {s.n_training_loops} "
                "training loops done): nothing to judge the posterior by"]
    out = _parameter_warnings(eng, table)
    energy = run.draws.cat("posterior", "energy_error").numpy()
    proposals = int((~np.isnan(energy)).sum())
    n_div = int(divergent(energy).sum())
    if n_div:
        out.append(f"{n_div} divergent transitions ({100 * n_div / max(proposals, 1):.2g} % of the "
                   f"{proposals} local proposals after training; energy error > {DIVERGENCE_THRESHOLD:g} or "
                   "not finite): the posterior has regions of high curvature (a funnel?) that the sampler "
                   "cannot explore reliably; reparameterise (e.g. non-centred) or raise target_acceptance "
                   "(e.g. 0.9) for smaller steps")
    if run.stuck:
        shown = ", ".join(map(str, run.stuck[:10])) + (" ..." if len(run.stuck) > 10 else "")
        out.append(f"{len(run.stuck)} of {s.n_chains} chains did not move in the last loop (chains "
                   f"{shown}): they sit where neither kernel can leave; check the log-density there or "
                   "give init=... inside the bulk of the posterior")
    return out


def _when(eng: "FlowMCEngine") -> str:
    n = eng.schedule.production_loops
    return (f"after the loop cap ({n} production loops)" if eng.run.budget.exhausted()
            else f"after {n} production loop{'s' if n != 1 else ''}")


def _problems(row, rhat_c: Criterion, ess_c: Criterion) -> list[str]:
    r, eb, et = float(row["r_hat"]), float(row["ess_bulk"]), float(row["ess_tail"])
    problems = []
    if not rhat_c.met({"rhat": r}):
        problems.append(f"R-hat {distinct(r, rhat_c.value, '.3f')} > {rhat_c.value:g}" if math.isfinite(r)
                        else "R-hat not computed")
    low = [f"{label} ESS {v:.0f}" for label, v in (("bulk", eb), ("tail", et))
           if not ess_c.met({"ess": v}) and math.isfinite(v)]
    if low:
        problems.append(f"{' and '.join(low)} < {ess_c.value:g}")
    return problems


def _parameter_warnings(eng: "FlowMCEngine", table: "pd.DataFrame") -> list[str]:
    """One warning per parameter whose R-hat or ESS misses the badges' targets."""
    targets = {c.metric: c for c in (Criterion.parse(b.criterion) for b in eng.monitor.badges)}
    rhat_c, ess_c = targets["rhat"], targets["ess"]
    bad = []
    for name, row in table.iterrows():
        problems = _problems(row, rhat_c, ess_c)
        if problems:
            r, eb, et = float(row["r_hat"]), float(row["ess_bulk"]), float(row["ess_tail"])
            badness = (r if math.isfinite(r) else math.inf, -min(eb, et))
            bad.append((badness, str(name), problems, not rhat_c.met({"rhat": r})))
    bad.sort(reverse=True)
    out = []
    for _, name, problems, mixing in bad[:MAX_PARAMETER_WARNINGS]:
        fix = ("extend the run or reparameterise (e.g. non-centred for a hierarchical scale)" if mixing
               else "extend the run (more loops or chains)")
        out.append(f"{name}: {', '.join(problems)} {_when(eng)}; {fix}")
    if len(bad) > MAX_PARAMETER_WARNINGS:
        rest = [name for _, name, _, _ in bad[MAX_PARAMETER_WARNINGS:]]
        out.append(f"{len(rest)} more parameters miss R-hat < {rhat_c.value:g} or ESS > {ess_c.value:g}: "
                   + ", ".join(rest[:10]) + (" ..." if len(rest) > 10 else ""))
    return out

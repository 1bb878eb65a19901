"""The state of a flow-MCMC run: the chains, where the run is in its loops, the
draws kept so far and the per-loop diagnostics. The checkpoint is derived from it.

Example:
    >>> d = Draws(thin=2)
    >>> d.record("posterior", torch.zeros(3, 5, 2), torch.zeros(3, 5), torch.ones(3, 5, dtype=torch.bool), 0,
    ...          torch.zeros(3, 5))
    >>> tuple(d.cat("posterior", "u").shape), d.counters["posterior"]     # draws 0, 2, 4 kept
    ((3, 3, 2), 5)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import torch

from ..kit.budget import Budget
from ..kit.history import History
from ..kit.state import State
from .kernels import ChainState

__all__ = ["Draws", "RunState", "DIAG_VARS", "KERNEL_CODES", "upgrade_checkpoint"]

#: what is kept of every draw (``/posterior`` and ``/sample_stats`` are made of them)
DRAW_FIELDS = ("u", "lp", "accepted", "kernel", "energy_error")
GROUPS = ("warmup", "posterior")
#: the columns of ``/diagnostics``, one row per loop
DIAG_VARS = ("rhat_max", "ess_bulk_min", "local_acceptance", "global_acceptance", "flow_loss", "lp_mean",
             "step_size", "stuck_chains", "production", "wall_time", "local_kernel", "jump_per_eval")
#: codes of the ``local_kernel`` column of ``/diagnostics``
KERNEL_CODES = {"mala": 0, "hmc": 1, "rw": 2, "split": 3}
_DIAG_ATTRS = {
    "wall_time": {"units": "s"},
    "local_kernel": {"flag_values": list(KERNEL_CODES.values()), "flag_meanings": " ".join(KERNEL_CODES)},
    "jump_per_eval": {"long_name": "mean squared jump of the loop's local draws in whitened coordinates per "
                                   "target evaluation (second half of the loop)"},
    "rhat_max": {"long_name": "worst rank-normalized split R-hat"},
    "ess_bulk_min": {"long_name": "smallest bulk ESS (draws thinned to <= 1000 per chain)"},
}
for _k in ("rhat_max", "ess_bulk_min"):
    _DIAG_ATTRS[_k]["comment"] = "NaN after a production loop where it was not computed (time budget)"


class Draws:
    """The draws kept so far, per group (``warmup``: training loops, ``posterior``:
    production loops), every ``thin``-th of each group, on the CPU."""

    def __init__(self, thin: int = 1):
        self.thin = thin
        self.groups: dict[str, dict[str, list[torch.Tensor]]] = {g: {k: [] for k in DRAW_FIELDS} for g in GROUPS}
        self.counters = {g: 0 for g in GROUPS}

    def record(self, group: str, u: torch.Tensor, lp: torch.Tensor, acc: torch.Tensor, kernel: int,
               energy: torch.Tensor) -> None:
        """Keep the draws ``u`` (chain, step, dim) of one block of steps of ``kernel``
        (0 local, 1 global) that fall on the thinning grid of ``group``."""
        steps = u.shape[1]
        keep = (self.counters[group] + torch.arange(steps)) % self.thin == 0
        self.counters[group] += steps
        if not bool(keep.any()):
            return
        keep = keep.to(u.device)
        d = self.groups[group]
        d["u"].append(u[:, keep].detach().cpu())
        d["lp"].append(lp[:, keep].detach().cpu())
        d["accepted"].append(acc[:, keep].cpu())
        d["kernel"].append(torch.full((u.shape[0], int(keep.sum())), kernel, dtype=torch.int8))
        d["energy_error"].append(energy[:, keep.to(energy.device)].detach().cpu())

    def empty(self, group: str) -> bool:
        return not self.groups[group]["u"]

    def cat(self, group: str, field: str) -> torch.Tensor:
        """All kept values of one field of a group, along the draws."""
        return torch.cat(self.groups[group][field], 1)

    def state_dict(self) -> dict[str, Any]:
        empty = torch.zeros(0)
        out: dict[str, Any] = {g: {k: (torch.cat(v, 1) if v else empty) for k, v in d.items()}
                               for g, d in self.groups.items()}
        out["counters"] = dict(self.counters)
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.groups = {g: {k: ([v] if v.numel() else []) for k, v in state[g].items()} for g in GROUPS}
        for d in self.groups.values():  # a checkpoint from before energy errors were kept: NaN (unknown)
            if "energy_error" not in d:
                d["energy_error"] = [torch.full_like(t, math.nan, dtype=torch.float64) for t in d["lp"]]
        self.counters = {k: int(v) for k, v in state["counters"].items()}


def diagnostics_history() -> History:
    """The per-loop history that becomes ``/diagnostics``."""
    return History("iteration", DIAG_VARS, attrs=_DIAG_ATTRS)


def _loop_buffers() -> dict[str, list]:
    return {"local_u": [], "local_acc": [], "local_alpha": [], "global_acc": [], "proposals": []}


@dataclasses.dataclass
class RunState(State):
    """Where a run is: its chains, the loop and phase in progress with the draws of the
    current loop (``cur``), the budget, the last loop's metrics and everything kept."""

    chains: ChainState
    budget: Budget
    draws: Draws
    diagnostics: History = dataclasses.field(default_factory=diagnostics_history)
    loop: int = 0
    phase: str = "local"  # then "train" (training loops) and "global"
    phase_steps: int = 0
    wall: float = 0.0
    diag_wall: float = 0.0  # part of ``wall`` spent on the live R-hat/ESS
    diagnostics_fresh: bool = True  # ``until`` is judged on fresh values only
    flow_loss: float = math.nan
    cur: dict = dataclasses.field(default_factory=_loop_buffers)
    prev_local_u: torch.Tensor | None = None  # last training loop's local draws (mass matrix)
    train_history: list = dataclasses.field(default_factory=list)  # earlier training loops' draws (flow data)
    #: ``train_reweighted``: the last training loop's global proposals, rows ``(y, log p(y), log q(y))``
    prev_proposals: torch.Tensor | None = None
    metrics: dict = dataclasses.field(default_factory=dict)
    stuck: list = dataclasses.field(default_factory=list)

    def production(self, n_training_loops: int) -> bool:
        return self.loop >= n_training_loops

    def new_loop(self) -> None:
        self.loop += 1
        self.phase, self.phase_steps = "local", 0
        self.cur = _loop_buffers()


def upgrade_checkpoint(state: Mapping[str, Any], n_training_loops: int) -> dict[str, Any]:
    """A checkpoint of the first layout (``version`` 1: flat keys, the budget as
    ``n_loops``/``floor``, the kernel choice under ``auto``, the diagnostics as
    positional rows) in this one's terms; a current one is returned as it is."""
    s = dict(state)
    if int(s.get("version", 1)) >= 2:
        return s
    s["chains"] = {"x": s.pop("x"), "lp": s.pop("lp"), "grad": s.pop("grad")}
    for k in ("grad",):
        if s["chains"][k].numel() == 0:
            s["chains"][k] = None
    if s["prev_local_u"].numel() == 0:
        s["prev_local_u"] = None
    s["budget"] = {"total": s.pop("n_loops"), "floor": s.pop("floor"),
                   "spent": max(0, int(s["loop"]) - n_training_loops)}
    s["draws"] = dict(s["draws"], counters=s.pop("counters"))
    s["diagnostics"] = s.pop("diag_rows")
    auto = s.pop("auto", None) or {}
    renamed = {"scores": "auto_scores", "choice": "auto_choice", "loop_jump": "loop_jump",
               "target_acceptance": "target_acceptance", "eps_hmc": "eps_hmc", "adapt_t_hmc": "adapt_t_hmc"}
    s.update({new: auto[old] for old, new in renamed.items() if old in auto})
    s.setdefault("mass_estimator", "within")
    return s

"""The calibration's state, monitor, result and warnings.

Example:
    >>> from sciml_lab.kit.history import History
    >>> h = History("round", ["mean_k", "sd_k"]); h.append(mean_k=1.0, sd_k=0.1)
    >>> round(posterior_move(h, ["k"], np.array([1.02]), np.array([0.1])), 6)   # mean shifted 0.2 sd
    0.2
    >>> monitor_spec(["k"], "move<0.05", ["r0-emulate"], "emulate").note
    'stages: r0-emulate (emulate, now)'
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import xarray as xr

from ..kit.budget import Budget
from ..kit.history import History
from ..kit.protocol import Badge, Chart, MonitorSpec, Phase, parse_criteria
from ..kit.state import State
from .check import PosteriorCheck

if TYPE_CHECKING:
    from .engine import CalibrateEngine

__all__ = ["STAGES", "CalibrateState", "posterior_move", "monitor_spec", "snapshot_tree", "calibrate_warnings"]

#: the stage a calibration is in (the monitor's phase pill)
STAGES = ("emulate", "sample", "check", "discover", "finished")


@dataclasses.dataclass
class CalibrateState(State):
    """What changes: the rounds' budget and history, the stage, the simulator calls,
    the latest posterior draws, the stages' names (their run folders) and the check."""

    budget: Budget
    history: History
    stage: str = "emulate"
    round: int = 0
    calls: int = 0
    failed: int = 0
    draws: Any = None
    stages: list = dataclasses.field(default_factory=list)
    check: Any = None
    scores: dict = dataclasses.field(default_factory=dict)
    discovered: list = dataclasses.field(default_factory=list)

    @classmethod
    def new(cls, names: Sequence[str], budget: Budget) -> "CalibrateState":
        cols = ["calls", "move", "emulator_sd", *(f"mean_{k}" for k in names), *(f"sd_{k}" for k in names)]
        return cls(budget, History("round", cols))

    def load_state_dict(self, state: Mapping[str, Any], device: Any = None) -> None:
        super().load_state_dict(state, device)
        if self.draws is not None:
            self.draws = np.asarray(self.draws, dtype=float)
        if isinstance(self.check, Mapping):
            self.check = PosteriorCheck.restore(self.check)


def posterior_move(history: History, names: Sequence[str], mean: np.ndarray, sd: np.ndarray) -> float:
    """The largest change from the last round's posterior, over the parameters: of the
    mean in this round's posterior sd, and of the sd as ``|log sd ratio|``; NaN in the
    first round."""
    if len(history) == 0:
        return math.nan
    m0 = np.array([history.last(f"mean_{k}") for k in names])
    s0 = np.array([history.last(f"sd_{k}") for k in names])
    shift = np.abs(mean - m0) / np.maximum(sd, 1e-300)
    spread = np.abs(np.log(np.maximum(sd, 1e-300) / np.maximum(s0, 1e-300)))
    return float(max(shift.max(), spread.max()))


def monitor_spec(names: Sequence[str], until: str, stages: Sequence[str], current: str | None = None,
                 check: bool = True) -> MonitorSpec:
    """The pipeline's monitor: the chain's convergence (posterior move and the emulator's
    uncertainty at the posterior, against simulator calls), the current stage's own
    convergence, the stage pill with the round, and the stages so far in the note."""
    move = next((c for c in parse_criteria(until) if c.metric == "move"), None)
    target = move.value if move is not None else 0.1
    badges = [Badge("move", f"move<{target:g}" if move is None else f"move{move.op}{move.value:g}"),
              Badge("emulator sd / noise", "emulator_sd<1")]
    if check:
        badges += [Badge("PPC coverage", "ppc_coverage>0.8"), Badge("emulator coverage", "emulator_coverage>0.8")]
    note = ""
    if stages:
        now = stages[-1] if current in ("emulate", "sample", "discover") else None
        note = "stages: " + ", ".join(f"{n} ({n.split('-')[1]}, now)" if n == now else n for n in stages)
        if current == "check":
            note += ", check (now)"
    return MonitorSpec(
        charts=(Chart("posterior move between rounds (posterior sd)", ("move",), log_y=True, hlines=(target,),
                      x="calls"),
                Chart("emulator sd / noise sd at the posterior", ("emulator_sd",), log_y=True, hlines=(1.0,),
                      x="calls"),
                Chart("stage: emulator validation error", ("emulate_nrmse",), log_y=True, x="calls"),
                Chart("stage: sampler R-hat", ("sample_rhat",), hlines=(1.01,))),
        badges=tuple(badges), key="move", note=note, phase=Phase("stage", STAGES, counter="round"))


def relation(target: str, tree: xr.DataTree) -> dict[str, Any]:
    """What a ``discover`` stage found: the selected equation for ``target`` with its
    loss, R², complexity and its constants' values and 95 % intervals."""
    pareto = tree["pareto"].to_dataset()
    i = int(np.flatnonzero(pareto["selected"].values)[0]) if "selected" in pareto else len(pareto["loss"]) - 1
    c = int(pareto["complexity"].values[i])
    out = {"target": target, "equation": str(pareto["equation"].values[i]), "complexity": c,
           "loss": float(pareto["loss"].values[i]), "r2": float(pareto["r2"].values[i]),
           "value": [], "lower": [], "upper": []}
    if "constants" in tree.children:
        k = tree["constants"].to_dataset().sel(complexity=c)
        keep = np.isfinite(k["value"].values)
        for name in ("value", "lower", "upper"):
            out[name] = [float(v) for v in k[name].values[keep]]
    return out


def _discoveries(found: Sequence[Mapping[str, Any]]) -> xr.Dataset:
    n = max([len(f["value"]) for f in found] + [1])

    def pad(name: str) -> np.ndarray:
        return np.array([f[name] + [math.nan] * (n - len(f[name])) for f in found], dtype=float)

    ds = xr.Dataset({"equation": (("relation",), np.asarray([f["equation"] for f in found], dtype=str)),
                     "r2": (("relation",), np.array([f["r2"] for f in found])),
                     "loss": (("relation",), np.array([f["loss"] for f in found])),
                     "complexity": (("relation",), np.array([f["complexity"] for f in found], dtype=np.int64)),
                     "constant_value": (("relation", "constant"), pad("value")),
                     "constant_lower": (("relation", "constant"), pad("lower")),
                     "constant_upper": (("relation", "constant"), pad("upper"))},
                    coords={"relation": np.asarray([f["target"] for f in found], dtype=str)})
    ds.attrs["description"] = ("each parameter named in discover, expressed through the others by symbolic "
                               "regression on the posterior draws; constants in the order they appear, with "
                               "95 % intervals")
    return ds


def _provenance(eng: "CalibrateEngine") -> xr.Dataset:
    st = eng.state
    kinds = [n.split("-")[1] for n in st.stages]
    rounds = [int(n.split("-", 1)[0][1:]) for n in st.stages]
    folders = [f"stages/{n}" for n in st.stages]
    ds = xr.Dataset({"kind": (("stage",), np.asarray(kinds, dtype=str)),
                     "round": (("stage",), np.asarray(rounds, dtype=np.int64)),
                     "folder": (("stage",), np.asarray(folders, dtype=str))},
                    coords={"stage": np.asarray(list(st.stages), dtype=str)})
    ds.attrs["description"] = ("each stage is an ordinary run in the pipeline's run folder: "
                               "sciml_lab.open(<run>/<folder>) reopens it with its own monitor and result")
    return ds


def _observed(eng: "CalibrateEngine") -> xr.Dataset:
    s = eng.settings
    obs = s.observed if isinstance(s.observed, dict) else {"observed": s.observed}
    noise = s.noise if isinstance(s.noise, dict) else {k: s.noise for k in obs}
    ds = xr.Dataset()
    for k, v in obs.items():
        a = np.asarray(v, dtype=float)
        dims = tuple(f"{k}_dim_{i}" for i in range(a.ndim))
        ds[k] = (dims, a)
        ds[f"{k}_noise_sd"] = (dims, np.broadcast_to(np.asarray(noise[k], dtype=float), a.shape).copy())
    return ds


def snapshot_tree(eng: "CalibrateEngine", sample: xr.DataTree | None) -> xr.DataTree:
    """The pipeline's result (see ``CalibrateEngine.snapshot``)."""
    st = eng.state
    groups: dict[str, Any] = {"/rounds": st.history.to_dataset(coord=np.arange(len(st.history))),
                              "/observed": _observed(eng), "/stages": _provenance(eng)}
    if sample is not None:
        for name in ("posterior", "sample_stats"):
            if name in sample.children:
                groups[f"/{name}"] = sample[name].to_dataset()
    if st.discovered:
        groups["/discover"] = _discoveries(st.discovered)
    if st.check is not None:
        groups["/check"] = st.check.dataset(eng.names)
        groups["/check"].attrs.update({k: float(v) for k, v in st.scores.items()})
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(stage=st.stage, rounds_done=int(st.budget.spent), simulator_calls=int(st.calls),
                      stages=json.dumps(list(st.stages)), warnings=json.dumps(calibrate_warnings(eng)))
    return tree


def calibrate_warnings(eng: "CalibrateEngine") -> list[str]:
    """What a scientist must know beside the posterior: failed simulator runs (the
    emulator's and the check's), an
    emulator whose uncertainty still widens the posterior, a check that found the
    emulator or the model wanting."""
    st, out = eng.state, []
    sc = st.scores or {}
    ratio = st.history.last("emulator_sd")
    if math.isfinite(ratio) and ratio > 1:
        out.append(f"the emulator's sd at the posterior is {ratio:.2g}x the noise sd: its uncertainty, not the "
                   "data, sets the posterior's width; extend the run (more rounds)")
    if st.failed:
        last = next((n for n in reversed(st.stages) if n.endswith("-emulate")), "")
        out.append(f"{st.failed} of {st.calls - int(sc.get('check_runs', 0))} simulator runs of the emulator failed; "
                   f"the emulator learnt where and avoids it (see stages/{last}: /failures)")
    if sc.get("check_failed"):
        out.append(f"{int(sc['check_failed'])} of {int(sc['check_runs'])} check runs of the simulator failed "
                   "(see /check: error)")
    if math.isfinite(sc.get("emulator_coverage", math.nan)) and sc["emulator_coverage"] < 0.8:
        out.append(f"the emulator's 95 % intervals held {sc['emulator_coverage']:.0%} of the simulator's outputs "
                   "at posterior draws: its uncertainty is understated where the posterior lives")
    if math.isfinite(sc.get("ppc_coverage", math.nan)) and sc["ppc_coverage"] < 0.8:
        out.append(f"only {sc['ppc_coverage']:.0%} of the observations lie in the 95 % posterior-predictive "
                   "interval of the real simulator: the model may not describe the data")
    return out

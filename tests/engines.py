"""A small, controllable engine for the runtime's tests (and the browser test).

Each step draws one standard normal with a seeded torch generator and keeps the
running sum, so a run split by stop/extend/resume must end with exactly the same
sum as an uninterrupted run of the same length.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
import torch
import xarray as xr

from sciml_lab.kit.protocol import Badge, Chart, MonitorSpec
from sciml_lab.runtime.registry import register_engine


@register_engine
class StepEngine:
    kind = "teststep"
    budget_words = ("steps",)
    monitor = MonitorSpec(
        charts=(Chart("running mean", ("mean",), hlines=(0.0,)), Chart("draws", ("draw",))),
        badges=(Badge("|mean|", "abs_mean<0.5"),),
        key="mean",
    )

    def __init__(self, steps: int = 10, delay: float = 0.0, fail_at: int = -1, block_s: float = 0.0,
                 payload: int = 0, seed: int = 0, hang_at: int = -1):
        self.budget, self.delay, self.fail_at, self.block_s = int(steps), float(delay), int(fail_at), float(block_s)
        self.payload, self.seed, self.device = int(payload), int(seed), "cpu"
        self.hang_at = int(hang_at)
        self.gen = torch.Generator().manual_seed(self.seed)
        self.n = 0
        self.total = 0.0
        self.draws: list[float] = []

    def default_extend(self) -> dict[str, int]:
        return {"steps": 10}

    def step(self) -> Mapping[str, float]:
        if self.block_s:
            time.sleep(self.block_s)  # a step that ignores stop requests
        if self.delay:
            time.sleep(self.delay)
        if self.n + 1 == self.hang_at:
            time.sleep(600)  # a step that never returns in time
        if self.n + 1 == self.fail_at:
            raise FloatingPointError(f"test engine failed at step {self.fail_at} on purpose")
        x = float(torch.randn((), generator=self.gen, dtype=torch.float64))
        self.n += 1
        self.total += x
        self.draws.append(x)
        m = self.total / self.n
        return {"draw": x, "mean": m, "abs_mean": abs(m), "n": self.n}

    def live_view(self) -> dict[str, Any]:
        """The last three draws, with the running mean typeset in LaTeX."""
        rows = [[i + 1, self.draws[i], rf"\bar{{x}}_{{{i + 1}}} = {sum(self.draws[: i + 1]) / (i + 1):.3f}"]
                for i in range(max(0, self.n - 3), self.n)]
        return {"title": "latest draws", "columns": ["step", "draw", "running mean"], "rows": rows,
                "latex": ["running mean"]}

    def done(self) -> bool:
        return self.n >= self.budget

    def progress(self) -> float:
        return self.n / self.budget

    def extend(self, steps: int) -> None:
        self.budget += int(steps)

    def snapshot(self) -> xr.DataTree:
        trace = xr.Dataset({"draw": ("step", np.array(self.draws))}, coords={"step": np.arange(1, self.n + 1)})
        trace.attrs["total"] = self.total
        nodes = {"/trace": trace}
        if self.payload:
            # bulky data whose checksum is stored beside it: a torn file could not match
            rng = np.random.default_rng(self.n)
            blob = rng.standard_normal(self.payload)
            nodes["/blob"] = xr.Dataset({"x": ("i", blob)}, attrs={"checksum": float(blob.sum()), "n": self.n})
        return xr.DataTree.from_dict(nodes)

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "n": self.n, "total": self.total, "budget": self.budget,
                "draws": torch.tensor(self.draws, dtype=torch.float64)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.n, self.total, self.budget = int(state["n"]), float(state["total"]), int(state["budget"])
        self.draws = state["draws"].tolist()

    def config(self) -> dict[str, Any]:
        return {"steps": self.budget, "delay": self.delay, "fail_at": self.fail_at, "block_s": self.block_s,
                "payload": self.payload, "seed": self.seed, "hang_at": self.hang_at}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "StepEngine":
        return cls(**config)


def reference_total(steps: int, seed: int = 0) -> float:
    """The running sum an uninterrupted run of ``steps`` steps ends with."""
    gen = torch.Generator().manual_seed(seed)
    return float(sum(float(torch.randn((), generator=gen, dtype=torch.float64)) for _ in range(steps)))


def register_magic() -> None:
    """``%sciml teststep --steps N --delay S``: the test engine as a launcher."""
    from sciml_lab.magics import add_launch_options, finish_launch, launch_kwargs, positive_int, register_command
    from sciml_lab.runtime import launch

    def configure(p):
        p.add_argument("--steps", type=positive_int, default=10)
        p.add_argument("--delay", type=float, default=0.0)
        p.add_argument("--fail-at", type=int, default=-1)
        add_launch_options(p)

    def run(args, cell, shell):
        job = launch(StepEngine(steps=args.steps, delay=args.delay, fail_at=args.fail_at), **launch_kwargs(args))
        return finish_launch(job, args, shell)

    register_command("teststep", configure, run, help="the runtime's test engine")


class BudgetNoteEngine(StepEngine):
    """The test engine whose monitor spec changes during a run (its note names the
    budget, as a real engine's badges follow its ``until``)."""

    @property
    def monitor(self) -> MonitorSpec:
        return MonitorSpec(charts=StepEngine.monitor.charts, key="mean", note=f"budget {self.budget}")

    def default_extend(self) -> dict[str, int]:
        return {"steps": self.budget}

"""A small real engine written against the kit: Monte Carlo estimation of pi.

Each step throws ``samples_per_step`` uniform points in the unit square and counts
those inside the quarter disc; the estimate carries its standard error, which
shrinks like ``1/sqrt(n)`` as the budget grows. Settings, state (hence the
checkpoint), budget and history come from :mod:`sciml_lab.kit`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Mapping

import numpy as np
import torch
import xarray as xr

from .kit import Badge, Budget, Chart, History, KitEngine, MonitorSpec, Settings, State, at_least, number, option
from .runtime.registry import Kind

__all__ = ["PiEngine", "PiSettings", "estimate_pi", "KIND"]


@dataclasses.dataclass(frozen=True)
class PiSettings(Settings):
    samples_per_step: int = option(100_000, at_least(1), "points thrown per step", flag="--samples")
    steps: int = option(100, at_least(1), "step budget", flag="--steps")
    seed: int = option(0, at_least(-(2**63)), "seed of the torch generator", flag="--seed")
    delay: float = option(0.0, number(0), "seconds to sleep per step (to watch it live)", flag="--delay")


@dataclasses.dataclass
class PiState(State):
    gen: torch.Generator
    budget: Budget
    history: History = dataclasses.field(default_factory=lambda: History("step", ("n_samples", "estimate", "stderr")))
    inside: int = 0


class PiEngine(KitEngine):
    """Monte Carlo estimate of pi with a standard error (arguments: :class:`PiSettings`).

    Example:
        >>> e = PiEngine(samples_per_step=100_000, steps=10, seed=1)
        >>> while not e.done(): m = e.step()
        >>> abs(m["estimate"] - math.pi) < 5 * m["stderr"]
        True
    """

    kind, budget_words, device, settings_class = "pi", ("steps",), "cpu", PiSettings
    monitor = MonitorSpec(charts=(Chart("estimate of pi", ("estimate", "lower", "upper"), hlines=(math.pi,)),
                                  Chart("standard error vs |error|", ("stderr", "abs_error"), log_y=True)),
                          badges=(Badge("stderr", "stderr<0.001", ".2g"),), key="estimate")

    def __init__(self, samples_per_step: int = 100_000, steps: int = 100, seed: int = 0, delay: float = 0.0):
        self.settings = s = PiSettings(samples_per_step, steps, seed, delay)
        self.seed = s.seed
        self.state = PiState(torch.Generator().manual_seed(s.seed), Budget("steps", s.steps))

    budget = property(lambda self: self.state.budget.total, lambda self, n: setattr(self.state.budget, "total", n))

    def step(self) -> Mapping[str, float]:
        s, st = self.settings, self.state
        if s.delay:
            time.sleep(s.delay)
        xy = torch.rand(s.samples_per_step, 2, generator=st.gen)
        st.inside += int(((xy * xy).sum(1) <= 1.0).sum())
        st.budget.spent += 1
        n = st.budget.spent * s.samples_per_step
        p = st.inside / n
        est, se = 4 * p, 4 * math.sqrt(max(p * (1 - p), 1e-300) / n)
        st.history.append(n_samples=n, estimate=est, stderr=se)
        return {"estimate": est, "stderr": se, "lower": est - 1.96 * se, "upper": est + 1.96 * se,
                "abs_error": abs(est - math.pi), "samples": n}

    def snapshot(self) -> xr.DataTree:
        h = self.state.history
        estimate = xr.Dataset({"pi_hat": ((), h.last("estimate"), {"long_name": "estimate of pi"}),
                               "stderr": ((), h.last("stderr"), {"long_name": "standard error of the estimate"}),
                               "n_samples": ((), h.last("n_samples", 0.0))})
        history = h.to_dataset(coord=np.arange(1, len(h) + 1)).set_coords("n_samples")
        return xr.DataTree.from_dict({"/estimate": estimate, "/history": history})

    def upgrade(self, state: dict[str, Any]) -> dict[str, Any]:
        if "n_steps" in state:  # written before the kit: the budget was two numbers
            state["budget"] = {"total": state["budget"], "spent": state.pop("n_steps")}
        return state


def estimate_pi(samples_per_step: int = 100_000, steps: int = 100, seed: int = 0, delay: float = 0.0,
                **launch_options: Any):
    """Launch a Monte Carlo estimate of pi as a job (the Python twin of ``%sciml pi``).

    ``launch_options`` go to :func:`sciml_lab.runtime.launch` (``name``,
    ``executor``, ``runs_dir``, ``store``, ``save_every``).

    Example:
        >>> job = estimate_pi(steps=5, store=False)
        >>> job.wait(30)
        'done'
    """
    from .runtime.launcher import launch

    return launch(PiEngine(samples_per_step, steps, seed, delay), **launch_options)


KIND = Kind("pi", engine=PiEngine, twin=estimate_pi, magic="sciml_lab.face.pi",
            help="Monte Carlo estimate of pi with its error bar (the demo)")

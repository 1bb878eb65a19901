"""A small real engine for the quickstart: Monte Carlo estimation of pi.

Each step throws ``samples_per_step`` uniform points in the unit square and counts
those inside the quarter disc. The estimate carries its standard error, and the
error visibly shrinks like ``1/sqrt(n)`` as the budget grows: the three habits of
sciml_lab (uncertainty, convergence, a way to extend) in forty lines.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
import xarray as xr

from .kit.protocol import Badge, Chart, MonitorSpec, register_engine

__all__ = ["PiEngine", "estimate_pi"]


@register_engine
class PiEngine:
    """Monte Carlo estimate of pi with a standard error.

    Arguments:
        samples_per_step: points thrown per step.
        steps: the step budget.
        seed: seed of the torch generator (the run is reproducible).
        delay: seconds to sleep per step (to watch a slow job live).

    Example:
        >>> e = PiEngine(samples_per_step=100_000, steps=10, seed=1)
        >>> while not e.done(): m = e.step()
        >>> abs(m["estimate"] - math.pi) < 5 * m["stderr"]
        True
    """

    kind = "pi"
    budget_words = ("steps",)
    monitor = MonitorSpec(
        charts=(
            Chart("estimate of pi", ("estimate", "lower", "upper"), hlines=(math.pi,)),
            Chart("standard error vs |error|", ("stderr", "abs_error"), log_y=True),
        ),
        badges=(Badge("stderr", "stderr<0.001", ".2g"),),
        key="estimate",
    )

    def __init__(self, samples_per_step: int = 100_000, steps: int = 100, seed: int = 0, delay: float = 0.0):
        for arg, v in (("samples_per_step", samples_per_step), ("steps", steps)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{arg}: expected a positive integer, got {v!r}")
        if not (isinstance(delay, (int, float)) and delay >= 0):
            raise ValueError(f"delay: expected a non-negative number of seconds, got {delay!r}")
        self.samples_per_step, self.budget, self.seed, self.delay = samples_per_step, steps, int(seed), float(delay)
        self.device = "cpu"
        self.gen = torch.Generator().manual_seed(self.seed)
        self.n_steps = 0
        self.inside = 0
        self.history: list[tuple[float, float, float]] = []  # (n, estimate, stderr)

    def default_extend(self) -> dict[str, int]:
        return {"steps": self.budget}

    def step(self) -> Mapping[str, float]:
        if self.delay:
            import time

            time.sleep(self.delay)
        xy = torch.rand(self.samples_per_step, 2, generator=self.gen)
        self.inside += int(((xy * xy).sum(1) <= 1.0).sum())
        self.n_steps += 1
        n = self.n_steps * self.samples_per_step
        p = self.inside / n
        est, se = 4 * p, 4 * math.sqrt(max(p * (1 - p), 1e-300) / n)
        self.history.append((n, est, se))
        return {"estimate": est, "stderr": se, "lower": est - 1.96 * se, "upper": est + 1.96 * se,
                "abs_error": abs(est - math.pi), "samples": n}

    def done(self) -> bool:
        return self.n_steps >= self.budget

    def progress(self) -> float:
        return self.n_steps / self.budget

    def extend(self, steps: int) -> None:
        self.budget += int(steps)

    def snapshot(self) -> xr.DataTree:
        h = np.array(self.history, dtype=float).reshape(-1, 3)
        n = h[-1, 0] if len(h) else 0.0
        est = h[-1, 1] if len(h) else math.nan
        se = h[-1, 2] if len(h) else math.nan
        estimate = xr.Dataset(
            {"pi_hat": ((), est, {"long_name": "estimate of pi"}),
             "stderr": ((), se, {"long_name": "standard error of the estimate"}),
             "n_samples": ((), n)},
        )
        history = xr.Dataset(
            {"estimate": ("step", h[:, 1]), "stderr": ("step", h[:, 2])},
            coords={"step": np.arange(1, len(h) + 1), "n_samples": ("step", h[:, 0])},
        )
        return xr.DataTree.from_dict({"/estimate": estimate, "/history": history})

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "n_steps": self.n_steps, "inside": self.inside,
                "budget": self.budget, "history": torch.tensor(self.history, dtype=torch.float64).reshape(-1, 3)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.n_steps, self.inside, self.budget = int(state["n_steps"]), int(state["inside"]), int(state["budget"])
        self.history = [tuple(r) for r in state["history"].tolist()]

    def config(self) -> dict[str, Any]:
        return {"samples_per_step": self.samples_per_step, "steps": self.budget, "seed": self.seed,
                "delay": self.delay}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "PiEngine":
        return cls(**config)


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
    from .runtime.job import launch

    return launch(PiEngine(samples_per_step, steps, seed, delay), **launch_options)

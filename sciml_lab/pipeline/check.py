"""The posterior-predictive check against the real simulator.

At ``n`` fresh posterior draws the real simulator runs once each. Two questions
are answered from those runs, in numbers:

- does the model reproduce the data? ``ppc_coverage``: the share of observations
  inside the central 95 % posterior-predictive interval (the simulator's outputs
  at the draws plus the observation noise); near 0.95 when the model fits;
- was the emulator right where the posterior lives? ``emulator_coverage``: the
  share of simulator outputs inside the emulator's 95 % interval at the same draws,
  and ``emulator_error``: the RMS of the emulator's error over the noise sd.

A failing simulator run is recorded with its error, as in the emulator, and left
out of the scores.

Example:
    >>> chk = PosteriorCheck.start(np.array([[0.5], [0.6]]))
    >>> chk.pending()
    [0, 1]
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
from typing import Any

import numpy as np
import torch
import xarray as xr

from ..emulate.simulator import SimulatorRun, describe_error
from ..kit.state import State

__all__ = ["PosteriorCheck"]


@dataclasses.dataclass
class PosteriorCheck(State):
    """The check's runs: inputs ``x`` (user units), outputs ``y`` (NaN until run or
    when failed), ``status`` (0 to run, 1 ok, 2 failed) and the failures' errors."""

    x: np.ndarray
    y: Any = None
    status: np.ndarray | None = None
    errors: list = dataclasses.field(default_factory=list)

    @classmethod
    def start(cls, x: np.ndarray) -> "PosteriorCheck":
        n = len(x)
        return cls(np.asarray(x, dtype=float), None, np.zeros(n, dtype=np.int8), [""] * n)

    @classmethod
    def restore(cls, state: Any) -> "PosteriorCheck":
        """A check from its checkpoint data (:meth:`state_dict`)."""
        y = state.get("y")
        return cls(np.asarray(state["x"], dtype=float), None if y is None else np.asarray(y, dtype=float),
                   np.asarray(state["status"], dtype=np.int8), [str(e) for e in state.get("errors", [])])

    def pending(self) -> list[int]:
        """The runs still to do."""
        return [int(i) for i in np.flatnonzero(np.asarray(self.status) == 0)]

    def run(self, simulator: Any, wait: float) -> int:
        """Run the pending points on ``simulator`` (an emulate ``Simulator``), waiting at
        most ``wait`` seconds; returns how many finished. Unfinished runs stay pending
        (a resumed check starts them again)."""
        todo = [SimulatorRun(i, np.zeros(self.x.shape[1]), self.x[i]) for i in self.pending()]
        for r in todo:
            simulator.submit(r)
        cf.wait([r.future for r in todo], timeout=wait)
        done = 0
        for r in todo:
            if not r.future.done():
                continue
            done += 1
            try:
                flat, _ = r.future.result()
            except Exception as exc:  # noqa: BLE001 - a failing run is recorded, as in the emulator
                self.status[r.index], self.errors[r.index] = 2, describe_error(exc)
                continue
            if self.y is None:
                self.y = np.full((len(self.x), flat.size), np.nan)
            self.y[r.index], self.status[r.index] = flat, 1
        return done

    def scores(self, emulator: Any, observed: np.ndarray, noise: np.ndarray, seed: int) -> dict[str, float]:
        """The check's numbers (see the module docstring); NaN where no run succeeded."""
        ok = np.asarray(self.status) == 1
        out = {"check_runs": float(len(self.x)), "check_failed": float((np.asarray(self.status) == 2).sum()),
               "ppc_coverage": np.nan, "emulator_coverage": np.nan, "emulator_error": np.nan}
        if not ok.any():
            return out
        y = self.y[ok]
        rng = np.random.default_rng(seed)
        reps = y[None] + noise[None, None] * rng.standard_normal((200, *y.shape))
        lo, hi = np.quantile(reps.reshape(-1, y.shape[1]), [0.025, 0.975], axis=0)
        out["ppc_coverage"] = float(((observed >= lo) & (observed <= hi)).mean())
        with torch.no_grad():
            mean, sd = emulator.mean_and_std(torch.as_tensor(self.x[ok], dtype=torch.float64))
        z = (y - mean.numpy()) / np.maximum(sd.numpy(), 1e-300)
        out["emulator_coverage"] = float((np.abs(z) <= 1.96).mean())
        out["emulator_error"] = float(np.sqrt(np.mean(((y - mean.numpy()) / noise[None]) ** 2)))
        return out

    def dataset(self, names: list[str]) -> xr.Dataset:
        """The check's runs as a Dataset along ``check_run``."""
        ds = xr.Dataset({k: (("check_run",), self.x[:, i]) for i, k in enumerate(names)})
        ds["failed"] = (("check_run",), np.asarray(self.status) == 2)
        ds["error"] = (("check_run",), np.asarray([str(e) for e in self.errors], dtype=str))
        if self.y is not None:
            ds["simulated"] = (("check_run", "value"), np.asarray(self.y, dtype=float))
        return ds

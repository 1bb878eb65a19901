"""What the fitted emulator says about the simulator: Sobol' indices, slices, the live curve.

:class:`Surfaces` builds the result's ``/sensitivity`` group (first-order and total
Sobol' indices with 95 % intervals), its ``/slices`` group (each input swept with
the others at the centre of the box) and the live monitor's curve, each computed
once per fit.

Example:
    >>> from sciml_lab.emulate.emulator import OutputLayout
    >>> from sciml_lab.emulate.runs import Box, Runs
    >>> from sciml_lab.emulate.settings import EmulateSettings
    >>> from sciml_lab.emulate.validation import Fit
    >>> x = np.linspace(0, 1, 8)[:, None]
    >>> s = EmulateSettings(bounds={"a": (0, 1)}, device="cpu", n_sobol=64).resolve(n_rows=8)
    >>> runs, fit = Runs.of(x, x, np.sin(3 * x), OutputLayout([{"name": "y"}])), Fit.new(0)
    >>> fit.refit(s, Box(s.bounds, s.log_inputs), runs, n_batches=1, budget=8)
    >>> sf = Surfaces(s, Box(s.bounds, s.log_inputs), runs, fit)
    >>> sorted(sf.groups()), sf.live_view()["plots"][0]["title"]
    (['/sensitivity', '/slices'], 'y along a (8 runs)')
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
import xarray as xr

from .emulator import small_problem_threads
from .runs import Box, Runs
from .sensitivity import sobol_indices
from .settings import EmulateSettings
from .validation import Fit

__all__ = ["Surfaces"]


class Surfaces:
    """Sensitivity, slices and the live curve of the latest fit in ``fit``."""

    def __init__(self, s: EmulateSettings, box: Box, runs: Runs, fit: Fit):
        self.s, self.box, self.runs, self.fit = s, box, runs, fit
        self._sensitivity: tuple[int, xr.Dataset] | None = None
        self._live: tuple[int, dict] | None = None

    def forget(self) -> None:
        """Drop what was computed for an earlier fit."""
        self._sensitivity = self._live = None

    def fitted(self) -> bool:
        """An emulator has been fitted."""
        emu = self.fit.emulator
        return emu is not None and emu.model is not None and self.fit.fitted_runs >= 0

    def groups(self) -> dict[str, xr.Dataset]:
        """``/sensitivity`` and ``/slices`` once an emulator is fitted (else none)."""
        if not self.fitted():
            return {}
        cpu = self.fit.emulator.device.type == "cpu"
        with small_problem_threads(self.runs.n if cpu else 10 ** 9):
            return {"/sensitivity": self.sensitivity_dataset(), "/slices": self.slices_dataset()}

    def sweep(self, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each input swept along ``grid`` (unit cube) with the others at the centre:
        the points ``(d * len(grid), d)`` and each swept input's values in user units
        ``(d, len(grid))``."""
        d = len(self.box.inputs)
        u = np.full((d, len(grid), d), 0.5)
        u[np.arange(d), :, np.arange(d)] = grid
        value = self.box.from_unit(u.reshape(-1, d)).reshape(d, len(grid), d)[np.arange(d), :, np.arange(d)]
        return u.reshape(-1, d), value

    def sweep_values(self, grid: np.ndarray) -> np.ndarray:
        """The swept input's values in user units ``(d, len(grid))`` (see :meth:`sweep`)."""
        return self.sweep(grid)[1]

    def _predict(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.fit.emulator.predict_unit(torch.as_tensor(u, dtype=torch.float64))
        return mean.numpy(), std.numpy()

    def slices_dataset(self, n_grid: int = 41) -> xr.Dataset:
        """Partial-dependence slices: each input swept with the others at the box centre."""
        d, layout = len(self.box.inputs), self.runs.layout
        u, value = self.sweep(np.linspace(0, 1, n_grid))
        mean, std = self._predict(u)
        if len(layout.variables) == 1:
            var = layout.variables[0]
            dims = ("input", "grid", *var["dims"])
            shape = (d, n_grid, *var["shape"])
            data = {"mean": (dims, mean.reshape(shape)), "std": (dims, std.reshape(shape))}
            coords = {d_: c for d_, c in var["coords"].items()}
        else:
            data = {"mean": (("input", "grid", "output"), mean.reshape(d, n_grid, -1)),
                    "std": (("input", "grid", "output"), std.reshape(d, n_grid, -1))}
            coords = {"output": layout.labels()}
        coords.update({"input": self.box.inputs, "grid": np.arange(n_grid), "value": (("input", "grid"), value)})
        ds = xr.Dataset(data, coords=coords)
        centre = self.box.from_unit(np.full((1, d), 0.5))[0]
        ds.attrs["reference_point"] = json.dumps(dict(zip(self.box.inputs, centre.tolist())))
        return ds

    def sensitivity_dataset(self) -> xr.Dataset:
        """First-order and total Sobol' indices per input (and output variable) with 95 %
        intervals from the base sample and the emulator's uncertainty."""
        if self._sensitivity is not None and self._sensitivity[0] == self.fit.fitted_runs:
            return self._sensitivity[1]
        emu, layout, s = self.fit.emulator, self.runs.layout, self.s
        d = len(self.box.inputs)
        # joint posterior draws (whole sample functions) on the first n_joint Saltelli rows:
        # an exact Cholesky of n_joint * (d + 2) points per latent output, kept to ~2048
        # points in all, drawn once and shared by the output variables
        n_joint = max(32, 2048 // ((d + 2) * int(getattr(emu.model, "n_outputs", 1))))
        draws = _JointDraws(emu, s.seed) if emu.model_kind == "gp" else None
        per_var, cache = [], {}

        def predictions(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # the same Saltelli points for every output variable: predicted once
            if "u" not in cache or not np.array_equal(cache["u"], u):
                cache["u"], cache["pred"] = u, self._predict(u)
            return cache["pred"]

        for sl in layout.slices():
            def predict(u, sl=sl):
                mean, std = predictions(u)
                return mean[:, sl], std[:, sl]

            sample = (lambda u, sl=sl: draws(u)[..., sl]) if draws is not None else None
            per_var.append(sobol_indices(predict, d, n=s.n_sobol, seed=s.seed, sample=sample, n_joint=n_joint))
        names = [v["name"] for v in layout.variables]
        ds = _sobol_dataset(per_var, self.box.inputs, names)
        ds.attrs.update(method="Saltelli (first order) and Jansen (total) estimators on the emulator mean",
                        interval=("95%: bootstrap over the base sample, combined in quadrature with the spread over "
                                  + ("100 joint GP posterior sample functions" if draws is not None
                                     else "perturbations of the ensemble mean by its predictive std")),
                        n_base=s.n_sobol, output=names[0] if len(per_var) == 1 else "")
        self._sensitivity = (self.fit.fitted_runs, ds)
        return ds

    def live_view(self) -> dict[str, Any]:
        """The emulator along its widest-ranging input (the one whose slice varies most),
        the others at the centre of the box, with the 95 % band; ``{}`` before the first
        fit; recomputed only after a refit."""
        if not self.fitted():
            return {}
        if self._live is not None and self._live[0] == self.fit.fitted_runs:
            return self._live[1]
        sl = self.slices_dataset(n_grid=41)
        mean, std = sl["mean"].values, sl["std"].values
        mean = mean.reshape(mean.shape[0], mean.shape[1], -1)[..., 0]  # the first output value
        std = std.reshape(std.shape[0], std.shape[1], -1)[..., 0]
        i = int(np.argmax(np.ptp(mean, axis=1)))
        x = sl["value"].values[i]
        view = {"plots": [{
            "title": f"{self.runs.layout.labels()[0]} along {self.box.inputs[i]} ({self.fit.fitted_runs} runs)",
            "x": x.tolist(), "x_label": self.box.inputs[i],
            "lines": {"emulator mean": mean[i].tolist()},
            "band": {"lower": (mean[i] - 1.96 * std[i]).tolist(), "upper": (mean[i] + 1.96 * std[i]).tolist(),
                     "label": "95 %"},
        }]}
        self._live = (self.fit.fitted_runs, view)
        return view


class _JointDraws:
    """100 joint posterior sample functions at the points ``u``, drawn once per ``u``
    (seeded) and shared by the output variables."""

    def __init__(self, emulator: Any, seed: int):
        self.emulator, self.seed = emulator, seed
        self.u: np.ndarray | None = None
        self.draws: np.ndarray | None = None

    def __call__(self, u: np.ndarray) -> np.ndarray:
        if self.u is None or not np.array_equal(self.u, u):
            gen = torch.Generator().manual_seed(self.seed)
            self.u = u
            self.draws = self.emulator.sample_unit(torch.as_tensor(u, dtype=torch.float64), 100, gen).numpy()
        return self.draws


def _sobol_dataset(per_var: list[dict], inputs: list[str], names: list[str]) -> xr.Dataset:
    single = len(per_var) == 1
    data: dict[str, Any] = {}
    for key in ("first_order", "total", "first_order_low", "first_order_high", "total_low", "total_high"):
        arr = np.stack([p[key] for p in per_var])
        data[key] = (("input",), arr[0]) if single else (("output", "input"), arr)
    coords: dict[str, Any] = {"input": inputs}
    if not single:
        coords["output"] = names
    ds = xr.Dataset(data, coords=coords)
    ds["first_order"].attrs["long_name"] = "first-order Sobol index"
    ds["total"].attrs["long_name"] = "total Sobol index"
    return ds

"""Fitting and validating the emulator after each batch, and its validation history.

:class:`Fit` holds the emulator, the validation predictions per run, the latest
validation metrics and their history against the number of runs (a
:class:`~sciml_lab.kit.history.History`). A GP is validated on every run (exact
leave-one-out for the error, cross-validation for the calibration: see
:meth:`~sciml_lab.emulate.emulator.Emulator.validate`); an ensemble on a held-out
fifth of the runs, fixed by run index.

Example:
    >>> from sciml_lab.emulate.emulator import OutputLayout
    >>> from sciml_lab.emulate.runs import Box, Runs
    >>> from sciml_lab.emulate.settings import EmulateSettings
    >>> x = np.linspace(0, 1, 8)[:, None]
    >>> s = EmulateSettings(bounds={"a": (0, 1)}, device="cpu", model="gp").resolve(n_rows=8)
    >>> runs = Runs.of(x, x, np.sin(3 * x), OutputLayout([{"name": "y"}]))
    >>> fit = Fit.new(s.seed)
    >>> fit.refit(s, Box(s.bounds, s.log_inputs), runs, n_batches=1, budget=8)
    >>> fit.fitted_runs, fit.metrics["nrmse"] < 0.1, fit.to_dataset().sizes["budget"]
    (8, True, 1)
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Mapping

import numpy as np
import torch
import xarray as xr

from ..kit.history import History
from ..kit.state import State
from .emulator import Emulator, OutputLayout
from .runs import Box, Runs
from .settings import EmulateSettings

__all__ = ["Fit", "VALIDATION_COLUMNS", "choose_model"]

# new columns go last: a checkpoint written before them is padded with NaN on load
VALIDATION_COLUMNS = ("runs", "n_train", "failed", "nrmse", "coverage", "nll", "raw_coverage", "calibration_scale",
                      "fit_time", "wall_time", "nrmse_low", "nrmse_high")
_ATTRS = {
    "nrmse": {"long_name": "normalised RMSE (RMSE / std of the outputs)"},
    "nrmse_low": {"long_name": "lower end of the 95% bootstrap interval of nrmse (resampled validation runs)"},
    "nrmse_high": {"long_name": "upper end of the 95% bootstrap interval of nrmse (resampled validation runs)"},
    "coverage": {"long_name": "95% predictive interval coverage (after recalibration, cross-fitted)"},
    "nll": {"long_name": "Gaussian negative log-likelihood per value (in output std units)"},
    "fit_time": {"units": "s"}, "wall_time": {"units": "s"},
}


def choose_model(s: EmulateSettings, layout: OutputLayout | None, budget: int) -> str:
    """The model ``"auto"`` stands for: a GP up to 1500 runs and 10 latent outputs (its
    cost grows like runs³ and with the latent outputs), else a deep ensemble.

    Example:
        >>> choose_model(EmulateSettings(), None, 2000)
        'ensemble'
    """
    if s.model != "auto":
        return s.model
    m = layout.size if layout is not None else 1
    latent = (m if n_components(s, layout) is None else 1) if layout is not None else 1  # PCA: one shared kernel
    return "gp" if budget <= 1500 and latent <= 10 else "ensemble"


def n_components(s: EmulateSettings, layout: OutputLayout) -> int | str | None:
    """PCA components of the outputs (``None``: no PCA): the requested number when it
    is below the number of output values, else ``"auto"`` above 10 values (as many as
    leave out at most 1e-4 of the variance, see :mod:`sciml_lab.emulate.reduce`)."""
    m = layout.size
    if s.n_components is not None:
        return int(s.n_components) if s.n_components < m else None
    return "auto" if m > 10 else None


def _placement(s: EmulateSettings, kind: str) -> Any:
    # the GP runs on the CPU in float64 unless the device is a GPU
    return s.device if kind == "ensemble" or s.device.startswith("cuda") else "cpu"


@dataclasses.dataclass
class Fit(State):
    """The emulator's fits so far: validation predictions per run (NaN: not validated),
    the latest metrics, their history, the model kind and a note on recalibration."""

    gen: torch.Generator
    validation: History
    cv_mean: np.ndarray
    cv_std: np.ndarray
    metrics: dict
    fitted_runs: int = -1  # runs at the last fit
    wall: float = 0.0  # seconds spent in steps
    note: str = ""
    model: str = ""

    @classmethod
    def new(cls, seed: int) -> "Fit":
        """No fit yet; the fits draw from a generator seeded with ``seed``."""
        return cls(torch.Generator().manual_seed(seed), History("budget", VALIDATION_COLUMNS, _ATTRS),
                   np.zeros((0, 0)), np.zeros((0, 0)), {})

    def __post_init__(self) -> None:
        self.emulator: Emulator | None = None

    def refit(self, s: EmulateSettings, box: Box, runs: Runs, n_batches: int, budget: int) -> None:
        """Fit on every usable run, validate, and record the metrics."""
        t0 = time.perf_counter()
        ok = runs.fittable()
        if self.emulator is None:
            kind = choose_model(s, runs.layout, budget)
            self.emulator = Emulator(box.inputs, box.bounds, box.log_inputs, runs.layout, kind,
                                     n_components(s, runs.layout), device=_placement(s, kind), **s.model_options)
            self.model = self.emulator.model_kind
        emu = self.emulator
        torch.manual_seed(s.seed + n_batches)  # ensemble initialisation, GP subsets
        validated = ok
        if emu.model_kind == "gp":
            emu.fit(runs.X[ok], runs.Y[ok], generator=self.gen)
            m = emu.validate(recalibrate=s.recalibrate)
        else:
            # every fifth successful run validates the ensemble (fixed by run index, so a
            # run never moves between training and validation as the design grows)
            val = ok & ((np.arange(runs.n) % 5) == 4)
            train = ok & ~val
            if val.sum() < 2 or train.sum() < 2:
                train, val = ok, ok
            emu.fit(runs.X[train], runs.Y[train], generator=self.gen)
            m = emu.validate(runs.X[val], runs.Y[val], recalibrate=s.recalibrate)
            validated = val
        self.cv_mean = np.full_like(runs.Y, np.nan)
        self.cv_std = np.full_like(runs.Y, np.nan)
        self.cv_mean[validated], self.cv_std[validated] = emu.last_validation
        fit_time = time.perf_counter() - t0
        self._record(m, runs, int(ok.sum()), fit_time)

    def _record(self, m: Mapping[str, float], runs: Runs, n_train: int, fit_time: float) -> None:
        if m["scale"] != 1.0:
            where = "cross-validated" if self.model == "gp" else "held-out"
            self.note = (f"predictive std recalibrated by x{m['scale']:.3g}: raw 95% coverage was "
                         f"{m['raw_coverage']:.2f} on {where} runs")
        else:
            self.note = ""
        self.fitted_runs = runs.n
        self.metrics = {"nrmse": m["nrmse"], "nrmse_low": m["nrmse_low"], "nrmse_high": m["nrmse_high"],
                        "coverage": m["coverage"], "nll": m["nll"], "raw_coverage": m["raw_coverage"],
                        "calibration_scale": m["scale"], "fit_time": fit_time}
        self.validation.append(runs=runs.n, n_train=n_train, failed=runs.n_failed, nrmse=m["nrmse"],
                               coverage=m["coverage"], nll=m["nll"], raw_coverage=m["raw_coverage"],
                               calibration_scale=m["scale"], fit_time=fit_time, wall_time=self.wall + fit_time,
                               nrmse_low=m["nrmse_low"], nrmse_high=m["nrmse_high"])

    def dominant_run(self, runs: Runs, share: float = 0.5, min_runs: int = 20, min_nrmse: float = 0.01
                     ) -> tuple[int, float] | None:
        """The run and its share of the squared validation error when one run carries
        more than ``share`` of it (with at least ``min_runs`` validated runs, and an
        error worth a word: ``nrmse >= min_nrmse``; the last run of a box edge often
        carries most of a negligible error)."""
        y = runs.Y
        if self.cv_mean.shape != y.shape or not self.metrics or not self.metrics["nrmse"] >= min_nrmse:
            return None
        done = np.all(np.isfinite(self.cv_mean), 1) & np.all(np.isfinite(y), 1)
        if done.sum() < min_runs:
            return None
        sd = y[done].std(0)
        per_run = np.where(done, (((self.cv_mean - y) / np.where(sd > 0, sd, 1.0)) ** 2).mean(1), 0.0)
        i = int(np.argmax(per_run))
        top = float(per_run[i] / per_run.sum()) if per_run.sum() > 0 else 0.0
        return (i, top) if top > share else None

    def to_dataset(self) -> xr.Dataset:
        """The validation history against the runs (coordinate ``budget``)."""
        h = self.validation
        ds = h.to_dataset(coord=h.column("runs").astype(int)).drop_vars("runs")
        ds["budget"].attrs["long_name"] = "simulator runs (including failed ones)"
        ds.attrs["method"] = (getattr(self.emulator, "validation_method", "exact leave-one-out cross-validation")
                              if self.model == "gp" else "held-out runs (every fifth run)")
        return ds

    def state_dict(self) -> dict[str, Any]:
        """The fits' state and the emulator's weights (as JSON settings and tensors)."""
        state = super().state_dict()
        state["emulator_config"] = json.dumps(self.emulator.config()) if self.emulator is not None else ""
        state["emulator"] = self.emulator.tensors() if self.emulator is not None else {}
        return state

    def load(self, state: Mapping[str, Any], s: EmulateSettings, runs: Runs) -> None:
        """Restore from :meth:`state_dict`; the emulator is rebuilt on the settings' device."""
        self.load_state_dict({k: v for k, v in state.items() if k not in ("emulator", "emulator_config")})
        self.metrics = {k: float(v) for k, v in self.metrics.items()}
        self.emulator = None
        if state.get("emulator_config"):
            self.emulator = Emulator.from_parts(json.loads(state["emulator_config"]), state["emulator"],
                                                device=_placement(s, self.model))
            if self.emulator.model_kind == "gp":
                self.emulator._train_y = torch.as_tensor(runs.Y[runs.ok() & np.all(np.isfinite(runs.Y), 1)])

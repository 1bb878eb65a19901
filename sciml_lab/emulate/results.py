"""The result of an emulator run: the design, the failures and the warnings.

:class:`Results` reads the run table and the fits and builds the result's groups:
``/design`` (every run with its validation prediction), ``/validation`` (from
:class:`~sciml_lab.emulate.validation.Fit`), ``/failures`` (the failed runs and where
success is likely), and, through :class:`~sciml_lab.emulate.surfaces.Surfaces`,
``/sensitivity`` and ``/slices``; plus the warnings in words and numbers.

Example:
    >>> from sciml_lab.emulate.runs import Box, Runs
    >>> from sciml_lab.emulate.settings import EmulateSettings
    >>> from sciml_lab.emulate.validation import Fit
    >>> s = EmulateSettings(bounds={"a": (0, 1)}, device="cpu").resolve(n_rows=None)
    >>> res = Results(s, Box(s.bounds, s.log_inputs), Runs.empty(1), Fit.new(0))
    >>> res.design_dataset().sizes["run"], res.failures_dataset(), res.warnings()
    (0, None, [])
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from .design import candidates
from .runs import Box, Runs
from .settings import EmulateSettings
from .surfaces import Surfaces
from .validation import Fit

__all__ = ["Results"]


def _runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """First and last index of each run of True in a 1-D mask.

    Example:
        >>> _runs_of(np.array([True, True, False, True]))
        [(0, 1), (3, 3)]
    """
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return [(int(a), int(b) - 1) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


class Results:
    """The result's datasets and warnings, built from the run table ``runs`` and the fits
    ``fit`` (both read when asked, so they may change between calls); the failures
    group is cached per number of runs."""

    def __init__(self, s: EmulateSettings, box: Box, runs: Runs, fit: Fit):
        self.s, self.box, self.runs, self.fit = s, box, runs, fit
        self.surfaces = Surfaces(s, box, runs, fit)
        self._failures: tuple[int, xr.Dataset] | None = None

    def forget(self) -> None:
        """Drop the cached groups (after a checkpoint is loaded)."""
        self._failures = None
        self.surfaces.forget()

    def design_dataset(self) -> xr.Dataset:
        """Every run: inputs, outputs, failure, batch, attempts and validation prediction."""
        r = self.runs
        ds = xr.Dataset(
            {"inputs": (("run", "input"), r.X),
             "failed": ("run", r.status.astype(bool)),
             "error": ("run", np.array(r.errors, dtype=object).astype(str) if r.errors else np.zeros(0, str)),
             "batch": ("run", r.batch_of), "attempts": ("run", r.attempts)},
            coords={"run": np.arange(r.n), "input": self.box.inputs},
        )
        if r.layout is not None and r.Y.shape[1] == r.layout.size:
            ds = self._add_outputs(ds)
        ds["inputs"].attrs["long_name"] = "simulator inputs (user units)"
        ds["error"].attrs["long_name"] = "error of the last attempt of a failed run"
        for k in self.box.inputs:
            ds.attrs[f"bounds_{k}"] = list(self.box.bounds[k])
        return ds

    def _add_outputs(self, ds: xr.Dataset) -> xr.Dataset:
        r, fit = self.runs, self.fit
        new = dict(r.layout.variables_of(r.Y, ("run",)))  # added in one merge (one per variable is O(m^2))
        if fit.cv_mean.shape == r.Y.shape:  # rows appended since the last fit are not validated yet
            cv_mean, cv_std = fit.cv_mean, fit.cv_std
        else:
            cv_mean = np.full_like(r.Y, np.nan)
            cv_std = np.full_like(r.Y, np.nan)
            k = min(len(fit.cv_mean), len(r.Y))
            if fit.cv_mean.shape[1:] == r.Y.shape[1:]:
                cv_mean[:k], cv_std[:k] = fit.cv_mean[:k], fit.cv_std[:k]
        new.update({f"{name}_cv_mean": v for name, v in r.layout.variables_of(cv_mean, ("run",)).items()})
        new.update({f"{name}_cv_std": v for name, v in r.layout.variables_of(cv_std, ("run",)).items()})
        ds = ds.assign(new)
        for name in (v["name"] for v in r.layout.variables):
            ds[f"{name}_cv_mean"].attrs["long_name"] = f"validation prediction of {name} (LOO or held out)"
        for dim, c in r.layout.coords().items():
            ds = ds.assign_coords({dim: c})
        return ds

    def failures_dataset(self) -> xr.Dataset | None:
        """The failed runs (inputs, error) and the success classifier's probability per
        input, averaged over the others (``None`` while no run has failed)."""
        r = self.runs
        if not r.n_failed:
            return None
        if self._failures is not None and self._failures[0] == r.n:
            return self._failures[1]
        failed = np.flatnonzero(r.status == 1)
        ds = xr.Dataset({"inputs": (("failure", "input"), r.X[failed]),
                         "run": ("failure", failed),
                         "error": ("failure", np.array([r.errors[i] for i in failed], dtype=str))},
                        coords={"input": self.box.inputs})
        ds["inputs"].attrs["long_name"] = "inputs of the failed runs (user units)"
        ds["error"].attrs["long_name"] = "error of the last attempt"
        ds.attrs.update(n_failed=int(r.n_failed), n_runs=int(r.n))
        clf = r.success_model(self.s.seed)
        if clf is not None:
            d = len(self.box.inputs)
            grid, p = clf.marginals(d, n_grid=41, seed=self.s.seed)
            ds["p_success"] = (("input", "grid"), p)
            ds["p_success"].attrs["long_name"] = "probability that a run succeeds, averaged over the other inputs"
            ds = ds.assign_coords(value=(("input", "grid"), self.surfaces.sweep_values(grid)))
            cloud = candidates(4096, d, self.s.seed + 104729)
            ds.attrs.update(
                success_share=float(clf.predict(cloud).mean()),
                method=("Gaussian-process classifier (Matérn-5/2, ARD, Laplace approximation, probit predictive) "
                        "fitted on the success of every run; it weighs the active learning"),
                lengthscale=json.dumps(dict(zip(self.box.inputs, clf.lengthscale.round(4).tolist()))),
            )
        self._failures = (r.n, ds)
        return ds

    def warnings(self) -> list[str]:
        """Failed simulator runs with where they failed, and a validation error carried
        by a single run (see :meth:`~sciml_lab.emulate.engine.EmulateEngine.warnings`)."""
        r, out = self.runs, []
        if r.n_failed:
            failed = np.flatnonzero(r.status == 1)
            adaptive = r.batch_of[failed] >= 1
            words = f"{r.n_failed} of {r.n} simulator runs failed"
            if (r.batch_of >= 1).any():
                words += f" ({int(adaptive.sum())} of the {int((r.batch_of >= 1).sum())} after the initial design)"
            region = self._failure_region()
            if region is not None:
                share, where = region
                words += f"; estimated success region: {share:.0%} of the input box"
                if where:
                    words += f", failures where {', '.join(where)}"
            out.append(f"{words}; first error: {r.errors[int(failed[0])]}")
        dominant = self.fit.dominant_run(r)
        if dominant is not None:
            i, share = dominant
            m = self.fit.metrics
            at = ", ".join(f"{k}={v:.3g}" for k, v in zip(self.box.inputs, r.X[i]))
            out.append(f"one run carries {share:.0%} of the squared validation error (run {i}: {at}): the simulator "
                       f"may change abruptly there; nrmse {m['nrmse']:.3g} (95% interval "
                       f"{m['nrmse_low']:.3g}-{m['nrmse_high']:.3g})")
        return out

    def _failure_region(self) -> tuple[float, list[str]] | None:
        """The classifier's success share of the box and, per input, the ranges where
        success is less likely than not (averaged over the other inputs)."""
        fs = self.failures_dataset()
        if fs is None or "p_success" not in fs:
            return None
        where = []
        for i, k in enumerate(self.box.inputs):
            x, p = fs["value"].values[i], fs["p_success"].values[i]
            edges = np.concatenate([[x[0]], 0.5 * (x[1:] + x[:-1]), [x[-1]]])  # between grid points
            for lo, hi in _runs_of(p < 0.5):
                a, b = f"{edges[lo]:.3g}", f"{edges[hi + 1]:.3g}"
                inner, upper = lo > 0, hi < len(x) - 1
                where.append(f"{a} < {k} < {b}" if inner and upper else f"{k} > {a}" if inner
                             else f"{k} < {b}" if upper else f"{k} anywhere")
        return float(fs.attrs["success_share"]), where

    def groups(self) -> dict[str, xr.Dataset]:
        """The result's groups by path."""
        groups = {"/design": self.design_dataset(), "/validation": self.fit.to_dataset()}
        failures = self.failures_dataset()
        if failures is not None:
            groups["/failures"] = failures
        groups.update(self.surfaces.groups())
        return groups

    def attrs(self, model: str, budget: int) -> dict[str, Any]:
        """The result's attributes (JSON strings for lists and dicts)."""
        r, emu = self.runs, self.fit.emulator
        failures = [{"run": int(i), "inputs": dict(zip(self.box.inputs, r.X[i].tolist())), "error": r.errors[i]}
                    for i in np.flatnonzero(r.status == 1)[:100]]
        return dict(
            inputs=json.dumps(self.box.inputs), outputs=json.dumps(r.layout.to_json() if r.layout else []),
            bounds=json.dumps(self.box.bounds), log_inputs=json.dumps(self.box.log_inputs),
            model=model, budget=int(budget), n_runs=int(r.n), n_failed=int(r.n_failed),
            failures=json.dumps(failures), note=self.fit.note, warnings=json.dumps(self.warnings()),
            calibration_scale=float(emu.scale) if emu is not None else 1.0,
            emulator_config=json.dumps(emu.config()) if emu is not None else "",
        )

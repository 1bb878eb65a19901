"""Inline views of an emulator result (Bokeh), from xarray only.

Every function takes the result's ``xarray.DataTree`` (live ``job.data``, the final
``job.result`` or ``sciml_lab.load(path)``) and returns a Bokeh object, so the
views work the same on a run reopened from disk. After ``%load_ext sciml_lab`` a view left
as a cell's last expression shows inline (or ``plots.show(fig)``), offline and in
JupyterLab's theme (see :mod:`sciml_lab.plots`).
"""

from __future__ import annotations

import json
import math
from typing import Sequence

import numpy as np
import xarray as xr
from scipy.stats import norm

from ..plots import show  # shows a view inline: offline BokehJS, JupyterLab theme

__all__ = ["parity", "coverage", "convergence", "slices", "sobol_bars", "view", "show"]

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _group(tree: xr.DataTree, name: str) -> xr.Dataset:
    if name not in tree.children:
        raise ValueError(f"the result has no /{name} group yet (groups: {', '.join(tree.children) or 'none'}); "
                         "it appears after the first batch of runs is fitted")
    return tree[name].to_dataset()


def _outputs(tree: xr.DataTree) -> list[str]:
    return [v["name"] for v in json.loads(tree.attrs.get("outputs", "[]"))]


def _observed_and_cv(tree: xr.DataTree, output: str | None) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    d = _group(tree, "design")
    names = _outputs(tree) or [k[:-len("_cv_mean")] for k in d.data_vars if str(k).endswith("_cv_mean")]
    name = output or names[0]
    if name not in d or f"{name}_cv_mean" not in d:
        raise ValueError(f"output: expected one of {names}, got {name!r}")
    y = d[name].values.reshape(d.sizes["run"], -1)
    m = d[f"{name}_cv_mean"].values.reshape(y.shape)
    s = d[f"{name}_cv_std"].values.reshape(y.shape)
    ok = np.isfinite(y) & np.isfinite(m) & np.isfinite(s)
    return name, y[ok], m[ok], s[ok]


def parity(tree: xr.DataTree, output: str | None = None, width: int = 360, height: int = 360):
    """Observed against validation-predicted outputs (cross-validated for a GP, held-out
    runs for an ensemble), with 95 % error bars and the identity line.

    Example:
        >>> tree = _example_tree()
        >>> type(parity(tree)).__name__
        'figure'
    """
    from bokeh.models import ColumnDataSource, Whisker
    from bokeh.plotting import figure

    name, y, m, s = _observed_and_cv(tree, output)
    p = figure(width=width, height=height, title=f"parity: {name} (validation predictions)",
               toolbar_location=None, x_axis_label="simulator", y_axis_label="emulator")
    src = ColumnDataSource({"y": y, "m": m, "lo": m - 1.96 * s, "hi": m + 1.96 * s})
    p.add_layout(Whisker(source=src, base="y", lower="lo", upper="hi", line_alpha=0.4, line_color=_PALETTE[0]))
    p.scatter("y", "m", source=src, size=5, color=_PALETTE[0], alpha=0.8)
    if len(y):
        lo, hi = float(min(y.min(), m.min())), float(max(y.max(), m.max()))
        p.line([lo, hi], [lo, hi], line_color="#7f7f7f", line_dash="dashed")
    return p


def coverage(tree: xr.DataTree, output: str | None = None, width: int = 360, height: int = 360):
    """Calibration curve: the share of validation residuals inside each central
    predictive interval against its nominal level (the diagonal is perfect
    calibration; below it the emulator is overconfident).

    Example:
        >>> type(coverage(_example_tree())).__name__
        'figure'
    """
    from bokeh.plotting import figure

    name, y, m, s = _observed_and_cv(tree, output)
    levels = np.linspace(0.05, 0.99, 40)
    z = np.abs(y - m) / np.maximum(s, 1e-300)
    empirical = [float(np.mean(z < norm.ppf(0.5 + lv / 2))) if len(z) else math.nan for lv in levels]
    p = figure(width=width, height=height, title=f"coverage: {name}", toolbar_location=None,
               x_axis_label="nominal level", y_axis_label="observed share inside", x_range=(0, 1), y_range=(0, 1))
    p.line([0, 1], [0, 1], line_color="#7f7f7f", line_dash="dashed")
    p.line(levels, empirical, line_width=2, color=_PALETTE[0])
    p.scatter([0.95], [float(np.mean(z < 1.959963984540054)) if len(z) else math.nan], size=8, color=_PALETTE[3])
    return p


def convergence(tree: xr.DataTree, width: int = 360, height: int = 240):
    """Normalised RMSE (log scale) and 95 % coverage against the number of simulator runs.

    Example:
        >>> type(convergence(_example_tree())).__name__
        'Row'
    """
    from bokeh.layouts import row
    from bokeh.models import Span
    from bokeh.plotting import figure

    v = _group(tree, "validation")
    runs = v["budget"].values
    p1 = figure(width=width, height=height, title="error vs runs", y_axis_type="log", toolbar_location=None,
                x_axis_label="simulator runs", y_axis_label="NRMSE")
    e = v["nrmse"].values
    ok = np.isfinite(e) & (e > 0)
    if "nrmse_low" in v:  # the 95 % bootstrap interval: a bump inside it is noise
        lo, hi = v["nrmse_low"].values, v["nrmse_high"].values
        band = ok & np.isfinite(lo) & np.isfinite(hi) & (lo > 0)
        p1.varea(runs[band], lo[band], hi[band], fill_alpha=0.2, fill_color=_PALETTE[0])
    p1.line(runs[ok], e[ok], line_width=2, color=_PALETTE[0])
    p1.scatter(runs[ok], e[ok], size=5, color=_PALETTE[0])
    p2 = figure(width=width, height=height, title="95% coverage", toolbar_location=None, y_range=(0, 1.05),
                x_axis_label="simulator runs", x_range=p1.x_range)
    p2.line(runs, v["coverage"].values, line_width=2, color=_PALETTE[0], legend_label="calibrated")
    p2.line(runs, v["raw_coverage"].values, line_width=1, color=_PALETTE[1], line_dash="dotted", legend_label="raw")
    p2.add_layout(Span(location=0.95, dimension="width", line_dash="dashed", line_color="#d62728"))
    p2.legend.location = "bottom_right"
    return row(p1, p2)


def slices(tree: xr.DataTree, output: str | None = None, index: int = 0, width: int = 240, height: int = 200):
    """Partial-dependence slices: the emulator along each input with the others at the
    centre of the box, with its 95 % band.

    Arguments:
        output: output column label (``"y"``, ``"y[3]"``) when there are several.
        index: for a vector output, which value along its own dimension.

    Example:
        >>> type(slices(_example_tree())).__name__
        'GridPlot'
    """
    from bokeh.layouts import gridplot
    from bokeh.plotting import figure

    sl = _group(tree, "slices")
    mean, std = sl["mean"], sl["std"]
    extra = [d for d in mean.dims if d not in ("input", "grid")]
    if extra:
        dim = extra[0]
        if output is not None and dim == "output":
            mean, std = mean.sel(output=output), std.sel(output=output)
        else:
            mean, std = mean.isel({dim: index}), std.isel({dim: index})
    figs = []
    for i, name in enumerate(sl["input"].values):
        x = sl["value"].values[i]
        m, s = mean.values[i], std.values[i]
        p = figure(width=width, height=height, title=str(name), toolbar_location=None,
                   x_axis_type="log" if str(name) in json.loads(tree.attrs.get("log_inputs", "[]")) else "linear")
        p.varea(x, m - 1.96 * s, m + 1.96 * s, fill_alpha=0.25, fill_color=_PALETTE[0])
        p.line(x, m, line_width=2, color=_PALETTE[0])
        figs.append(p)
    return gridplot(figs, ncols=min(4, len(figs)))


def sobol_bars(tree: xr.DataTree, output: str | None = None, width: int = 420, height: int = 260):
    """First-order and total Sobol' indices per input with their 95 % intervals.

    Example:
        >>> type(sobol_bars(_example_tree())).__name__
        'figure'
    """
    from bokeh.models import ColumnDataSource, FactorRange, Whisker
    from bokeh.plotting import figure

    s = _group(tree, "sensitivity")
    if "output" in s.dims:
        s = s.sel(output=output) if output is not None else s.isel(output=0)
    inputs = [str(k) for k in s["input"].values]
    factors = [(k, kind) for k in inputs for kind in ("first order", "total")]
    vals, lo, hi = [], [], []
    for k in inputs:
        for key in ("first_order", "total"):
            vals.append(float(s[key].sel(input=k)))
            lo.append(float(s[f"{key}_low"].sel(input=k)))
            hi.append(float(s[f"{key}_high"].sel(input=k)))
    src = ColumnDataSource({"x": factors, "v": vals, "lo": lo, "hi": hi,
                            "color": [_PALETTE[0], _PALETTE[1]] * len(inputs)})
    p = figure(x_range=FactorRange(*factors), width=width, height=height, title="Sobol' indices (95% intervals)",
               toolbar_location=None)
    p.vbar(x="x", top="v", width=0.8, source=src, color="color", alpha=0.8)
    p.add_layout(Whisker(source=src, base="x", lower="lo", upper="hi"))
    p.xaxis.major_label_orientation = 0.8
    return p


def view(tree: xr.DataTree, output: str | None = None):
    """All views of a result in tabs: convergence, parity, coverage, slices, Sobol' bars.

    Example:
        >>> type(view(_example_tree())).__name__
        'Tabs'
    """
    from bokeh.models import TabPanel, Tabs

    tabs = [TabPanel(child=convergence(tree), title="convergence")]
    if "design" in tree.children and any(str(k).endswith("_cv_mean") for k in tree["design"].data_vars):
        tabs += [TabPanel(child=parity(tree, output), title="parity"),
                 TabPanel(child=coverage(tree, output), title="coverage")]
    if "slices" in tree.children:
        tabs.append(TabPanel(child=slices(tree, output), title="slices"))
    if "sensitivity" in tree.children:
        tabs.append(TabPanel(child=sobol_bars(tree, output), title="sensitivity"))
    return Tabs(tabs=tabs)


def _example_tree() -> xr.DataTree:
    """A tiny fitted result for the examples (fits a 2-input function with 12 runs)."""
    from .engine import EmulateEngine

    eng = EmulateEngine(lambda a, b: a + b * b, {"a": (0, 1), "b": (0, 1)}, budget=12, device="cpu", n_sobol=256,
                        poll=0.05)
    while not eng.done():
        eng.step()
    return eng.snapshot()

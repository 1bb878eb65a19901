"""Views of a calibration's result (xarray in, Bokeh out): the chain's convergence
round by round, the posterior (corner plot), and the check against the real simulator.

Example:
    >>> tree = _example_tree()
    >>> type(view(tree)).__name__
    'Tabs'
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..flowmc.plots import corner
from ..kit.protocol import parse_criteria
from ..plots import show  # shows a view inline: offline BokehJS, JupyterLab theme

__all__ = ["rounds", "check", "view", "show"]

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _target(tree: xr.DataTree) -> float | None:
    try:
        until = json.loads(tree.attrs.get("config", "{}")).get("until")
        return next(c.value for c in parse_criteria(until) if c.metric == "move")
    except (ValueError, TypeError, StopIteration):
        return None


def rounds(tree: xr.DataTree, width: int = 330, height: int = 240):
    """Round by round against simulator calls: the posterior's move (log scale, with the
    target), the emulator's sd over the noise sd at the posterior, and each parameter's
    posterior mean ± sd in units of the last round's sd, centred on its last mean.

    Example:
        >>> type(rounds(_example_tree())).__name__
        'Row'
    """
    from bokeh.layouts import row
    from bokeh.models import Span, Whisker, ColumnDataSource
    from bokeh.plotting import figure

    r = tree["rounds"].to_dataset()
    calls = r["calls"].values
    p1 = figure(width=width, height=height, title="posterior move between rounds", y_axis_type="log",
                toolbar_location=None, x_axis_label="simulator calls", y_axis_label="move (posterior sd)")
    ok = np.isfinite(r["move"].values) & (r["move"].values > 0)
    p1.line(calls[ok], r["move"].values[ok], line_width=2, color=_PALETTE[0])
    p1.scatter(calls[ok], r["move"].values[ok], size=6, color=_PALETTE[0])
    target = _target(tree)
    if target:
        p1.add_layout(Span(location=target, dimension="width", line_dash="dashed", line_color="#d62728"))
    p2 = figure(width=width, height=height, title="emulator sd / noise sd at the posterior", y_axis_type="log",
                toolbar_location=None, x_axis_label="simulator calls", x_range=p1.x_range)
    p2.line(calls, r["emulator_sd"].values, line_width=2, color=_PALETTE[1])
    p2.scatter(calls, r["emulator_sd"].values, size=6, color=_PALETTE[1])
    p2.add_layout(Span(location=1.0, dimension="width", line_dash="dashed", line_color="#7f7f7f"))
    p3 = figure(width=width, height=height, title="posterior mean ± sd (in last sd, from last mean)",
                toolbar_location=None, x_axis_label="simulator calls", x_range=p1.x_range)
    names = [str(k)[5:] for k in r.data_vars if str(k).startswith("mean_")]
    for i, k in enumerate(names):
        m, s = r[f"mean_{k}"].values, r[f"sd_{k}"].values
        z, e = (m - m[-1]) / s[-1], s / s[-1]
        x = calls + (i - (len(names) - 1) / 2) * 0.01 * max(np.ptp(calls), 1)
        src = ColumnDataSource({"x": x, "z": z, "lo": z - e, "hi": z + e})
        color = _PALETTE[i % len(_PALETTE)]
        p3.scatter("x", "z", source=src, size=6, color=color, legend_label=k)
        p3.add_layout(Whisker(source=src, base="x", lower="lo", upper="hi", line_color=color))
    p3.legend.location = "bottom_right"
    return row(p1, p2, p3)


def check(tree: xr.DataTree, width: int = 560, height: int = 260):
    """The observations against the real simulator at posterior draws: the simulated
    outputs' 5-95 % band widened by the noise (2 sd), and the data with their noise.

    Example:
        >>> type(check(_example_tree())).__name__
        'figure'
    """
    from bokeh.plotting import figure

    chk, obs = tree["check"].to_dataset(), tree["observed"].to_dataset()
    name = next(k for k in obs.data_vars if not str(k).endswith("_noise_sd"))
    y, sd = obs[name].values.ravel(), obs[f"{name}_noise_sd"].values.ravel()
    idx = np.arange(y.size)
    p = figure(width=width, height=height, title="data against the simulator at posterior draws",
               toolbar_location=None, x_axis_label="observation", y_axis_label=str(name))
    if "simulated" in chk and chk["simulated"].size and y.size == chk.sizes.get("value", -1):
        sim = chk["simulated"].values[~chk["failed"].values]
        lo, hi = np.nanpercentile(sim, 5, axis=0) - 2 * sd, np.nanpercentile(sim, 95, axis=0) + 2 * sd
        p.varea(idx, lo, hi, fill_alpha=0.25, fill_color=_PALETTE[0], legend_label="simulator ± noise")
        p.line(idx, np.nanmedian(sim, axis=0), color=_PALETTE[0], line_width=2)
    p.scatter(idx, y, size=6, color="#000000", legend_label="observed")
    p.segment(idx, y - 2 * sd, idx, y + 2 * sd, color="#000000")
    return p


def view(tree: xr.DataTree):
    """All views of a calibration in tabs: rounds, posterior, check.

    Example:
        >>> [t.title for t in view(_example_tree()).tabs]
        ['rounds', 'posterior', 'check']
    """
    from bokeh.models import TabPanel, Tabs

    tabs = [TabPanel(child=rounds(tree), title="rounds")]
    if "posterior" in tree.children:
        tabs.append(TabPanel(child=corner(tree), title="posterior"))
    if "check" in tree.children:
        tabs.append(TabPanel(child=check(tree), title="check"))
    return Tabs(tabs=tabs)


def _example_tree() -> xr.DataTree:
    """A small finished calibration for the examples (a decay observed at 5 times)."""
    from .engine import CalibrateEngine

    def sim(k):
        return np.exp(-k * np.linspace(0.5, 2.5, 5))

    eng = CalibrateEngine(sim, {"k": (0.1, 2.0)}, observed=sim(0.7), noise=0.02, rounds=2, initial_runs=8,
                          runs_per_round=4, n_check=4, device="cpu",
                          sampler={"n_chains": 16, "n_training_loops": 2, "n_loops": 3})
    while not eng.done():
        eng.step()
    return eng.snapshot()

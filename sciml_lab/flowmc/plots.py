"""Inline views of a flow-MCMC result (Bokeh), from xarray only.

Every function takes the result's ``xarray.DataTree`` (live ``job.data``, the final
``job.result`` or ``sciml_lab.load(path)``) and returns a Bokeh object or a pandas
table, so the views work the same on a run reopened from disk. After ``%load_ext sciml_lab``
a view left as a cell's last expression shows inline (or ``plots.show(fig)``), offline and
in JupyterLab's theme (see :mod:`sciml_lab.plots`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from ..plots import show  # shows a view inline: offline BokehJS, JupyterLab theme
from .summary import dataset as _dataset, flat_draws, summary

__all__ = ["flat_draws", "summary", "summary_table", "corner", "trace", "history", "view", "show"]

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def summary_table(tree: "xr.DataTree | xr.Dataset", var_names: Sequence[str] | None = None,
                  hdi_prob: float = 0.94, width: int = 720):
    """The summary as a Bokeh ``DataTable`` (R-hat above 1.01 is shown in red).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ds = xr.Dataset({"mu": (("chain", "draw"), rng.normal(size=(4, 200)))})
        >>> type(summary_table(ds)).__name__
        'DataTable'
    """
    from bokeh.models import ColumnDataSource, DataTable, HTMLTemplateFormatter, NumberFormatter, TableColumn

    table = summary(tree, var_names, hdi_prob)
    data = {"parameter": list(table.index)}
    data.update({c: table[c].to_numpy() for c in table.columns})
    cols = [TableColumn(field="parameter", title="parameter")]
    for c in table.columns:
        if c == "r_hat":
            fmt = HTMLTemplateFormatter(template='<span style="color:<%= value > 1.01 ? \'#d62728\' : '
                                                 '\'inherit\' %>"><%= value.toFixed(3) %></span>')
        elif c in ("ess_bulk", "ess_tail"):
            fmt = NumberFormatter(format="0")
        else:
            fmt = NumberFormatter(format="0.000")
        cols.append(TableColumn(field=c, title=c, formatter=fmt))
    return DataTable(source=ColumnDataSource(data), columns=cols, width=width,
                     height=min(600, 30 + 28 * len(table)), index_position=None)


def _histogram(a: np.ndarray, bins: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    h, edges = np.histogram(a, bins=bins, range=(lo, hi), density=True)
    return h, edges


def _ranges(pooled: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Each parameter's axis range: its 0.1-99.9 % quantiles, padded by 5 %."""
    ranges = {}
    for k, a in pooled.items():
        lo, hi = np.quantile(a, [0.001, 0.999])
        pad = 0.05 * (hi - lo if hi > lo else 1.0)
        ranges[k] = (float(lo - pad), float(hi + pad))
    return ranges


def _corner_panel(figure, pooled, fs, xj: str, yi: str | None, ranges, bins: int, size: int, pick, max_points: int):
    """One panel of :func:`corner`: the histogram of ``xj`` (``yi`` None) or the scatter
    of ``yi`` against ``xj``, with the flow's samples ``fs`` (if any) in orange."""
    opts = {} if yi is None else {"y_range": ranges[yi]}
    p = figure(width=size, height=size, x_range=ranges[xj], toolbar_location=None, **opts)
    if yi is None:
        h, e = _histogram(pooled[xj], bins, *ranges[xj])
        p.quad(top=h, bottom=0, left=e[:-1], right=e[1:], fill_color=_PALETTE[0], line_color=None, fill_alpha=0.7)
        if fs is not None:
            hf, ef = _histogram(fs[xj], bins, *ranges[xj])
            p.step(x=ef[:-1], y=hf, mode="after", line_color=_PALETTE[1], line_width=2)
        p.yaxis.visible = False
    else:
        p.scatter(pooled[xj][pick], pooled[yi][pick], size=2, alpha=0.25, color=_PALETTE[0])
        if fs is not None:
            p.scatter(fs[xj][:max_points], fs[yi][:max_points], size=2, alpha=0.25, color=_PALETTE[1])
    return p


def corner(tree: "xr.DataTree | xr.Dataset", var_names: Sequence[str] | None = None, flow: bool = False,
           max_points: int = 4000, bins: int = 40, size: int = 160, seed: int = 0):
    """Corner plot: histograms on the diagonal, pairwise scatter below it.

    Arguments:
        tree: the result (or a posterior Dataset).
        var_names: parameters to show (default: all; at most 8 scalars are drawn).
        flow: overlay the flow's own samples (the ``/flow_samples`` group) in orange.
        max_points: scatter points per panel (a random subset of the draws).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ds = xr.Dataset({"x": (("chain", "draw", "x_dim_0"), rng.normal(size=(2, 100, 2)))})
        >>> type(corner(ds)).__name__
        'GridPlot'
    """
    from bokeh.layouts import gridplot
    from bokeh.plotting import figure

    flat = flat_draws(tree, "posterior", var_names)
    names = list(flat)[:8]
    rng = np.random.default_rng(seed)
    pooled = {k: flat[k].ravel() for k in names}
    n = len(next(iter(pooled.values())))
    pick = rng.choice(n, size=min(n, max_points), replace=False)
    fs = None
    if flow:
        if isinstance(tree, xr.Dataset) or "flow_samples" not in tree.children:
            raise ValueError("flow=True: the result has no /flow_samples group (it appears after the first "
                             "training loop)")
        fs = flat_draws(tree, "flow_samples", var_names)
    ranges = _ranges(pooled)
    rows = []
    for i, yi in enumerate(names):
        row = []
        for j, xj in enumerate(names):
            if j > i:
                row.append(None)
                continue
            p = _corner_panel(figure, pooled, fs, xj, yi if i != j else None, ranges, bins, size, pick, max_points)
            if i == len(names) - 1:
                p.xaxis.axis_label = xj
            else:
                p.xaxis.visible = False
            if j == 0 and i != j:
                p.yaxis.axis_label = yi
            elif i != j:
                p.yaxis.visible = False
            row.append(p)
        rows.append(row)
    return gridplot(rows)


def trace(tree: "xr.DataTree | xr.Dataset", var_names: Sequence[str] | None = None, max_chains: int = 8,
          width: int = 720, height: int = 140, warmup: bool = False):
    """Trace plots: each parameter against the draw for the first ``max_chains`` chains
    (``warmup=True`` shows the training draws instead).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ds = xr.Dataset({"mu": (("chain", "draw"), rng.normal(size=(3, 50)))})
        >>> type(trace(ds)).__name__
        'Column'
    """
    from bokeh.layouts import column
    from bokeh.plotting import figure

    flat = flat_draws(tree, "warmup_posterior" if warmup else "posterior", var_names)
    figs = []
    for name, a in list(flat.items())[:12]:
        p = figure(width=width, height=height, title=name, toolbar_location=None,
                   **({"x_range": figs[0].x_range} if figs else {}))
        draws = np.arange(a.shape[1])
        for c in range(min(max_chains, a.shape[0])):
            p.line(draws, a[c], line_color=_PALETTE[c % len(_PALETTE)], line_alpha=0.7, line_width=1)
        figs.append(p)
    figs[-1].xaxis.axis_label = "draw"
    return column(figs)


def history(tree: xr.DataTree, width: int = 360, height: int = 220):
    """Per-loop history from ``/diagnostics``: acceptance, flow loss, worst R-hat (with
    the 1.01 line) and smallest bulk ESS; training loops are shaded.

    Example:
        >>> ds = xr.Dataset({k: ("iteration", np.ones(3)) for k in ("local_acceptance", "global_acceptance",
        ...     "flow_loss", "rhat_max", "ess_bulk_min", "production")})
        >>> type(history(ds)).__name__
        'GridPlot'
    """
    from bokeh.layouts import gridplot
    from bokeh.models import BoxAnnotation, Span
    from bokeh.plotting import figure

    d = _dataset(tree, "diagnostics")
    it = np.arange(d.sizes["iteration"])
    training_end = float(np.sum(np.asarray(d["production"].values) == 0)) - 0.5
    panels = [("acceptance", ("local_acceptance", "global_acceptance"), False),
              ("flow loss (NLL per point)", ("flow_loss",), False),
              ("worst R-hat", ("rhat_max",), False),
              ("smallest bulk ESS", ("ess_bulk_min",), True)]
    figs = []
    for title, series, log in panels:
        p = figure(width=width, height=height, title=title, y_axis_type="log" if log else "linear",
                   toolbar_location=None, **({"x_range": figs[0].x_range} if figs else {}))
        for k, name in enumerate(series):
            y = np.asarray(d[name].values, dtype=float)
            ok = np.isfinite(y) & ((y > 0) if log else True)
            p.line(it[ok], y[ok], line_color=_PALETTE[k], legend_label=name, line_width=2)
        if name == "rhat_max":
            p.add_layout(Span(location=1.01, dimension="width", line_dash="dashed", line_color="#d62728"))
        p.add_layout(BoxAnnotation(right=training_end, fill_alpha=0.08, fill_color="#7f7f7f"))
        p.legend.location = "top_right"
        p.legend.label_text_font_size = "8pt"
        p.xaxis.axis_label = "loop"
        figs.append(p)
    return gridplot([figs[:2], figs[2:]])


def view(tree: xr.DataTree, var_names: Sequence[str] | None = None, flow: bool = False):
    """All views of a result in tabs: summary, corner, trace and history.

    Example:
        >>> import bokeh.io  # doctest: +SKIP
        >>> bokeh.io.show(view(job.result))  # doctest: +SKIP
    """
    from bokeh.models import TabPanel, Tabs

    tabs = []
    if "posterior" in tree.children:
        tabs += [TabPanel(child=summary_table(tree, var_names), title="summary"),
                 TabPanel(child=corner(tree, var_names, flow=flow and "flow_samples" in tree.children),
                          title="corner"),
                 TabPanel(child=trace(tree, var_names), title="trace")]
    tabs.append(TabPanel(child=history(tree), title="history"))
    return Tabs(tabs=tabs)

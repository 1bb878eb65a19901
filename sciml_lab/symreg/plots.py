"""Inline views of a symbolic regression result (Bokeh), from xarray only.

Every function takes the result's ``xarray.DataTree`` (live ``job.data``, the final
``job.result`` or a result reopened from disk) and returns a Bokeh object, a pandas
table or Markdown text, so the views work the same on a run read back from netCDF.
Show a figure with ``plots.show(fig)`` (offline, in JupyterLab's theme; after ``%load_ext
sciml_lab`` a figure left as a cell's last expression shows itself); show
the LaTeX table with ``IPython.display.Markdown(front_markdown(result))``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..plots import show  # shows a view inline: offline BokehJS, JupyterLab theme

__all__ = ["front_table", "front_markdown", "pareto", "parity", "residuals", "view", "show", "result_warnings"]

_BLUE, _ORANGE, _RED = "#1f77b4", "#ff7f0e", "#d62728"


def _pareto(tree: xr.DataTree) -> xr.Dataset:
    if "pareto" not in tree.children or tree["pareto"].sizes.get("complexity", 0) == 0:
        raise ValueError("the result has no Pareto front yet (no /pareto group, or it is empty): "
                         "wait for the first step of the search")
    return tree["pareto"].to_dataset()


def _index(p: xr.Dataset, complexity: int | None) -> int:
    comps = p["complexity"].values.tolist()
    if complexity is None:
        return int(np.argmax(p["selected"].values))
    if complexity not in comps:
        raise ValueError(f"complexity: expected one of {comps}, got {complexity!r}")
    return comps.index(complexity)


def front_table(tree: xr.DataTree) -> pd.DataFrame:
    """The Pareto front as a table indexed by complexity (display: simplified with rounded
    constants, equation: in full, loss, R², score, selected).

    Example:
        >>> tree = xr.DataTree.from_dict({"/pareto": xr.Dataset(
        ...     {"equation": ("complexity", ["x0", "2.5*x0*x1"]), "latex": ("complexity", ["x_{0}", "2.5 x_{0} x_{1}"]),
        ...      "loss": ("complexity", [1.0, 0.0]), "r2": ("complexity", [0.5, 1.0]),
        ...      "score": ("complexity", [0.0, 13.8]), "selected": ("complexity", [False, True])},
        ...     coords={"complexity": [1, 5]})})
        >>> front_table(tree).loc[5, "equation"]
        '2.5*x0*x1'
    """
    p = _pareto(tree)
    cols = [c for c in ("display", "equation", "loss", "r2", "score", "selected") if c in p]
    return pd.DataFrame({c: p[c].values for c in cols}, index=pd.Index(p["complexity"].values, name="complexity"))


def front_markdown(tree: xr.DataTree, digits: int = 3) -> str:
    """The Pareto front as a Markdown table with each equation in LaTeX (the selected one
    marked ★); display it with ``IPython.display.Markdown``.

    Example:
        >>> tree = xr.DataTree.from_dict({"/pareto": xr.Dataset(
        ...     {"latex": ("complexity", ["x_{0}"]), "loss": ("complexity", [0.5]), "r2": ("complexity", [0.9]),
        ...      "score": ("complexity", [0.0]), "selected": ("complexity", [True])}, coords={"complexity": [1]})})
        >>> print(front_markdown(tree).splitlines()[2])
        | ★ | 1 | $x_{0}$ | 0.5 | 0.90000 | 0 |
    """
    p = _pareto(tree)
    target = tree.attrs.get("target", "y")
    lines = ["| | complexity | equation | loss | R² | score |", "|---|---|---|---|---|---|"]
    for i, c in enumerate(p["complexity"].values):
        mark = "★" if bool(p["selected"].values[i]) else ""
        tex = str(p["latex"].values[i]) or (str(p["equation"].values[i]) if "equation" in p else "")
        lines.append(f"| {mark} | {int(c)} | ${tex}$ | {float(p['loss'][i]):.{digits}g} | "
                     f"{float(p['r2'][i]):.{digits + 2}f} | {float(p['score'][i]):.{digits}g} |")
    lines.append(f"\nequations for ${target}$; ★ = selected ({p.attrs.get('selection', 'best')})")
    lines += [f"\n**warning**: {w}" for w in result_warnings(tree)]
    return "\n".join(lines)


def result_warnings(tree: xr.DataTree) -> list[str]:
    """The warnings a result carries (its ``warnings`` attr, a JSON list of strings).

    Example:
        >>> tree = xr.DataTree(); tree.attrs["warnings"] = '["only 8 rows of data"]'
        >>> result_warnings(tree)
        ['only 8 rows of data']
    """
    import json

    try:
        out = json.loads(tree.attrs.get("warnings", "[]"))
    except (TypeError, ValueError):
        return [f"the result's warnings attr is not a JSON list: {str(tree.attrs.get('warnings'))[:200]!r}"]
    return [str(w) for w in out] if isinstance(out, list) else [str(out)]


def pareto(tree: xr.DataTree, width: int = 480, height: int = 320):
    """Loss against complexity (log scale) with the (displayed) equation on hover; the selected one in red.

    Example:
        >>> tree = xr.DataTree.from_dict({"/pareto": xr.Dataset(
        ...     {"equation": ("complexity", ["x0", "x0*x1"]), "loss": ("complexity", [1.0, 0.1]),
        ...      "r2": ("complexity", [0.5, 0.95]), "score": ("complexity", [0.0, 1.1]),
        ...      "selected": ("complexity", [False, True])}, coords={"complexity": [1, 3]})})
        >>> type(pareto(tree)).__name__
        'figure'
    """
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    p = _pareto(tree)
    loss = np.maximum(p["loss"].values.astype(float), 1e-300)
    floor = float(tree.attrs.get("target_variance", 1.0)) * 1e-14
    src = ColumnDataSource({"complexity": p["complexity"].values, "loss": np.maximum(loss, floor),
                            "equation": p["display" if "display" in p else "equation"].values.astype(str),
                            "r2": p["r2"].values,
                            "score": p["score"].values, "selected": p["selected"].values.astype(bool)})
    fig = figure(width=width, height=height, y_axis_type="log", title="Pareto front", toolbar_location="right",
                 tools="pan,wheel_zoom,box_zoom,reset")
    fig.step("complexity", "loss", source=src, mode="after", line_color=_BLUE, line_width=1.5)
    r = fig.scatter("complexity", "loss", source=src, size=8, color=_BLUE)
    sel = int(np.argmax(p["selected"].values))
    fig.scatter([int(p["complexity"][sel])], [max(loss[sel], floor)], size=14, marker="star", color=_RED,
                legend_label="selected")
    fig.add_tools(HoverTool(renderers=[r], tooltips=[("equation", "@equation"), ("complexity", "@complexity"),
                                                     ("loss", "@loss{0.000e}"), ("R²", "@r2{0.00000}"),
                                                     ("score", "@score{0.000}")]))
    fig.xaxis.axis_label = "complexity"
    fig.yaxis.axis_label = "loss (mean squared error)"
    fig.legend.location = "top_right"
    return fig


def _observed_predicted(tree: xr.DataTree, complexity: int | None) -> tuple[np.ndarray, np.ndarray, str, str]:
    p = _pareto(tree)
    if "data" not in tree.children or "prediction" not in p:
        raise ValueError("the result has no /data group or no predictions; it was not made by sciml_lab.symreg")
    i = _index(p, complexity)
    target = tree.attrs.get("target", "y")
    obs = tree["data"][target].values.astype(float)
    pred = p["prediction"].values[i].astype(float)
    return obs, pred, target, str(p["equation"].values[i])


def parity(tree: xr.DataTree, complexity: int | None = None, width: int = 360, height: int = 360):
    """Predicted against observed for the selected equation (or the one of ``complexity``).

    Example:
        >>> tree = xr.DataTree.from_dict({
        ...     "/pareto": xr.Dataset({"equation": ("complexity", ["x0"]), "selected": ("complexity", [True]),
        ...                            "prediction": (("complexity", "sample"), [[1.0, 2.0, 3.0]])},
        ...                           coords={"complexity": [1]}),
        ...     "/data": xr.Dataset({"y": ("sample", [1.1, 1.9, 3.0])})})
        >>> type(parity(tree)).__name__
        'figure'
    """
    from bokeh.plotting import figure

    obs, pred, target, eq = _observed_predicted(tree, complexity)
    ok = np.isfinite(pred)
    lo, hi = float(min(obs.min(), pred[ok].min(initial=obs.min()))), float(max(obs.max(), pred[ok].max(initial=obs.max())))
    fig = figure(width=width, height=height, title=f"{target} = {eq}"[:80], toolbar_location=None)
    fig.line([lo, hi], [lo, hi], line_color="#7f7f7f", line_dash="dashed")
    fig.scatter(obs[ok], pred[ok], size=4, alpha=0.5, color=_BLUE)
    fig.xaxis.axis_label = f"observed {target}"
    fig.yaxis.axis_label = f"predicted {target}"
    return fig


def residuals(tree: xr.DataTree, complexity: int | None = None, width: int = 360, height: int = 360):
    """Residuals (observed − predicted) against the prediction, with the zero line.

    Example:
        >>> tree = xr.DataTree.from_dict({
        ...     "/pareto": xr.Dataset({"equation": ("complexity", ["x0"]), "selected": ("complexity", [True]),
        ...                            "prediction": (("complexity", "sample"), [[1.0, 2.0, 3.0]])},
        ...                           coords={"complexity": [1]}),
        ...     "/data": xr.Dataset({"y": ("sample", [1.1, 1.9, 3.0])})})
        >>> type(residuals(tree)).__name__
        'figure'
    """
    from bokeh.models import Span
    from bokeh.plotting import figure

    obs, pred, target, _ = _observed_predicted(tree, complexity)
    ok = np.isfinite(pred)
    fig = figure(width=width, height=height, title="residuals", toolbar_location=None)
    fig.add_layout(Span(location=0, dimension="width", line_color="#7f7f7f", line_dash="dashed"))
    fig.scatter(pred[ok], (obs - pred)[ok], size=4, alpha=0.5, color=_ORANGE)
    fig.xaxis.axis_label = f"predicted {target}"
    fig.yaxis.axis_label = "observed − predicted"
    return fig


def view(tree: xr.DataTree, complexity: int | None = None):
    """The Pareto front beside predicted-vs-observed and residuals of the selected equation.

    Example:
        >>> import bokeh.io  # doctest: +SKIP
        >>> bokeh.io.show(view(job.result))  # doctest: +SKIP
    """
    from bokeh.layouts import column, row
    from bokeh.models import Div

    figures = row(pareto(tree), parity(tree, complexity), residuals(tree, complexity))
    warnings = result_warnings(tree)
    if not warnings:
        return figures
    import html

    text = "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
    return column(Div(text=f"<b>warnings</b><ul>{text}</ul>", styles={"color": _ORANGE}), figures)

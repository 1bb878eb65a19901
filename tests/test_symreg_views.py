"""The inline views of a symbolic regression result work from xarray alone, also after
a round trip through netCDF."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_lab.runtime.store import read_result, write_result
from sciml_lab.symreg import SymRegEngine, plots

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    X = np.random.default_rng(0).uniform(1, 3, (120, 2))
    y = X[:, 0] ** 2 / X[:, 1] + np.random.default_rng(1).normal(0, 0.01, 120)
    eng = SymRegEngine(X, y, ops="+ - * /", iterations=15, seed=0, device="cpu")
    while not eng.done():
        eng.step()
    path = tmp_path_factory.mktemp("views") / "result.nc"
    write_result(eng.snapshot(), path)
    return read_result(path)


def test_front_table_and_latex_markdown_come_back_from_disk(result):
    table = plots.front_table(result)
    assert table.index.name == "complexity" and table["selected"].sum() == 1
    md = plots.front_markdown(result)
    assert md.count("$") >= 2 * len(table) and "★" in md
    assert r"\frac{x_{0}^{2}}{x_{1}}" in md


def test_pareto_figure_hovers_the_equations(result):
    from bokeh.models import HoverTool

    fig = plots.pareto(result)
    assert fig.y_scale.__class__.__name__ == "LogScale"
    hover = fig.select_one(HoverTool)
    assert ("equation", "@equation") in hover.tooltips
    src = hover.renderers[0].data_source
    assert list(src.data["equation"]) == list(result["pareto"]["display"].values)


def test_parity_and_residuals_use_the_selected_equation(result):
    fig = plots.parity(result)
    pts = fig.renderers[-1].data_source.data
    obs = result["data"]["y"].values
    np.testing.assert_allclose(pts["x"], obs)
    assert np.corrcoef(pts["x"], pts["y"])[0, 1] > 0.99
    res = plots.residuals(result).renderers[-1].data_source.data["y"]
    assert np.abs(res).max() < 0.1  # the noise is 0.01
    assert type(plots.view(result)).__name__ == "Row"
    with pytest.raises(ValueError, match="complexity: expected one of"):
        plots.parity(result, complexity=999)

"""The inline views of a flow-MCMC result work from xarray alone (also after a
round trip through netCDF) and agree with ArviZ."""

from __future__ import annotations

import doctest
import importlib
import warnings

import numpy as np
import pytest
import torch

from sciml_lab.flowmc import FlowMCEngine, plots
from sciml_lab.runtime.store import read_result, write_result

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

warnings.filterwarnings("ignore", category=FutureWarning)  # arviz 0.2x announces its refactor


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    def log_prob(p):
        return -0.5 * (p["mu"] ** 2 + ((p["theta"] - 1) ** 2 / 4).sum(1))

    eng = FlowMCEngine(log_prob, params={"mu": 1, "theta": 2}, n_chains=16, n_training_loops=2, n_loops=3,
                       n_local_steps=20, n_global_steps=20, n_epochs=3, device="cpu", seed=0)
    while not eng.done():
        eng.step()
    path = tmp_path_factory.mktemp("views") / "result.nc"
    write_result(eng.snapshot(), path)
    return read_result(path)  # views must work on what comes back from disk


def test_summary_agrees_with_arviz(result):
    import arviz as az

    ours = plots.summary(result)
    theirs = az.summary(az.from_datatree(result), kind="all")
    assert list(ours.index) == ["mu", "theta[0]", "theta[1]"]
    for col in ("mean", "sd", "r_hat", "ess_bulk"):
        # arviz rounds its table to 2-3 significant digits
        np.testing.assert_allclose(ours[col].to_numpy(), theirs.loc[ours.index, col].to_numpy(), rtol=0.01,
                                   atol=0.01)


def test_views_build_bokeh_models(result):
    from bokeh.embed import json_item

    for fig in (plots.summary_table(result), plots.corner(result, flow=True), plots.trace(result),
                plots.trace(result, warmup=True), plots.history(result), plots.view(result, flow=True)):
        json_item(fig)  # serialisable for the browser: the figure is complete


def test_corner_without_flow_samples_says_why():
    import xarray as xr

    tree = xr.DataTree.from_dict({"/posterior": xr.Dataset({"a": (("chain", "draw"), np.zeros((2, 10)))})})
    with pytest.raises(ValueError, match="flow_samples"):
        plots.corner(tree, flow=True)


@pytest.mark.parametrize("module", ["", ".diagnostics", ".target", ".flow", ".kernels", ".engine", ".plots", ".settings",
                                    ".state", ".adaptation", ".schedule", ".results", ".verdicts", ".start", ".summary"])
def test_docstring_examples_run(module):
    mod = importlib.import_module(f"sciml_lab.flowmc{module}")
    torch.manual_seed(0)
    failures, _ = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert failures == 0

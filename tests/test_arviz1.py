"""A flow-MCMC result file read by ArviZ 1.x, unchanged.

ArviZ 1.x needs Python >= 3.12 while the CPU torch wheel here is for 3.11, so
``make test`` builds a torch-free Python >= 3.12 venv with ArviZ 1.x
(``.venv-arviz1``, see the Makefile's ``arviz1`` target). The flow-MCMC job runs
here; that venv opens its ``result.nc`` with xarray and runs ArviZ 1.x's summary,
R-hat, ESS and two Bokeh plots on the DataTree as it is, and the numbers must
match ArviZ 0.2x's on the same draws.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ARVIZ1_PYTHON = Path(os.environ.get("SCIML_ARVIZ1_PYTHON", ROOT / ".venv-arviz1" / "bin" / "python"))

READER = textwrap.dedent("""
    import json, sys
    import arviz as az, numpy as np, xarray as xr
    tree = xr.open_datatree(sys.argv[1], engine="h5netcdf")
    summary = az.summary(tree, ci_kind="hdi", ci_prob=0.94)
    plots = [type(az.plot_trace(tree, backend="bokeh")).__name__,
             type(az.plot_dist(tree, backend="bokeh")).__name__]
    print(json.dumps({
        "version": az.__version__,
        "groups": sorted(tree.children),
        "index": list(map(str, summary.index)),
        "mean": [float(v) for v in summary["mean"]],
        "rhat": np.ravel(az.rhat(tree)["theta"].values).tolist(),
        "ess_bulk": np.ravel(az.ess(tree, method="bulk")["theta"].values).tolist(),
        "plots": plots,
    }))
""")


@pytest.mark.skipif(not ARVIZ1_PYTHON.exists(),
                    reason=f"no ArviZ 1.x venv at {ARVIZ1_PYTHON}: `make arviz1` builds it (needs Python >= 3.12)")
def test_arviz1_reads_the_result_file_unchanged(runs):
    from sciml_lab.flowmc import sample

    def log_prob(p):  # a named 2-vector parameter: theta ~ N((1, -2), diag(1, 0.25))
        th = p["theta"]
        return -0.5 * ((th[..., 0] - 1.0) ** 2 + ((th[..., 1] + 2.0) / 0.5) ** 2)

    torch.set_num_threads(1)
    job = sample(log_prob, params={"theta": 2}, n_chains=16, n_training_loops=2, n_loops=4, name="az1",
                 device="cpu", seed=3)
    assert job.wait(180) == "done"
    path = job.store.path / "result.nc"

    out = subprocess.run([str(ARVIZ1_PYTHON), "-c", READER, str(path)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["version"].startswith("1."), got["version"]
    assert {"posterior", "sample_stats", "diagnostics"} <= set(got["groups"])
    assert got["index"] == ["theta[0]", "theta[1]"]
    assert got["plots"] == ["PlotCollection", "PlotCollection"]

    # the same file through ArviZ 0.2x's InferenceData here: the same numbers
    idata = az.from_datatree(job.result)
    post = idata.posterior["theta"]
    np.testing.assert_allclose(got["mean"], post.mean(("chain", "draw")).values, atol=0.006)  # summary rounds
    np.testing.assert_allclose(got["rhat"], az.rhat(idata)["theta"].values, rtol=1e-9)
    np.testing.assert_allclose(got["ess_bulk"], az.ess(idata, method="bulk")["theta"].values, rtol=1e-9)
    # and they describe the target: means within 5 Monte Carlo standard errors
    ess = np.asarray(got["ess_bulk"])
    se = np.array([1.0, 0.5]) / np.sqrt(ess)
    assert np.all(np.abs(np.asarray(got["mean"]) - [1.0, -2.0]) < 5 * se + 0.006)

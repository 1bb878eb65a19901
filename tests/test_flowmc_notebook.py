"""The flow-MCMC example notebook runs end to end headlessly: live monitor, summary,
corner plot, and an extend that improves the diagnostics."""

from __future__ import annotations

import re
from pathlib import Path

from test_notebooks import assert_views_inline, execute

ROOT = Path(__file__).parent.parent

def test_flowmc_notebook_runs_and_finds_the_mode_weights(tmp_path):
    nb = execute(ROOT / "example_notebooks" / "01_flowmc.ipynb", tmp_path, timeout=300)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert_views_inline(nb, 3)  # every view renders offline
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)  # the monitor
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    found = re.search(r"mode weights found: \[([\d. ]+)\]", text)
    assert found, text
    weights = [float(w) for w in found.group(1).split()]
    # 64 chains x 160+ production draws, every chain hopping: the sampling error of a weight is
    # about 0.015 here; over seeds 0-19 of this budget (bench/seed_sweep.py's way, the notebook's
    # cells run as a script) the largest weight error was 0.023: 0.05 held on 20 of 20
    assert all(abs(w - t) < 0.05 for w, t in zip(weights, (0.1, 0.2, 0.3, 0.4)))
    rhat = re.search(r"worst R-hat ([\d.]+) -> ([\d.]+)", text)
    # 10 production loops leave the worst R-hat at 1.018-1.095 over seeds 0-19, 30 more bring it
    # to 1.005-1.030: it fell on 20 of 20 seeds and ended below 1.05 on 20 of 20 (below 1.01 on
    # only 18 of 20, so that is not asserted: another machine is another seed)
    assert rhat and float(rhat.group(2)) < float(rhat.group(1)) and float(rhat.group(2)) < 1.05
    assert (tmp_path / "sciml-runs" / "mix" / "result.nc").exists()

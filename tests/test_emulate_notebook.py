"""The emulator example notebook runs end to end headlessly (nbclient)."""

from __future__ import annotations

import re
from pathlib import Path

from test_notebooks import assert_views_inline, execute

ROOT = Path(__file__).parent.parent

def test_emulator_notebook_runs_end_to_end(tmp_path):
    nb = execute(ROOT / "example_notebooks" / "02_emulator.ipynb", tmp_path, timeout=300)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert_views_inline(nb, 1)  # every view renders offline
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), "no live monitor"
    text = "\n".join(o.get("text", "") for o in outputs)
    m = re.search(r"NRMSE ([\d.e-]+) after (\d+) runs -> ([\d.e-]+) after (\d+) runs; 95% coverage ([\d.]+)", text)
    assert m, text[:2000]
    first, last = float(m.group(1)), float(m.group(3))
    assert int(m.group(4)) == 80 and last < first / 3  # the error curve falls as runs are paid for
    assert (tmp_path / "sciml-runs" / "emu" / "result.nc").exists()

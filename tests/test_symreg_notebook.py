"""The symbolic regression example notebook runs end to end headlessly and shows LaTeX."""

from __future__ import annotations

import re
from pathlib import Path

from test_notebooks import execute

ROOT = Path(__file__).parent.parent

def test_symbolic_regression_notebook_runs_and_recovers_two_pi(tmp_path):
    nb = execute(ROOT / "example_notebooks" / "03_symbolic_regression.ipynb", tmp_path, timeout=300)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    markdown = "\n".join(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    # the law, as sympy writes it: c*sqrt(L/g) or c*sqrt(L)/sqrt(g)
    assert re.search(r"\\sqrt\{\\frac\{L\}\{g\}\}|\\frac\{[\d.]+ \\sqrt\{L\}\}\{\\sqrt\{g\}\}", markdown)
    assert "★" in markdown
    m = re.search(r"\| \$c_\{0\}\$ \| [\d.]+ \| [\d.]+ \| \[([\d.]+), ([\d.]+)\] \|", markdown)
    assert m, markdown
    assert float(m.group(1)) < 6.2832 < float(m.group(2))  # 2*pi inside the 95 % bootstrap interval
    assert (tmp_path / "sciml-runs" / "pendulum" / "result.nc").exists()

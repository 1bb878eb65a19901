"""The wheel ships the widget bundle built from js/, and the package metadata is sane."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_contains_the_widget_bundle(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = tmp_path.glob("sciml_lab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("monitor.js", "board.js", "monitor.css"):
        assert f"sciml_lab/widgets/static/{f}" in names, f
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    torch_req = next(r for r in requires if r.split()[1].startswith("torch"))
    # a lower bound only: with torch 2.13.0 installed first, pip never swaps in a CUDA build
    assert "<" not in torch_req and "==" not in torch_req, torch_req
    assert any("ipykernel>=7.1" in r for r in requires)  # 7.0.0 broke output from threads

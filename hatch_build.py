"""Build hook: bundle the widget front end (js/) into sciml_lab/widgets/static/.

Runs ``npm ci`` (or ``npm install`` without a lock file) and ``npm run build``
when the bundle is missing or older than its sources. A wheel built from an sdist
that already holds the bundle needs no npm.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).parent
JS = ROOT / "js"
STATIC = ROOT / "sciml_lab" / "widgets" / "static"
WIRE = ROOT / "sciml_lab" / "widgets" / "wire.json"
OUTPUTS = ("monitor.js", "board.js", "monitor.css")


def _stale() -> bool:
    if not all((STATIC / o).exists() for o in OUTPUTS):
        return True
    if not (JS / "src").exists():
        return False
    sources = [p for p in (JS / "src").rglob("*") if p.is_file()] + [WIRE]  # the bundle holds wire.json
    newest_src = max(p.stat().st_mtime for p in sources if p.exists())
    return newest_src > min((STATIC / o).stat().st_mtime for o in OUTPUTS)


class JSBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version, build_data):
        if os.environ.get("SCIML_SKIP_JS_BUILD") == "1" or not _stale():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError(
                "sciml_lab: the widget bundle sciml_lab/widgets/static/ is missing and npm is not on PATH; "
                "install Node.js >= 18 (e.g. `apt-get install nodejs npm`) and build again"
            )
        install = "ci" if (JS / "package-lock.json").exists() else "install"
        subprocess.run([npm, install, "--no-audit", "--no-fund"], cwd=JS, check=True)
        subprocess.run([npm, "run", "build"], cwd=JS, check=True)

"""Helpers of the real-browser test: a private JupyterLab server and a headless Chromium.

Recipe (see the project's TESTING notes): Debian's ``/usr/bin/chromium`` driven by the
Python ``playwright`` package, JupyterLab started from this interpreter on 127.0.0.1 with a
random port and token, every Jupyter config/runtime/settings/workspace folder in a temp
dir, no news or update checks, the announcements plugin disabled, and
``expose_app_in_browser`` so the test can reach ``window.jupyterapp``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

#: the environment of every kernel the suite starts (example notebooks, JupyterLab's): torch on one
#: OpenMP/BLAS thread, as the suite's own processes run it (conftest.py's ``one_torch_thread``). The
#: suite runs on two workers on two cores, so a kernel's second thread spins for the core the other
#: worker holds; and the notebooks' statistical bounds were measured this way (bench/seed_sweep.py).
ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    proc: subprocess.Popen
    port: int
    token: str
    root: Path
    log_path: Path
    _log: object = field(repr=False, default=None)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, method: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        if method == "POST":
            req.data = b""
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, _ = self.api("GET", "/api/status", timeout=2.0)
                if status == 200:
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"JupyterLab did not answer /api/status within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """POST /api/shutdown, then signal only the process this helper started."""
        try:
            if self.proc.poll() is None:
                try:
                    self.api("POST", "/api/shutdown", timeout=5.0)
                except (OSError, urllib.error.URLError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.send_signal(signal.SIGTERM)
                    try:
                        self.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        self.proc.wait(timeout=5)
        finally:
            if self._log is not None:
                self._log.close()


def start_lab(tmp: Path, env_extra: dict[str, str] | None = None) -> LabServer:
    """Start JupyterLab in ``tmp/root`` with every Jupyter folder inside ``tmp``."""
    root, cfg, runtime, data = tmp / "root", tmp / "jupyter-config", tmp / "jupyter-runtime", tmp / "jupyter-data"
    settings, workspaces = tmp / "lab-settings", tmp / "lab-workspaces"
    for d in (root, cfg, runtime, data, settings, workspaces, cfg / "labconfig"):
        d.mkdir(parents=True, exist_ok=True)
    # a "news" notification can cover the page: disable the announcements plugin
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(cfg),
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_DATA_DIR": str(data),  # the venv's kernelspec and lab extensions stay on sys.prefix's path
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
        **ONE_THREAD_ENV,
    })
    env.update(env_extra or {})
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={workspaces}",
        "--allow-root",
    ]
    log_path = tmp / "jupyterlab.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = LabServer(proc, port, token, root, log_path, log)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


def write_notebook(path: Path, cells: list[str]) -> None:
    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {},
             "outputs": [], "source": src}
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


# JavaScript evaluated in the page ------------------------------------------------------

JS_KERNEL_READY = """() => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return "no app";
  const w = app.shell.currentWidget;
  if (!w || !w.sessionContext) return "no notebook";
  const s = w.sessionContext.session;
  if (!s || !s.kernel) return "no kernel";
  const k = s.kernel;
  return k.connectionStatus === "connected" && k.status === "idle" ? "ready" : `${k.connectionStatus}/${k.status}`;
}"""

JS_MONITORS = """() => Array.from(document.querySelectorAll('.sciml-monitor')).map((m) => {
  const bar = m.querySelector('.sciml-progress');
  const stats = m.querySelector('.sciml-stats');
  const canvases = Array.from(m.querySelectorAll('.sciml-chart canvas'));
  return {
    status: m.dataset.status || null,
    pill: (m.querySelector('.sciml-status') || {}).textContent || null,
    pillClass: (m.querySelector('.sciml-status') || {}).className || null,
    progress: bar ? bar.getAttribute('data-progress') : null,
    stats: stats ? stats.textContent : null,
    badges: m.querySelectorAll('.sciml-badge').length,
    latex: m.querySelectorAll('.sciml-view .sciml-latex .katex').length,
    canvases: canvases.length,
    canvasSizes: canvases.map((c) => [c.width, c.height]),
  };
})"""

# How many non-background pixels each chart canvas of monitor i holds: a chart with drawn
# lines has many; an empty (just axes) one has a few.
JS_CHART_INK = """(i) => {
  const m = document.querySelectorAll('.sciml-monitor')[i];
  return Array.from(m.querySelectorAll('.sciml-chart canvas')).map((c) => {
    const ctx = c.getContext('2d');
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let p = 0; p < d.length; p += 4) {
      const r = d[p], g = d[p + 1], b = d[p + 2], a = d[p + 3];
      // a saturated pixel (series colour), not grey axis/grid/text
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
    }
    return coloured;
  });
}"""

JS_OUTPUT_ERRORS = """() => Array.from(document.querySelectorAll(
  '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]'
)).map((e) => e.textContent.slice(0, 2000))"""

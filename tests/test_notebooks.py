"""Example notebooks run end to end headlessly (nbclient), and the Binder setup is sound."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

import seeds
from browser_helpers import ONE_THREAD_ENV

ROOT = Path(__file__).parent.parent


def execute(path: Path, cwd: Path, timeout: int = 300) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    first = seeds.notebook_cell()  # only under --seed-shift (bench/seed_sweep.py)
    if first:
        nb.cells.insert(0, nbformat.v4.new_code_cell(first))
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute(
        env={**os.environ, **ONE_THREAD_ENV})
    return nb


def assert_views_inline(nb, at_least: int = 1) -> None:
    """The notebook's Bokeh views carry BokehJS themselves (they render offline): none loads it from a CDN."""
    html = [str(o["data"]["text/html"]) for c in nb.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    views = [h for h in html if "sciml-bokeh" in h]
    assert len(views) >= at_least, f"{len(views)} inline Bokeh views, expected {at_least}"
    assert not any("cdn.bokeh.org" in h for h in html)


def outputs_text(nb) -> str:
    """The text of every output, one part each; a cell's consecutive outputs on one stream are one part,
    as the notebook shows them (the kernel may flush one print() in two messages when it is busy)."""
    parts = []
    for c in nb.cells:
        stream = None
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == stream:
                parts[-1] += o.get("text", "")
                continue
            stream = o.get("name") if o.get("output_type") == "stream" else None
            parts.append(o.get("text", ""))
            parts.extend(str(v) for v in o.get("data", {}).values())
    return "\n".join(parts)


def test_quickstart_notebook_runs_end_to_end(tmp_path):
    nb = execute(ROOT / "example_notebooks" / "00_quickstart.ipynb", tmp_path)
    text = outputs_text(nb)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    views = [o for c in nb.cells for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, "the live monitor was not displayed"
    assert_views_inline(nb)
    m = re.search(r"pi = (\d\.\d+) ± (\d\.\d+)\s+after ([\d,]+) points", text)
    assert m, text[:2000]
    est, se, n = float(m.group(1)), float(m.group(2)), int(m.group(3).replace(",", ""))
    assert n == 250 * 200_000  # 150 steps, then extended by 100
    assert abs(est - 3.141592653589793) < 5 * se  # a 5-sigma check of the estimate against the truth
    assert (tmp_path / "sciml-runs" / "pi" / "result.nc").exists()


def test_binder_environment_is_cpu_torch_and_installs_the_package():
    env = yaml.safe_load((ROOT / "binder" / "environment.yml").read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("pytorch-cpu") for d in deps), "Binder must not pull a CUDA build of torch"
    assert not any(re.match(r"^(pytorch|torch)([<>=]|$)", d) for d in deps)
    assert any(d.startswith("nodejs") for d in deps)  # the build hook bundles js/
    assert any(d.startswith("python=3.1") for d in deps)
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(p.startswith("jupyterlab") for p in pip)
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install" in post and " -e ." in post
    assert (ROOT / "binder" / "postBuild").stat().st_mode & 0o111


def test_process_executor_runs_code_defined_in_a_notebook_cell(tmp_path):
    """Functions and classes defined in cells travel to the worker by cloudpickle."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext sciml_lab"),
        nbformat.v4.new_code_cell(
            "import math\n"
            "from sciml_lab.demo import PiEngine\n"
            "from sciml_lab.runtime import launch\n"
            "def bias(x):            # a function that exists only in this kernel\n"
            "    return x + 1.0\n"
            "class Shifted(PiEngine):  # so does this class\n"
            "    def step(self):\n"
            "        m = dict(super().step())\n"
            "        m['shifted'] = bias(m['estimate'])\n"
            "        return m\n"
            "job = launch(Shifted(samples_per_step=10_000, steps=20), name='cell', executor='process')\n"
            "print(job.wait(120), job.step, round(job.metrics['shifted'] - job.metrics['estimate'], 12))"
        ),
    ]
    path = tmp_path / "cell.ipynb"
    nbformat.write(nb, path)
    out = execute(path, tmp_path)
    text = outputs_text(out)
    assert "done 20 1.0" in text, text[-2000:]


def test_kernel_restart_then_open_and_extend_continues_the_run(tmp_path):
    """One kernel runs and stops a job; a second kernel reopens it with %sciml open and
    extends it: the result continues the same random stream (same as an unbroken run)."""
    first = nbformat.v4.new_notebook()
    first.cells = [
        nbformat.v4.new_code_cell("%load_ext sciml_lab"),
        nbformat.v4.new_code_cell("%sciml pi --steps 100000 --samples 1000 --delay 0.005 --name run --no-monitor"),
        nbformat.v4.new_code_cell("import time; time.sleep(1.0)\n%sciml stop run --wait\nprint('STOPPED AT', run.step)"),
    ]
    second = nbformat.v4.new_notebook()
    second.cells = [
        nbformat.v4.new_code_cell("%load_ext sciml_lab"),
        nbformat.v4.new_code_cell("%sciml open sciml-runs/run --name again --no-monitor"),
        nbformat.v4.new_code_cell(
            "n0 = again.step\nagain.engine.budget = n0  # pay exactly 25 more steps\n"
            "%sciml extend run --steps 25\n"
            "again.wait(60)\nprint('RESUMED', n0, again.step, again.status, "
            "float(again.result['estimate']['pi_hat']))"),
    ]
    for nb, name in ((first, "first.ipynb"), (second, "second.ipynb")):
        nbformat.write(nb, tmp_path / name)
    text1 = outputs_text(execute(tmp_path / "first.ipynb", tmp_path))
    n_stop = int(re.search(r"STOPPED AT (\d+)", text1).group(1))
    text2 = outputs_text(execute(tmp_path / "second.ipynb", tmp_path))
    m = re.search(r"RESUMED (\d+) (\d+) (\w+) ([\d.]+)", text2)
    assert m, text2[-2000:]
    n0, n1, status, pi_hat = int(m.group(1)), int(m.group(2)), m.group(3), float(m.group(4))
    assert n0 == n_stop and n1 == n_stop + 25 and status == "done"
    # the same numbers as an unbroken run of n1 steps with the same seed
    from sciml_lab.demo import PiEngine

    ref = PiEngine(samples_per_step=1000, steps=n1, seed=0)
    while not ref.done():
        last = ref.step()
    assert pi_hat == last["estimate"]

"""``%sciml emulate`` in a real IPython shell."""

from __future__ import annotations

import os

import pytest

import IPython  # noqa: E402,F401 - a hard dependency: never skip
from IPython.core.error import UsageError  # noqa: E402

FAST = "--device cpu --no-monitor --workers 2"


@pytest.fixture(scope="module")
def shell(ipython_shell):
    return ipython_shell


def test_simulator_form_launches_and_binds_the_job(shell, tmp_path):
    shell.run_cell("import numpy as np\ndef sim(a, k):\n    return np.sin(3 * a) + np.log10(k)\n")
    shell.run_line_magic("sciml", f"emulate sim --bounds 'a=0:1 k=1e-2:1e2:log' --budget 24 --model gp {FAST} "
                                  f"--timeout 30 --name emu --runs-dir {tmp_path}")
    job = shell.user_ns["emu"]
    assert job.wait(120) == "done"
    assert json_loads(job.result.attrs["config"])["timeout"] == 30.0
    assert job.result.attrs["n_runs"] == 24
    assert json_loads(job.result.attrs["log_inputs"]) == ["k"]
    assert float(job.result["validation"]["nrmse"][-1]) < 0.05


def test_data_form_fits_a_dataframe(shell, tmp_path):
    shell.run_cell("import pandas as pd, numpy as np\nrng = np.random.default_rng(0)\n"
                   "df = pd.DataFrame({'a': rng.uniform(size=40), 'b': rng.uniform(size=40)})\n"
                   "df['y'] = df.a ** 2 + df.b\n")
    shell.run_line_magic("sciml", f"emulate df --inputs a b --outputs y {FAST} --name fitted --runs-dir {tmp_path}")
    job = shell.user_ns["fitted"]
    assert job.wait(120) == "done"
    assert job.result["design"].sizes["run"] == 40


def test_mistakes_are_usage_errors(shell):
    shell.run_cell("def sim2(a):\n    return a\n")
    with pytest.raises(UsageError, match="--bounds"):
        shell.run_line_magic("sciml", f"emulate sim2 {FAST}")
    with pytest.raises(UsageError, match="NAME=LOW:HIGH"):
        shell.run_line_magic("sciml", f"emulate sim2 --bounds 'a01' {FAST}")
    with pytest.raises(UsageError, match="unknown metric"):
        shell.run_line_magic("sciml", f"emulate sim2 --bounds 'a=0:1' --until 'r2>0.9' {FAST}")
    with pytest.raises(UsageError, match="no variable"):
        shell.run_line_magic("sciml", f"emulate nothing_here --bounds 'a=0:1' {FAST}")
    with pytest.raises(UsageError, match="--inputs"):
        shell.run_line_magic("sciml", f"emulate df {FAST}")
    with pytest.raises(UsageError, match="timeout"):
        shell.run_line_magic("sciml", f"emulate sim2 --bounds 'a=0:1' --timeout 0 {FAST}")
    with pytest.raises(UsageError, match=r"argument --explore: expected a number in \[0, 1\], got 1.5"):
        shell.run_line_magic("sciml", f"emulate sim2 --bounds 'a=0:1' --explore 1.5 {FAST}")
    with pytest.raises(UsageError, match="--timeout: a time limit applies to simulator calls"):
        shell.run_line_magic("sciml", f"emulate df --inputs a --outputs y --timeout 5 {FAST}")


def json_loads(text):
    import json

    return json.loads(text)


def test_a_notebook_function_runs_in_a_process_pool_with_ivr(shell, tmp_path):
    shell.run_cell("import numpy as np\ndef nb_sim(a, b):\n    import os\n    return {'y': np.sin(3 * a) + b, "
                   "'pid': float(os.getpid())}\n")
    shell.run_line_magic("sciml", f"emulate nb_sim --bounds 'a=0:1 b=0:1' --budget 12 --initial 6 --batch 6 "
                                  f"--model gp --pool process --acquisition ivr --explore 0.5 {FAST} --name emp "
                                  f"--runs-dir {tmp_path}")
    job = shell.user_ns["emp"]
    assert job.wait(120) == "done"
    cfg = json_loads(job.result.attrs["config"])
    assert cfg["pool"] == "process" and cfg["acquisition"] == "ivr" and cfg["explore"] == 0.5
    pids = set(job.result["design"]["pid"].values.tolist())
    assert os.getpid() not in pids  # every call ran in a worker process

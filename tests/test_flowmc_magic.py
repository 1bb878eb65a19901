"""``%%sciml flowmc`` and ``%sciml flowmc FUNC`` in a real IPython shell."""

from __future__ import annotations

import pytest

import IPython  # noqa: E402,F401 - a hard dependency: never skip
from IPython.core.error import UsageError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

FAST = "--chains 8 --training-loops 2 --loops 2 --local-steps 10 --global-steps 10 --epochs 2 --device cpu --no-monitor"


@pytest.fixture(scope="module")
def shell(ipython_shell):
    return ipython_shell


def test_cell_form_launches_and_binds_the_job(shell, tmp_path):
    cell = (
        "import torch\n"
        "def log_prob(p):\n"
        "    return (2 - 1) * torch.log(p['q']) + (5 - 1) * torch.log1p(-p['q'])\n"
        "params = ['q']\n"
    )
    shell.run_cell_magic("sciml", f"flowmc {FAST} --bounds 'q=0:1' --name beta_cell --runs-dir {tmp_path}", cell)
    job = shell.user_ns["beta_cell"]
    assert job.wait(120) == "done"
    q = job.result["posterior"]["q"].values
    assert 0 < q.min() and q.max() < 1


def test_line_form_uses_a_notebook_function(shell, tmp_path):
    shell.run_cell("import torch\ndef normal2(x):\n    return -0.5 * (x ** 2).sum(1)\n")
    shell.run_line_magic("sciml", f"flowmc normal2 --dim 2 {FAST} --name line_job --runs-dir {tmp_path}")
    job = shell.user_ns["line_job"]
    assert job.wait(120) == "done"
    assert job.result["posterior"]["x"].shape[-1] == 2


def test_mistakes_are_usage_errors(shell):
    with pytest.raises(UsageError, match="log_prob"):
        shell.run_cell_magic("sciml", f"flowmc {FAST}", "x = 1\n")
    with pytest.raises(UsageError, match="unknown metric"):
        shell.run_cell_magic("sciml", f"flowmc {FAST} --dim 1 --until 'loss<1'",
                             "def log_prob(x):\n    return -x.sum(1)\n")
    with pytest.raises(UsageError, match="NAME=LOW:HIGH"):
        shell.run_line_magic("sciml", f"flowmc normal2 {FAST} --bounds 'q01'")


def test_every_flag_of_the_settings_is_an_option_checked_by_the_setting(shell):
    import dataclasses

    from sciml_lab.flowmc.settings import FlowMCSettings
    from sciml_lab.runtime.registry import commands

    parser = commands()["flowmc"].parser()
    flags = {f.metadata["flag"]: f.name for f in dataclasses.fields(FlowMCSettings) if f.metadata.get("flag")}
    assert {"--chains", "--loops", "--epochs", "--flow-hidden", "--kernel", "--seed", "--leapfrog"} <= set(flags)
    args = parser.parse_args(["--chains", "2e3", "--flow-hidden", "128,32", "--global-steps", "0"])
    defaults = FlowMCSettings()
    for flag, name in flags.items():
        want = {"n_chains": 2000, "flow_hidden": (128, 32), "n_global_steps": 0}.get(name, getattr(defaults, name))
        assert getattr(args, name) == want, flag
    with pytest.raises(UsageError, match=r"--chains: expected an integer >= 2, got 1"):
        parser.parse_args(["--chains", "1"])
    with pytest.raises(UsageError, match=r"--kernel: expected one of 'mala', 'hmc', 'rw', 'auto', got 'nuts'"):
        parser.parse_args(["--kernel", "nuts"])
    # --leapfrog was added by its one line in settings.py: parsed, checked, and in the engine's config
    assert parser.parse_args(["--kernel", "hmc", "--leapfrog", "12"]).n_leapfrog == 12
    with pytest.raises(UsageError, match=r"--leapfrog: expected an integer >= 1, got 0"):
        parser.parse_args(["--leapfrog", "0"])

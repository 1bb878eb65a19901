"""%sciml through a real IPython InteractiveShell: parsing and every error path."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

import engines


@pytest.fixture(scope="module")
def shell(ipython_shell):
    engines.register_magic()
    return ipython_shell


def run_error(shell, line, capsys):
    """Run a cell; return the UsageError it raised, and check no traceback was printed."""
    res = shell.run_cell(line)
    out = capsys.readouterr()
    assert isinstance(res.error_in_exec, UsageError), (line, res.error_in_exec)
    assert "Traceback" not in out.out + out.err
    return str(res.error_in_exec)


def test_launch_binds_the_job_and_manages_it(shell, runs, capsys):
    res = shell.run_cell("%sciml teststep --steps 20 --name via_magic --threads 1 --no-monitor")
    assert res.error_in_exec is None
    job = shell.user_ns["via_magic"]
    assert job.kind == "teststep" and job.record["threads"] == 1
    shell.run_cell("%sciml wait via_magic --timeout 30")
    assert "job 'via_magic': done" in capsys.readouterr().out
    shell.run_cell("%sciml extend via_magic --steps 5")
    assert "extended by steps=5" in capsys.readouterr().out
    assert job.wait(30) == "done" and job.step == 25
    table = shell.run_cell("%sciml jobs").result
    row = table[table.name == "via_magic"].iloc[0]
    assert (row.kind, row.status, row.progress) == ("teststep", "done", "100%")
    assert row["key metric"].startswith("mean = ")


def test_stop_and_open(shell, runs, capsys):
    shell.run_cell("%sciml teststep --steps 100000 --delay 0.002 --name stoppable --no-monitor")
    shell.run_cell("%sciml stop stoppable --wait")
    assert "job 'stoppable': stopped" in capsys.readouterr().out
    res = shell.run_cell(f"%sciml open {runs / 'stoppable'} --name reopened --no-monitor")
    assert res.error_in_exec is None
    assert shell.user_ns["reopened"] is shell.user_ns["stoppable"]  # the same run: the same job
    assert "extend resumes it" in capsys.readouterr().out


def test_unknown_command(shell, capsys):
    msg = run_error(shell, "%sciml bogus", capsys)
    assert "unknown command 'bogus'" in msg and "teststep" in msg and "jobs" in msg


def test_unknown_job(shell, capsys):
    for cmd in ("show", "stop", "wait"):
        assert "no job named 'ghost'" in run_error(shell, f"%sciml {cmd} ghost", capsys)
    assert "no job named 'ghost'" in run_error(shell, "%sciml extend ghost --steps 3", capsys)


def test_bad_option_values_name_the_argument(shell, runs, capsys):
    assert "argument --steps: expected a positive integer, got 'ten'" in run_error(
        shell, "%sciml teststep --steps ten", capsys)
    assert "argument --executor: invalid choice: 'gpu'" in run_error(
        shell, "%sciml teststep --executor gpu", capsys)
    assert "unrecognized arguments: --bogus" in run_error(shell, "%sciml teststep --bogus 1", capsys)
    assert "argument --threads: expected a positive integer, got '0'" in run_error(
        shell, "%sciml teststep --threads 0", capsys)
    assert "not a valid job name" in run_error(shell, "%sciml teststep --name 'a b'", capsys)
    shell.run_cell("%sciml teststep --steps 2 --name ext_target --no-monitor")
    shell.user_ns["ext_target"].wait(30)
    assert "no budget word --loops; expected --steps N" in run_error(shell, "%sciml extend ext_target --loops 3", capsys)
    assert "--steps: expected a positive integer, got '-1'" in run_error(shell, "%sciml extend ext_target --steps -1", capsys)
    assert "give a budget" in run_error(shell, "%sciml extend ext_target", capsys)
    assert "check the quotes" in run_error(shell, "%sciml teststep --name 'open", capsys)
    assert "not a sciml_lab run folder" in run_error(shell, f"%sciml open {runs}", capsys)
    assert "--object expects KEY=VARIABLE" in run_error(shell, f"%sciml open {runs} --object nope", capsys)


def test_cell_body_only_where_accepted(shell, capsys):
    res = shell.run_cell("%%sciml jobs\nx = 1\n")
    assert isinstance(res.error_in_exec, UsageError)
    assert "takes no cell body" in str(res.error_in_exec)


def test_help_lists_commands_and_options(shell, capsys):
    shell.run_cell("%sciml help")
    out = capsys.readouterr().out
    for word in ("jobs", "show", "stop", "extend", "wait", "open", "pi", "teststep"):
        assert f"  {word}" in out
    shell.run_cell("%sciml help stop")
    assert "--grace" in capsys.readouterr().out
    shell.run_cell("%sciml stop --help")
    assert "--grace" in capsys.readouterr().out
    assert "Manage jobs" in shell.find_line_magic("sciml").__doc__
    assert "unknown command 'nope'" in run_error(shell, "%sciml help nope", capsys)


def test_register_command_refuses_builtins():
    from sciml_lab.magics import register_command

    with pytest.raises(ValueError, match="'jobs' is a built-in"):
        register_command("jobs", lambda p: None, lambda a, c, s: None, help="x")


FAST_FLOWMC = ("--chains 16 --training-loops 1 --loops 1 --local-steps 5 --global-steps 5 --epochs 1 --device cpu "
               "--no-monitor")
SCHOOLS = (
    "import torch\n"
    "y = torch.tensor([28., 8, -3, 7, -1, 1, 18, 12]); sigma = torch.tensor([15., 10, 16, 11, 9, 11, 10, 18])\n"
    "def log_prob(p):  # eight schools, non-centred: eta is a vector of 8\n"
    "    theta = p['mu'][:, None] + p['tau'][:, None] * p['eta']\n"
    "    return (-0.5 * ((y - theta) / sigma) ** 2).sum(1) - 0.5 * (p['eta'] ** 2).sum(1) - 0.5 * (p['mu'] / 5) ** 2 \\\n"
    "        - p['tau'] / 5\n"
)


def test_flowmc_magic_takes_vector_parameters_and_bounds(shell, runs, capsys):
    res = shell.run_cell(f'%%sciml flowmc --params "mu tau eta:8" --bounds "tau=0:" {FAST_FLOWMC} --name schools\n'
                         + SCHOOLS)
    assert res.error_in_exec is None, res.error_in_exec
    job = shell.user_ns["schools"]
    assert job.wait(120) == "done", job.error
    post = job.result["posterior"]
    assert post["eta"].shape[-1] == 8 and post["mu"].ndim == 2
    assert float(post["tau"].min()) > 0  # the bound holds for every draw
    # a matrix parameter and an open side written as inf
    from sciml_lab.flowmc.magic import parse_bounds, parse_params

    assert parse_params("w:2x3 b") == {"w": (2, 3), "b": 1}
    # how to say eta is a vector and tau > 0 is in the magic's own help
    shell.run_cell("%sciml help flowmc")
    help_text = " ".join(capsys.readouterr().out.split())
    assert "NAME:N (vector)" in help_text and "'mu tau eta:8'" in help_text and "(tau > 0" in help_text
    assert parse_bounds("tau=0:inf s=-inf:2") == {"tau": (0.0, None), "s": (None, 2.0)}


def test_flowmc_magic_mistakes_name_the_argument(shell, runs, capsys):
    shell.run_cell(SCHOOLS)
    line = f"%sciml flowmc log_prob {FAST_FLOWMC}"
    assert "--params: expected NAME or NAME:SIZE" in run_error(shell, f'{line} --params "mu eta:x"', capsys)
    assert "'eta:0'" in run_error(shell, f'{line} --params "mu eta:0"', capsys)
    assert "--params: 'mu' is given twice" in run_error(shell, f'{line} --params "mu mu"', capsys)
    assert "--bounds: no parameter named 'zeta'; parameters are mu, tau, eta" in run_error(
        shell, f'{line} --params "mu tau eta:8" --bounds "zeta=0:"', capsys)
    assert "--bounds: 'tau=1:0' needs LOW < HIGH" in run_error(
        shell, f'{line} --params "mu tau eta:8" --bounds "tau=1:0"', capsys)
    assert "--bounds: 'tau=a:' has a bound that is not a number" in run_error(
        shell, f'{line} --params "mu tau eta:8" --bounds "tau=a:"', capsys)
    assert "%sciml flowmc --help" not in run_error(shell, f"{line} --bogus 1", capsys)
    # the case of the report: eta read by log_prob but not declared (was "UsageError: %sciml flowmc: eta")
    msg = run_error(shell, f'{line} --params "mu tau"', capsys)
    assert msg.startswith("--params: log_prob reads the parameter 'eta', which is not declared"), msg
    assert "--params 'mu tau eta:8'" in msg


def test_an_unknown_keyword_is_a_usage_error_but_a_bug_in_user_code_keeps_its_traceback(shell, runs, capsys):
    from sciml_lab.flowmc import sample
    from sciml_lab.magics import register_command

    def run(args, cell, shell_):
        sample(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, bogus_option=1, store=False)

    register_command("kwtest", lambda p: None, run, help="calls the Python API with an unknown keyword")
    msg = run_error(shell, "%sciml kwtest", capsys)
    assert msg.startswith("%sciml kwtest:") and "bogus_option" in msg
    # a TypeError raised by the user's own function is theirs to debug: the traceback stays
    shell.run_cell("def broken():\n    return len(3)\n")

    def run_user(args, cell, shell_):
        shell_.user_ns["broken"]()

    register_command("usercode", lambda p: None, run_user, help="calls the user's function")
    res = shell.run_cell("%sciml usercode")
    assert type(res.error_in_exec) is TypeError


def test_magic_modules_examples_run(shell):
    import doctest

    import sciml_lab.face.commands
    import sciml_lab.face.magics
    import sciml_lab.flowmc.magic
    import sciml_lab.magics

    for mod in (sciml_lab.flowmc.magic, sciml_lab.magics, sciml_lab.face.commands, sciml_lab.face.magics):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted >= 1, (mod.__name__, result)

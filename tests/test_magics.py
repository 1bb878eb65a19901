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

"""The ``%sciml`` magic: the notebook face of sciml_lab.

``%load_ext sciml_lab`` registers ``%sciml`` (line) and ``%%sciml`` (cell). The
built-in sub-commands here manage jobs; each job kind adds its launcher from its
``magic`` module (see :mod:`sciml_lab.face.commands` and
:mod:`sciml_lab.runtime.registry`), imported when the extension loads or, for a
kind that arrives later (an entry point of a package installed since), when its
name is first typed.
"""

from __future__ import annotations

import argparse
import importlib
import math
import shlex

from IPython.core.error import UsageError

from ..runtime import FINAL_STATES, get_job, jobs, registry
from .commands import (BUILTIN_NAMES, Command, _display_monitor, _HelpShown, bind_job, positive_float, positive_int,
                       raised_in_user_code, resolve_object)

__all__ = ["sciml", "load_ipython_extension", "unload_ipython_extension"]


def _job(name: str):
    try:
        return get_job(name)
    except KeyError as exc:
        raise UsageError(f"NAME: {exc.args[0]}") from None


def _cmd_jobs(args, cell, shell):
    import pandas as pd

    rows = []
    for j in jobs():
        if j is None:
            continue
        key, value = j.key_metric
        verdict = j.verdict
        rows.append({
            "name": j.name, "kind": j.kind, "status": j.status,
            "verdict": verdict.text if verdict is not None else "",
            "progress": f"{100 * j.progress:.0f}%" if math.isfinite(j.progress) else "",
            "elapsed": _fmt_seconds(j.elapsed),
            "key metric": f"{key} = {value:.4g}" if value is not None else "",
            "warnings": "; ".join(verdict.warnings) if verdict is not None else "",
        })
    return pd.DataFrame(rows, columns=["name", "kind", "status", "verdict", "progress", "elapsed", "key metric",
                                       "warnings"])


def _fmt_seconds(s: float) -> str:
    """Seconds as ``m:ss`` or ``h:mm:ss`` for ``%sciml jobs``.

    Example:
        >>> _fmt_seconds(3725), _fmt_seconds(65.4)
        ('1:02:05', '1:05')
    """
    if not math.isfinite(s):
        return ""
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _cmd_show(args, cell, shell):
    _display_monitor(_job(args.name))


def _cmd_stop(args, cell, shell):
    j = _job(args.name)
    j.stop(grace=args.grace)
    if args.wait:
        j.wait(args.grace + 5)
    print(f"job {j.name!r}: {j.status}" + (" (stop requested)" if j.status not in FINAL_STATES else ""))


def _cmd_wait(args, cell, shell):
    j = _job(args.name)
    status = j.wait(args.timeout)
    print(f"job {j.name!r}: {status}")


def _cmd_extend(args, cell, shell):
    j = _job(args.name)
    words = tuple(j.budget_words)
    budget: dict[str, int] = {}
    rest = list(args.budget)
    form = " ".join(f"--{w} N" for w in words) or "--WORD N"
    if not rest:
        raise UsageError(f"%sciml extend {j.name}: give a budget, e.g. %sciml extend {j.name} {form}")
    while rest:
        tok = rest.pop(0)
        if not tok.startswith("--"):
            raise UsageError(f"%sciml extend: unexpected {tok!r}; expected {form}")
        word, _, val = tok[2:].partition("=")
        if not val:
            if not rest:
                raise UsageError(f"%sciml extend: --{word} needs a value; expected {form}")
            val = rest.pop(0)
        if word not in words:
            raise UsageError(f"%sciml extend: a {j.kind} job has no budget word --{word}; expected {form}")
        try:
            budget[word] = positive_int(val)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"%sciml extend: --{word}: {exc}") from None
    try:
        j.extend(**budget)
    except RuntimeError as exc:
        raise UsageError(f"%sciml extend: {exc}") from None
    print(f"job {j.name!r} extended by " + ", ".join(f"{k}={v}" for k, v in budget.items()))


def _cmd_open(args, cell, shell):
    import sciml_lab

    objects = {}
    for spec in args.object or ():
        key, sep, expr = spec.partition("=")
        if not sep:
            raise UsageError(f"%sciml open: --object expects KEY=VARIABLE (e.g. log_prob=my_log_prob), got {spec!r}")
        objects[key] = resolve_object(shell, expr, f"--object {key}")
    try:
        job = sciml_lab.open(args.path, executor=args.executor, **objects)
    except (FileNotFoundError, RuntimeError) as exc:
        raise UsageError(f"%sciml open: {exc}") from None
    # without --name the variable comes from the run's job.json: a file, not the user
    var, why = bind_job(job, args.name, shell, keep_user_variables=args.name is None)
    how = "extend resumes it" if job.resumable else job.record.get("not_resumable", "it cannot be resumed")
    print(f"opened run {job.name!r} ({job.status}, step {job.step}); bound to `{var}`; "
          f"its DataTree is `{var}.data`; {how}" + (f" ({why})" if why else ""))
    for problem in job.problems:
        print(f"  problem: {problem}")
    if not args.no_monitor:
        _display_monitor(job)


def _cmd_help(args, cell, shell):
    if args.command:
        cmd = _command(args.command)
        if cmd is None:
            raise UsageError(_unknown(args.command))
        print(cmd.parser().format_help())
    else:
        print(_help_text())


def _cmd_board(args, cell, shell):
    from IPython.display import display

    from ..widgets import JobBoard

    display(JobBoard())


def _conf_name(p):
    p.add_argument("name", help="the job's name (see %sciml jobs)")


def _conf_stop(p):
    _conf_name(p)
    p.add_argument("--grace", type=positive_float, default=10.0,
                   help="seconds before a process/dask job that has not stopped is killed")
    p.add_argument("--wait", action="store_true", help="wait until it has stopped")


def _conf_wait(p):
    _conf_name(p)
    p.add_argument("--timeout", type=positive_float, default=None, help="seconds to wait at most")


def _conf_extend(p):
    _conf_name(p)
    p.add_argument("budget", nargs=argparse.REMAINDER, help="budget words of the engine, e.g. --steps 2000")


def _conf_open(p):
    p.add_argument("path", help="a run folder (sciml-runs/NAME) or its result.nc")
    p.add_argument("--name", help="variable to bind the job to (default: the run's name)")
    p.add_argument("--object", action="append", metavar="KEY=VARIABLE",
                   help="an object the engine needs to resume, e.g. log_prob=my_log_prob")
    p.add_argument("--executor", default="thread", choices=("thread", "process", "dask"))
    p.add_argument("--no-monitor", action="store_true")


def _conf_help(p):
    p.add_argument("command", nargs="?", help="a sub-command")


_BUILTINS: dict[str, Command] = {c.name: c for c in (
    Command("jobs", lambda p: None, _cmd_jobs, "a table of this kernel's jobs", launcher=False),
    Command("board", lambda p: None, _cmd_board, "a live board of all jobs", launcher=False),
    Command("show", _conf_name, _cmd_show, "display a job's live monitor", launcher=False),
    Command("stop", _conf_stop, _cmd_stop, "stop a job between two steps", launcher=False),
    Command("extend", _conf_extend, _cmd_extend, "pay for more: %sciml extend NAME --steps N", launcher=False),
    Command("wait", _conf_wait, _cmd_wait, "block until a job ends", launcher=False),
    Command("open", _conf_open, _cmd_open, "reopen a run folder (result + resumable job)", launcher=False),
    Command("help", _conf_help, _cmd_help, "this help, or a command's: %sciml help extend", launcher=False),
)}


assert set(_BUILTINS) == BUILTIN_NAMES, "BUILTIN_NAMES lists the built-in sub-commands"


def _all_commands() -> dict[str, Command]:
    return {**_BUILTINS, **registry.commands(load=False)}


def _command(word: str) -> Command | None:
    """The sub-command ``word``; a kind not loaded yet (a new entry point, say) loads its magic first."""
    cmd = _all_commands().get(word)
    if cmd is None:
        entry = registry.kind(word, default=None)
        if entry is not None and entry.magic:
            importlib.import_module(entry.magic)
            cmd = _all_commands().get(word)
    return cmd


def _help_text() -> str:
    lines = ["%sciml COMMAND [options]    (%%sciml COMMAND [options] + a cell for launchers that take code)", "",
             "Launch a job:"]
    for c in registry.commands(load=False).values():
        lines.append(f"  {c.name:<8} {c.help}" + ("   [also %%sciml]" if c.cell else ""))
    lines += ["", "Manage jobs:"]
    for c in _BUILTINS.values():
        lines.append(f"  {c.name:<8} {c.help}")
    lines += ["", "%sciml help COMMAND shows a command's options."]
    return "\n".join(lines)


def _unknown(word: str) -> str:
    known = ", ".join(_all_commands())
    return f"%sciml: unknown command {word!r}; expected one of: {known} (see %sciml help)"


def sciml(line: str = "", cell: str | None = None):
    """(replaced by the generated help text)"""
    from IPython import get_ipython

    shell = get_ipython()
    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"%sciml: cannot parse the line ({exc}); check the quotes") from None
    if not words:
        raise UsageError(_help_text())
    cmd = _command(words[0])
    if cmd is None:
        raise UsageError(_unknown(words[0]))
    if cell is not None and not cmd.cell:
        raise UsageError(f"%%sciml {cmd.name} takes no cell body; use the line form %sciml {cmd.name} ...")
    try:
        args = cmd.parser().parse_args(words[1:])
    except _HelpShown:
        print(cmd.parser().format_help())
        return None
    try:
        return cmd.run(args, cell, shell)
    except (ValueError, KeyError, TypeError) as exc:
        # the Python APIs raise ValueError/KeyError/TypeError naming the argument: show it as a
        # usage error; an error raised inside the user's own code keeps its traceback
        if raised_in_user_code(exc):
            raise
        msg = exc.args[0] if exc.args else str(exc)
        raise UsageError(f"%sciml {cmd.name}: {msg}") from None


def _refresh_doc() -> None:
    sciml.__doc__ = _help_text()


_refresh_doc()

def load_ipython_extension(ipython) -> None:
    """Register ``%sciml``/``%%sciml``, show Jobs as their live monitor and Bokeh views
    inline (BokehJS from the installed package, in JupyterLab's theme)."""
    registry.commands(load=True)  # every known kind's magic module registers its launcher
    _refresh_doc()
    from .. import plots  # noqa: F401 - from here on bokeh.io.output_notebook() loads BokehJS inline too

    ipython.register_magic_function(sciml, magic_kind="line_cell", magic_name="sciml")
    from ..runtime import Job

    def _show(job):
        _display_monitor(job)
        return True

    def _show_view(view):  # a Bokeh view as a cell's value: inline, offline, themed
        from ..plots import show

        show(view)
        return True

    formatter = ipython.display_formatter.ipython_display_formatter
    formatter.for_type(Job, _show)
    formatter.for_type_by_name("bokeh.models.layouts", "LayoutDOM", _show_view)


def unload_ipython_extension(ipython) -> None:
    pass

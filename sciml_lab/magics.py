"""The ``%sciml`` magic: the notebook face of sciml_lab.

``%load_ext sciml_lab`` registers ``%sciml`` (line) and ``%%sciml`` (cell).
Built-in sub-commands manage jobs; engines add launch sub-commands through one
small API, :func:`register_command`::

    def configure(parser):               # an argparse parser that raises UsageError
        parser.add_argument("--steps", type=positive_int, default=100)
        add_launch_options(parser)        # --name --executor --runs-dir --save-every --no-monitor

    def run(args, cell, shell):           # cell is the cell body for %%sciml, else None
        job = my_engine_twin(steps=args.steps, **launch_kwargs(args))
        return finish_launch(job, args, shell)

    register_command("mine", configure, run, help="launch my engine")

Every user mistake raises :class:`IPython.core.error.UsageError` naming the
argument and the expected form; no traceback is printed for it.
"""

from __future__ import annotations

import argparse
import builtins
import dataclasses
import keyword
import math
import re
import shlex
from typing import Any, Callable

from IPython.core.error import UsageError

from .runtime import FINAL_STATES, get_job, jobs

__all__ = [
    "register_command", "add_launch_options", "launch_kwargs", "finish_launch", "positive_int",
    "positive_float", "resolve_object", "raised_in_user_code", "SciMLParser", "load_ipython_extension",
    "add_settings_options", "settings_kwargs",
]


class SciMLParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors (IPython prints them without a traceback)."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\nusage: {self.format_usage().strip().removeprefix('usage: ')}")

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        if message:
            raise UsageError(message)
        raise _HelpShown()


class _HelpShown(Exception):
    pass


def positive_int(text: str) -> int:
    """argparse type: a positive integer (``2000``, ``2e3`` and ``2_000`` accepted)."""
    try:
        v = float(str(text).replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if not v.is_integer() or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(v)


def positive_float(text: str) -> float:
    """argparse type: a positive finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


@dataclasses.dataclass
class Command:
    name: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, "str | None", Any], Any]
    help: str
    cell: bool = False  # accepts a cell body (%%sciml NAME)
    launcher: bool = True

    def parser(self) -> SciMLParser:
        p = SciMLParser(prog=f"%sciml {self.name}", description=self.help, add_help=True)
        self.configure(p)
        return p


_COMMANDS: dict[str, Command] = {}


def register_command(name: str, configure: Callable[[argparse.ArgumentParser], None],
                     run: Callable[[argparse.Namespace, "str | None", Any], Any], help: str,
                     cell: bool = False) -> None:
    """Add a ``%sciml NAME ...`` sub-command (engines use this for their launchers).

    Arguments:
        name: the sub-command word, e.g. ``"flowmc"``.
        configure: adds arguments to an argparse parser (use :func:`add_launch_options`).
        run: ``run(args, cell, shell)``; ``cell`` is the body of a ``%%sciml`` cell
            or None; ``shell`` is the InteractiveShell (``shell.user_ns`` holds the
            user's variables).
        help: one line for ``%sciml help``.
        cell: whether ``%%sciml NAME`` (with a cell body) is accepted.

    Example:
        >>> register_command("hello", lambda p: p.add_argument("who"),
        ...                  lambda a, c, s: print("hello", a.who), help="say hello")
    """
    if name in _BUILTINS:
        raise ValueError(f"name: {name!r} is a built-in %sciml command")
    _COMMANDS[name] = Command(name, configure, run, help, cell)
    _refresh_doc()


def add_launch_options(parser: argparse.ArgumentParser) -> None:
    """The options every launcher shares."""
    g = parser.add_argument_group("job")
    g.add_argument("--name", help="job name; also the variable the Job is bound to")
    g.add_argument("--executor", default="thread", choices=("thread", "process", "dask"),
                   help="where the job runs (default: thread)")
    g.add_argument("--runs-dir", default=None, help="root of run folders (default: sciml-runs)")
    g.add_argument("--save-every", type=positive_float, default=5.0,
                   help="seconds between writes of result.nc and the checkpoint")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="PyTorch CPU threads for the job (default: torch's own setting)")
    g.add_argument("--no-monitor", action="store_true", help="do not display the live monitor")


def _number(text: str, kind: type) -> Any:
    v = float(str(text).replace("_", ""))  # 2e3 and 2_000 are integers too
    if kind is int:
        return int(v) if v.is_integer() else v  # 2.5 stays 2.5, for the setting's check to refuse
    return v


def _setting_value(f: dataclasses.Field, given: Any) -> Any:
    """A flag's text (a list of texts for a tuple setting: ``64 64`` or ``64,64``) as the
    setting's type, read from its annotation (``none``/``off`` for an optional setting,
    an int or a float where it takes one, else the text), checked by the setting's check."""
    kinds = set(re.findall(r"\w+", str(f.type)))
    elem = int if "int" in kinds else float if "float" in kinds else str

    def one(text: str) -> Any:
        if elem is str:
            return text
        try:
            return _number(text, elem)
        except ValueError:
            if "str" in kinds:
                return text  # e.g. --stop-loss auto
            what = {int: "an integer", float: "a number"}[elem]
            raise ValueError(f"expected {what}, got {text!r}") from None

    if "tuple" in kinds:
        value: Any = tuple(one(p) for t in given for p in str(t).replace(",", " ").split())
    elif "None" in kinds and str(given).lower() in ("none", "off"):
        value = None
    else:
        value = one(given)
    check = f.metadata.get("check")
    return check(f.name, value) if check is not None else value


class _SettingAction(argparse.Action):
    """Stores a flag's value converted and checked as its setting's (:func:`_setting_value`)."""

    def __init__(self, option_strings, dest, setting: dataclasses.Field, **kwargs):
        self.setting = setting
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            value = _setting_value(self.setting, values)
        except ValueError as exc:
            raise argparse.ArgumentError(self, str(exc).removeprefix(f"{self.setting.name}: ")) from None
        setattr(namespace, self.dest, value)


def add_settings_options(group: Any, settings: type) -> list[str]:
    """One option per setting of an engine's settings dataclass that has a ``flag``
    (:func:`sciml_lab.kit.settings.magic_options`), its value converted and checked by
    the setting's own check (a tuple setting takes one or more values); returns the
    settings' names (``getattr(args, name)`` holds each value, the default if not given).

    Example:
        >>> import argparse, dataclasses
        >>> from sciml_lab.kit import Settings, option, at_least, optional, tuple_of
        >>> @dataclasses.dataclass(frozen=True)
        ... class S(Settings):
        ...     n_chains: int = option(128, at_least(2), "number of chains", flag="--chains")
        ...     hidden: tuple[int, ...] = option((64,), tuple_of(at_least(1)), "widths", flag="--hidden")
        ...     loops: int | None = option(None, optional(at_least(1)), "loops", flag="--loops")
        >>> p = argparse.ArgumentParser(); add_settings_options(p, S)
        ['n_chains', 'hidden', 'loops']
        >>> a = p.parse_args(["--chains", "2e3", "--hidden", "32,32", "--loops", "off"])
        >>> a.n_chains, a.hidden, a.loops
        (2000, (32, 32), None)
    """
    from .kit.settings import magic_options

    names = []
    for flag, f in magic_options(settings):
        default = f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        text = f.metadata.get("help", "")
        if default not in (None, dataclasses.MISSING) and "default" not in text:
            text = f"{text} (default {shown})"
        if str(f.type).startswith("bool"):  # a switch; --no-... turns a setting off
            group.add_argument(flag, dest=f.name, action="store_false" if flag.startswith("--no-") else "store_true",
                               default=default, help=f.metadata.get("help", ""))
            names.append(f.name)
            continue
        group.add_argument(flag, dest=f.name, action=_SettingAction, setting=f,
                           nargs="+" if "tuple" in str(f.type) else None,
                           default=argparse.SUPPRESS if default is dataclasses.MISSING else default, help=text,
                           metavar=f.metadata.get("metavar") or flag.lstrip("-").upper().replace("-", "_"))
        names.append(f.name)
    return names


def launch_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`sciml_lab.runtime.launch` from the shared options."""
    kwargs = {"name": args.name, "executor": args.executor, "runs_dir": args.runs_dir,
              "save_every": args.save_every}
    if args.threads is not None:
        kwargs["threads"] = args.threads
    return kwargs


def settings_kwargs(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The settings given by :func:`add_settings_options` as keyword arguments.

    Example:
        >>> settings_kwargs(argparse.Namespace(steps=3, other=1), ["steps"])
        {'steps': 3}
    """
    return {name: getattr(args, name) for name in names if hasattr(args, name)}


def resolve_object(shell, expr: str, what: str) -> Any:
    """Look up ``expr`` (a name or dotted attribute path) in the user's namespace."""
    head, *rest = expr.split(".")
    if head not in shell.user_ns:
        raise UsageError(f"{what}: no variable named {head!r} in the notebook's namespace")
    obj = shell.user_ns[head]
    for attr in rest:
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise UsageError(f"{what}: {expr!r} has no attribute {attr!r}") from None
    return obj


def _var_name(name: str) -> str:
    v = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return v if v and not v[0].isdigit() else f"job_{v}"


def _why_not_bind(var: str, shell, keep_user_variables: bool) -> str | None:
    if var.startswith("_"):
        return "starts with '_' (IPython's and Python's own names)"
    if keyword.iskeyword(var) or keyword.issoftkeyword(var):
        return "is a Python keyword"
    if hasattr(builtins, var):
        return "would shadow a Python built-in"
    if var in getattr(shell, "user_ns_hidden", {}):
        return "would shadow a name IPython defines"
    if keep_user_variables and var in shell.user_ns:
        from .runtime import Job

        if not isinstance(shell.user_ns[var], Job):
            return "would overwrite one of your variables"
    return None


def bind_job(job, requested: "str | None", shell, keep_user_variables: bool = False) -> tuple[str, str]:
    """Bind ``job`` in the user's namespace under ``requested`` (or its name) made a
    Python identifier, unless that would shadow a built-in, an IPython name, a
    keyword or a ``_`` name (or, with ``keep_user_variables``, a variable of the user
    that is not a Job: for names read from a file): then under ``job_<name>``.
    Returns the variable and a sentence saying why it differs ('' if it does not).

    Example:
        >>> class Shell: user_ns, user_ns_hidden = {}, {"get_ipython": None}
        >>> bind_job("a job", "get_ipython", Shell())[0]
        'job_get_ipython'
    """
    var = _var_name(requested or job.name)
    why = _why_not_bind(var, shell, keep_user_variables)
    if why is None:
        shell.user_ns[var] = job
        return var, ""
    base = "job_" + var.lstrip("_")
    safe, n = base, 2
    while _why_not_bind(safe, shell, True) is not None:
        safe, n = f"{base}_{n}", n + 1
    shell.user_ns[safe] = job
    return safe, f"`{var}` {why}, so the job is bound to `{safe}` instead"


def finish_launch(job, args: argparse.Namespace, shell) -> None:
    """Bind the job to ``--name`` (or its own name) in the user's namespace and show its monitor."""
    var, why = bind_job(job, args.name, shell)
    if why:
        print(why)
    if not getattr(args, "no_monitor", False):
        _display_monitor(job)
    else:
        print(f"job {job.name!r} launched; bound to `{var}`")
    return None


def _display_monitor(job) -> None:
    from IPython.display import display

    from .widgets import Monitor

    display(Monitor(job))


# ---------------------------------------------------------------------------- built-ins
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
        key = j.engine.monitor.key if j.engine is not None and j.engine.monitor.key else None
        m = j.metrics
        if key is None and m:
            key = next(iter(m))
        verdict = j.verdict
        rows.append({
            "name": j.name, "kind": j.kind, "status": j.status,
            "verdict": verdict.text if verdict is not None else "",
            "progress": f"{100 * j.progress:.0f}%" if math.isfinite(j.progress) else "",
            "elapsed": _fmt_seconds(j.elapsed),
            "key metric": f"{key} = {m[key]:.4g}" if key and key in m else "",
            "warnings": "; ".join(verdict.warnings) if verdict is not None else "",
        })
    return pd.DataFrame(rows, columns=["name", "kind", "status", "verdict", "progress", "elapsed", "key metric",
                                       "warnings"])


def _fmt_seconds(s: float) -> str:
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
    words = tuple(j.record.get("budget_words") or (j.engine.budget_words if j.engine is not None else ()))
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
        cmd = _all_commands().get(args.command)
        if cmd is None:
            raise UsageError(_unknown(args.command))
        print(cmd.parser().format_help())
    else:
        print(_help_text())


def _cmd_board(args, cell, shell):
    from IPython.display import display

    from .widgets import JobBoard

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


def _all_commands() -> dict[str, Command]:
    return {**_BUILTINS, **_COMMANDS}


def _help_text() -> str:
    lines = ["%sciml COMMAND [options]    (%%sciml COMMAND [options] + a cell for launchers that take code)", "",
             "Launch a job:"]
    for c in _COMMANDS.values():
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
    cmd = _all_commands().get(words[0])
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


_CELL_FILE = re.compile(r"^<(%%sciml|ipython-input|cell)|ipykernel_\d+[/\\]\d+\.py$")


def raised_in_user_code(exc: BaseException) -> bool:
    """Whether the traceback passes through code of a notebook cell (a function the user
    defined there, or a ``%%sciml`` cell body): such an error is the user's to debug.

    Example:
        >>> raised_in_user_code(ValueError("raised here, in a module"))
        False
    """
    tb = exc.__traceback__
    while tb is not None:
        if _CELL_FILE.search(tb.tb_frame.f_code.co_filename):
            return True
        tb = tb.tb_next
    return False


def _refresh_doc() -> None:
    sciml.__doc__ = _help_text()


_refresh_doc()


def _register_builtin_launchers() -> None:
    from . import demo

    def configure(p):
        p.add_argument("--steps", type=positive_int, default=100, help="step budget")
        p.add_argument("--samples", type=positive_int, default=100_000, help="points per step")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--delay", type=float, default=0.0, help="seconds to sleep per step (to watch it live)")
        add_launch_options(p)

    def run(args, cell, shell):
        job = demo.estimate_pi(samples_per_step=args.samples, steps=args.steps, seed=args.seed,
                               delay=args.delay, **launch_kwargs(args))
        return finish_launch(job, args, shell)

    if "pi" not in _COMMANDS:
        register_command("pi", configure, run, help="Monte Carlo estimate of pi with its error bar (the demo)")
    import importlib
    import importlib.util

    # engines register their launchers on import; a missing engine is fine, a broken one is not
    for pkg in ("sciml_lab.flowmc", "sciml_lab.emulate", "sciml_lab.symreg"):
        if importlib.util.find_spec(pkg) is not None and importlib.util.find_spec(f"{pkg}.magic") is not None:
            importlib.import_module(f"{pkg}.magic")


def load_ipython_extension(ipython) -> None:
    """Register ``%sciml``/``%%sciml``, show Jobs as their live monitor and Bokeh views
    inline (BokehJS from the installed package, in JupyterLab's theme)."""
    _register_builtin_launchers()
    from . import plots  # noqa: F401 - from here on bokeh.io.output_notebook() loads BokehJS inline too

    ipython.register_magic_function(sciml, magic_kind="line_cell", magic_name="sciml")
    from .runtime import Job

    def _show(job):
        _display_monitor(job)
        return True

    def _show_view(view):  # a Bokeh view as a cell's value: inline, offline, themed
        from .plots import show

        show(view)
        return True

    formatter = ipython.display_formatter.ipython_display_formatter
    formatter.for_type(Job, _show)
    formatter.for_type_by_name("bokeh.models.layouts", "LayoutDOM", _show_view)


def unload_ipython_extension(ipython) -> None:
    pass

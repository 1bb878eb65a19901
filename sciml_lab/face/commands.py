"""The API of ``%sciml`` commands: how a kind adds its launcher, and the helpers
launchers share (launch options, argument types, the user's objects, binding
the job, showing its monitor).

A kind's ``magic`` module (see :class:`sciml_lab.runtime.registry.Kind`) adds its
launch sub-command with :func:`register_command`::

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
from typing import Any, Callable

from IPython.core.error import UsageError

from ..runtime import registry

__all__ = [
    "register_command", "add_launch_options", "launch_kwargs", "finish_launch", "positive_int",
    "positive_float", "resolve_object", "raised_in_user_code", "SciMLParser", "add_settings_options",
    "settings_kwargs", "bind_job", "Command", "BUILTIN_NAMES",
]

#: the sub-commands that manage jobs (sciml_lab.face.magics); no kind may take these names
BUILTIN_NAMES = frozenset({"jobs", "board", "show", "stop", "extend", "wait", "open", "help"})


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
    if name in BUILTIN_NAMES:
        raise ValueError(f"name: {name!r} is a built-in %sciml command")
    registry.set_command(name, Command(name, configure, run, help, cell))


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


def launch_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`sciml_lab.runtime.launch` from the shared options."""
    kwargs = {"name": args.name, "executor": args.executor, "runs_dir": args.runs_dir,
              "save_every": args.save_every}
    if args.threads is not None:
        kwargs["threads"] = args.threads
    return kwargs


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
        from ..runtime import Job

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

    from ..widgets import Monitor

    display(Monitor(job))

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
    from ..kit.settings import magic_options

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


def settings_kwargs(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The settings given by :func:`add_settings_options` as keyword arguments.

    Example:
        >>> settings_kwargs(argparse.Namespace(steps=3, other=1), ["steps"])
        {'steps': 3}
    """
    return {name: getattr(args, name) for name in names if hasattr(args, name)}

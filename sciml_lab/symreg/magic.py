"""``%sciml symreg DATA``: the notebook face of symbolic regression.

Imported by ``%load_ext sciml_lab`` (never by the engine)::

    %sciml symreg df --target y --ops "+ - * / sin exp" --maxsize 30 --time 60 --name law
    %sciml symreg ds --target y --features a b c      # an xarray Dataset
    %sciml symreg X y --iterations 200 --until "r2>0.999"   # a pair of arrays (or DATA = (X, y))

The search's options are the flags of :class:`~sciml_lab.symreg.settings.SymRegSettings`
(one line each there); each value is checked by its setting's own check.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any

from IPython.core.error import UsageError

from ..kit.settings import magic_options
from ..magics import add_launch_options, finish_launch, launch_kwargs, register_command, resolve_object
from .settings import SymRegSettings

__all__: list[str] = []


def _number(text: str, kind: str) -> "int | float":
    t = text.replace("_", "")
    if kind == "float":
        return float(t)
    try:
        return int(t)
    except ValueError:
        v = float(t)  # 2e3 is 2000; 2.5 stays 2.5, for the check to refuse
        return int(v) if v.is_integer() else v


def _from_text(field: dataclasses.Field, text: str) -> Any:
    """A flag's text as the setting's type (read from its annotation: ``None``/``off``
    for an optional one, else an int or a float where it takes one, else the text),
    checked by the setting's check."""
    kinds = set(re.findall(r"\w+", str(field.type)))
    value: Any = text
    if "None" in kinds and text.lower() in ("none", "off"):
        value = None
    else:
        for kind in ("int", "float"):
            if kind in kinds:
                try:
                    value = _number(text, kind)
                    break
                except ValueError:
                    pass
    check = field.metadata.get("check")
    try:
        return check(field.name, value) if check is not None else value
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_settings_options(group: Any, settings: type) -> None:
    """One option per setting with a flag (``magic_options``): its help, its default, and its
    value converted and checked as the setting's; a tuple setting takes one or more values.
    Options not given are left out of the namespace (the setting's default holds)."""
    for flag, field in magic_options(settings):
        default = field.default
        help_text = field.metadata.get("help", "") + ("" if default in (None, dataclasses.MISSING)
                                                       else f" (default {default})")
        kwargs: dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS, "help": help_text,
                                  "metavar": field.metadata.get("metavar") or flag.lstrip("-").upper().replace("-", "_")}
        if "tuple" in str(field.type):
            kwargs["nargs"] = "+"
        else:
            kwargs["type"] = lambda text, f=field: _from_text(f, text)
        group.add_argument(flag, **kwargs)


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a DataFrame, an xarray Dataset, an array X (then give y) or a pair (X, y)")
    p.add_argument("y", nargs="?", default=None, help="the target array when DATA is an array")
    p.add_argument("--weights", default=None, help="variable holding sample weights")
    add_settings_options(p.add_argument_group("search"), SymRegSettings)
    add_launch_options(p)


def _run(args: argparse.Namespace, cell: str | None, shell: Any):
    from . import fit

    data = resolve_object(shell, args.data, "DATA")
    y = resolve_object(shell, args.y, "y") if args.y else None
    weights = resolve_object(shell, args.weights, "--weights") if args.weights else None
    flagged = {f.name for _, f in magic_options(SymRegSettings)}
    settings = {k: v for k, v in vars(args).items() if k in flagged}
    try:
        job = fit(data, y, weights=weights, **settings, **launch_kwargs(args))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"%sciml symreg: {exc}") from None
    return finish_launch(job, args, shell)


register_command("symreg", _configure, _run, cell=False,
                 help="search for closed-form equations y = f(X) (symbolic regression, live Pareto front)")

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
from typing import Any

from IPython.core.error import UsageError

from ..face.commands import add_launch_options, add_settings_options, finish_launch, launch_kwargs, register_command, \
    resolve_object, settings_kwargs
from .settings import SymRegSettings

__all__: list[str] = []


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a DataFrame, an xarray Dataset, an array X (then give y) or a pair (X, y)")
    p.add_argument("y", nargs="?", default=None, help="the target array when DATA is an array")
    p.add_argument("--weights", default=None, help="variable holding sample weights")
    p.set_defaults(settings=add_settings_options(p.add_argument_group("search"), SymRegSettings))
    add_launch_options(p)


def _run(args: argparse.Namespace, cell: str | None, shell: Any):
    from . import fit

    data = resolve_object(shell, args.data, "DATA")
    y = resolve_object(shell, args.y, "y") if args.y else None
    weights = resolve_object(shell, args.weights, "--weights") if args.weights else None
    settings = settings_kwargs(args, args.settings)
    try:
        job = fit(data, y, weights=weights, **settings, **launch_kwargs(args))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"%sciml symreg: {exc}") from None
    return finish_launch(job, args, shell)


register_command("symreg", _configure, _run, cell=False,
                 help="search for closed-form equations y = f(X) (symbolic regression, live Pareto front)")

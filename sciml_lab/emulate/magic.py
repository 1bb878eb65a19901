"""``%sciml emulate``: the notebook face of the emulator engine.

Imported by ``%load_ext sciml_lab`` (never by the engine)::

    %sciml emulate simulator --bounds "omega_m=0.1:0.5 k=1e-3:1e1:log" --budget 400 --until "nrmse<0.01" --name emu
    %sciml emulate df --inputs a b --outputs y --name fitted
"""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError

from ..face.commands import add_launch_options, add_settings_options, finish_launch, launch_kwargs, register_command, \
    resolve_object, settings_kwargs
from .settings import EmulateSettings

__all__ = ["parse_emulator_bounds"]


def parse_emulator_bounds(text: str) -> dict[str, tuple]:
    """``"a=0:1 k=1e-3:1e1:log"`` -> ``{"a": (0.0, 1.0), "k": (0.001, 10.0, "log")}``.

    Example:
        >>> parse_emulator_bounds("a=0:1 k=1e-3:1e1:log")
        {'a': (0.0, 1.0), 'k': (0.001, 10.0, 'log')}
    """
    out: dict[str, tuple] = {}
    for part in text.replace(",", " ").split():
        name, sep, rng = part.partition("=")
        pieces = rng.split(":")
        if not sep or not name or len(pieces) not in (2, 3) or (len(pieces) == 3 and pieces[2] not in ("log", "lin")):
            raise UsageError(f"--bounds: expected NAME=LOW:HIGH or NAME=LOW:HIGH:log (e.g. 'a=0:1 k=1e-3:10:log'), "
                             f"got {part!r}")
        try:
            lo, hi = float(pieces[0]), float(pieces[1])
        except ValueError:
            raise UsageError(f"--bounds: {part!r} has a bound that is not a number") from None
        out[name] = (lo, hi, "log") if len(pieces) == 3 and pieces[2] == "log" else (lo, hi)
    if not out:
        raise UsageError("--bounds: give at least one input, e.g. --bounds 'a=0:1 b=1e-3:10:log'")
    return out


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="a simulator function, or data (Dataset, DataFrame, dict or (X, Y)) in the notebook")
    p.add_argument("--bounds", default=None, help="input ranges, e.g. 'a=0:1 k=1e-3:10:log' (required for a simulator)")
    p.add_argument("--inputs", nargs="+", default=None, help="input columns of the data")
    p.add_argument("--outputs", nargs="+", default=None, help="output columns of the data")
    p.set_defaults(settings=add_settings_options(p.add_argument_group("emulator"), EmulateSettings))
    add_launch_options(p)


def _run(args: argparse.Namespace, cell: str | None, shell: Any):
    from . import fit

    target = resolve_object(shell, args.target, "TARGET")
    is_simulator = callable(target) and not hasattr(target, "columns")
    if is_simulator and not args.bounds:
        raise UsageError(f"--bounds: the simulator {args.target!r} needs input ranges, e.g. --bounds 'a=0:1 b=0:10'")
    if not is_simulator and args.timeout is not None:
        raise UsageError("--timeout: a time limit applies to simulator calls; the target is data")
    if not is_simulator and not (args.inputs and args.outputs) and not isinstance(target, tuple):
        raise UsageError(f"--inputs/--outputs: name the columns of {args.target!r}, e.g. --inputs a b --outputs y")
    bounds = parse_emulator_bounds(args.bounds) if args.bounds else None
    options = settings_kwargs(args, args.settings)
    try:
        if is_simulator:
            job = fit(target, bounds, **options, **launch_kwargs(args))
        else:
            del options["budget"], options["timeout"]  # a data fit's budget is its rows
            job = fit(target, bounds, inputs=args.inputs, outputs=args.outputs, **options, **launch_kwargs(args))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"%sciml emulate: {exc}") from None
    return finish_launch(job, args, shell)


register_command("emulate", _configure, _run, cell=False,
                 help="emulate a slow simulator (GP / deep ensemble, active learning, Sobol indices)")

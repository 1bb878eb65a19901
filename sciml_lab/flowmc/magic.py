"""``%%sciml flowmc`` and ``%sciml flowmc FUNC``: the notebook face of flow-MCMC.

Imported by ``%load_ext sciml_lab`` (never by the engine). The cell form runs the
cell in a copy of the notebook's namespace and takes ``log_prob`` (or the name
given by ``--log-prob``) from it, plus ``init``, ``params`` and ``bounds`` when the
cell defines them; the line form names an existing function::

    %%sciml flowmc --chains 64 --until "rhat<1.01 ess>2000" --name banana
    def log_prob(x):
        return -((1 - x[:, 0])**2 + 100 * (x[:, 1] - x[:, 0]**2)**2) / 20

    %sciml flowmc my_log_prob --dim 2 --loops 20 --bounds "q=0:1"

    %%sciml flowmc --params "mu tau eta:8" --bounds "tau=0:"    # eight schools, non-centred
    def log_prob(p):   # p["mu"], p["tau"]: (n_chains,); p["eta"]: (n_chains, 8)
        ...
"""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

from IPython.core.error import UsageError

from ..face.commands import add_launch_options, add_settings_options, finish_launch, launch_kwargs, raised_in_user_code, \
    register_command, resolve_object, settings_kwargs
from .settings import FlowMCSettings

__all__ = ["parse_bounds", "parse_params"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def parse_params(text: str) -> dict[str, int | tuple[int, ...]]:
    """``--params``: names of scalar parameters, ``NAME:N`` for a vector of N and
    ``NAME:NxM`` for a matrix, as the Python API's ``params={"eta": 8}`` takes them.

    Example:
        >>> parse_params("mu tau eta:8 w:2x3")
        {'mu': 1, 'tau': 1, 'eta': 8, 'w': (2, 3)}
    """
    out: dict[str, int | tuple[int, ...]] = {}
    for part in text.replace(",", " ").split():
        name, colon, shape = part.partition(":")
        dims = shape.lower().split("x") if colon else ["1"]
        if not _NAME.match(name) or not all(d.isdigit() and int(d) > 0 for d in dims):
            raise UsageError(f"--params: expected NAME or NAME:SIZE or NAME:NxM with positive integer sizes "
                             f"(e.g. 'mu tau eta:8 w:2x3'), got {part!r}")
        if name in out:
            raise UsageError(f"--params: {name!r} is given twice")
        out[name] = int(dims[0]) if len(dims) == 1 else tuple(int(d) for d in dims)
    if not out:
        raise UsageError("--params: give at least one parameter name, e.g. --params 'mu tau eta:8'")
    return out


def parse_bounds(text: str) -> dict[str, tuple[float | None, float | None]]:
    """``--bounds``: ``NAME=LOW:HIGH`` per parameter, an empty side (or ``inf``/``-inf``)
    open, applied to every element of a vector parameter: ``"q=0:1 tau=0: eta=-5:5"``
    -> ``{"q": (0.0, 1.0), "tau": (0.0, None), ...}`` (the Python API's ``bounds=``).

    Example:
        >>> parse_bounds("q=0:1 sigma=0: t=-inf:3")
        {'q': (0.0, 1.0), 'sigma': (0.0, None), 't': (None, 3.0)}
    """
    out: dict[str, tuple[float | None, float | None]] = {}
    for part in text.replace(",", " ").split():
        name, sep, rng = part.partition("=")
        low, colon, high = rng.partition(":")
        if not sep or not colon or not _NAME.match(name):
            raise UsageError(f"--bounds: expected NAME=LOW:HIGH with an empty side open (e.g. 'q=0:1 tau=0:'), "
                             f"got {part!r}")
        try:
            lo, hi = (float(low) if low.strip() else None, float(high) if high.strip() else None)
        except ValueError:
            raise UsageError(f"--bounds: {part!r} has a bound that is not a number") from None
        lo = None if lo is not None and lo == -math.inf else lo
        hi = None if hi is not None and hi == math.inf else hi
        if (lo is not None and math.isnan(lo)) or (hi is not None and math.isnan(hi)) \
                or (lo is not None and hi is not None and not lo < hi):
            raise UsageError(f"--bounds: {part!r} needs LOW < HIGH")
        out[name] = (lo, hi)
    return out


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("func", nargs="?", default=None,
                   help="log-density function in the notebook (line form); the cell form uses log_prob")
    p.add_argument("--log-prob", default="log_prob", help="name of the log-density in the cell (default log_prob)")
    p.add_argument("--params", default=None,
                   help="named parameters: NAME (scalar), NAME:N (vector), NAME:NxM (matrix), e.g. 'mu tau eta:8'; "
                        "log_prob then takes a dict of tensors (n_chains, *shape)")
    p.add_argument("--bounds", default=None,
                   help="NAME=LOW:HIGH per parameter, an empty side open, e.g. 'tau=0: q=0:1' (tau > 0, q in (0, 1)); "
                        "a vector's bounds hold for each element")
    p.add_argument("--init", default=None, help="variable with initial points or a prior sampler")
    p.set_defaults(settings=add_settings_options(p.add_argument_group("sampler"), FlowMCSettings))
    add_launch_options(p)


def _from_cell(cell: str, shell: Any, args: argparse.Namespace) -> dict[str, Any]:
    # the cell runs like any cell: what it defines stays in the notebook's namespace
    ns = shell.user_ns
    before = {k: id(v) for k, v in ns.items()}
    exec(compile(cell, "<%%sciml flowmc>", "exec"), ns)  # noqa: S102 - the user's own cell
    defined = {k for k, v in ns.items() if before.get(k) != id(v)}
    if args.log_prob not in defined or not callable(ns[args.log_prob]):
        raise UsageError(f"%%sciml flowmc: the cell must define a function {args.log_prob}(x) returning "
                         "one log-density per chain (or name it with --log-prob NAME)")
    found = {"log_prob": ns[args.log_prob]}
    for key in ("dim", "init", "params", "bounds"):
        if key in defined:
            found[key] = ns[key]
    return found


def _run(args: argparse.Namespace, cell: str | None, shell: Any):
    from . import sample

    if cell is not None and cell.strip():
        if args.func:
            raise UsageError(f"%%sciml flowmc: give either a cell defining {args.log_prob} or a function name, "
                             f"not both (got {args.func!r})")
        objects = _from_cell(cell, shell, args)
    else:
        if not args.func:
            raise UsageError("%sciml flowmc FUNC: name the log-density function, e.g. %sciml flowmc log_prob --dim 2")
        objects = {"log_prob": resolve_object(shell, args.func, "FUNC")}
        if not callable(objects["log_prob"]):
            raise UsageError(f"FUNC: {args.func!r} is not a function")
    if args.init:
        objects["init"] = resolve_object(shell, args.init, "--init")
    if args.params:
        objects["params"] = parse_params(args.params)
    elif isinstance(objects.get("params"), str):  # params = "mu tau eta:8" in the cell: the same syntax
        objects["params"] = parse_params(objects["params"])
    if args.bounds:
        objects["bounds"] = parse_bounds(args.bounds)
        names = objects.get("params")
        names = list(names) if isinstance(names, (dict, list, tuple)) else None
        unknown = [k for k in objects["bounds"] if names is not None and k not in names]
        if unknown:
            raise UsageError(f"--bounds: no parameter named {unknown[0]!r}; parameters are {', '.join(names)}")
    options = settings_kwargs(args, args.settings)
    del options["dim"]
    log_prob = objects.pop("log_prob")
    dim = objects.pop("dim", None) if args.dim is None else args.dim
    try:
        job = sample(log_prob, dim, **objects, **options, **launch_kwargs(args))
    except KeyError as exc:
        params = objects.get("params")
        if not (raised_in_user_code(exc) and isinstance(params, (dict, list, tuple)) and exc.args
                and exc.args[0] not in params):
            raise
        # the log-density reads a parameter that --params (or the cell's params) does not declare
        raise UsageError(f"--params: {args.log_prob} reads the parameter {exc.args[0]!r}, which is not declared; "
                         f"declared: {', '.join(map(str, params))} (a vector is NAME:SIZE, e.g. "
                         f"--params '{' '.join(map(str, params))} {exc.args[0]}:8')") from None
    except (ValueError, TypeError) as exc:
        if raised_in_user_code(exc):
            raise  # a bug in the cell's own code: its traceback says where
        raise UsageError(f"%sciml flowmc: {exc}") from None
    return finish_launch(job, args, shell)


register_command("flowmc", _configure, _run, cell=True,
                 help="sample a log-density with flow-MCMC (local MALA/HMC + normalizing-flow global moves)")


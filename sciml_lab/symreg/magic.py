"""``%sciml symreg DATA``: the notebook face of symbolic regression.

Imported by ``%load_ext sciml_lab`` (never by the engine)::

    %sciml symreg df --target y --ops "+ - * / sin exp" --maxsize 30 --time 60 --name law
    %sciml symreg ds --target y --features a b c      # an xarray Dataset
    %sciml symreg X y --iterations 200                # a pair of arrays (or DATA = (X, y))
"""

from __future__ import annotations

import argparse
from typing import Any

from IPython.core.error import UsageError

from ..magics import add_launch_options, finish_launch, launch_kwargs, positive_float, positive_int, \
    register_command, resolve_object

__all__: list[str] = []


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="a DataFrame, an xarray Dataset, an array X (then give y) or a pair (X, y)")
    p.add_argument("y", nargs="?", default=None, help="the target array when DATA is an array")
    p.add_argument("--target", default=None, help="target column/variable of a DataFrame or Dataset")
    p.add_argument("--features", nargs="+", default=None, help="input columns (default: all but the target)")
    p.add_argument("--weights", default=None, help="variable holding sample weights")
    g = p.add_argument_group("search")
    g.add_argument("--ops", default="+ - * / sin cos exp log", help='operators (default "+ - * / sin cos exp log")')
    g.add_argument("--maxsize", type=positive_int, default=30, help="most tokens per equation (default 30)")
    g.add_argument("--maxdepth", type=positive_int, default=None, help="deepest tree (default: no limit)")
    g.add_argument("--time", type=positive_float, default=None, help="time budget in seconds")
    g.add_argument("--iterations", type=positive_int, default=None,
                   help="generation budget (default 200; 100000 with --time)")
    g.add_argument("--islands", type=positive_int, default=4, help="number of populations (default 4)")
    g.add_argument("--population", type=positive_int, default=64, help="members per island (default 64)")
    g.add_argument("--selection", choices=("best", "accuracy", "score"), default="best",
                   help="model selection on the front (default best)")
    g.add_argument("--stop-loss", default="auto", help="stop once this mean squared error is reached "
                   "('auto': exact to numerical precision; 'none': never)")
    g.add_argument("--search-rows", type=positive_int, default=2048,
                   help="rows the search evaluates candidates on, a fixed subsample of larger data; the front is "
                        "then scored on all rows (default 2048)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    g.add_argument("--seed", type=int, default=0)
    add_launch_options(p)


def _run(args: argparse.Namespace, cell: str | None, shell: Any):
    from . import fit

    data = resolve_object(shell, args.data, "DATA")
    y = resolve_object(shell, args.y, "y") if args.y else None
    weights = resolve_object(shell, args.weights, "--weights") if args.weights else None
    if args.stop_loss.lower() in ("none", "off"):
        stop_loss: Any = None
    elif args.stop_loss == "auto":
        stop_loss = "auto"
    else:
        try:
            stop_loss = float(args.stop_loss)
        except ValueError:
            raise UsageError(f"--stop-loss: expected a number, 'auto' or 'none', got {args.stop_loss!r}") from None
    try:
        job = fit(data, y, target=args.target, features=args.features, weights=weights, ops=args.ops,
                  maxsize=args.maxsize, maxdepth=args.maxdepth, time_limit=args.time, iterations=args.iterations,
                  n_islands=args.islands, population_size=args.population, selection=args.selection,
                  stop_loss=stop_loss, search_rows=args.search_rows, device=args.device, seed=args.seed, **launch_kwargs(args))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"%sciml symreg: {exc}") from None
    return finish_launch(job, args, shell)


register_command("symreg", _configure, _run, cell=False,
                 help="search for closed-form equations y = f(X) (symbolic regression, live Pareto front)")

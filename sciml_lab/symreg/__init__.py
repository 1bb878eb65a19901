"""Symbolic regression: closed-form equations from data, as a live, resumable job.

``fit(X, y, ...)`` launches a :class:`SymRegEngine` and returns a
:class:`~sciml_lab.runtime.job.Job` at once; the result is an ``xarray.DataTree``
with ``/pareto`` (complexity: equation, latex, loss, r2, score, selected,
prediction), ``/history`` (iteration: best_loss, front_size, evals_per_s) and
``/data`` (the inputs and target the predictions refer to).
"""

from __future__ import annotations

from typing import Any

from ..runtime.registry import Kind
from .engine import DEFAULT_NESTED, DEFAULT_OPS, SymRegEngine, pareto_scores, select
from .expression import Equation, Operator, equation_from_text
from .grammar import parse_equation
from .recovery import is_exact_recovery
from .settings import METRICS, SymRegSettings
from .uncertainty import bootstrap_constants

__all__ = ["KIND", "fit", "SymRegEngine", "SymRegSettings", "METRICS", "Equation", "Operator", "DEFAULT_OPS",
           "DEFAULT_NESTED", "pareto_scores",
           "select", "equation_from_text", "is_exact_recovery", "bootstrap_constants", "equation", "parse_equation",
           "result_variables", "result_functions"]


def fit(X: Any, y: Any = None, *, name: str | None = None, executor: Any = "thread", runs_dir: Any = None,
        store: bool = True, save_every: float = 5.0, **options: Any):
    """Search for equations ``y = f(X)`` as a job (the Python twin of ``%sciml symreg``).

    Arguments:
        X: a DataFrame or xarray Dataset (with ``target=``), an array ``(n, d)`` (with
            ``y``) or a pair ``(X, y)``.
        y: the target when ``X`` is an array.
        name, executor, runs_dir, store, save_every: see :func:`sciml_lab.runtime.launch`.
        options: the search's settings, see :class:`SymRegSettings` (``target``,
            ``features``, ``ops``, ``maxsize``, ``iterations``, ``time_limit``, ``until``
            (e.g. ``"r2>0.999"``, on the live :data:`METRICS`), ``selection``, ``seed``...),
            and ``weights``, ``custom_ops``.

    Returns:
        The running :class:`~sciml_lab.runtime.job.Job`; ``job.result`` is the DataTree.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).uniform(1, 3, (100, 2))
        >>> job = fit(X, X[:, 0] ** 2 / X[:, 1], ops="+ - * /", iterations=150, device="cpu", store=False)
        >>> job.wait(120)
        'done'
        >>> job.result.attrs["selected_equation"]
        'x0**2/x1'
    """
    from ..runtime.job import launch

    engine = SymRegEngine(X, y, **options)
    return launch(engine, name=name or "symreg", executor=executor, runs_dir=runs_dir, store=store,
                  save_every=save_every, threads=options.get("threads"))


def equation(result: Any, complexity: int | None = None):
    """The sympy expression of the selected front member of a result (or of ``complexity``).

    Example:
        >>> import numpy as np, xarray as xr
        >>> tree = xr.DataTree.from_dict({"/pareto": xr.Dataset(
        ...     {"equation": ("complexity", ["x0", "2.5*x0*x1"]), "selected": ("complexity", [False, True])},
        ...     coords={"complexity": [1, 5]})})
        >>> tree.attrs["features"] = '["x0", "x1"]'
        >>> str(equation(tree))
        '2.5*x0*x1'
    """
    import numpy as np

    pareto = result["pareto"]
    if complexity is None:
        i = int(np.argmax(pareto["selected"].values))
    else:
        comps = pareto["complexity"].values.tolist()
        if complexity not in comps:
            raise ValueError(f"complexity: expected one of {comps}, got {complexity!r}")
        i = comps.index(complexity)
    return parse_equation(str(pareto["equation"].values[i]), result_variables(result), result_functions(result))


def result_variables(result: Any) -> list[str]:
    """The feature names of a result (its ``features`` attr), checked to be a JSON list of names.

    Example:
        >>> import xarray as xr
        >>> tree = xr.DataTree(); tree.attrs["features"] = '["a", "b"]'
        >>> result_variables(tree)
        ['a', 'b']
    """
    import json

    try:
        names = json.loads(result.attrs["features"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"result: expected a 'features' attr holding a JSON list of names ({exc})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise ValueError(f"result: expected the 'features' attr to be a JSON list of names, got {names!r}")
    return names


def result_functions(result: Any) -> list[str]:
    """The custom operator names of a result (words of its ``ops`` attr beyond the built-in
    operators), which its equations may call as opaque functions.

    Example:
        >>> import xarray as xr
        >>> tree = xr.DataTree(); tree.attrs["ops"] = "sin myop + *"
        >>> result_functions(tree)
        ['myop']
    """
    from .expression import BINARY, UNARY

    words = str(result.attrs.get("ops", "")).split()
    return [w for w in words if w.isidentifier() and w not in UNARY and w not in BINARY]


#: this kind for the registry (sciml_lab/__init__.py declares it; pyproject.toml's entry point too)
KIND = Kind("symreg", engine=SymRegEngine, twin=fit, magic=f"{__name__}.magic",
            views=f"{__name__}.plots", help="search for closed-form equations (symbolic regression)")

"""Emulators: cheap, differentiable surrogates of slow simulators with calibrated uncertainty.

``fit(simulator, bounds=..., budget=...)`` launches an :class:`EmulateEngine` and
returns a :class:`~sciml_lab.runtime.job.Job` at once. The job chooses where to run
the simulator (a space-filling design, then active-learning batches), runs it over
a pool of workers, refits a Gaussian process or a deep ensemble after each batch
and records its validated error, coverage and NLL against the number of runs. The
result is an ``xarray.DataTree`` (``/design``, ``/validation``, ``/sensitivity``,
``/slices``); :func:`emulator` gives the trained torch module.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from ..runtime.registry import Kind
from .emulator import Emulator, OutputLayout, validation_metrics
from .engine import METRICS, EmulateEngine, parse_bounds_spec
from .sensitivity import sobol_indices

__all__ = ["KIND", "fit", "emulator", "load", "Emulator", "EmulateEngine", "METRICS", "OutputLayout", "sobol_indices",
           "validation_metrics", "parse_bounds_spec"]


def fit(simulator_or_data: Any, bounds: Mapping[str, Any] | None = None, *, budget: int | None = None,
        model: str = "auto", until: str | None = None, inputs: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None, name: str | None = None, executor: Any = "thread",
        runs_dir: Any = None, store: bool = True, save_every: float = 5.0, threads: int | None = None,
        **options: Any):
    """Emulate a simulator (or fit data) as a job (the Python twin of ``%sciml emulate``).

    Arguments:
        simulator_or_data: a callable ``f(a=..., b=...)`` / ``f(row)`` returning a
            number, a 1-D array, a DataArray or a dict of those; or data (an xarray
            Dataset, a pandas DataFrame, a dict of columns or a tuple ``(X, Y)``).
        bounds: ``{name: (low, high)}`` or ``(low, high, "log")`` per input (required
            with a simulator; inferred from data otherwise).
        budget: simulator runs to pay for; ``job.extend(budget=N)`` pays for more.
        model: ``"auto"``, ``"gp"`` or ``"ensemble"``.
        until: target on the validation metrics, e.g. ``"nrmse<0.01"``.
        inputs / outputs: column names when fitting data.
        name, executor, runs_dir, store, save_every, threads: see
            :func:`sciml_lab.runtime.launch`.
        options: more engine settings, see :class:`EmulateEngine` (``n_initial``,
            ``batch_size``, ``design``, ``acquisition``, ``n_workers``, ``pool``, ``log_inputs``, ``seed``...).

    Returns:
        The running :class:`~sciml_lab.runtime.job.Job`; ``job.result`` is the DataTree
        and ``emulator(job)`` the trained emulator.

    Example:
        >>> import numpy as np
        >>> job = fit(lambda a, b: np.sin(3 * a) + b ** 2, {"a": (0, 1), "b": (-1, 1)}, budget=30,
        ...           store=False, device="cpu")
        >>> job.wait(120)
        'done'
        >>> float(job.result["validation"]["nrmse"][-1]) < 0.1
        True
    """
    from ..runtime.job import launch

    if callable(simulator_or_data) and not hasattr(simulator_or_data, "columns"):
        engine = EmulateEngine(simulator_or_data, bounds, budget=budget, model=model, until=until, **options)
    else:
        engine = EmulateEngine(None, bounds, data=simulator_or_data, inputs=inputs, outputs=outputs, model=model,
                               until=until, **options)
    return launch(engine, name=name or "emulate", executor=executor, runs_dir=runs_dir, store=store,
                  save_every=save_every, threads=threads)


def emulator(job_or_engine: Any) -> Emulator:
    """The trained :class:`Emulator` of a job (running or done) or an engine.

    Example:
        >>> import numpy as np
        >>> job = fit(lambda a: a ** 2, {"a": (0, 1)}, budget=12, store=False, device="cpu"); job.wait(60)
        'done'
        >>> emulator(job).predict(np.array([[0.5]]))["mean"].shape
        (1,)
    """
    engine = getattr(job_or_engine, "engine", job_or_engine)
    if not isinstance(engine, EmulateEngine):
        raise ValueError(f"job_or_engine: expected an emulate Job or EmulateEngine, got {type(engine).__name__}")
    return engine.get_emulator()


def load(path: Any, device: str = "cpu") -> Emulator:
    """Load an emulator saved with :meth:`Emulator.save` (weights + JSON; nothing unpickled).

    Example:
        >>> import numpy as np, tempfile
        >>> emu = Emulator(["a"], {"a": (0, 1)}).fit(np.linspace(0, 1, 6)[:, None], np.linspace(0, 1, 6))
        >>> load(emu.save(tempfile.mkdtemp())).inputs
        ['a']
    """
    return Emulator.load(path, device=device)


#: this kind for the registry (sciml_lab/__init__.py declares it; pyproject.toml's entry point too)
KIND = Kind("emulate", engine=EmulateEngine, twin=fit, magic=f"{__name__}.magic",
            views=f"{__name__}.plots", help="emulate a slow simulator with calibrated uncertainty")

"""Pipelines: engines composed of stages, each an ordinary run.

``calibrate`` chains an emulator, flow-MCMC and the real simulator: see
:class:`~sciml_lab.pipeline.engine.CalibrateEngine`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..runtime.registry import Kind
from .engine import CalibrateEngine
from .settings import CalibrateSettings
from .stages import Stage, StageFailed

__all__ = ["CalibrateEngine", "CalibrateSettings", "Stage", "StageFailed", "calibrate", "discover", "KIND"]


def calibrate(simulator: Callable, bounds: Mapping[str, Any], *, observed: Any, noise: Any, name: str | None = None,
              **options: Any):
    """Launch a calibration as a job (the Python twin of ``%sciml calibrate``): the
    posterior of ``simulator``'s inputs given ``observed`` data with noise sd
    ``noise`` under a uniform prior on ``bounds``, with an emulator refined where the
    posterior lives (:class:`CalibrateEngine`; its settings: :class:`CalibrateSettings`).
    Launch options (``executor``, ``runs_dir``, ``store``, ``save_every``,
    ``threads``) go to :func:`sciml_lab.runtime.launch`.

    Example:
        >>> import numpy as np, tempfile
        >>> def sim(k):
        ...     return np.exp(-k * np.linspace(0.5, 2.5, 5))
        >>> job = calibrate(sim, {"k": (0.1, 2.0)}, observed=sim(0.7), noise=0.02, rounds=1, initial_runs=8,
        ...                 n_check=2, device="cpu", sampler={"n_chains": 16, "n_training_loops": 2, "n_loops": 3},
        ...                 runs_dir=tempfile.mkdtemp())
        >>> job.wait(300)
        'done'
        >>> sorted(job.result.children)
        ['check', 'observed', 'posterior', 'rounds', 'sample_stats', 'stages']
    """
    from ..runtime.launcher import launch

    launch_keys = ("executor", "runs_dir", "store", "save_every", "threads")
    launch_options = {k: options.pop(k) for k in launch_keys if k in options}
    engine = CalibrateEngine(simulator, bounds, observed=observed, noise=noise, **options)
    return launch(engine, name=name, **launch_options)


def discover(source: Any, target: str, *, on: str = "posterior", features: Any = None, simulator: Callable | None = None,
             name: str | None = None, **options: Any):
    """Symbolic regression on what a calibration found, as a job of its own stored beside
    the calibration's stages (``<run>/stages/discover-<target>``); its result's attrs
    name the source (``source_run``, ``source``).

    - ``on="posterior"``: ``target`` (a parameter) through the other parameters (or
      ``features``), from the posterior draws: the relations the data impose, such as
      a ridge ``beta = 3.01*gamma``.
    - ``on="emulator"``: a closed form of the simulator where the posterior lives: the
      final emulator's mean of the output value ``target`` (a label such as ``"y[3]"``)
      at posterior draws, through the parameters. A calibration of this kernel gives
      its emulator; one reopened from disk needs ``simulator=`` to rebuild it.

    ``source``: a calibrate job or its run folder. ``options``: symbolic-regression
    settings (default ``ops="+ - * /"``) and launch options.

    Example:
        >>> import numpy as np, tempfile
        >>> def sim(a, b):
        ...     return np.exp(-a * b * np.linspace(0.5, 3.0, 6))
        >>> cal = calibrate(sim, {"a": (0.5, 2), "b": (0.5, 2)}, observed=sim(1.0, 1.0), noise=0.01, rounds=1,
        ...                 initial_runs=20, n_check=0, device="cpu", runs_dir=tempfile.mkdtemp(),
        ...                 sampler={"n_chains": 32, "n_training_loops": 4, "n_loops": 8})
        >>> cal.wait(300)
        'done'
        >>> job = discover(cal, "a", iterations=30, seed=0); job.wait(300)
        'done'
        >>> job.store.path.parent.name, job.result.attrs["source"]
        ('stages', 'posterior draws: a ~ b')
    """
    from ..runtime.launcher import launch
    from ..symreg.engine import SymRegEngine
    from .tables import discovery_table

    df, column, names, what, folder = discovery_table(source, target, on, features, simulator)
    launch_options = {k: options.pop(k) for k in ("executor", "runs_dir", "store", "save_every") if k in options}
    if folder is not None:
        launch_options.setdefault("runs_dir", folder / "stages")
    engine = SymRegEngine(df, target=column, features=tuple(names), **{"ops": "+ - * /", "device": "cpu", **options})
    return launch(engine, name=name or f"discover-{column}", threads=engine.settings.threads,
                  attrs={"source": what, "source_run": str(folder) if folder is not None else ""}, **launch_options)


KIND = Kind("calibrate", engine=CalibrateEngine, twin=calibrate, magic="sciml_lab.pipeline.magic",
            views="sciml_lab.pipeline.plots",
            help="calibrate a simulator's inputs: emulate, sample with flow-MCMC, refine where the posterior lives")

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

__all__ = ["CalibrateEngine", "CalibrateSettings", "Stage", "StageFailed", "calibrate", "KIND"]


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


KIND = Kind("calibrate", engine=CalibrateEngine, twin=calibrate, magic="sciml_lab.pipeline.magic",
            help="calibrate a simulator's inputs: emulate, sample with flow-MCMC, refine where the posterior lives")

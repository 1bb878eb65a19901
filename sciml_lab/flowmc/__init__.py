"""Flow-MCMC: normalizing-flow-enhanced sampling as a live, resumable job.

``sample(log_prob, ...)`` launches a :class:`FlowMCEngine` and returns a
:class:`~sciml_lab.runtime.job.Job` at once; the result is an ``xarray.DataTree``
in the ArviZ schema (``/posterior``, ``/sample_stats``, ``/warmup_posterior``,
``/warmup_sample_stats``, ``/diagnostics``).
"""

from __future__ import annotations

from typing import Any, Callable

from ..runtime.registry import Kind
from .diagnostics import ess_bulk, rhat
from .engine import METRICS, FlowMCEngine
from .settings import FlowMCSettings

__all__ = ["KIND", "sample", "FlowMCEngine", "FlowMCSettings", "METRICS", "rhat", "ess_bulk"]


def sample(log_prob: Callable, dim: int | None = None, *, name: str | None = None, executor: Any = "thread",
           runs_dir: Any = None, store: bool = True, save_every: float = 5.0, threads: int | None = None,
           **options: Any):
    """Sample ``log_prob`` with flow-MCMC as a job (the Python twin of ``%%sciml flowmc``).

    Arguments:
        log_prob: batched log-density ``(n_chains, dim) -> (n_chains,)`` in torch
            (or of a dict of named tensors with ``params=...``; NumPy works without
            gradients).
        dim: number of dimensions when neither ``params`` nor ``init`` tells it.
        name, executor, runs_dir, store, save_every, threads: see
            :func:`sciml_lab.runtime.launch`.
        options: the sampler's settings, see :class:`FlowMCSettings` (``n_chains``,
            ``n_loops``, ``until``, ``bounds``, ``init``, ``kernel``, ``device``,
            ``dtype``, ``seed``...).

    Returns:
        The running :class:`~sciml_lab.runtime.job.Job`; ``job.result`` is the DataTree.

    Example:
        >>> import torch
        >>> job = sample(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=16, n_training_loops=2,
        ...              n_loops=2, n_local_steps=10, n_global_steps=10, n_epochs=2, device="cpu", store=False)
        >>> job.wait(120)
        'done'
        >>> {"posterior", "sample_stats", "diagnostics"} <= set(job.result.children)
        True
    """
    from ..runtime.job import launch

    engine = FlowMCEngine(log_prob, dim, **options)
    return launch(engine, name=name or "flowmc", executor=executor, runs_dir=runs_dir, store=store,
                  save_every=save_every, threads=threads)


#: this kind for the registry (sciml_lab/__init__.py declares it; pyproject.toml's entry point too)
KIND = Kind("flowmc", engine=FlowMCEngine, twin=sample, magic=f"{__name__}.magic",
            views=f"{__name__}.plots", help="sample a log-density with flow-MCMC")

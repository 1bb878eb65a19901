"""Executors: where a job's step loop runs.

An executor starts :func:`~sciml_lab.runtime.loop.drive` somewhere and returns a
:class:`Handle` through which the job sends commands; messages
(:mod:`sciml_lab.runtime.messages`) come back to ``on_message`` (on some thread of
the kernel). Adding an executor means writing a link (two methods) and a
``start``; the job, the loop, the store and the monitor stay as they are.

- ``thread`` (default, :mod:`.thread`): a daemon thread of this process; PyTorch
  releases the GIL in its kernels, so the kernel stays responsive.
- ``process`` (:mod:`.process`): a fresh Python subprocess connected by an
  authenticated local socket; the engine travels with cloudpickle (so functions
  defined in a notebook cell work); killed if it does not stop within the grace period.
- ``dask`` (:mod:`.dask`): a task on a ``distributed`` cluster (a ``LocalCluster``
  by default); messages travel through ``distributed.Queue``, a stop also as a
  flag file in the run folder; a task that ignores a stop gets its worker
  restarted, and one whose worker is lost resumes from the run's checkpoint.

Example:
    >>> get_executor("process").name, get_executor("thread").shares_engine
    ('process', True)
"""

from __future__ import annotations

from .base import Executor, Handle, restore_engine, run_segment
from .dask import DaskExecutor
from .process import ProcessExecutor
from .thread import ThreadExecutor

__all__ = ["Executor", "Handle", "ThreadExecutor", "ProcessExecutor", "DaskExecutor", "get_executor",
           "run_segment", "restore_engine"]


def get_executor(spec: "str | Executor") -> Executor:
    """``"thread"``, ``"process"``, ``"dask"``, ``"dask://host:port"`` or an Executor."""
    if isinstance(spec, Executor):
        return spec
    if spec == "thread":
        return ThreadExecutor()
    if spec == "process":
        return ProcessExecutor()
    if spec == "dask":
        return DaskExecutor()
    if isinstance(spec, str) and spec.startswith(("dask://", "tcp://")):
        return DaskExecutor(spec.replace("dask://", "tcp://"))
    raise ValueError(
        f"executor: expected 'thread', 'process', 'dask', 'dask://HOST:PORT' or an Executor, got {spec!r}"
    )

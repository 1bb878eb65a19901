"""sciml_lab: machine learning that serves science, live in Jupyter.

Launch long jobs (flow-MCMC, emulators, symbolic regression) from a notebook with
``%sciml`` or a plain Python API, watch them in a live monitor while the kernel
stays free, stop or extend them, and get xarray results that survive the kernel.

Example:
    >>> import sciml_lab
    >>> job = sciml_lab.demo.estimate_pi(steps=5, store=False)
    >>> job.wait(30)
    'done'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._version import __version__
from .runtime import Job, get_job, jobs, launch, open_run, registry

__all__ = ["__version__", "open", "load", "launch", "jobs", "get_job", "Job", "demo", "load_ipython_extension",
           "BUILTIN_KINDS"]

#: sciml_lab's own job kinds, each a ``"module:attr"`` reference to its
#: :class:`~sciml_lab.runtime.registry.Kind`. Declaring imports nothing: a kind is
#: loaded when first used (``sciml_lab.open`` of one of its runs, ``%load_ext``).
#: The runtime names no kind itself; other packages add theirs with an entry point
#: in the ``sciml_lab.engines`` group, as pyproject.toml does for these.
BUILTIN_KINDS = {
    "pi": "sciml_lab.demo:KIND",
    "flowmc": "sciml_lab.flowmc:KIND",
    "emulate": "sciml_lab.emulate:KIND",
    "symreg": "sciml_lab.symreg:KIND",
    "calibrate": "sciml_lab.pipeline:KIND",
}
for _name, _ref in BUILTIN_KINDS.items():
    registry.declare(_name, _ref)

from . import demo  # noqa: E402 - the quickstart's engine, as sciml_lab.demo


def open(path: "str | Path", executor: str = "thread", **objects: Any) -> Job:  # noqa: A001 - the natural name
    """Reopen a run folder (``sciml-runs/<name>``): returns a :class:`Job` whose
    ``.data`` is the result's DataTree and which ``extend`` resumes from its
    checkpoint (``job.resumable`` says whether it can). ``objects`` are the
    functions the engine needs again (e.g. ``log_prob=...``).

    Example:
        >>> import tempfile, sciml_lab
        >>> root = tempfile.mkdtemp()
        >>> first = sciml_lab.demo.estimate_pi(steps=3, name="pi", runs_dir=root); first.wait(30)
        'done'
        >>> job = sciml_lab.open(first.store.path); job.extend(steps=2); job.wait(30)
        'done'
        >>> job.step
        5
    """
    return open_run(path, executor=executor, **objects)


def load(path: "str | Path"):
    """Just the result of a run (``result.nc`` or its folder) as an ``xarray.DataTree``."""
    from .runtime.store import read_result

    p = Path(path)
    return read_result(p / "result.nc" if p.is_dir() else p)


def load_ipython_extension(ipython) -> None:
    """``%load_ext sciml_lab``: registers the ``%sciml`` magic."""
    from .magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload_ipython_extension as _unload

    _unload(ipython)

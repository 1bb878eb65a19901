"""Launching and reopening jobs, and the kernel's table of them by name.

Job names are unique within the kernel *and* the runs folder. A name that is
taken (by a job of this kernel or by a folder already in ``sciml-runs/``) gets the
next free numbered suffix: ``banana``, ``banana-2``, ``banana-3``... so that
re-running a cell never overwrites a result on disk. ``job.name`` tells which
name a job got. Claiming a folder is an atomic ``mkdir``, so two kernels launching
into the same runs folder at the same moment never share one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

from ..kit.protocol import Engine
from .event import FINAL_STATES
from .executors import Executor, get_executor
from .job import Job
from .loop import now_iso, python_info
from .reopen import _read_run
from .store import RunStore, runs_dir, valid_name

__all__ = ["launch", "open_run", "jobs", "get_job"]

_JOBS: dict[str, "Job"] = {}
_REGISTRY_LOCK = threading.RLock()


def jobs() -> list["Job"]:
    """All jobs of this kernel, oldest first."""
    with _REGISTRY_LOCK:
        return list(_JOBS.values())


def get_job(name: str) -> "Job":
    """The job called ``name``; KeyError naming the known jobs otherwise."""
    with _REGISTRY_LOCK:
        if name in _JOBS:
            return _JOBS[name]
        known = ", ".join(_JOBS) or "none yet"
    raise KeyError(f"no job named {name!r}; jobs in this kernel: {known}")


def _claim_name(base: str, root: Path | None) -> str:
    """Reserve ``base`` (or the next free ``base-N``) in this kernel and, given a
    runs folder, create its run folder: ``mkdir`` without ``exist_ok`` is the claim,
    atomic across kernels and machines sharing the folder."""
    if not valid_name(base):
        raise ValueError(
            f"name: {base!r} is not a valid job name; expected letters, digits, '_', '.' or '-' "
            "(starting with a letter or digit, at most 100 characters)"
        )
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
    with _REGISTRY_LOCK:
        n = 1
        while True:
            cand = base if n == 1 else f"{base}-{n}"
            n += 1
            if cand in _JOBS:
                continue
            if root is not None:
                try:
                    (root / cand).mkdir()
                except FileExistsError:
                    continue
            _JOBS[cand] = None  # type: ignore[assignment] - reserved, filled by Job
            return cand


def _register(job: Job) -> None:
    with _REGISTRY_LOCK:
        _JOBS[job.name] = job


def launch(engine: Engine, *, name: str | None = None, executor: "str | Executor" = "thread",
           runs_dir: "str | Path | None" = None, store: bool = True, save_every: float = 5.0,
           threads: int | None = None, start: bool = True, attrs: "Mapping[str, str] | None" = None) -> Job:
    """Run ``engine`` as a job and return at once.

    Arguments:
        engine: any object implementing :class:`~sciml_lab.kit.protocol.Engine`.
        name: the job's name (default: the engine's kind); a taken name gets a
            numbered suffix (see the module docstring).
        executor: ``"thread"`` (default), ``"process"``, ``"dask"`` or an Executor.
        runs_dir: root of run folders (default ``$SCIML_RUNS_DIR`` or ``sciml-runs``).
        store: write ``job.json``, ``result.nc`` and a checkpoint to the run folder.
            Required by the process and Dask executors.
        save_every: seconds between two writes of the result and checkpoint
            (they are also written at every state change).
        threads: PyTorch CPU threads for the job's loop (``torch.set_num_threads``
            on the thread that runs it, in whichever executor; with PyTorch's
            OpenMP backend this leaves the kernel's own setting alone). None keeps
            torch's default. On a small shared machine 1 is often much faster than
            the default, which oversubscribes the cores. Kept in ``job.json`` so
            that a resumed run uses it too.
        attrs: text attributes every result of the run carries at its root
            (provenance, e.g. the run whose output it was given); kept in ``job.json``.

    Example:
        >>> from sciml_lab.demo import PiEngine
        >>> job = launch(PiEngine(steps=5), store=False); job.wait(30)
        'done'
    """
    ex = _check_launch(engine, executor, store, save_every, threads)
    root = Path(runs_dir) if runs_dir is not None else runs_dir_default()
    job_name = _claim_name(name or engine.kind, root if store else None)
    try:
        run_store = None
        if store:
            run_store = RunStore(root / job_name)
            run_store.create()
        record = {
            "name": job_name, "kind": engine.kind, "status": "queued", "created": now_iso(),
            "config": engine.config(), "executor": ex.name, "step": 0, "elapsed_s": 0.0,
            "versions": python_info(), "budget_words": list(engine.budget_words),
            "save_every": float(save_every), "threads": threads,
        }
        if attrs:
            record["attrs"] = {str(k): str(v) for k, v in attrs.items()}
        if run_store is not None:
            run_store.write_json(record)
        job = Job(engine, name=job_name, executor=ex, store=run_store, save_every=save_every, record=record)
    except BaseException:
        with _REGISTRY_LOCK:
            _JOBS.pop(job_name, None)
        raise
    _register(job)
    if start:
        job.start()
    return job


def _check_launch(engine: Any, executor: "str | Executor", store: bool, save_every: Any, threads: Any) -> Executor:
    """The executor, once ``launch``'s arguments are checked."""
    if not isinstance(engine, Engine):
        missing = [m for m in ("kind", "budget_words", "monitor", "step", "done", "progress", "extend",
                               "snapshot", "state_dict", "load_state_dict", "config", "from_config")
                   if not hasattr(engine, m)]
        raise TypeError(f"engine: {type(engine).__name__} does not implement the Engine protocol "
                        f"(missing: {', '.join(missing)})")
    ex = get_executor(executor)
    if not store and not ex.shares_engine:
        raise ValueError(f"store=False works only with the thread executor; the {ex.name} executor "
                         "passes results through the run folder")
    if not (isinstance(save_every, (int, float)) and save_every > 0):
        raise ValueError(f"save_every: expected a positive number of seconds, got {save_every!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads: expected None or an integer >= 1, got {threads!r}")
    return ex


def runs_dir_default() -> Path:
    return runs_dir()


def open_run(path: "str | Path", executor: "str | Executor" = "thread", **objects: Any) -> Job:
    """Reopen a run folder: a Job whose ``.data`` is the result on disk and which,
    where a checkpoint exists and the engine can be rebuilt, ``extend`` resumes.

    ``objects`` are what the engine cannot store as data (e.g. ``log_prob=f`` for
    flow-MCMC); they are passed to the engine's ``from_config``. Nothing is
    unpickled: job.json is JSON, the checkpoint loads with ``weights_only=True``.

    Opening never fails on damage: whatever is intact comes back, and
    ``job.problems`` says what is not (which file, what is wrong); ``job.resumable``
    says whether ``extend`` can resume it (``job.record["not_resumable"]`` why not).
    A run this kernel already has comes back as the same Job object; unless it is
    running it is reloaded from disk with the given objects, so that a failed run
    whose cause is fixed (a new ``log_prob``, space freed) resumes from its checkpoint.

    Example:
        >>> import tempfile
        >>> from sciml_lab.demo import PiEngine
        >>> root = tempfile.mkdtemp()
        >>> job = launch(PiEngine(steps=3), name="pi", runs_dir=root); job.wait(30)
        'done'
        >>> same = open_run(job.store.path)   # here, this kernel's own job comes back
        >>> same is job, same.step, same.problems
        (True, 3, [])
    """
    p = Path(path)
    if p.name == "result.nc":
        p = p.parent
    store = RunStore(p)
    if not any(f.exists() for f in (store.job_json, store.result_nc, store.checkpoint_pt)):
        raise FileNotFoundError(f"path: {str(path)!r} is not a sciml_lab run folder "
                                "(no job.json, result.nc or checkpoint.pt)")
    ex = get_executor(executor)
    own = _reopen_own(store, ex, objects)
    if own is not None:
        return own
    run = _read_run(store, objects)
    record = run["record"]
    with _REGISTRY_LOCK:
        name = record["name"]
        if name in _JOBS:
            name = _claim_name(name, None)
        else:
            _JOBS[name] = None  # type: ignore[assignment]
    record["name"] = name
    job = Job(run["engine"], name=name, executor=ex, store=store, save_every=record["save_every"], record=record,
              resumable=run["resumable"], status=record["status"], data=run["data"])
    job._reload(run, ex)
    _register(job)
    return job



def _reopen_own(store: RunStore, ex: Executor, objects: dict[str, Any]) -> Job | None:
    """This kernel's own job of the run folder, reloaded from disk unless it is running."""
    p = store.path.resolve()
    with _REGISTRY_LOCK:
        own = next((j for j in _JOBS.values() if j is not None and j.store is not None and j.store.path.resolve() == p),
                   None)
    if own is None:
        return None
    with own._lock:
        if own._status not in FINAL_STATES or own._pending_extends:
            if objects:
                raise RuntimeError(f"job {own.name!r} of this kernel is {own._status}: stop it "
                                   "(job.stop(); job.wait()) before reopening it with new objects")
            return own
        own._reload(_read_run(store, objects), ex)
    return own

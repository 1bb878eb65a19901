"""The runtime: jobs, executors, the run store, the event stream and the registry
of job kinds.

It runs any :class:`Engine` and knows nothing of Jupyter nor of any particular
engine: kinds come to it through :mod:`sciml_lab.runtime.registry`.
"""

from ..kit.protocol import (Badge, Chart, Criterion, Engine, EngineBase, MonitorSpec, Phase, check_budget,
                            parse_criteria)
from ..kit.verdict import Verdict
from .event import FINAL_STATES, STATES, Event, JobFailedError
from .executors import DaskExecutor, Executor, ProcessExecutor, ThreadExecutor, get_executor
from .job import Job
from .launcher import get_job, jobs, launch, open_run
from .registry import Kind, engine_class, register_engine, register_kind
from .store import RunStore, read_result, runs_dir, write_result

__all__ = [
    "Engine", "EngineBase", "Verdict", "Badge", "Chart", "Criterion", "MonitorSpec", "Phase", "check_budget",
    "engine_class", "parse_criteria", "register_engine", "register_kind", "Kind", "Executor", "ThreadExecutor",
    "ProcessExecutor", "DaskExecutor", "get_executor", "Job", "Event", "JobFailedError", "launch", "jobs",
    "get_job", "open_run", "STATES", "FINAL_STATES", "RunStore", "read_result", "write_result", "runs_dir",
]

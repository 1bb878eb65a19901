"""The runtime: jobs, executors, the run store and the event stream.

It runs any :class:`Engine` and knows nothing of Jupyter.
"""

from ..kit.protocol import (Badge, Chart, Criterion, Engine, EngineBase, MonitorSpec, Phase, check_budget, engine_class,
                     parse_criteria, register_engine)
from .executors import DaskExecutor, Executor, ProcessExecutor, ThreadExecutor, get_executor
from .job import FINAL_STATES, STATES, Event, Job, JobFailedError, get_job, jobs, launch, open_run
from .store import RunStore, read_result, runs_dir, write_result
from ..kit.verdict import Verdict

__all__ = [
    "Engine", "EngineBase", "Verdict", "Badge", "Chart", "Criterion", "MonitorSpec", "Phase", "check_budget", "engine_class", "parse_criteria",
    "register_engine", "Executor", "ThreadExecutor", "ProcessExecutor", "DaskExecutor", "get_executor",
    "Job", "Event", "JobFailedError", "launch", "jobs", "get_job", "open_run", "STATES", "FINAL_STATES",
    "RunStore", "read_result", "write_result", "runs_dir",
]

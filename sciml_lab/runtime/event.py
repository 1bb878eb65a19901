"""A job's states and the entries of its event stream."""

from __future__ import annotations

import dataclasses
import math
from typing import Mapping

__all__ = ["Event", "STATES", "FINAL_STATES", "JobFailedError"]

STATES = ("queued", "running", "done", "stopped", "failed")
FINAL_STATES = frozenset({"done", "stopped", "failed"})


class JobFailedError(RuntimeError):
    """Raised by ``Job.result`` when the job failed; ``.data`` still has its partial result."""


@dataclasses.dataclass(frozen=True)
class Event:
    """One entry of a job's event stream.

    ``metrics`` is empty for pure status changes.
    """

    step: int
    wall_time: float
    metrics: Mapping[str, float]
    status: str
    progress: float = math.nan

"""The messages between a job and its step loop: plain dataclasses of plain data.

The loop reports with :class:`Status`, :class:`Events`, :class:`Extended`,
:class:`Saved`, :class:`Spec` and :class:`LiveView`; an executor adds
:class:`Exited` (and, for Dask, :class:`Worker`); the job commands the loop with
:class:`Stop`, :class:`Extend` and :class:`Snapshot`. Every executor carries the
same objects (a queue in this process, a pickled local connection to a worker
process, a Dask queue as :func:`to_wire` lists), and every receiver decodes them
the same way: :func:`deliver` calls the receiver's method named by the message's
``handler``.

Example:
    >>> class Receiver:
    ...     def on_extend(self, msg): print("extend by", msg.budget)
    >>> deliver(from_wire(to_wire(Extend({"steps": 10}))), Receiver())
    extend by {'steps': 10}
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

__all__ = ["Message", "Status", "Events", "Extended", "Saved", "Spec", "LiveView", "Exited", "Worker",
           "Stop", "Extend", "Snapshot", "deliver", "to_wire", "from_wire"]


@dataclasses.dataclass(frozen=True)
class Message:
    """Base of all messages; ``handler`` names the receiver's method for it."""

    handler: ClassVar[str] = ""


# ------------------------------------------------------------------ loop -> job
@dataclasses.dataclass(frozen=True)
class Status(Message):
    """A status change. ``step``: where a segment starts (with ``running``);
    ``error``/``traceback`` on failure; ``verdict`` (JSON) when the job ends."""

    handler: ClassVar[str] = "on_status"
    status: str
    step: int | None = None
    error: str | None = None
    traceback: str | None = None
    verdict: dict | None = None


@dataclasses.dataclass(frozen=True)
class Events(Message):
    """Live metrics, in a batch of ``(step, wall_time, metrics, progress)`` rows."""

    handler: ClassVar[str] = "on_events"
    rows: tuple = ()


@dataclasses.dataclass(frozen=True)
class Extended(Message):
    """An extend command was applied."""

    handler: ClassVar[str] = "on_extended"
    budget: dict


@dataclasses.dataclass(frozen=True)
class Saved(Message):
    """result.nc and the checkpoint were written at ``step``; ``tree`` is the
    snapshot itself where the job shares the loop's memory, else None."""

    handler: ClassVar[str] = "on_saved"
    step: int
    tree: Any = None


@dataclasses.dataclass(frozen=True)
class Spec(Message):
    """What the monitor draws for the engine now (``MonitorSpec.to_json()`` plus the
    ``until`` targets) and what its Extend button pays for by default; sent when a
    segment starts and whenever it changes (badges follow ``until``)."""

    handler: ClassVar[str] = "on_spec"
    monitor: dict
    default_extend: dict


@dataclasses.dataclass(frozen=True)
class LiveView(Message):
    """The engine's optional ``live_view()`` table, at most 4 times a second."""

    handler: ClassVar[str] = "on_live_view"
    table: dict


@dataclasses.dataclass(frozen=True)
class Exited(Message):
    """The worker running the loop has ended (process and Dask executors)."""

    handler: ClassVar[str] = "on_exited"
    code: int


@dataclasses.dataclass(frozen=True)
class Worker(Message):
    """Where a Dask task runs (its executor uses it to kill a stuck task)."""

    handler: ClassVar[str] = "on_worker"
    address: str
    pid: int
    host: str


# ------------------------------------------------------------------ job -> loop
@dataclasses.dataclass(frozen=True)
class Stop(Message):
    """Stop between two steps."""

    handler: ClassVar[str] = "on_stop"


@dataclasses.dataclass(frozen=True)
class Extend(Message):
    """Raise the budget (the engine's budget words)."""

    handler: ClassVar[str] = "on_extend"
    budget: dict


@dataclasses.dataclass(frozen=True)
class Snapshot(Message):
    """Write result.nc (and send :class:`Saved`) after the next step."""

    handler: ClassVar[str] = "on_snapshot"


_TYPES: dict[str, type[Message]] = {c.__name__: c for c in (Status, Events, Extended, Saved, Spec, LiveView,
                                                              Exited, Worker, Stop, Extend, Snapshot)}


def deliver(message: Message, receiver: Any) -> None:
    """Hand ``message`` to ``receiver``'s method for its type (the one dispatch)."""
    getattr(receiver, message.handler)(message)


def to_wire(message: Message) -> list:
    """The message as a list of plain data (for channels that carry no classes)."""
    return [type(message).__name__] + [getattr(message, f.name) for f in dataclasses.fields(message)]


def from_wire(data: Any) -> Message:
    """The inverse of :func:`to_wire` (tuples may come back as lists)."""
    cls = _TYPES.get(data[0]) if isinstance(data, (list, tuple)) and data else None
    if cls is None:
        raise ValueError(f"not a runtime message: {data!r:.80}")
    return cls(*data[1:])

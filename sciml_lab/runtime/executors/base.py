"""What every executor shares: the :class:`Executor` and :class:`Handle` interfaces
and :func:`run_segment`, the part of a segment that runs on the executor's side."""

from __future__ import annotations

from typing import Any, Callable

from ..loop import drive
from ..messages import Message, Status
from ..store import RunStore

__all__ = ["Executor", "Handle", "OnMessage", "restore_engine", "run_segment"]

OnMessage = Callable[[Message], None]


class Handle:
    """The controller's side of a running loop."""

    def send(self, command: Message) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def kill(self) -> bool:
        """Force the loop to end; returns False where that is impossible (threads)."""
        return False

    def join(self, timeout: float | None = None) -> None:
        raise NotImplementedError


class Executor:
    """Base class. ``start`` runs the loop for ``engine`` and returns a Handle.

    ``resume``: the engine is a fresh copy whose state must be loaded from the
    run's checkpoint before running (and ``budgets`` applied after that).
    """

    name = "?"
    #: whether the engine object in the kernel is the one that runs (so the job can
    #: call ``engine.snapshot()`` itself once the loop has ended)
    shares_engine = False

    def start(self, engine: Any, store: RunStore | None, record: dict, on_message: OnMessage, *,
              save_every: float, resume: bool = False, budgets: tuple[dict, ...] = ()) -> Handle:
        raise NotImplementedError


def restore_engine(engine: Any, store: RunStore, record: dict) -> None:
    """Load the run's checkpoint into ``engine``; ``record`` gets its step and time."""
    state = store.read_checkpoint()
    if state is None:
        raise FileNotFoundError(f"no checkpoint to resume from in {store.path}")
    engine.load_state_dict(state["engine"])
    record["step"] = int(state["runtime"]["step"])
    record["elapsed_s"] = float(state["runtime"]["elapsed_s"])


def run_segment(load_engine: Callable[[], Any], link: Any, store: RunStore | None, record: dict, *,
                save_every: float, resume: bool, budgets: tuple[dict, ...],
                before_drive: Callable[[dict], None] | None = None) -> str:
    """What every executor runs on its side: set the job's torch threads, get the
    engine (unpickle it, restore the checkpoint when resuming, apply pending
    budgets, call ``before_drive(record)``), then drive it. A failure while
    preparing is reported exactly like a failure inside a step."""
    try:
        if record.get("threads"):
            import torch

            torch.set_num_threads(int(record["threads"]))
        engine = load_engine()
        if resume:
            restore_engine(engine, store, record)
        for b in budgets:
            engine.extend(**b)
        if before_drive is not None:
            before_drive(record)
    except BaseException as exc:  # noqa: BLE001
        import traceback

        link.send(Status("failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()))
        return "failed"
    return drive(engine, link, store, record, save_every=save_every)

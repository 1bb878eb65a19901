"""The thread executor: the loop runs in a daemon thread of this process."""

from __future__ import annotations

import queue
import threading

from ..messages import Message
from .base import Executor, Handle, OnMessage, run_segment

__all__ = ["ThreadExecutor"]


class _QueueLink:
    local = True

    def __init__(self, on_message: OnMessage):
        self.inbox: "queue.SimpleQueue[Message]" = queue.SimpleQueue()
        self.send = on_message

    def commands(self) -> list[Message]:
        out = []
        while True:
            try:
                out.append(self.inbox.get_nowait())
            except queue.Empty:
                return out


class _ThreadHandle(Handle):
    def __init__(self, link: _QueueLink, thread: threading.Thread):
        self.link, self.thread = link, thread

    def send(self, command: Message) -> None:
        self.link.inbox.put(command)

    def alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)


class ThreadExecutor(Executor):
    """Run the loop in a daemon thread of this process (the default)."""

    name = "thread"
    shares_engine = True

    def start(self, engine, store, record, on_message, *, save_every, resume=False, budgets=()):
        link = _QueueLink(on_message)

        def target():
            run_segment(lambda: engine, link, store, record, save_every=save_every, resume=resume,
                        budgets=budgets)

        t = threading.Thread(target=target, name=f"sciml-job-{record.get('name')}", daemon=True)
        t.start()
        return _ThreadHandle(link, t)

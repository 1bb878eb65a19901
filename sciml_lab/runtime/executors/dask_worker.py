"""The worker's side of the Dask executor: the task that runs a segment, and its
link to the kernel (two ``distributed.Queue`` carrying :func:`~sciml_lab.runtime.messages.to_wire`
lists, metric events in batches; a stop also as a flag file in the run folder)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from ..loop import now_iso
from ..messages import Events, Exited, Message, Status, Stop, Worker, from_wire, to_wire
from ..store import RunStore
from .base import run_segment

__all__: list[str] = []


def _segment_files(store_path: "str | os.PathLike", tag: str) -> tuple[Path, Path]:
    """The two files of one Dask segment in the run folder: the stop flag, and the
    segment's record of its starts (a task re-run after a lost worker finds it)."""
    root = Path(store_path)
    return root / f".dask-{tag}.stop", root / f".dask-{tag}.json"


class _DaskLink:
    """Each Queue.put is a scheduler round trip: metric events are buffered and sent
    in batches by a flusher thread (5 Hz), other messages at once, in order.

    A stop is also a flag file in the run folder, looked at before every step: it
    does not depend on the scheduler."""

    local = False
    period = 0.2

    def __init__(self, tag: str, stop_flag: Path, client=None):
        from distributed import Queue

        self.out = Queue(f"sciml-out-{tag}", client=client)
        self.inbox = Queue(f"sciml-in-{tag}", client=client)
        self.stop_flag = stop_flag
        self._events: list = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, daemon=True)
        self._flusher.start()

    def _flush(self) -> None:
        with self._lock:
            batch, self._events = self._events, []
            if batch:
                self.out.put(to_wire(Events(tuple(batch))))

    def _flush_loop(self) -> None:
        while not self._closed.wait(self.period):
            self._flush()

    def commands(self) -> list[Message]:
        out: list[Message] = [Stop()] if self.stop_flag.exists() else []
        try:
            n = self.inbox.qsize()
        except Exception:
            n = 0
        for _ in range(n):
            out.append(from_wire(self.inbox.get(timeout=5)))
        return out

    def send(self, message: Message) -> None:
        if isinstance(message, Events):
            with self._lock:
                self._events.extend(message.rows)
            return
        self._flush()
        with self._lock:
            self.out.put(to_wire(message))

    def close(self) -> None:
        self._closed.set()
        self._flush()


def _dask_main(payload: bytes, tag: str, store_path: str, record: dict, save_every: float, resume: bool,
               budgets: tuple, worker_losses: int) -> str:
    """The task. Dask runs it again on another worker when its worker is lost; it
    then finds its segment file and resumes from the checkpoint this segment wrote
    (or, before the first one, starts the segment over), or fails the job with the
    loss as its reason once ``worker_losses`` is spent. A stopped segment never runs again."""
    import json
    import socket

    import cloudpickle
    from distributed import get_worker

    from ..store import atomic_write

    store = RunStore(store_path)
    stop_flag, seg_path = _segment_files(store_path, tag)
    if stop_flag.exists():  # stopped (and its worker restarted) before this start: nothing to do
        return "stopped"
    # the checkpoint file as this segment found it: every write replaces it by a new
    # file, so a different one later means that this segment wrote it
    seg = (json.loads(seg_path.read_text()) if seg_path.exists()
           else {"starts": 0, "checkpoint": _file_identity(store.checkpoint_pt)})
    lost = int(seg["starts"])
    seg["starts"] = lost + 1
    text = json.dumps(seg)
    atomic_write(seg_path, lambda tmp: tmp.write_text(text))
    link = _DaskLink(tag, stop_flag)
    worker = get_worker()
    link.send(Worker(worker.address, os.getpid(), socket.gethostname()))
    if lost > worker_losses:
        error = (f"the Dask worker running the job was lost ({lost} time{'s' if lost > 1 else ''}, the executor "
                 f"allows {worker_losses}); everything up to the last checkpoint is kept in the run folder")
        try:
            _record_failure(store, error, worker_losses=lost)
        finally:
            link.send(Status("failed", error=error, traceback=""))
            link.send(Exited(1))
            link.close()
        return "failed"
    rewind = None
    if lost:
        record["worker_losses"] = lost
        if _file_identity(store.checkpoint_pt) != seg["checkpoint"]:  # this segment's: budgets included
            resume, budgets = True, ()

        def rewind(rec: dict) -> None:
            rec["resumed_from"] = int(rec.get("step", 0))
            rec["note"] = (f"resumed from step {rec['resumed_from']} after the Dask worker running it was lost "
                           f"({lost} time{'s' if lost > 1 else ''})")
            # the loop cuts events.jsonl back to this step as any resumed segment does

    final = run_segment(lambda: cloudpickle.loads(payload), link, store, record, save_every=save_every,
                        resume=resume, budgets=budgets, before_drive=rewind)
    link.send(Exited(0))
    link.close()
    return final


def _file_identity(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return [st.st_ino, st.st_mtime_ns, st.st_size]


def _record_failure(store: RunStore, error: str, **extra: Any) -> None:
    """Mark the run failed in its ``job.json`` (where the loop could not do it itself)."""
    try:
        rec = store.read_json()
        rec.update(status="failed", error=error, traceback="", updated=now_iso(), **extra)
        store.write_json(rec)
    except Exception:  # noqa: BLE001 - the kernel still reports the failure
        pass

"""The Dask executor: the loop runs as a task on a ``distributed`` cluster.

Messages travel through two ``distributed.Queue`` as :func:`~sciml_lab.runtime.messages.to_wire`
lists (plain data), metric events in batches; a stop is also a flag file in the
run folder; a task that ignores a stop gets its worker restarted, and one whose
worker is lost resumes from the run's checkpoint (see :class:`DaskExecutor`). The
task's own side is in :mod:`.dask_worker`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..messages import Events, Exited, Message, Status, Stop, Worker, from_wire, to_wire
from ..store import RunStore
from .base import Executor, Handle
from .dask_worker import _dask_main, _record_failure, _segment_files

__all__ = ["DaskExecutor"]


class _DaskHandle(Handle):
    def __init__(self, client, future, inbox, stop_flag: Path):
        self.client, self.future, self.inbox, self.stop_flag = client, future, inbox, stop_flag
        self.reader: threading.Thread | None = None
        self.worker: Worker | None = None  # where the task runs
        self.killing = threading.Event()
        self.killed = threading.Event()

    def send(self, command: Message) -> None:
        if isinstance(command, Stop):
            try:
                self.stop_flag.touch()
            except OSError:
                pass  # the queue below still carries it
        self.inbox.put(to_wire(command))

    def alive(self) -> bool:
        return self.reader is not None and self.reader.is_alive()

    def kill(self) -> bool:
        """Cancel the task (so that it is not run again), then end the worker process
        that runs it (Dask cannot interrupt a running task): by its PID where it runs
        on this machine (its nanny starts a fresh one), else with
        ``Client.restart_workers``. A worker inside this process is left alone."""
        import signal
        import socket

        self.killing.set()
        try:
            self.future.cancel()
            if self.worker is None:
                return False
            address, pid, host = self.worker.address, self.worker.pid, self.worker.host
            if host == socket.gethostname():
                if pid == os.getpid():
                    return False
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    return True  # gone already
                deadline = time.monotonic() + 10
                while _pid_running(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                return True
            try:
                status = self.client.restart_workers([address], timeout=60, raise_for_error=False)
                return status.get(address) == "OK"
            except Exception:
                return False
        finally:
            self.killed.set()

    def join(self, timeout: float | None = None) -> None:
        if self.reader is not None:
            self.reader.join(timeout)


class DaskExecutor(Executor):
    """Run the loop as a task on a Dask cluster.

    Arguments:
        client: a ``distributed.Client``, a scheduler address, or None for a
            ``LocalCluster`` started on first use (and shared by later jobs).
        worker_losses: how many times a job may lose the worker that runs it: Dask
            runs the task again elsewhere, and it resumes from the run's last
            checkpoint (``events.jsonl`` is cut back to it, so no step is logged
            twice). One more loss fails the job with the loss as its reason; 0
            fails it at the first. The scheduler's own limit
            (``distributed.scheduler.allowed-failures``) applies too.

    Stop: the task looks for a stop flag in the run folder before every step. A step
    that does not end within the stop's grace period gets its worker restarted
    (``Client.restart_workers``; needs the nanny a ``LocalCluster`` with processes
    has), after which nothing more is written to the run folder.

    The run folder must be on a file system the workers share with the kernel
    (always true for a ``LocalCluster``).

    Example:
        >>> DaskExecutor(worker_losses=0).worker_losses
        0
    """

    name = "dask"
    _local_client = None

    def __init__(self, client: Any = None, worker_losses: int = 3):
        if isinstance(worker_losses, bool) or not isinstance(worker_losses, int) or worker_losses < 0:
            raise ValueError(f"worker_losses: expected an integer >= 0, got {worker_losses!r}")
        self._client_arg = client
        self.worker_losses = worker_losses

    def client(self):
        from distributed import Client

        if self._client_arg is None:
            if DaskExecutor._local_client is None:
                from distributed import LocalCluster

                cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                       dashboard_address=None)
                DaskExecutor._local_client = Client(cluster)
            return DaskExecutor._local_client
        if isinstance(self._client_arg, str):
            self._client_arg = Client(self._client_arg)
        return self._client_arg

    def start(self, engine, store, record, on_message, *, save_every, resume=False, budgets=()):
        import cloudpickle
        from distributed import Queue

        if store is None:
            raise ValueError("the dask executor needs a run folder (store=True)")
        client = self.client()
        tag = uuid.uuid4().hex[:12]
        store_path = str(store.path.resolve())
        stop_flag, seg_path = _segment_files(store_path, tag)
        out_q = Queue(f"sciml-out-{tag}", client=client)
        in_q = Queue(f"sciml-in-{tag}", client=client)
        # retries=0: a task that raises is not run again; one whose worker is lost is
        # run again by the scheduler, and resumes itself (see _dask_main)
        future = client.submit(
            _dask_main, cloudpickle.dumps(engine), tag, store_path, dict(record), save_every, resume,
            tuple(budgets), self.worker_losses, pure=False, retries=0, key=f"sciml-job-{record.get('name')}-{tag}",
        )
        handle = _DaskHandle(client, future, in_q, stop_flag)
        reader = _Reader(handle, out_q, store, on_message, (stop_flag, seg_path))
        handle.reader = threading.Thread(target=reader.run, name=f"sciml-dask-{record.get('name')}", daemon=True)
        handle.reader.start()
        return handle


class _Reader:
    """The kernel's side of a Dask segment: passes the task's messages on to the job,
    keeps the worker's address for a kill, drops steps a re-run sends again, and
    reports the end of a task that ended without a word."""

    def __init__(self, handle: _DaskHandle, out_q: Any, store: RunStore, on_message: Any, files: tuple):
        self.handle, self.out_q, self.store, self.on_message, self.files = handle, out_q, store, on_message, files
        self.last_step = -1  # a re-run resumes from a checkpoint: steps sent before are not sent twice

    def finish(self, code: int) -> None:
        self.on_message(Exited(code))
        for p in self.files:
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass

    def task_ended(self) -> None:
        future, handle = self.handle.future, self.handle
        if future.cancelled() and handle.killing.is_set():
            handle.killed.wait(120)  # "stopped" once its worker is gone
        err = future.exception() if future.status == "error" else None
        if err is not None:  # on disk first: the job's own status change does not write
            error = _describe_task_error(err)
            _record_failure(self.store, error)
            self.on_message(Status("failed", error=error, traceback=""))
        self.finish(0 if err is None else 1)

    def run(self) -> None:
        while True:
            try:
                raw = self.out_q.get(timeout=0.5)
            except Exception:  # timeout: check whether the task ended without a word
                if self.handle.future.done():
                    return self.task_ended()
                continue
            msg = from_wire(raw)
            if isinstance(msg, Worker):
                self.handle.worker = msg
                continue
            if isinstance(msg, Events):
                msg = Events(tuple(ev for ev in msg.rows if ev[0] > self.last_step))
                if not msg.rows:
                    continue
                self.last_step = msg.rows[-1][0]
            if isinstance(msg, Exited):
                return self.finish(msg.code)
            self.on_message(msg)


def _pid_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, killed but not yet reaped by its
    parent, is not)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


def _describe_task_error(err: BaseException) -> str:
    if type(err).__name__ == "KilledWorker":
        return (f"the Dask worker running the job was lost more often than the scheduler allows "
                f"(KilledWorker: {err}); everything up to the last checkpoint is kept in the run folder")
    return f"{type(err).__name__}: {err}"

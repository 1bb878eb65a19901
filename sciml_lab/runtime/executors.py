"""Executors: where a job's step loop runs.

An executor starts :func:`~sciml_lab.runtime.loop.drive` somewhere and returns a
:class:`Handle` through which the job sends commands; messages come back to
``on_message`` (on some thread of the kernel). Adding an executor means writing a
link (two methods) and a ``start``; the job, the loop, the store and the monitor
stay as they are.

- ``thread`` (default): a daemon thread of this process; PyTorch releases the GIL
  in its kernels, so the kernel stays responsive.
- ``process``: a fresh Python subprocess connected by an authenticated local
  socket; the engine travels with cloudpickle (so functions defined in a notebook
  cell work); killed if it does not stop within the grace period.
- ``dask``: a task on a ``distributed`` cluster (a ``LocalCluster`` by default);
  messages travel through ``distributed.Queue``, a stop also as a flag file in the
  run folder; a task that ignores a stop gets its worker restarted, and one whose
  worker is lost resumes from the run's checkpoint (see :class:`DaskExecutor`).
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from .loop import drive, now_iso
from .store import RunStore

__all__ = ["Executor", "Handle", "ThreadExecutor", "ProcessExecutor", "DaskExecutor", "get_executor"]

OnMessage = Callable[[tuple], None]


class Handle:
    """The controller's side of a running loop."""

    def send(self, command: tuple) -> None:
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

        link.send(("status", "failed", {"error": f"{type(exc).__name__}: {exc}",
                                        "traceback": traceback.format_exc()}))
        return "failed"
    return drive(engine, link, store, record, save_every=save_every)


# --------------------------------------------------------------------------- thread
class _QueueLink:
    local = True

    def __init__(self, on_message: OnMessage):
        self.inbox: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self.send = on_message

    def commands(self) -> list[tuple]:
        out = []
        while True:
            try:
                out.append(self.inbox.get_nowait())
            except queue.Empty:
                return out


class _ThreadHandle(Handle):
    def __init__(self, link: _QueueLink, thread: threading.Thread):
        self.link, self.thread = link, thread

    def send(self, command: tuple) -> None:
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


# --------------------------------------------------------------------------- process
class _PipeLink:
    local = False

    def __init__(self, conn):
        self.conn = conn

    def commands(self) -> list[tuple]:
        out = []
        while self.conn.poll():
            out.append(self.conn.recv())
        return out

    def send(self, message: tuple) -> None:
        self.conn.send(message)


def _child_main(address: str, authkey: bytes) -> None:
    """Entry point of a process worker (a ``python -c`` started by ProcessExecutor).

    The worker is a fresh interpreter started with ``subprocess``, not a
    multiprocessing child: it never re-imports the user's ``__main__``, so a plain
    script needs no ``if __name__ == "__main__"`` guard.
    """
    import cloudpickle
    from multiprocessing.connection import Client

    conn = Client(address, authkey=authkey)
    setup = conn.recv()
    for p in reversed(setup["sys_path"]):
        if p not in sys.path:
            sys.path.insert(0, p)
    link = _PipeLink(conn)
    run_segment(lambda: cloudpickle.loads(setup["payload"]), link,
                RunStore(setup["store_path"]) if setup["store_path"] else None, setup["record"],
                save_every=setup["save_every"], resume=setup["resume"], budgets=setup["budgets"])
    conn.close()


def _accept(listener, proc: subprocess.Popen, timeout: float):
    """The worker's connection, accepted on a helper thread so that the wait is
    bounded and ends early when the worker dies before connecting."""
    box: dict[str, Any] = {}

    def accept():
        try:
            box["conn"] = listener.accept()
        except BaseException as exc:  # noqa: BLE001  (e.g. the wake-up connection below)
            box["error"] = exc

    t = threading.Thread(target=accept, name="sciml-accept", daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    while t.is_alive() and proc.poll() is None and time.monotonic() < deadline:
        t.join(0.05)
    if "conn" in box:
        return box["conn"]
    code = proc.poll()
    if code is None:
        proc.kill()
    if t.is_alive():  # wake accept() with a connection that hangs up at once
        import socket

        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(listener.address)
            except OSError:
                pass
        t.join(5)
    if "conn" in box:  # the worker connected after all, just too late
        box["conn"].close()
    if code is not None:
        raise RuntimeError(f"the process worker exited with code {code} before connecting "
                           "(see its output on the kernel's stderr)")
    raise RuntimeError(f"the process worker did not connect within {timeout:g} s "
                       f"({box.get('error', 'timed out')})")


class _ProcessHandle(Handle):
    def __init__(self, proc, conn, reader: threading.Thread):
        self.proc, self.conn, self.reader = proc, conn, reader
        self._lock = threading.Lock()

    def send(self, command: tuple) -> None:
        with self._lock:
            try:
                self.conn.send(command)
            except (OSError, EOFError, BrokenPipeError):
                pass  # the child has gone; its end is reported by the reader

    def alive(self) -> bool:
        return self.proc.poll() is None or self.reader.is_alive()

    def kill(self) -> bool:
        if self.proc.poll() is None:
            self.proc.kill()
        return True

    def join(self, timeout: float | None = None) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self.reader.join(timeout)


class ProcessExecutor(Executor):
    """Run the loop in a spawned subprocess (cloudpickle carries the engine).

    Example:
        >>> ProcessExecutor().name
        'process'
    """

    name = "process"
    #: seconds the worker has to start and connect (importing torch on a busy
    #: machine can take tens of seconds)
    connect_timeout = 120.0

    def start(self, engine, store, record, on_message, *, save_every, resume=False, budgets=()):
        import cloudpickle
        from multiprocessing.connection import Listener

        payload = cloudpickle.dumps(engine)
        authkey = os.urandom(32)
        with Listener(family="AF_UNIX", authkey=authkey) as listener:
            proc = subprocess.Popen(
                [sys.executable, "-c", "import sys, sciml_lab.runtime.executors as e; "
                 "e._child_main(sys.argv[1], bytes.fromhex(sys.argv[2]))", listener.address, authkey.hex()],
                stdin=subprocess.DEVNULL,
            )
            conn = _accept(listener, proc, self.connect_timeout)
        conn.send({"payload": payload, "store_path": str(store.path) if store else None, "record": dict(record),
                   "save_every": save_every, "resume": resume, "budgets": tuple(budgets),
                   "sys_path": [p for p in sys.path if p]})

        def reader():
            while True:
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    break
                on_message(msg)
            code = proc.wait()
            on_message(("exited", code))

        r = threading.Thread(target=reader, name=f"sciml-reader-{record.get('name')}", daemon=True)
        r.start()
        return _ProcessHandle(proc, conn, r)


# --------------------------------------------------------------------------- dask
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
                self.out.put(["events", batch])

    def _flush_loop(self) -> None:
        while not self._closed.wait(self.period):
            self._flush()

    def commands(self) -> list[tuple]:
        out = [("stop",)] if self.stop_flag.exists() else []
        try:
            n = self.inbox.qsize()
        except Exception:
            n = 0
        for _ in range(n):
            out.append(tuple(self.inbox.get(timeout=5)))
        return out

    def send(self, message: tuple) -> None:
        if message[0] == "events":
            with self._lock:
                self._events.extend(message[1])
            return
        self._flush()
        with self._lock:
            self.out.put(list(message))

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

    from .store import atomic_write

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
    link.send(("worker", worker.address, os.getpid(), socket.gethostname()))
    if lost > worker_losses:
        error = (f"the Dask worker running the job was lost ({lost} time{'s' if lost > 1 else ''}, the executor "
                 f"allows {worker_losses}); everything up to the last checkpoint is kept in the run folder")
        try:
            _record_failure(store, error, worker_losses=lost)
        finally:
            link.send(("status", "failed", {"error": error, "traceback": ""}))
            link.send(("exited", 1))
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
    link.send(("exited", 0))
    link.close()
    return final


class _DaskHandle(Handle):
    def __init__(self, client, future, inbox, stop_flag: Path):
        self.client, self.future, self.inbox, self.stop_flag = client, future, inbox, stop_flag
        self.reader: threading.Thread | None = None
        self.worker: tuple | None = None  # (address, pid, host) of the worker running the task
        self.killing = threading.Event()
        self.killed = threading.Event()

    def send(self, command: tuple) -> None:
        if command[0] == "stop":
            try:
                self.stop_flag.touch()
            except OSError:
                pass  # the queue below still carries it
        self.inbox.put(list(command))

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
            address, pid, host = self.worker
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

        def finish(code: int) -> None:
            on_message(("exited", code))
            for p in (stop_flag, seg_path):
                try:
                    p.unlink(missing_ok=True)
                except OSError:
                    pass

        def reader():
            last_step = -1  # a re-run resumes from a checkpoint: steps sent before are not sent twice
            while True:
                try:
                    msg = out_q.get(timeout=0.5)
                except Exception:  # timeout: check whether the task ended without a word
                    if future.done():
                        if future.cancelled() and handle.killing.is_set():
                            handle.killed.wait(120)  # "stopped" once its worker is gone
                        err = future.exception() if future.status == "error" else None
                        if err is not None:  # on disk first: the job's own status change does not write
                            error = _describe_task_error(err)
                            _record_failure(store, error)
                            on_message(("status", "failed", {"error": error, "traceback": ""}))
                        finish(0 if err is None else 1)
                        return
                    continue
                if msg[0] == "worker":
                    handle.worker = tuple(msg[1:])
                    continue
                if msg[0] == "events":
                    msg = ["events", [ev for ev in msg[1] if ev[0] > last_step]]
                    if not msg[1]:
                        continue
                    last_step = msg[1][-1][0]
                if msg[0] == "exited":
                    finish(msg[1])
                    return
                on_message(tuple(msg))

        handle.reader = threading.Thread(target=reader, name=f"sciml-dask-{record.get('name')}", daemon=True)
        handle.reader.start()
        return handle


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


def get_executor(spec: "str | Executor") -> Executor:
    """``"thread"``, ``"process"``, ``"dask"``, ``"dask://host:port"`` or an Executor."""
    if isinstance(spec, Executor):
        return spec
    if spec == "thread":
        return ThreadExecutor()
    if spec == "process":
        return ProcessExecutor()
    if spec == "dask":
        return DaskExecutor()
    if isinstance(spec, str) and spec.startswith(("dask://", "tcp://")):
        return DaskExecutor(spec.replace("dask://", "tcp://"))
    raise ValueError(
        f"executor: expected 'thread', 'process', 'dask', 'dask://HOST:PORT' or an Executor, got {spec!r}"
    )


"""The worker pools a :class:`~sciml_lab.emulate.simulator.Simulator` runs calls on.

:class:`Slots` is a queue of calls served by daemon threads (not joined when the
interpreter exits, so a call that never returns cannot keep it alive);
:class:`ThreadSlots` runs each call on the slot's thread, :class:`ProcessSlots`
sends it to a worker process the slot owns (:class:`ProcessWorker`: a fresh
interpreter that imports cloudpickle and numpy, not sciml_lab, and ends with its
parent).

Example:
    >>> slots = ThreadSlots(2, lambda x: 2 * x)
    >>> [f.result(10) for f in [slots.submit(1), slots.submit(3)]]
    [2, 6]
    >>> slots.shutdown()
"""

from __future__ import annotations

import concurrent.futures as cf
import queue
import subprocess
import sys
import threading
from typing import Any, Callable

import numpy as np

__all__ = ["Slots", "ThreadSlots", "ProcessSlots", "ProcessWorker"]


class Slots:
    """A queue of calls served by ``n`` daemon threads (started as calls arrive).

    Daemon threads, unlike ``concurrent.futures``' pool threads, are not joined when
    the interpreter exits, so a call that never returns cannot keep it alive.
    ``serve(x)`` (run on a slot's thread) does one call; subclasses give it."""

    def __init__(self, n: int, name: str):
        self.n, self.name = n, name
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.closed = False

    def submit(self, x: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        with self._lock:
            if self.closed:
                raise RuntimeError("the simulator's pool was shut down")
            self._queue.put((fut, x))
            if len(self._threads) < self.n:
                t = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
        return fut

    def _work(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is None or self.closed:
                    if item is not None:
                        item[0].cancel()
                    return
                fut, x = item
                if not fut.set_running_or_notify_cancel():
                    continue
                try:
                    fut.set_result(self.serve(x))
                except BaseException as exc:  # noqa: BLE001 - the engine records it as a failed attempt
                    fut.set_exception(exc)
        finally:
            self.release()

    def serve(self, x: Any) -> Any:
        raise NotImplementedError

    def release(self) -> None:
        """Called on a slot's thread when it ends."""

    def shutdown(self) -> None:
        """Cancel the queued calls and let the slots end; returns at once."""
        with self._lock:
            self.closed = True
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._threads:
            self._queue.put(None)


class ThreadSlots(Slots):
    def __init__(self, n: int, call: Callable[[Any], Any]):
        super().__init__(n, "sciml-sim")
        self.call = call

    def serve(self, x: Any) -> Any:
        return self.call(x)


# A process worker: a fresh interpreter (never the user's __main__ re-imported, so a
# script needs no main guard) that gets sys.path and the cloudpickled call over a
# socket, says it is ready, then answers one call at a time. It imports cloudpickle
# and numpy, not sciml_lab, and ends when its parent does.
_WORKER_MAIN = r"""
import os, pickle, sys, threading, time
from multiprocessing.connection import Connection
conn = Connection(int(sys.argv[1]))
parent = os.getppid()
def orphaned():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
threading.Thread(target=orphaned, daemon=True).start()
sys.path[:0] = [p for p in conn.recv() if p not in sys.path]
import cloudpickle
run = cloudpickle.loads(conn.recv_bytes())
conn.send("ready")
while True:
    try:
        x = conn.recv()
    except EOFError:
        break
    try:
        out = (True, run(x))
    except BaseException as exc:
        out = (False, exc)
    try:
        data = pickle.dumps(out)
    except Exception as exc:
        data = pickle.dumps((False, RuntimeError(f"the simulator's result could not be sent back "
                                                 f"({type(exc).__name__}: {exc})")))
    conn.send_bytes(data)
"""


class ProcessWorker:
    """One worker process and the parent's end of its socket."""

    #: seconds a new worker has to import what it needs and unpickle the simulator
    start_timeout = 120.0

    def __init__(self, blob: bytes):
        import socket
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen([sys.executable, "-c", _WORKER_MAIN, str(theirs.fileno())],
                                         pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        try:
            self.conn.send([p for p in sys.path if p])
            self.conn.send_bytes(blob)
            if not self.conn.poll(self.start_timeout):
                raise RuntimeError(f"the simulator's worker process was not ready within {self.start_timeout:g} s")
            self.conn.recv()
        except (EOFError, OSError) as exc:
            self.close()
            raise RuntimeError(f"the simulator's worker process ended while starting (exit code "
                               f"{self.proc.poll()}; see its output on stderr)") from exc
        except BaseException:
            self.close()
            raise

    def call(self, x: np.ndarray, timeout: float | None) -> Any:
        try:
            self.conn.send(x)
            answered = self.conn.poll(timeout)
            if answered:
                ok, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            self.close()
            raise RuntimeError(f"the simulator's worker process ended during the call "
                               f"(exit code {self.proc.poll()})") from exc
        if not answered:
            self.close()
            raise TimeoutError(f"the simulator call did not return within timeout={timeout:g} s "
                               "(its worker process was killed)")
        if ok:
            return value
        raise value

    def alive(self) -> bool:
        return self.proc.poll() is None and not self.conn.closed

    def kill(self) -> None:
        """End the process (from any thread); its socket is closed by :meth:`close`."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.kill()
        if not self.conn.closed:
            self.conn.close()


class ProcessSlots(Slots):
    """Each slot thread owns one worker process, started at its first call and
    replaced when a call times out (killed) or the process dies."""

    def __init__(self, n: int, blob: bytes, timeout: float | None):
        super().__init__(n, "sciml-sim-proc")
        self.blob, self.timeout = blob, timeout
        self._local = threading.local()
        self.workers: set[ProcessWorker] = set()

    def serve(self, x: Any) -> Any:
        worker = getattr(self._local, "worker", None)
        if worker is None or not worker.alive():
            if worker is not None:
                with self._lock:
                    self.workers.discard(worker)
            worker = self._local.worker = ProcessWorker(self.blob)
            with self._lock:
                self.workers.add(worker)
            if self.closed:  # shut down while this worker started
                worker.kill()
        return worker.call(x, self.timeout)

    def release(self) -> None:
        worker = getattr(self._local, "worker", None)
        if worker is not None:
            worker.close()
            with self._lock:
                self.workers.discard(worker)

    def shutdown(self) -> None:
        super().shutdown()
        with self._lock:
            workers, self.workers = list(self.workers), set()
        for w in workers:  # a busy one is hanging or would be abandoned anyway: kill, do not wait
            w.kill()

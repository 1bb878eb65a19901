"""The process executor: the loop runs in a fresh Python subprocess.

The engine travels with cloudpickle (so functions defined in a notebook cell
work) over an authenticated local socket, the messages of
:mod:`sciml_lab.runtime.messages` back and forth over the same connection (our own
channel between two processes of this user); a worker that does not stop within
the grace period is killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

from ..messages import Exited, Message
from ..store import RunStore
from .base import Executor, Handle, run_segment

__all__ = ["ProcessExecutor"]


class _PipeLink:
    local = False

    def __init__(self, conn):
        self.conn = conn

    def commands(self) -> list[Message]:
        out = []
        while self.conn.poll():
            out.append(self.conn.recv())
        return out

    def send(self, message: Message) -> None:
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

    def send(self, command: Message) -> None:
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
                [sys.executable, "-c", "import sys, sciml_lab.runtime.executors.process as e; "
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
            on_message(Exited(code))

        r = threading.Thread(target=reader, name=f"sciml-reader-{record.get('name')}", daemon=True)
        r.start()
        return _ProcessHandle(proc, conn, r)

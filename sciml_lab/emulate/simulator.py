"""Calling the user's simulator: argument style, output parsing, fan-out and failures.

A simulator takes named parameters (``f(a=..., b=...)``) or one array row
(``f(x)``), and returns a number, a 1-D array / tensor, an ``xarray.DataArray``
or a dict of those. Calls fan out over a pool of workers: threads (the default;
right for simulators that release the GIL: numpy, torch, a subprocess), local
processes (for pure-Python, GIL-bound simulators) or a ``dask.distributed``
client (for more than one machine). A call that raises or returns non-finite
values, or runs past the optional per-call ``timeout``, is retried once, then
recorded as a failure with its inputs and error: it never stops the job. Whatever
the pool, results are ordered by run index. Pool threads are daemon threads and
worker processes end with their parent, so a simulator that hangs never keeps the
interpreter from exiting.

To a process or Dask worker the simulator travels by value with cloudpickle
(a function defined in a notebook works), and the worker does not import
sciml_lab: it only calls the function; the parent parses and checks the result.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import math
import queue
import subprocess
import sys
import threading
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from .emulator import OutputLayout

__all__ = ["Simulator", "parse_output", "SimulatorRun", "POOLS", "check_timeout"]

POOLS = ("thread", "process", "dask")


def _call_style(fn: Callable, inputs: Sequence[str]) -> str:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return "array"
    params = sig.parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return "kwargs"
    names = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return "kwargs" if inputs and set(inputs) <= names else "array"


def parse_output(value: Any, default_name: str = "y") -> tuple[np.ndarray, OutputLayout]:
    """Flatten one simulator result to a float vector and describe its layout.

    Example:
        >>> flat, lay = parse_output({"energy": 1.0, "spectrum": np.arange(3.0)})
        >>> flat.tolist(), lay.labels()
        ([1.0, 0.0, 1.0, 2.0], ['energy', 'spectrum[0]', 'spectrum[1]', 'spectrum[2]'])
    """
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, xr.DataArray):
        items = [(value.name or default_name, value)]
    else:
        items = [(default_name, value)]
    flats, variables = [], []
    for name, v in items:
        if isinstance(v, xr.DataArray):
            if v.ndim > 1:
                raise ValueError(f"output {name!r}: expected a scalar or a 1-D DataArray, got dims {v.dims}")
            coords = {d: np.asarray(v[d].values).tolist() for d in v.dims if d in v.coords}
            arr, dims = np.asarray(v.values, dtype=float), list(v.dims)
        else:
            if torch.is_tensor(v):
                v = v.detach().cpu().numpy()
            arr = np.asarray(v, dtype=float)
            if arr.ndim > 1:
                raise ValueError(f"output {name!r}: expected a scalar or a 1-D array, got shape {arr.shape}")
            dims, coords = ([f"{name}_dim_0"] if arr.ndim == 1 else []), {}
        variables.append({"name": str(name), "dims": dims, "shape": list(arr.shape), "coords": coords})
        flats.append(arr.reshape(-1))
    return np.concatenate(flats) if flats else np.zeros(0), OutputLayout(variables)


class SimulatorRun:
    """One point in flight: its inputs (unit cube and user units), attempts and future."""

    __slots__ = ("index", "u", "x", "attempts", "future", "raw_future", "errors")

    def __init__(self, index: int, u: np.ndarray, x: np.ndarray):
        self.index, self.u, self.x = index, u, x
        self.attempts, self.future, self.raw_future, self.errors = 0, None, None, []


def _caller(fn: Callable, inputs: Sequence[str], style: str) -> Callable[[np.ndarray], Any]:
    """The bare call ``x -> fn(...)`` a worker runs. Defined locally so that cloudpickle
    ships it by value: a worker process then needs numpy, not sciml_lab."""
    names = list(inputs)

    def run(x):
        if style == "kwargs":
            return fn(**{k: float(v) for k, v in zip(names, x)})
        return fn(np.asarray(x, dtype=float))

    return run


def _timed(run: Callable[[Any], Any], timeout: float) -> Callable[[Any], Any]:
    """``run`` bounded to ``timeout`` seconds: the call runs on a daemon thread and,
    past the deadline, ``TimeoutError`` is raised here while that thread is abandoned
    (a thread cannot be killed; a daemon one does not keep the interpreter alive).
    Defined locally so that cloudpickle ships it by value to a Dask worker."""

    def timed(x):
        import threading as _threading

        box: dict = {}

        def target():
            try:
                box["value"] = run(x)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc

        t = _threading.Thread(target=target, name="sciml-sim-call", daemon=True)
        t.start()
        t.join(timeout)
        if t.is_alive():
            raise TimeoutError(f"the simulator call did not return within timeout={timeout:g} s "
                               "(its thread was abandoned)")
        if "error" in box:
            raise box["error"]
        return box["value"]

    return timed


class _Slots:
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


class _ThreadSlots(_Slots):
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


class _ProcessWorker:
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


class _ProcessSlots(_Slots):
    """Each slot thread owns one worker process, started at its first call and
    replaced when a call times out (killed) or the process dies."""

    def __init__(self, n: int, blob: bytes, timeout: float | None):
        super().__init__(n, "sciml-sim-proc")
        self.blob, self.timeout = blob, timeout
        self._local = threading.local()
        self.workers: set[_ProcessWorker] = set()

    def serve(self, x: Any) -> Any:
        worker = getattr(self._local, "worker", None)
        if worker is None or not worker.alive():
            if worker is not None:
                with self._lock:
                    self.workers.discard(worker)
            worker = self._local.worker = _ProcessWorker(self.blob)
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


def _is_dask_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def check_pool(pool: Any) -> str:
    """The pool kind of ``pool``: ``"thread"``, ``"process"`` or ``"dask"`` (a
    ``distributed.Client``, or ``"dask"`` for the current default client).

    Example:
        >>> check_pool("process")
        'process'
    """
    if _is_dask_client(pool):
        return "dask"
    if isinstance(pool, str) and pool in POOLS:
        return pool
    raise ValueError(f"pool: expected 'thread', 'process', 'dask' or a dask.distributed Client, got {pool!r}")


class Simulator:
    """The user's function with a uniform calling convention and a worker pool.

    Arguments:
        fn: the simulator.
        inputs: input names in column order.
        n_workers: calls running concurrently in a thread or process pool (with Dask
            the cluster's workers decide, and this is ignored).
        call: ``"auto"`` (keywords when the signature names every input), ``"kwargs"`` or ``"array"``.
        output_name: name of a bare (non-dict) output.
        pool: where calls run: ``"thread"`` (default), ``"process"`` (spawned local
            processes; the simulator must be picklable by cloudpickle), or a
            ``dask.distributed.Client`` (``"dask"``: the current default client).
        timeout: seconds one call may take (None: no limit). A call still running then
            fails with ``TimeoutError`` (retried once, then recorded as a failed run, like
            a call that raises). With processes the worker process is killed; a thread
            cannot be killed, so with threads (and on a Dask worker) it is abandoned and
            runs on until the simulator returns: a simulator that may hang while using
            a core is best run with ``pool="process"``.

    Calls run on daemon threads or in processes that end with this one, so a
    simulator that never returns cannot keep the interpreter from exiting.

    Example:
        >>> sim = Simulator(lambda a, b: a * b, ["a", "b"], n_workers=1)
        >>> sim.call(np.array([2.0, 3.0]))[0].tolist()
        [6.0]
        >>> sim = Simulator(lambda a, b: a * b, ["a", "b"], n_workers=2, pool="process")
        >>> run = SimulatorRun(0, np.zeros(2), np.array([2.0, 3.0])); sim.submit(run)
        >>> run.future.result(60)[0].tolist()
        [6.0]
        >>> sim.shutdown()
        >>> sim = Simulator(lambda a: __import__("time").sleep(60), ["a"], timeout=0.1)
        >>> run = SimulatorRun(0, np.zeros(1), np.array([1.0])); sim.submit(run)
        >>> describe_error(run.future.exception(30))
        'TimeoutError: the simulator call did not return within timeout=0.1 s (its thread was abandoned)'
    """

    def __init__(self, fn: Callable, inputs: Sequence[str], n_workers: int = 4, call: str = "auto",
                 output_name: str = "y", pool: Any = "thread", timeout: float | None = None):
        if not callable(fn):
            raise ValueError(f"simulator: expected a callable, got {type(fn).__name__}")
        if call not in ("auto", "kwargs", "array"):
            raise ValueError(f"call: expected 'auto', 'kwargs' or 'array', got {call!r}")
        self.pool_kind = check_pool(pool)
        self.client = pool if self.pool_kind == "dask" and not isinstance(pool, str) else None
        self.timeout = check_timeout(timeout)
        self.fn, self.inputs, self.n_workers, self.output_name = fn, list(inputs), int(n_workers), output_name
        self.style = _call_style(fn, self.inputs) if call == "auto" else call
        self.layout: OutputLayout | None = None
        self._pool: Any = None
        self._shipped: Any = None
        if self.pool_kind != "thread":
            self._shipped = self._ship()

    def _ship(self) -> Any:
        import cloudpickle

        run = _caller(self.fn, self.inputs, self.style)
        try:
            blob = cloudpickle.dumps(run)
        except Exception as exc:  # noqa: BLE001 - any pickling failure means the same to the user
            raise ValueError(f"simulator: pool={self.pool_kind!r} runs it in other processes, so it must be "
                             f"picklable by cloudpickle, but it is not ({type(exc).__name__}: {exc}); "
                             f"use pool='thread', or build the unpicklable object (a lock, an open file, a "
                             f"connection) inside the function") from None
        if self.pool_kind == "process":
            return blob
        return run if self.timeout is None else _timed(run, self.timeout)

    def __getstate__(self) -> dict:  # a pool does not travel to a process/dask worker
        d = dict(self.__dict__)
        d["_pool"] = None
        d["client"] = None  # a client is per process: "dask" finds the worker's default one
        return d

    def call(self, x: np.ndarray) -> tuple[np.ndarray, OutputLayout]:
        """Run the simulator at one point (user units) in this thread; raise on a bad result."""
        return self.parse(_caller(self.fn, self.inputs, self.style)(x))

    def parse(self, value: Any) -> tuple[np.ndarray, OutputLayout]:
        """Flatten and check one result; raise on non-finite values."""
        flat, layout = parse_output(value, self.output_name)
        if not np.all(np.isfinite(flat)):
            bad = int((~np.isfinite(flat)).sum())
            raise FloatingPointError(f"the simulator returned {bad} non-finite value(s)")
        return flat, layout

    def _start(self) -> None:
        if self.pool_kind == "thread":
            call = self.call if self.timeout is None else _timed(self.call, self.timeout)
            self._pool = _ThreadSlots(self.n_workers, call)
        elif self.pool_kind == "process":
            self._pool = _ProcessSlots(self.n_workers, self._shipped, self.timeout)
        else:
            if self.client is None:
                try:
                    from distributed import get_client

                    self.client = get_client()
                except (ImportError, ValueError) as exc:
                    raise ValueError(f"pool: 'dask' sends the calls to the default dask.distributed client, but "
                                     f"there is none ({exc}); create one first (Client() or Client(address)) "
                                     f"or pass it as pool=client") from None
            self._pool = self.client

    def submit(self, run: SimulatorRun) -> None:
        """Start (or restart) ``run``; ``run.future`` becomes a ``concurrent.futures.Future``
        of ``(values, layout)``, whatever the pool."""
        if self._pool is None:
            self._start()
        run.attempts += 1
        if self.pool_kind == "thread":
            run.future = self._pool.submit(run.x)
            return
        if self.pool_kind == "process":
            raw = self._pool.submit(run.x)
        else:
            raw = self.client.submit(self._shipped, run.x, pure=False)
        out: cf.Future = cf.Future()

        def settle(done: Any) -> None:
            try:
                out.set_result(self.parse(done.result()))
            except BaseException as exc:  # noqa: BLE001 - the engine records it as a failed attempt
                out.set_exception(exc)

        raw.add_done_callback(settle)
        run.future = out
        run.raw_future = raw  # held: Dask cancels a task whose future is garbage-collected

    def shutdown(self) -> None:
        """Cancel the calls not started and end the workers (a process running a call is
        killed); returns at once. The next ``submit`` starts a fresh pool."""
        if self._pool is not None and self.pool_kind != "dask":  # a user's client is theirs to close
            self._pool.shutdown()
        self._pool = None


def check_timeout(timeout: Any) -> float | None:
    """``timeout`` as seconds (None: no limit); a clear error for anything else.

    Example:
        >>> check_timeout(2), check_timeout(None)
        (2.0, None)
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise ValueError(f"timeout: expected None or a positive number of seconds per simulator call, got {timeout!r}")
    return float(timeout)


def describe_error(exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}"
    return msg if len(msg) < 500 else msg[:497] + "..."

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
from typing import Any, Callable, Sequence

import numpy as np

from .layout import OutputLayout, parse_output
from .pools import ProcessSlots, ThreadSlots

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
            self._pool = ThreadSlots(self.n_workers, call)
        elif self.pool_kind == "process":
            self._pool = ProcessSlots(self.n_workers, self._shipped, self.timeout)
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

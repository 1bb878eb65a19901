"""Calling the user's simulator: argument style, output parsing, fan-out and failures.

A simulator takes named parameters (``f(a=..., b=...)``) or one array row
(``f(x)``), and returns a number, a 1-D array / tensor, an ``xarray.DataArray``
or a dict of those. Each call runs in a pool of worker threads; a call that raises
or returns non-finite values is retried once, then recorded as a failure with
its inputs and error: it never stops the job.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from .emulator import OutputLayout

__all__ = ["Simulator", "parse_output", "SimulatorRun"]


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

    __slots__ = ("index", "u", "x", "attempts", "future", "errors")

    def __init__(self, index: int, u: np.ndarray, x: np.ndarray):
        self.index, self.u, self.x = index, u, x
        self.attempts, self.future, self.errors = 0, None, []


class Simulator:
    """The user's function with a uniform calling convention and a worker pool.

    Arguments:
        fn: the simulator.
        inputs: input names in column order.
        n_workers: threads running calls concurrently.
        call: ``"auto"`` (keywords when the signature names every input), ``"kwargs"`` or ``"array"``.
        output_name: name of a bare (non-dict) output.

    Example:
        >>> sim = Simulator(lambda a, b: a * b, ["a", "b"], n_workers=1)
        >>> sim.call(np.array([2.0, 3.0]))[0].tolist()
        [6.0]
    """

    def __init__(self, fn: Callable, inputs: Sequence[str], n_workers: int = 4, call: str = "auto",
                 output_name: str = "y"):
        if not callable(fn):
            raise ValueError(f"simulator: expected a callable, got {type(fn).__name__}")
        if call not in ("auto", "kwargs", "array"):
            raise ValueError(f"call: expected 'auto', 'kwargs' or 'array', got {call!r}")
        self.fn, self.inputs, self.n_workers, self.output_name = fn, list(inputs), int(n_workers), output_name
        self.style = _call_style(fn, self.inputs) if call == "auto" else call
        self.layout: OutputLayout | None = None
        self._pool: cf.ThreadPoolExecutor | None = None

    def __getstate__(self) -> dict:  # a pool does not travel to a process/dask worker
        d = dict(self.__dict__)
        d["_pool"] = None
        return d

    def call(self, x: np.ndarray) -> tuple[np.ndarray, OutputLayout]:
        """Run the simulator at one point (user units); raise on a bad result."""
        if self.style == "kwargs":
            value = self.fn(**{k: float(v) for k, v in zip(self.inputs, x)})
        else:
            value = self.fn(np.asarray(x, dtype=float))
        flat, layout = parse_output(value, self.output_name)
        if not np.all(np.isfinite(flat)):
            bad = int((~np.isfinite(flat)).sum())
            raise FloatingPointError(f"the simulator returned {bad} non-finite value(s)")
        return flat, layout

    def submit(self, run: SimulatorRun) -> None:
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(max_workers=self.n_workers, thread_name_prefix="sciml-sim")
        run.attempts += 1
        run.future = self._pool.submit(self.call, run.x)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def describe_error(exc: BaseException) -> str:
    msg = f"{type(exc).__name__}: {exc}"
    return msg if len(msg) < 500 else msg[:497] + "..."

"""The shape of a simulator's outputs and of the inputs given to an emulator.

:class:`OutputLayout` maps named outputs (scalars and 1-D vectors, with their dims
and coordinates) to the columns of the output matrix; :func:`parse_output` flattens
one simulator result and describes its layout; :func:`input_matrix` turns arrays,
dicts, DataFrames and Datasets of inputs into one ``(n, d)`` matrix.

Example:
    >>> flat, lay = parse_output({"y": 2.0, "x": np.arange(2.0)})
    >>> flat.tolist(), lay.size
    ([2.0, 0.0, 1.0], 3)
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

__all__ = ["OutputLayout", "parse_output", "input_matrix"]


class OutputLayout:
    """How the simulator's outputs map to the columns of the output matrix.

    A list of variables, each ``{"name", "dims", "shape", "coords"}``: a scalar
    output has ``dims=[]``; a vector output one dim (e.g. ``time``) with optional
    coordinate values.

    Example:
        >>> lay = OutputLayout([{"name": "y", "dims": [], "shape": []},
        ...                     {"name": "x", "dims": ["t"], "shape": [3]}])
        >>> lay.size, lay.labels()
        (4, ['y', 'x[0]', 'x[1]', 'x[2]'])
    """

    def __init__(self, variables: Sequence[Mapping[str, Any]]):
        self.variables = [{"name": str(v["name"]), "dims": list(v.get("dims", [])),
                           "shape": [int(s) for s in v.get("shape", [])],
                           "coords": {k: list(c) for k, c in (v.get("coords") or {}).items()}} for v in variables]

    @property
    def size(self) -> int:
        return sum(int(np.prod(v["shape"])) if v["shape"] else 1 for v in self.variables)

    def slices(self) -> list[slice]:
        out, start = [], 0
        for v in self.variables:
            n = int(np.prod(v["shape"])) if v["shape"] else 1
            out.append(slice(start, start + n))
            start += n
        return out

    def labels(self) -> list[str]:
        out = []
        for v in self.variables:
            if not v["shape"]:
                out.append(v["name"])
            else:
                out.extend(f"{v['name']}[{i}]" for i in range(int(np.prod(v["shape"]))))
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return self.variables

    def variables_of(self, flat: np.ndarray, lead: tuple[str, ...]) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """Split a ``(*lead_shape, size)`` array into named variables with their dims."""
        out = {}
        for v, sl in zip(self.variables, self.slices()):
            arr = flat[..., sl].reshape(*flat.shape[:-1], *v["shape"])
            out[v["name"]] = (lead + tuple(v["dims"]), arr)
        return out

    def coords(self) -> dict[str, Any]:
        out = {}
        for v in self.variables:
            for d, c in v["coords"].items():
                out[d] = c
        return out


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


def input_matrix(x: Any, inputs: Sequence[str]) -> np.ndarray:
    """Accept arrays ``(n, d)``, dicts / DataFrames / Datasets with one entry per input.

    Example:
        >>> input_matrix({"b": [1.0, 2.0], "a": [3.0, 4.0]}, ["a", "b"]).tolist()
        [[3.0, 1.0], [4.0, 2.0]]
    """
    if isinstance(x, (xr.Dataset, dict)) or hasattr(x, "columns"):
        missing = [k for k in inputs if k not in x]
        if missing:
            raise ValueError(f"X: missing inputs {missing}; expected {list(inputs)}")
        cols = [np.asarray(x[k], dtype=float).reshape(-1) for k in inputs]
        return np.stack(cols, axis=1)
    arr = np.asarray(x.detach().cpu() if torch.is_tensor(x) else x, dtype=float)
    if arr.ndim == 1 and len(inputs) == 1:
        arr = arr[:, None]
    if arr.ndim == 1 and len(arr) == len(inputs):
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != len(inputs):
        raise ValueError(f"X: expected an array of shape (n, {len(inputs)}) for inputs {list(inputs)}, "
                         f"got shape {arr.shape}")
    return arr

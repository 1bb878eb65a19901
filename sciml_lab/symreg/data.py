"""Turning the user's data (DataFrame, xarray Dataset, arrays, a pair) into checked arrays.

Every mistake raises ``ValueError`` naming the argument, what was expected and what
was given (the magic turns it into a ``UsageError``).
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["Dataset", "prepare_data", "MIN_SAMPLES"]

MIN_SAMPLES = 3


@dataclasses.dataclass
class Dataset:
    """Checked training data: ``X (n, d)``, ``y (n,)``, weights ``(n,)`` (mean 1), names and units.

    Example:
        >>> d = prepare_data(np.arange(20.0), np.arange(20.0) ** 2, units={"x0": "m"})
        >>> d.features, d.target, d.units, d.weights is None
        (['x0'], 'y', {'x0': 'm'}, True)
    """

    X: np.ndarray
    y: np.ndarray
    weights: np.ndarray | None
    features: list[str]
    target: str
    units: dict[str, str]


def _identifier(name: Any, i: int) -> str:
    s = re.sub(r"\W", "_", str(name)).strip("_") or f"x{i}"
    if s[0].isdigit() or keyword.iskeyword(s):
        s = f"x_{s}"
    return s


def _to_numpy(a: Any, what: str) -> np.ndarray:
    try:
        import torch

        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected numbers (an array, tensor or numeric columns), "
                         f"got {type(a).__name__}") from None
    return arr


def prepare_data(data: Any, y: Any = None, *, target: str | None = None, features: Sequence[str] | None = None,
                 weights: Any = None, units: Mapping[str, str] | None = None) -> Dataset:
    """Check and convert the inputs of a search.

    Arguments:
        data: a pandas DataFrame or xarray Dataset (with ``target``), an array ``X``
            ``(n, d)`` or ``(n,)`` (with ``y``), or a pair ``(X, y)``.
        y: the target when ``data`` is an array.
        target: the target's column (DataFrame) or variable (Dataset) name.
        features: the input columns to use (default: all others) or, for arrays,
            their names (default ``x0, x1, ...``).
        weights: optional sample weights ``(n,)``, positive.
        units: optional ``{name: unit}``; xarray ``units`` attrs are read too.

    Example:
        >>> import pandas as pd
        >>> d = prepare_data(pd.DataFrame({"a": range(20), "b": range(1, 21), "y": range(2, 22)}), target="y")
        >>> d.features, d.target, d.X.shape
        (['a', 'b'], 'y', (20, 2))
    """
    unit_map: dict[str, str] = dict(units or {})
    target_name = target or "y"
    if isinstance(data, tuple) and len(data) == 2 and y is None:
        data, y = data
    mod = type(data).__module__
    if mod.startswith("pandas") and hasattr(data, "columns"):
        X, y, feats = _from_frame(data, target, features)
    elif mod.startswith("xarray") and hasattr(data, "data_vars"):
        X, y, feats = _from_dataset(data, target, features, unit_map)
    else:
        X, y, feats = _from_arrays(data, y, features)
    _check_values(X, y, feats)
    w = _weights(weights, y)
    clean = [_identifier(f, i) for i, f in enumerate(feats)]
    if len(set(clean)) != len(clean):
        raise ValueError(f"features: expected distinct names, got {feats}")
    units_out = {_identifier(k, 0): v for k, v in unit_map.items()}
    return Dataset(np.array(X, dtype=np.float64), np.array(y, dtype=np.float64), w, clean,
                   _identifier(target_name, 0), units_out)


def _columns(available: list[str], target: str | None, features: Sequence[str] | None, what: str) -> list[str]:
    """The feature columns: those asked for (all checked to exist) or all but the target."""
    feats = list(features) if features else [c for c in available if c != target]
    missing = [f for f in feats if f not in available]
    if missing:
        raise ValueError(f"features: expected {what} ({', '.join(available)}), got {missing}")
    return feats


def _from_frame(data: Any, target: str | None, features: Sequence[str] | None):
    cols = [str(c) for c in data.columns]
    if target is None:
        raise ValueError(f"target: a DataFrame needs target=COLUMN (one of {', '.join(cols)}), got none")
    if target not in cols:
        raise ValueError(f"target: expected a column of the DataFrame ({', '.join(cols)}), got {target!r}")
    feats = _columns(cols, target, features, "columns of the DataFrame")
    return (_to_numpy(data[feats].to_numpy(), "data"), _to_numpy(data[target].to_numpy(), f"target {target!r}"),
            feats)


def _from_dataset(data: Any, target: str | None, features: Sequence[str] | None, unit_map: dict[str, str]):
    names = [str(v) for v in data.data_vars]
    if target is None or target not in names:
        raise ValueError(f"target: expected a variable of the Dataset ({', '.join(names)}), got {target!r}")
    feats = _columns(names, target, features, "variables of the Dataset")
    for v in feats + [target]:
        if "units" in data[v].attrs:
            unit_map.setdefault(v, str(data[v].attrs["units"]))
    X = np.stack([_to_numpy(data[f].values, f"variable {f!r}").ravel() for f in feats], axis=1) if feats \
        else np.zeros((data[target].size, 0))
    return X, _to_numpy(data[target].values, f"target {target!r}").ravel(), feats


def _from_arrays(data: Any, y: Any, features: Sequence[str] | None):
    if y is None:
        raise ValueError("y: expected the target values (or pass a DataFrame/Dataset with target=NAME), got None")
    X = _to_numpy(data, "X")
    y = _to_numpy(y, "y")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D array (n_samples, n_features), got shape {X.shape}")
    if y.ndim != 1:
        y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else y
    if y.ndim != 1:
        raise ValueError(f"y: expected a 1-D array (n_samples,), got shape {y.shape}")
    feats = list(features) if features else [f"x{i}" for i in range(X.shape[1])]
    if len(feats) != X.shape[1]:
        raise ValueError(f"features: expected {X.shape[1]} names (one per column of X), got {len(feats)}")
    return X, y, feats


def _check_values(X: np.ndarray, y: np.ndarray, feats: list[str]) -> None:
    if X.shape[1] == 0:
        raise ValueError("features: expected at least one input variable, got none")
    if len(X) != len(y):
        raise ValueError(f"X, y: expected the same number of samples, got {len(X)} rows of X and {len(y)} of y")
    if len(y) < MIN_SAMPLES:
        raise ValueError(f"data: too few samples: expected at least {MIN_SAMPLES}, got {len(y)}")
    bad_x = ~np.isfinite(X)
    if bad_x.any():
        rows, cols = np.nonzero(bad_x)
        raise ValueError(f"X: expected finite numbers, got {int(bad_x.sum())} NaN/inf values "
                         f"(first in row {rows[0]}, feature {feats[cols[0]]!r})")
    bad_y = ~np.isfinite(y)
    if bad_y.any():
        raise ValueError(f"y: expected finite numbers, got {int(bad_y.sum())} NaN/inf values "
                         f"(first in row {int(np.flatnonzero(bad_y)[0])})")
    if np.ptp(y) == 0:
        raise ValueError(f"y: the target is constant (every value is {y[0]:g}); there is nothing to explain")


def _weights(weights: Any, y: np.ndarray) -> np.ndarray | None:
    if weights is None:
        return None
    w = _to_numpy(weights, "weights").ravel()
    if w.shape != y.shape:
        raise ValueError(f"weights: expected one weight per sample ({len(y)}), got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights: expected finite non-negative numbers with a positive sum")
    return w / w.mean()

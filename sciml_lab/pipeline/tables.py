"""``discover``: symbolic regression on what a calibration found.

Two questions, one data table each, then an ordinary symbolic-regression run:

- ``on="posterior"``: closed-form relations among the parameters, from the posterior
  draws (e.g. an SIR posterior's ridge ``beta = 3.01*gamma``: R0 = beta/gamma is what
  the data pin down). ``target`` is one parameter, the features the others.
- ``on="emulator"``: a closed form of the simulator *where it matters*: the final
  emulator's mean for one output value, at posterior draws (the region the data
  allow), as a function of the parameters.

The run's constants carry intervals (``/constants``), and its root attrs name the
calibration run and the table it was given (``source_run``, ``source``), so the
equations' provenance is in the result.

Example:
    >>> import numpy as np, xarray as xr
    >>> rng = np.random.default_rng(0)
    >>> g = rng.normal(0.15, 0.004, 2000)
    >>> tree = xr.DataTree.from_dict({"/posterior": xr.Dataset(
    ...     {"gamma": (("chain", "draw"), g.reshape(4, 500)),
    ...      "beta": (("chain", "draw"), (3 * g + rng.normal(0, 0.002, 2000)).reshape(4, 500))})})
    >>> X, y, names = posterior_table(tree, "beta")
    >>> names, X.shape
    (['gamma'], (2000, 1))
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["posterior_table", "emulator_table", "discovery_table"]


def _posterior(tree: xr.DataTree) -> xr.Dataset:
    if "posterior" not in tree.children:
        raise ValueError("source: the calibration has no posterior yet (it is written after its first round)")
    return tree["posterior"].to_dataset()


def posterior_table(tree: xr.DataTree, target: str, features: Sequence[str] | None = None,
                    max_rows: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X, y, feature names)``: posterior draws of ``target`` against the other
    parameters (or ``features``), at most ``max_rows`` draws (an even, seeded pick)."""
    post = _posterior(tree)
    names = [k for k in post.data_vars if post[k].dims == ("chain", "draw")]
    if target not in names:
        raise ValueError(f"target: {target!r} is not a scalar parameter of the posterior; expected one of {names}")
    features = [k for k in names if k != target] if features is None else list(features)
    unknown = [k for k in features if k not in names or k == target]
    if unknown or not features:
        raise ValueError(f"features: expected parameters of the posterior other than {target!r} "
                         f"(from {names}), got {features}")
    X = np.stack([post[k].values.reshape(-1) for k in features], -1)
    y = post[target].values.reshape(-1)
    rows = np.random.default_rng(seed).permutation(len(y))[:max_rows]
    return X[rows], y[rows], features


def emulator_table(tree: xr.DataTree, emulator: Any, output: str, max_rows: int = 2000,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X, y, parameter names)``: the emulator's mean of the output value labelled
    ``output`` (e.g. ``"y[3]"``, see the emulator's layout labels) at posterior draws."""
    import torch

    post = _posterior(tree)
    names = list(emulator.inputs)
    labels = emulator.layout.labels()
    if output not in labels:
        raise ValueError(f"output: expected one of the simulator's output values {labels[:8]}"
                         f"{' ...' if len(labels) > 8 else ''}, got {output!r}")
    X = np.stack([post[k].values.reshape(-1) for k in names], -1)
    X = X[np.random.default_rng(seed).permutation(len(X))[:max_rows]]
    with torch.no_grad():
        mean, _ = emulator.mean_and_std(torch.as_tensor(X, dtype=torch.float64))
    return X, mean[:, labels.index(output)].numpy(), names


def source_folder(job_or_path: Any) -> Path | None:
    """The run folder of a calibration job or path (None for a job kept in memory)."""
    store = getattr(job_or_path, "store", None)
    if store is not None:
        return Path(store.path)
    if isinstance(job_or_path, (str, Path)):
        p = Path(job_or_path)
        return p.parent if p.name == "result.nc" else p
    return None


def _final_emulator(source: Any, tree: xr.DataTree, folder: Path | None, simulator: Any) -> Any:
    """The calibration's last emulator: from its engine in this kernel, else rebuilt from
    its last emulate stage's folder with ``simulator``."""
    from ..runtime.launcher import open_run
    from .engine import CalibrateEngine

    engine = getattr(source, "engine", None)
    if isinstance(engine, CalibrateEngine):
        return engine.emulator()
    if folder is None or simulator is None:
        raise ValueError("simulator: a calibration reopened from disk needs simulator=<function> to "
                         "rebuild its emulator (it is not called)")
    last = [s for s in json.loads(tree.attrs["stages"]) if s.endswith("-emulate")][-1]
    return open_run(folder / "stages" / last, simulator=simulator).engine.get_emulator()


def discovery_table(source: Any, target: str, on: str, features: Sequence[str] | None = None,
                    simulator: Any = None) -> tuple[pd.DataFrame, str, list[str], str, Path | None]:
    """The table ``discover`` searches (see :func:`sciml_lab.pipeline.discover`): the
    DataFrame, its target column, the feature names, what the table is (in words) and
    the calibration's run folder."""
    from ..runtime.store import read_result

    folder = source_folder(source)
    tree = source.result if hasattr(source, "result") else read_result(folder / "result.nc")
    if on == "posterior":
        X, y, names = posterior_table(tree, target, features)
        column, what = target, f"posterior draws: {target} ~ {' + '.join(names)}"
    elif on == "emulator":
        X, y, names = emulator_table(tree, _final_emulator(source, tree, folder, simulator), target)
        column = re.sub(r"[^A-Za-z0-9_]", "_", target).strip("_") or "y"
        what = f"emulator mean of {target} at posterior draws"
    else:
        raise ValueError(f"on: expected 'posterior' or 'emulator', got {on!r}")
    return pd.DataFrame(X, columns=names).assign(**{column: y}), column, names, what, folder

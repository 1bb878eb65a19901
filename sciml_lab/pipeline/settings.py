"""The calibration pipeline's settings: every option declared once.

Observations and their noise are data, kept in the run's config as JSON lists, so a
reopened run needs only its simulator again.

Example:
    >>> s = CalibrateSettings(bounds={"k": (0.1, 2.0)}, observed=[1.0, 0.5], noise=0.1)
    >>> s.resolve().initial_runs, s.resolve().runs_per_round, s.rounds, s.until
    (10, 5, 8, 'move<0.1')
    >>> CalibrateSettings(bounds={"k": (0.1, 2.0)}, observed=[1.0, float("nan")], noise=0.1)
    Traceback (most recent call last):
    ...
    ValueError: observed: expected finite numbers, got 1 NaN or infinite value(s) of 2
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import numpy as np

from ..kit.checks import at_least, device_name, number, optional, options_dict, text, tuple_of
from ..kit.protocol import parse_criteria
from ..kit.settings import Settings, option

__all__ = ["CalibrateSettings", "METRICS", "SAMPLER_DEFAULTS", "EMULATOR_DEFAULTS", "DISCOVER_DEFAULTS",
           "DISCOVER_ROWS", "as_values"]

#: what ``until`` may name: the largest shift of a posterior mean or sd between two
#: rounds (in posterior sd), the rounds, the simulator calls, and the emulator's
#: predictive sd over the noise sd at the posterior draws (median over draws of the
#: largest over outputs)
METRICS = ("move", "round", "calls", "emulator_sd")

#: the flow-MCMC sampler of each round unless ``sampler`` says otherwise
SAMPLER_DEFAULTS = {"n_chains": 64, "n_training_loops": 6, "n_loops": 12, "n_local_steps": 20,
                    "n_global_steps": 20, "n_epochs": 10, "dtype": "float64"}
#: the symbolic regression of ``discover`` unless ``discover_options`` says otherwise
DISCOVER_DEFAULTS = {"ops": "+ - * /", "iterations": 60, "maxsize": 15, "device": "cpu"}
#: posterior draws the symbolic regression of ``discover`` is given at most
DISCOVER_ROWS = 4000
#: the emulator unless ``emulator`` says otherwise (fewer Sobol' points: its snapshot
#: is written at every slice of the stage)
EMULATOR_DEFAULTS = {"n_sobol": 512, "poll": 0.05}


def as_values(name: str, v: Any) -> Any:
    """Finite numbers: an array-like (kept as a nested list) or a dict of them by
    output name (kept as a dict of lists); ``None`` stays (required: see ``validate``)."""
    if v is None:
        return None
    if isinstance(v, Mapping):
        if not v:
            raise ValueError(f"{name}: expected numbers or a dict of them by output name, got an empty dict")
        return {str(k): as_values(f"{name}[{k!r}]", x) for k, x in v.items()}
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers (an array) or a dict of them by output name, "
                         f"got {type(v).__name__}") from None
    if a.size == 0:
        raise ValueError(f"{name}: expected at least one value, got none")
    bad = int((~np.isfinite(a)).sum())
    if bad:
        raise ValueError(f"{name}: expected finite numbers, got {bad} NaN or infinite value(s) of {a.size}")
    return a.tolist()


def _noise(name: str, v: Any) -> Any:
    out = as_values(name, v)
    if out is None:
        return None
    flat = np.concatenate([np.ravel(x) for x in out.values()]) if isinstance(out, dict) else np.ravel(out)
    if (flat <= 0).any():
        raise ValueError(f"{name}: expected standard deviations > 0, got {float(flat.min())}")
    return out


def _bounds(name: str, v: Any) -> dict | None:
    if v is None:
        return None
    if not isinstance(v, Mapping) or not v:
        raise ValueError(f"{name}: expected {{parameter: (low, high)}} (a uniform prior), got {v!r}")
    out = {}
    for k, b in v.items():
        try:
            lo, hi = (float(x) for x in b)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: {k!r} must be (low, high), got {b!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"{name}: {k!r} needs finite low < high, got {b!r}")
        out[str(k)] = (lo, hi)
    return out


def _until(name: str, v: Any) -> str:
    parse_criteria(text(name, v), known=METRICS)
    return v


@dataclasses.dataclass(frozen=True)
class CalibrateSettings(Settings):
    """The options of :class:`~sciml_lab.pipeline.engine.CalibrateEngine`."""

    bounds: Any = option(None, _bounds, "uniform prior: {parameter: (low, high)}")
    observed: Any = option(None, as_values, "the observations (an array, or a dict by output name)")
    noise: Any = option(None, _noise, "the observations' noise sd (a number, or one per observation)")
    rounds: int = option(8, at_least(1), "refinement rounds at most", flag="--rounds")
    until: str = option("move<0.1", _until, "target, e.g. 'move<0.05' (posterior shift between rounds, "
                                             "in posterior sd)", flag="--until")
    initial_runs: int | None = option(None, optional(at_least(2)), "simulator runs over the prior (default "
                                                                    "10 per parameter)", flag="--initial")
    runs_per_round: int | None = option(None, optional(at_least(1)), "simulator runs per round where the "
                                        "posterior lives (default 5 per parameter)", flag="--per-round")
    n_check: int = option(20, at_least(0), "simulator runs at fresh posterior draws for the final "
                                           "posterior-predictive check", flag="--check")
    discover: tuple = option((), tuple_of(text), "parameters to express through the others by symbolic "
                             "regression on the posterior draws (e.g. a ridge such as beta = 3*gamma)",
                             flag="--discover")
    sampler: dict = option(check=options_dict, help="flow-MCMC settings of each round", factory=dict)
    emulator: dict = option(check=options_dict, help="emulator settings", factory=dict)
    discover_options: dict = option(check=options_dict, help="symbolic-regression settings of --discover",
                                    factory=dict)
    slice_s: float = option(2.0, number(0, open_low=True), "seconds a step advances the current stage")
    device: str = option("auto", device_name, "auto, cpu or cuda", flag="--device")
    seed: int = option(0, at_least(0), "random seed", flag="--seed")

    def validate(self) -> None:
        for k in ("bounds", "observed", "noise"):
            if getattr(self, k) is None:
                raise ValueError(f"{k}: required (e.g. bounds={{'k': (0.1, 2.0)}}, observed=[...], noise=0.1)")
        unknown = [k for k in self.discover if k not in self.bounds]
        if unknown or (self.discover and len(self.bounds) < 2):
            raise ValueError(f"discover: expected parameters among {list(self.bounds)} (at least two parameters), "
                             f"got {list(self.discover)}")

    def resolve(self) -> "CalibrateSettings":
        """The settings with the run counts filled in from the number of parameters."""
        d = len(self.bounds)
        return self.replace(initial_runs=self.initial_runs or 10 * d, runs_per_round=self.runs_per_round or 5 * d)

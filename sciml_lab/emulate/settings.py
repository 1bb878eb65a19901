"""The emulator's settings: every option declared once (default, check, help, ``%sciml`` flag).

:class:`EmulateSettings` is the signature of :class:`~sciml_lab.emulate.engine.EmulateEngine`
(its keyword arguments), its ``config()`` in ``job.json`` and the options of
``%sciml emulate``. Adding an option is one line here.

Example:
    >>> s = EmulateSettings(bounds={"a": (0, 1), "k": (1e-3, 10, "log")}, until="nrmse<0.01")
    >>> s.bounds, s.log_inputs
    ({'a': (0.0, 1.0), 'k': (0.001, 10.0)}, ('k',))
    >>> r = s.resolve(n_rows=None); (r.budget, r.n_initial, r.batch_size)   # defaults from the inputs
    (100, 20, 10)
    >>> EmulateSettings(model="kriging")
    Traceback (most recent call last):
    ...
    ValueError: model: expected one of 'auto', 'gp', 'ensemble', got 'kriging'
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

from ..kit.checks import at_least, boolean, device_name, number, one_of, optional, options_dict, text, tuple_of
from ..kit.device import resolve_device
from ..kit.protocol import Badge, Chart, MonitorSpec, badge_targets, parse_criteria
from ..kit.settings import Settings, option
from .design import DESIGNS
from .simulator import check_pool, check_timeout

__all__ = ["EmulateSettings", "METRICS", "RESERVED", "parse_bounds_spec", "monitor_spec"]

METRICS = ("runs", "failed", "nrmse", "nrmse_low", "nrmse_high", "coverage", "nll", "raw_coverage",
           "calibration_scale", "fit_time")
# names of the design's variables: an input may not take one, an output is renamed
RESERVED = {"inputs", "failed", "error", "batch", "attempts", "run", "input"}


def parse_bounds_spec(bounds: Mapping[str, Any], log_inputs: Sequence[str] = ()) -> tuple[dict, list[str]]:
    """Check ``{"name": (low, high)}`` or ``(low, high, "log")``; returns bounds and log inputs.

    Example:
        >>> parse_bounds_spec({"a": (0, 1), "k": (1e-3, 10, "log")})
        ({'a': (0.0, 1.0), 'k': (0.001, 10.0)}, ['k'])
    """
    if not isinstance(bounds, Mapping) or not bounds:
        raise ValueError(f"bounds: expected a dict {{name: (low, high)}} with at least one input, got {bounds!r}")
    out, logs = {}, [str(k) for k in log_inputs]
    for name, spec in bounds.items():
        spec = list(spec) if isinstance(spec, (tuple, list)) else spec
        if not isinstance(spec, list) or len(spec) not in (2, 3) or (len(spec) == 3 and spec[2] not in ("log", "lin")):
            raise ValueError(f"bounds: {name!r} must be (low, high) or (low, high, 'log'), got {spec!r}")
        try:
            lo, hi = float(spec[0]), float(spec[1])
        except (TypeError, ValueError):
            raise ValueError(f"bounds: {name!r} has a bound that is not a number: {spec!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"bounds: {name!r} needs finite low < high, got ({spec[0]}, {spec[1]})")
        if len(spec) == 3 and spec[2] == "log" and name not in logs:
            logs.append(str(name))
        if name in logs and lo <= 0:
            raise ValueError(f"bounds: log-scaled input {name!r} needs low > 0, got {lo}")
        if str(name) in RESERVED:
            raise ValueError(f"bounds: {name!r} is a reserved name; rename the input")
        out[str(name)] = (lo, hi)
    unknown = [k for k in logs if k not in out]
    if unknown:
        raise ValueError(f"log_inputs: {unknown} are not among the inputs {list(out)}")
    return out, logs


def _until(name: str, v: Any) -> str | None:
    if v is not None:
        parse_criteria(text(name, v), known=METRICS)
    return v


def _pool(name: str, v: Any) -> str:
    return check_pool(v)  # a dask Client is "dask" here; the engine hands the client itself to the simulator


def _timeout(name: str, v: Any) -> float | None:
    return check_timeout(v)


@dataclasses.dataclass(frozen=True)
class EmulateSettings(Settings):
    """The emulator's options (the keyword arguments of
    :class:`~sciml_lab.emulate.engine.EmulateEngine`); ``None`` defaults are filled in by
    :meth:`resolve`. Beyond each field's help:

    - ``model``: ``"auto"`` is a GP up to a budget of 1500 runs and 10 output columns
      after PCA, else a deep ensemble.
    - ``acquisition``: ``"variance"`` (greedy max predictive variance), ``"ivr"``
      (integrated variance reduction over a Sobol' reference cloud; GP only, an
      ensemble falls back to ``"variance"``) or ``"random"``. Measured on five test
      functions (``bench/emulate/RESULTS.md``) neither of the first two wins overall,
      so the cheaper one is the default.
    - ``pool``: ``"thread"`` suits simulators that release the GIL (numpy, torch, a
      subprocess); ``"process"`` spawns local processes for pure-Python simulators
      (picklable by cloudpickle, which a notebook function is); a
      ``dask.distributed.Client`` (``"dask"``: the default client) runs them on its
      workers. Results are ordered by run whatever the pool, so a seed gives the same runs.
    - ``timeout``: a call past it counts as a failed run, with the timeout as its error
      (see :class:`~sciml_lab.emulate.simulator.Simulator`).
    - ``n_components``: default ``"auto"`` when the outputs have more than 10 values: as
      many as leave out at most 1e-4 of the variance (see :mod:`sciml_lab.emulate.reduce`).
    - ``n_sobol``: costs ``n_sobol × (inputs + 2)`` emulator predictions per snapshot.
    - ``model_options``: GP ``max_iter``, ``max_fit_points``, ``cv_folds``; ensemble
      ``n_members``, ``hidden``, ``steps``, ``lr``.
    - ``device``: where the ensemble runs; the GP runs on the CPU in float64 unless it
      is a GPU.
    """

    bounds: Any = option(None, None, "{name: (low, high)} or (low, high, 'log') per input")
    log_inputs: tuple = option((), tuple_of(text), "inputs scaled logarithmically")
    inputs: tuple | None = option(None, optional(tuple_of(text, 1)), "input columns of the data")
    outputs: tuple | None = option(None, optional(tuple_of(text, 1)), "output columns of the data")
    budget: int | None = option(None, optional(at_least(2)), "simulator runs (default 50 per input)",
                                flag="--budget")
    model: str = option("auto", one_of("auto", "gp", "ensemble"), "surrogate (default auto)", flag="--model",
                        metavar="{auto,gp,ensemble}")
    until: str | None = option(None, _until, "target, e.g. 'nrmse<0.01' or 'nrmse<0.02 coverage>0.9'",
                               flag="--until")
    n_initial: int | None = option(None, optional(at_least(1)), "size of the space-filling initial design",
                                   flag="--initial")
    batch_size: int | None = option(None, optional(at_least(1)), "runs per active-learning batch", flag="--batch")
    design: str = option("sobol", one_of(*DESIGNS), "initial design", flag="--design", metavar="{sobol,lhs,random}")
    acquisition: str = option("variance", one_of("variance", "ivr", "random"),
                              "active learning: max predictive variance (default) or integrated variance reduction",
                              flag="--acquisition", metavar="{variance,ivr,random}")
    explore: float = option(0.25, number(0, 1), "share of each active batch taken from the space-filling design",
                            flag="--explore")
    n_workers: int = option(4, at_least(1), "simulator calls in parallel", flag="--workers")
    pool: str = option("thread", _pool, "where simulator calls run: threads (default), local processes "
                                        "(pure-Python, GIL-bound simulators) or the default dask.distributed client",
                       flag="--pool", metavar="{thread,process,dask}")
    timeout: float | None = option(None, _timeout, "seconds a simulator call may take; a call past it is a "
                                                   "failed run (default: none)", flag="--timeout")
    n_components: int | None = option(None, optional(at_least(1)), "PCA components for vector outputs",
                                      flag="--components")
    recalibrate: bool = option(True, boolean, "rescale the predictive std when validation coverage is off "
                                                "(--no-recalibrate: keep the model's raw scale)", flag="--no-recalibrate")
    n_sobol: int = option(4096, at_least(1), "base sample of the Sobol' indices")
    model_options: dict = option(check=options_dict, help="settings of the model", factory=dict)
    poll: float = option(0.5, number(0, open_low=True), "seconds a step waits for simulator calls")
    call: str = option("auto", one_of("auto", "kwargs", "array"), "how the simulator is called")
    output_name: str = option("y", text, "name of a bare (non-dict) output")
    device: str = option("auto", device_name, "auto, cpu or cuda (default auto)", flag="--device")
    seed: int = option(0, at_least(0), "seed of designs and fits", flag="--seed")

    def validate(self) -> None:
        if self.bounds is not None:
            bounds, logs = parse_bounds_spec(self.bounds, self.log_inputs)
            object.__setattr__(self, "bounds", bounds)
            object.__setattr__(self, "log_inputs", tuple(logs))

    def resolve(self, n_rows: int | None) -> "EmulateSettings":
        """The settings with every default filled in: the budget (``n_rows`` when fitting
        data, else 50 runs per input, at least 50), the initial design
        (``min(10 × inputs, budget / 2)``, at least inputs + 2, at most the budget), the
        batch (``max(inputs, budget / 10)``) and the device (``auto`` resolved)."""
        d = len(self.bounds)
        budget = n_rows if n_rows is not None else self.budget if self.budget is not None else max(50, 50 * d)
        budget = at_least(2)("budget", budget)
        n_initial = self.n_initial if self.n_initial is not None else max(min(10 * d, budget // 2), d + 2)
        return self.replace(budget=budget, n_initial=min(n_initial, budget),
                            batch_size=self.batch_size if self.batch_size is not None else max(d, budget // 10),
                            device=str(resolve_device(self.device)))


def monitor_spec(until: str | None) -> MonitorSpec:
    """The live monitor's charts and badges; a badge shows the user's ``until`` target
    where it names the badge's metric.

    Example:
        >>> [b.criterion for b in monitor_spec("nrmse<0.05").badges]
        ['nrmse<0.05', 'coverage>0.9']
    """
    targets = badge_targets(until, {"nrmse": "nrmse<0.01", "coverage": "coverage>0.9"})
    return MonitorSpec(
        charts=(
            Chart("error vs runs", ("nrmse", "nrmse_low", "nrmse_high"), log_y=True, x="runs"),
            Chart("95% coverage", ("coverage", "raw_coverage"), hlines=(0.95,), x="runs"),
            Chart("NLL per value", ("nll",), x="runs"),
            Chart("runs done / failed", ("runs", "failed")),
        ),
        badges=(Badge("NRMSE", targets["nrmse"], ".2g"), Badge("coverage", targets["coverage"], ".2f")),
        key="nrmse",
    )

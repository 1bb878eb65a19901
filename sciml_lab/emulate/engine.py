"""The emulator engine: design, simulator runs, fitting and validation as a live job.

A run alternates *batches*: choose points (a space-filling initial design, then
active learning where the emulator is least certain, or where a run most reduces
its integrated variance), run the simulator on them over a pool of workers
(threads, processes or a Dask client), refit the emulator, validate it (for a GP
the error by exact leave-one-out, the calibration by 5-fold cross-validation with
refits up to 100 runs and by leave-one-out above; a held-out fifth of the runs for
an ensemble) and record
normalised RMSE, 95 % coverage and NLL against the number of runs. A ``step`` waits
at most ``poll`` seconds for simulator calls, so a slow simulator never blocks a
stop request; the batch's refit happens in the step that collects its last run.

Where the simulator fails, a classifier of run success over the inputs (fitted on
every run) weighs the active learning away from the failing region; the result's
``/failures`` group and its ``warnings`` say where runs failed. A job none of whose
runs succeeds fails with the first error, after its budget or after the initial
design and as many runs again, whichever comes first.

With data instead of a simulator the engine fits once and validates.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from ..device import resolve_device
from ..runtime.engine import Badge, Chart, MonitorSpec, badge_targets, parse_criteria, register_engine
from .design import DESIGNS, candidates, initial_design, select_batch
from .emulator import Emulator, OutputLayout, small_problem_threads
from .feasibility import SuccessClassifier
from .sensitivity import sobol_indices
from .simulator import Simulator, SimulatorRun, check_pool, check_timeout, describe_error

__all__ = ["EmulateEngine", "METRICS", "parse_bounds_spec", "table_from_data"]

METRICS = ("runs", "failed", "nrmse", "nrmse_low", "nrmse_high", "coverage", "nll", "raw_coverage",
           "calibration_scale", "fit_time")
# new columns go last: a checkpoint written before them is padded with NaN on load
_VALIDATION_VARS = ("runs", "n_train", "failed", "nrmse", "coverage", "nll", "raw_coverage", "calibration_scale",
                    "fit_time", "wall_time", "nrmse_low", "nrmse_high")
_RESERVED = {"inputs", "failed", "error", "batch", "attempts", "run", "input"}


def _monitor(until: str | None) -> MonitorSpec:
    targets = badge_targets(until, {"nrmse": "nrmse<0.01", "coverage": "coverage>0.9"})
    nrmse_badge, coverage_badge = targets["nrmse"], targets["coverage"]
    return MonitorSpec(
        charts=(
            Chart("error vs runs", ("nrmse", "nrmse_low", "nrmse_high"), log_y=True, x="runs"),
            Chart("95% coverage", ("coverage", "raw_coverage"), hlines=(0.95,), x="runs"),
            Chart("NLL per value", ("nll",), x="runs"),
            Chart("runs done / failed", ("runs", "failed")),
        ),
        badges=(Badge("NRMSE", nrmse_badge, ".2g"), Badge("coverage", coverage_badge, ".2f")),
        key="nrmse",
    )


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
        if str(name) in _RESERVED:
            raise ValueError(f"bounds: {name!r} is a reserved name; rename the input")
        out[str(name)] = (lo, hi)
    unknown = [k for k in logs if k not in out]
    if unknown:
        raise ValueError(f"log_inputs: {unknown} are not among the inputs {list(out)}")
    return out, logs


def table_from_data(data: Any, inputs: Sequence[str] | None, outputs: Sequence[str] | None
                    ) -> tuple[np.ndarray, np.ndarray, list[str], list[dict]]:
    """Inputs ``(n, d)``, outputs ``(n, m)``, input names and output layout from a
    Dataset, a DataFrame, a dict of columns or a tuple ``(X, Y)``.

    Example:
        >>> x, y, names, lay = table_from_data({"a": [0, 1], "y": [1, 2]}, ["a"], ["y"])
        >>> x.shape, y.shape, names
        ((2, 1), (2, 1), ['a'])
    """
    if isinstance(data, tuple) and len(data) == 2:
        x = np.asarray(data[0], dtype=float)
        y = np.asarray(data[1], dtype=float)
        x = x[:, None] if x.ndim == 1 else x
        y = y[:, None] if y.ndim == 1 else y
        if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
            raise ValueError(f"data: (X, Y) must be arrays (n, d) and (n, m) with the same n, got {x.shape} and {y.shape}")
        names = list(inputs) if inputs else [f"x{i}" for i in range(x.shape[1])]
        outs = list(outputs) if outputs else (["y"] if y.shape[1] == 1 else [f"y{i}" for i in range(y.shape[1])])
        if len(names) != x.shape[1] or len(outs) != y.shape[1]:
            raise ValueError(f"inputs/outputs: {len(names)} input and {len(outs)} output names for arrays with "
                             f"{x.shape[1]} and {y.shape[1]} columns")
        return x, y, names, [{"name": o} for o in outs]
    if not (isinstance(data, (xr.Dataset, dict)) or hasattr(data, "columns")):
        raise ValueError(f"data: expected an xarray Dataset, a pandas DataFrame, a dict of columns or a tuple (X, Y), "
                         f"got {type(data).__name__}")
    if not inputs or not outputs:
        raise ValueError("inputs/outputs: name the input and output columns, e.g. inputs=['a', 'b'], outputs=['y']")
    missing = [k for k in (*inputs, *outputs) if k not in data]
    if missing:
        raise ValueError(f"inputs/outputs: {missing} not found in the data")
    x = np.stack([np.asarray(data[k], dtype=float).reshape(-1) for k in inputs], 1)
    y = np.stack([np.asarray(data[k], dtype=float).reshape(-1) for k in outputs], 1)
    return x, y, list(inputs), [{"name": o} for o in outputs]


def _runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """First and last index of each run of True in a 1-D mask.

    Example:
        >>> _runs_of(np.array([True, True, False, True]))
        [(0, 1), (3, 3)]
    """
    edges = np.diff(np.concatenate([[0], mask.astype(int), [0]]))
    return [(int(a), int(b) - 1) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def _copy(a: np.ndarray) -> torch.Tensor:
    # a fresh torch storage: numpy arrays unpickled in a worker process can share one
    # buffer between empty arrays of different dtypes, which torch.save refuses
    return torch.tensor(np.ascontiguousarray(a))


@register_engine
class EmulateEngine:
    """Emulate a slow simulator (or fit data) with calibrated uncertainty, batch by batch.

    Arguments:
        simulator: ``f(**params)`` or ``f(row)`` returning a number, a 1-D array, a
            DataArray or a dict of those (see :mod:`sciml_lab.emulate.simulator`).
        bounds: ``{name: (low, high)}`` or ``(low, high, "log")`` per input.
        data: instead of a simulator: a Dataset, DataFrame, dict or ``(X, Y)``.
        inputs / outputs: column names in ``data``.
        budget: simulator runs to pay for (``extend(budget=N)`` pays for more).
            Default 10 × the number of inputs × 5 (at least 50).
        log_inputs: inputs scaled logarithmically (alternative to ``"log"`` in bounds).
        model: ``"auto"`` (a GP up to a budget of 1500 runs and 10 output columns
            after PCA, else a deep ensemble), ``"gp"`` or ``"ensemble"``.
        until: convergence target on the validation metrics, e.g. ``"nrmse<0.01"``.
        n_initial: size of the space-filling initial design (default
            ``min(10 × inputs, budget / 2)``, at least inputs + 2).
        batch_size: points per active-learning batch (default ``max(inputs, budget / 10)``).
        design: ``"sobol"``, ``"lhs"`` or ``"random"`` initial design.
        acquisition: ``"variance"`` (default: greedy max predictive variance),
            ``"ivr"`` (integrated variance reduction over a Sobol' reference cloud; GP
            only, an ensemble falls back to ``"variance"``) or ``"random"``. Measured
            on five test functions (``bench/emulate/RESULTS.md``) neither of the first
            two wins overall, so the cheaper one is the default.
        explore: share of each active-learning batch that continues the
            space-filling design instead (robustness against a misfitted model).
        n_workers: simulator calls running concurrently (threads or processes).
        pool: where simulator calls run: ``"thread"`` (default: right for simulators
            that release the GIL, e.g. numpy, torch or a subprocess), ``"process"``
            (spawned local processes, for pure-Python GIL-bound simulators; the
            simulator must be picklable by cloudpickle, which a notebook function is),
            or a ``dask.distributed.Client`` (``"dask"``: the default client). Results
            are ordered by run whatever the pool, so a seed gives the same runs.
        timeout: seconds one simulator call may take (None: no limit); a call past it
            counts as a failed run, with the timeout as its error (see
            :class:`~sciml_lab.emulate.simulator.Simulator`).
        n_components: PCA components for long vector outputs (default ``"auto"``
            when the outputs have more than 10 values: as many as leave out at most
            1e-4 of the variance, see :mod:`sciml_lab.emulate.reduce`).
        recalibrate: rescale the predictive std when validation coverage is off.
        n_sobol: base sample of the Sobol' indices (cost ``n_sobol × (inputs + 2)``
            emulator predictions per snapshot).
        model_options: settings of the model (GP: ``max_iter``, ``max_fit_points``;
            ensemble: ``n_members``, ``hidden``, ``steps``, ``lr``).
        poll: seconds a step waits for simulator calls.
        device / seed: placement of the ensemble (the GP runs on the CPU in float64
            unless ``device`` is a GPU) and reproducibility of designs and fits.

    Example:
        >>> eng = EmulateEngine(lambda a, b: a * np.sin(3 * b), {"a": (0, 1), "b": (0, 2)}, budget=30, device="cpu")
        >>> while not eng.done(): m = eng.step()
        >>> m["runs"], m["nrmse"] < 0.1  # leave-one-out
        (30.0, True)
    """

    kind = "emulate"
    budget_words = ("budget",)
    monitor = _monitor(None)

    def __init__(self, simulator: Callable | None = None, bounds: Mapping[str, Any] | None = None, *,
                 data: Any = None, inputs: Sequence[str] | None = None, outputs: Sequence[str] | None = None,
                 budget: int | None = None, log_inputs: Sequence[str] = (), model: str = "auto",
                 until: str | None = None, n_initial: int | None = None, batch_size: int | None = None,
                 design: str = "sobol", acquisition: str = "variance", n_workers: int = 4,
                 n_components: int | None = None, recalibrate: bool = True, n_sobol: int = 4096,
                 explore: float = 0.25, model_options: Mapping[str, Any] | None = None, poll: float = 0.5,
                 call: str = "auto", pool: Any = "thread", timeout: float | None = None,
                 output_name: str = "y", device: str = "auto", seed: int = 0):
        if model not in ("auto", "gp", "ensemble"):
            raise ValueError(f"model: expected 'auto', 'gp' or 'ensemble', got {model!r}")
        if design not in DESIGNS:
            raise ValueError(f"design: expected one of {', '.join(DESIGNS)}, got {design!r}")
        if not (isinstance(explore, (int, float)) and 0 <= explore <= 1):
            raise ValueError(f"explore: expected a fraction in [0, 1], got {explore!r}")
        self.explore = float(explore)
        if acquisition not in ("ivr", "variance", "random"):
            raise ValueError(f"acquisition: expected 'ivr', 'variance' or 'random', got {acquisition!r}")
        self.criteria = parse_criteria(until, known=METRICS)
        self.until = until
        self.until_floor = 0  # runs before --until may stop the job again (an extension is paid in full)
        self.monitor = _monitor(until)
        self.model_requested, self.design, self.acquisition = model, design, acquisition
        self.recalibrate, self.n_sobol, self.poll, self.seed = bool(recalibrate), int(n_sobol), float(poll), int(seed)
        self.model_options = dict(model_options or {})
        self.device_obj = resolve_device(device)
        self.device = str(self.device_obj)
        self.gen = torch.Generator().manual_seed(self.seed)
        self.n_components_requested = n_components
        self.call, self.output_name, self.n_workers = call, output_name, int(n_workers)
        self.pool = check_pool(pool)
        self.timeout = check_timeout(timeout)
        self.data_mode = data is not None
        if self.data_mode:
            if simulator is not None:
                raise ValueError("simulator/data: give a simulator or data, not both")
            x, y, names, layout = table_from_data(data, inputs, outputs)
            if bounds is None:
                lo, hi = x.min(0), x.max(0)
                hi = np.where(hi > lo, hi, lo + 1.0)
                bounds = {k: (float(a), float(b)) for k, a, b in zip(names, lo, hi)}
            self.bounds, self.log_inputs = parse_bounds_spec(bounds, log_inputs)
            if list(self.bounds) != names:
                raise ValueError(f"bounds: expected the inputs {names}, got {list(self.bounds)}")
            self.simulator = None
            self.layout: OutputLayout | None = OutputLayout(layout)
            self.X, self.Y = x, y
            self.budget = len(x)
        else:
            if simulator is None or not callable(simulator):
                raise ValueError(f"simulator: expected a callable (or data=...), got {type(simulator).__name__}")
            if bounds is None:
                raise ValueError("bounds: the simulator's input ranges are needed, e.g. bounds={'a': (0, 1)}")
            self.bounds, self.log_inputs = parse_bounds_spec(bounds, log_inputs)
            self.simulator = Simulator(simulator, list(self.bounds), n_workers=n_workers, call=call,
                                       output_name=output_name, pool=pool, timeout=timeout)
            self.layout = None
            d = len(self.bounds)
            self.X = np.zeros((0, d))
            self.Y = np.zeros((0, 0))
            self.budget = int(budget) if budget is not None else max(50, 50 * d)
        self.inputs = list(self.bounds)
        d = len(self.inputs)
        if isinstance(self.budget, bool) or self.budget < 2:
            raise ValueError(f"budget: expected an integer >= 2, got {budget!r}")
        self.n_initial = int(n_initial) if n_initial is not None else max(min(10 * d, self.budget // 2), d + 2)
        self.n_initial = min(self.n_initial, self.budget)
        self.batch_size = int(batch_size) if batch_size is not None else max(d, self.budget // 10)
        for arg, v in (("n_initial", self.n_initial), ("batch_size", self.batch_size), ("n_workers", self.n_workers)):
            if v < 1:
                raise ValueError(f"{arg}: expected a positive integer, got {v}")
        # per run: unit-cube inputs, status (0 ok, 1 failed), batch, attempts, error text
        self.U = self._to_unit(self.X) if self.data_mode else np.zeros((0, d))
        self.status = np.zeros(len(self.X), dtype=np.int8)
        self.batch_of = np.zeros(len(self.X), dtype=np.int32)
        self.attempts = np.ones(len(self.X), dtype=np.int8)
        self.errors: list[str] = [""] * len(self.X)
        self.n_batches = 0
        self.n_space_filling = 0  # points taken so far from the space-filling sequence
        self.pending: list[SimulatorRun] = []
        self._finished: dict[int, tuple[SimulatorRun, np.ndarray | None]] = {}  # done, waiting for earlier runs
        self.emulator: Emulator | None = None
        self.model = None
        self.validation_rows: list[list[float]] = []
        self.metrics: dict[str, float] = {}
        self.fitted_runs = -1  # runs at the last fit
        self.cv_mean = self.cv_std = np.zeros((0, 0))  # validation predictions per run (NaN: not validated)
        self.wall = 0.0
        self.note = ""
        self._sensitivity_cache: tuple[int, xr.Dataset] | None = None
        self._classifier: tuple[int, SuccessClassifier] | None = None
        self._failures_cache: tuple[int, xr.Dataset] | None = None

    # ------------------------------------------------------------------ helpers
    def _to_unit(self, x: np.ndarray) -> np.ndarray:
        lo = np.array([self.bounds[k][0] for k in self.inputs])
        hi = np.array([self.bounds[k][1] for k in self.inputs])
        log = np.array([k in self.log_inputs for k in self.inputs])
        lo, hi = np.where(log, np.log(np.where(log, lo, 1)), lo), np.where(log, np.log(np.where(log, hi, 1)), hi)
        xx = np.where(log[None], np.log(np.where(log[None], np.clip(x, 1e-300, None), 1)), x)
        return (xx - lo) / (hi - lo)

    def _from_unit(self, u: np.ndarray) -> np.ndarray:
        lo = np.array([self.bounds[k][0] for k in self.inputs])
        hi = np.array([self.bounds[k][1] for k in self.inputs])
        log = np.array([k in self.log_inputs for k in self.inputs])
        lo, hi = np.where(log, np.log(np.where(log, lo, 1)), lo), np.where(log, np.log(np.where(log, hi, 1)), hi)
        x = u * (hi - lo) + lo
        return np.where(log[None], np.exp(np.where(log[None], x, 0.0)), x)  # no exp of linear columns

    @property
    def n_runs(self) -> int:
        return len(self.X)

    @property
    def n_failed(self) -> int:
        return int((self.status == 1).sum())

    def _ok(self) -> np.ndarray:
        return self.status == 0

    def success_model(self) -> SuccessClassifier | None:
        """The classifier of run success over the inputs (unit cube), fitted on every run
        so far; ``None`` while no run has failed (or none has succeeded)."""
        ok = self._ok()
        if ok.all() or not ok.any():
            return None
        if self._classifier is None or self._classifier[0] != self.n_runs:
            self._classifier = (self.n_runs, SuccessClassifier(seed=self.seed).fit(self.U, ok))
        return self._classifier[1]

    def _choose_model(self) -> str:
        if self.model_requested != "auto":
            return self.model_requested
        # the exact GP's cost grows like runs^3 and its count with the latent outputs
        m = self.layout.size if self.layout is not None else 1
        latent = (m if self._n_components() is None else 1) if self.layout is not None else 1  # PCA: one shared kernel
        return "gp" if self.budget <= 1500 and latent <= 10 else "ensemble"

    def _n_components(self) -> int | str | None:
        m = self.layout.size
        if self.n_components_requested is not None:
            return int(self.n_components_requested) if self.n_components_requested < m else None
        return "auto" if m > 10 else None

    # ------------------------------------------------------------------ protocol
    def default_extend(self) -> dict[str, int]:
        """What the monitor's extend button asks for: as many runs again."""
        return {"budget": max(self.batch_size, self.budget // 2)}

    def done(self) -> bool:
        if self.data_mode:
            return self.fitted_runs == self.n_runs
        if self.pending:
            return False
        if self.fitted_runs != self.n_runs and self._ok().sum() >= 2:
            return False  # the last batch still needs its fit
        if self.n_runs and self._ok().sum() < 2:
            return False  # step() goes on, or ends the job with the reason
        if self.n_runs >= self.budget:
            return True
        return self.until_met()

    def until_met(self) -> bool:
        """Whether every ``--until`` criterion holds now and may end the run: not before an
        extension's runs are paid for (an extended run that had met its target goes on).

        Example:
            >>> import numpy as np
            >>> e = EmulateEngine(lambda a: np.sin(3 * a), {"a": (0, 1)}, budget=40, until="nrmse<0.5", device="cpu")
            >>> e.until_met()
            False
        """
        if self.n_runs < self.until_floor:
            return False
        return bool(self.criteria) and bool(self.metrics) and all(c.met(self.metrics) for c in self.criteria)

    def progress(self) -> float:
        if self.until_met():
            return 1.0
        done_runs = self.n_runs - 0.5 * len(self.pending)
        return min(1.0, max(0.0, done_runs / max(self.budget, 1)))

    def extend(self, budget: int) -> None:
        if self.data_mode:
            raise ValueError("budget: this emulator was fitted to data; there is no simulator to pay for more runs")
        if self.until_met():  # the target was what ended the run: the extension starts from here
            self.budget = self.n_runs
        self.budget += int(budget)
        self.until_floor = self.n_runs + int(budget)  # --until may stop the run again once these are paid

    def step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        try:
            if self.data_mode:
                self._refit()
                return self._live_metrics()
            self._fail_if_nothing_succeeds()  # in the step after the last run's metrics went out
            if not self.pending and self.n_runs < self.budget and (self.fitted_runs == self.n_runs or self.n_runs == 0
                                                                   or self._ok().sum() < 2):
                self._submit_batch()
            self._collect()
            if not self.pending and self.fitted_runs != self.n_runs and self._ok().sum() >= 2:
                self._refit()
            if self.done():  # free the workers (processes stay alive otherwise); extend restarts them
                self.simulator.shutdown()
            return self._live_metrics()
        finally:
            self.wall += time.perf_counter() - t0

    def _fail_if_nothing_succeeds(self) -> None:
        """Raise once the budget is spent with fewer than two successful runs (nothing
        to fit), or as soon as the initial design and as many runs again have all
        failed (no point paying for the rest)."""
        n_ok = int(self._ok().sum())
        if self.pending or self.n_runs == 0 or n_ok >= 2:
            return
        if self.n_runs < (self.budget if n_ok else min(self.budget, 2 * self.n_initial)):
            return
        self.simulator.shutdown()
        first = self.errors[int(np.flatnonzero(self.status == 1)[0])]
        if n_ok:
            raise RuntimeError(f"only 1 of {self.n_runs} simulator runs succeeded, an emulator needs 2; "
                               f"first error: {first}. Check the simulator and its bounds")
        early = "" if self.n_runs >= self.budget else (
            f" (stopped before the budget of {self.budget}: the initial design and at least as many runs again "
            "all failed)")
        raise RuntimeError(f"all {self.n_runs} simulator runs failed; first error: {first}{early}. "
                           "Check the simulator on one input by hand, and its bounds")

    def warnings(self) -> list[str]:
        """What the result's user should know, in words and numbers: failed simulator
        runs with where they failed, and a validation error carried by a single run
        (a sign that the simulator changes abruptly there, and that the error curve
        moves with that run more than with the budget). Also stored as JSON in the
        result's ``warnings`` attr.

        Example:
            >>> def sim(a):
            ...     if a > 0.75:
            ...         raise ValueError("diverged")
            ...     return a * a
            >>> eng = EmulateEngine(sim, {"a": (0, 1)}, budget=12, device="cpu", n_sobol=64, poll=0.05)
            >>> while not eng.done(): m = eng.step()
            >>> eng.warnings()[0].startswith(f"{eng.n_failed} of 12 simulator runs failed")
            True
        """
        out = []
        if self.n_failed:
            failed = np.flatnonzero(self.status == 1)
            adaptive = self.batch_of[failed] >= 1
            words = f"{self.n_failed} of {self.n_runs} simulator runs failed"
            if (self.batch_of >= 1).any():
                words += f" ({int(adaptive.sum())} of the {int((self.batch_of >= 1).sum())} after the initial design)"
            region = self._failure_region()
            if region is not None:
                share, where = region
                words += f"; estimated success region: {share:.0%} of the input box"
                if where:
                    words += f", failures where {', '.join(where)}"
            out.append(f"{words}; first error: {self.errors[int(failed[0])]}")
        dominant = self._dominant_run()
        if dominant is not None:
            i, share = dominant
            at = ", ".join(f"{k}={v:.3g}" for k, v in zip(self.inputs, self.X[i]))
            out.append(f"one run carries {share:.0%} of the squared validation error (run {i}: {at}): the simulator "
                       f"may change abruptly there; nrmse {self.metrics['nrmse']:.3g} (95% interval "
                       f"{self.metrics['nrmse_low']:.3g}-{self.metrics['nrmse_high']:.3g})")
        return out

    def _dominant_run(self, share: float = 0.5, min_runs: int = 20, min_nrmse: float = 0.01
                      ) -> tuple[int, float] | None:
        """The run and its share of the squared validation error when one run carries
        more than ``share`` of it (with at least ``min_runs`` validated runs, and an
        error worth a word: ``nrmse >= min_nrmse``; the last run of a box edge often
        carries most of a negligible error)."""
        if self.cv_mean.shape != self.Y.shape or not self.metrics or not self.metrics["nrmse"] >= min_nrmse:
            return None
        done = np.all(np.isfinite(self.cv_mean), 1) & np.all(np.isfinite(self.Y), 1)
        if done.sum() < min_runs:
            return None
        sd = self.Y[done].std(0)
        per_run = np.where(done, (((self.cv_mean - self.Y) / np.where(sd > 0, sd, 1.0)) ** 2).mean(1), 0.0)
        i = int(np.argmax(per_run))
        top = float(per_run[i] / per_run.sum()) if per_run.sum() > 0 else 0.0
        return (i, top) if top > share else None

    def _failure_region(self) -> tuple[float, list[str]] | None:
        """The classifier's success share of the box and, per input, the ranges where
        success is less likely than not (averaged over the other inputs)."""
        fs = self._failures_dataset()
        if fs is None or "p_success" not in fs:
            return None
        where = []
        for i, k in enumerate(self.inputs):
            x, p = fs["value"].values[i], fs["p_success"].values[i]
            edges = np.concatenate([[x[0]], 0.5 * (x[1:] + x[:-1]), [x[-1]]])  # between grid points
            for lo, hi in _runs_of(p < 0.5):
                a, b = f"{edges[lo]:.3g}", f"{edges[hi + 1]:.3g}"
                inner, upper = lo > 0, hi < len(x) - 1
                where.append(f"{a} < {k} < {b}" if inner and upper else f"{k} > {a}" if inner
                             else f"{k} < {b}" if upper else f"{k} anywhere")
        return float(fs.attrs["success_share"]), where

    def _live_metrics(self) -> dict[str, float]:
        out = {k: math.nan for k in METRICS}
        out.update(self.metrics)
        out["runs"], out["failed"] = float(self.n_runs), float(self.n_failed)
        return out

    # ------------------------------------------------------------------ batches
    def _submit_batch(self) -> None:
        d = len(self.inputs)
        left = self.budget - self.n_runs
        seed = self.seed * 1000 + self.n_batches
        if self.n_runs == 0 or self.emulator is None:
            n = min(self.n_initial if self.n_runs == 0 else self.batch_size, left)
            u = initial_design(n, d, self.design, seed=self.seed, start=self.n_space_filling)
            self.n_space_filling += n
        else:
            n = min(self.batch_size, left)
            if self.acquisition == "random":
                u = np.random.default_rng(seed).uniform(size=(n, d))
            elif self.emulator.device.type == "cpu":
                with small_problem_threads(self.n_runs):
                    u = self._active_batch(n, d, seed)
            else:
                u = self._active_batch(n, d, seed)
        x = self._from_unit(u)
        for i in range(len(u)):
            run = SimulatorRun(self.n_runs + len(self.pending), u[i], x[i])
            self.simulator.submit(run)
            self.pending.append(run)
        self.n_batches += 1

    def _active_batch(self, n: int, d: int, seed: int) -> np.ndarray:
        """The next ``n`` points in the unit cube: a share continues the space-filling
        design (so a model whose hyper-parameters are wrong, an input wrongly judged
        inactive say, cannot steer every new run away from where it is wrong), the
        rest goes where the emulator is least certain (``"variance"``) or where a run
        most lowers its variance integrated over the box (``"ivr"``, GP only).

        Once a run has failed, the acquisition is weighted by the probability of
        success of :meth:`success_model` and conditioned on the failed points, so the
        batch avoids the region where the simulator fails."""
        n_explore = int(math.ceil(self.explore * n)) if n > 1 else 0
        clf = self.success_model()
        u_explore = self._space_filling(n_explore, clf, seed)
        m = max(1024, min(256 * d, 4096))
        cand = torch.as_tensor(candidates(m, d, seed), dtype=torch.float64)
        x_train = torch.as_tensor(self.U[self._ok()], dtype=torch.float64)
        acquisition, reference = "variance", None
        if self.acquisition == "ivr" and self.emulator.model_kind == "gp":
            # the integral runs over an independent Sobol' cloud; its size keeps the
            # (outputs x reference x candidates) covariance block under ~256 MB
            n_latent = int(self.emulator.model.n_outputs)
            n_ref = int(min(1024, max(128, 3.2e7 // (n_latent * m))))
            acquisition = "ivr"
            reference = torch.as_tensor(candidates(n_ref, d, seed + 7919), dtype=torch.float64)
        feasibility: dict[str, Any] = {}
        if clf is not None:
            feasibility["success"] = torch.as_tensor(clf.predict(cand.numpy()))
            if reference is not None:
                feasibility["reference_success"] = torch.as_tensor(clf.predict(reference.numpy()))
        seen = torch.as_tensor(np.concatenate([self.U[self.status == 1], u_explore]), dtype=torch.float64)
        return np.concatenate([u_explore, select_batch(self.emulator.model, x_train, cand, n - n_explore,
                                                       acquisition=acquisition, reference=reference, seen=seen,
                                                       **feasibility)])

    def _space_filling(self, n: int, clf: SuccessClassifier | None, seed: int) -> np.ndarray:
        """The next ``n`` points of the space-filling sequence; once runs have failed,
        each is kept with its probability of success (a seeded draw), so the share
        thins out where the simulator fails without ever leaving a region for good."""
        d = len(self.inputs)
        if clf is None or n == 0:
            u = initial_design(n, d, "sobol", seed=self.seed, start=self.n_space_filling)
            self.n_space_filling += n
            return u
        rng = np.random.default_rng(seed)
        kept: list[np.ndarray] = []
        for _ in range(64):  # at most 64 n points looked at: then the rest are taken as they come
            u = initial_design(n, d, "sobol", seed=self.seed, start=self.n_space_filling)
            self.n_space_filling += n
            keep = rng.uniform(size=n) < clf.predict(u)
            kept.extend(u[keep])
            if len(kept) >= n:
                break
        else:
            kept.extend(u)
        return np.array(kept[:n]).reshape(n, d)

    def _collect(self) -> None:
        if not self.pending:
            return
        cf.wait([r.future for r in self.pending], timeout=self.poll)
        still = []
        finished: list[tuple[SimulatorRun, np.ndarray | None]] = []
        for run in self.pending:
            if not run.future.done():
                still.append(run)
                continue
            try:
                flat, layout = run.future.result()
                if self.layout is None:
                    for v in layout.variables:  # an output may not shadow a design variable or an input
                        while v["name"] in _RESERVED or v["name"] in self.inputs:
                            v["name"] += "_out"
                    self.layout = layout
                elif layout.to_json() != self.layout.to_json() and layout.size != self.layout.size:
                    raise ValueError(f"the simulator returned {layout.size} values here but {self.layout.size} "
                                     f"before ({layout.labels()[:4]}...)")
                finished.append((run, flat))
            except Exception as exc:  # noqa: BLE001 - a failing simulator call never stops the job
                run.errors.append(describe_error(exc))
                if run.attempts < 2:
                    self.simulator.submit(run)  # retried once
                    still.append(run)
                else:
                    finished.append((run, None))
        self.pending = still
        # rows are appended in run order, whatever order the pool finishes them in, so
        # the design (and every fit on it) does not depend on the pool or its timing
        self._finished.update({run.index: (run, flat) for run, flat in finished})
        while self.n_runs in self._finished:
            self._append_run(*self._finished.pop(self.n_runs))

    def _append_run(self, run: SimulatorRun, flat: np.ndarray | None) -> None:
        m = self.layout.size if self.layout is not None else 0
        if self.Y.shape[1] != m:  # first result fixes the width (failures before it were NaN rows)
            self.Y = np.full((len(self.Y), m), np.nan)
        row = flat if flat is not None else np.full(m, np.nan)
        self.X = np.concatenate([self.X, run.x[None]])
        self.U = np.concatenate([self.U, run.u[None]])
        self.Y = np.concatenate([self.Y, row[None]]) if m else np.zeros((len(self.X), 0))
        self.status = np.append(self.status, np.int8(0 if flat is not None else 1))
        self.batch_of = np.append(self.batch_of, np.int32(self.n_batches - 1))
        self.attempts = np.append(self.attempts, np.int8(run.attempts))
        self.errors.append(run.errors[-1] if flat is None else "")

    # ------------------------------------------------------------------ fitting
    def _new_emulator(self) -> Emulator:
        kind = self._choose_model()
        options = dict(self.model_options)
        return Emulator(self.inputs, self.bounds, self.log_inputs, self.layout, kind, self._n_components(),
                        device=self.device_obj if kind == "ensemble" or self.device_obj.type == "cuda" else "cpu",
                        **options)

    def _holdout(self) -> np.ndarray:
        # every fifth successful run validates the ensemble (fixed by run index, so a
        # run never moves between training and validation as the design grows)
        return (np.arange(self.n_runs) % 5) == 4

    def _refit(self) -> None:
        t0 = time.perf_counter()
        ok = self._ok() & np.all(np.isfinite(self.Y), axis=1) if self.Y.size else self._ok()
        if self.emulator is None:
            self.emulator = self._new_emulator()
            self.model = self.emulator.model_kind
        emu = self.emulator
        torch.manual_seed(self.seed + self.n_batches)  # ensemble initialisation, GP subsets
        validated = ok
        if emu.model_kind == "gp":
            emu.fit(self.X[ok], self.Y[ok], generator=self.gen)
            m = emu.validate(recalibrate=self.recalibrate)
        else:
            val = ok & self._holdout()
            train = ok & ~val
            if val.sum() < 2 or train.sum() < 2:
                train, val = ok, ok
            emu.fit(self.X[train], self.Y[train], generator=self.gen)
            m = emu.validate(self.X[val], self.Y[val], recalibrate=self.recalibrate)
            validated = val
        self.cv_mean = np.full_like(self.Y, np.nan)
        self.cv_std = np.full_like(self.Y, np.nan)
        self.cv_mean[validated], self.cv_std[validated] = emu.last_validation
        fit_time = time.perf_counter() - t0
        if m["scale"] != 1.0:
            self.note = (f"predictive std recalibrated by x{m['scale']:.3g}: raw 95% coverage was "
                         f"{m['raw_coverage']:.2f} on {'cross-validated' if emu.model_kind == 'gp' else 'held-out'} runs")
        else:
            self.note = ""
        self.fitted_runs = self.n_runs
        self.metrics = {"nrmse": m["nrmse"], "nrmse_low": m["nrmse_low"], "nrmse_high": m["nrmse_high"],
                        "coverage": m["coverage"], "nll": m["nll"], "raw_coverage": m["raw_coverage"],
                        "calibration_scale": m["scale"], "fit_time": fit_time}
        self.validation_rows.append([self.n_runs, int(ok.sum()), self.n_failed, m["nrmse"], m["coverage"], m["nll"],
                                     m["raw_coverage"], m["scale"], fit_time, self.wall + fit_time,
                                     m["nrmse_low"], m["nrmse_high"]])
        self._sensitivity_cache = None

    # ------------------------------------------------------------------ result
    def _design_dataset(self) -> xr.Dataset:
        ds = xr.Dataset(
            {"inputs": (("run", "input"), self.X),
             "failed": ("run", self.status.astype(bool)),
             "error": ("run", np.array(self.errors, dtype=object).astype(str) if self.errors else np.zeros(0, str)),
             "batch": ("run", self.batch_of), "attempts": ("run", self.attempts)},
            coords={"run": np.arange(self.n_runs), "input": self.inputs},
        )
        if self.layout is not None and self.Y.shape[1] == self.layout.size:
            new = dict(self.layout.variables_of(self.Y, ("run",)))  # added in one merge (one per variable is O(m^2))
            if self.cv_mean.shape == self.Y.shape:  # rows appended since the last fit are not validated yet
                cv_mean, cv_std = self.cv_mean, self.cv_std
            else:
                cv_mean = np.full_like(self.Y, np.nan)
                cv_std = np.full_like(self.Y, np.nan)
                k = min(len(self.cv_mean), len(self.Y))
                if self.cv_mean.shape[1:] == self.Y.shape[1:]:
                    cv_mean[:k], cv_std[:k] = self.cv_mean[:k], self.cv_std[:k]
            new.update({f"{name}_cv_mean": v for name, v in self.layout.variables_of(cv_mean, ("run",)).items()})
            new.update({f"{name}_cv_std": v for name, v in self.layout.variables_of(cv_std, ("run",)).items()})
            ds = ds.assign(new)
            for name in (v["name"] for v in self.layout.variables):
                ds[f"{name}_cv_mean"].attrs["long_name"] = f"validation prediction of {name} (LOO or held out)"
            for dim, c in self.layout.coords().items():
                ds = ds.assign_coords({dim: c})
        ds["inputs"].attrs["long_name"] = "simulator inputs (user units)"
        ds["error"].attrs["long_name"] = "error of the last attempt of a failed run"
        for k in self.inputs:
            ds.attrs[f"bounds_{k}"] = list(self.bounds[k])
        return ds

    def _validation_dataset(self) -> xr.Dataset:
        rows = np.array(self.validation_rows, dtype=float).reshape(-1, len(_VALIDATION_VARS))
        ds = xr.Dataset({k: ("budget", rows[:, i]) for i, k in enumerate(_VALIDATION_VARS[1:], start=1)},
                        coords={"budget": rows[:, 0].astype(int)})
        ds["budget"].attrs["long_name"] = "simulator runs (including failed ones)"
        ds["nrmse"].attrs["long_name"] = "normalised RMSE (RMSE / std of the outputs)"
        for k, side in (("nrmse_low", "lower"), ("nrmse_high", "upper")):
            ds[k].attrs["long_name"] = f"{side} end of the 95% bootstrap interval of nrmse (resampled validation runs)"
        ds["coverage"].attrs["long_name"] = "95% predictive interval coverage (after recalibration, cross-fitted)"
        ds["nll"].attrs["long_name"] = "Gaussian negative log-likelihood per value (in output std units)"
        ds["fit_time"].attrs["units"] = ds["wall_time"].attrs["units"] = "s"
        ds.attrs["method"] = (getattr(self.emulator, "validation_method", "exact leave-one-out cross-validation")
                              if self.model == "gp" else "held-out runs (every fifth run)")
        return ds

    def _failures_dataset(self) -> xr.Dataset | None:
        """The failed runs (inputs, error) and the success classifier's probability per
        input, averaged over the others (``None`` while no run has failed)."""
        if not self.n_failed:
            return None
        cache = self._failures_cache
        if cache is not None and cache[0] == self.n_runs:
            return cache[1]
        failed = np.flatnonzero(self.status == 1)
        ds = xr.Dataset({"inputs": (("failure", "input"), self.X[failed]),
                         "run": ("failure", failed),
                         "error": ("failure", np.array([self.errors[i] for i in failed], dtype=str))},
                        coords={"input": self.inputs})
        ds["inputs"].attrs["long_name"] = "inputs of the failed runs (user units)"
        ds["error"].attrs["long_name"] = "error of the last attempt"
        ds.attrs.update(n_failed=int(self.n_failed), n_runs=int(self.n_runs))
        clf = self.success_model()
        if clf is not None:
            d = len(self.inputs)
            grid, p = clf.marginals(d, n_grid=41, seed=self.seed)
            u = np.full((d, len(grid), d), 0.5)
            u[np.arange(d), :, np.arange(d)] = grid
            value = self._from_unit(u.reshape(-1, d)).reshape(d, len(grid), d)[np.arange(d), :, np.arange(d)]
            ds["p_success"] = (("input", "grid"), p)
            ds["p_success"].attrs["long_name"] = "probability that a run succeeds, averaged over the other inputs"
            ds = ds.assign_coords(value=(("input", "grid"), value))
            cloud = candidates(4096, d, self.seed + 104729)
            ds.attrs.update(
                success_share=float(clf.predict(cloud).mean()),
                method=("Gaussian-process classifier (Matérn-5/2, ARD, Laplace approximation, probit predictive) "
                        "fitted on the success of every run; it weighs the active learning"),
                lengthscale=json.dumps(dict(zip(self.inputs, clf.lengthscale.round(4).tolist()))),
            )
        self._failures_cache = (self.n_runs, ds)
        return ds

    def _predict_unit_np(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.emulator.predict_unit(torch.as_tensor(u, dtype=torch.float64))
        return mean.numpy(), std.numpy()

    def live_view(self) -> dict[str, Any]:
        """The live monitor's curve (runtime protocol): the emulator along its widest-ranging
        input (the one whose slice varies most), the others at the centre of the box, with
        the 95 % band; recomputed only after a refit."""
        if self.emulator is None or self.emulator.model is None or self.fitted_runs < 0:
            return {}
        cache = getattr(self, "_live_view_cache", None)
        if cache is not None and cache[0] == self.fitted_runs:
            return cache[1]
        sl = self._slices_dataset(n_grid=41)
        mean, std = sl["mean"].values, sl["std"].values
        mean = mean.reshape(mean.shape[0], mean.shape[1], -1)[..., 0]  # the first output value
        std = std.reshape(std.shape[0], std.shape[1], -1)[..., 0]
        i = int(np.argmax(np.ptp(mean, axis=1)))
        x = sl["value"].values[i]
        label = self.layout.labels()[0]
        view = {"plots": [{
            "title": f"{label} along {self.inputs[i]} ({self.fitted_runs} runs)",
            "x": x.tolist(), "x_label": self.inputs[i],
            "lines": {"emulator mean": mean[i].tolist()},
            "band": {"lower": (mean[i] - 1.96 * std[i]).tolist(), "upper": (mean[i] + 1.96 * std[i]).tolist(),
                     "label": "95 %"},
        }]}
        self._live_view_cache = (self.fitted_runs, view)
        return view

    def _sensitivity_dataset(self) -> xr.Dataset:
        if self._sensitivity_cache is not None and self._sensitivity_cache[0] == self.fitted_runs:
            return self._sensitivity_cache[1]
        d = len(self.inputs)
        data: dict[str, Any] = {}
        names = [v["name"] for v in self.layout.variables]
        per_var = []
        # joint posterior draws (whole sample functions) on the first n_joint Saltelli rows:
        # an exact Cholesky of n_joint * (d + 2) points per latent output, kept to ~2048
        # points in all, drawn once and shared by the output variables
        n_latent = int(getattr(self.emulator.model, "n_outputs", 1))
        n_joint = max(32, 2048 // ((d + 2) * n_latent))
        cache: dict[str, np.ndarray] = {}

        def joint_draws(u: np.ndarray) -> np.ndarray:
            if "u" not in cache or not np.array_equal(cache["u"], u):
                gen = torch.Generator().manual_seed(self.seed)
                cache["u"] = u
                cache["draws"] = self.emulator.sample_unit(torch.as_tensor(u, dtype=torch.float64), 100, gen).numpy()
            return cache["draws"]

        def predictions(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # the same Saltelli points for every output variable: predicted once
            if "pu" not in cache or not np.array_equal(cache["pu"], u):
                cache["pu"], cache["pred"] = u, self._predict_unit_np(u)
            return cache["pred"]

        for v, sl in zip(self.layout.variables, self.layout.slices()):
            def predict(u, sl=sl):
                mean, std = predictions(u)
                return mean[:, sl], std[:, sl]

            sample = None
            if self.emulator.model_kind == "gp":
                def sample(u, sl=sl):
                    return joint_draws(u)[..., sl]
            per_var.append(sobol_indices(predict, d, n=self.n_sobol, seed=self.seed, sample=sample, n_joint=n_joint))
        single = len(per_var) == 1
        for key in ("first_order", "total", "first_order_low", "first_order_high", "total_low", "total_high"):
            arr = np.stack([p[key] for p in per_var])
            data[key] = (("input",), arr[0]) if single else (("output", "input"), arr)
        coords = {"input": self.inputs}
        if not single:
            coords["output"] = names
        ds = xr.Dataset(data, coords=coords)
        ds["first_order"].attrs["long_name"] = "first-order Sobol index"
        ds["total"].attrs["long_name"] = "total Sobol index"
        ds.attrs.update(method="Saltelli (first order) and Jansen (total) estimators on the emulator mean",
                        interval=("95%: bootstrap over the base sample, combined in quadrature with the spread over "
                                  + ("100 joint GP posterior sample functions" if self.emulator.model_kind == "gp"
                                     else "perturbations of the ensemble mean by its predictive std")),
                        n_base=self.n_sobol, output=names[0] if single else "")
        self._sensitivity_cache = (self.fitted_runs, ds)
        return ds

    def _slices_dataset(self, n_grid: int = 41) -> xr.Dataset:
        """Partial-dependence slices: each input swept with the others at the box centre."""
        d = len(self.inputs)
        grid = np.linspace(0, 1, n_grid)
        u = np.full((d, n_grid, d), 0.5)
        for i in range(d):
            u[i, :, i] = grid
        mean, std = self._predict_unit_np(u.reshape(-1, d))
        value = self._from_unit(u.reshape(-1, d)).reshape(d, n_grid, d)[np.arange(d), :, np.arange(d)]
        data = {}
        if len(self.layout.variables) == 1:
            var = self.layout.variables[0]
            dims = ("input", "grid", *var["dims"])
            shape = (d, n_grid, *var["shape"])
            data = {"mean": (dims, mean.reshape(shape)), "std": (dims, std.reshape(shape))}
            coords = {d_: c for d_, c in var["coords"].items()}
        else:
            data = {"mean": (("input", "grid", "output"), mean.reshape(d, n_grid, -1)),
                    "std": (("input", "grid", "output"), std.reshape(d, n_grid, -1))}
            coords = {"output": self.layout.labels()}
        coords.update({"input": self.inputs, "grid": np.arange(n_grid), "value": (("input", "grid"), value)})
        ds = xr.Dataset(data, coords=coords)
        ds.attrs["reference_point"] = json.dumps(dict(zip(self.inputs, self._from_unit(np.full((1, d), 0.5))[0].tolist())))
        return ds

    def snapshot(self) -> xr.DataTree:
        groups: dict[str, xr.Dataset] = {"/design": self._design_dataset(), "/validation": self._validation_dataset()}
        failures_ds = self._failures_dataset()
        if failures_ds is not None:
            groups["/failures"] = failures_ds
        if self.emulator is not None and self.emulator.model is not None and self.fitted_runs >= 0:
            with small_problem_threads(self.n_runs if self.emulator.device.type == "cpu" else 10 ** 9):
                groups["/sensitivity"] = self._sensitivity_dataset()
                groups["/slices"] = self._slices_dataset()
        tree = xr.DataTree.from_dict(groups)
        failures = [{"run": int(i), "inputs": dict(zip(self.inputs, self.X[i].tolist())), "error": self.errors[i]}
                    for i in np.flatnonzero(self.status == 1)[:100]]
        tree.attrs.update(
            inputs=json.dumps(self.inputs), outputs=json.dumps(self.layout.to_json() if self.layout else []),
            bounds=json.dumps(self.bounds), log_inputs=json.dumps(self.log_inputs),
            model=self.model or self._choose_model(), budget=int(self.budget), n_runs=int(self.n_runs),
            n_failed=int(self.n_failed), failures=json.dumps(failures), note=self.note,
            warnings=json.dumps(self.warnings()),
            calibration_scale=float(self.emulator.scale) if self.emulator is not None else 1.0,
            emulator_config=json.dumps(self.emulator.config()) if self.emulator is not None else "",
        )
        return tree

    # ------------------------------------------------------------------ emulator access
    def get_emulator(self) -> Emulator:
        """The fitted :class:`Emulator` (a torch module)."""
        if self.emulator is None or self.emulator.model is None:
            raise RuntimeError("no emulator yet: it is fitted after the first batch of runs")
        return self.emulator

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        # runs in flight are not saved: after a resume they are chosen again
        return {
            "version": 1, "gen": self.gen.get_state(), "X": _copy(self.X), "U": _copy(self.U),
            "Y": _copy(self.Y), "status": _copy(self.status),
            "batch_of": _copy(self.batch_of), "attempts": _copy(self.attempts),
            "errors": list(self.errors), "n_batches": int(self.n_batches), "n_space_filling": int(self.n_space_filling), "budget": int(self.budget),
            "until_floor": int(self.until_floor),
            "layout": json.dumps(self.layout.to_json()) if self.layout is not None else "",
            "validation_rows": torch.tensor(self.validation_rows, dtype=torch.float64).reshape(-1, len(_VALIDATION_VARS)),
            "cv_mean": _copy(self.cv_mean), "cv_std": _copy(self.cv_std),
            "metrics": dict(self.metrics), "fitted_runs": int(self.fitted_runs), "wall": float(self.wall),
            "note": self.note, "model": self.model or "",
            "emulator_config": json.dumps(self.emulator.config()) if self.emulator is not None else "",
            "emulator": self.emulator.tensors() if self.emulator is not None else {},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self.X, self.U, self.Y = state["X"].numpy(), state["U"].numpy(), state["Y"].numpy()
        self.status, self.batch_of = state["status"].numpy().astype(np.int8), state["batch_of"].numpy().astype(np.int32)
        self.attempts = state["attempts"].numpy().astype(np.int8)
        self.errors = [str(e) for e in state["errors"]]
        self.n_batches, self.budget = int(state["n_batches"]), int(state["budget"])
        self.until_floor = int(state.get("until_floor", 0))  # older checkpoints have none
        self.n_space_filling = int(state["n_space_filling"])
        self.layout = OutputLayout(json.loads(state["layout"])) if state["layout"] else None
        rows = state["validation_rows"]
        missing = len(_VALIDATION_VARS) - rows.shape[1]  # a checkpoint from before the interval columns
        self.validation_rows = torch.cat([rows, torch.full((len(rows), missing), math.nan, dtype=rows.dtype)],
                                         1).tolist()
        self.metrics = {k: float(v) for k, v in state["metrics"].items()}
        self.cv_mean, self.cv_std = state["cv_mean"].numpy(), state["cv_std"].numpy()
        self.fitted_runs, self.wall, self.note = int(state["fitted_runs"]), float(state["wall"]), str(state["note"])
        self.model = state["model"] or None
        self.pending, self._finished = [], {}
        self.emulator = None
        if state["emulator_config"]:
            dev = self.device_obj if self.model == "ensemble" or self.device_obj.type == "cuda" else "cpu"
            self.emulator = Emulator.from_parts(json.loads(state["emulator_config"]), state["emulator"], device=dev)
            if self.emulator.model_kind == "gp":
                self.emulator._train_y = torch.as_tensor(self.Y[self._ok() & np.all(np.isfinite(self.Y), 1)])
        self._sensitivity_cache = None
        self._classifier = self._failures_cache = None

    def config(self) -> dict[str, Any]:
        cfg = {
            "bounds": {k: list(v) for k, v in self.bounds.items()}, "log_inputs": self.log_inputs,
            "budget": int(self.budget), "model": self.model_requested, "until": self.until,
            "n_initial": self.n_initial, "batch_size": self.batch_size, "design": self.design,
            "acquisition": self.acquisition, "explore": self.explore, "n_workers": self.n_workers, "pool": self.pool, "timeout": self.timeout, "n_components": self.n_components_requested,
            "recalibrate": self.recalibrate, "n_sobol": self.n_sobol, "model_options": self.model_options,
            "poll": self.poll, "call": self.call, "output_name": self.output_name, "device": self.device,
            "seed": self.seed, "data_mode": self.data_mode,
        }
        if self.data_mode:
            cfg["inputs"] = self.inputs
            cfg["outputs"] = [v["name"] for v in self.layout.variables]
        return json.loads(json.dumps(cfg, default=str))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "EmulateEngine":
        """Rebuild from :meth:`config`; pass ``simulator=f`` again (or ``data=...`` for a
        data fit: without it the checkpoint's runs are the data).

        Example:
            >>> e = EmulateEngine(lambda a: a ** 2, {"a": (0, 1)}, budget=10, device="cpu")
            >>> EmulateEngine.from_config(e.config(), simulator=lambda a: a ** 2).budget
            10
        """
        cfg = dict(config)
        data_mode = cfg.pop("data_mode", False)
        cfg["bounds"] = {k: tuple(v) for k, v in cfg["bounds"].items()}
        if cfg.get("device") not in (None, "auto", "cpu") and not torch.cuda.is_available():
            cfg["device"] = "cpu"
        if data_mode:
            data = objects.get("data")
            inputs, outputs = cfg.pop("inputs"), cfg.pop("outputs")
            if data is None:  # placeholder rows: load_state_dict brings back the stored runs
                data = (np.linspace(0, 1, 2)[:, None].repeat(len(inputs), 1), np.zeros((2, len(outputs))))
            return cls(data=data, inputs=inputs, outputs=outputs, **cfg)
        sim = objects.get("simulator")
        if sim is None or not callable(sim):
            raise TypeError("emulate: reopening this run needs its simulator: pass simulator=<function>, "
                            "e.g. sciml_lab.open(path, simulator=f)")
        return cls(sim, **cfg)

    def __del__(self) -> None:  # pragma: no cover - best effort
        sim = getattr(self, "simulator", None)
        if sim is not None:
            sim.shutdown()

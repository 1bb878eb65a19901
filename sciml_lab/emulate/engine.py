"""The emulator engine: design, simulator runs, fitting and validation as a live job.

A run alternates *batches*: choose points (:mod:`~sciml_lab.emulate.batches`: a
space-filling initial design, then active learning), run the simulator on them over
a pool of workers (threads, processes or a Dask client), refit and validate the
emulator (:mod:`~sciml_lab.emulate.validation`) and record normalised RMSE, 95 %
coverage and NLL against the number of runs. A ``step`` waits at most ``poll``
seconds for simulator calls, so a slow simulator never blocks a stop request; the
batch's refit happens in the step that collects its last run. Where the simulator
fails, a classifier of run success weighs the active learning away from the failing
region; a job none of whose runs succeeds fails with the first error, after its
budget or after the initial design and as many runs again, whichever comes first.
With data instead of a simulator the engine fits once and validates.

This module adapts the engine protocol to those parts, plus the settings
(:mod:`~sciml_lab.emulate.settings`), the run table (:mod:`~sciml_lab.emulate.runs`)
and the result (:mod:`~sciml_lab.emulate.results`, :mod:`~sciml_lab.emulate.surfaces`).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable, Mapping

import numpy as np
import xarray as xr

from ..kit.budget import Budget
from ..kit.parts import Of
from ..kit.device import restore_device
from ..kit.protocol import EngineBase, parse_criteria
from .batches import Design, InFlight
from .emulator import Emulator, OutputLayout
from .feasibility import SuccessClassifier
from .results import Results
from .runs import Box, Runs, data_settings, table_from_data, upgrade_checkpoint
from .settings import METRICS, EmulateSettings, monitor_spec, parse_bounds_spec
from .simulator import Simulator
from .validation import Fit, choose_model

__all__ = ["EmulateEngine", "METRICS", "parse_bounds_spec", "table_from_data"]


class EmulateEngine(EngineBase):
    """Emulate a slow simulator (or fit data) with calibrated uncertainty, batch by batch.

    Arguments:
        simulator: ``f(**params)`` or ``f(row)`` returning a number, a 1-D array, a
            DataArray or a dict of those (see :mod:`sciml_lab.emulate.simulator`).
        bounds: ``{name: (low, high)}`` or ``(low, high, "log")`` per input.
        data: instead of a simulator: a Dataset, DataFrame, dict or ``(X, Y)``.
        options: the settings, as keywords (``budget``, ``until``, ``model``, ``n_initial``,
            ``batch_size``, ``acquisition``, ``pool``, ``timeout``, ``seed``...): see
            :class:`~sciml_lab.emulate.settings.EmulateSettings`, which documents each.

    Example:
        >>> eng = EmulateEngine(lambda a, b: a * np.sin(3 * b), {"a": (0, 1), "b": (0, 2)}, budget=30, device="cpu")
        >>> while not eng.done(): m = eng.step()
        >>> m["runs"], m["nrmse"] < 0.1  # leave-one-out
        (30.0, True)
    """

    kind = "emulate"
    budget_words = ("budget",)
    monitor = monitor_spec(None)

    X, U, Y, status, batch_of, attempts, errors, layout = (Of("runs") for _ in range(8))
    n_runs, n_failed = Of("runs", "n"), Of("runs", "n_failed")
    bounds, log_inputs, inputs = Of("box"), Of("box"), Of("box")
    n_initial, batch_size, seed, device = Of("settings"), Of("settings"), Of("settings"), Of("settings")
    emulator, metrics, model, wall = Of("fit"), Of("fit"), Of("fit"), Of("fit")
    pending = Of("in_flight")

    def __init__(self, simulator: Callable | None = None, bounds: Mapping[str, Any] | None = None, *,
                 data: Any = None, **options: Any):
        s = EmulateSettings(bounds=bounds, **options)
        self.data_mode = data is not None
        if self.data_mode:
            if simulator is not None:
                raise ValueError("simulator/data: give a simulator or data, not both")
            s, (x, y, layout) = data_settings(s, data)
        else:
            if simulator is None or not callable(simulator):
                raise ValueError(f"simulator: expected a callable (or data=...), got {type(simulator).__name__}")
            if s.bounds is None:
                raise ValueError("bounds: the simulator's input ranges are needed, e.g. bounds={'a': (0, 1)}")
            s = s.resolve(n_rows=None)
        self.settings, self.box = s, Box(s.bounds, s.log_inputs)
        self.runs = Runs.of(x, self.box.to_unit(x), y, layout) if self.data_mode else Runs.empty(len(s.bounds))
        self.quota = Budget("runs", total=s.budget, criteria=parse_criteria(s.until, known=METRICS),
                            spent=self.runs.n)
        self.criteria, self.monitor = self.quota.criteria, monitor_spec(s.until)
        self.design, self.fit = Design(), Fit.new(s.seed)
        self.results = Results(s, self.box, self.runs, self.fit)
        self.simulator = None if self.data_mode else Simulator(
            simulator, self.box.inputs, n_workers=s.n_workers, call=s.call, output_name=s.output_name,
            pool=options.get("pool", "thread"), timeout=s.timeout)  # the pool as given: a dask Client itself
        self.in_flight = InFlight(self.simulator, s.poll)

    @property
    def budget(self) -> int:
        """Simulator runs paid for (the data's rows when fitting data); settable."""
        return self.quota.total

    @budget.setter
    def budget(self, n: int) -> None:
        self.quota.total = int(n)

    def success_model(self) -> SuccessClassifier | None:
        """The classifier of run success over the inputs (unit cube), fitted on every run
        so far; ``None`` while no run has failed (or none has succeeded)."""
        return self.runs.success_model(self.settings.seed)

    def get_emulator(self) -> Emulator:
        """The fitted :class:`Emulator` (a torch module)."""
        if self.fit.emulator is None or self.fit.emulator.model is None:
            raise RuntimeError("no emulator yet: it is fitted after the first batch of runs")
        return self.fit.emulator

    def focus_on(self, points: Any) -> None:
        """Send the next active-learning batches among ``points`` instead of the whole box:
        where these points are and the emulator is least certain (e.g. posterior draws,
        to refine the emulator where a posterior puts its mass). ``points``: an array
        ``(n, inputs)`` in user units or a dict of equal-length arrays by input name;
        points outside the box are moved onto it. ``None`` forgets the focus.

        Example:
            >>> eng = EmulateEngine(lambda a: np.sin(6 * a), {"a": (0, 1)}, budget=12, n_initial=6,
            ...                     batch_size=6, device="cpu", n_sobol=64, poll=0.05)
            >>> while not eng.done(): _ = eng.step()
            >>> eng.focus_on({"a": np.random.default_rng(0).uniform(0.4, 0.5, 200)}); eng.extend(budget=6)
            >>> while not eng.done(): _ = eng.step()
            >>> bool(((eng.X[12:, 0] >= 0.4) & (eng.X[12:, 0] <= 0.5)).all())
            True
        """
        if points is None:
            self.design.focus = None
            return
        if isinstance(points, Mapping):
            missing = [k for k in self.box.inputs if k not in points]
            if missing:
                raise ValueError(f"points: the inputs {missing} are missing; expected arrays for {self.box.inputs}")
            points = np.stack([np.asarray(points[k], dtype=float).reshape(-1) for k in self.box.inputs], -1)
        x = np.asarray(points, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(self.box.inputs) or len(x) == 0 or not np.isfinite(x).all():
            raise ValueError(f"points: expected finite values of shape (n >= 1, {len(self.box.inputs)}) "
                             f"for the inputs {self.box.inputs}, got shape {x.shape}")
        self.design.focus = np.clip(self.box.to_unit(x), 0.0, 1.0)

    # ------------------------------------------------------------------ protocol
    def default_extend(self) -> dict[str, int]:
        """What the monitor's extend button asks for: half as many runs again (at least a batch).

        Example:
            >>> EmulateEngine(lambda a: a, {"a": (0, 1)}, budget=40, device="cpu").default_extend()
            {'budget': 20}
        """
        return {"budget": max(self.settings.batch_size, self.quota.total // 2)}

    def done(self) -> bool:
        """The budget is spent or the ``until`` target met, with every run collected and
        fitted (a data fit: once fitted).

        Example:
            >>> eng = EmulateEngine(data=(np.linspace(0, 1, 6), np.linspace(0, 1, 6) ** 2), device="cpu")
            >>> eng.done(), eng.step()["runs"], eng.done()
            (False, 6.0, True)
        """
        if self.data_mode:
            return self.fit.fitted_runs == self.runs.n
        n_ok = int(self.runs.ok().sum())
        if self.in_flight.pending or (self.fit.fitted_runs != self.runs.n and n_ok >= 2):
            return False  # runs in flight, or the last batch still needs its fit
        if self.runs.n and n_ok < 2:
            return False  # step() goes on, or ends the job with the reason
        return self.quota.done(self.fit.metrics)

    def progress(self) -> float:
        """Runs done (half a run for each in flight) over the budget; 1 once the target is met.

        Example:
            >>> EmulateEngine(lambda a: a, {"a": (0, 1)}, budget=10, device="cpu").progress()
            0.0
        """
        if self.quota.target_met(self.fit.metrics):
            return 1.0
        return self.quota.progress(-0.5 * len(self.in_flight.pending))

    def extend(self, budget: int) -> None:
        """Pay for ``budget`` more simulator runs (the kit's rule, :mod:`sciml_lab.kit.budget`:
        a run that met its ``until`` target continues from where it is, and the target
        may end it again only once these runs are paid for).

        Example:
            >>> eng = EmulateEngine(lambda a: a, {"a": (0, 1)}, budget=10, device="cpu")
            >>> eng.extend(budget=5); eng.budget
            15
        """
        if self.data_mode:
            raise ValueError("budget: this emulator was fitted to data; there is no simulator to pay for more runs")
        self.quota.extend(budget, ended=self.quota.done(self.fit.metrics))

    def step(self) -> dict[str, float]:
        """Submit the next batch when the last one is fitted, collect finished runs (waiting
        at most ``poll`` seconds), refit once a batch is complete; returns live metrics.

        Example:
            >>> eng = EmulateEngine(data=(np.linspace(0, 1, 6), np.linspace(0, 1, 6) ** 2), device="cpu")
            >>> m = eng.step(); m["runs"], m["failed"], m["nrmse"] < 0.1
            (6.0, 0.0, True)
        """
        t0 = time.perf_counter()
        try:
            if self.data_mode:
                self._refit()
                return self._live_metrics()
            self._fail_if_nothing_succeeds()  # in the step after the last run's metrics went out
            runs, fitted = self.runs, self.fit.fitted_runs
            if not self.in_flight.pending and runs.n < self.quota.total and (
                    fitted == runs.n or runs.n == 0 or runs.ok().sum() < 2):
                u = self.design.next_points(self.settings, runs, self.fit.emulator, self.quota.total - runs.n)
                self.in_flight.submit(u, self.box, first=runs.n)
            self.in_flight.collect(runs, self.box.inputs, batch=self.design.n_batches - 1)
            self.quota.spent = runs.n
            if not self.in_flight.pending and self.fit.fitted_runs != runs.n and runs.ok().sum() >= 2:
                self._refit()
            if self.done():  # free the workers (processes stay alive otherwise); extend restarts them
                self.simulator.shutdown()
            return self._live_metrics()
        finally:
            self.fit.wall += time.perf_counter() - t0

    def _refit(self) -> None:
        self.fit.refit(self.settings, self.box, self.runs, self.design.n_batches, self.quota.total)
        self.results.surfaces.forget()

    def _live_metrics(self) -> dict[str, float]:
        out = {k: math.nan for k in METRICS}
        out.update(self.fit.metrics)
        out["runs"], out["failed"] = float(self.runs.n), float(self.runs.n_failed)
        return out

    def _fail_if_nothing_succeeds(self) -> None:
        reason = None if self.in_flight.pending else self.runs.why_nothing_fits(self.quota.total,
                                                                               self.settings.n_initial)
        if reason is not None:
            self.simulator.shutdown()
            raise RuntimeError(reason)

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
        return self.results.warnings()

    def live_view(self) -> dict[str, Any]:
        """The live monitor's curve (runtime protocol): the emulator along its widest-ranging
        input, the others at the centre of the box, with the 95 % band; recomputed only
        after a refit (see :meth:`~sciml_lab.emulate.surfaces.Surfaces.live_view`).

        Example:
            >>> eng = EmulateEngine(data=(np.linspace(0, 1, 6), np.linspace(0, 1, 6) ** 2), device="cpu")
            >>> eng.live_view(); _ = eng.step(); eng.live_view()["plots"][0]["x_label"]
            {}
            'x0'
        """
        return self.results.surfaces.live_view()

    def snapshot(self) -> xr.DataTree:
        """The result so far: ``/design``, ``/validation``, ``/failures`` (once a run has
        failed), ``/sensitivity`` and ``/slices`` (once fitted).

        Example:
            >>> eng = EmulateEngine(data=(np.linspace(0, 1, 6), np.linspace(0, 1, 6) ** 2), device="cpu", n_sobol=64)
            >>> _ = eng.step(); sorted(eng.snapshot().children)
            ['design', 'sensitivity', 'slices', 'validation']
        """
        tree = xr.DataTree.from_dict(self.results.groups())
        model = self.fit.model or choose_model(self.settings, self.runs.layout, self.quota.total)
        tree.attrs.update(self.results.attrs(model, self.quota.total))
        return tree

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """A checkpoint: the run table, the design counters, the fits and the emulator's
        weights, the budget (runs in flight are not saved: after a resume they are chosen
        again).

        Example:
            >>> eng = EmulateEngine(data=(np.linspace(0, 1, 6), np.linspace(0, 1, 6) ** 2), device="cpu")
            >>> _ = eng.step(); state = eng.state_dict(); state["X"].shape, state["budget"]["total"]
            (torch.Size([6, 1]), 6)
        """
        return {"version": 2, **self.runs.state_dict(), **self.design.state_dict(), **self.fit.state_dict(),
                "budget": self.quota.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a checkpoint of :meth:`state_dict` (or of the first layout, see :func:`~sciml_lab.emulate.runs.upgrade_checkpoint`).

        Example:
            >>> data = (np.linspace(0, 1, 6), np.linspace(0, 1, 6) ** 2)
            >>> eng = EmulateEngine(data=data, device="cpu"); _ = eng.step()
            >>> again = EmulateEngine(data=data, device="cpu"); again.load_state_dict(eng.state_dict())
            >>> again.done(), again.metrics == eng.metrics
            (True, True)
        """
        state = upgrade_checkpoint(state)
        self.runs.load_state_dict(state)
        self.design.load_state_dict(state)
        self.fit.load(state, self.settings, self.runs)
        self.quota.load_state_dict(state["budget"])
        self.quota.spent = self.runs.n
        self.in_flight.clear()
        self.results.forget()

    def config(self) -> dict[str, Any]:
        """The settings as JSON data (``job.json``), and whether the run fits data.

        Example:
            >>> cfg = EmulateEngine(lambda a: a, {"a": (0, 1)}, budget=10, device="cpu").config()
            >>> cfg["bounds"], cfg["budget"], cfg["n_initial"], cfg["data_mode"]
            ({'a': [0.0, 1.0]}, 10, 5, False)
        """
        return json.loads(json.dumps({**self.settings.config(), "data_mode": self.data_mode}, default=str))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "EmulateEngine":
        """Rebuild from :meth:`config`; pass ``simulator=f`` again (or ``data=...`` for a
        data fit: without it the checkpoint's runs are the data).

        Example:
            >>> e = EmulateEngine(lambda a: a ** 2, {"a": (0, 1)}, budget=10, device="cpu")
            >>> EmulateEngine.from_config(e.config(), simulator=lambda a: a ** 2).budget
            10
        """
        s = EmulateSettings.from_config(config, device=restore_device(config.get("device")))
        options = {k: getattr(s, k) for k in s.names() if k != "bounds"}
        if config.get("data_mode", False):
            data = objects.get("data")
            if data is None:  # placeholder rows: load_state_dict brings back the stored runs
                data = (np.linspace(0, 1, 2)[:, None].repeat(len(s.inputs), 1), np.zeros((2, len(s.outputs))))
            return cls(None, s.bounds, data=data, **options)
        sim = objects.get("simulator")
        if sim is None or not callable(sim):
            raise TypeError("emulate: reopening this run needs its simulator: pass simulator=<function>, "
                            "e.g. sciml_lab.open(path, simulator=f)")
        return cls(sim, s.bounds, **options)

    def __del__(self) -> None:  # pragma: no cover - best effort
        sim = getattr(self, "simulator", None)
        if sim is not None:
            sim.shutdown()

"""The symbolic regression engine: an island-model evolutionary search, batched on tensors.

Each :meth:`SymRegEngine.step` is one generation over all islands
(:mod:`~sciml_lab.symreg.population`); the hall of fame keeps the best expression of
each complexity, its non-dominated members are the Pareto front, from which a model
is selected as in PySR (:mod:`~sciml_lab.symreg.front`). This module adapts the search
to the engine protocol: budget, ``until`` and extend (one rule, :class:`~sciml_lab.kit.budget.Budget`),
checkpoints (:mod:`~sciml_lab.symreg.state`), settings (:mod:`~sciml_lab.symreg.settings`)
and results (:mod:`~sciml_lab.symreg.results`).

References:
    Cranmer, "Interpretable Machine Learning for Science with PySR and
    SymbolicRegression.jl" (2023), https://arxiv.org/abs/2305.01582;
    Real et al., "Regularized Evolution for Image Classifier Architecture Search"
    (2019), https://arxiv.org/abs/1802.01548 (age-based replacement);
    Burlacu et al., "Operon C++" (2020), https://doi.org/10.1145/3377929.3398099.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

import numpy as np
import torch  # noqa: F401 - the examples save checkpoints with it
import xarray as xr

from ..kit.device import restore_device
from ..kit.protocol import Badge, Chart, EngineBase, MonitorSpec
from .front import pareto_scores, select
from .model import Answers
from .problem import Problem, cpu_threads
from .results import Results
from .search import Search
from .settings import DEFAULT_NESTED, DEFAULT_OPS, METRICS, SCORE_ROWS_PER_STEP, SEARCH_ROWS, SELECTIONS, \
    SymRegSettings
from .state import SymRegState, upgrade

__all__ = ["SymRegEngine", "cpu_threads", "DEFAULT_OPS", "DEFAULT_NESTED", "SELECTIONS", "SEARCH_ROWS",
           "SCORE_ROWS_PER_STEP", "METRICS", "pareto_scores", "select"]

_X = np.linspace(1, 2, 20)  # the data of the examples below


def _of_state(name: str, doc: str) -> property:
    return property(lambda self: getattr(self.state, name), doc=doc)


def _set_iteration(self: "SymRegEngine", value: int) -> None:
    self.state.budget.spent = int(value)


def _set_hof(self: "SymRegEngine", members: Mapping[int, tuple]) -> None:
    self.state.hof.clear()
    self.state.hof.update(members)
    self.state.finished.clear()


class SymRegEngine(Answers, EngineBase):
    """Symbolic regression: closed-form equations for ``y = f(X)``, with a live Pareto front.

    Arguments:
        X: inputs (array ``(n, d)``, DataFrame, xarray Dataset or a pair ``(X, y)``;
            see :func:`~sciml_lab.symreg.data.prepare_data`).
        y: the target when ``X`` is an array.
        weights: sample weights (an array, or a column of a DataFrame/Dataset).
        custom_ops: ``{name: (arity, torch_fn, sympy_fn)}``.
        settings: the keyword arguments of :class:`~sciml_lab.symreg.settings.SymRegSettings`,
            among them ``target``, ``features``, ``units``, ``ops``, ``maxsize``,
            ``maxdepth``, ``nested``, ``n_islands``, ``population_size``, ``children``,
            ``iterations`` (default 200, or 100 000 with a ``time_limit``, so that the
            time is the budget), ``time_limit`` (seconds), ``until`` (a target on the
            live metrics, e.g. ``"r2>0.999"``: the search ends once it holds),
            ``stop_loss`` and ``patience`` (stop once an equation this accurate has been
            the simplest such for ``patience`` steps; ``"auto"``: exact to numerical
            precision), ``selection`` (``best``, ``accuracy`` or ``score``),
            ``search_rows`` (the search evaluates candidates on a fixed subsample of this
            many rows; once it ends, steps continue until every front member is scored on
            all rows, ``score_rows_per_step`` row-evaluations per step), ``device``,
            ``dtype``, ``threads`` and ``seed``.

    The budget rule (:class:`~sciml_lab.kit.budget.Budget`): the search ends when its
    iterations or its time are spent or, earlier, when ``until`` holds or ``stop_loss``
    is reached; :meth:`extend` pays for more iterations, and neither target ends the
    search again before they are spent.

    Example:
        >>> X = np.random.default_rng(0).uniform(1, 3, (100, 2))
        >>> e = SymRegEngine(X, 2.5 * X[:, 0] * X[:, 1], ops="+ - * /", iterations=30, seed=1, device="cpu")
        >>> while not e.done(): _ = e.step()
        >>> e.best().complexity <= 5 and e.best_loss() < 1e-12
        True
    """

    kind = "symreg"
    budget_words = ("iterations",)
    monitor = MonitorSpec(
        charts=(Chart("best loss", ("best_loss",), log_y=True), Chart("front size", ("front_size",)),
                Chart("evaluations/s", ("evals_per_s",))),
        badges=(Badge("R² (best)", "best_r2>0.999", ".4f"),),
        key="best_loss",
        note="loss: mean squared error of the most accurate equation; the front is in job.data['pareto']",
    )

    def __init__(self, X: Any, y: Any = None, *, weights: Any = None, custom_ops: Mapping[str, Any] | None = None,
                 **settings: Any):
        unknown = sorted(set(settings) - set(SymRegSettings.names()))
        if unknown:
            raise TypeError(f"symreg: unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                            f"expected one of {', '.join(SymRegSettings.names())}")
        s = SymRegSettings(**settings)
        self.custom_ops = dict(custom_ops or {})
        self.problem = Problem.build(X, y, weights, s, self.custom_ops)
        d = self.problem.data
        device = str(self.problem.device) if s.device == "auto" else s.device
        #: the settings in force (target, features and units as found in the data, the device resolved)
        self.settings = s.replace(target=d.target, features=tuple(d.features), units=dict(d.units), device=device)
        self.data, self.vocab, self.criteria = d, self.problem.vocab, s.criteria
        stop_loss = self.problem.floor if s.stop_loss == "auto" else s.stop_loss
        self.state = SymRegState.start(s, self.vocab.names)
        self.search = Search(self.problem, self.settings, self.state, stop_loss)
        self.results = Results(self.problem, self.search.scores)

    def __getattr__(self, name: str) -> Any:
        """The settings read as attributes (``engine.maxsize``, ``engine.seed``...)."""
        settings = self.__dict__.get("settings")
        if settings is None or name not in SymRegSettings.names():
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(settings, name)

    # ------------------------------------------------------------------ the state, by name
    iteration = property(lambda self: self.state.budget.spent, _set_iteration, doc="Generations done.")
    budget = _of_state("budget", "The iteration budget (``budget.total``; ``budget.spent`` is :attr:`iteration`).")
    hof = property(lambda self: self.state.finished or self.state.hof, _set_hof,
                   doc="The hall of fame ``{size: (tokens, constants, loss)}`` (once the search is over, the "
                       "finished one: constants snapped, see Search.finish); assigning a dict replaces it.")
    islands = _of_state("islands", "The populations (see :class:`~sciml_lab.symreg.state.Islands`).")
    history = _of_state("history", "One row per iteration (a :class:`~sciml_lab.kit.history.History`).")
    wall = _of_state("wall", "Seconds spent in steps.")
    evals = _of_state("evals", "Expressions evaluated (constant fits included).")
    metrics = _of_state("metrics", "The last search step's metrics.")
    rng = property(lambda self: self.state.rng.generator, doc="The search's random stream.")
    device = property(lambda self: self.settings.device, doc="The device the search runs on (``auto`` resolved).")
    step_row_evaluations = property(lambda self: self.search.step_row_evaluations,
                                    doc="Rows x expressions evaluated in the last step.")

    # ------------------------------------------------------------------ protocol: steps and budget
    def step(self) -> dict[str, float]:
        """One generation over all islands (or, once the search is over, a step scoring the
        front on all rows); returns the live metrics (:data:`~sciml_lab.symreg.settings.METRICS`).

        Example:
            >>> sorted(SymRegEngine(_X, _X ** 2, device="cpu").step())[:4]
            ['best_loss', 'best_r2', 'complexity', 'evals_per_s']
        """
        with cpu_threads(self.settings.threads, self.problem.device):
            if self.search_done():
                return self.search.scoring()
            metrics = self.search.generation()
            if self.search_done():  # the last generation: the front's constants snapped (Search.finish)
                self.search.finish()
            return metrics

    def target_reached(self) -> bool:
        """True once the stop loss holds and the simplest such equation has been stable for
        ``patience`` steps (not before an extension is spent).

        Example:
            >>> e = SymRegEngine(_X, 3 * _X, patience=2, device="cpu")
            >>> while not e.done(): _ = e.step()
            >>> e.target_reached(), e.iteration < 200
            (True, True)
        """
        return self.search.target_reached()

    def done(self) -> bool:
        """True when the search is over (:meth:`search_done`) and its front is scored on all rows.

        Example:
            >>> e = SymRegEngine(_X, _X ** 2, iterations=1, device="cpu"); _ = e.step(); e.done()
            True
        """
        return self.search_done() and self.scored_on_all_rows()

    def search_done(self) -> bool:
        """True when the iterations or the time are spent, ``until`` holds or the stop loss is reached.

        Example:
            >>> e = SymRegEngine(_X, _X ** 2, until="r2>0.99", device="cpu"); e.search_done()
            False
            >>> _ = e.step(); e.search_done(), e.iteration
            (True, 1)
        """
        st = self.state
        if st.budget.done(st.metrics):
            return True
        if st.deadline is not None and st.wall >= st.deadline:
            return True
        return self.target_reached()

    def progress(self) -> float:
        """Fraction of the budget spent: the larger of the iteration and time fractions.

        Example:
            >>> e = SymRegEngine(_X, _X ** 2, iterations=4, stop_loss=None, device="cpu"); _ = e.step(); e.progress()
            0.25
        """
        p = self.state.budget.progress()
        if self.state.deadline:
            p = max(p, self.state.wall / self.state.deadline)
        return float(min(1.0 if self.done() else 0.99, p))

    def extend(self, iterations: int) -> None:
        """Search ``iterations`` more steps from the current populations (and, with a time
        limit, another ``time_limit`` seconds); neither ``until`` nor the stop loss ends the
        search before they are spent (the kit's rule, :class:`~sciml_lab.kit.budget.Budget`).

        Example:
            >>> e = SymRegEngine(_X, _X ** 2, iterations=1, device="cpu"); _ = e.step()
            >>> e.extend(iterations=2); e.done(), e.budget.total
            (False, 3)
        """
        self.state.budget.extend(iterations, ended=self.search_done())
        if self.settings.time_limit is not None:
            self.state.deadline = self.state.wall + self.settings.time_limit

    def default_extend(self) -> dict[str, int]:
        """The budget of the monitor's extend button: half the current iteration budget (at least 10).

        Example:
            >>> SymRegEngine(_X, _X ** 2, iterations=100).default_extend()
            {'iterations': 50}
        """
        return {"iterations": max(10, self.state.budget.total // 2)}

    # ------------------------------------------------------------------ protocol: results
    def live_view(self) -> dict[str, Any]:
        """The live monitor's table (runtime protocol): the Pareto front, equations in
        LaTeX, the selected equation highlighted.

        Example:
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
            >>> v = e.live_view(); v["title"], v["latex"]
            ('Pareto front for y', ['equation'])
        """
        t = self.live_table()
        return {"title": f"Pareto front for {t['target']}", "columns": t["columns"], "rows": t["rows"],
                "latex": [t["columns"][i] for i in t["latex_columns"]], "selected": t["selected"]}

    def warnings(self) -> list[str]:
        """What a scientist should know before trusting the selected equation, in words and numbers:
        too few rows for its constants, constants the data cannot pin down (an interval wider
        than the constant), losses not yet computed on all rows. Also in the result's attrs
        (``warnings``, a JSON list).

        Example:
            >>> a = np.array([0.387, 0.723, 1.0, 1.524, 5.203, 9.537, 19.19, 30.07])
            >>> e = SymRegEngine(a, a ** 1.5, ops="* /", iterations=3, device="cpu")
            >>> while not e.done(): _ = e.step()
            >>> e.warnings()[0].split(":")[0]
            'only 8 rows of data'
        """
        return self.results.warnings(*self._selected())

    def snapshot(self, max_points: int = 5000) -> xr.DataTree:
        """The result so far: ``/pareto`` (complexity; equation, display, latex, loss,
        loss_rows, r2, score, selected, prediction on at most ``max_points`` samples),
        ``/constants`` (complexity, constant: value, std, lower, upper of each member's
        fitted constants), ``/history`` (iteration) and ``/data`` (the samples the
        predictions refer to, with units); attrs include ``warnings`` (a JSON list of
        strings, see :meth:`warnings`) and ``selected_display``.

        Example:
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
            >>> sorted(e.snapshot().children), e.snapshot().attrs["selected_equation"]
            (['constants', 'data', 'history', 'pareto'], 'x0**2')
        """
        with cpu_threads(self.settings.threads, self.problem.device):
            history = self.history.to_dataset(np.arange(1, len(self.history) + 1))
            history["front_size"] = history["front_size"].astype(np.int64)
            attrs = {"scored_on_all_rows": bool(self.scored_on_all_rows()), "iterations_done": int(self.iteration),
                     "evaluations": int(self.state.evals)}
            return self.results.snapshot(*self._selected(), history, self.settings.selection, attrs, max_points)

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """A checkpoint of tensors, numbers, strings, lists and dicts (see
        :class:`~sciml_lab.symreg.state.SymRegState`).

        Example:
            >>> import io
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu"); _ = e.step()
            >>> buf = io.BytesIO(); torch.save(e.state_dict(), buf); _ = buf.seek(0)
            >>> e2 = SymRegEngine(_X, _X ** 2, device="cpu"); e2.load_state_dict(torch.load(buf, weights_only=True))
            >>> e2.iteration, str(e2.best())
            (1, 'x0**2')
        """
        return self.state.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a checkpoint of :meth:`state_dict` (same features and operators; one
        written by an earlier version is upgraded); the search then continues exactly as
        it would have.

        Example:
            >>> e = SymRegEngine(_X, _X ** 2, ops="+ *", device="cpu")
            >>> e.load_state_dict(SymRegEngine(_X, _X ** 2, device="cpu").state_dict())
            Traceback (most recent call last):
            ...
            ValueError: state: the checkpoint's tokens [...] do not match this engine's [...] (different features or ops)
        """
        state = upgrade(state)
        if list(state["vocabulary"]) != self.vocab.names:
            raise ValueError(f"state: the checkpoint's tokens {state['vocabulary']} do not match this engine's "
                             f"{self.vocab.names} (different features or ops)")
        self.state.load_state_dict(state)

    def config(self) -> dict[str, Any]:
        """JSON-able settings; with the data, :meth:`from_config` rebuilds the engine.

        Example:
            >>> SymRegEngine(_X, _X ** 2, ops="+ *").config()["ops"]
            '+ *'
        """
        return {**self.settings.config(), "custom_ops": sorted(self.custom_ops)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "SymRegEngine":
        """Rebuild from :meth:`config`; the data must be passed again as ``X`` and ``y``
        (arrays in the original feature order), or ``data`` (a DataFrame/Dataset), with
        ``weights`` if the run had them, and custom operators as ``custom_ops``. A GPU run
        reopened where there is no GPU continues on the CPU.

        Example:
            >>> e = SymRegEngine(_X, _X ** 2, device="cpu")
            >>> SymRegEngine.from_config(e.config(), X=_X, y=_X ** 2).vocab.names == e.vocab.names
            True
        """
        cfg = dict(config)
        custom_names = cfg.pop("custom_ops", [])
        custom = objects.get("custom_ops") or {}
        missing = [n for n in custom_names if n not in custom]
        if missing:
            raise TypeError(f"symreg: reopening this run needs its custom operators {missing}: "
                            "pass custom_ops={name: (arity, torch_fn, sympy_fn)}")
        if "data" in objects:
            X, y = objects["data"], objects.get("y")
        elif "X" in objects and "y" in objects:
            X, y = objects["X"], objects["y"]
        else:
            raise TypeError("symreg: reopening this run needs its data: pass X=..., y=... or data=<DataFrame>, "
                            "e.g. sciml_lab.open(path, X=X, y=y)")
        settings = SymRegSettings.from_config(cfg, device=restore_device(cfg.get("device", "auto")))
        return cls(X, y, weights=objects.get("weights"), custom_ops=custom, **vars(settings))


def _signature() -> inspect.Signature:
    """``SymRegEngine.__init__``'s signature: the data and objects, then every setting."""
    own = list(inspect.signature(SymRegEngine.__init__).parameters.values())[:-1]
    fields = SymRegSettings.__dataclass_fields__.values()
    return inspect.Signature(own + [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
                                    for f in fields])


SymRegEngine.__init__.__signature__ = _signature()  # type: ignore[attr-defined]

"""The symbolic regression engine: an island-model evolutionary search, batched on tensors.

Each :meth:`SymRegEngine.step` is one generation over all islands: every island
breeds children (tournament selection, one mutation or a crossover, constant
folding, size/depth/nesting limits), *all* children of all islands are evaluated in
one batched call, the promising ones get their constants fitted by a batched
Levenberg–Marquardt step, each child replaces the oldest member of its island when
simulated annealing accepts it (regularized evolution), and every few generations
islands exchange members with each other and with the hall of fame. The hall of
fame keeps the best expression of each complexity; its non-dominated members are the
Pareto front, from which a model is selected as in PySR.

References:
    Cranmer, "Interpretable Machine Learning for Science with PySR and
    SymbolicRegression.jl" (2023), https://arxiv.org/abs/2305.01582;
    Real et al., "Regularized Evolution for Image Classifier Architecture Search"
    (2019), https://arxiv.org/abs/1802.01548 (age-based replacement);
    Burlacu et al., "Operon C++" (2020), https://doi.org/10.1145/3377929.3398099.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from ..kit.device import resolve_device, resolve_dtype
from ..kit.protocol import Badge, Chart, MonitorSpec, register_engine
from .constants import fit_constants, weighted_mse
from .data import prepare_data
from .expression import CONST, PAD, UNARY, Equation, Vocabulary, evaluate, from_sympy, pack, parse_ops
from .identify import FullScore, display_expression, few_rows_warning
from .variation import Constraints, Program, crossover, fold_constants, mutate, random_program

__all__ = ["SymRegEngine", "cpu_threads", "DEFAULT_OPS", "DEFAULT_NESTED", "SELECTIONS", "SEARCH_ROWS", "SCORE_ROWS_PER_STEP",
           "pareto_scores", "select"]

DEFAULT_OPS = "+ - * / sin cos exp log"
_TRIG = ["sin", "cos", "tan"]
_EXPLOG = ["exp", "log"]
#: nesting forbidden by default: no sin(cos(.)), exp(exp(.)), log(exp(.)), ...
DEFAULT_NESTED: dict[str, list[str]] = {**{t: _TRIG for t in _TRIG}, **{e: _EXPLOG for e in _EXPLOG},
                                        "sqrt": ["sqrt"], "tanh": ["tanh"]}
SELECTIONS = ("best", "accuracy", "score")
# the step budget when none is given: with a time limit, the time is the budget
DEFAULT_ITERATIONS, TIMED_ITERATIONS = 200, 100_000
#: a relative loss below this is "exact to numerical precision" (floor of log-loss and scores)
EXACT = 1e-12
#: default number of rows the search evaluates candidates on (a fixed subsample of larger data)
SEARCH_ROWS = 2048
#: default row-evaluations per step spent scoring the front on all rows
SCORE_ROWS_PER_STEP = 1 << 20


def pareto_scores(complexity: Sequence[int], loss: Sequence[float], floor: float = 0.0) -> np.ndarray:
    """PySR's score of each front member: the drop of log-loss per unit of complexity
    from the previous member (0 for the first). Losses are floored at ``floor``.

    Example:
        >>> pareto_scores([1, 3, 5], [1.0, 0.1, 0.01]).round(3).tolist()
        [0.0, 1.151, 1.151]
    """
    c = np.asarray(complexity, dtype=float)
    ll = np.log(np.maximum(np.asarray(loss, dtype=float), max(floor, 1e-300)))
    s = np.zeros(len(c))
    if len(c) > 1:
        s[1:] = -(ll[1:] - ll[:-1]) / np.maximum(c[1:] - c[:-1], 1)
    return s


def select(complexity: Sequence[int], loss: Sequence[float], selection: str = "best", floor: float = 0.0) -> int:
    """Index of the selected front member: ``accuracy`` (lowest loss), ``score``
    (highest score) or ``best`` (highest score among those with a loss at most 1.5
    times the lowest, losses floored at ``floor``), as in PySR.

    Example:
        >>> select([1, 3, 5, 9], [1.0, 0.1, 1e-3, 9e-4], "best"), select([1, 3, 5, 9], [1.0, 0.1, 1e-3, 9e-4], "accuracy")
        (2, 3)
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection: expected one of {', '.join(SELECTIONS)}, got {selection!r}")
    loss = np.maximum(np.asarray(loss, dtype=float), floor)
    if len(loss) == 0:
        raise ValueError("the Pareto front is empty")
    scores = pareto_scores(complexity, loss, floor)
    if selection == "accuracy":
        return int(np.argmin(loss))
    if selection == "score":
        return int(np.argmax(scores))
    ok = loss <= 1.5 * loss.min()
    return int(np.argmax(np.where(ok, scores, -np.inf)))


def _snap_integers(expr: Any, rtol: float = 1e-9):
    """Constants within ``rtol`` of an integer become that integer (so ``1.0*x`` becomes ``x``
    and ``x + 1e-17`` becomes ``x``); the result is re-scored before it is kept."""
    import sympy

    reps = {}
    for f in expr.atoms(sympy.Float):
        v = float(f)
        if abs(v - round(v)) <= rtol * max(1.0, abs(v)):
            reps[f] = sympy.Integer(int(round(v)))
    return expr.xreplace(reps) if reps else expr


@contextlib.contextmanager
def cpu_threads(n: int | None, device: torch.device):
    """Run torch on ``n`` CPU threads inside the block (restored after).

    The tensors of a search are small (thousands of elements per kernel): on a busy
    machine, intra-op parallelism costs far more in synchronisation than it gains
    (measured here: 0.5 s vs 16 s for the same search with 1 vs 2 threads).

    Example:
        >>> with cpu_threads(1, torch.device("cpu")):
        ...     torch.get_num_threads()
        1
    """
    if n is None or device.type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if old != n:
            torch.set_num_threads(old)


def _check_int(name: str, v: Any, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
    return int(v)


def _check_float(name: str, v: Any, low: float = 0.0, allow_none: bool = False) -> float | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < low:
        raise ValueError(f"{name}: expected a number >= {low:g}{' or None' if allow_none else ''}, got {v!r}")
    return float(v)


@register_engine
class SymRegEngine:
    """Symbolic regression: closed-form equations for ``y = f(X)``, with a live Pareto front.

    Arguments:
        X: inputs (array ``(n, d)``, DataFrame, xarray Dataset or a pair ``(X, y)``;
            see :func:`~sciml_lab.symreg.data.prepare_data`).
        y, target, features, weights, units: the target and metadata.
        ops: operators, e.g. ``"+ - * / sin exp"`` (``+ - * / ^``, ``sin cos tan exp
            log sqrt abs tanh neg square cube inv`` and ``custom_ops`` names).
        custom_ops: ``{name: (arity, torch_fn, sympy_fn)}``.
        maxsize, maxdepth: limits on the number of tokens and the depth of a tree.
        nested: ``{outer: [inner, ...]}`` forbidden nestings (default
            :data:`DEFAULT_NESTED`; ``{}`` allows all).
        n_islands, population_size: the populations.
        children: children bred per island per step (default ``population_size // 2``).
        tournament_size, crossover_probability: selection and variation.
        iterations: step budget (default 200, or 100 000 with a ``time_limit``, so that the
            time is the budget); time_limit: wall-clock budget in seconds (None: none).
        stop_loss: stop early once the front holds an expression this accurate (mean
            squared error) and its simplest such member has not changed for
            ``patience`` steps; ``"auto"``: exact to numerical precision
            (``1e-12 * var(y)``); None: never.
        selection: model selection on the front: ``best``, ``accuracy`` or ``score``.
        const_iterations, optimize_fraction: Levenberg–Marquardt steps, and the share
            of each step's children (the fittest with constants) that get them.
        migration_every, migration_fraction: island migration schedule.
        parsimony, adaptive_parsimony: fixed and frequency-based size penalties.
        search_rows: the search evaluates candidates on a fixed random subsample of this
            many rows (all rows when there are fewer; None: always all rows), so that
            a step's work does not grow with the data.
        score_rows_per_step: row-evaluations per step spent scoring the Pareto front on
            *all* rows (with the Jacobian of each member's constants); once the search
            ends, steps continue until every front member is scored, and the result
            reports those losses and the constants' intervals.
        device, dtype, seed: placement, precision and reproducibility.
        threads: torch CPU threads used inside each step (default 1, see
            :func:`cpu_threads`; None: leave torch's setting).

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

    def __init__(self, X: Any, y: Any = None, *, target: str | None = None, features: Sequence[str] | None = None,
                 weights: Any = None, units: Mapping[str, str] | None = None, ops: "str | Sequence[str]" = DEFAULT_OPS,
                 custom_ops: Mapping[str, Any] | None = None, maxsize: int = 30, maxdepth: int | None = None,
                 nested: Mapping[str, Sequence[str]] | None = None, n_islands: int = 4, population_size: int = 64,
                 children: int | None = None, tournament_size: int = 10, crossover_probability: float = 0.1,
                 iterations: int | None = None, time_limit: float | None = None, stop_loss: "float | str | None" = "auto",
                 patience: int = 10, selection: str = "best", const_iterations: int = 8,
                 optimize_fraction: float = 0.3, migration_every: int = 5, migration_fraction: float = 0.05,
                 parsimony: float = 1e-3, adaptive_parsimony: float = 20.0,
                 search_rows: int | None = SEARCH_ROWS, score_rows_per_step: int = SCORE_ROWS_PER_STEP,
                 device: str = "auto", dtype: str = "float64", threads: int | None = 1, seed: int = 0):
        self.data = prepare_data(X, y, target=target, features=features, weights=weights, units=units)
        self.ops_text = ops if isinstance(ops, str) else " ".join(ops)
        self.custom_ops = dict(custom_ops or {})
        unary, binary = parse_ops(ops, self.custom_ops)
        self.vocab = Vocabulary(self.data.features, unary, binary)
        self.maxsize = _check_int("maxsize", maxsize, 3)
        self.maxdepth = None if maxdepth is None else _check_int("maxdepth", maxdepth, 2)
        self.nested = {k: list(v) for k, v in (DEFAULT_NESTED if nested is None else nested).items()}
        for k, v in self.nested.items():
            unknown = [o for o in [k, *v] if o not in UNARY and o not in self.custom_ops]
            if unknown:
                raise ValueError(f"nested: expected unary operator names, got {unknown}")
        self.constraints = Constraints(self.vocab, self.maxsize, self.maxdepth, self.nested)
        self.n_islands = _check_int("n_islands", n_islands, 1)
        self.population_size = _check_int("population_size", population_size, 4)
        self.children = _check_int("children", children if children is not None else max(population_size // 2, 1), 1)
        self.tournament_size = _check_int("tournament_size", tournament_size, 1)
        self.crossover_probability = _check_float("crossover_probability", crossover_probability)
        self.time_limit = _check_float("time_limit", time_limit, 0.0, allow_none=True)
        if iterations is None:
            iterations = DEFAULT_ITERATIONS if self.time_limit is None else TIMED_ITERATIONS
        self.budget = _check_int("iterations", iterations, 1)
        self.patience = _check_int("patience", patience, 1)
        if selection not in SELECTIONS:
            raise ValueError(f"selection: expected one of {', '.join(SELECTIONS)}, got {selection!r}")
        self.selection = selection
        self.const_iterations = _check_int("const_iterations", const_iterations, 0)
        self.optimize_fraction = _check_float("optimize_fraction", optimize_fraction)
        self.migration_every = _check_int("migration_every", migration_every, 1)
        self.migration_fraction = _check_float("migration_fraction", migration_fraction)
        self.parsimony = _check_float("parsimony", parsimony)
        self.adaptive_parsimony = _check_float("adaptive_parsimony", adaptive_parsimony)
        self.search_rows = None if search_rows is None else _check_int("search_rows", search_rows, 3)
        self.score_rows_per_step = _check_int("score_rows_per_step", score_rows_per_step, 1)
        self.seed = int(seed)
        self.threads = None if threads is None else _check_int("threads", threads, 1)
        self.device_obj = resolve_device(device)
        self.device = str(self.device_obj) if device == "auto" else device
        self.dtype = resolve_dtype(dtype)
        self.X = torch.as_tensor(self.data.X, dtype=self.dtype, device=self.device_obj)
        self.y = torch.as_tensor(self.data.y, dtype=self.dtype, device=self.device_obj)
        self.w = None if self.data.weights is None else torch.as_tensor(self.data.weights, dtype=self.dtype,
                                                                          device=self.device_obj)
        n = len(self.data.y)
        if self.search_rows is None or n <= self.search_rows:
            self.search_idx = None
            self.Xs, self.ys, self.ws = self.X, self.y, self.w
        else:  # a fixed subsample, drawn from the seed (not from the search's random stream)
            self.search_idx = np.sort(np.random.default_rng([self.seed, 1]).choice(n, self.search_rows, replace=False))
            idx = torch.as_tensor(self.search_idx, device=self.device_obj)
            self.Xs, self.ys = self.X[idx], self.y[idx]
            self.ws = None if self.w is None else self.w[idx]
        wy = self.data.weights if self.data.weights is not None else np.ones_like(self.data.y)
        mean = float(np.average(self.data.y, weights=wy))
        self.var_y = float(np.average((self.data.y - mean) ** 2, weights=wy))
        self.floor = EXACT * self.var_y
        if stop_loss == "auto":
            self.stop_loss = self.floor
        else:
            self.stop_loss = _check_float("stop_loss", stop_loss, 0.0, allow_none=True)
        self._stop_loss_config = stop_loss
        self.rng = np.random.default_rng(self.seed)
        self.islands: list[dict[str, Any]] = []
        self.hof: dict[int, tuple[list[int], list[float], float]] = {}
        self.iteration = 0
        self.wall = 0.0
        self.evals = 0
        self.birth = 0
        self.deadline = self.time_limit
        self.target_waived = False
        self.target_since: tuple[int, int] | None = None  # (complexity of the simplest exact member, since step)
        self.history: list[tuple[float, ...]] = []  # (wall, best_loss, front_size, evals_per_s)
        self._sympy_cache: dict[tuple, tuple[str, str]] = {}
        self._simplified: dict[tuple, Program | None] = {}
        self._full: dict[tuple, FullScore] = {}  # front members scored on all rows (not checkpointed: redone)
        self._display: dict[tuple, tuple[str, str, list]] = {}
        self.row_evaluations = 0  # rows x expressions evaluated, in total
        self.step_row_evaluations = 0  # the same, in the last step

    # ------------------------------------------------------------------ search
    def _fitness(self, loss: np.ndarray, sizes: np.ndarray, freq: np.ndarray) -> np.ndarray:
        rel = loss / self.var_y
        return rel * np.exp(self.adaptive_parsimony * freq[sizes]) + self.parsimony * sizes

    def _size_frequencies(self) -> np.ndarray:
        counts = np.ones(self.maxsize + 2)
        for isl in self.islands:
            counts += np.bincount([len(p[0]) for p in isl["programs"]], minlength=self.maxsize + 2)[:self.maxsize + 2]
        return counts / counts.sum()

    def _score_programs(self, programs: list[Program], optimize: bool) -> tuple[list[Program], np.ndarray]:
        """Evaluate in one batch; fit the constants of the most promising; update the hall of fame."""
        tok, const = pack(programs, self.maxsize, self.device_obj, self.dtype)
        loss = weighted_mse(evaluate(tok, const, self.Xs, self.vocab), self.ys, self.ws)
        self.evals += len(programs)
        self.row_evaluations += len(programs) * len(self.ys)
        has_const = (tok == 1).any(1)
        if optimize and self.const_iterations and bool(has_const.any()):
            loss_np = loss.cpu().numpy()
            cand = np.flatnonzero(has_const.cpu().numpy() & np.isfinite(loss_np))
            n_opt = max(1, int(math.ceil(self.optimize_fraction * len(programs))))
            cand = cand[np.argsort(loss_np[cand], kind="stable")[:n_opt]]
            if len(cand):
                idx = torch.as_tensor(cand, device=self.device_obj)
                c_fit, l_fit, ev = fit_constants(tok[idx], const[idx], self.Xs, self.ys, self.ws, self.vocab,
                                                 self.const_iterations)
                self.evals += ev
                self.row_evaluations += ev * len(self.ys)
                const[idx] = c_fit
                loss[idx] = l_fit
        loss_np = loss.cpu().numpy().astype(float)
        const_np = const.cpu().numpy()
        out = [(list(p[0]), const_np[i, :len(p[0])].tolist()) for i, p in enumerate(programs)]
        for p, l in zip(out, loss_np):
            if math.isfinite(l):
                n = len(p[0])
                if n not in self.hof or l < self.hof[n][2]:
                    self.hof[n] = (list(p[0]), list(p[1]), float(l))
        return out, loss_np

    def _new_birth(self, k: int) -> np.ndarray:
        b = np.arange(self.birth, self.birth + k)
        self.birth += k
        return b

    def _initialize(self) -> None:
        progs: list[Program] = []
        for _ in range(self.n_islands * self.population_size):
            for _attempt in range(10):
                p = fold_constants(random_program(self.rng, self.vocab, max_depth=int(self.rng.integers(1, 4))),
                                   self.vocab)
                if self.constraints.ok(p[0]):
                    break
            else:
                p = ([int(self.vocab.var_tokens[0])], [0.0])
            progs.append(p)
        scored, loss = self._score_programs(progs, optimize=True)
        P = self.population_size
        self.islands = [{"programs": scored[i * P:(i + 1) * P], "loss": loss[i * P:(i + 1) * P].copy(),
                         "age": self._new_birth(P)} for i in range(self.n_islands)]

    def _tournament(self, fit: np.ndarray) -> int:
        k = min(self.tournament_size, len(fit))
        cand = self.rng.choice(len(fit), size=k, replace=False)
        return int(cand[np.argmin(fit[cand])])

    def _breed(self, isl: dict[str, Any], fit: np.ndarray) -> tuple[list[Program], list[int]]:
        children, parents = [], []
        progs = isl["programs"]
        for _attempt in range(10 * self.children):  # bounded: limits can reject every variation
            if len(children) >= self.children:
                break
            i = self._tournament(fit)
            if self.rng.random() < self.crossover_probability:
                j = self._tournament(fit)
                cands = crossover(progs[i], progs[j], self.rng, self.vocab)
            else:
                cands = (mutate(progs[i], self.rng, self.vocab),)
            for c in cands:
                c = fold_constants(c, self.vocab)
                if self.constraints.ok(c[0]):
                    children.append(c)
                    parents.append(i)
        return children[:self.children], parents[:self.children]

    def _temperature(self) -> float:
        cycle = 10
        return 1.0 - (self.iteration % cycle) / cycle * 0.9

    def _simplify_front(self) -> None:
        """Send front members through sympy's canonical form; score the shorter results
        (they enter the hall of fame, and islands through migration)."""
        shorter = []
        for tok, const, _ in self.front_programs():
            key = (tuple(tok), tuple(const))
            if key not in self._simplified:
                try:
                    prog = from_sympy(_snap_integers(Equation(tok, const, self.vocab).sympy()), self.vocab)
                except Exception:  # sympy may reject exotic custom operators: no simplification then
                    prog = None
                self._simplified[key] = prog if prog is not None and len(prog[0]) < len(tok) \
                    and self.constraints.ok(prog[0]) else None
                if len(self._simplified) > 5000:
                    self._simplified.pop(next(iter(self._simplified)))
                if self._simplified[key] is not None:
                    shorter.append(self._simplified[key])
        if shorter:
            self._score_programs(shorter, optimize=True)

    def _migrate(self) -> None:
        k = max(1, int(round(self.migration_fraction * self.population_size)))
        front = self.front_programs()
        for n, isl in enumerate(self.islands):
            others = [o for m, o in enumerate(self.islands) if m != n]
            for slot in self.rng.choice(self.population_size, size=k, replace=False):
                if front and (not others or self.rng.random() < 0.5):
                    tok, const, loss = front[int(self.rng.integers(len(front)))]
                else:
                    src = others[int(self.rng.integers(len(others)))]
                    best = int(np.argmin(src["loss"]))
                    (tok, const), loss = src["programs"][best], src["loss"][best]
                isl["programs"][slot] = (list(tok), list(const))
                isl["loss"][slot] = loss
                isl["age"][slot] = self._new_birth(1)[0]

    def step(self) -> dict[str, float]:
        """One generation over all islands; returns the live metrics.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> sorted(SymRegEngine(X, X ** 2, device="cpu").step())[:3]
            ['best_loss', 'best_r2', 'complexity']
        """
        with cpu_threads(self.threads, self.device_obj):
            return self._step()

    def _step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        evals0, rows0 = self.evals, self.row_evaluations
        if self.search_done():  # the search is over: this step only scores the front on all rows
            self._score_front()
            self.wall += time.perf_counter() - t0
            self.step_row_evaluations = self.row_evaluations - rows0
            return self._metrics(self.front_programs(), self.history[-1][3] if self.history else 0.0)
        if not self.islands:
            self._initialize()
        freq = self._size_frequencies()
        all_children: list[Program] = []
        owners: list[tuple[int, int]] = []
        for n, isl in enumerate(self.islands):
            sizes = np.array([len(p[0]) for p in isl["programs"]])
            fit = self._fitness(isl["loss"], sizes, freq)
            kids, parents = self._breed(isl, fit)
            all_children += kids
            owners += [(n, p) for p in parents]
        if all_children:
            scored, loss = self._score_programs(all_children, optimize=True)
            sizes = np.array([len(p[0]) for p in scored])
            child_fit = self._fitness(loss, sizes, freq)
            temp = self._temperature()
            for (n, parent), prog, l, f in zip(owners, scored, loss, child_fit):
                isl = self.islands[n]
                psize = np.array([len(isl["programs"][parent][0])])
                pf = float(self._fitness(isl["loss"][parent:parent + 1], psize, freq)[0])
                if not math.isfinite(f):
                    continue
                if math.isfinite(pf) and f > pf:
                    if self.rng.random() >= math.exp(-(math.log(f + 1e-300) - math.log(pf + 1e-300)) / temp):
                        continue
                oldest = int(np.argmin(isl["age"]))
                isl["programs"][oldest] = prog
                isl["loss"][oldest] = l
                isl["age"][oldest] = self._new_birth(1)[0]
        self.iteration += 1
        if self.iteration % self.migration_every == 0:
            self._simplify_front()
            self._migrate()
        front = self.front_programs()
        self._track_target(front)
        self._score_front()
        dt = time.perf_counter() - t0
        self.wall += dt
        best_loss = min((f[2] for f in front), default=math.inf)
        eps = (self.evals - evals0) / max(dt, 1e-9)
        self.history.append((self.wall, best_loss, float(len(front)), eps))
        self.step_row_evaluations = self.row_evaluations - rows0
        return self._metrics(front, eps)

    def _metrics(self, front: list, eps: float) -> dict[str, float]:
        best_loss = min((f[2] for f in front), default=math.inf)
        sel = self.selected_index(front)
        return {"best_loss": best_loss, "front_size": float(len(front)), "evals_per_s": eps,
                "best_r2": 1.0 - best_loss / self.var_y if self.var_y > 0 else math.nan,
                "complexity": float(len(front[sel][0])) if front else math.nan, "iteration": float(self.iteration)}

    # ------------------------------------------------------------------ scores on all rows
    def _score_front(self) -> None:
        """Spend at most ``score_rows_per_step`` row-evaluations scoring front members on all
        rows (the selected member first), continuing where the last step stopped."""
        front = self.front_programs()
        keys = [(tuple(t), tuple(c)) for t, c, _ in front]
        self._full = {k: v for k, v in self._full.items() if k in set(keys)}
        if not front:
            return
        sel = self.selected_index(front)
        budget = self.score_rows_per_step
        n = len(self.data.y)
        for i in [sel] + [j for j in range(len(front)) if j != sel]:
            t, c, _ = front[i]
            score = self._full.setdefault(keys[i], FullScore(t, c))
            while budget > 0 and not score.done(n):
                spent = score.advance(self.X, self.y, self.w, self.vocab, budget)
                budget -= spent
                self.row_evaluations += spent
            if budget <= 0:
                return

    def scored_on_all_rows(self) -> bool:
        """True when every front member has been scored on all rows.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu"); _ = e.step(); e.scored_on_all_rows()
            True
        """
        n = len(self.data.y)
        return all((k := (tuple(t), tuple(c))) in self._full and self._full[k].done(n)
                   for t, c, _ in self.front_programs())

    def front_losses(self, front: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The loss of each front member on all rows where scored (else on the search rows),
        and the number of rows each loss was computed on.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu"); _ = e.step()
            >>> e.front_losses()[1].tolist() == [20] * len(e.front())
            True
        """
        front = self.front_programs() if front is None else front
        n = len(self.data.y)
        losses, rows = [], []
        for t, c, l in front:
            score = self._full.get((tuple(t), tuple(c)))
            full = score is not None and score.done(n)
            losses.append(score.loss(n) if full else l)
            rows.append(n if full else len(self.ys))
        return np.array(losses, dtype=float), np.array(rows, dtype=np.int64)

    def max_row_evaluations_per_step(self) -> int:
        """An upper bound of the row-evaluations (rows x expressions) of one step: each batch
        of candidates (the initial populations, the children, the simplified front) is
        evaluated on the ``search_rows`` rows, with Levenberg–Marquardt fits of the best
        share, plus ``score_rows_per_step`` for the front on all rows. It does not grow
        with the number of rows once they exceed ``search_rows``.

        Example:
            >>> X = np.random.default_rng(0).uniform(1, 2, (50_000, 1))
            >>> a = SymRegEngine(X, X[:, 0], device="cpu").max_row_evaluations_per_step()
            >>> a == SymRegEngine(X[:10_000], X[:10_000, 0], device="cpu").max_row_evaluations_per_step()
            True
        """
        n_const = (self.maxsize + 1) // 2

        def batch(p: int) -> int:
            fitted = max(1, int(math.ceil(self.optimize_fraction * p))) if self.const_iterations else 0
            return p + fitted * (1 + self.const_iterations * (n_const + 1))

        batches = batch(self.n_islands * self.population_size) + batch(self.n_islands * self.children) \
            + batch(self.maxsize)
        return batches * len(self.ys) + self.score_rows_per_step + (n_const + 1)

    def _track_target(self, front: list) -> None:
        if self.stop_loss is None:
            return
        exact = [len(t) for t, _, l in front if l <= self.stop_loss]
        if not exact:
            self.target_since = None
            return
        c = min(exact)
        if self.target_since is None or self.target_since[0] != c:
            self.target_since = (c, self.iteration)

    # ------------------------------------------------------------------ budget
    def target_reached(self) -> bool:
        """True once the stop loss holds and the simplest such equation is stable for ``patience`` steps.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, 3 * X, patience=2, device="cpu")
            >>> while not e.done(): _ = e.step()
            >>> e.target_reached(), e.iteration < 200
            (True, True)
        """
        return (self.target_since is not None and not self.target_waived
                and self.iteration - self.target_since[1] >= self.patience)

    def done(self) -> bool:
        """True when the search is over (:meth:`search_done`) and its front is scored on all rows.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, iterations=1, device="cpu"); _ = e.step(); e.done()
            True
        """
        return self.search_done() and self.scored_on_all_rows()

    def search_done(self) -> bool:
        """True when the iteration budget or the time limit is spent, or the target reached.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, iterations=1, device="cpu"); e.search_done()
            False
        """
        if self.iteration >= self.budget:
            return True
        if self.deadline is not None and self.wall >= self.deadline:
            return True
        return self.target_reached()

    def progress(self) -> float:
        """Fraction of the budget spent: the larger of the iteration and time fractions.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, iterations=4, stop_loss=None, device="cpu"); _ = e.step(); e.progress()
            0.25
        """
        p = self.iteration / self.budget
        if self.deadline:
            p = max(p, self.wall / self.deadline)
        return float(min(1.0 if self.done() else 0.99, p))

    def extend(self, iterations: int) -> None:
        """Search ``iterations`` more steps from the current populations (and, with a
        time limit, another ``time_limit`` seconds); a reached target no longer stops it.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, iterations=1, device="cpu"); _ = e.step()
            >>> e.extend(iterations=2); e.done()
            False
        """
        iterations = _check_int("iterations", iterations, 1)
        self.budget = max(self.budget, self.iteration) + iterations
        if self.time_limit is not None:
            self.deadline = self.wall + self.time_limit
        if self.target_since is not None:
            self.target_waived = True

    def default_extend(self) -> dict[str, int]:
        """The budget of the monitor's extend button: half the current iteration budget (at least 10).

        Example:
            >>> SymRegEngine(np.linspace(1, 2, 20), np.linspace(1, 2, 20) ** 2, iterations=100).default_extend()
            {'iterations': 50}
        """
        return {"iterations": max(10, self.budget // 2)}

    # ------------------------------------------------------------------ results
    def front_programs(self) -> list[tuple[list[int], list[float], float]]:
        """The Pareto front as ``(tokens, constants, loss)``, by increasing complexity
        (each member strictly more accurate than every simpler one).

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu"); _ = e.step()
            >>> losses = [l for _, _, l in e.front_programs()]
            >>> losses == sorted(losses, reverse=True)
            True
        """
        out, best = [], math.inf
        for n in sorted(self.hof):
            tok, const, loss = self.hof[n]
            if loss < best:
                out.append((tok, const, loss))
                best = loss
        return out

    def front(self) -> list[Equation]:
        """The Pareto front as :class:`~sciml_lab.symreg.expression.Equation` objects.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu"); _ = e.step()
            >>> str(e.front()[-1])
            'x0**2'
        """
        return [Equation(t, c, self.vocab) for t, c, _ in self.front_programs()]

    def selected_index(self, front: list | None = None) -> int:
        """Index in the front of the equation chosen by ``selection`` (see :func:`select`), on
        the losses of :meth:`front_losses`, among the members with at most ``n / 3``
        constants when there are such members (``n`` rows cannot support more).

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu"); _ = e.step()
            >>> e.front()[e.selected_index()].complexity
            3
        """
        front = self.front_programs() if front is None else front
        if not front:
            return 0
        comp = np.array([len(t) for t, _, _ in front])
        loss = self.front_losses(front)[0]
        # so few rows cannot support many constants: prefer members with at most n/3 of them
        n_const = np.array([sum(1 for x in t if x == CONST) for t, _, _ in front])
        ok = np.flatnonzero(n_const <= max(1, len(self.data.y) // 3))
        if len(ok) == 0 or len(ok) == len(front):
            return select(comp, loss, self.selection, self.floor)
        return int(ok[select(comp[ok], loss[ok], self.selection, self.floor)])

    def best(self) -> Equation:
        """The selected equation (see ``selection``).

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu"); _ = e.step()
            >>> e.best().latex()
            'x_{0}^{2}'
        """
        front = self.front_programs()
        if not front:
            raise RuntimeError("no equation yet: call step() first")
        t, c, _ = front[self.selected_index(front)]
        return Equation(t, c, self.vocab)

    def best_loss(self) -> float:
        """The lowest mean squared error on the front (``inf`` before the first step).

        Example:
            >>> SymRegEngine(np.linspace(1, 2, 20), np.linspace(1, 2, 20) ** 2).best_loss()
            inf
        """
        return min((l for _, _, l in self.front_programs()), default=math.inf)

    def predict(self, X: Any, complexity: int | None = None) -> np.ndarray:
        """Predictions of the selected equation (or the front member of ``complexity``).

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, 3 * X, iterations=3, device="cpu")
            >>> while not e.done(): _ = e.step()
            >>> np.allclose(e.predict(np.array([[1.0]])), 3.0)
            True
        """
        eq = self.best() if complexity is None else next(
            (e for e in self.front() if e.complexity == complexity), None)
        if eq is None:
            raise ValueError(f"complexity: no front member of complexity {complexity}; "
                             f"expected one of {[e.complexity for e in self.front()]}")
        return eq.numpy()(np.asarray(X, dtype=np.float64))

    def live_table(self) -> dict[str, Any]:
        """The current front as a small JSON-able table for a live view (LaTeX in column 1).

        Cheap (sympy conversions are cached) and safe between steps; a monitor can poll it
        a few times a second. ``selected`` is the row of the selected equation (-1: none).

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu"); _ = e.step()
            >>> t = e.live_table(); t["columns"], t["rows"][t["selected"]][:2]
            (['complexity', 'equation', 'loss', 'R²'], [3, 'x_{0}^{2}'])
        """
        front = self.front_programs()
        rows = [[len(t), self._texts(t, c)[1], float(l), float(1.0 - l / self.var_y)] for t, c, l in front]
        return {"columns": ["complexity", "equation", "loss", "R²"], "latex_columns": [1], "rows": rows,
                "selected": self.selected_index(front) if front else -1, "target": self.data.target}

    def live_view(self) -> dict[str, Any]:
        """The live monitor's table (runtime protocol): the Pareto front, equations in
        LaTeX, the selected equation highlighted."""
        t = self.live_table()
        return {"title": f"Pareto front for {t['target']}", "columns": t["columns"], "rows": t["rows"],
                "latex": [t["columns"][i] for i in t["latex_columns"]], "selected": t["selected"]}

    def _texts(self, tok: list[int], const: list[float]) -> tuple[str, str]:
        key = (tuple(tok), tuple(const))
        if key not in self._sympy_cache:
            eq = Equation(tok, const, self.vocab)
            try:
                self._sympy_cache[key] = (str(eq.sympy()), eq.latex())
            except Exception:  # sympy may choke on exotic custom operators; keep the search alive
                self._sympy_cache[key] = (" ".join(self.vocab.names[t] for t in tok), "")
            if len(self._sympy_cache) > 5000:
                self._sympy_cache.pop(next(iter(self._sympy_cache)))
        return self._sympy_cache[key]

    def snapshot(self, max_points: int = 5000) -> xr.DataTree:
        """The result so far: ``/pareto`` (complexity; equation, display, latex, loss,
        loss_rows, r2, score, selected, prediction on at most ``max_points`` samples),
        ``/constants`` (complexity, constant: value, std, lower, upper of each member's
        fitted constants), ``/history`` (iteration) and ``/data`` (the samples the
        predictions refer to, with units); attrs include ``warnings`` (a JSON list of
        strings, see :meth:`warnings`) and ``selected_display``.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu"); _ = e.step()
            >>> sorted(e.snapshot().children), e.snapshot().attrs["selected_equation"]
            (['constants', 'data', 'history', 'pareto'], 'x0**2')
        """
        with cpu_threads(self.threads, self.device_obj):
            return self._snapshot(max_points)

    def _member_display(self, tok: list[int], const: list[float], search_loss: float,
                        selected: bool = False) -> tuple[str, str, list, list]:
        """(display text, display LaTeX, constant intervals, dropped positions) of a front member
        scored on all rows; cached. Only the selected member gets sympy's full ``simplify``
        (the others ``cancel``), which keeps a snapshot cheap."""
        key = (tuple(tok), tuple(const), selected)
        if key not in self._display:
            import sympy

            n = len(self.data.y)
            intervals = self._full[key[:2]].intervals(n)

            def loss_of(c: list[float]) -> float:
                t, cc = pack([(tok, c)], self.maxsize, self.device_obj, self.dtype)
                return float(weighted_mse(evaluate(t, cc, self.Xs, self.vocab), self.ys, self.ws)[0])

            def refit(c: list[float], fixed: list[int]) -> list:
                # the reduced equation, on the search rows (all rows when there are at most search_rows)
                score = FullScore(tok, c, fixed)
                while not score.done(len(self.ys)):
                    score.advance(self.Xs, self.ys, self.ws, self.vocab, 1 << 22)
                return score.intervals(len(self.ys))

            try:
                expr, dropped, intervals = display_expression(tok, const, intervals, self.vocab, loss_of, search_loss,
                                                              len(self.ys), self.floor, full_simplify=selected,
                                                              refit=refit)
                text, latex = str(expr), sympy.latex(expr)
            except Exception:  # sympy may choke on exotic custom operators: show the plain form
                (text, latex), dropped = self._texts(tok, const), []
            self._display[key] = (text, latex, intervals, dropped)
            if len(self._display) > 1000:
                self._display.pop(next(iter(self._display)))
        return self._display[key]

    def _selected_summary(self) -> tuple[str, list, list] | None:
        """(display text, intervals, dropped positions) of the selected member once scored on all rows."""
        front = self.front_programs()
        if not front:
            return None
        t, c, l = front[self.selected_index(front)]
        score = self._full.get((tuple(t), tuple(c)))
        if score is None or not score.done(len(self.data.y)):
            return None
        text, _, intervals, dropped = self._member_display(t, c, l, selected=True)
        return text, intervals, dropped

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
        out: list[str] = []
        front = self.front_programs()
        if not front:
            return out
        n = len(self.data.y)
        summary = self._selected_summary()
        if summary is None:
            t, c, _ = front[self.selected_index(front)]
            text, intervals, dropped = self._texts(t, c)[0], [], []
            if self.search_idx is not None:
                out.append(f"the losses are on a subsample of {len(self.ys)} of {n} rows: the job stopped before "
                           "scoring the front on all rows (extend it to finish)")
        else:
            text, intervals, dropped = summary
            t, c, _ = front[self.selected_index(front)]
        positions = [i for i, tk in enumerate(t) if tk == CONST]
        kept = [(p, ci) for p, ci in zip(positions, intervals) if p not in dropped]
        n_const = len(kept) if summary is not None else len(positions)
        few = few_rows_warning(n, text, n_const)
        if few:
            out.append(few)
        full_text = self._texts(t, c)[0]
        for _, ci in kept:
            if not ci.identified:
                out.append(f"constant {ci.value:.6g} of the selected equation {full_text} (displayed as {text}) is not "
                           f"identified by the data: its 95% interval [{ci.lower:.3g}, {ci.upper:.3g}] is wider than "
                           "its magnitude (a simpler equation on the front, more data or a wider range of inputs may "
                           "pin it down)")
        return out

    def _snapshot(self, max_points: int) -> xr.DataTree:
        front = self.front_programs()
        comp = np.array([len(t) for t, _, _ in front], dtype=np.int64)
        loss, loss_rows = self.front_losses(front)
        texts = [self._texts(t, c) for t, c, _ in front]
        sel = self.selected_index(front) if front else -1
        n_all = len(self.data.y)
        n_slots = max([sum(1 for x in t if x == CONST) for t, _, _ in front], default=0)
        cis = np.full((len(front), n_slots, 4), np.nan)
        displays = []
        for i, (t, c, l) in enumerate(front):
            score = self._full.get((tuple(t), tuple(c)))
            if score is not None and score.done(n_all):
                text, latex, intervals, _ = self._member_display(t, c, l, selected=i == sel)
                if intervals:
                    cis[i, :len(intervals)] = np.array(intervals, dtype=float)
            else:
                text, latex = texts[i]
            displays.append((text, latex))
        n = len(self.data.y)
        rows = np.arange(n) if n <= max_points else np.sort(
            np.random.default_rng(0).choice(n, max_points, replace=False))
        if front:
            tok, const = pack([(t, c) for t, c, _ in front], self.maxsize, self.device_obj, self.dtype)
            pred = evaluate(tok, const, self.X[torch.as_tensor(rows, device=self.device_obj)], self.vocab)
            pred = pred.cpu().numpy().astype(float)
        else:
            pred = np.zeros((0, len(rows)))
        pareto = xr.Dataset(
            {"equation": ("complexity", np.array([t[0] for t in texts], dtype=object).astype(str),
                          {"long_name": "the equation with its constants in full (machine-readable)"}),
             "display": ("complexity", np.array([d[0] for d in displays], dtype=object).astype(str),
                         {"long_name": "simplified, constants rounded to their uncertainty"}),
             "latex": ("complexity", np.array([d[1] for d in displays], dtype=object).astype(str)),
             "loss": ("complexity", loss, {"long_name": "mean squared error"}),
             "loss_rows": ("complexity", loss_rows, {"long_name": "rows the loss was computed on"}),
             "r2": ("complexity", 1.0 - loss / self.var_y, {"long_name": "coefficient of determination R²"}),
             "score": ("complexity", pareto_scores(comp, loss, self.floor),
                       {"long_name": "drop of log-loss per unit of complexity"}),
             "selected": ("complexity", np.arange(len(comp)) == sel),
             "prediction": (("complexity", "sample"), pred, {"long_name": f"predicted {self.data.target}"})},
            coords={"complexity": comp, "sample": rows},
            attrs={"selection": self.selection},
        )
        data = xr.Dataset(
            {name: ("sample", self.data.X[rows, i], {"units": self.data.units.get(name, "")})
             for i, name in enumerate(self.data.features)},
            coords={"sample": rows},
        )
        data[self.data.target] = ("sample", self.data.y[rows], {"units": self.data.units.get(self.data.target, "")})
        h = np.array(self.history, dtype=float).reshape(-1, 4)
        history = xr.Dataset(
            {"wall_time": ("iteration", h[:, 0], {"units": "s"}),
             "best_loss": ("iteration", h[:, 1], {"long_name": "lowest mean squared error on the front"}),
             "front_size": ("iteration", h[:, 2].astype(np.int64)),
             "evals_per_s": ("iteration", h[:, 3], {"long_name": "expressions evaluated per second"})},
            coords={"iteration": np.arange(1, len(h) + 1)},
        )
        constants = xr.Dataset(
            {k: (("complexity", "constant"), cis[:, :, j], {"long_name": doc}) for j, (k, doc) in enumerate(
                [("value", "fitted constant, in the order of the equation's tokens"),
                 ("std", "standard error (linearised least squares on all rows; inf: not identified)"),
                 ("lower", "lower end of the 95% interval"), ("upper", "upper end of the 95% interval")])},
            coords={"complexity": comp, "constant": np.arange(n_slots)})
        tree = xr.DataTree.from_dict({"/pareto": pareto, "/history": history, "/data": data,
                                      "/constants": constants})
        warnings = self.warnings()
        tree.attrs.update(
            features=json.dumps(self.data.features), target=self.data.target, units=json.dumps(self.data.units),
            ops=" ".join(self.vocab.names[2 + len(self.data.features):]), selection=self.selection,
            selected_complexity=int(comp[sel]) if front else -1,
            selected_equation=texts[sel][0] if front else "", selected_latex=displays[sel][1] if front else "",
            selected_display=displays[sel][0] if front else "", warnings=json.dumps(warnings),
            search_rows=int(len(self.ys)), scored_on_all_rows=bool(self.scored_on_all_rows()),
            iterations_done=int(self.iteration), evaluations=int(self.evals), n_samples=int(n),
            target_variance=float(self.var_y),
        )
        return tree

    # ------------------------------------------------------------------ checkpoint
    def _encode(self, programs: list[Program]) -> tuple[torch.Tensor, torch.Tensor]:
        tok, const = pack(programs, self.maxsize, "cpu", torch.float64)
        return tok, const

    def state_dict(self) -> dict[str, Any]:
        """A checkpoint of tensors, numbers, strings, lists and dicts (populations as int
        token and float constant tensors, the hall of fame, the RNG state, counters).

        Example:
            >>> import io
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu"); _ = e.step()
            >>> buf = io.BytesIO(); torch.save(e.state_dict(), buf); _ = buf.seek(0)
            >>> e2 = SymRegEngine(X, X ** 2, device="cpu"); e2.load_state_dict(torch.load(buf, weights_only=True))
            >>> e2.iteration, str(e2.best())
            (1, 'x0**2')
        """
        st = self.rng.bit_generator.state
        rng_state = {"bit_generator": st["bit_generator"], "state": str(st["state"]["state"]),
                     "inc": str(st["state"]["inc"]), "has_uint32": int(st["has_uint32"]),
                     "uinteger": int(st["uinteger"])}
        islands = []
        for isl in self.islands:
            tok, const = self._encode(isl["programs"])
            islands.append({"tokens": tok, "constants": const, "loss": torch.as_tensor(isl["loss"]),
                            "age": torch.as_tensor(isl["age"])})
        hof_sizes = sorted(self.hof)
        hof_tok, hof_const = self._encode([(self.hof[n][0], self.hof[n][1]) for n in hof_sizes]) if hof_sizes \
            else (torch.zeros(0, self.maxsize, dtype=torch.int64), torch.zeros(0, self.maxsize, dtype=torch.float64))
        return {
            "version": 1, "vocabulary": list(self.vocab.names), "rng": rng_state, "islands": islands,
            "hof_tokens": hof_tok, "hof_constants": hof_const,
            "hof_loss": torch.tensor([self.hof[n][2] for n in hof_sizes], dtype=torch.float64),
            "iteration": int(self.iteration), "budget": int(self.budget), "wall": float(self.wall),
            "evals": int(self.evals), "birth": int(self.birth),
            "deadline": -1.0 if self.deadline is None else float(self.deadline),
            "target_waived": bool(self.target_waived),
            "target_since": [] if self.target_since is None else list(self.target_since),
            "history": torch.tensor(self.history, dtype=torch.float64).reshape(-1, 4),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a checkpoint of :meth:`state_dict` (same features and operators); the
        search then continues exactly as it would have (see :meth:`state_dict`)."""
        if list(state["vocabulary"]) != self.vocab.names:
            raise ValueError(f"state: the checkpoint's tokens {state['vocabulary']} do not match this engine's "
                             f"{self.vocab.names} (different features or ops)")
        r = state["rng"]
        self.rng.bit_generator.state = {"bit_generator": r["bit_generator"],
                                        "state": {"state": int(r["state"]), "inc": int(r["inc"])},
                                        "has_uint32": int(r["has_uint32"]), "uinteger": int(r["uinteger"])}

        def decode(tok: torch.Tensor, const: torch.Tensor) -> list[Program]:
            out = []
            for t, c in zip(tok.tolist(), const.tolist()):
                n = sum(1 for x in t if x != PAD)
                out.append((t[:n], c[:n]))
            return out

        self.islands = [{"programs": decode(i["tokens"], i["constants"]), "loss": i["loss"].numpy().astype(float),
                         "age": i["age"].numpy().astype(np.int64)} for i in state["islands"]]
        self.hof = {}
        for (t, c), l in zip(decode(state["hof_tokens"], state["hof_constants"]), state["hof_loss"].tolist()):
            self.hof[len(t)] = (t, c, float(l))
        self.iteration, self.budget = int(state["iteration"]), int(state["budget"])
        self.wall, self.evals, self.birth = float(state["wall"]), int(state["evals"]), int(state["birth"])
        self.deadline = None if float(state["deadline"]) < 0 else float(state["deadline"])
        self.target_waived = bool(state["target_waived"])
        ts = list(state["target_since"])
        self.target_since = (int(ts[0]), int(ts[1])) if ts else None
        self.history = [tuple(row) for row in state["history"].tolist()]

    def config(self) -> dict[str, Any]:
        """JSON-able settings; with the data, :meth:`from_config` rebuilds the engine.

        Example:
            >>> SymRegEngine(np.linspace(1, 2, 20), np.linspace(1, 2, 20) ** 2, ops="+ *").config()["ops"]
            '+ *'
        """
        return {
            "features": list(self.data.features), "target": self.data.target, "units": dict(self.data.units),
            "ops": self.ops_text, "custom_ops": sorted(self.custom_ops), "maxsize": self.maxsize,
            "maxdepth": self.maxdepth, "nested": self.nested, "n_islands": self.n_islands,
            "population_size": self.population_size, "children": self.children,
            "tournament_size": self.tournament_size, "crossover_probability": self.crossover_probability,
            "iterations": self.budget, "time_limit": self.time_limit, "stop_loss": self._stop_loss_config,
            "patience": self.patience, "selection": self.selection, "const_iterations": self.const_iterations,
            "optimize_fraction": self.optimize_fraction, "migration_every": self.migration_every,
            "migration_fraction": self.migration_fraction, "parsimony": self.parsimony,
            "adaptive_parsimony": self.adaptive_parsimony, "device": self.device,
            "dtype": "float64" if self.dtype == torch.float64 else "float32", "threads": self.threads,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "SymRegEngine":
        """Rebuild from :meth:`config`; the data must be passed again as ``X`` and ``y``
        (arrays in the original feature order), or ``data`` (a DataFrame/Dataset),
        and custom operators as ``custom_ops``.

        Example:
            >>> X = np.linspace(1, 2, 20)
            >>> e = SymRegEngine(X, X ** 2, device="cpu")
            >>> SymRegEngine.from_config(e.config(), X=X, y=X ** 2).vocab.names == e.vocab.names
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
        if cfg.get("device") not in (None, "auto", "cpu") and not torch.cuda.is_available():
            cfg["device"] = "cpu"
        return cls(X, y, custom_ops=custom, **cfg)

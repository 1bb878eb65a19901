"""The island-model search: breeding, batched scoring, replacement and migration.

One :meth:`Population.generation` breeds children on every island (tournament
selection, one mutation or a crossover, constant folding, size/depth/nesting
limits), evaluates *all* children in one batched call, fits the constants of the
most promising by a batched Levenberg–Marquardt step, and lets each child replace
the oldest member of its island when simulated annealing accepts it (regularized
evolution). Every few generations islands exchange members with each other and with
the hall of fame (:meth:`Population.migrate`).

Example:
    >>> from sciml_lab.symreg.problem import Problem
    >>> from sciml_lab.symreg.settings import SymRegSettings
    >>> from sciml_lab.symreg.state import SymRegState
    >>> x = np.linspace(1, 2, 20)
    >>> s = SymRegSettings(ops="+ *", n_islands=2, population_size=8, device="cpu")
    >>> p = Problem.build(x, 3 * x, None, s, {})
    >>> pop = Population(p, s, SymRegState.start(s, p.vocab.names))
    >>> pop.initialize(); pop.generation(temperature=1.0)
    >>> [len(isl["programs"]) for isl in pop.state.islands]
    [8, 8]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .constants import fit_constants, weighted_mse
from .expression import evaluate, pack
from .problem import Problem
from .settings import SymRegSettings
from .state import SymRegState
from .variation import Program, crossover, fold_constants, mutate, random_program

__all__ = ["Population", "temperature", "max_row_evaluations"]


def temperature(iteration: int, cycle: int = 10) -> float:
    """The annealing temperature of a generation: from 1 down to 0.1 over each cycle.

    Example:
        >>> [temperature(i) for i in (0, 5, 10)]
        [1.0, 0.55, 1.0]
    """
    return 1.0 - (iteration % cycle) / cycle * 0.9


def max_row_evaluations(settings: SymRegSettings, search_rows: int) -> int:
    """An upper bound of the row-evaluations (rows x expressions) of one step: each batch
    of candidates (the initial populations, the children, the simplified front) is
    evaluated on the ``search_rows`` rows, with Levenberg–Marquardt fits of the best
    share, plus ``score_rows_per_step`` for the front on all rows.

    Example:
        >>> max_row_evaluations(SymRegSettings(), 100) < max_row_evaluations(SymRegSettings(), 200)
        True
    """
    s = settings
    n_const = (s.maxsize + 1) // 2

    def batch(p: int) -> int:
        fitted = max(1, int(math.ceil(s.optimize_fraction * p))) if s.const_iterations else 0
        return p + fitted * (1 + s.const_iterations * (n_const + 1))

    batches = batch(s.n_islands * s.population_size) + batch(s.n_islands * s.n_children) + batch(s.maxsize)
    return batches * search_rows + s.score_rows_per_step + (n_const + 1)


class Population:
    """The islands of a search and the operations on them; the islands, the hall of
    fame, the random stream and the counters live in ``state``.
    ``row_evaluations`` counts rows x expressions evaluated (not checkpointed).

    Example:
            >>> x = np.linspace(1, 2, 20)
        >>> s = SymRegSettings(ops="+ *", n_islands=1, population_size=8, device="cpu")
        >>> p = Problem.build(x, 3 * x, None, s, {})
        >>> pop = Population(p, s, SymRegState.start(s, p.vocab.names))
        >>> pop.initialize(); pop.state.evals >= 8 and len(pop.state.hof) > 0
        True
    """

    def __init__(self, problem: Problem, settings: SymRegSettings, state: SymRegState):
        self.problem, self.settings, self.state = problem, settings, state
        self.row_evaluations = 0

    # ------------------------------------------------------------------ scoring
    def fitness(self, loss: np.ndarray, sizes: np.ndarray, freq: np.ndarray) -> np.ndarray:
        """Relative loss, penalised by the frequency of each size and by size itself."""
        rel = loss / self.problem.var_y
        return rel * np.exp(self.settings.adaptive_parsimony * freq[sizes]) + self.settings.parsimony * sizes

    def size_frequencies(self) -> np.ndarray:
        """How often each size occurs over all islands (with one pseudo-count each)."""
        m = self.settings.maxsize + 2
        counts = np.ones(m)
        for isl in self.state.islands:
            counts += np.bincount([len(p[0]) for p in isl["programs"]], minlength=m)[:m]
        return counts / counts.sum()

    def score(self, programs: list[Program], optimize: bool) -> tuple[list[Program], np.ndarray]:
        """Evaluate in one batch; fit the constants of the most promising; update the hall of fame."""
        p, s, st = self.problem, self.settings, self.state
        tok, const = pack(programs, s.maxsize, p.device, p.dtype)
        loss = weighted_mse(evaluate(tok, const, p.Xs, p.vocab), p.ys, p.ws)
        st.evals += len(programs)
        self.row_evaluations += len(programs) * len(p.ys)
        has_const = (tok == 1).any(1)
        if optimize and s.const_iterations and bool(has_const.any()):
            loss_np = loss.cpu().numpy()
            cand = np.flatnonzero(has_const.cpu().numpy() & np.isfinite(loss_np))
            n_opt = max(1, int(math.ceil(s.optimize_fraction * len(programs))))
            cand = cand[np.argsort(loss_np[cand], kind="stable")[:n_opt]]
            if len(cand):
                idx = torch.as_tensor(cand, device=p.device)
                c_fit, l_fit, ev = fit_constants(tok[idx], const[idx], p.Xs, p.ys, p.ws, p.vocab, s.const_iterations)
                st.evals += ev
                self.row_evaluations += ev * len(p.ys)
                const[idx] = c_fit
                loss[idx] = l_fit
        loss_np = loss.cpu().numpy().astype(float)
        const_np = const.cpu().numpy()
        out = [(list(q[0]), const_np[i, :len(q[0])].tolist()) for i, q in enumerate(programs)]
        for q, l in zip(out, loss_np):
            if math.isfinite(l):
                st.hof.offer(q[0], q[1], l)
        return out, loss_np

    # ------------------------------------------------------------------ islands
    def _new_birth(self, k: int) -> np.ndarray:
        b = np.arange(self.state.birth, self.state.birth + k)
        self.state.birth += k
        return b

    def initialize(self) -> None:
        """Random populations (shallow programs within the limits), scored."""
        st, vocab, P = self.state, self.problem.vocab, self.settings.population_size
        rng = st.rng.generator
        progs: list[Program] = []
        for _ in range(self.settings.n_islands * P):
            for _attempt in range(10):
                p = fold_constants(random_program(rng, vocab, max_depth=int(rng.integers(1, 4))), vocab)
                if self.problem.constraints.ok(p[0]):
                    break
            else:
                p = ([int(vocab.var_tokens[0])], [0.0])
            progs.append(p)
        scored, loss = self.score(progs, optimize=True)
        st.islands[:] = [{"programs": scored[i * P:(i + 1) * P], "loss": loss[i * P:(i + 1) * P].copy(),
                          "age": self._new_birth(P)} for i in range(self.settings.n_islands)]

    def _tournament(self, fit: np.ndarray) -> int:
        k = min(self.settings.tournament_size, len(fit))
        cand = self.state.rng.generator.choice(len(fit), size=k, replace=False)
        return int(cand[np.argmin(fit[cand])])

    def _breed(self, isl: dict, fit: np.ndarray) -> tuple[list[Program], list[int]]:
        rng, vocab, n = self.state.rng.generator, self.problem.vocab, self.settings.n_children
        children, parents = [], []
        progs = isl["programs"]
        for _attempt in range(10 * n):  # bounded: limits can reject every variation
            if len(children) >= n:
                break
            i = self._tournament(fit)
            if rng.random() < self.settings.crossover_probability:
                j = self._tournament(fit)
                cands = crossover(progs[i], progs[j], rng, vocab)
            else:
                cands = (mutate(progs[i], rng, vocab),)
            for c in cands:
                c = fold_constants(c, vocab)
                if self.problem.constraints.ok(c[0]):
                    children.append(c)
                    parents.append(i)
        return children[:n], parents[:n]

    def generation(self, temperature: float) -> None:
        """Breed on every island, score all children in one batch, and replace the oldest
        member of each child's island when annealing at ``temperature`` accepts the child."""
        freq = self.size_frequencies()
        all_children: list[Program] = []
        owners: list[tuple[int, int]] = []
        for n, isl in enumerate(self.state.islands):
            sizes = np.array([len(p[0]) for p in isl["programs"]])
            kids, parents = self._breed(isl, self.fitness(isl["loss"], sizes, freq))
            all_children += kids
            owners += [(n, p) for p in parents]
        if not all_children:
            return
        scored, loss = self.score(all_children, optimize=True)
        child_fit = self.fitness(loss, np.array([len(p[0]) for p in scored]), freq)
        for (n, parent), prog, l, f in zip(owners, scored, loss, child_fit):
            isl = self.state.islands[n]
            psize = np.array([len(isl["programs"][parent][0])])
            pf = float(self.fitness(isl["loss"][parent:parent + 1], psize, freq)[0])
            if not math.isfinite(f):
                continue
            if math.isfinite(pf) and f > pf:
                if self.state.rng.generator.random() >= math.exp(-(math.log(f + 1e-300) - math.log(pf + 1e-300)) / temperature):
                    continue
            oldest = int(np.argmin(isl["age"]))
            isl["programs"][oldest] = prog
            isl["loss"][oldest] = l
            isl["age"][oldest] = self._new_birth(1)[0]

    def migrate(self, front: list[tuple[list[int], list[float], float]]) -> None:
        """Replace a ``migration_fraction`` of each island by front members or other islands' best."""
        rng, P = self.state.rng.generator, self.settings.population_size
        k = max(1, int(round(self.settings.migration_fraction * P)))
        islands = self.state.islands
        for n, isl in enumerate(islands):
            others = [o for m, o in enumerate(islands) if m != n]
            for slot in rng.choice(P, size=k, replace=False):
                if front and (not others or rng.random() < 0.5):
                    tok, const, loss = front[int(rng.integers(len(front)))]
                else:
                    src = others[int(rng.integers(len(others)))]
                    best = int(np.argmin(src["loss"]))
                    (tok, const), loss = src["programs"][best], src["loss"][best]
                isl["programs"][slot] = (list(tok), list(const))
                isl["loss"][slot] = loss
                isl["age"][slot] = self._new_birth(1)[0]

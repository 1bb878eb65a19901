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

from .constants import fit_constants, scaled_mse, weighted_mse
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
    share (on the fit rows, at most the search rows), plus ``score_rows_per_step`` for the front on all rows.

    Example:
        >>> max_row_evaluations(SymRegSettings(), 100) < max_row_evaluations(SymRegSettings(), 200)
        True
    """
    s = settings
    n_const = (s.maxsize + 1) // 2

    def batch(p: int) -> int:
        fitted = max(1, int(math.ceil(s.optimize_fraction * p))) if s.const_iterations else 0
        # a fit: its first evaluation and its iterations on the fit rows (at most the search rows), then
        # one evaluation of the fitted on the search rows
        return p + fitted * (2 + s.const_iterations * (n_const + 1))

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

    def known(self) -> dict[tuple, tuple[list[float], float]]:
        """The programs of the islands and the hall of fame, by tokens: their fitted constants and
        loss (the lowest of those sharing the tokens). Derived from the state, so a resumed run
        sees the same programs as an uninterrupted one."""
        out: dict[tuple, tuple[list[float], float]] = {}
        members = [(q, l) for isl in self.state.islands for q, l in zip(isl["programs"], isl["loss"])]
        members += [((t, c), l) for t, c, l in self.state.hof.values()]
        for (t, c), l in members:
            key = tuple(t)
            if math.isfinite(l) and (key not in out or l < out[key][1]):
                out[key] = (c, float(l))
        return out

    def score(self, programs: list[Program], optimize: bool) -> tuple[list[Program], np.ndarray]:
        """Evaluate in one batch; fit the constants of the most promising; update the hall of fame.

        With ``optimize``, a program whose tokens are already on an island or in the hall of fame
        takes that member's fitted constants (when they score better than its own) and is not
        refitted; of the others, the ``optimize_fraction`` whose shapes fit best (their loss after
        a linear scaling, :func:`~sciml_lab.symreg.constants.scaled_mse`) are fitted by
        Levenberg–Marquardt."""
        p, s, st = self.problem, self.settings, self.state
        tok, const = pack(programs, s.maxsize, p.device, p.dtype)
        pred = evaluate(tok, const, p.Xs, p.vocab)
        loss = weighted_mse(pred, p.ys, p.ws)
        st.evals += len(programs)
        self.row_evaluations += len(programs) * len(p.ys)
        has_const = (tok == 1).any(1)
        if optimize and s.const_iterations and bool(has_const.any()):
            loss_np = loss.cpu().numpy()
            known, fresh = self.known(), np.ones(len(programs), dtype=bool)
            for i, q in enumerate(programs):
                hit = known.get(tuple(q[0]))
                if hit is not None:
                    fresh[i] = False
                    if not hit[1] >= loss_np[i]:
                        const[i, :len(hit[0])] = torch.as_tensor(hit[0], dtype=const.dtype)
                        loss[i] = hit[1]
            shape = scaled_mse(pred, p.ys, p.ws).cpu().numpy()
            cand = np.flatnonzero(has_const.cpu().numpy() & np.isfinite(shape) & fresh)
            n_opt = max(1, int(math.ceil(s.optimize_fraction * int(fresh.sum()))))
            cand = cand[np.argsort(shape[cand], kind="stable")[:n_opt]]
            if len(cand):
                idx = torch.as_tensor(cand, device=p.device)
                c_fit, l_fit, ev = fit_constants(tok[idx], const[idx], p.Xf, p.yf, p.wf, p.vocab, s.const_iterations)
                st.evals += ev
                self.row_evaluations += ev * len(p.yf)
                if p.yf is not p.ys:  # fitted on a subsample: scored on the search rows, kept where better
                    l_fit = weighted_mse(evaluate(tok[idx], c_fit, p.Xs, p.vocab), p.ys, p.ws)
                    st.evals += len(cand)
                    self.row_evaluations += len(cand) * len(p.ys)
                better = l_fit < loss[idx]
                const[idx] = torch.where(better[:, None], c_fit, const[idx])
                loss[idx] = torch.where(better, l_fit, loss[idx])
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

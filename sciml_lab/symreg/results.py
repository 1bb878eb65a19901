"""What a search shows: the front members' texts and displays, the warnings on the
selected equation, the live table and the result DataTree.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import torch
import xarray as xr

from .constants import weighted_mse
from .expression import CONST, Equation, evaluate, pack
from .front import FrontScores, Member, pareto_scores
from .identify import FullScore, display_expression, few_rows_warning
from .problem import Problem

__all__ = ["Results"]

_CONSTANT_VARIABLES = [("value", "fitted constant, in the order of the equation's tokens"),
                       ("std", "standard error (linearised least squares on all rows; inf: not identified)"),
                       ("lower", "lower end of the 95% interval"), ("upper", "upper end of the 95% interval")]


class Results:
    """Texts, displays, warnings and the result of a front (caches of sympy conversions;
    not checkpointed).

    Example:
        >>> from sciml_lab.symreg.front import FrontScores
        >>> from sciml_lab.symreg.problem import Problem
        >>> from sciml_lab.symreg.settings import SymRegSettings
        >>> x = np.linspace(1, 2, 20)
        >>> p = Problem.build(x, 3 * x, None, SymRegSettings(ops="+ *", device="cpu"), {})
        >>> r = Results(p, FrontScores(p))
        >>> r.texts([1, 2, 4], [3.0, 0.0, 0.0])      # c*x with c = 3 (tokens: c=1, x0=2, +=3, *=4)
        ('3.0*x0', '3 x_{0}')
        >>> r.live_table([([1, 2, 4], [3.0, 0.0, 0.0], 0.0)], 0)["rows"]
        [[3, '3 x_{0}', 0.0, 1.0]]
    """

    def __init__(self, problem: Problem, scores: FrontScores, cache_size: int = 5000):
        self.problem, self.scores, self.cache_size = problem, scores, cache_size
        self._texts: dict[tuple, tuple[str, str]] = {}
        self._display: dict[tuple, tuple[str, str, list, list]] = {}

    def texts(self, tok: Sequence[int], const: Sequence[float]) -> tuple[str, str]:
        """(sympy text, LaTeX) of a member with its constants in full; cached."""
        key = (tuple(tok), tuple(const))
        if key not in self._texts:
            eq = Equation(tok, const, self.problem.vocab)
            try:
                self._texts[key] = (str(eq.sympy()), eq.latex())
            except Exception:  # sympy may choke on exotic custom operators; keep the search alive
                self._texts[key] = (" ".join(self.problem.vocab.names[t] for t in tok), "")
            if len(self._texts) > self.cache_size:
                self._texts.pop(next(iter(self._texts)))
        return self._texts[key]

    def member_display(self, tok: list[int], const: list[float], search_loss: float,
                       selected: bool = False) -> tuple[str, str, list, list]:
        """(display text, display LaTeX, constant intervals, dropped positions) of a front member
        scored on all rows; cached. Only the selected member gets sympy's full ``simplify``
        (the others ``cancel``), which keeps a snapshot cheap."""
        key = (tuple(tok), tuple(const), selected)
        if key not in self._display:
            import sympy

            p = self.problem
            intervals = self.scores.full[key[:2]].intervals(p.n_rows)

            def loss_of(c: list[float]) -> float:
                t, cc = pack([(tok, c)], p.maxsize, p.device, p.dtype)
                return float(weighted_mse(evaluate(t, cc, p.Xs, p.vocab), p.ys, p.ws)[0])

            def refit(c: list[float], fixed: list[int]) -> list:
                # the reduced equation, on the search rows (all rows when there are at most search_rows)
                score = FullScore(tok, c, fixed)
                while not score.done(len(p.ys)):
                    score.advance(p.Xs, p.ys, p.ws, p.vocab, 1 << 22)
                return score.intervals(len(p.ys))

            try:
                expr, dropped, intervals = display_expression(tok, const, intervals, p.vocab, loss_of, search_loss,
                                                              len(p.ys), p.floor, full_simplify=selected, refit=refit)
                text, latex = str(expr), sympy.latex(expr)
            except Exception:  # sympy may choke on exotic custom operators: show the plain form
                (text, latex), dropped = self.texts(tok, const), []
            self._display[key] = (text, latex, intervals, dropped)
            if len(self._display) > 1000:
                self._display.pop(next(iter(self._display)))
        return self._display[key]

    def warnings(self, front: Sequence[Member], sel: int) -> list[str]:
        """What a scientist should know before trusting the selected member ``front[sel]``
        (see :meth:`~sciml_lab.symreg.engine.SymRegEngine.warnings`)."""
        out: list[str] = []
        if not front:
            return out
        p = self.problem
        t, c, l = front[sel]
        if self.scores.get(t, c) is None:
            text, intervals, dropped, summary = self.texts(t, c)[0], [], [], False
            if p.search_idx is not None:
                out.append(f"the losses are on a subsample of {len(p.ys)} of {p.n_rows} rows: the job stopped before "
                           "scoring the front on all rows (extend it to finish)")
        else:
            text, _, intervals, dropped = self.member_display(t, c, l, selected=True)
            summary = True
        positions = [i for i, tk in enumerate(t) if tk == CONST]
        kept = [(q, ci) for q, ci in zip(positions, intervals) if q not in dropped]
        few = few_rows_warning(p.n_rows, text, len(kept) if summary else len(positions))
        if few:
            out.append(few)
        full_text = self.texts(t, c)[0]
        for _, ci in kept:
            if not ci.identified:
                out.append(f"constant {ci.value:.6g} of the selected equation {full_text} (displayed as {text}) is not "
                           f"identified by the data: its 95% interval [{ci.lower:.3g}, {ci.upper:.3g}] is wider than "
                           "its magnitude (a simpler equation on the front, more data or a wider range of inputs may "
                           "pin it down)")
        return out

    def live_table(self, front: Sequence[Member], sel: int) -> dict[str, Any]:
        """The front as a small JSON-able table (LaTeX in column 1; ``selected``: the row of
        the selected equation, -1: none)."""
        var_y = self.problem.var_y
        rows = [[len(t), self.texts(t, c)[1], float(l), float(1.0 - l / var_y)] for t, c, l in front]
        return {"columns": ["complexity", "equation", "loss", "R²"], "latex_columns": [1], "rows": rows,
                "selected": sel if front else -1, "target": self.problem.data.target}

    def _displays(self, front: Sequence[Member], sel: int, texts: list) -> tuple[list, np.ndarray]:
        """Each member's (display text, LaTeX) and its constants' intervals ``(member, slot, 4)``."""
        n_slots = max([sum(1 for x in t if x == CONST) for t, _, _ in front], default=0)
        cis = np.full((len(front), n_slots, 4), np.nan)
        displays = []
        for i, (t, c, l) in enumerate(front):
            if self.scores.get(t, c) is not None:
                text, latex, intervals, _ = self.member_display(t, c, l, selected=i == sel)
                if intervals:
                    cis[i, :len(intervals)] = np.array(intervals, dtype=float)
            else:
                text, latex = texts[i]
            displays.append((text, latex))
        return displays, cis

    def _predictions(self, front: Sequence[Member], rows: np.ndarray) -> np.ndarray:
        p = self.problem
        if not front:
            return np.zeros((0, len(rows)))
        tok, const = pack([(t, c) for t, c, _ in front], p.maxsize, p.device, p.dtype)
        pred = evaluate(tok, const, p.X[torch.as_tensor(rows, device=p.device)], p.vocab)
        return pred.cpu().numpy().astype(float)

    def _pareto(self, front: Sequence[Member], sel: int, texts: list, displays: list, rows: np.ndarray,
                selection: str) -> xr.Dataset:
        comp = np.array([len(t) for t, _, _ in front], dtype=np.int64)
        loss, loss_rows = self.scores.losses(front)

        def strings(values: list) -> np.ndarray:
            return np.array(values, dtype=object).astype(str)

        return xr.Dataset(
            {"equation": ("complexity", strings([t[0] for t in texts]),
                          {"long_name": "the equation with its constants in full (machine-readable)"}),
             "display": ("complexity", strings([d[0] for d in displays]),
                         {"long_name": "simplified, constants rounded to their uncertainty"}),
             "latex": ("complexity", strings([d[1] for d in displays])),
             "loss": ("complexity", loss, {"long_name": "mean squared error"}),
             "loss_rows": ("complexity", loss_rows, {"long_name": "rows the loss was computed on"}),
             "r2": ("complexity", 1.0 - loss / self.problem.var_y, {"long_name": "coefficient of determination R²"}),
             "score": ("complexity", pareto_scores(comp, loss, self.problem.floor),
                       {"long_name": "drop of log-loss per unit of complexity"}),
             "selected": ("complexity", np.arange(len(comp)) == sel),
             "prediction": (("complexity", "sample"), self._predictions(front, rows),
                            {"long_name": f"predicted {self.problem.data.target}"})},
            coords={"complexity": comp, "sample": rows}, attrs={"selection": selection})

    def _data(self, rows: np.ndarray) -> xr.Dataset:
        d = self.problem.data
        data = xr.Dataset({name: ("sample", d.X[rows, i], {"units": d.units.get(name, "")})
                           for i, name in enumerate(d.features)}, coords={"sample": rows})
        data[d.target] = ("sample", d.y[rows], {"units": d.units.get(d.target, "")})
        return data

    def snapshot(self, front: Sequence[Member], sel: int, history: xr.Dataset, selection: str,
                 attrs: dict[str, Any], max_points: int = 5000) -> xr.DataTree:
        """The result DataTree (see :meth:`~sciml_lab.symreg.engine.SymRegEngine.snapshot`);
        ``attrs`` are added to its root's."""
        p = self.problem
        texts = [self.texts(t, c) for t, c, _ in front]
        displays, cis = self._displays(front, sel, texts)
        n = p.n_rows
        rows = np.arange(n) if n <= max_points else np.sort(np.random.default_rng(0).choice(n, max_points,
                                                                                               replace=False))
        pareto = self._pareto(front, sel, texts, displays, rows, selection)
        comp = pareto["complexity"].values
        constants = xr.Dataset({k: (("complexity", "constant"), cis[:, :, j], {"long_name": doc})
                                for j, (k, doc) in enumerate(_CONSTANT_VARIABLES)},
                               coords={"complexity": comp, "constant": np.arange(cis.shape[1])})
        tree = xr.DataTree.from_dict({"/pareto": pareto, "/history": history, "/data": self._data(rows),
                                      "/constants": constants})
        d = p.data
        tree.attrs.update(
            features=json.dumps(d.features), target=d.target, units=json.dumps(d.units),
            ops=" ".join(p.vocab.names[2 + len(d.features):]), selection=selection,
            selected_complexity=int(comp[sel]) if front else -1,
            selected_equation=texts[sel][0] if front else "", selected_latex=displays[sel][1] if front else "",
            selected_display=displays[sel][0] if front else "", warnings=json.dumps(self.warnings(front, sel)),
            search_rows=int(len(p.ys)), **attrs, n_samples=int(n), target_variance=float(p.var_y))
        return tree

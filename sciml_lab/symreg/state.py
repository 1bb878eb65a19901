"""The state of a search: everything a step changes, as one dataclass whose checkpoint
is derived from its fields (see :class:`~sciml_lab.kit.state.State`).

Populations and the hall of fame are stored as padded token and constant tensors,
the random stream as its PCG64 state; a checkpoint loads with
``torch.load(weights_only=True)``. Checkpoints written before this layout are mapped
once by :func:`upgrade`.

Example:
    >>> s = SymRegState.start(SymRegSettings(maxsize=5), ["c", "x0"])
    >>> s.hof[1] = ([1], [2.5], 0.25); s.budget.spent = 3
    >>> t = SymRegState.start(SymRegSettings(maxsize=5), ["c", "x0"])
    >>> t.load_state_dict(s.state_dict()); t.hof, t.budget.spent
    ({1: ([1], [2.5], 0.25)}, 3)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..kit.budget import Budget
from ..kit.history import History
from ..kit.state import State
from .expression import PAD, pack
from .settings import SymRegSettings

__all__ = ["SymRegState", "Islands", "HallOfFame", "NumpyRandom", "upgrade", "HISTORY"]

Program = tuple[list[int], list[float]]

#: the columns of the search's history, one row per iteration
HISTORY = ("wall_time", "best_loss", "front_size", "evals_per_s")
_HISTORY_ATTRS = {"wall_time": {"units": "s"}, "best_loss": {"long_name": "lowest mean squared error on the front"},
                  "evals_per_s": {"long_name": "expressions evaluated per second"}}


def encode(programs: Sequence[Program], maxsize: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Programs as ``(P, maxsize)`` int token and float64 constant tensors (padded).

    Example:
        >>> [t.tolist() for t in encode([([2, 3], [0.0, 1.5])], 3)]
        [[[2, 3, 0]], [[0.0, 1.5, 0.0]]]
    """
    if not programs:
        return torch.zeros(0, maxsize, dtype=torch.int64), torch.zeros(0, maxsize, dtype=torch.float64)
    return pack(programs, maxsize, "cpu", torch.float64)


def decode(tokens: torch.Tensor, constants: torch.Tensor) -> list[Program]:
    """The programs of :func:`encode`.

    Example:
        >>> decode(*encode([([2, 3], [0.0, 1.5])], 3))
        [([2, 3], [0.0, 1.5])]
    """
    out = []
    for t, c in zip(tokens.tolist(), constants.tolist()):
        n = sum(1 for x in t if x != PAD)
        out.append((t[:n], c[:n]))
    return out


class NumpyRandom:
    """A NumPy random generator (PCG64, ``.generator``) whose state is checkpoint data.

    Example:
        >>> r = NumpyRandom(3); s = r.state_dict(); a = r.generator.integers(100)
        >>> r.load_state_dict(s); bool(r.generator.integers(100) == a)
        True
    """

    def __init__(self, seed: int):
        self.generator = np.random.default_rng(seed)

    def state_dict(self) -> dict[str, Any]:
        st = self.generator.bit_generator.state
        return {"bit_generator": st["bit_generator"], "state": str(st["state"]["state"]),
                "inc": str(st["state"]["inc"]), "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}

    def load_state_dict(self, r: Mapping[str, Any]) -> None:
        self.generator.bit_generator.state = {"bit_generator": r["bit_generator"],
                                              "state": {"state": int(r["state"]), "inc": int(r["inc"])},
                                              "has_uint32": int(r["has_uint32"]), "uinteger": int(r["uinteger"])}


class Islands(list):
    """The populations: one dict per island with ``programs`` (list of ``(tokens,
    constants)``), ``loss`` (float array) and ``age`` (int array: birth numbers).

    Example:
        >>> isl = Islands(4); isl.append({"programs": [([2], [0.0])], "loss": np.array([1.0]), "age": np.array([0])})
        >>> back = Islands(4); back.load_state_dict(isl.state_dict()); back[0]["programs"]
        [([2], [0.0])]
    """

    def __init__(self, maxsize: int, islands: Sequence[dict] = ()):
        super().__init__(islands)
        self.maxsize = maxsize

    def state_dict(self) -> list[dict[str, torch.Tensor]]:
        out = []
        for isl in self:
            tok, const = encode(isl["programs"], self.maxsize)
            out.append({"tokens": tok, "constants": const, "loss": torch.as_tensor(isl["loss"]),
                        "age": torch.as_tensor(isl["age"])})
        return out

    def load_state_dict(self, state: Sequence[Mapping[str, torch.Tensor]]) -> None:
        self[:] = [{"programs": decode(i["tokens"], i["constants"]), "loss": i["loss"].numpy().astype(float),
                    "age": i["age"].numpy().astype(np.int64)} for i in state]


class HallOfFame(dict):
    """The best expression seen of each size: ``{size: (tokens, constants, loss)}``.

    Example:
        >>> h = HallOfFame(5, {1: ([2], [0.0], 1.0), 3: ([2, 2, 4], [0.0] * 3, 2.0)})
        >>> h.front()    # the size-3 member is no better than the size-1 one
        [([2], [0.0], 1.0)]
    """

    def __init__(self, maxsize: int, members: Mapping[int, tuple] | None = None):
        super().__init__(members or {})
        self.maxsize = maxsize

    def offer(self, tokens: list[int], constants: list[float], loss: float) -> None:
        """Keep ``(tokens, constants, loss)`` if it is the best of its size (``loss`` finite)."""
        n = len(tokens)
        if n not in self or loss < self[n][2]:
            self[n] = (list(tokens), list(constants), float(loss))

    def front(self) -> list[tuple[list[int], list[float], float]]:
        """The Pareto front: by increasing size, each member strictly more accurate than every smaller one."""
        out, best = [], np.inf
        for n in sorted(self):
            tok, const, loss = self[n]
            if loss < best:
                out.append((tok, const, loss))
                best = loss
        return out

    def state_dict(self) -> dict[str, torch.Tensor]:
        sizes = sorted(self)
        tok, const = encode([(self[n][0], self[n][1]) for n in sizes], self.maxsize)
        return {"tokens": tok, "constants": const,
                "loss": torch.tensor([self[n][2] for n in sizes], dtype=torch.float64)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.clear()
        for (t, c), loss in zip(decode(state["tokens"], state["constants"]), state["loss"].tolist()):
            self[len(t)] = (t, c, float(loss))


@dataclasses.dataclass
class SymRegState(State):
    """Everything a search step changes: the random stream, the populations, the hall of
    fame, the iteration budget (``budget.spent`` is the iteration), the history, the
    counters, the time spent and its deadline, since when the simplest equation under
    ``stop_loss`` has held (``[complexity, iteration]``, empty: none), the last search
    step's metrics and, once a search is over, its ``finished`` hall of fame (its front with
    constants snapped to simple values; empty while it runs, see
    :meth:`~sciml_lab.symreg.search.Search.finish`). ``vocabulary`` is the token names, checked when a checkpoint loads.

    Example:
        >>> s = SymRegState.start(SymRegSettings(), ["c", "x0"])
        >>> sorted(s.state_dict())[:4]
        ['birth', 'budget', 'deadline', 'evals']
    """

    vocabulary: list[str]
    rng: NumpyRandom
    islands: Islands
    hof: HallOfFame
    budget: Budget
    history: History
    birth: int = 0
    evals: int = 0
    wall: float = 0.0
    deadline: float | None = None
    target_since: list[int] = dataclasses.field(default_factory=list)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    finished: HallOfFame = dataclasses.field(default_factory=lambda: HallOfFame(0))

    @classmethod
    def start(cls, settings: SymRegSettings, vocabulary: Sequence[str]) -> "SymRegState":
        """The state before the first step: the budget and the deadline from ``settings``."""
        budget = Budget("iterations", settings.total_iterations, settings.criteria)
        return cls(list(vocabulary), NumpyRandom(settings.seed), Islands(settings.maxsize),
                   HallOfFame(settings.maxsize), budget, History("iteration", HISTORY, _HISTORY_ATTRS),
                   deadline=settings.time_limit, finished=HallOfFame(settings.maxsize))


def upgrade(state: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint of the first layout (flat hall of fame, ``iteration`` and ``budget``
    counters, a waived target, ``-1`` for no deadline) in today's; others unchanged.

    Example:
        >>> old = {"hof_tokens": 1, "hof_constants": 2, "hof_loss": 3, "iteration": 8, "budget": 104,
        ...        "target_waived": True, "deadline": -1.0}
        >>> new = upgrade(old); new["budget"], new["deadline"], new["hof"]["loss"]
        ({'total': 104, 'spent': 8, 'floor': 104}, None, 3)
    """
    if "hof_tokens" not in state:
        return dict(state)
    s = dict(state)
    s["hof"] = {"tokens": s.pop("hof_tokens"), "constants": s.pop("hof_constants"), "loss": s.pop("hof_loss")}
    total = int(s["budget"])
    # a target waived by an extension could not end the run before its budget: the floor is the budget
    s["budget"] = {"total": total, "spent": int(s.pop("iteration")), "floor": total if s.pop("target_waived") else 0}
    s["deadline"] = None if float(s["deadline"]) < 0 else float(s["deadline"])
    return s

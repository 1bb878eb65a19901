"""The budget rule shared by every engine: a budget in the engine's own unit
(loops, simulator runs, iterations), an optional ``until`` target, and one rule for
``extend``.

The rule: a run ends when its budget is spent or, earlier, when every ``until``
criterion holds. ``extend(n)`` pays for ``n`` more units counted from where the run
is (a run that had ended, by its budget or by its target, continues from its end;
a running one gets ``n`` more on top of its budget), and the target may end the run
again only once those ``n`` units are spent: an extension is always paid in full,
never cut short by a target that was already met.

Example:
    >>> from sciml_lab.kit.protocol import parse_criteria
    >>> b = Budget("loops", total=20, criteria=parse_criteria("rhat<1.01"))
    >>> b.spent = 5; b.done({"rhat": 1.005})     # the target ends the run early
    True
    >>> b.extend(3, ended=True); (b.total, b.floor)
    (8, 8)
    >>> b.done({"rhat": 1.005})                  # not before the 3 loops are paid
    False
    >>> b.spent = 8; b.done({"rhat": 1.005})
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from .checks import at_least

__all__ = ["Budget"]


@dataclasses.dataclass
class Budget:
    """A budget of ``total`` units of ``unit`` (the word ``extend`` takes), of which
    ``spent`` are used, with an optional ``until`` target (``criteria``, all must
    hold) that may end the run once ``spent >= floor``."""

    unit: str
    total: int
    criteria: Sequence[Any] = ()
    spent: int = 0
    floor: int = 0

    def exhausted(self) -> bool:
        """The budget is spent."""
        return self.spent >= self.total

    def target_met(self, metrics: Mapping[str, float] | None) -> bool:
        """Every criterion holds on ``metrics`` and may end the run now (at least one
        unit spent, and the last extension paid for)."""
        if not self.criteria or not metrics or self.spent < max(self.floor, 1):
            return False
        return all(c.met(metrics) for c in self.criteria)

    def done(self, metrics: Mapping[str, float] | None = None) -> bool:
        """Spent, or ended by the target."""
        return self.exhausted() or self.target_met(metrics)

    def progress(self, partial: float = 0.0) -> float:
        """Fraction spent, with ``partial`` of the current unit done, in [0, 1]."""
        return float(min(1.0, max(0.0, (self.spent + partial) / max(self.total, 1))))

    def extend(self, n: int, *, ended: bool) -> None:
        """Pay for ``n`` more units (the rule in the module's docstring); ``ended``:
        whether the run had ended (its budget spent or its target met)."""
        n = at_least(1)(self.unit, n)
        self.total = (self.spent if ended else max(self.total, self.spent)) + n
        self.floor = self.spent + n

    def state_dict(self) -> dict[str, int]:
        return {"total": int(self.total), "spent": int(self.spent), "floor": int(self.floor)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.total, self.spent = int(state["total"]), int(state["spent"])
        self.floor = int(state.get("floor", 0))

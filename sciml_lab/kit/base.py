"""``KitEngine``: the protocol's bookkeeping for an engine built on the kit.

An engine that keeps its options in ``self.settings`` (a
:class:`~sciml_lab.kit.settings.Settings`) and everything that changes in
``self.state`` (a :class:`~sciml_lab.kit.state.State` with a ``budget``
:class:`~sciml_lab.kit.budget.Budget` field) writes only ``step()`` and
``snapshot()``: ``done``, ``progress``, ``extend``, ``default_extend``,
``state_dict``/``load_state_dict`` and ``config``/``from_config`` come from here,
with the kit's one budget rule.

Example:
    >>> import dataclasses, xarray as xr
    >>> from sciml_lab.kit import Budget, Settings, State, at_least, option
    >>> @dataclasses.dataclass(frozen=True)
    ... class CountSettings(Settings):
    ...     steps: int = option(3, at_least(1), "steps")
    >>> @dataclasses.dataclass
    ... class CountState(State):
    ...     budget: Budget
    >>> class Count(KitEngine):
    ...     kind, budget_words, settings_class = "count", ("steps",), CountSettings
    ...     def __init__(self, steps=3):
    ...         self.settings = CountSettings(steps)
    ...         self.state = CountState(Budget("steps", steps))
    ...     def step(self):
    ...         self.state.budget.spent += 1
    ...         return {"n": self.state.budget.spent}
    ...     def snapshot(self):
    ...         return xr.DataTree()
    >>> e = Count(); _ = [e.step() for _ in range(3)]; e.done()
    True
    >>> e.extend(steps=2); e.done(), e.progress()
    (False, 0.6)
    >>> Count.from_config(e.config()).settings.steps
    3
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

from .protocol import EngineBase, check_budget

__all__ = ["KitEngine"]


class KitEngine(EngineBase):
    """Base of engines whose options are ``self.settings`` and whose changing data is
    ``self.state`` (with a ``budget`` field); ``settings_class`` names the settings'
    dataclass, ``metrics`` (optional) the latest metrics the ``until`` target reads."""

    settings_class: ClassVar[type]

    def done(self) -> bool:
        """The budget is spent or the ``until`` target met (the kit's rule)."""
        return self.state.budget.done(getattr(self, "metrics", None))

    def progress(self) -> float:
        """Fraction of the budget spent (1 once done)."""
        return 1.0 if self.done() else self.state.budget.progress()

    def extend(self, **budget: Any) -> None:
        """Pay for more units of the budget word (see :class:`~sciml_lab.kit.budget.Budget`)."""
        (n,) = check_budget(self, budget).values()
        self.state.budget.extend(n, ended=self.done())

    def default_extend(self) -> dict[str, int]:
        """The monitor's Extend button: as many units again as the budget holds."""
        return {self.state.budget.unit: int(self.state.budget.total)}

    def state_dict(self) -> dict[str, Any]:
        """The state's fields as checkpoint data."""
        return self.state.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a checkpoint (older layouts go through :meth:`upgrade` first)."""
        self.state.load_state_dict(self.upgrade(dict(state)))

    def upgrade(self, state: dict[str, Any]) -> dict[str, Any]:
        """Map a checkpoint of an older layout onto the state's fields (override)."""
        return state

    def config(self) -> dict[str, Any]:
        """The settings as JSON data."""
        return self.settings.config()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **objects: Any) -> "KitEngine":
        """Rebuild from ``config()`` plus the objects that are not data (by name)."""
        settings = cls.settings_class.from_config(config)
        return cls(**objects, **{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)})

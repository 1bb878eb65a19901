"""``Of``: an engine attribute that lives in one of its parts.

An engine on the kit keeps its data in parts (settings, state, a fit, the runs);
``Of("runs")`` as a class attribute makes ``engine.X`` read and write
``engine.runs.X``, so code and tests that use the engine's flat names keep
working and there is one copy of each value.

Example:
    >>> class Part:
    ...     def __init__(self): self.n = 1
    >>> class Engine:
    ...     n = Of("part")
    ...     total = Of("part", "n")
    ...     def __init__(self): self.part = Part()
    >>> e = Engine(); e.n = 5; (e.part.n, e.total)
    (5, 5)
"""

from __future__ import annotations

from typing import Any

__all__ = ["Of"]


class Of:
    """An engine attribute that is one of its parts' (``eng.X`` is ``eng.<part>.X``)."""

    def __init__(self, part: str, name: str | None = None):
        self.part, self.name = part, name

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(getattr(obj, self.part), self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(getattr(obj, self.part), self.name, value)

"""Settings: one frozen dataclass per engine that *is* its signature.

Each field is declared once with :func:`option`: its default, its check, its help
text and, optionally, its ``%sciml`` flag. From that one declaration come the
validation (in ``__post_init__``), the run's ``config()`` (JSON data in
``job.json``), ``from_config()`` (a reopened run, old ones included: a field a
run written before it existed takes its default), and the magic's options
(:func:`magic_options`). Adding an option to an engine is one line.

Example:
    >>> import dataclasses
    >>> from sciml_lab.kit.checks import at_least, one_of
    >>> @dataclasses.dataclass(frozen=True)
    ... class Fit(Settings):
    ...     steps: int = option(10, at_least(1), "optimiser steps", flag="--steps")
    ...     method: str = option("lbfgs", one_of("lbfgs", "adam"), "optimiser")
    >>> s = Fit(steps=20)
    >>> s.config()
    {'steps': 20, 'method': 'lbfgs'}
    >>> Fit.from_config({"steps": 5}).method     # a field the old run lacks: its default
    'lbfgs'
    >>> Fit(steps=0)
    Traceback (most recent call last):
    ...
    ValueError: steps: expected an integer >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, ClassVar, Iterator, Mapping

__all__ = ["Settings", "option", "magic_options", "to_json", "MISSING"]

MISSING = dataclasses.MISSING


def option(default: Any = MISSING, check: Callable[[str, Any], Any] | None = None, help: str = "", *,
           flag: str | None = None, metavar: str | None = None, factory: Callable[[], Any] | None = None,
           in_config: bool = True) -> Any:
    """Declare one setting: its default, its check ``check(name, value) -> value``
    (which converts, e.g. a list to a tuple, or raises ``ValueError`` naming the
    argument), its help text, and the ``%sciml`` flag that sets it (none: Python only).
    ``in_config=False`` keeps a setting out of ``config()`` (e.g. a chunk size that
    does not change results).

    Example:
        >>> from sciml_lab.kit.checks import at_least
        >>> f = option(3, at_least(1), "restarts", flag="--restarts")
        >>> f.metadata["flag"], f.default
        ('--restarts', 3)
    """
    meta = {"check": check, "help": help, "flag": flag, "metavar": metavar, "in_config": in_config}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def to_json(value: Any) -> Any:
    """Settings values as JSON data: tuples become lists, mappings dicts, non-finite
    floats strings ("inf", "-inf", "nan").

    Example:
        >>> to_json({"a": (1.0, float("inf"))})
        {'a': [1.0, 'inf']}
    """
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


class Settings:
    """Base of an engine's frozen settings dataclass (decorate the subclass with
    ``@dataclasses.dataclass(frozen=True)`` and declare fields with :func:`option`).

    ``__post_init__`` runs every field's check, in declaration order, and a
    ``validate()`` hook for checks across fields.
    """

    _ENGINE_OBJECTS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is not None:
                object.__setattr__(self, f.name, check(f.name, getattr(self, f.name)))
        self.validate()

    def validate(self) -> None:
        """Checks that involve more than one field (override; raise ``ValueError``)."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The settings' names, in declaration order.

        Example:
            >>> @dataclasses.dataclass(frozen=True)
            ... class S(Settings):
            ...     a: int = option(1)
            >>> S.names()
            ('a',)
        """
        return tuple(f.name for f in dataclasses.fields(cls))

    def config(self) -> dict[str, Any]:
        """The settings as JSON data (those declared ``in_config``)."""
        return {f.name: to_json(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.metadata.get("in_config", True)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any):
        """Settings from a stored ``config()``: fields it lacks take their defaults,
        keys that are no setting (written by another version) are left out; checks
        run again, so a damaged file gives the same clear error as a bad argument."""
        known = set(cls.names())
        values = {k: _from_json(v) for k, v in config.items() if k in known}
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any):
        """A copy with some settings changed (checked again).

        Example:
            >>> @dataclasses.dataclass(frozen=True)
            ... class S(Settings):
            ...     a: int = option(1)
            >>> S().replace(a=2).a
            2
        """
        return dataclasses.replace(self, **changes)


def _from_json(value: Any) -> Any:
    if value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


def magic_options(settings: type[Settings]) -> Iterator[tuple[str, dataclasses.Field]]:
    """The ``(flag, field)`` pairs of the settings that have a ``%sciml`` flag; the
    magic adds one argparse option per pair, and the field's check validates it.

    Example:
        >>> @dataclasses.dataclass(frozen=True)
        ... class S(Settings):
        ...     a: int = option(1, flag="--a")
        ...     b: int = option(2)
        >>> [flag for flag, _ in magic_options(S)]
        ['--a']
    """
    for f in dataclasses.fields(settings):
        if f.metadata.get("flag"):
            yield f.metadata["flag"], f

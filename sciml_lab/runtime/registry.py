"""The registry of job kinds: kind -> engine class, Python twin, ``%sciml`` command, views.

One table, filled from three places, none of which the runtime names itself:

- a kind's own package declares it with :func:`declare` (a lazy ``"module:attr"``
  reference to a :class:`Kind`) or registers it at once with :func:`register_kind`
  (sciml_lab's own kinds are declared by ``sciml_lab/__init__.py``);
- a third-party package declares an entry point in the group ``sciml_lab.engines``
  (``dice = "dice_pkg:KIND"``), found when a kind is looked up that is not known yet;
- the face adds the ``%sciml`` command of a kind (:func:`set_command`) when the
  kind's ``magic`` module registers it.

Example:
    >>> class DiceEngine:
    ...     kind = "dice"
    >>> _ = register_kind(Kind("dice", engine=DiceEngine, help="roll dice"))
    >>> engine_class("dice") is DiceEngine, "dice" in kinds()
    (True, True)
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from importlib import metadata
from typing import Any, Callable

__all__ = ["Kind", "ENTRY_POINT_GROUP", "declare", "register_kind", "register_engine", "set_command", "kind",
           "kinds", "engine_class", "commands"]

#: the entry-point group through which other packages add job kinds
ENTRY_POINT_GROUP = "sciml_lab.engines"


@dataclasses.dataclass
class Kind:
    """What every layer needs to know of one job kind.

    Arguments:
        name: the kind, e.g. ``"flowmc"`` (the engine's ``kind`` attribute).
        engine: the engine class (its ``from_config`` rebuilds a run from disk).
        twin: the Python API that launches it, e.g. ``sciml_lab.flowmc.sample``.
        magic: the module that registers its ``%sciml`` command when imported
            (imported by ``%load_ext sciml_lab``; it may import IPython, the engine must not).
        views: the module of its plots (``view(tree)`` and friends: xarray in, Bokeh out).
        help: one line on what the kind does.
        command: set by the face once ``magic`` has registered the ``%sciml`` command.
    """

    name: str
    engine: type | None = None
    twin: Callable[..., Any] | None = None
    magic: str | None = None
    views: str | None = None
    help: str = ""
    command: Any = None

    def view_module(self) -> Any:
        """The imported ``views`` module (None if the kind has none)."""
        return importlib.import_module(self.views) if self.views else None


_LOCK = threading.RLock()
_KINDS: dict[str, Kind] = {}
_DECLARED: dict[str, str] = {}  # kind -> "module:attr" not loaded yet


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def declare(name: str, ref: str) -> None:
    """Make ``name`` known through ``"module:attr"``, a :class:`Kind` loaded on first
    use (so that declaring a kind imports nothing). A kind already known stays as it is."""
    if ":" not in ref:
        raise ValueError(f"ref: expected 'module:attr' (e.g. 'my_pkg:KIND'), got {ref!r}")
    with _LOCK:
        if name not in _KINDS:
            _DECLARED.setdefault(name, ref)


def register_kind(entry: Kind) -> Kind:
    """Add (or complete) a kind: the fields given replace those it had, a ``command``
    already set by the face is kept."""
    if not isinstance(entry, Kind):
        raise TypeError(f"entry: expected a Kind, got {type(entry).__name__}")
    if not isinstance(entry.name, str) or not entry.name:
        raise ValueError(f"entry: a Kind needs a non-empty name, got {entry.name!r}")
    if entry.engine is not None and getattr(entry.engine, "kind", None) != entry.name:
        raise ValueError(f"entry: {entry.engine.__name__}.kind is {getattr(entry.engine, 'kind', None)!r}, "
                         f"expected {entry.name!r}")
    with _LOCK:
        _DECLARED.pop(entry.name, None)
        old = _KINDS.get(entry.name)
        if old is not None:
            entry = dataclasses.replace(old, **{f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)
                                                if getattr(entry, f.name) not in (None, "")})
        _KINDS[entry.name] = entry
    return entry


def register_engine(cls: type) -> type:
    """Class decorator: make an engine class known under its ``kind`` (a kind with
    only an engine: enough for ``sciml_lab.open`` to rebuild and resume its runs)."""
    name = getattr(cls, "kind", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute 'kind' (a non-empty str)")
    register_kind(Kind(name, engine=cls))
    return cls


def set_command(name: str, command: Any) -> Kind:
    """Attach the face's ``%sciml NAME`` command to kind ``name`` (made if unknown)."""
    with _LOCK:
        entry = kind(name, default=None) or register_kind(Kind(name))
        entry.command = command
        return entry


def _load(name: str) -> Kind | None:
    with _LOCK:
        if name in _KINDS:
            return _KINDS[name]
        ref = _DECLARED.get(name)
    if ref is None:
        return None
    entry = _resolve(ref)
    if not isinstance(entry, Kind):
        raise TypeError(f"kind {name!r}: {ref} is a {type(entry).__name__}, expected a sciml_lab Kind")
    with _LOCK:
        if name in _KINDS:  # loading the module registered it (a decorator, say): complete that one
            return register_kind(dataclasses.replace(entry, name=name))
        return register_kind(entry if entry.name == name else dataclasses.replace(entry, name=name))


def _discover() -> None:
    """Declare the kinds of the installed packages' ``sciml_lab.engines`` entry points."""
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        declare(ep.name, ep.value)


def kind(name: str, default: Any = ...) -> Kind:
    """The kind called ``name`` (loading a declared one, then looking at the entry
    points); KeyError naming the known kinds, or ``default`` if given."""
    entry = _load(name)
    if entry is None:
        _discover()
        entry = _load(name)
    if entry is not None:
        return entry
    if default is not ...:
        return default
    raise KeyError(f"no engine of kind {name!r} is registered; known kinds: {', '.join(kinds()) or 'none'} "
                   f"(a package adds one with an entry point in the {ENTRY_POINT_GROUP!r} group)")


def kinds() -> list[str]:
    """The names of every kind known or declared (entry points included)."""
    _discover()
    with _LOCK:
        return sorted(set(_KINDS) | set(_DECLARED))


def engine_class(name: str) -> type:
    """The engine class of kind ``name``.

    Example:
        >>> engine_class("pi").__name__
        'PiEngine'
    """
    entry = kind(name)
    if entry.engine is None:
        raise KeyError(f"kind {name!r} has no engine class registered")
    return entry.engine


def commands(load: bool = True) -> dict[str, Any]:
    """The ``%sciml`` commands of the kinds, by name; with ``load``, every declared
    kind is loaded and its ``magic`` module imported first (which registers them)."""
    if load:
        for name in kinds():
            entry = kind(name)
            if entry.magic and entry.command is None:
                importlib.import_module(entry.magic)
    with _LOCK:
        return {n: k.command for n, k in _KINDS.items() if k.command is not None}

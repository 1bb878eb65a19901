"""Argument checks shared by every engine: each names the argument, says what was
expected and what was given.

A check is a function ``check(name, value) -> value`` (converted where that is
harmless, e.g. a NumPy integer to ``int``, a list to a tuple) that raises
``ValueError``; :func:`~sciml_lab.kit.settings.option` takes one.

Example:
    >>> at_least(1)("n_chains", 64)
    64
    >>> number(0, 1)("explore", 1.5)
    Traceback (most recent call last):
    ...
    ValueError: explore: expected a number in [0, 1], got 1.5
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping

__all__ = ["Check", "at_least", "number", "one_of", "optional", "tuple_of", "boolean", "text", "pair",
           "is_integer",
           "options_dict", "device_name"]

Check = Callable[[str, Any], Any]


def is_integer(v: Any) -> bool:
    """An integer that is not a bool (NumPy integers included).

    Example:
        >>> is_integer(3), is_integer(True), is_integer(3.0)
        (True, False, False)
    """
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def at_least(low: int) -> Check:
    """An integer ``>= low``.

    Example:
        >>> at_least(2)("n_chains", 1)
        Traceback (most recent call last):
        ...
        ValueError: n_chains: expected an integer >= 2, got 1
    """
    def check(name: str, v: Any) -> int:
        if not is_integer(v) or int(v) < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
        return int(v)
    return check


def number(low: float | None = None, high: float | None = None, *, open_low: bool = False) -> Check:
    """A finite real number in ``[low, high]`` (``(low, high]`` with ``open_low``).

    Example:
        >>> number(0, open_low=True)("learning_rate", 1e-3)
        0.001
    """
    lo_txt = "-inf" if low is None else f"{low:g}"
    hi_txt = "inf" if high is None else f"{high:g}"
    if low is not None and high is None:
        expected = f"a number {'>' if open_low else '>='} {low:g}"
    elif low is None and high is not None:
        expected = f"a number <= {high:g}"
    elif low is None:
        expected = "a finite number"
    else:
        expected = f"a number in {'(' if open_low else '['}{lo_txt}, {hi_txt}]"

    def check(name: str, v: Any) -> float:
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))
        if ok and low is not None:
            ok = float(v) > low if open_low else float(v) >= low
        if ok and high is not None:
            ok = float(v) <= high
        if not ok:
            raise ValueError(f"{name}: expected {expected}, got {v!r}")
        return float(v)
    return check


def one_of(*choices: Any) -> Check:
    """One of the given values.

    Example:
        >>> one_of("mala", "hmc")("kernel", "nuts")
        Traceback (most recent call last):
        ...
        ValueError: kernel: expected one of 'mala', 'hmc', got 'nuts'
    """
    def check(name: str, v: Any) -> Any:
        if v not in choices:
            raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {v!r}")
        return v
    return check


def optional(inner: Check) -> Check:
    """``None`` or what ``inner`` accepts.

    Example:
        >>> optional(at_least(1))("n_loops", None) is None
        True
    """
    def check(name: str, v: Any) -> Any:
        if v is None:
            return None
        try:
            return inner(name, v)
        except ValueError as exc:
            raise ValueError(f"{exc} (or None)") from None
    return check


def tuple_of(inner: Check, min_len: int = 0) -> Check:
    """A sequence of values each accepted by ``inner``, as a tuple.

    Example:
        >>> tuple_of(at_least(1), min_len=1)("flow_hidden", [64, 64])
        (64, 64)
    """
    def check(name: str, v: Any) -> tuple:
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            raise ValueError(f"{name}: expected a list of values, got {v!r}")
        out = tuple(inner(name, x) for x in v)
        if len(out) < min_len:
            raise ValueError(f"{name}: expected at least {min_len} values, got {v!r}")
        return out
    return check


def pair(inner: Check) -> Check:
    """Two values ``(low, high)`` with ``low < high``.

    Example:
        >>> pair(number())("init_box", [-2, 2])
        (-2.0, 2.0)
    """
    def check(name: str, v: Any) -> tuple:
        t = tuple_of(inner)(name, v)
        if len(t) != 2 or not t[0] < t[1]:
            raise ValueError(f"{name}: expected (low, high) with low < high, got {v!r}")
        return t
    return check


def boolean(name: str, v: Any) -> bool:
    """``True`` or ``False`` (not 0/1, not a string).

    Example:
        >>> boolean("verbose", True)
        True
    """
    if not isinstance(v, bool):
        raise ValueError(f"{name}: expected True or False, got {v!r}")
    return v


def text(name: str, v: Any) -> str:
    """A string.

    Example:
        >>> text("until", "rhat<1.01")
        'rhat<1.01'
    """
    if not isinstance(v, str):
        raise ValueError(f"{name}: expected a string, got {v!r}")
    return v


def options_dict(name: str, v: Any) -> dict:
    """A dict of settings (``None``: an empty one).

    Example:
        >>> options_dict("sampler", None), options_dict("sampler", {"n_chains": 8})
        ({}, {'n_chains': 8})
    """
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise ValueError(f"{name}: expected a dict of settings, got {v!r}")
    return dict(v)


def device_name(name: str, v: Any) -> str:
    """A device this machine has (``"auto"``, ``"cpu"``, ``"cuda"``, ...), kept as given.

    Example:
        >>> device_name("device", "cpu")
        'cpu'
    """
    from .device import resolve_device

    resolve_device(v)  # a clear error now for a device this machine lacks
    return str(v)

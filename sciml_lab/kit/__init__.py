"""The engine kit: what every engine is built on, and nothing else.

Layers (imports run one way): the face (``%sciml`` magics, widgets, the Python
twins) -> the runtime (jobs, the step loop, executors, run folders) -> the engines
(``flowmc``, ``emulate``, ``symreg``: pure computation) -> this kit (the engine
protocol, monitor specs, criteria and verdicts, settings, state, budget, history,
argument checks, device placement). The kit imports no other part of sciml_lab.

Example:
    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class DiceSettings(Settings):
    ...     rolls: int = option(100, at_least(1), "rolls per step", flag="--rolls")
    ...     until: str = option(None, optional(text), "convergence target")
    >>> s = DiceSettings(rolls=10, until="err<0.01")
    >>> Budget("steps", total=5, criteria=parse_criteria(s.until)).done({"err": 0.001})
    False
"""

from .base import KitEngine
from .budget import Budget
from .checks import at_least, boolean, number, one_of, optional, pair, text, tuple_of
from .device import resolve_device, resolve_dtype, restore_device
from .history import History
from .protocol import (Badge, Chart, Criterion, Engine, EngineBase, MonitorSpec, Phase, badge_targets,
                       check_budget, parse_criteria)
from .settings import Settings, magic_options, option
from .state import State
from .verdict import Verdict, criteria_verdict

__all__ = ["KitEngine", "Budget", "History", "Settings", "State", "option", "magic_options", "at_least", "boolean", "number",
           "one_of", "optional", "pair", "text", "tuple_of", "resolve_device", "resolve_dtype", "restore_device",
           "Badge", "Chart", "Criterion", "Engine", "EngineBase", "MonitorSpec", "Phase", "badge_targets",
           "check_budget", "parse_criteria", "Verdict", "criteria_verdict"]

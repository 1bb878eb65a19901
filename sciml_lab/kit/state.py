"""An engine's state as a dataclass: the checkpoint is derived from its fields, not
listed by hand.

Fields hold tensors, NumPy arrays, numbers, strings, ``None``, lists/tuples/dicts of
those, a ``torch.Generator``, or objects with ``state_dict``/``load_state_dict`` (a
:class:`~sciml_lab.kit.history.History`, a :class:`~sciml_lab.kit.budget.Budget`, a
flow). ``state_dict()`` gives data that loads with ``torch.load(weights_only=True)``;
``load_state_dict()`` restores it onto a device. A field missing from an older
checkpoint keeps its initial value, so adding state is one line too.

Example:
    >>> import dataclasses, torch
    >>> @dataclasses.dataclass
    ... class S(State):
    ...     x: torch.Tensor = dataclasses.field(default_factory=lambda: torch.zeros(2))
    ...     loop: int = 0
    ...     scores: dict = dataclasses.field(default_factory=dict)
    >>> s = S(); s.loop = 3; s.x += 1; s.scores["mala"] = [0.5]
    >>> t = S(); t.load_state_dict(s.state_dict()); (t.loop, t.x.tolist(), t.scores)
    (3, [1.0, 1.0], {'mala': [0.5]})
    >>> u = S(); u.load_state_dict({"loop": 2}); u.loop, u.x.tolist()   # an older checkpoint
    (2, [0.0, 0.0])
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np
import torch

__all__ = ["State", "dump", "load"]


def dump(value: Any) -> Any:
    """One value as checkpoint data."""
    if hasattr(value, "state_dict") and not torch.is_tensor(value):
        return value.state_dict()
    if isinstance(value, torch.Generator):
        return value.get_state()
    if torch.is_tensor(value):
        return value.detach()
    if isinstance(value, np.ndarray):
        # a copy: arrays unpickled in a worker process can share one buffer between empty
        # arrays of different dtypes, and torch.save refuses tensors that view one storage
        return torch.tensor(np.ascontiguousarray(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    return value


def load(current: Any, stored: Any, device: "torch.device | str | None" = None) -> Any:
    """``stored`` (from :func:`dump`) restored in the shape of ``current`` (the field's
    initial value), tensors moved to ``device``."""
    if isinstance(current, State):  # a nested state: its tensors go to the device too
        current.load_state_dict(stored, device)
        return current
    if hasattr(current, "load_state_dict") and not torch.is_tensor(current):
        current.load_state_dict(stored)
        return current
    if isinstance(current, torch.Generator):
        current.set_state(stored.cpu())
        return current
    if torch.is_tensor(stored):
        if isinstance(current, np.ndarray):
            return stored.cpu().numpy()
        return stored.to(device) if device is not None else stored
    if isinstance(stored, Mapping):
        cur = current if isinstance(current, Mapping) else {}
        return {k: load(cur.get(k), v, device) for k, v in stored.items()}
    if isinstance(stored, (list, tuple)):
        out = [load(None, v, device) for v in stored]
        return tuple(out) if isinstance(current, tuple) else out
    return stored


class State:
    """Base of an engine's state dataclass (decorate with ``@dataclasses.dataclass``)."""

    def state_dict(self) -> dict[str, Any]:
        """Every field as checkpoint data."""
        return {f.name: dump(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def load_state_dict(self, state: Mapping[str, Any], device: "torch.device | str | None" = None) -> None:
        """Restore the fields found in ``state``; the others keep their values."""
        for f in dataclasses.fields(self):
            if f.name in state:
                setattr(self, f.name, load(getattr(self, f.name), state[f.name], device))

"""Seed shifting for the k-of-n measurements of statistical tests (see bench/seed_sweep.py).

``pytest --seed-shift k`` adds ``k`` to the seed of every flow-MCMC, emulator and
symbolic-regression engine a test builds, in the test process and in the kernels of the
example notebooks (``execute`` in test_notebooks.py runs ``NOTEBOOK_CELL`` first): the same
test on another random stream, as another machine's floating-point path would give it.
"""

from __future__ import annotations

import inspect
import os
from typing import Callable

ENV = "SCIML_TEST_SEED_SHIFT"


def shift_engine_seeds(shift: int, setattr: Callable = setattr) -> None:
    """Wrap the engines' ``__init__`` so that their ``seed`` is ``seed + shift``. ``setattr``
    may be ``monkeypatch.setattr`` so that the wrapping is undone after a test."""
    from sciml_lab.emulate.engine import EmulateEngine
    from sciml_lab.flowmc.engine import FlowMCEngine
    from sciml_lab.pipeline.engine import CalibrateEngine
    from sciml_lab.symreg.engine import SymRegEngine

    for cls in (FlowMCEngine, EmulateEngine, SymRegEngine, CalibrateEngine):
        init = cls.__init__
        sig = inspect.signature(init)

        def shifted(self, *args, _init=init, _sig=sig, **kwargs):
            bound = _sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            bound.arguments["seed"] = int(bound.arguments["seed"]) + shift
            _init(*bound.args, **bound.kwargs)

        setattr(cls, "__init__", shifted)


def notebook_cell() -> str | None:
    """The code a notebook kernel runs first under ``--seed-shift`` (None without it)."""
    shift = int(os.environ.get(ENV, "0"))
    if not shift:
        return None
    here = os.path.dirname(os.path.abspath(__file__))
    return f"import sys; sys.path.insert(0, {here!r}); import seeds; seeds.shift_engine_seeds({shift})"

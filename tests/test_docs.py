"""The examples in the docstrings of the foundation and the emulator run and print what they show
(symbolic regression and flow-MCMC run theirs in test_symreg_docs.py and test_flowmc_views.py)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "sciml_lab",
    "sciml_lab.demo",
    "sciml_lab.device",
    "sciml_lab.runtime.engine",
    "sciml_lab.runtime.verdict",
    "sciml_lab.runtime.job",
    "sciml_lab.runtime.store",
    "sciml_lab.runtime.executors",
    "sciml_lab.runtime.history",
    "sciml_lab.widgets.monitor",
    "sciml_lab.widgets.board",
    "sciml_lab.emulate",
    "sciml_lab.emulate.engine",
    "sciml_lab.emulate.emulator",
    "sciml_lab.emulate.gp",
    "sciml_lab.emulate.reduce",
    "sciml_lab.emulate.design",
    "sciml_lab.emulate.feasibility",
    "sciml_lab.emulate.sensitivity",
    "sciml_lab.emulate.simulator",
    "sciml_lab.emulate.ensemble",
    "sciml_lab.emulate.plots",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, runs):
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    assert result.attempted > 0, f"{name} has no example"


def test_every_public_runtime_api_has_an_example():
    import inspect

    import sciml_lab.runtime as rt

    missing = []
    for name in ("launch", "open_run", "Job", "Criterion", "parse_criteria", "RunStore", "ProcessExecutor", "Verdict",
                 "EngineBase"):
        doc = inspect.getdoc(getattr(rt, name)) or ""
        if "Example" not in doc:
            missing.append(name)
    assert not missing, missing

"""The examples in the foundation's docstrings run and print what they show."""

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
    "sciml_lab.widgets.monitor",
    "sciml_lab.widgets.board",
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

"""The examples in the symbolic regression docstrings run, and every public name has one."""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest
import torch

MODULES = ["", ".vocabulary", ".expression", ".evaluation", ".conversion", ".variation", ".constants", ".data",
           ".engine", ".settings", ".problem", ".state", ".population", ".search", ".front", ".model", ".results",
           ".recovery", ".uncertainty", ".plots"]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module, runs):
    torch.set_num_threads(1)
    mod = importlib.import_module(f"sciml_lab.symreg{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {mod.__name__}"


@pytest.mark.parametrize("module", MODULES)
def test_every_public_function_and_class_has_an_example(module):
    mod = importlib.import_module(f"sciml_lab.symreg{module}")
    missing = []
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and "Example" not in (inspect.getdoc(obj) or ""):
            missing.append(name)
    assert not missing, f"{mod.__name__}: {missing}"

"""The examples in the docstrings of the kit, the runtime, the emulator and the pipelines run and print what they show
(symbolic regression and flow-MCMC run theirs in test_symreg_docs.py and test_flowmc_views.py)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "sciml_lab",
    "sciml_lab.demo",
    "sciml_lab.kit",
    "sciml_lab.kit.base",
    "sciml_lab.kit.budget",
    "sciml_lab.kit.checks",
    "sciml_lab.kit.device",
    "sciml_lab.kit.history",
    "sciml_lab.kit.parts",
    "sciml_lab.kit.settings",
    "sciml_lab.kit.state",
    "sciml_lab.kit.protocol",
    "sciml_lab.kit.verdict",
    "sciml_lab.runtime.job",
    "sciml_lab.runtime.launcher",
    "sciml_lab.runtime.messages",
    "sciml_lab.runtime.registry",
    "sciml_lab.runtime.spec",
    "sciml_lab.runtime.store",
    "sciml_lab.runtime.executors",
    "sciml_lab.runtime.executors.process",
    "sciml_lab.runtime.executors.dask",
    "sciml_lab.face.commands",
    "sciml_lab.runtime.history",
    "sciml_lab.widgets.monitor",
    "sciml_lab.widgets.board",
    "sciml_lab.widgets.wire",
    "sciml_lab.emulate",
    "sciml_lab.emulate.engine",
    "sciml_lab.emulate.settings",
    "sciml_lab.emulate.runs",
    "sciml_lab.emulate.batches",
    "sciml_lab.emulate.validation",
    "sciml_lab.emulate.results",
    "sciml_lab.emulate.surfaces",
    "sciml_lab.emulate.emulator",
    "sciml_lab.emulate.layout",
    "sciml_lab.emulate.metrics",
    "sciml_lab.emulate.crossval",
    "sciml_lab.emulate.persist",
    "sciml_lab.emulate.threads",
    "sciml_lab.emulate.gp",
    "sciml_lab.emulate.sharedgp",
    "sciml_lab.emulate.reduce",
    "sciml_lab.emulate.design",
    "sciml_lab.emulate.feasibility",
    "sciml_lab.emulate.sensitivity",
    "sciml_lab.emulate.simulator",
    "sciml_lab.emulate.pools",
    "sciml_lab.emulate.ensemble",
    "sciml_lab.emulate.plots",
    "sciml_lab.pipeline",
    "sciml_lab.pipeline.engine",
    "sciml_lab.pipeline.settings",
    "sciml_lab.pipeline.stages",
    "sciml_lab.pipeline.likelihood",
    "sciml_lab.pipeline.check",
    "sciml_lab.pipeline.results",
    "sciml_lab.pipeline.tables",
    "sciml_lab.pipeline.plots",
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


def test_every_engine_protocol_method_has_an_example():
    """The protocol is what a new engine implements: each method shows its use (the
    examples run in test_docstring_examples[sciml_lab.kit.protocol])."""
    import inspect

    from sciml_lab.kit.protocol import Engine

    methods = [n for n, f in vars(Engine).items()
               if not n.startswith("_") and (inspect.isfunction(f) or isinstance(f, classmethod))]
    assert {"step", "done", "progress", "extend", "snapshot", "state_dict", "load_state_dict", "config",
            "from_config"} <= set(methods)
    missing = [n for n in methods if ">>>" not in (inspect.getdoc(getattr(Engine, n)) or "")]
    assert not missing, f"Engine protocol methods without an example: {missing}"


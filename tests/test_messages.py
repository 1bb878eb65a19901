"""Typed runtime messages, and the monitor's spec and live view travelling as messages."""

from __future__ import annotations

import pickle

import pytest

from engines import BudgetNoteEngine, StepEngine
from sciml_lab.runtime import launch
from sciml_lab.runtime import messages as msgs

EXAMPLES = [
    msgs.Status("failed", error="E: boom", traceback="tb", verdict={"status": "failed"}),
    msgs.Status("running", step=3),
    msgs.Events(((1, 0.5, {"mean": 1.0}, 0.1), (2, 0.7, {"mean": 0.5}, 0.2))),
    msgs.Extended({"steps": 5}), msgs.Saved(4), msgs.Spec({"charts": [], "key": "mean"}, {"steps": 10}),
    msgs.LiveView({"title": "t", "columns": ["a"], "rows": [[1]]}), msgs.Exited(1),
    msgs.Worker("tcp://127.0.0.1:1", 42, "host"), msgs.Stop(), msgs.Extend({"steps": 2}), msgs.Snapshot(),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_messages_survive_every_channel(message):
    """The process executor pickles them over its own connection; Dask carries plain lists."""
    assert pickle.loads(pickle.dumps(message)) == message
    wire = msgs.to_wire(message)
    assert all(isinstance(x, (str, int, float, dict, tuple, list, type(None))) for x in wire)
    back = msgs.from_wire([list(x) if isinstance(x, tuple) else x for x in wire])  # as a queue may return it
    assert type(back) is type(message) and msgs.to_wire(back)[0] == wire[0]


def test_every_message_has_one_handler_and_deliver_calls_it():
    handlers = {cls.handler for cls in msgs._TYPES.values()}
    assert len(handlers) == len(msgs._TYPES) and "" not in handlers
    seen = []

    class Receiver:
        def __getattr__(self, name):
            return lambda m: seen.append((name, type(m).__name__))

    for m in EXAMPLES:
        msgs.deliver(m, Receiver())
    assert seen == [(type(m).handler, type(m).__name__) for m in EXAMPLES]


def test_a_malformed_wire_message_is_refused():
    for bad in ([], ["Nope", 1], "Stop", None):
        with pytest.raises(ValueError, match="not a runtime message"):
            msgs.from_wire(bad)


def test_the_job_handles_every_message_the_loop_or_an_executor_sends():
    from sciml_lab.runtime.job import Job

    missing = [cls.__name__ for cls in msgs._TYPES.values()
               if cls not in (msgs.Stop, msgs.Extend, msgs.Snapshot, msgs.Worker) and not hasattr(Job, cls.handler)]
    assert not missing


def test_spec_and_live_view_come_from_the_worker_not_the_kernels_copy(runs):
    """Under the process executor the kernel's engine object never runs: the spec (which
    changes on extend) and the live view the job shows are the worker's."""
    job = launch(BudgetNoteEngine(steps=6, seed=1), name="noted", executor="process", runs_dir=runs)
    assert job.wait(120) == "done"
    assert job.spec["note"] == "budget 6" and job.extend_default == {"steps": 6}
    assert [r[0] for r in job.live_view["rows"]] == [4, 5, 6]  # the worker's last three draws
    assert job.engine.n == 0 and job.engine.live_view()["rows"] == []  # the kernel's copy never ran
    job.extend(steps=4)
    assert job.wait(120) == "done" and job.step == 10
    assert job.spec["note"] == "budget 10" and job.extend_default == {"steps": 10}
    assert job.engine.monitor.note == "budget 6"  # stale, and no longer read by anyone
    assert [r[0] for r in job.live_view["rows"]] == [8, 9, 10]


def test_a_reopened_run_without_its_engine_keeps_its_spec(runs):
    """A run whose engine cannot be rebuilt gets its charts from its kind's engine class."""
    import sciml_lab
    from sciml_lab.runtime.job import _JOBS

    job = launch(StepEngine(steps=3), name="specless", runs_dir=runs)
    assert job.wait(30) == "done"
    _JOBS.pop(job.name)
    rec = job.store.read_json()
    job.store.write_json({**rec, "config": {**rec["config"], "steps": "not a number"}})
    again = sciml_lab.open(job.store.path)
    assert again.engine is None
    assert again.spec["key"] == "mean" and [c["title"] for c in again.spec["charts"]] == ["running mean", "draws"]


def test_the_spec_of_every_kit_engine_carries_its_until_targets():
    # engines on the kit keep their target as criteria (not an ``until`` attribute): the
    # spec the loop sends must still carry it, or the monitor loses its ETA and badges
    import numpy as np

    from sciml_lab.emulate import EmulateEngine
    from sciml_lab.flowmc import FlowMCEngine
    from sciml_lab.runtime.spec import engine_spec
    from sciml_lab.symreg import SymRegEngine

    x = np.linspace(1, 2, 20)
    engines = {
        "rhat": FlowMCEngine(lambda z: -(z ** 2).sum(1), dim=2, n_chains=4, until="rhat<1.01", device="cpu"),
        "nrmse": EmulateEngine(lambda a: a, {"a": (0, 1)}, until="nrmse<0.1", device="cpu"),
        "r2": SymRegEngine(x, x ** 2, until="r2>0.99"),
    }
    for metric, engine in engines.items():
        assert [c["metric"] for c in engine_spec(engine)["until"]] == [metric]

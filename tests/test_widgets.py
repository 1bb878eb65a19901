"""The monitor's widget model without a browser: the comm traffic is recorded."""

from __future__ import annotations

import time

import comm
import numpy as np
import pytest
from comm.base_comm import BaseComm

from sciml_lab.runtime import launch
from sciml_lab.widgets import JobBoard, Monitor
from sciml_lab.widgets.wire import WIRE

from engines import StepEngine
from test_wire import validate


class RecordingComm(BaseComm):
    """A comm that keeps every message it would send (ipywidgets' DummyComm pattern)."""

    log: list = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        RecordingComm.log.append((time.monotonic(), msg_type, data or {}, buffers or []))


@pytest.fixture
def sent(monkeypatch):
    RecordingComm.log = []
    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: RecordingComm(*a, **k))
    return RecordingComm.log


def rows_messages(log):
    return [(t, d["content"], b) for t, kind, d, b in log
            if kind == "comm_msg" and d.get("method") == "custom" and d["content"].get("type") == "rows"]


def decode(msg, buffers):
    """A rows message decoded from the definition in wire.json (checked against it too)."""
    validate(msg, "rows")
    layout = WIRE["rows"]["buffer"]
    width = len(layout["leading"]) + len(msg["names"])
    return np.frombuffer(bytes(buffers[0]), dtype=layout["dtype"]).reshape(msg["n"], width)


def state_updates(log, key):
    return [d["state"][key] for _, kind, d, _ in log
            if kind == "comm_msg" and d.get("method") == "update" and key in d.get("state", {})]


def run_monitored(engine, name, seconds, min_steps=0):
    """Run ``engine`` with a Monitor attached from the first step for ``seconds`` (and at least
    until step ``min_steps``, however slow the machine), stop it, and let the pump send its last
    flush. Returns the job, the monitor and the seconds it ran."""
    job = launch(engine, name=name, start=False, save_every=60)
    mon = Monitor(job)
    t0 = time.monotonic()
    job.start()
    time.sleep(seconds)
    deadline = time.monotonic() + 120
    while job.step < min_steps and time.monotonic() < deadline:
        time.sleep(0.05)
    job.stop()
    assert job.wait(10) == "stopped"
    elapsed = time.monotonic() - t0
    time.sleep(0.3)  # the pump's last flush
    return job, mon, elapsed


def test_fast_engine_is_throttled_to_ten_flushes_a_second_and_loses_no_row(runs, sent):
    # at least 2000 steps however long they take, so that many steps share each flush
    job, mon, elapsed = run_monitored(StepEngine(steps=10**9), "fast", seconds=1.0, min_steps=2000)
    msgs = rows_messages(sent)
    steps = np.concatenate([decode(m, b)[:, 0] for _, m, b in msgs])
    n = job.step
    assert n >= 2000
    np.testing.assert_array_equal(steps, np.arange(1, n + 1))  # all delivered, in order, once
    times = np.array([t for t, _, _ in msgs])
    assert len(msgs) <= 10 * elapsed + 3  # <= 10 flushes a second (+ start and end)
    assert len(msgs) < n / 10  # batched: many steps a flush
    assert np.min(np.diff(times)) >= 0.09  # never two flushes closer than the 0.1 s period
    assert mon.flushes == len(msgs)


def test_state_follows_the_job_through_its_states(runs, sent):
    job = launch(StepEngine(steps=30, delay=0.01), name="states", start=False)
    mon = Monitor(job)
    assert mon.status == "queued" and mon.job_name == "states" and mon.kind == "teststep"
    assert mon.spec["badges"][0] == {"label": "|mean|", "metric": "abs_mean", "op": "<", "value": 0.5, "fmt": ".3g"}
    assert mon.budget_words == ["steps"] and mon.extend_default == {"steps": 10}
    job.start()
    job.wait(30)
    time.sleep(0.3)
    assert mon.status == "done" and mon.step == 30 and mon.progress == 1.0
    progress = state_updates(sent, "progress")
    assert len(set(p for p in progress if p is not None)) >= 3  # progress was streamed, not jumped
    assert "running" in state_updates(sent, "status")
    assert mon.metrics["n"] == 30.0


def test_failure_shows_message_and_traceback(runs, sent):
    job = launch(StepEngine(steps=30, fail_at=3), name="fails", start=False)
    mon = Monitor(job)
    job.start()
    job.wait(30)
    time.sleep(0.3)
    assert mon.status == "failed"
    assert "FloatingPointError: test engine failed at step 3" in mon.error
    assert "Traceback (most recent call last)" in mon.traceback


def test_buttons_stop_and_extend_the_job(runs, sent):
    job = launch(StepEngine(steps=10**6, delay=0.002), name="buttons")
    mon = Monitor(job)
    time.sleep(0.2)
    mon._handle_custom_msg({"type": "stop"}, [])
    assert job.wait(10) == "stopped"
    n = job.step
    mon._handle_custom_msg({"type": "extend", "budget": {"steps": 5}}, [])
    assert job.wait(10) in ("running", "stopped", "done")
    # extend adds 5 steps to a budget of 1e6: the job runs on; stop it again
    time.sleep(0.1)
    assert job.step > n
    job.stop()
    job.wait(10)
    mon._handle_custom_msg({"type": "extend", "budget": {"loops": 5}}, [])
    assert "no budget word 'loops'" in mon.note  # a bad request is explained, not raised into the kernel


def test_a_late_view_gets_the_whole_history(runs, sent):
    job = launch(StepEngine(steps=50), name="late")
    job.wait(30)
    mon = Monitor(job)  # created after the job ended: %sciml show
    sent.clear()
    mon._handle_custom_msg({"type": "sync"}, [])
    (_, msg, bufs), = rows_messages(sent)
    assert msg["reset"] is True
    arr = decode(msg, bufs)
    np.testing.assert_array_equal(arr[:, 0], np.arange(1, 51))
    col = msg["names"].index("n")
    np.testing.assert_array_equal(arr[:, 2 + col], np.arange(1, 51))


def test_two_monitors_of_one_job_both_stream(runs, sent):
    job = launch(StepEngine(steps=40, delay=0.005), name="twice", start=False)
    a, b = Monitor(job), Monitor(job)
    job.start()
    job.wait(30)
    time.sleep(0.3)
    assert a.step == b.step == 40 and a.status == b.status == "done"
    assert a.flushes >= 1 and b.flushes >= 1


def test_job_board_lists_jobs(runs, sent):
    job = launch(StepEngine(steps=5), name="boarded")
    job.wait(30)
    board = JobBoard()
    row = next(r for r in board.rows if r["name"] == "boarded")
    assert row["status"] == "done" and row["kind"] == "teststep" and row["key"] == "mean"
    assert row["step"] == 5


def test_bad_rate_is_rejected(runs):
    job = launch(StepEngine(steps=1), name="rate", start=False)
    with pytest.raises(ValueError, match=r"max_rate: expected updates per second in \(0, 60\], got 0"):
        Monitor(job, max_rate=0)


def test_live_view_reaches_the_widget_at_most_four_times_a_second(runs, sent):
    job, mon, elapsed = run_monitored(StepEngine(steps=10**9), "viewed", seconds=1.5)
    views = state_updates(sent, "view")
    assert 2 <= len(views) <= 4 * elapsed + 3  # the loop sends a view every 0.25 s at most (+ the final one)
    last = mon.view
    validate(last, "view")
    assert last["columns"] == ["step", "draw", "running mean"] and last["latex"] == ["running mean"]
    n = job.step
    assert [r[0] for r in last["rows"]] == [n - 2, n - 1, n]  # the final view is the final state
    assert last["rows"][-1][2].startswith(r"\bar{x}_{" + str(n) + "}")


def test_emulator_live_slice_with_band_reaches_the_monitor(runs, sent):
    import numpy as np

    from sciml_lab.emulate import fit

    job = fit(lambda a, b: np.sin(3 * a) + 0.1 * b, {"a": (0, 1), "b": (-1, 1)}, budget=24, store=False,
              device="cpu", seed=0)
    mon = Monitor(job)
    assert job.wait(120) == "done"
    time.sleep(0.3)
    validate(mon.view, "view")
    (plot,) = mon.view["plots"]
    assert plot["x_label"] == "a"  # sin(3a) varies far more than 0.1 b: the slice follows a
    mean, lo, hi = (np.array(v) for v in (plot["lines"]["emulator mean"], plot["band"]["lower"], plot["band"]["upper"]))
    assert len(plot["x"]) == len(mean) == 41
    assert np.all(lo <= mean) and np.all(mean <= hi)
    # the slice is the function at b = 0 (the box centre), within the emulator's own band (+ a small slack)
    truth = np.sin(3 * np.array(plot["x"]))
    assert np.mean((truth >= lo - 0.02) & (truth <= hi + 0.02)) >= 0.9


def test_a_reopened_run_keeps_its_chart_titles_and_until_targets(runs, sent):
    # flow-MCMC reopened without its log_prob has no engine: the charts' titles, log scale and
    # reference line and the run's own targets must still reach the monitor
    import sciml_lab
    from sciml_lab.flowmc import sample

    until = "rhat<1.005 ess>50000"
    job = sample(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=16, n_training_loops=1, n_loops=1,
                 n_local_steps=5, n_global_steps=5, n_epochs=1, device="cpu", until=until, name="reopen")
    assert job.wait(120) in ("done", "stopped")
    live = Monitor(job).spec
    from sciml_lab.runtime.job import _JOBS  # forget the kernel's job so that open() reads the folder

    _JOBS.pop(job.name, None)
    again = sciml_lab.open(job.store.path)
    assert again.engine is None, "reopened without log_prob: no engine"
    spec = Monitor(again).spec
    assert [c["title"] for c in spec["charts"]] == [c["title"] for c in live["charts"]]
    assert "smallest bulk ESS" in [c["title"] for c in spec["charts"]]
    ess_chart = next(c for c in spec["charts"] if c["series"] == ["ess"])
    assert ess_chart["log_y"] is True
    assert next(c for c in spec["charts"] if c["series"] == ["rhat"])["hlines"] == [1.01]
    assert spec["until"] == [{"metric": "rhat", "op": "<", "value": 1.005},
                             {"metric": "ess", "op": ">", "value": 50000.0}]
    assert {b["metric"]: b["value"] for b in spec["badges"]} == {"rhat": 1.005, "ess": 50000.0}
    assert spec["badges"] == live["badges"] and spec["until"] == live["until"]


def test_inline_views_carry_bokehjs_and_the_theme_and_need_no_cdn(ipython_shell):
    # a view left as a cell's value (after %load_ext sciml_lab) is shown with BokehJS from the
    # installed package, sent once per kernel, and a theme callback; no CDN address anywhere
    import bokeh
    from bokeh.plotting import figure
    from IPython.utils.capture import capture_output

    import sciml_lab.plots as views
    from bokeh.settings import settings

    assert settings.resources() == "inline"  # bokeh.io.output_notebook() is offline too
    views._LOADED = False
    fig = figure(width=200, height=150, title="t")
    fig.line([1, 2, 3], [1e-5, 1e-3, 1e-2])
    with capture_output() as first:
        ipython_shell.display_formatter.format(fig)
    with capture_output() as second:
        ipython_shell.display_formatter.format(figure(width=100, height=100))
    out = [o.data for o in first.outputs]
    js = "".join(d.get("application/javascript", "") for d in out)
    html = "".join(d.get("text/html", "") for d in out)
    assert bokeh.__version__ in js
    assert 1_000_000 < len(js) < 3_000_000, "BokehJS itself travels with the notebook (without MathJax)"
    assert "cdn.bokeh.org" not in js + html
    assert "sciml-bokeh" in html and "document_ready" in html and "jpThemeLight" in html
    # the second view does not send BokehJS again
    assert not any("application/javascript" in o.data for o in second.outputs)
    assert any("sciml-bokeh" in o.data.get("text/html", "") for o in second.outputs)


def test_views_module_examples_run():
    import doctest

    import sciml_lab.plots

    result = doctest.testmod(sciml_lab.plots, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 3, result

"""Specification of the emulator engine (sciml_lab.emulate).

CPU only, fixed seeds, small budgets: the file runs in about a minute on two
cores. Statistical tolerances are justified where they are set.
"""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

import sciml_lab
from sciml_lab.emulate import EmulateEngine, Emulator, emulator, fit, load, sobol_indices, validation_metrics
from sciml_lab.emulate.design import initial_design
from sciml_lab.runtime.store import read_result, write_result

torch.set_num_threads(1)

BRANIN_BOUNDS = {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}
ISHIGAMI_BOUNDS = {k: (-math.pi, math.pi) for k in ("x1", "x2", "x3")}
# analytic Sobol' indices of Ishigami with a=7, b=0.1 (Sobol' & Levitan 1999)
ISHIGAMI_S1 = np.array([0.3139, 0.4424, 0.0])
ISHIGAMI_ST = np.array([0.5576, 0.4424, 0.2437])


def branin(x1, x2):
    return (x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2 \
        + 10 * (1 - 1 / (8 * math.pi)) * np.cos(x1) + 10


def ishigami(x):
    x = np.asarray(x)
    return np.sin(x[..., 0]) + 7 * np.sin(x[..., 1]) ** 2 + 0.1 * x[..., 2] ** 4 * np.sin(x[..., 0])


def run(engine: EmulateEngine) -> dict:
    m = {}
    while not engine.done():
        m = engine.step()
    return m


def fresh_points(bounds, n=1000, seed=123):
    rng = np.random.default_rng(seed)
    return np.stack([rng.uniform(lo, hi, n) for lo, hi in bounds.values()], 1)


def holdout_scores(emu: Emulator, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    ds = emu.predict(x)
    err = ds["mean"].values - y
    return float(np.sqrt(np.mean(err ** 2)) / y.std()), float(np.mean(np.abs(err) < 1.96 * ds["std"].values))


@pytest.fixture(scope="module")
def branin_engine():
    eng = EmulateEngine(branin, BRANIN_BOUNDS, budget=60, device="cpu", poll=0.05, n_workers=2, seed=0)
    run(eng)
    return eng


@pytest.fixture(scope="module")
def ishigami_engine():
    eng = EmulateEngine(ishigami, ISHIGAMI_BOUNDS, budget=250, device="cpu", poll=0.05, n_workers=2, seed=0)
    run(eng)
    return eng


# ----------------------------------------------------------------------------- accuracy and calibration
def test_error_falls_with_budget_on_branin(branin_engine):
    val = branin_engine.snapshot()["validation"]
    nrmse = val["nrmse"].values
    assert list(val["budget"].values) == sorted(val["budget"].values)
    assert nrmse[-1] < nrmse[0] / 10  # measured: 0.39 at 20 runs -> 0.006 at 60
    x = fresh_points(BRANIN_BOUNDS)
    err, _ = holdout_scores(branin_engine.get_emulator(), x, branin(x[:, 0], x[:, 1]))
    assert err < 0.02  # measured 0.004 on 1000 fresh points


def test_branin_coverage_is_near_95_percent_on_fresh_points(branin_engine):
    x = fresh_points(BRANIN_BOUNDS)
    _, cov = holdout_scores(branin_engine.get_emulator(), x, branin(x[:, 0], x[:, 1]))
    # the stated band is [0.90, 1.0]: a GP of a smooth deterministic function
    # over-covers (its std is ~5x too wide); the leave-one-out recalibration shrinks
    # it by ~0.4, but leave-one-out errors at active-learning points (many on the
    # boundary) exceed those inside the box, so coverage of fresh uniform points stays
    # conservative (measured 1.0 with |z| 95% quantile 0.98), never overconfident
    assert 0.90 <= cov <= 1.0
    m = branin_engine.metrics
    assert 0.85 <= m["coverage"] <= 1.0


def test_ishigami_error_and_sobol_indices_match_analytic(ishigami_engine):
    x = fresh_points(ISHIGAMI_BOUNDS)
    err, cov = holdout_scores(ishigami_engine.get_emulator(), x, ishigami(x))
    assert err < 0.2  # measured 0.10 at 250 runs
    assert 0.85 <= cov <= 1.0
    s = ishigami_engine.snapshot()["sensitivity"]
    assert list(s["input"].values) == ["x1", "x2", "x3"]
    for key, truth in (("first_order", ISHIGAMI_S1), ("total", ISHIGAMI_ST)):
        lo, hi = s[f"{key}_low"].values, s[f"{key}_high"].values
        # every analytic index inside its 95% interval, the intervals informative
        assert np.all(lo <= truth) and np.all(truth <= hi), (key, lo, s[key].values, hi)
        assert np.all(hi - lo < 0.25)


def test_sobol_estimator_on_a_known_function_without_emulator():
    def predict(u):
        x = u * 2 * math.pi - math.pi
        return ishigami(x)[:, None], np.zeros((len(u), 1))

    s = sobol_indices(predict, 3, n=8192, seed=1)
    assert np.abs(s["first_order"] - ISHIGAMI_S1).max() < 0.03  # Monte Carlo error at n=8192
    assert np.abs(s["total"] - ISHIGAMI_ST).max() < 0.03
    assert np.all(s["total_low"] <= ISHIGAMI_ST) and np.all(ISHIGAMI_ST <= s["total_high"])


def test_recalibration_fixes_a_too_wide_predictive_scale():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(2000, 1))
    m = validation_metrics(y, np.zeros_like(y), np.full_like(y, 3.0))
    assert m["raw_coverage"] > 0.99
    assert m["scale"] == pytest.approx(1 / 3, rel=0.1)
    assert abs(m["coverage"] - 0.95) < 0.02  # cross-fitted on 1000 points: binomial sd 0.007


# ----------------------------------------------------------------------------- simulator failures
def test_failing_simulator_records_failures_and_the_job_finishes():
    def sim(a, b):
        if a > 0.8:
            raise RuntimeError("solver diverged")
        if b > 0.9:
            return float("nan")
        return a + b

    eng = EmulateEngine(sim, {"a": (0, 1), "b": (0, 1)}, budget=40, device="cpu", poll=0.05, seed=0)
    m = run(eng)
    design = eng.snapshot()["design"]
    failed = design["failed"].values
    a, b = design["inputs"].sel(input="a").values, design["inputs"].sel(input="b").values
    assert np.array_equal(failed, (a > 0.8) | (b > 0.9))
    assert failed.any() and m["failed"] == failed.sum() and m["runs"] == 40
    assert np.all(design["attempts"].values[failed] == 2)  # retried once
    errors = design["error"].values[failed]
    assert all("solver diverged" in e or "non-finite" in e for e in errors)
    assert np.isnan(design["y"].values[failed]).all()
    recorded = json.loads(eng.snapshot().attrs["failures"])
    assert len(recorded) == failed.sum() and {"run", "inputs", "error"} <= set(recorded[0])
    assert m["nrmse"] < 0.05


def test_a_call_that_fails_once_is_retried_and_kept():
    seen, lock = set(), threading.Lock()

    def flaky(x):
        key = tuple(np.round(x, 12))
        with lock:
            first = key not in seen
            seen.add(key)
        if first:
            raise ConnectionError("licence server busy")
        return float(x[0] ** 2)

    eng = EmulateEngine(flaky, {"a": (0, 1)}, budget=8, device="cpu", poll=0.05)
    run(eng)
    d = eng.snapshot()["design"]
    assert not d["failed"].values.any() and np.all(d["attempts"].values == 2)


# ----------------------------------------------------------------------------- the emulator
def test_predict_returns_mean_and_std_with_named_dims(branin_engine):
    ds = branin_engine.get_emulator().predict(pd.DataFrame({"x1": [0.0, 1.0], "x2": [5.0, 7.0]}))
    assert set(ds.data_vars) == {"mean", "std"} and ds["mean"].dims == ("point",)
    assert np.all(ds["std"].values > 0)
    assert ds["x1"].values.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="missing inputs"):
        branin_engine.get_emulator().predict({"x1": [0.0]})


def test_save_load_round_trip_without_pickle(branin_engine, tmp_path):
    emu = branin_engine.get_emulator()
    path = emu.save(tmp_path / "emu")
    torch.load(path / "weights.pt", weights_only=True)  # tensors only
    json.loads((path / "config.json").read_text())
    back = load(path)
    x = fresh_points(BRANIN_BOUNDS, 50)
    a, b = emu.predict(x), back.predict(x)
    np.testing.assert_allclose(a["mean"].values, b["mean"].values, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a["std"].values, b["std"].values, rtol=1e-8, atol=1e-10)


def test_gradient_flows_through_the_emulator(branin_engine):
    emu = branin_engine.get_emulator()
    x = torch.tensor([[1.0, 4.0], [-2.0, 10.0]], dtype=torch.float64, requires_grad=True)
    emu(x).sum().backward()
    # analytic gradient of Branin: the emulator's is close (it fits to 0.5% of the range)
    x1, x2 = x.detach()[:, 0], x.detach()[:, 1]
    inner = x2 - 5.1 / (4 * math.pi ** 2) * x1 ** 2 + 5 / math.pi * x1 - 6
    d1 = 2 * inner * (-5.1 / (2 * math.pi ** 2) * x1 + 5 / math.pi) - 10 * (1 - 1 / (8 * math.pi)) * torch.sin(x1)
    d2 = 2 * inner
    truth = torch.stack([d1, d2], 1)
    assert torch.allclose(x.grad, truth, atol=0.05 * float(truth.abs().max()))
    mean, std = emu.mean_and_std(x)
    std.sum().backward()  # the std is differentiable too


def test_log_scaled_input():
    eng = EmulateEngine(lambda k, c: np.log10(k) + c, {"k": (1e-3, 1e3, "log"), "c": (0, 1)}, budget=24,
                        device="cpu", poll=0.05)
    run(eng)
    assert eng.log_inputs == ["k"]
    x = eng.snapshot()["design"]["inputs"].sel(input="k").values
    # log-uniform initial design: a third of its points below 0.1 (the adaptive points
    # after it follow the emulator's variance, so only check they reach the low decades too)
    assert (x[:eng.n_initial] < 1e-1).mean() > 0.3
    assert (x < 1e-1).mean() > 0.2
    ds = eng.get_emulator().predict({"k": [1.0, 100.0], "c": [0.5, 0.5]})
    np.testing.assert_allclose(ds["mean"].values, [0.5, 2.5], atol=0.05)


def test_vector_output_with_pca_and_both_models():
    t = np.linspace(0, 10, 60)

    def oscillator(omega, zeta):
        return xr.DataArray(np.exp(-zeta * omega * t) * np.cos(omega * t), dims="time", coords={"time": t},
                            name="displacement")

    bounds = {"omega": (0.5, 2.0), "zeta": (0.05, 0.3)}
    x = fresh_points(bounds, 200)
    truth = np.stack([oscillator(*r).values for r in x])
    for model, budget, opts in (("gp", 60, {}), ("ensemble", 150, {"batch_size": 30})):
        eng = EmulateEngine(oscillator, bounds, budget=budget, model=model, device="cpu", poll=0.05, seed=0, **opts)
        run(eng)
        emu = eng.get_emulator()
        assert emu.pca and emu.model_kind == model
        ds = emu.predict(x)
        assert ds["mean"].dims == ("point", "time") and np.allclose(ds["time"].values, t)
        err = np.sqrt(np.mean((ds["mean"].values - truth) ** 2)) / truth.std()
        assert err < (0.1 if model == "gp" else 0.35), (model, err)  # measured: gp 0.03, ensemble 0.07
        assert eng.snapshot()["design"]["displacement"].dims == ("run", "time")


def test_data_mode_fits_a_dataframe_without_a_simulator():
    x = initial_design(40, 2, seed=3)
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": np.sin(3 * x[:, 0]) + x[:, 1]})
    eng = EmulateEngine(data=df, inputs=["a", "b"], outputs=["y"], device="cpu")
    m = run(eng)
    assert m["nrmse"] < 0.05 and m["runs"] == 40
    with pytest.raises(ValueError, match="no simulator"):
        eng.extend(budget=10)


# ----------------------------------------------------------------------------- checkpoint and result
def test_checkpoint_reload_gives_the_same_emulator_and_continues(tmp_path):
    f = lambda a, b: np.sin(3 * a) * b  # noqa: E731
    eng = EmulateEngine(f, {"a": (0, 2), "b": (0, 1)}, budget=20, device="cpu", poll=0.05)
    run(eng)
    torch.save(eng.state_dict(), tmp_path / "ck.pt")
    state = torch.load(tmp_path / "ck.pt", weights_only=True)
    again = EmulateEngine.from_config(json.loads(json.dumps(eng.config())), simulator=f)
    again.load_state_dict(state)
    x = np.array([[0.3, 0.4], [1.5, 0.9]])
    np.testing.assert_allclose(again.get_emulator().predict(x)["mean"].values,
                               eng.get_emulator().predict(x)["mean"].values, atol=1e-10)
    again.extend(budget=10)
    m = run(again)
    assert m["runs"] == 30 and len(again.snapshot()["validation"]["budget"]) > len(eng.snapshot()["validation"]["budget"])


def test_result_round_trips_through_netcdf(branin_engine, tmp_path):
    tree = branin_engine.snapshot()
    write_result(tree, tmp_path / "r.nc")
    back = read_result(tmp_path / "r.nc")
    assert {"design", "validation", "sensitivity", "slices"} <= set(back.children)
    np.testing.assert_allclose(back["validation"]["nrmse"].values, tree["validation"]["nrmse"].values)


def test_until_stops_before_the_budget():
    eng = EmulateEngine(lambda a, b: a + 0.5 * b ** 2, {"a": (0, 1), "b": (0, 1)}, budget=200, until="nrmse<0.01",
                        device="cpu", poll=0.05)
    m = run(eng)
    assert m["nrmse"] < 0.01 and m["runs"] < 60
    # an extension of a run that met its target is paid in full (the target no longer ends it at once)
    n = eng.n_runs
    eng.extend(budget=12)
    assert not eng.done() and eng.progress() < 1
    m = run(eng)
    assert eng.n_runs == n + 12 and m["nrmse"] < 0.01
    # and survives a checkpoint: a resumed extension is paid in full too
    again = EmulateEngine.from_config(eng.config(), simulator=lambda a, b: a + 0.5 * b ** 2)
    again.load_state_dict(eng.state_dict())
    again.extend(budget=4)
    run(again)
    assert again.n_runs == n + 16


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="bounds"):
        EmulateEngine(lambda a: a, {"a": (1, 0)})
    with pytest.raises(ValueError, match="log-scaled"):
        EmulateEngine(lambda a: a, {"a": (0, 1, "log")})
    with pytest.raises(ValueError, match="model"):
        EmulateEngine(lambda a: a, {"a": (0, 1)}, model="kriging")
    with pytest.raises(ValueError, match="unknown metric"):
        EmulateEngine(lambda a: a, {"a": (0, 1)}, until="r2>0.9")
    with pytest.raises(ValueError, match="simulator"):
        EmulateEngine(42, {"a": (0, 1)})
    with pytest.raises(TypeError, match="simulator"):
        EmulateEngine.from_config(EmulateEngine(lambda a: a, {"a": (0, 1)}).config())


# ----------------------------------------------------------------------------- as a job
def test_job_stop_keeps_partial_result_then_extend_and_reopen(tmp_path):
    def slow(a, b):
        time.sleep(0.02)
        return a * b

    job = fit(slow, {"a": (0, 1), "b": (0, 1)}, budget=200, batch_size=4, n_workers=2, poll=0.05,
              name="emu", runs_dir=tmp_path, device="cpu")
    deadline = time.monotonic() + 60
    while job.metrics.get("runs", 0) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    job.stop()
    assert job.wait(60) == "stopped"
    partial = read_result(tmp_path / "emu" / "result.nc")
    n_stop = partial.attrs["n_runs"]
    assert 20 <= n_stop < 200 and partial["design"].sizes["run"] == n_stop
    reopened = sciml_lab.open(tmp_path / "emu", simulator=slow)
    reopened.engine.budget = n_stop  # resume with a small budget: only the extension below remains
    reopened.extend(budget=8)
    assert reopened.wait(60) == "done"
    assert reopened.result.attrs["n_runs"] == n_stop + 8
    assert isinstance(emulator(reopened), Emulator)


# ----------------------------------------------------------------------------- views
def test_views_build_from_a_result_reopened_from_disk(branin_engine, tmp_path):
    from bokeh.embed import json_item

    from sciml_lab.emulate import plots

    write_result(branin_engine.snapshot(), tmp_path / "r.nc")
    tree = read_result(tmp_path / "r.nc")
    for fig in (plots.parity(tree), plots.coverage(tree), plots.convergence(tree), plots.slices(tree),
                plots.sobol_bars(tree), plots.view(tree)):
        json_item(fig)  # serialises: every glyph's data is consistent
    d = tree["design"]
    assert np.isfinite(d["y_cv_mean"].values).all()  # a GP validates every run (leave-one-out)
    with pytest.raises(ValueError, match="output"):
        plots.parity(tree, output="nope")


def test_a_simulator_that_always_fails_fails_the_job_with_every_failure_recorded():
    def broken(a):
        raise RuntimeError("missing input deck")

    job = fit(broken, {"a": (0, 1)}, budget=6, store=False, device="cpu", poll=0.05)
    assert job.wait(60) == "failed"  # not "done" with a NaN error: see test_emulate_failures.py
    assert job.data.attrs["n_failed"] == 6 and job.metrics["failed"] == 6
    with pytest.raises(RuntimeError, match="no emulator yet"):
        emulator(job)


def test_process_executor_checkpoints_and_finishes(tmp_path):
    job = fit(lambda a, b: np.sin(3 * a) + b, {"a": (0, 1), "b": (0, 1)}, budget=12, executor="process",
              runs_dir=tmp_path, device="cpu", n_sobol=256, name="proc")
    assert job.wait(180) == "done", job.error
    assert torch.load(tmp_path / "proc" / "checkpoint.pt", weights_only=True)["engine"]["X"].shape == (12, 2)

"""The calibration pipeline: emulate -> flow-MCMC -> refine where the posterior lives.

The problem (``calibration.py``) is a damped oscillator solved by scipy, observed at 10
times with noise sd 0.05, whose exact posterior is known from its closed form on a grid.
"""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
import torch

import sciml_lab
from sciml_lab.pipeline import CalibrateEngine, calibrate
from sciml_lab.runtime import job as jobmod

import calibration as osc

# each test runs whole calibrations (tens of GP fits and flow-MCMC runs): minutes on a busy machine
pytestmark = pytest.mark.timeout(900)

#: a small flow-MCMC per round: the posterior is 2-D and nearly Gaussian
SMALL = {"n_chains": 32, "n_training_loops": 4, "n_loops": 8, "n_local_steps": 20, "n_global_steps": 20}


def _engine(seed: int = 0, **options) -> CalibrateEngine:
    opts = dict(rounds=3, initial_runs=20, runs_per_round=10, n_check=10, device="cpu", sampler=SMALL)
    opts.update(options)
    return CalibrateEngine(osc.oscillator, osc.BOUNDS, observed=osc.observed(), noise=osc.NOISE,
                           seed=seed, **opts)


def test_recovers_the_exact_posterior_of_an_ode_in_tens_of_simulator_calls():
    """Measured over seeds 0-9 of this setting (rounds until move<0.1, at most 3): every
    seed within 0.03 sd of the exact means and 1 % of the exact sds at 40-50 calls. The
    bounds below (0.25 sd, sd ratio 0.8-1.25, which a two-sample test could not tell from
    exact at these draw counts) leave a wide margin; 2 of 3 seeds must meet them."""
    mean, sd = osc.exact_moments()
    good = []
    for seed in range(3):
        eng = _engine(seed)
        while not eng.done():
            m = eng.step()
        d = eng.state.draws
        err, ratio = np.abs(d.mean(0) - mean) / sd, d.std(0) / sd
        good.append(bool((err < 0.25).all() and ((ratio > 0.8) & (ratio < 1.25)).all() and m["calls"] <= 60))
        if sum(good) == 2:
            break
    assert sum(good) >= 2, good
    # the check ran the real simulator at fresh posterior draws: the emulator was right there
    assert m["check_runs"] == 10 and m["check_failed"] == 0
    assert m["emulator_coverage"] >= 0.8 and m["emulator_error"] < 0.2
    assert m["ppc_coverage"] >= 0.8


def test_stages_are_ordinary_runs_and_the_result_links_them(tmp_path):
    job = calibrate(osc.oscillator, osc.BOUNDS, observed=osc.observed(), noise=osc.NOISE, rounds=2,
                    until="move<1e-9", initial_runs=20, runs_per_round=10, n_check=4, device="cpu",
                    sampler=SMALL, runs_dir=tmp_path, name="cal")
    assert job.wait(300) == "done", job.error
    tree = job.result
    stages = tree["stages"].to_dataset()
    assert list(stages["stage"].values) == ["r0-emulate", "r0-sample", "r1-emulate", "r1-sample"]
    # an unreachable target is reported as missed, with the number, never as a green "done"
    assert job.verdict.status == "target missed" and "move" in job.verdict.text
    rounds = tree["rounds"].to_dataset()
    assert rounds.sizes["round"] == 2 and np.isnan(rounds["move"][0]) and rounds["move"][1] > 0
    assert rounds["calls"].values.tolist() == [20, 30] and tree.attrs["simulator_calls"] == 34
    # each stage folder is a run of its own: it reopens with its monitor spec and result
    jobmod._JOBS.clear()
    emu = sciml_lab.open(tmp_path / "cal" / "stages" / "r1-emulate", simulator=osc.oscillator)
    assert emu.kind == "emulate" and emu.status == "done" and emu.resumable
    design = emu.data["design"].to_dataset()
    assert design.sizes["run"] == 30
    sample = sciml_lab.open(tmp_path / "cal" / "stages" / "r1-sample")
    assert sample.kind == "flowmc" and "posterior" in sample.data.children
    assert json.loads((tmp_path / "cal" / "stages" / "r1-sample" / "job.json").read_text())["parent"] == "cal"
    # round 1's runs went where round 0's posterior lives: nearer the truth than the prior's runs
    x = design["inputs"].sel(input=list(osc.BOUNDS)).values
    width = np.array([b[1] - b[0] for b in osc.BOUNDS.values()])
    dist = np.linalg.norm((x - np.array(list(osc.TRUTH.values()))) / width, axis=1)
    assert np.median(dist[20:]) < 0.5 * np.median(dist[:20])
    # the pipeline's own posterior is the last sampler's, in the ArviZ schema
    assert tree["posterior"]["omega"].dims == ("chain", "draw")


def test_a_killed_pipeline_reopens_and_continues_from_the_round_it_was_in(tmp_path):
    job = calibrate(osc.oscillator, osc.BOUNDS, observed=osc.observed(), noise=osc.NOISE, rounds=3,
                    until="move<1e-9", initial_runs=20, runs_per_round=10, n_check=0, device="cpu",
                    sampler=SMALL, runs_dir=tmp_path, name="kill", executor="process",
                    save_every=0.5, slice_s=0.5)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (job.metrics.get("round", 0) >= 1 and job.metrics.get("stage") == 1):
        time.sleep(0.05)  # until round 1's sampler is under way
    assert job.metrics.get("round") == 1 and job.metrics.get("stage") == 1, (job.status, job.error, job.metrics)
    folder = tmp_path / "kill"
    events = folder / "stages" / "r1-sample" / "events.jsonl"
    while time.monotonic() < deadline and not (events.exists() and events.read_text().strip()):
        time.sleep(0.05)  # until round 1's sampler has ended a slice: its steps and checkpoint are on disk
    os.kill(job._handle.proc.pid, signal.SIGKILL)
    assert job.wait(30) == "failed"
    before = events.read_text().splitlines()
    assert before, "round 1's sampler had logged its steps"
    jobmod._JOBS.clear()  # a new kernel
    again = sciml_lab.open(folder, simulator=osc.oscillator)
    assert again.resumable, again.record.get("not_resumable")
    again.extend(rounds=1)
    assert again.wait(300) == "done", again.error
    tree = again.result
    assert list(tree["stages"]["stage"].values) == ["r0-emulate", "r0-sample", "r1-emulate", "r1-sample",
                                                    "r2-emulate", "r2-sample", "r3-emulate", "r3-sample"]
    # rounds 0 and 1 were not run again: the simulator was paid once per run
    assert tree["rounds"]["calls"].values.tolist() == [20, 30, 40, 50] and tree.attrs["simulator_calls"] == 50
    steps = [json.loads(line)["step"] for line in
             (folder / "stages" / "r1-sample" / "events.jsonl").read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= len(before) - 1


def test_observations_that_do_not_fit_the_simulator_fail_the_job_keeping_the_emulator(tmp_path):
    job = calibrate(osc.oscillator, osc.BOUNDS, observed=osc.observed()[:7], noise=osc.NOISE, rounds=1,
                    initial_runs=12, runs_per_round=6, device="cpu", sampler=SMALL, runs_dir=tmp_path, name="bad")
    assert job.wait(120) == "failed"
    assert "observed: expected 10 values, one per value the simulator returns" in job.error and "got 7" in job.error
    emu = sciml_lab.open(tmp_path / "bad" / "stages" / "r0-emulate", simulator=osc.oscillator)
    assert emu.status == "done" and emu.data["design"].sizes["run"] == 12


@pytest.mark.parametrize("kwargs, message", [
    ({"noise": -0.1}, "noise: expected standard deviations > 0, got -0.1"),
    ({"observed": None}, "observed: required"),
    ({"bounds": {"omega": (3.0, 0.5)}}, "bounds: 'omega' needs finite low < high"),
    ({"until": "rhat<1.01"}, "rhat"),
    ({"rounds": 0}, "rounds: expected an integer >= 1, got 0"),
])
def test_bad_arguments_say_which_and_what_was_expected(kwargs, message):
    args = {"bounds": osc.BOUNDS, "observed": osc.observed(), "noise": osc.NOISE, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CalibrateEngine(osc.oscillator, args.pop("bounds"), **args)


def test_a_simulator_is_required():
    with pytest.raises(ValueError, match="simulator: expected a callable, got int"):
        CalibrateEngine(3, osc.BOUNDS, observed=osc.observed(), noise=osc.NOISE)
    with pytest.raises(TypeError, match="needs its simulator"):
        CalibrateEngine.from_config(_engine().config())


def test_the_monitor_shows_the_stages_and_the_current_one():
    eng = _engine(rounds=1, n_check=0)
    eng.step()
    spec = eng.monitor.to_json()
    assert spec["phase"]["labels"] == ["emulate", "sample", "check", "discover", "finished"] and spec["phase"]["counter"] == "round"
    assert spec["note"] == "stages: r0-emulate (emulate, now)"
    assert [c["series"] for c in spec["charts"]][:2] == [["move"], ["emulator_sd"]]


def test_the_magic_launches_a_calibration_and_binds_the_job(ipython_shell, tmp_path):
    from IPython.core.error import UsageError

    shell = ipython_shell
    shell.run_cell("import calibration\nsim = calibration.oscillator\ny_obs = calibration.observed()\n")
    shell.run_line_magic("sciml", f"calibrate sim --bounds 'omega=0.5:3 zeta=0.01:0.5' --observed y_obs "
                                  f"--noise 0.05 --rounds 1 --initial 12 --per-round 6 --check 2 --device cpu "
                                  f"--no-monitor --name cal --runs-dir {tmp_path}")
    job = shell.user_ns["cal"]
    assert job.wait(300) == "done", job.error
    assert job.result["check"].sizes["check_run"] == 2 and job.result.attrs["simulator_calls"] == 14
    for args, message in (("--bounds 'omega=0.5:3' --observed y_obs --noise sigma", "--noise: no variable named 'sigma'"),
                          ("--bounds 'omega=0.5:3:log' --observed y_obs --noise 0.05", "':log' is not supported"),
                          ("--bounds 'omega=0.5:3' --observed y_obs --noise 0.05 --rounds 0",
                           "argument --rounds: expected an integer >= 1, got 0")):
        with pytest.raises(UsageError, match=message):
            shell.run_line_magic("sciml", f"calibrate sim {args}")


def _decay(a, b):
    """Only the product a*b is identified by these data: the posterior is a ridge a = 1/b."""
    return np.exp(-a * b * np.linspace(0.5, 3.0, 6))


def test_discover_finds_the_ridge_of_a_posterior_with_constants_and_intervals(tmp_path):
    y = _decay(1.0, 1.0) + 0.01 * np.random.default_rng(3).normal(size=6)
    job = calibrate(_decay, {"a": (0.5, 2.0), "b": (0.5, 2.0)}, observed=y, noise=0.01, rounds=2,
                    initial_runs=20, runs_per_round=10, n_check=0, device="cpu", sampler=SMALL,
                    discover=("a",), discover_options={"iterations": 40}, runs_dir=tmp_path, name="ridge")
    assert job.wait(300) == "done", job.error
    found = job.result["discover"].to_dataset().sel(relation="a")
    # the data fix a*b (sd of a*b well under 0.02) while a and b range over a factor of two
    assert float(found["r2"]) > 0.95, found
    eq = str(found["equation"].values)
    assert "/b" in eq.replace(" ", "") or "b**(-1)" in eq, eq
    lo, hi = found["constant_lower"].values, found["constant_upper"].values
    ok = np.isfinite(lo)
    assert ok.any() and ((lo[ok] <= found["constant_value"].values[ok]) & (found["constant_value"].values[ok] <= hi[ok])).all()
    assert list(job.result["stages"]["kind"].values)[-1] == "discover"
    assert (tmp_path / "ridge" / "stages" / "r1-discover-a" / "result.nc").exists()


def test_discover_a_closed_form_of_the_simulator_where_the_posterior_lives(tmp_path):
    from sciml_lab.pipeline import discover

    cal = calibrate(osc.oscillator, osc.BOUNDS, observed=osc.observed(), noise=osc.NOISE, rounds=2,
                    initial_runs=20, runs_per_round=10, n_check=0, device="cpu", sampler=SMALL, runs_dir=tmp_path,
                    name="osc")
    assert cal.wait(300) == "done", cal.error
    job = discover(cal, "y[0]", on="emulator", iterations=40, seed=0)
    assert job.wait(300) == "done", job.error
    assert job.store.path == tmp_path / "osc" / "stages" / "discover-y_0"
    attrs = job.result.attrs
    assert attrs["source"] == "emulator mean of y[0] at posterior draws" and attrs["source_run"] == str(tmp_path / "osc")
    # x(0.5) over the posterior's small region is smooth in (omega, zeta): a short formula fits it
    front = job.result["pareto"].to_dataset()
    assert float(front["r2"].max()) > 0.99, front
    # reopened from disk, the emulator needs its simulator to be rebuilt
    jobmod._JOBS.clear()
    with pytest.raises(ValueError, match="simulator: a calibration reopened from disk needs simulator="):
        discover(tmp_path / "osc", "y[0]", on="emulator")
    with pytest.raises(ValueError, match="target: 'nope' is not a scalar parameter"):
        discover(tmp_path / "osc", "nope")


def _fragile(omega, zeta):
    """The oscillator, failing (as a stiff solver may) for strong damping, far from the posterior."""
    if zeta > 0.4:
        raise RuntimeError("step size underflow")
    return osc.oscillator(omega, zeta)


def test_failing_simulator_runs_are_kept_learnt_and_reported():
    eng = CalibrateEngine(_fragile, osc.BOUNDS, observed=osc.observed(), noise=osc.NOISE, rounds=2, initial_runs=20,
                          runs_per_round=10, n_check=4, device="cpu", sampler=SMALL)
    while not eng.done():
        m = eng.step()
    assert eng.state.failed >= 1 and m["check_failed"] == 0  # the posterior lives where the simulator works
    mean, sd = osc.exact_moments()
    assert (np.abs(eng.state.draws.mean(0) - mean) / sd < 0.5).all()
    v = eng.verdict(m)
    assert any(w.startswith(f"{eng.state.failed} of 30 simulator runs of the emulator failed") for w in v.warnings), v

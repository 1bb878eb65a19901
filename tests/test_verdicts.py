"""Verdicts: every finished job says whether to trust it (DESIGN.md, "Verdicts").

Real jobs, real run folders, real engines; the flow-MCMC runs are small, CPU, fixed
seeds, with bounds that hold on every seed tried (see each test).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import engines
from sciml_lab.flowmc import FlowMCEngine, sample
from sciml_lab.runtime import EngineBase, Verdict, launch, open_run, parse_criteria
from sciml_lab.kit.verdict import criteria_verdict, describe_criterion, judge

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


# ----------------------------------------------------------------------------- the verdict itself
def test_verdict_text_and_level_say_what_happened():
    assert Verdict("converged", ["R-hat 1.004 < 1.01"]).text == "converged"
    assert Verdict("converged", [], ["a"]).text == "converged with 1 warning"
    assert Verdict("done", [], ["a", "b"]).text == "done with 2 warnings"
    missed = Verdict("target missed", ["R-hat 1.021 > 1.01 (tau)", "ESS 412 < 1000 (tau)"])
    assert missed.text == "target missed: R-hat 1.021 > 1.01 (tau); ESS 412 < 1000 (tau)"
    assert Verdict("failed", ["ValueError: x"]).text == "failed: ValueError: x"
    levels = {v.status + str(len(v.warnings)): v.level for v in (
        Verdict("converged"), Verdict("done"), Verdict("done", [], ["w"]), missed, Verdict("failed", ["e"]),
        Verdict("stopped"))}
    assert levels == {"converged0": "ok", "done0": "ok", "done1": "warn", "target missed0": "warn",
                      "failed0": "error", "stopped0": "neutral"}
    with pytest.raises(ValueError, match="status: expected one of"):
        Verdict("fine")


def test_missed_criterion_shows_value_target_and_true_relation():
    rhat, ess = parse_criteria("rhat<1.01 ess>1000")
    # 1.0104 must not read "1.010 > 1.01": more digits where the format would hide the miss
    assert describe_criterion(rhat, 1.0104, "R-hat", ".3f") == "R-hat 1.0104 > 1.01"
    assert describe_criterion(ess, 999.6, "ESS", ".0f", "tau") == "ESS 999.6 < 1000 (tau)"
    assert describe_criterion(rhat, float("nan"), "R-hat") == "R-hat not computed (target rhat<1.01)"


def test_criteria_verdict_converged_missed_and_default_targets():
    criteria = parse_criteria("rhat<1.01 ess>1000")
    assert criteria_verdict(criteria, {"rhat": 1.004, "ess": 2400}).status == "converged"
    v = criteria_verdict(criteria, {"rhat": 1.021, "ess": 2400}, where={"rhat": "tau"})
    assert (v.status, v.reasons) == ("target missed", ["rhat 1.021 > 1.01 (tau)"])
    # no --until: a badge's default target that is not met is a warning, never a silent "done"
    v = criteria_verdict([], {"stderr": 0.003}, monitor=engines.StepEngine.monitor)
    assert v.text == "done"  # the StepEngine badge is on abs_mean, not reported here
    v = criteria_verdict([], {"abs_mean": 0.9}, monitor=engines.StepEngine.monitor)
    assert v.text == "done with 1 warning" and v.warnings == ["|mean| 0.9 > 0.5: the default target abs_mean<0.5 is not met"]
    v = criteria_verdict([], {"abs_mean": float("nan")}, monitor=engines.StepEngine.monitor)
    assert "|mean| is not a number at the end" in v.warnings[0]


def test_engine_base_verdict_uses_criteria_and_warnings():
    class Fit(EngineBase):
        criteria = parse_criteria("loss<0.1")

        def warnings(self):
            return ["constant c: interval [-3, 5] is wider than the constant (1.2)"]

    assert Fit().verdict({"loss": 0.3}).text == "target missed: loss 0.3 > 0.1"
    assert Fit().verdict({"loss": 0.05}).warnings == ["constant c: interval [-3, 5] is wider than the constant (1.2)"]


def test_judge_never_raises_and_names_the_failure():
    class Broken(EngineBase):
        def warnings(self):
            raise RuntimeError("no draws")

    v = judge(Broken(), "done", {})
    assert v.status == "done" and "could not be computed (RuntimeError: no draws)" in v.warnings[0]
    assert judge(Broken(), "failed", {}, "FloatingPointError: boom").text == "failed: FloatingPointError: boom"
    # stopped before the target: says what was still missing
    class Target(EngineBase):
        criteria = parse_criteria("abs_mean<0.01")

    assert judge(Target(), "stopped", {"abs_mean": 0.2}).text == "stopped: abs_mean 0.2 > 0.01"
    assert judge(Target(), "stopped", {"abs_mean": 0.001}).status == "converged"


# ----------------------------------------------------------------------------- the runtime records it
def _job_json(job) -> dict:
    return json.loads((job.store.path / "job.json").read_text())


def test_verdict_is_in_job_json_result_attrs_and_job(runs):
    job = launch(engines.StepEngine(steps=5), name="fine", runs_dir=runs)
    assert job.wait(30) == "done"
    v = job.verdict
    assert v is not None and v.status == "done"
    assert _job_json(job)["verdict"] == v.to_json()
    assert Verdict.from_json(job.result.attrs["verdict"]) == v
    reopened = open_run(job.store.path)
    assert reopened.verdict == v


def test_run_whose_kernel_ended_while_it_ran_reopens_as_stopped_with_the_reason(runs):
    job = launch(engines.StepEngine(steps=3), name="orphan", runs_dir=runs)
    job.wait(30)
    record = _job_json(job)
    record["status"] = "running"  # what a kernel that died mid-run leaves on disk
    del record["verdict"]
    (job.store.path / "job.json").write_text(json.dumps(record))
    from sciml_lab.runtime import job as jobmod

    jobmod._JOBS.clear()  # a new kernel
    v = open_run(runs / "orphan").verdict
    assert v.status == "stopped" and "ended while it was running" in v.text, v


def test_failed_job_verdict_gives_the_error(runs):
    job = launch(engines.StepEngine(steps=10, fail_at=3), name="boom", runs_dir=runs)
    assert job.wait(30) == "failed"
    assert job.verdict.status == "failed"
    assert "FloatingPointError: test engine failed at step 3" in job.verdict.text
    assert _job_json(job)["verdict"]["level"] == "error"


def test_extend_clears_the_verdict_and_judges_again(runs):
    job = launch(engines.StepEngine(steps=3), name="again", runs_dir=runs)
    job.wait(30)
    first = job.verdict
    job.extend(steps=200)
    assert job.verdict is None or job.status != "running"  # no stale verdict while running
    assert job.wait(60) == "done" and job.step == 203
    # |mean| of 203 standard normals is below 0.5 with probability 1 - 1e-12: no warning now,
    # whatever the 3-step run said
    assert job.verdict is not None and job.verdict.warnings == [] and first is not None


def test_process_executor_brings_the_verdict_back(runs):
    job = launch(engines.StepEngine(steps=10, fail_at=4), name="proc", runs_dir=runs, executor="process")
    assert job.wait(120) == "failed"
    assert job.verdict.text.startswith("failed: FloatingPointError")
    assert _job_json(job)["verdict"]["status"] == "failed"


def test_jobs_listing_and_monitor_show_the_verdict(runs, ipython_shell):
    from sciml_lab.widgets import Monitor

    job = launch(engines.StepEngine(steps=2), name="listed", runs_dir=runs)
    job.wait(30)
    table = ipython_shell.run_cell("%sciml jobs").result
    row = table[table.name == "listed"].iloc[0]
    assert row["verdict"] == job.verdict.text and row["status"] == "done"
    assert Monitor(job).verdict == job.verdict.to_json()


# ----------------------------------------------------------------------------- flow-MCMC
Y = torch.tensor([28.0, 8, -3, 7, -1, 1, 18, 12])
SIGMA = torch.tensor([15.0, 10, 16, 11, 9, 11, 10, 18])


def eight_schools_centred(p):
    """mu ~ N(0, 5), tau ~ half-Cauchy(0, 5), theta_j ~ N(mu, tau), y_j ~ N(theta_j, sigma_j):
    the centred form, whose funnel between tau and theta defeats local samplers."""
    mu, tau, theta = p["mu"], p["tau"], p["theta"]
    lp = -0.5 * (mu / 5) ** 2 - torch.log1p((tau / 5) ** 2)
    lp = lp - 8 * torch.log(tau) - 0.5 * (((theta - mu[:, None]) / tau[:, None]) ** 2).sum(1)
    return lp - 0.5 * (((Y - theta) / SIGMA) ** 2).sum(1)


EIGHT = dict(params={"mu": (), "tau": (), "theta": 8}, bounds={"tau": (0, None)}, n_chains=32, n_loops=5,
             n_training_loops=4, n_local_steps=30, n_global_steps=30, n_epochs=5, device="cpu")


def test_eight_schools_centred_misses_its_target_and_says_why(runs):
    job = sample(eight_schools_centred, until="rhat<1.01 ess>1000", seed=0, name="eight", runs_dir=runs, **EIGHT)
    assert job.wait(120) == "done"
    v = job.verdict
    # 32 chains x 5 loops of 60 draws: tau's bulk ESS was 57-75 on seeds 0-4, far from 1000,
    # so the loop cap always comes first; the pill must say so, with the numbers
    assert v.status == "target missed" and v.level == "warn", v
    assert v.text.startswith(f"target missed: R-hat {job.metrics['rhat']:.3f} > 1.01 ("), v.text
    assert f"ESS {job.metrics['ess']:.0f} < 1000" in v.text, v.text
    assert any("after the loop cap (5 production loops)" in w for w in v.warnings), v.warnings
    assert _job_json(job)["verdict"]["text"] == v.text
    assert Verdict.from_json(job.result.attrs["verdict"]) == v
    stats = job.result["sample_stats"]
    assert stats["diverging"].dims == stats["energy_error"].dims == ("chain", "draw")
    assert stats["diverging"].dtype == bool


def test_eight_schools_centred_warnings_name_tau_and_the_divergences():
    named_tau, divergent = 0, 0
    for seed in range(3):
        eng = FlowMCEngine(eight_schools_centred, until="rhat<1.01 ess>1000", seed=seed, **EIGHT)
        while not eng.done():
            metrics = eng.step()
        v = eng.verdict(metrics)
        # the funnel: tau had the worst R-hat and there were 12 to 230 divergent transitions
        # on each of seeds 0-4; asserted on 2 of 3 seeds (this test passed on seed shifts 0-19,
        # bench/seed_sweep.py, as did the other flow-MCMC tests of this file)
        named_tau += "(tau)" in v.text and v.warnings[0].startswith("tau: R-hat")
        n_div = int(eng.snapshot()["sample_stats"]["diverging"].sum())
        divergent += n_div > 0 and any(w.startswith(f"{n_div} divergent transitions (") for w in v.warnings)
    assert named_tau >= 2 and divergent >= 2, (named_tau, divergent)


def test_gaussian_run_converges_and_has_no_divergence(runs):
    job = sample(lambda x: -0.5 * (x ** 2).sum(1), dim=2, until="rhat<1.05 ess>300", n_chains=32,
                 n_training_loops=4, n_local_steps=20, n_global_steps=20, n_epochs=5, device="cpu", seed=0,
                 runs_dir=runs, name="gauss")
    assert job.wait(120) == "done"
    v = job.verdict
    # until stops the run only once every criterion holds, long before the cap of 200 loops
    assert v.status == "converged" and job.engine.production_loops < 200, v
    assert v.reasons[0].startswith("R-hat ") and "< 1.05" in v.reasons[0]
    assert not any("R-hat" in w or "divergent" in w for w in v.warnings), v.warnings
    stats = job.result["sample_stats"]
    # a standard normal has no curvature to diverge on: the energy errors of the local
    # moves stay O(1) (a divergence needs > 1000)
    assert int(stats["diverging"].sum()) == 0
    local = stats["energy_error"].values[stats["kernel"].values == 0]
    assert np.isfinite(local).all() and np.abs(local).max() < 50
    assert np.isnan(stats["energy_error"].values[stats["kernel"].values == 1]).all()  # global moves


def test_hmc_divergences_are_counted_on_a_funnel():
    def funnel(x):  # Neal's funnel: v ~ N(0, 3), x_i | v ~ N(0, exp(v / 2))
        v, rest = x[:, 0], x[:, 1:]
        return -0.5 * (v / 3) ** 2 - 0.5 * (rest ** 2).sum(1) * torch.exp(-v) - 0.5 * rest.shape[1] * v

    eng = FlowMCEngine(funnel, dim=5, kernel="hmc", n_chains=16, n_training_loops=2, n_loops=2,
                       n_local_steps=10, n_global_steps=0, n_epochs=0, device="cpu", seed=0,
                       init=lambda n: torch.cat([torch.full((n, 1), -4.0), 0.05 * torch.randn(n, 4)], 1))
    while not eng.done():
        eng.step()
    tree = eng.snapshot()
    warm, post = tree["warmup_sample_stats"], tree["sample_stats"]
    n_div = int(warm["diverging"].sum()) + int(post["diverging"].sum())
    # chains started deep in the neck (v = -4, scale e^-2) with HMC's nominal step for a unit
    # scale: the first trajectories blow up (energy errors far above 1000 or not finite)
    assert n_div > 0
    e = np.concatenate([warm["energy_error"].values.ravel(), post["energy_error"].values.ravel()])
    assert ((e > 1000) | np.isposinf(e)).sum() == n_div


def test_rhat_chart_follows_the_target_and_ends_near_it():
    def chart(until):
        eng = FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu", until=until)
        return next(c for c in eng.monitor.charts if c.series == ("rhat",))

    default, strict = chart(None), chart("rhat<1.001 ess>100")
    assert default.hlines == (1.01,) and default.y_max == 1.1
    assert strict.hlines == (1.001,) and strict.y_max == 1.1
    assert chart("rhat<1.05").y_max == 1.5  # a loose target keeps 1.05 and its miss apart too

"""Specification of the flow-MCMC engine (sciml_lab.flowmc).

All runs are on CPU with fixed seeds and small budgets (the file runs in well under
three minutes on two cores). Statistical tolerances are justified where they are set.
"""

from __future__ import annotations

import io
import math
import shutil
import warnings

import numpy as np
import pytest
import torch
import xarray as xr

import sciml_lab
from sciml_lab.flowmc import FlowMCEngine, sample
from sciml_lab.flowmc.diagnostics import ess_bulk, parameter_diagnostics, rhat, summary_diagnostics
from sciml_lab.flowmc.flow import GaussianProposal
from sciml_lab.flowmc.kernels import ChainState, global_block, mass_cholesky
from sciml_lab.flowmc.plots import summary
from sciml_lab.flowmc.target import Target
from sciml_lab.runtime.store import read_result, write_result

warnings.filterwarnings("ignore", category=FutureWarning)  # arviz 0.2x announces its refactor


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py

SMALL = dict(n_chains=32, n_training_loops=4, n_loops=4, n_local_steps=20, n_global_steps=20, n_epochs=5,
             device="cpu", seed=0)

MODES = torch.tensor([[-5.0, -5.0], [5.0, -5.0], [-5.0, 5.0], [5.0, 5.0]])
WEIGHTS = torch.tensor([0.1, 0.2, 0.3, 0.4])


def gaussian_mixture(x: torch.Tensor) -> torch.Tensor:
    """Four unit-variance modes 10 apart (about 5 standard deviations of empty space
    between neighbours): a local kernel alone essentially never crosses."""
    d2 = ((x[:, None, :] - MODES) ** 2).sum(-1)
    return torch.logsumexp(torch.log(WEIGHTS) - 0.5 * d2, dim=1)


def mode_weight_tv(x: np.ndarray) -> float:
    label = ((torch.as_tensor(x)[:, None, :] - MODES) ** 2).sum(-1).argmin(1)
    w = torch.bincount(label, minlength=4).double() / len(label)
    return 0.5 * float((w - WEIGHTS.double()).abs().sum())


def run(engine: FlowMCEngine) -> dict:
    m = {}
    while not engine.done():
        m = engine.step()
    return m


def posterior_array(tree: xr.DataTree, var: str = "x") -> np.ndarray:
    return tree["posterior"][var].values


# ----------------------------------------------------------------------------- diagnostics
def awkward_draws():
    """4 chains x 301 draws of 3 parameters: one chain off, one autocorrelated, one full of ties."""
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(4, 301, 3))
    draws[..., 1] = np.cumsum(draws[..., 1], axis=1) * 0.05 + draws[..., 1]  # autocorrelated
    draws[..., 2] = np.sign(draws[..., 2])  # ties
    draws[0, :, 0] += 0.4  # one chain off
    return draws


def test_rhat_and_bulk_ess_match_arviz():
    import arviz as az

    draws = awkward_draws()
    ours_r, ours_e = rhat(draws), ess_bulk(draws)
    for i in range(3):
        assert ours_r[i] == pytest.approx(float(az.rhat(draws[..., i])), rel=1e-10)
        assert ours_e[i] == pytest.approx(float(az.ess(draws[..., i], method="bulk")), rel=1e-10)


def test_tail_ess_and_mcse_match_arviz():
    import arviz as az

    draws = awkward_draws()
    ours = parameter_diagnostics(draws)
    for i in range(3):
        x = draws[..., i]
        assert ours["ess_tail"][i] == pytest.approx(float(az.ess(x, method="tail")), rel=1e-10)
        assert ours["mcse_mean"][i] == pytest.approx(float(az.mcse(x, method="mean")), rel=1e-10)
        assert ours["mcse_sd"][i] == pytest.approx(float(az.mcse(x, method="sd")), rel=1e-10)
        assert ours["r_hat"][i] == pytest.approx(float(az.rhat(x)), rel=1e-10)
        assert ours["ess_bulk"][i] == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-10)


def test_summary_has_arviz_columns_per_element_of_a_vector_parameter():
    import arviz as az

    rng = np.random.default_rng(2)
    theta = rng.normal(size=(4, 200, 3)) * np.array([1.0, 2.0, 0.5])
    table = summary(xr.Dataset({"theta": (("chain", "draw", "theta_dim_0"), theta)}))
    assert list(table.index) == ["theta[0]", "theta[1]", "theta[2]"]
    ref = az.summary(az.from_dict(posterior={"theta": theta}), hdi_prob=0.94, round_to="none")
    for col in ("mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"):
        np.testing.assert_allclose(table[col].to_numpy(float), ref[col].to_numpy(float), rtol=1e-8, err_msg=col)


def test_summary_diagnostics_flags_unmixed_chains():
    rng = np.random.default_rng(1)
    mixed = rng.normal(size=(8, 400, 2))
    stuck = mixed + np.arange(8)[:, None, None]  # chains in different places
    assert summary_diagnostics(mixed)[0] < 1.01
    assert summary_diagnostics(stuck)[0] > 1.5


# ----------------------------------------------------------------------------- correctness
def test_correlated_gaussian_moments():
    cov = torch.tensor([[4.0, 1.8, 0.0], [1.8, 1.0, 0.1], [0.0, 0.1, 0.25]])  # correlation 0.9 between x0, x1
    mean = torch.tensor([1.0, -2.0, 0.5])
    prec = torch.linalg.inv(cov)

    def log_prob(x):
        d = x - mean
        return -0.5 * ((d @ prec) * d).sum(1)

    eng = FlowMCEngine(log_prob, dim=3, **dict(SMALL, n_loops=8))
    m = run(eng)
    x = posterior_array(eng.snapshot()).reshape(-1, 3)
    ess = m["ess"]
    # 32 chains of 320 draws: the R-hat of well-mixed chains still fluctuates by ~0.005
    # (and this is the worst of 3 parameters, bulk and tail), so 1.02 rather than 1.01
    assert m["rhat"] < 1.02 and ess > 1000
    # the error of a mean is about sd / sqrt(ESS); 5 of those is a > 99.9 % band per coordinate
    sd = cov.diagonal().sqrt().numpy()
    assert np.all(np.abs(x.mean(0) - mean.numpy()) < 5 * sd / math.sqrt(ess))
    # a variance estimated from ESS ~ 1e3 draws has a relative sd of sqrt(2 / ESS) ~ 4 %: allow 15 %
    assert np.allclose(np.cov(x.T), cov.numpy(), rtol=0.15, atol=0.15 * 0.25)


def test_mass_matrix_is_pooled_for_one_mode_and_within_chain_across_modes():
    g = torch.Generator().manual_seed(0)
    # one wide Gaussian (sd 10 and 0.1) seen by short chains that each cover only a little of it
    centres = torch.randn(64, 1, 2, generator=g) * torch.tensor([10.0, 0.1])
    short = centres + 0.2 * torch.randn(64, 30, 2, generator=g) * torch.tensor([1.0, 0.1])
    chol, kind = mass_cholesky(short)
    sd = (chol @ chol.T).diagonal().sqrt()
    assert kind == "pooled"
    assert 7 < float(sd[0]) < 13 and 0.07 < float(sd[1]) < 0.13  # 64 chains: sd of an sd ~ 9 %
    # chains sitting in the four modes of the mixture: the local scale, not the distance between modes
    in_modes = MODES[torch.arange(64) % 4][:, None, :] + torch.randn(64, 30, 2, generator=g)
    chol, kind = mass_cholesky(in_modes)
    assert kind == "within" and torch.allclose((chol @ chol.T).diagonal().sqrt(), torch.ones(2), atol=0.1)


def test_ill_conditioned_gaussian_learns_its_scales():
    var = torch.logspace(-2, 2, 10)  # condition number 1e4

    def log_prob(x):
        return -0.5 * (x ** 2 / var).sum(1)

    eng = FlowMCEngine(log_prob, dim=10, **dict(SMALL, n_chains=64, n_training_loops=6))
    m = run(eng)
    assert eng.adapt.mass_estimator == "pooled"
    learned = (eng.adapt.chol @ eng.adapt.chol.T).diagonal()
    # measured ratios 0.92-1.12 (an estimate from ~1300 draws): a factor 2 is a wide band, and
    # the within-chain estimate of short windows fails it by 100x along the widest direction
    assert torch.all((learned / var > 0.5) & (learned / var < 2.0)), learned / var
    # measured 1.015 (1.098 with the within-chain estimate); 64 chains x 160 draws fluctuate by ~0.01
    assert m["rhat"] < 1.05


def test_live_diagnostics_keep_to_their_time_share_and_the_last_loop_has_them():
    eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, until="rhat<1.5", **dict(SMALL, n_loops=6))
    eng.schedule.DIAGNOSTICS_SHARE = 0.0  # no time for them: only the budget's last loop computes them
    m = run(eng)
    rows = eng.snapshot()["diagnostics"]
    production = rows["rhat_max"].values[rows["production"].values == 1]
    assert len(production) == 6  # "until" was never judged on stale values
    assert np.isnan(production[:-1]).all() and np.isfinite(production[-1]) and m["rhat"] == production[-1]
    assert 0 < eng.run.diag_wall < eng.run.wall


def test_mixture_weights_flow_mcmc_right_mala_alone_wrong():
    common = dict(n_chains=64, n_training_loops=6, n_loops=6, n_local_steps=20, n_epochs=10, device="cpu",
                  seed=0)
    flow = FlowMCEngine(gaussian_mixture, dim=2, n_global_steps=20, **common)
    m = run(flow)
    tv_flow = mode_weight_tv(posterior_array(flow.snapshot()).reshape(-1, 2))
    mala = FlowMCEngine(gaussian_mixture, dim=2, n_global_steps=0, **common)
    run(mala)
    tv_mala = mode_weight_tv(posterior_array(mala.snapshot()).reshape(-1, 2))
    # 64 chains each hopping between modes give an ESS of the mode indicator in the
    # thousands: sampling error of each weight ~ 0.01, so TV < 0.05 is a loose bound.
    assert tv_flow < 0.05, tv_flow
    # MALA alone keeps each chain in the mode nearest its start, so the weights follow
    # the (uniform) initial box: TV near 0.2 (0.1 would already be a visible failure).
    assert tv_mala > 0.1, tv_mala
    assert m["global_acceptance"] > 0.2
    kernel = flow.snapshot()["sample_stats"]["kernel"]
    assert set(np.unique(kernel.values)) == {0, 1}


def test_bounded_parameter_recovers_beta_posterior():
    a, b = 2.0, 5.0

    def log_prob(p):
        q = p["q"]
        return (a - 1) * torch.log(q) + (b - 1) * torch.log1p(-q)

    eng = FlowMCEngine(log_prob, params=["q"], bounds={"q": (0, 1)}, **SMALL)
    m = run(eng)
    q = eng.snapshot()["posterior"]["q"].values.ravel()
    assert q.min() > 0 and q.max() < 1
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    assert abs(q.mean() - mean) < 5 * math.sqrt(var / m["ess"])  # 5 standard errors
    assert q.var() == pytest.approx(var, rel=0.15)  # relative sd of a variance ~ sqrt(2/ESS) < 5 %


def test_global_acceptance_is_exact_with_a_known_proposal():
    """Independence MH from N(0, 2^2) to N(0, 1): at stationarity the mean acceptance
    is E[min(1, w(y) / w(x))], w = p / q, computed here by quadrature."""
    target = Target(lambda x: -0.5 * (x ** 2).sum(1), dim=1, dtype=torch.float64)
    q = GaussianProposal(torch.zeros(1, dtype=torch.float64), torch.eye(1, dtype=torch.float64) * 4.0)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(20000, 1, generator=gen, dtype=torch.float64)  # start at stationarity
    state = ChainState(x, target.log_prob(x), None)
    state, xs, _, acc, _ = global_block(target, q, state, 10, gen)

    grid = np.linspace(-12, 12, 4001)
    h = grid[1] - grid[0]
    p = np.exp(-0.5 * grid ** 2) / math.sqrt(2 * math.pi)
    qd = np.exp(-0.5 * grid ** 2 / 4) / math.sqrt(2 * math.pi * 4)
    logw = np.log(p) - np.log(qd)
    expected = (p[:, None] * qd[None, :] * np.minimum(1, np.exp(logw[None, :] - logw[:, None]))).sum() * h * h
    # 2e5 accept/reject indicators: standard error ~ sqrt(a (1 - a) / 2e5) ~ 1e-3; 5e-3 is 5 of those
    assert float(acc.double().mean()) == pytest.approx(expected, abs=5e-3)
    # and the chain stays on the target: variance 1 (sd of the estimate ~ 0.01)
    assert float(xs[:, -1].var()) == pytest.approx(1.0, abs=0.05)


def test_proposal_equal_to_target_accepts_every_move():
    target = Target(lambda x: -0.5 * (x ** 2).sum(1), dim=3, dtype=torch.float64)
    q = GaussianProposal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    x = torch.randn(50, 3, dtype=torch.float64)
    state = ChainState(x, target.log_prob(x), None)
    _, _, _, acc, alpha = global_block(target, q, state, 5, torch.Generator().manual_seed(0))
    assert bool(acc.all()) and torch.allclose(alpha, torch.ones_like(alpha))


def test_funnel_produces_no_nan():
    def funnel(x):
        v = x[:, 0]
        return -0.5 * v ** 2 / 9 - 0.5 * (x[:, 1:] ** 2).sum(1) * torch.exp(-v) - 0.5 * 9 * v

    eng = FlowMCEngine(funnel, dim=10, **SMALL)
    m = run(eng)
    tree = eng.snapshot()
    assert np.isfinite(posterior_array(tree)).all()
    assert np.isfinite(tree["sample_stats"]["lp"].values).all()
    assert all(math.isfinite(m[k]) for k in ("lp_mean", "local_acceptance", "rhat", "ess"))


def test_same_seed_same_draws_on_cpu():
    def lp(x):
        return -0.5 * (x ** 2).sum(1)

    opts = dict(SMALL, n_training_loops=2, n_loops=1)
    a, b = FlowMCEngine(lp, dim=2, **opts), FlowMCEngine(lp, dim=2, **opts)
    run(a)
    run(b)
    np.testing.assert_array_equal(posterior_array(a.snapshot()), posterior_array(b.snapshot()))
    stats_a, stats_b = a.snapshot()["sample_stats"], b.snapshot()["sample_stats"]
    np.testing.assert_array_equal(stats_a["energy_error"].values, stats_b["energy_error"].values)


# ----------------------------------------------------------------------------- inputs
def test_named_parameters_and_numpy_log_prob_use_random_walk():
    def log_prob(p):  # NumPy: no autograd
        return -0.5 * (np.asarray(p["mu"]) ** 2 + (np.asarray(p["theta"]) ** 2).sum(1))

    eng = FlowMCEngine(log_prob, params={"mu": 1, "theta": 2}, **dict(SMALL, n_loops=2))
    assert eng.adapt.kernel == "rw" and "gradient-free" in eng.monitor.note
    run(eng)
    post = eng.snapshot()["posterior"]
    assert post["mu"].dims == ("chain", "draw") and post["theta"].dims == ("chain", "draw", "theta_dim_0")


def test_initial_points_outside_the_support_are_reported_by_chain():
    init = np.zeros((4, 1))
    init[[1, 3]] = -1.0

    def log_prob(x):
        return torch.where(x[:, 0] >= 0, -x[:, 0], torch.full_like(x[:, 0], -math.inf))

    with pytest.raises(ValueError, match=r"chains \[1, 3\]"):
        FlowMCEngine(log_prob, init=init, n_chains=4, device="cpu")


def test_missing_dimension_is_a_clear_error():
    with pytest.raises(ValueError, match="dim"):
        FlowMCEngine(lambda x: -x.sum(1), device="cpu")


# ----------------------------------------------------------------------------- protocol
def test_extend_continues_production_without_reset():
    eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, **dict(SMALL, n_loops=2))
    run(eng)
    before = eng.snapshot()
    eps, loops = eng.adapt.eps, eng.run.loop
    eng.extend(loops=2)
    assert not eng.done()
    run(eng)
    after = eng.snapshot()
    n_before = before["posterior"].sizes["draw"]
    assert after["posterior"].sizes["draw"] == 2 * n_before  # two more loops of the same length
    np.testing.assert_array_equal(after["posterior"]["x"].values[:, :n_before], before["posterior"]["x"].values)
    assert eng.adapt.eps == eps and eng.run.loop == loops + 2  # adaptation stays frozen; loops counted on
    assert after["diagnostics"].sizes["iteration"] == before["diagnostics"].sizes["iteration"] + 2


@pytest.mark.parametrize("options", [{}, dict(step_adaptation="chain", step_jitter=0.3, train_reweighted=0.3)])
def test_checkpoint_reload_then_extend_matches_uninterrupted_run(options):
    def lp(x):
        return -0.5 * (x ** 2).sum(1)

    opts = dict(SMALL, n_training_loops=2, n_loops=1, **options)
    a = FlowMCEngine(lp, dim=2, **opts)
    run(a)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    b = FlowMCEngine.from_config(a.config(), log_prob=lp)
    b.load_state_dict(torch.load(buf, weights_only=True))
    if options:  # the per-chain step sizes and the last global proposals are a part of the checkpoint
        assert a.adapt.eps_chains is not None and torch.equal(a.adapt.eps_chains, b.adapt.eps_chains)
        assert torch.equal(a.run.prev_proposals, b.run.prev_proposals)
    for e in (a, b):
        e.extend(loops=1)
        run(e)
    np.testing.assert_array_equal(posterior_array(a.snapshot()), posterior_array(b.snapshot()))


def test_checkpoint_without_energy_errors_still_loads_and_extends():
    def lp(x):
        return -0.5 * (x ** 2).sum(1)

    a = FlowMCEngine(lp, dim=2, **dict(SMALL, n_training_loops=2, n_loops=1))
    run(a)
    state = a.state_dict()
    for group in ("warmup", "posterior"):  # a run saved before energy errors were kept
        del state["draws"][group]["energy_error"]
    b = FlowMCEngine.from_config(a.config(), log_prob=lp)
    b.load_state_dict(state)
    b.extend(loops=1)
    run(b)
    stats = b.snapshot()["sample_stats"]
    n_old = a.snapshot()["sample_stats"].sizes["draw"]
    assert np.isnan(stats["energy_error"].values[:, :n_old]).all()  # unknown, not invented
    local_new = stats["kernel"].values[:, n_old:] == 0
    assert np.isfinite(stats["energy_error"].values[:, n_old:][local_new]).all()
    assert not stats["diverging"].values.any()


def test_until_stops_once_converged():
    eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, until="rhat<1.05 ess>500",
                       **{k: v for k, v in SMALL.items() if k != "n_loops"})
    m = run(eng)
    assert m["rhat"] < 1.05 and m["ess"] > 500
    assert eng.production_loops < 20  # converged long before the cap of 200 loops


def test_extend_after_the_target_ended_the_run_pays_exactly_the_extension():
    # kit.Budget's rule: a run ended by ``until`` before its cap continues from where it
    # ended, and the extension is paid in full (the target, still met, may not cut it short)
    eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, until="rhat<2", **dict(SMALL, n_loops=50))
    eng.schedule.DIAGNOSTICS_SHARE = 1e9  # R-hat after every loop, however slow the machine
    run(eng)
    ended = eng.production_loops
    assert ended < 50 and eng.run.budget.target_met(eng.metrics)  # R-hat < 2 holds after a loop or two
    eng.extend(loops=3)
    assert not eng.done() and eng.run.budget.total == ended + 3
    run(eng)
    assert eng.production_loops == ended + 3 and eng.progress() == 1.0


def test_settings_are_the_signature_and_the_config():
    import inspect

    from sciml_lab.flowmc import FlowMCSettings

    params = inspect.signature(FlowMCEngine).parameters
    assert set(FlowMCSettings.names()) <= set(params) and params["n_chains"].default == 128
    eng = FlowMCEngine(lambda p: -(p["a"] ** 2), params=["a"], n_chains=4, flow_hidden=[16], device="cpu")
    cfg = eng.config()
    assert cfg["flow_hidden"] == [16] and cfg["params"] == {"a": []} and cfg["dim"] is None
    assert cfg["init"] is None and "chunk" not in cfg  # the chunk size does not change results
    again = FlowMCEngine.from_config(cfg, log_prob=lambda p: -(p["a"] ** 2))
    assert again.settings == eng.settings
    with pytest.raises(ValueError, match=r"flow_hidden: expected an integer >= 1, got 0"):
        FlowMCEngine(lambda x: -x.sum(1), dim=1, flow_hidden=[64, 0], device="cpu")


def test_until_rejects_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric"):
        FlowMCEngine(lambda x: -x.sum(1), dim=1, until="loss<1", device="cpu")


def test_from_config_without_log_prob_is_a_type_error():
    eng = FlowMCEngine(lambda x: -(x ** 2).sum(1), dim=2, n_chains=4, device="cpu")
    with pytest.raises(TypeError, match="log_prob"):
        FlowMCEngine.from_config(eng.config())


# ----------------------------------------------------------------------------- results
def test_result_round_trips_through_netcdf_and_works_in_arviz(tmp_path):
    import arviz as az

    def log_prob(p):
        return -0.5 * (p["mu"] ** 2 + ((p["theta"] - 1) ** 2).sum(1)) - p["sigma"]

    eng = FlowMCEngine(log_prob, params={"mu": 1, "theta": 2, "sigma": 1}, bounds={"sigma": (0, None)},
                       **dict(SMALL, n_loops=2))
    run(eng)
    tree = eng.snapshot()
    assert {"posterior", "sample_stats", "warmup_posterior", "warmup_sample_stats", "diagnostics"} <= set(tree.children)
    assert tree["sample_stats"]["lp"].dims == ("chain", "draw")
    path = tmp_path / "result.nc"
    write_result(tree, path)
    back = read_result(path)
    xr.testing.assert_identical(back["posterior"].to_dataset(), tree["posterior"].to_dataset())
    xr.testing.assert_allclose(back["diagnostics"].to_dataset(), tree["diagnostics"].to_dataset())
    idata = az.from_datatree(back)
    table = az.summary(idata)
    assert {"mu", "theta[0]", "theta[1]", "sigma"} <= set(table.index)
    assert {"mean", "sd", "r_hat", "ess_bulk"} <= set(table.columns)


def test_sample_job_stop_keeps_partial_result_on_disk(tmp_path):
    job = sample(lambda x: -0.5 * (x ** 2).sum(1), dim=2, name="stopme", runs_dir=tmp_path,
                 **dict(SMALL, n_loops=100_000, n_chains=8))
    import time

    deadline = time.monotonic() + 30
    while job.step < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    job.stop()
    assert job.wait(30) == "stopped"
    on_disk = sciml_lab.load(tmp_path / "stopme")
    assert on_disk["diagnostics"].sizes["iteration"] >= 1
    assert (tmp_path / "stopme" / "checkpoint.pt").exists()


def test_sample_extend_then_reopen_and_resume(tmp_path):
    def lp(x):
        return -0.5 * (x ** 2).sum(1)

    job = sample(lp, dim=2, name="resume", runs_dir=tmp_path, **dict(SMALL, n_loops=2))
    assert job.wait(120) == "done"
    draws = job.result["posterior"].sizes["draw"]
    job.extend(loops=1)
    assert job.wait(120) == "done"
    assert job.result["posterior"].sizes["draw"] == draws * 3 // 2

    # a copy of the run folder, as a later kernel would find it
    shutil.copytree(tmp_path / "resume", tmp_path / "copy" / "resume")
    without_log_prob = sciml_lab.open(tmp_path / "copy" / "resume")
    assert not without_log_prob.resumable and "log_prob" in without_log_prob.record["not_resumable"]
    shutil.copytree(tmp_path / "resume", tmp_path / "copy2" / "resume")
    reopened = sciml_lab.open(tmp_path / "copy2" / "resume", log_prob=lp)
    assert reopened.resumable
    reopened.extend(loops=1)
    assert reopened.wait(120) == "done"
    assert reopened.result["posterior"].sizes["draw"] == draws * 2


def test_one_step_stays_short_with_many_chains():
    eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=4096, n_local_steps=30, device="cpu")
    eng.step()
    # 32768 chain-evaluations per call: 8 of the 30 local steps, the rest in later calls
    assert eng.run.phase == "local" and eng.run.phase_steps == FlowMCEngine.CHAIN_EVALS_PER_CALL // 4096

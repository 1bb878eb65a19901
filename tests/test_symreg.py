"""Symbolic regression engine: recovery, exports, the front, budgets, checkpoints, bad input."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
import sympy
import torch
import xarray as xr

from sciml_lab.symreg import SymRegEngine, bootstrap_constants, equation, fit, is_exact_recovery, select
from sciml_lab.symreg.constants import fit_constants
from sciml_lab.symreg.engine import SEARCH_ROWS
from sciml_lab.symreg.expression import Equation, Vocabulary, evaluate, pack, parse_ops
from sciml_lab.symreg.variation import Constraints, crossover, fold_constants, mutate, random_program

torch.set_num_threads(1)


def uniform(n=200, d=2, low=1.0, high=3.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, (n, d))


def run(engine):
    while not engine.done():
        engine.step()
    return engine


# (truth, law, operators, k, n): the search must recover the law exactly in at least k of the
# seeds 0 .. n-1 (tried in turn until k succeed). Measured over seeds 0-19 at 150 iterations:
# 2.5*x0*x1 20/20 (11-15 iterations), x0**2/x1 20/20 (11-30), sin(x0) + 0.5*x1 14/20 (the other
# six grow bloated approximations). With a per-seed rate p, k of n fails by chance with probability
# P(Binomial(n, p) < k): 2 of 3 at p = 0.95 is 0.7 %, 1 of 5 at p = 0.7 is 0.24 %; a search that
# fell to p = 0.3 on the third law would fail this test 17 % of the time and the benchmark always.
LAWS = [
    ("2.5*x0*x1", lambda X: 2.5 * X[:, 0] * X[:, 1], "+ - * /", 2, 3),
    ("x0**2/x1", lambda X: X[:, 0] ** 2 / X[:, 1], "+ - * /", 2, 3),
    ("sin(x0) + 0.5*x1", lambda X: np.sin(X[:, 0]) + 0.5 * X[:, 1], "+ - * / sin cos exp log", 1, 5),
]


@pytest.mark.parametrize("truth, law, ops, k, n", LAWS, ids=[t for t, *_ in LAWS])
def test_recovers_the_law_exactly_in_k_of_n_seeds(truth, law, ops, k, n):
    X = uniform()
    found, recovered = [], 0
    for seed in range(n):
        e = run(SymRegEngine(X, law(X), ops=ops, iterations=150, seed=seed, device="cpu"))
        found.append(str(e.best().sympy()))
        if is_exact_recovery(e.best().sympy(), truth, ["x0", "x1"]):
            recovered += 1
            assert e.target_reached()  # it stopped on the exact-fit target, not on the iteration budget
        if recovered == k or recovered + n - 1 - seed < k:
            break
    assert recovered >= k, f"recovered in {recovered} of {len(found)} seeds (need {k} of {n}): {found}"


def random_population(vocab, n, seed):
    rng = np.random.default_rng(seed)
    progs = [fold_constants(random_program(rng, vocab, max_depth=4), vocab) for _ in range(n)]
    for _ in range(2):  # mutated and crossed programs exercise every splice path
        progs = [mutate(p, rng, vocab) for p in progs]
        progs = [c for a, b in zip(progs[::2], progs[1::2]) for c in crossover(a, b, rng, vocab)]
    return progs


def test_exports_agree_with_the_batched_evaluator_on_random_inputs():
    vocab = Vocabulary(["x0", "x1", "x2"], *parse_ops("+ - * / ^ sin cos exp log sqrt abs tanh"))
    progs = random_population(vocab, 300, seed=3)
    X = np.random.default_rng(4).uniform(0.2, 2.0, (64, 3))
    tok, const = pack(progs, device="cpu")
    batched = evaluate(tok, const, torch.as_tensor(X), vocab).numpy()
    symbols = [sympy.Symbol(n, real=True) for n in vocab.variables]
    checked = 0
    for p, row in zip(progs, batched):
        eq = Equation(*p, vocab)
        ok = np.isfinite(row)
        np.testing.assert_allclose(eq.numpy()(X)[ok], row[ok], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(eq.torch()(torch.as_tensor(X)).numpy()[ok], row[ok], rtol=1e-12, atol=1e-12)
        if ok.all() and np.abs(row).max() < 1e6:
            f = sympy.lambdify(symbols, eq.sympy(), modules="numpy")
            np.testing.assert_allclose(np.broadcast_to(f(*X.T), row.shape), row, rtol=1e-8, atol=1e-8)
            assert eq.latex()
            checked += 1
    assert checked > 100


def test_invalid_expressions_score_infinite_and_never_crash():
    vocab = Vocabulary(["x"], *parse_ops("+ - * / log sqrt exp"))
    x = torch.linspace(-1, 1, 11, dtype=torch.float64)[:, None]
    t = vocab.token
    progs = [([t("x"), t("log")], [0, 0]),                              # log of negatives: NaN
             ([t("x"), t("x"), t("-"), t("c"), t("/")], [0, 0, 0, 0, 0]),  # 0 / 0
             ([t("c"), t("exp"), t("exp")], [800.0, 0, 0]),            # overflow
             ([t("x")], [0.0])]
    tok, const = pack(progs)
    from sciml_lab.symreg.constants import weighted_mse

    loss = weighted_mse(evaluate(tok, const, x, vocab), x[:, 0], None)
    assert loss[:3].tolist() == [math.inf] * 3 and loss[3] == 0
    # a whole search over operators that mostly blow up on this data still runs and finds a valid front
    X = uniform(100, 1, low=-20, high=20, seed=2)
    e = run(SymRegEngine(X, np.exp(X[:, 0] / 10), ops="+ - * / log sqrt exp", iterations=5, seed=0, device="cpu"))
    assert all(math.isfinite(l) for _, _, l in e.front_programs())


def test_pareto_front_is_truly_non_dominated():
    X = uniform(150, 2, seed=5)
    y = X[:, 0] ** 3 - np.cos(X[:, 1]) * X[:, 0] + np.random.default_rng(0).normal(0, 0.05, 150)
    e = run(SymRegEngine(X, y, iterations=12, seed=2, device="cpu"))
    front = e.front_programs()
    comp = [len(t) for t, _, _ in front]
    loss = [l for _, _, l in front]
    assert comp == sorted(comp) and all(a > b for a, b in zip(loss, loss[1:]))
    for t, _, l in e.hof.values():  # no expression seen dominates a front member
        assert not any(len(t) <= c and l < fl for c, fl in zip(comp, loss) if (len(t), l) != (c, fl))
    pareto = e.snapshot()["pareto"]
    assert pareto["complexity"].values.tolist() == comp
    assert int(pareto["selected"].sum()) == 1


def test_model_selection_follows_pysr():
    comp, loss = [1, 3, 5, 7], [10.0, 1.0, 1e-3, 9e-4]
    assert select(comp, loss, "accuracy") == 3
    assert select(comp, loss, "score") == 2
    assert select(comp, loss, "best") == 2  # 9e-4 is within 1.5x of 1e-3; the larger drop per unit wins
    assert select([1, 3], [1.0, 0.9], "best") == 1
    with pytest.raises(ValueError, match="selection"):
        select(comp, loss, "fastest")


def test_constant_fitting_is_batched_levenberg_marquardt():
    vocab = Vocabulary(["x"], *parse_ops("+ * exp"))
    t = vocab.token
    x = torch.linspace(0, 1, 40, dtype=torch.float64)[:, None]
    y = 1.7 * torch.exp(-0.8 * x[:, 0]) + 0.3
    # c0 * exp(c1 * x) + c2, and a second row without constants
    tok, const = pack([([t("c"), t("c"), t("x"), t("*"), t("exp"), t("*"), t("c"), t("+")],
                        [1.0, -0.1, 0, 0, 0, 0, 0.0, 0]), ([t("x")], [0.0])])
    c, loss, evals = fit_constants(tok, const, x, y, None, vocab, iterations=30)
    np.testing.assert_allclose(c[0, [0, 1, 6]].numpy(), [1.7, -0.8, 0.3], rtol=1e-6)
    assert loss[0] < 1e-20 and evals > 2


def test_checkpoint_round_trip_continues_exactly_like_an_uninterrupted_run():
    X = uniform(120, 2, seed=7)
    y = X[:, 0] * np.exp(-X[:, 1]) + 0.1 * X[:, 1] ** 2
    kw = dict(iterations=6, seed=3, device="cpu", stop_loss=None)
    straight = run(SymRegEngine(X, y, **kw))
    first = SymRegEngine(X, y, **{**kw, "iterations": 3})
    run(first)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    resumed = SymRegEngine.from_config(first.config(), X=X, y=y)
    resumed.load_state_dict(state)
    resumed.extend(iterations=3)
    run(resumed)
    assert resumed.iteration == straight.iteration == 6
    assert [(t, c, l) for t, c, l in resumed.front_programs()] == [(t, c, l) for t, c, l in straight.front_programs()]


def test_a_checkpoint_of_the_first_layout_resumes_exactly():
    """Checkpoints written before the state was a dataclass (a flat hall of fame, ``iteration``
    and ``budget`` counters, ``target_waived``, -1 for no deadline, the history as a bare
    tensor) and their configs still reopen and continue like an uninterrupted run."""
    X = uniform(120, 2, seed=7)
    y = X[:, 0] * np.exp(-X[:, 1]) + 0.1 * X[:, 1] ** 2
    kw = dict(iterations=6, seed=3, device="cpu", stop_loss=None)
    straight = run(SymRegEngine(X, y, **kw))
    first = run(SymRegEngine(X, y, **{**kw, "iterations": 3}))
    st = first.state_dict()
    old = {"version": 1, "vocabulary": st["vocabulary"], "rng": st["rng"], "islands": st["islands"],
           "hof_tokens": st["hof"]["tokens"], "hof_constants": st["hof"]["constants"], "hof_loss": st["hof"]["loss"],
           "iteration": 3, "budget": 3, "wall": st["wall"], "evals": st["evals"], "birth": st["birth"],
           "deadline": -1.0, "target_waived": False, "target_since": [], "history": st["history"]["rows"]}
    old_config = {k: v for k, v in first.config().items()
                  if k not in ("until", "search_rows", "score_rows_per_step", "dtype")}
    resumed = SymRegEngine.from_config(old_config, X=X, y=y)
    resumed.load_state_dict(old)
    assert resumed.iteration == 3 and resumed.search_done() and len(resumed.history) == 3
    resumed.extend(iterations=3)
    run(resumed)
    assert resumed.front_programs() == straight.front_programs() and resumed.history.rows()[-1]["best_loss"] \
        == straight.history.rows()[-1]["best_loss"]


def test_until_ends_the_search_and_an_extension_is_then_paid_in_full():
    # measured, seeds 0-9: r2 > 0.99 (the selected equation) after 1-5 iterations of the 200
    rng = np.random.default_rng(1)
    X = uniform(150, 2, seed=11)
    y = 2.5 * X[:, 0] * X[:, 1] * (1 + 0.01 * rng.normal(size=150))
    e = run(SymRegEngine(X, y, ops="+ - * /", until="r2>0.99", iterations=200, seed=0, device="cpu"))
    assert e.iteration < 200 and e.metrics["r2"] > 0.99  # the target, not the budget, ended it
    assert e.verdict().status == "converged"
    ended = e.iteration
    e.extend(iterations=5)
    assert not e.search_done()
    run(e)
    assert e.iteration == ended + 5  # the target held all along, and the extension was paid in full
    with pytest.raises(ValueError, match="until: unknown metric 'rhat'; expected one of loss, r2"):
        SymRegEngine(X, y, until="rhat<1.01", device="cpu")


def test_an_exact_fit_ends_the_search_and_an_extension_after_it_runs_in_full():
    X = uniform()
    e = run(SymRegEngine(X, X[:, 0] ** 2 / X[:, 1], ops="+ - * /", iterations=100, patience=3, seed=0, device="cpu"))
    assert e.target_reached() and e.iteration < 100
    ended = e.iteration
    e.extend(iterations=4)  # the kit's rule: 4 more from where it ended (not the 100 - ended left unspent)
    assert not e.target_reached()
    run(e)
    assert e.iteration == ended + 4 and e.target_reached()


def test_extend_keeps_improving_from_the_same_populations():
    X = uniform(150, 2, seed=8)
    y = np.exp(-X[:, 0]) * np.sin(2 * X[:, 1]) + X[:, 0] / X[:, 1]
    e = run(SymRegEngine(X, y, iterations=4, seed=0, device="cpu"))
    before, islands = e.best_loss(), [id(i) for i in e.islands]
    e.extend(iterations=25)
    assert not e.done()
    run(e)
    assert e.iteration == 29 and [id(i) for i in e.islands] == islands
    assert e.best_loss() < before
    h = e.snapshot()["history"]["best_loss"].values
    assert (np.diff(h) <= 0).all() and h.size == 29


def test_time_budget_stops_the_search_at_the_first_step_past_it():
    X = uniform(100, 2)
    e = run(SymRegEngine(X, np.sin(X[:, 0] * X[:, 1]) + X[:, 0] ** 3, iterations=10_000, time_limit=0.5,
                         stop_loss=None, device="cpu"))
    walls = e.history.column("wall_time").tolist()  # the search's own clock after each step
    # it stops at the first step boundary past the limit, however fast the machine is
    assert walls[-1] >= 0.5 and (len(walls) == 1 or walls[-2] < 0.5)
    assert e.iteration == len(walls) < 10_000 and e.progress() == 1.0


def test_a_time_limit_without_iterations_makes_the_time_the_budget(ipython_shell, tmp_path):
    X = uniform(40, 2)
    assert SymRegEngine(X, X[:, 0], device="cpu").budget.total == 200
    assert SymRegEngine(X, X[:, 0], time_limit=60, device="cpu").budget.total == 100_000
    assert SymRegEngine(X, X[:, 0], time_limit=60, iterations=7, device="cpu").budget.total == 7
    # the magic and the Python API follow the same rule
    ipython_shell.user_ns["Xt"], ipython_shell.user_ns["yt"] = X, X[:, 0]
    ipython_shell.run_line_magic("sciml", f"symreg Xt yt --time 60 --device cpu --no-monitor --name timed "
                                          f"--runs-dir {tmp_path}")
    job = ipython_shell.user_ns["timed"]
    job.stop()
    assert job.wait(60) == "stopped" and job.engine.budget.total == 100_000
    twin = fit(X, X[:, 0], time_limit=60, device="cpu", store=False)
    twin.stop()
    assert twin.wait(60) == "stopped" and twin.engine.budget.total == 100_000
    assert twin.engine.config() == job.engine.config()  # every setting the same, not only the budget


def test_constraints_on_size_depth_and_nesting_hold_in_every_member():
    X = uniform(80, 2)
    e = run(SymRegEngine(X, np.sin(np.cos(X[:, 0])) + X[:, 1], ops="+ * sin cos", maxsize=9, maxdepth=4,
                         iterations=6, device="cpu"))
    c = Constraints(e.vocab, 9, 4, {"sin": ["sin", "cos"], "cos": ["sin", "cos"]})
    assert all(c.ok(p[0]) for isl in e.islands for p in isl["programs"])
    assert all(len(t) <= 9 for t, _, _ in e.front_programs())


def test_weights_and_custom_operators():
    X = uniform(100, 1)
    y = X[:, 0] ** 3 + 2.0
    y[:5] += 100.0  # outliers with zero weight must not matter
    w = np.ones(100)
    w[:5] = 0.0
    cube = (1, lambda a: a * a * a, lambda a: a ** 3)
    e = run(SymRegEngine(X, y, weights=w, ops="+ *", custom_ops={"cube": cube}, iterations=60, seed=0, device="cpu"))
    assert is_exact_recovery(e.best().sympy(), "x0**3 + 2", ["x0"])
    assert "cube" in e.vocab.names


def test_fit_returns_a_job_whose_result_carries_names_units_and_the_front(runs):
    x = np.linspace(1, 4, 60)
    ds = xr.Dataset({"r": ("obs", x, {"units": "m"}), "F": ("obs", 3.0 / x ** 2, {"units": "N"})})
    job = fit(ds, target="F", ops="+ - * /", iterations=40, seed=0, device="cpu", name="gravity")
    assert job.wait(120) == "done"
    tree = job.result
    assert {"pareto", "history", "data"} <= set(tree.children)
    assert tree.attrs["target"] == "F" and '"r": "m"' in tree.attrs["units"]
    assert tree["data"]["F"].attrs["units"] == "N"
    assert is_exact_recovery(equation(tree), "3/r**2", ["r"])
    assert (runs / "gravity" / "result.nc").exists()
    boot = bootstrap_constants(tree, n_boot=20)
    assert boot.sizes["constant"] == 1 and abs(float(boot.estimate[0]) - 3.0) < 1e-6


@pytest.mark.parametrize("make, message", [
    (lambda X, y: (np.where(np.arange(40)[:, None] == 3, np.nan, X), y), "X: expected finite"),
    (lambda X, y: (X, np.where(np.arange(40) == 0, np.inf, y)), "y: expected finite"),
    (lambda X, y: (X, y[:30]), "same number of samples"),
    (lambda X, y: (X, np.full(40, 2.0)), "constant"),
    (lambda X, y: (X[:2], y[:2]), "too few samples: expected at least 3, got 2"),
], ids=["nan-X", "inf-y", "lengths", "constant-y", "few-samples"])
def test_bad_data_gets_a_specific_error(make, message):
    X = uniform(40, 2)
    with pytest.raises(ValueError, match=message):
        SymRegEngine(*make(X, X[:, 0]), device="cpu")


def test_bad_settings_name_the_argument():
    X = uniform(40, 2)
    with pytest.raises(ValueError, match="ops: unknown operator 'sinh'"):
        SymRegEngine(X, X[:, 0], ops="+ sinh", device="cpu")
    with pytest.raises(ValueError, match="maxsize"):
        SymRegEngine(X, X[:, 0], maxsize=1, device="cpu")
    with pytest.raises(ValueError, match="selection"):
        SymRegEngine(X, X[:, 0], selection="fast", device="cpu")
    with pytest.raises(ValueError, match="target: expected a column"):
        SymRegEngine(pd.DataFrame({"a": X[:, 0], "b": X[:, 1]}), target="y", device="cpu")
    with pytest.raises(ValueError, match="extend|iterations"):
        SymRegEngine(X, X[:, 0], device="cpu").extend(iterations=0)


def test_large_evaluations_are_chunked_without_changing_the_result(monkeypatch):
    import sciml_lab.symreg.evaluation as evaluation

    vocab = Vocabulary(["x0", "x1"], *parse_ops("+ - * / sin exp"))
    tok, const = pack(random_population(vocab, 64, seed=9), device="cpu")
    X = torch.as_tensor(uniform(300, 2, seed=1))
    whole = evaluate(tok, const, X, vocab)
    monkeypatch.setattr(evaluation, "MAX_STACK_ELEMENTS", 5000)  # forces chunks of a few expressions
    chunked = evaluate(tok, const, X, vocab)
    assert torch.equal(torch.nan_to_num(whole, 1.0, 2.0, 3.0), torch.nan_to_num(chunked, 1.0, 2.0, 3.0))


def selected_constants(tree):
    """(value, lower, upper) of each fitted constant of the selected equation of a result."""
    i = int(np.argmax(tree["pareto"]["selected"].values))
    c = tree["constants"].isel(complexity=i)
    return [(float(v), float(lo), float(hi)) for v, lo, hi in zip(c.value.values, c.lower.values, c.upper.values)
            if np.isfinite(v)]


def test_steps_do_bounded_work_on_a_million_rows_and_the_front_is_scored_on_all_rows():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (10 ** 6, 3))
    y = X[:, 0] * X[:, 1] / X[:, 2] + rng.normal(0, 0.1, 10 ** 6)
    kw = dict(ops="+ - * /", iterations=3, n_islands=2, population_size=32, device="cpu")
    e = SymRegEngine(X, y, **kw)
    bound = e.max_row_evaluations_per_step()
    # the bound does not grow with the rows, and is below one evaluation of the initial populations
    # on all rows (what the first step did before the search used a subsample)
    assert bound == SymRegEngine(X[:10_000], y[:10_000], **kw).max_row_evaluations_per_step()
    assert bound < 10 ** 6 * e.n_islands * e.population_size
    per_step = []
    while not e.done():
        e.step()
        per_step.append(e.step_row_evaluations)
    assert max(per_step) <= bound
    assert e.iteration == 3 and len(per_step) > 3  # scoring the front on all rows took further steps
    tree = e.snapshot()
    sel = int(np.argmax(tree["pareto"]["selected"].values))
    assert tree.attrs["scored_on_all_rows"] and tree.attrs["search_rows"] == e.search_rows < 10 ** 6
    assert (tree["pareto"]["loss_rows"].values == 10 ** 6).all()
    full = float(np.mean((e.best().numpy()(X) - y) ** 2))
    assert float(tree["pareto"]["loss"][sel]) == pytest.approx(full, rel=1e-9)
    t, c, search_loss = e.front_programs()[e.selected_index()]
    assert float(tree["pareto"]["loss"][sel]) != search_loss  # not the loss on the search rows


def test_a_search_on_a_million_rows_stops_at_the_next_step():
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 3, (10 ** 6, 3))
    job = fit(X, X[:, 0] * X[:, 1] / X[:, 2] + 0.5 * X[:, 0], iterations=100_000, device="cpu", store=False)
    for _ in range(1200):  # until the first step is done
        if job.step >= 1 or job.status != "running":
            break
        job.wait(0.1)
    s0 = job.step
    job.stop()
    assert job.wait(120) == "stopped"
    assert s0 >= 1 and job.step <= s0 + 2  # a step in flight finishes, no more
    warnings = json.loads(job.result.attrs["warnings"])
    assert any(f"subsample of {SEARCH_ROWS} of 1000000 rows" in w for w in warnings), warnings


KEPLER_A = np.array([0.387, 0.723, 1.0, 1.524, 5.203, 9.537, 19.19, 30.07])  # AU
KEPLER_T = np.array([0.241, 0.615, 1.0, 1.881, 11.86, 29.46, 84.01, 164.8])  # years


def test_keplers_third_law_from_the_eight_planets_with_an_interval_and_a_warning():
    # measured: seeds 0-9 (iterations=20, 1-2 s each) all select a**1.49983, 95% interval [1.49980, 1.49986]
    # (the planets' rounded data, not exactly 3/2); 2 of 3 seeds asked here
    a = sympy.Symbol("a", real=True)
    found = 0
    for seed in range(3):
        e = run(SymRegEngine(KEPLER_A, KEPLER_T, features=["a"], target="T", ops="+ - * / ^", iterations=20,
                             seed=seed, device="cpu"))
        tree = e.snapshot()
        warnings = json.loads(tree.attrs["warnings"])
        assert warnings == e.warnings() and warnings[0].startswith("only 8 rows of data: the selected equation")
        expr, consts = equation(tree), selected_constants(tree)
        if expr.is_Pow and expr.base == a and len(consts) == 1:
            value, lower, upper = consts[0]
            found += 1.49 < value < 1.51 and lower < value < upper and upper - lower < 0.01
    assert found >= 2


def test_three_rows_are_enough_with_a_warning_and_few_constants():
    x = np.array([1.0, 2.0, 3.5])
    e = run(SymRegEngine(x, 2.0 * x ** 2, ops="+ - * /", iterations=5, device="cpu"))
    warnings = e.warnings()
    assert warnings and warnings[0].startswith("only 3 rows of data")
    assert len(selected_constants(e.snapshot())) <= 1  # 3 rows cannot support more


def test_ideal_gas_with_noise_finds_nT_over_V_with_an_honest_interval_or_warns():
    # measured, seeds 0-9 at iterations=40: 6 select c*n*T/V with an interval holding R (seeds 0, 3, 4, 5,
    # 7, 8), 4 select a longer equation and warn that named constants are not identified (1, 2, 6, 9), 0 are
    # silent; seeds 0 and 1 here exercise both outcomes. Either is acceptable, silence is not.
    R = 8.314
    for seed in range(2):
        rng = np.random.default_rng(seed)
        n, T, V = rng.uniform(1, 5, 200), rng.uniform(250, 400, 200), rng.uniform(0.01, 0.1, 200)
        P = n * R * T / V * (1 + 0.01 * rng.normal(size=200))
        e = run(SymRegEngine(np.stack([n, T, V], 1), P, features=["n", "T", "V"], target="P", iterations=40,
                             seed=seed, device="cpu"))
        tree = e.snapshot()
        warnings = json.loads(tree.attrs["warnings"])
        consts = selected_constants(tree)
        syms = sympy.symbols("n T V", real=True)
        ratio = sympy.simplify(equation(tree) / (syms[0] * syms[1] / syms[2]))
        if not ratio.free_symbols:
            (value, lower, upper), = consts
            assert lower <= R <= upper or lower <= 1 / R <= upper, consts  # the interval holds the truth
        else:
            # any other equation: each constant it cannot pin down is named in a warning
            for value, lower, upper in consts:
                if (upper - lower) / 2 > abs(value):
                    assert any(f"constant {value:.6g} of the selected equation" in w for w in warnings), warnings


def scored_as_found(e, text, X, y):
    """The engine with ``text`` as its only front member (as a search found it), scored on all rows."""
    from sciml_lab.symreg.expression import from_sympy
    from sciml_lab.symreg.grammar import parse_equation

    tok, const = from_sympy(parse_equation(text, e.vocab.variables), e.vocab)
    pred = Equation(tok, const, e.vocab).numpy()(X)
    e.hof = {len(tok): (tok, const, float(np.mean((pred - y) ** 2)))}
    e.iteration = e.budget.total  # the search is over: steps now only score the front on all rows
    return run(e)


def test_the_ideal_gas_equation_of_the_report_warns_that_its_constants_are_unidentified():
    rng = np.random.default_rng(0)
    n, T, V = rng.uniform(1, 5, 200), rng.uniform(250, 400, 200), rng.uniform(0.01, 0.1, 200)
    P = n * 8.314 * T / V * (1 + 0.01 * rng.normal(size=200))
    X = np.stack([n, T, V], 1)
    e = SymRegEngine(X, P, features=["n", "T", "V"], target="P", ops="+ - * /", iterations=1, device="cpu")
    tree = scored_as_found(e, "162815617.79*n/(0.3252 + 19530944.84*V/T) - 546.3", X, P).snapshot()
    warnings = json.loads(tree.attrs["warnings"])
    # 0.3252 is zero within its interval and dropping it does not worsen the fit; without it only the
    # ratio of the two large constants is determined (8.336, shown), each alone is not
    assert tree.attrs["selected_display"] == "8.336*T*n/V - 546.3"
    for c in ("1.62816e+08", "1.95309e+07", "546.3"):
        assert sum(w.startswith(f"constant {c} of the selected equation") and "not identified" in w
                   for w in warnings) == 1, warnings
    assert len(warnings) == 3


def test_a_recovered_coulomb_law_displays_compactly():
    rng = np.random.default_rng(0)
    X = rng.uniform([1, 1, 0.5], [5, 5, 3], (200, 3))
    F = X[:, 0] * X[:, 1] / (4 * np.pi * X[:, 2] ** 2)
    e = SymRegEngine(X, F, features=["q1", "q2", "r"], ops="+ - * /", iterations=1, device="cpu")
    k = 1 / (4 * np.pi)
    # the form a search returned, with its constants in full
    tree = scored_as_found(e, f"({k!r}*q1 - ({k!r}*q1*(-q2 + r) - 8.4e-18)/(r + 4.4e-17))/r", X, F).snapshot()
    assert tree.attrs["selected_display"] == "0.0795775*q1*q2/r**2"
    assert tree.attrs["selected_latex"] == r"\frac{0.0795775 q_{1} q_{2}}{r^{2}}"
    assert json.loads(tree.attrs["warnings"]) == []
    # the machine-readable equation keeps every constant in full
    assert "8.4e-18" in tree.attrs["selected_equation"]
    # found as q1*q2/(4*pi*r*r): the reciprocal is rounded after simplification (1/12.5664 would show 0.0795773)
    t = e.vocab.token
    tok = [t("q1"), t("q2"), t("*"), t("c"), t("r"), t("*"), t("r"), t("*"), t("/")]
    const = [0, 0, 0, 4 * np.pi, 0, 0, 0, 0, 0]
    e = SymRegEngine(X, F, features=["q1", "q2", "r"], ops="+ - * /", iterations=1, device="cpu")
    e.hof = {len(tok): (tok, const, float(np.mean((Equation(tok, const, e.vocab).numpy()(X) - F) ** 2)))}
    e.iteration = e.budget.total
    assert run(e).snapshot().attrs["selected_display"] == "0.0795775*q1*q2/r**2"


def test_constant_intervals_cover_the_truth_under_relative_noise():
    """P = c*n*T/V with 1 % relative noise (larger where P is larger): the interval of c must hold
    R in about 95 % of data sets. Measured over data sets 0-99: 0.95 (0.955 over 0-199); the
    classical s²(JᵀJ)⁻¹ interval alone covered 0.575 (0-199), so the bound below can fail."""
    from sciml_lab.symreg.identify import FullScore

    vocab = Vocabulary(["n", "T", "V"], *parse_ops("+ - * /"))
    t = vocab.token
    hits = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        n, T, V = rng.uniform(1, 5, 200), rng.uniform(250, 400, 200), rng.uniform(0.01, 0.1, 200)
        P = n * 8.314 * T / V * (1 + 0.01 * rng.normal(size=200))
        x = n * T / V
        score = FullScore([t("c"), t("n"), t("*"), t("T"), t("*"), t("V"), t("/")], [float(x @ P / (x @ x))] + [0] * 6)
        while not score.done(200):
            score.advance(torch.as_tensor(np.stack([n, T, V], 1)), torch.as_tensor(P), None, vocab, 1000)
        ci = score.intervals(200)[0]
        hits += ci.lower <= 8.314 <= ci.upper
    assert hits >= 88

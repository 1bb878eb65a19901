"""Symbolic regression engine: recovery, exports, the front, budgets, checkpoints, bad input."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
import sympy
import torch
import xarray as xr

from sciml_lab.symreg import SymRegEngine, bootstrap_constants, equation, fit, is_exact_recovery, select
from sciml_lab.symreg.constants import fit_constants
from sciml_lab.symreg.expression import Equation, Vocabulary, evaluate, pack, parse_ops
from sciml_lab.symreg.variation import Constraints, crossover, fold_constants, mutate, random_program

torch.set_num_threads(1)


def uniform(n=200, d=2, low=1.0, high=3.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, (n, d))


def run(engine):
    while not engine.done():
        engine.step()
    return engine


LAWS = [
    ("2.5*x0*x1", lambda X: 2.5 * X[:, 0] * X[:, 1], "+ - * /"),
    ("x0**2/x1", lambda X: X[:, 0] ** 2 / X[:, 1], "+ - * /"),
    ("sin(x0) + 0.5*x1", lambda X: np.sin(X[:, 0]) + 0.5 * X[:, 1], "+ - * / sin cos exp log"),
]


@pytest.mark.parametrize("truth, law, ops", LAWS, ids=[t for t, _, _ in LAWS])
def test_recovers_the_law_exactly_within_seconds(truth, law, ops):
    X = uniform()
    e = run(SymRegEngine(X, law(X), ops=ops, iterations=150, seed=1, device="cpu"))
    found = e.best().sympy()
    assert is_exact_recovery(found, truth, ["x0", "x1"]), (str(found), [str(q) for q in e.front()])
    assert e.target_reached()  # it stopped on the exact-fit target, not on the iteration budget
    assert e.wall < 20  # a few seconds alone on one core; generous for a shared CI machine


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


def test_time_budget_stops_the_search():
    X = uniform(100, 2)
    e = run(SymRegEngine(X, np.sin(X[:, 0] * X[:, 1]) + X[:, 0] ** 3, iterations=10_000, time_limit=0.5,
                         stop_loss=None, device="cpu"))
    assert 0.5 <= e.wall < 2.0 and e.iteration < 10_000 and e.progress() == 1.0


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
    import sciml_lab.symreg.expression as expression

    vocab = Vocabulary(["x0", "x1"], *parse_ops("+ - * / sin exp"))
    tok, const = pack(random_population(vocab, 64, seed=9), device="cpu")
    X = torch.as_tensor(uniform(300, 2, seed=1))
    whole = evaluate(tok, const, X, vocab)
    monkeypatch.setattr(expression, "MAX_STACK_ELEMENTS", 5000)  # forces chunks of a few expressions
    chunked = evaluate(tok, const, X, vocab)
    assert torch.equal(torch.nan_to_num(whole, 1.0, 2.0, 3.0), torch.nan_to_num(chunked, 1.0, 2.0, 3.0))

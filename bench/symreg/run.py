"""Symbolic regression benchmark: sciml_lab.symreg vs Operon (pyoperon) vs gplearn, side by side.

Every fit gets the same wall-clock budget on one thread and the same operators (``+ - * / sqrt log exp sin
cos``). Fits are interleaved problem by problem (for each problem, seed and noise level: every method in
turn), so that a busy machine slows all methods alike. Each fit is appended to the CSV as soon as it ends (a
run that stops keeps what it measured; ``--resume`` skips the fits already there). Printed per part
(dev/heldout), noise level and method: exact-recovery rate (SRBench rule: the difference or ratio with the
truth simplifies to a constant after rounding constants to 6 digits), the share of fits with test R² > 0.999,
median test R² and median complexity (nodes of the sympy expression, the same measure for all methods).

    python bench/symreg/run.py --set feynman --part heldout --seeds 0 1 2 --budget 12   # the full held-out table
    python bench/symreg/run.py --set feynman --part dev --sample 20 --budget 4         # a dev sample
    python bench/symreg/run.py --summarize bench/symreg/feynman-heldout.csv          # tables of a CSV
    python bench/symreg/run.py --set classic                                          # the earlier 27 problems

Baselines are bench-only extras (``pip install -e .[bench]``). Their settings: Operon, its defaults with
``population_size=1000``, ``max_time=budget``, ``n_threads=1`` and no generation or evaluation cap (the time
is the budget); gplearn, its defaults (population 1000, tournament 20, parsimony 0.001) run one generation at
a time (``warm_start``) until the budget is spent, with a protected ``exp`` added to its function set.
Equations returned by the baselines are read by the equation grammar, never evaluated as code.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import sympy  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from feynman import DEV, HELDOUT, part  # noqa: E402
from problems import PROBLEMS, Problem, make_data  # noqa: E402

from sciml_lab.symreg import SymRegEngine, is_exact_recovery, parse_equation  # noqa: E402

torch.set_num_threads(1)
#: the one operator set of every method
OPS = "+ - * / sin cos exp log sqrt"
FIELDS = ["problem", "part", "seed", "noise", "method", "recovered", "r2", "complexity", "evals_per_s", "wall",
          "budget", "model"]


def size(expr) -> int:
    return sum(1 for _ in sympy.preorder_traversal(expr))


def r2(y, yhat) -> float:
    yhat = np.asarray(yhat, dtype=float) * np.ones(len(y))
    if not np.isfinite(yhat).all():
        return float("-inf")
    return float(1 - np.sum((y - yhat) ** 2) / np.sum((y - y.mean()) ** 2))


def run_sciml(names, X, y, Xt, budget: float, seed: int):
    e = SymRegEngine(X, y, features=names, ops=OPS, iterations=10**7, time_limit=budget, seed=seed,
                     device="cpu", threads=1)
    t0 = time.perf_counter()
    while not e.done():
        e.step()
    wall = time.perf_counter() - t0
    eq = e.best()
    return eq.sympy(), eq.numpy()(Xt), e.evals / max(e.wall, 1e-9), wall


def _fit_operon(reg, names, X, y, Xt):
    """Fit a pyoperon regressor; its model is read by the equation grammar (never evaluated)."""
    t0 = time.perf_counter()
    reg.fit(X, y)
    wall = time.perf_counter() - t0
    expr = parse_equation(reg.get_model_string(reg.model_, 12, names), names, what="operon model")
    return expr, reg.predict(Xt), reg.stats_["evaluation_count"] / wall, wall


def run_operon(names, X, y, Xt, budget: float, seed: int):
    from pyoperon.sklearn import SymbolicRegressor

    reg = SymbolicRegressor(allowed_symbols="add,sub,mul,div,constant,variable,sin,cos,exp,log,sqrt",
                            population_size=1000, max_time=max(1, int(round(budget))), generations=10**7,
                            max_evaluations=10**12, n_threads=1, random_state=seed)
    return _fit_operon(reg, names, X, y, Xt)


def run_operon_doc(names, X, y, Xt, budget: float, seed: int):
    """Operon as its scikit-learn example configures it (pyoperon's ``example/operon-sklearn.py``):
    two objectives (R² and length, NSGA-II), 10 Levenberg-Marquardt iterations on the constants of
    every child, ``epsilon=1e-3``, ``max_length=50``; its default model selection (minimum description
    length) picks the model of the final front. Same operators, time budget and thread as the others."""
    from pyoperon.sklearn import SymbolicRegressor

    reg = SymbolicRegressor(allowed_symbols="add,sub,mul,div,constant,variable,sin,cos,exp,log,sqrt",
                            objectives=["r2", "length"], optimizer_iterations=10, epsilon=1e-3, max_length=50,
                            initialization_method="btc", offspring_generator="basic", reinserter="keep-best",
                            population_size=1000, max_time=max(1, int(round(budget))), generations=10**7,
                            max_evaluations=10**12, n_threads=1, random_state=seed)
    return _fit_operon(reg, names, X, y, Xt)


def _protected_exp(x):
    with np.errstate(over="ignore"):
        return np.exp(np.clip(x, -100.0, 100.0))


#: gplearn's prefix functions beyond the grammar's (its sqrt and log are the grammar's, made protected below)
_GPLEARN = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
            "div": lambda a, b: a / b, "neg": lambda a: -a, "inv": lambda a: 1 / a, "pexp": sympy.exp}


def gplearn_expr(program: str, names: list[str]):
    """gplearn's program text (``add(x0, mul(x1, 0.5))``) as a sympy expression: parsed by the grammar with
    gplearn's functions as opaque calls, then each replaced by its operation; ``sqrt`` and ``log`` become
    gplearn's protected ``sqrt(|a|)`` and ``log(|a|)``.

    Example:
        >>> gplearn_expr("add(x0, mul(sqrt(x1), 0.5))", ["x0", "x1"])
        x0 + 0.5*sqrt(Abs(x1))
    """
    e = parse_equation(program, names, functions=list(_GPLEARN), what="gplearn model")
    e = e.replace(lambda t: t.is_Pow and t.exp == sympy.S.Half, lambda t: sympy.sqrt(sympy.Abs(t.base)))
    e = e.replace(sympy.log, lambda a: sympy.log(sympy.Abs(a)))
    for fname, op in _GPLEARN.items():
        e = e.replace(sympy.Function(fname), op)
    return e


def run_gplearn(names, X, y, Xt, budget: float, seed: int):
    from gplearn.functions import make_function
    from gplearn.genetic import SymbolicRegressor

    pexp = make_function(function=_protected_exp, name="pexp", arity=1)
    reg = SymbolicRegressor(population_size=1000, generations=1, function_set=("add", "sub", "mul", "div", "sin",
                            "cos", pexp, "log", "sqrt"), warm_start=True, random_state=seed, n_jobs=1,
                            parsimony_coefficient=0.001, feature_names=names)
    t0 = time.perf_counter()
    gens = 0
    while time.perf_counter() - t0 < budget:
        gens += 1
        reg.set_params(generations=gens)
        reg.fit(X, y)
    wall = time.perf_counter() - t0
    expr = gplearn_expr(str(reg._program), names)
    return expr, reg.predict(Xt), gens * 1000 / wall, wall


METHODS = {"sciml_lab": run_sciml, "operon": run_operon, "operon-doc": run_operon_doc, "gplearn": run_gplearn}


def problems_of(args) -> list[tuple[Problem, str]]:
    if args.set == "classic":
        probs = PROBLEMS if not args.only else [p for p in PROBLEMS if p.name in args.only]
        return [(p, "classic") for p in probs]
    probs = part(args.part)
    if args.only:
        probs = [p for p in probs if p.name in args.only]
    if args.sample:  # a fixed sample: the first N in the order of a second hash (independent of the split's)
        keep = set(sorted((p.name for p in probs), key=lambda n: hashlib.sha256(b"sample:" + n.encode())
                          .hexdigest())[:args.sample])
        probs = [p for p in probs if p.name in keep]
    return [(p, "heldout" if p.name in HELDOUT else "dev" if p.name in DEV else "?") for p in probs]


def _key(problem, seed, noise, method) -> tuple:
    return (problem, int(seed), round(float(noise), 6), method)


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def summarize(rows: list[dict]) -> str:
    """Markdown tables, one per part: exact recovery, R² > 0.999 share, medians, per noise and method."""
    out = []
    parts = sorted({r["part"] for r in rows})
    for prt in parts:
        sel_part = [r for r in rows if r["part"] == prt]
        n_prob = len({r["problem"] for r in sel_part})
        seeds = sorted({int(r["seed"]) for r in sel_part})
        budgets = sorted({float(r["budget"]) for r in sel_part})
        out.append(f"\n{prt}: {n_prob} laws, seeds {seeds}, budget {'/'.join(f'{b:g}' for b in budgets)} s "
                   "per fit, one thread\n")
        out.append("| method | noise | exact recovery | test R² > 0.999 | median test R² | median complexity | "
                   "median wall s |")
        out.append("|---|---|---|---|---|---|---|")
        for noise in sorted({float(r["noise"]) for r in sel_part}):
            for m in [m for m in METHODS if any(r["method"] == m for r in sel_part)]:
                sel = [r for r in sel_part if r["method"] == m and float(r["noise"]) == noise]
                rec = sum(int(r["recovered"]) for r in sel)
                r2s = np.array([float(r["r2"]) for r in sel])
                good = int((r2s > 0.999).sum())
                cx = [int(r["complexity"]) for r in sel if int(r["complexity"]) >= 0]
                walls = [float(r["wall"]) for r in sel if r["wall"] not in ("", "nan")]
                out.append(f"| {m} | {noise:g} | {100 * rec / len(sel):.0f} % ({rec}/{len(sel)}) | "
                           f"{100 * good / len(sel):.0f} % ({good}/{len(sel)}) | {np.median(r2s):.4f} | "
                           f"{np.median(cx) if cx else float('nan'):.0f} | {np.median(walls):.1f} |")
    return "\n".join(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["feynman", "classic"], default="feynman")
    ap.add_argument("--part", choices=["dev", "heldout", "all"], default="all", help="feynman laws (default all)")
    ap.add_argument("--sample", type=int, default=0, help="a fixed sample of N laws of the part (default all)")
    ap.add_argument("--only", nargs="*", default=None, help="problem names")
    ap.add_argument("--budget", type=float, default=12.0, help="seconds per fit (default 12)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--n", type=int, default=500, help="training (and test) points")
    ap.add_argument("--out", default=None, help="CSV of per-fit rows (default bench/symreg/results-<set>.csv)")
    ap.add_argument("--resume", action="store_true", help="skip fits already in --out")
    ap.add_argument("--summarize", default=None, metavar="CSV", help="print the tables of a CSV and exit")
    args = ap.parse_args(argv)
    if args.summarize:
        print(summarize(read_rows(Path(args.summarize))))
        return
    out = Path(args.out or Path(__file__).parent / f"results-{args.set}.csv")
    done = {_key(r["problem"], r["seed"], r["noise"], r["method"]) for r in read_rows(out)} if args.resume else set()
    if not args.resume or not out.exists():
        with open(out, "w", newline="") as fh:
            csv.DictWriter(fh, fieldnames=FIELDS).writeheader()
    warnings.filterwarnings("ignore")
    for p, prt in problems_of(args):
        names = [f"x{i}" for i in range(len(p.variables))]
        truth = p.expr(names)
        for seed in args.seeds:
            for noise in args.noise:
                X, y, Xt, yt = make_data(p, args.n, noise, seed)
                for m in args.methods:
                    if _key(p.name, seed, noise, m) in done:
                        continue
                    try:
                        expr, pred, eps, wall = METHODS[m](names, X, y, Xt, args.budget, seed)
                        ok = is_exact_recovery(expr, truth, names)
                        row = dict(recovered=int(ok), r2=r2(yt, pred), complexity=size(expr), evals_per_s=eps,
                                   wall=wall, model=str(expr)[:300])
                    except Exception as exc:  # a method failing on one problem must not end the table
                        row = dict(recovered=0, r2=float("-inf"), complexity=-1, evals_per_s=float("nan"),
                                   wall=float("nan"), model=f"error: {type(exc).__name__}: {exc}"[:300])
                    row = dict(problem=p.name, part=prt, seed=seed, noise=noise, method=m, budget=args.budget, **row)
                    with open(out, "a", newline="") as fh:
                        csv.DictWriter(fh, fieldnames=FIELDS).writerow(row)
                    print(f"{p.name:22s} s={seed} noise={noise:<5g} {m:10s} rec={row['recovered']} "
                          f"r2={row['r2']:.6f} size={row['complexity']:3d} {row['model'][:70]}", flush=True)
    print(summarize(read_rows(out)))


if __name__ == "__main__":
    main()

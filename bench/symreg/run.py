"""Symbolic regression benchmark: sciml_lab.symreg vs Operon (pyoperon) vs gplearn.

Every fit gets the same wall-clock budget on one thread. Printed per method and noise
level: exact-recovery rate (SRBench rule: the difference or ratio with the truth
simplifies to a constant), median test R², median complexity (nodes of the sympy
expression, the same measure for all methods) and expressions evaluated per second.

    python bench/symreg/run.py                          # full table: 27 problems x 2 noise x 3 methods x 12 s
    python bench/symreg/run.py --problems 6 --budget 4  # a slice

Operon and gplearn are bench-only extras: ``pip install pyoperon gplearn``.
"""

from __future__ import annotations

import argparse
import csv
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
from problems import PROBLEMS, Problem, make_data  # noqa: E402

from sciml_lab.symreg import SymRegEngine, is_exact_recovery  # noqa: E402

torch.set_num_threads(1)
OPS = "+ - * / sin cos exp log sqrt"


def size(expr) -> int:
    return sum(1 for _ in sympy.preorder_traversal(expr))


def r2(y, yhat) -> float:
    yhat = np.asarray(yhat, dtype=float) * np.ones(len(y))
    if not np.isfinite(yhat).all():
        return float("-inf")
    return float(1 - np.sum((y - yhat) ** 2) / np.sum((y - y.mean()) ** 2))


def run_sciml(p: Problem, X, y, Xt, budget: float, seed: int):
    e = SymRegEngine(X, y, features=list(p.variables), ops=OPS, iterations=10**7, time_limit=budget, seed=seed,
                     device="cpu", threads=1)
    t0 = time.perf_counter()
    while not e.done():
        e.step()
    wall = time.perf_counter() - t0
    eq = e.best()
    return eq.sympy(), eq.numpy()(Xt), e.evals / max(e.wall, 1e-9), wall


def run_operon(p: Problem, X, y, Xt, budget: float, seed: int):
    from pyoperon.sklearn import SymbolicRegressor

    names = list(p.variables)
    reg = SymbolicRegressor(allowed_symbols="add,sub,mul,div,constant,variable,sin,cos,exp,log,sqrt",
                            max_time=int(round(budget)), generations=10**7, max_evaluations=10**12, n_threads=1,
                            random_state=seed)
    t0 = time.perf_counter()
    reg.fit(X, y)
    wall = time.perf_counter() - t0
    text = reg.get_model_string(reg.model_, 12, names)
    expr = sympy.sympify(text, locals={n: sympy.Symbol(n, real=True) for n in names})
    return expr, reg.predict(Xt), reg.stats_["evaluation_count"] / wall, wall


def run_gplearn(p: Problem, X, y, Xt, budget: float, seed: int):
    from gplearn.genetic import SymbolicRegressor

    names = list(p.variables)
    reg = SymbolicRegressor(population_size=1000, generations=1, function_set=("add", "sub", "mul", "div", "sin",
                            "cos", "log", "sqrt"), warm_start=True, random_state=seed, n_jobs=1,
                            parsimony_coefficient=0.001)
    t0 = time.perf_counter()
    gens = 0
    while time.perf_counter() - t0 < budget:
        gens += 1
        reg.set_params(generations=gens)
        reg.fit(X, y)
    wall = time.perf_counter() - t0
    sym = {f"X{i}": sympy.Symbol(n, real=True) for i, n in enumerate(names)}
    sym.update(add=lambda a, b: a + b, sub=lambda a, b: a - b, mul=lambda a, b: a * b, div=lambda a, b: a / b,
               sqrt=lambda a: sympy.sqrt(sympy.Abs(a)), log=lambda a: sympy.log(sympy.Abs(a)), sin=sympy.sin,
               cos=sympy.cos, neg=lambda a: -a, inv=lambda a: 1 / a)
    expr = sympy.sympify(str(reg._program), locals=sym)
    return expr, reg.predict(Xt), gens * 1000 / wall, wall


METHODS = {"sciml_lab": run_sciml, "operon": run_operon, "gplearn": run_gplearn}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=12.0, help="seconds per fit (default 12)")
    ap.add_argument("--problems", type=int, default=len(PROBLEMS), help="first N problems (default all)")
    ap.add_argument("--only", nargs="*", default=None, help="problem names")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01])
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--n", type=int, default=500, help="training (and test) points")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results.csv"))
    args = ap.parse_args(argv)
    probs = [p for p in PROBLEMS if p.name in args.only] if args.only else PROBLEMS[:args.problems]
    rows = []
    warnings.filterwarnings("ignore")
    for p in probs:
        for noise in args.noise:
            X, y, Xt, yt = make_data(p, args.n, noise, args.seed)
            for m in args.methods:
                try:
                    expr, pred, eps, wall = METHODS[m](p, X, y, Xt, args.budget, args.seed)
                    ok = is_exact_recovery(expr, p.truth, list(p.variables))
                    row = dict(problem=p.name, noise=noise, method=m, recovered=int(ok), r2=r2(yt, pred),
                               complexity=size(expr), evals_per_s=eps, wall=wall, model=str(expr)[:200])
                except Exception as exc:  # a baseline failing on one problem must not end the table
                    row = dict(problem=p.name, noise=noise, method=m, recovered=0, r2=float("-inf"),
                               complexity=-1, evals_per_s=float("nan"), wall=float("nan"), model=f"error: {exc}")
                rows.append(row)
                print(f"{p.name:20s} noise={noise:<5g} {m:10s} rec={row['recovered']} r2={row['r2']:.6f} "
                      f"size={row['complexity']:3d} {row['model'][:70]}", flush=True)
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"\nbudget {args.budget:g} s per fit, one thread, {len(probs)} problems, n={args.n} train/test points, "
          f"seed {args.seed}\n")
    print("| method | noise | exact recovery | median test R² | median complexity | evals/s |")
    print("|---|---|---|---|---|---|")
    for noise in args.noise:
        for m in args.methods:
            sel = [r for r in rows if r["method"] == m and r["noise"] == noise]
            rec = np.mean([r["recovered"] for r in sel])
            print(f"| {m} | {noise:g} | {100 * rec:.0f} % ({sum(r['recovered'] for r in sel)}/{len(sel)}) | "
                  f"{np.median([r['r2'] for r in sel]):.4f} | {np.median([r['complexity'] for r in sel]):.0f} | "
                  f"{np.nanmedian([r['evals_per_s'] for r in sel]):,.0f} |")


if __name__ == "__main__":
    main()

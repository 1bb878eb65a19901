"""sciml_lab alone on the AI Feynman laws with a CPU-time budget per fit: for developing the search.

The side-by-side benchmark (``run.py``) gives every method the same wall time, as a user would; on a shared
machine the CPU a fit gets then varies with the load from run to run, by more than most changes of the
search move the scores. Here each fit gets the same CPU time of its own thread (``time.thread_time``), so
two runs made under different loads compare. The search ends once the budget is spent; its front is then
finished (constants snapped, :meth:`sciml_lab.symreg.search.Search.finish`) and scored on all rows as at the
end of a timed run. Scores as in ``run.py``; generations per CPU-second count the finish.

    python bench/symreg/cpu_budget.py --part dev --sample 20 --seeds 0 1 --cpu 2 --out dev-cpu.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import time
import warnings

import numpy as np

import run as R
from problems import make_data

from sciml_lab.symreg import SymRegEngine, is_exact_recovery

FIELDS = ["problem", "seed", "noise", "recovered", "r2", "generations", "cpu", "model"]


def fit(names, X, y, Xt, cpu: float, seed: int, settings: dict):
    e = SymRegEngine(X, y, features=names, ops=R.OPS, iterations=10**7, seed=seed, device="cpu", threads=1,
                     **settings)
    t0 = time.thread_time()
    while not e.search_done() and time.thread_time() - t0 < cpu:
        e.step()
    if hasattr(e.search, "finish"):  # a version without the finish is scored as it stands
        e.search.finish()
    e.state.deadline = 0.0  # the search is over: steps now only score the front on all rows
    while not e.done():
        e.step()
    return e.best(), e.iteration, time.thread_time() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["dev", "heldout", "all"], default="dev")
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01])
    ap.add_argument("--cpu", type=float, default=2.0, help="CPU seconds per fit (default 2)")
    ap.add_argument("--settings", default="{}", help="engine settings as JSON, e.g. '{\"fit_rows\": 64}'")
    ap.add_argument("--out", help="CSV of per-fit rows")
    ap.add_argument("--summarize", default=None, metavar="CSV", help="print the table of a CSV and exit")
    args = ap.parse_args(argv)
    if args.summarize:
        with open(args.summarize, newline="") as fh:
            print(summarize(list(csv.DictReader(fh))))
        return
    if not args.out:
        ap.error("--out: a CSV path is needed for the per-fit rows")
    warnings.filterwarnings("ignore")
    settings = json.loads(args.settings)
    rows = []
    with open(args.out, "w", newline="") as fh:
        csv.DictWriter(fh, fieldnames=FIELDS).writeheader()
    for p, _ in R.problems_of(argparse.Namespace(set="feynman", part=args.part, only=None, sample=args.sample)):
        names = [f"x{i}" for i in range(len(p.variables))]
        truth = p.expr(names)
        for seed in args.seeds:
            for noise in args.noise:
                X, y, Xt, yt = make_data(p, 500, noise, seed)
                eq, gens, cpu = fit(names, X, y, Xt, args.cpu, seed, settings)
                ok = is_exact_recovery(eq.sympy(), truth, names)
                row = dict(problem=p.name, seed=seed, noise=noise, recovered=int(ok), r2=R.r2(yt, eq.numpy()(Xt)),
                           generations=gens, cpu=cpu, model=str(eq.sympy())[:300])
                rows.append(row)
                with open(args.out, "a", newline="") as fh:
                    csv.DictWriter(fh, fieldnames=FIELDS).writerow(row)
                print(f"{p.name:22s} s={seed} noise={noise:<5g} rec={row['recovered']} r2={row['r2']:.6f} "
                      f"gens={gens:4d} cpu={cpu:.2f} {row['model'][:60]}", flush=True)
    print(summarize(rows))


def summarize(rows: list[dict]) -> str:
    """One line per noise level: exact recoveries, fits with test R² > 0.999, median R², generations/CPU-s."""
    out = []
    for noise in sorted({float(r["noise"]) for r in rows}):
        sel = [r for r in rows if float(r["noise"]) == noise]
        rec = sum(int(r["recovered"]) for r in sel)
        good = sum(float(r["r2"]) > 0.999 for r in sel)
        gps = sum(int(r["generations"]) for r in sel) / sum(float(r["cpu"]) for r in sel)
        out.append(f"| {noise:g} | {100 * rec / len(sel):.0f} % ({rec}/{len(sel)}) | "
                   f"{100 * good / len(sel):.0f} % ({good}/{len(sel)}) | "
                   f"{np.median([float(r['r2']) for r in sel]):.4f} | {gps:.1f} |")
    return "| noise | exact recovery | test R² > 0.999 | median test R² | generations per CPU-s |\n" \
           "|---|---|---|---|---|\n" + "\n".join(out)


if __name__ == "__main__":
    main()

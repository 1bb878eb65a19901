"""Emulator benchmark: sciml_lab's GP against scikit-learn's GaussianProcessRegressor.

Standard simulator test functions (Surjanovic & Bingham, Virtual Library of
Simulation Experiments, https://www.sfu.ca/~ssurjano/): borehole (8-D), OTL circuit
(6-D), piston (7-D), wing weight (10-D), Friedman (5-D). For each function and
budget both models are fitted on the same Latin-hypercube design (inputs scaled to
the unit cube for both) and scored on 2000 fresh uniform points: normalised RMSE,
95 % interval coverage, Gaussian NLL per point (in units of the output's std), fit
time and predict time.

Baseline: ``GaussianProcessRegressor(ConstantKernel * Matern(nu=2.5, ARD) +
WhiteKernel, normalize_y=True, n_restarts_optimizer=2)`` — what a user would pick.
Both run single-threaded (``torch.set_num_threads(1)``, BLAS threads 1).

Run: ``python bench/emulate/bench.py`` (all: about 15 minutes on one core), or
``--budgets 50 200 --functions borehole otl`` for a part. scikit-learn is a
bench-only extra (``pip install scikit-learn``).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import qmc  # noqa: E402

torch.set_num_threads(1)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from sciml_lab.emulate import Emulator, validation_metrics  # noqa: E402


def borehole(x):
    rw, r, tu, hu, tl, hl, ll, kw = x.T
    lr = np.log(r / rw)
    return 2 * np.pi * tu * (hu - hl) / (lr * (1 + 2 * ll * tu / (lr * rw ** 2 * kw) + tu / tl))


def otl(x):
    rb1, rb2, rf, rc1, rc2, beta = x.T
    vb1 = 12 * rb2 / (rb1 + rb2)
    den = beta * (rc2 + 9) + rf
    return (vb1 + 0.74) * beta * (rc2 + 9) / den + 11.35 * rf / den + 0.74 * rf * beta * (rc2 + 9) / (den * rc1)


def piston(x):
    m, s, v0, k, p0, ta, t0 = x.T
    a = p0 * s + 19.62 * m - k * v0 / s
    v = s / (2 * k) * (np.sqrt(a ** 2 + 4 * k * p0 * v0 * ta / t0) - a)
    return 2 * np.pi * np.sqrt(m / (k + s ** 2 * p0 * v0 * ta / (t0 * v ** 2)))


def wing(x):
    sw, wfw, a, lam, q, taper, tc, nz, wdg, wp = x.T
    lam = np.deg2rad(lam)
    return (0.036 * sw ** 0.758 * wfw ** 0.0035 * (a / np.cos(lam) ** 2) ** 0.6 * q ** 0.006 * taper ** 0.04
            * (100 * tc / np.cos(lam)) ** -0.3 * (nz * wdg) ** 0.49 + sw * wp)


def friedman(x):
    return 10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]


FUNCTIONS = {
    "borehole": (borehole, [(0.05, 0.15), (100, 50000), (63070, 115600), (990, 1110), (63.1, 116), (700, 820),
                            (1120, 1680), (9855, 12045)]),
    "otl": (otl, [(50, 150), (25, 70), (0.5, 3), (1.2, 2.5), (0.25, 1.2), (50, 300)]),
    "piston": (piston, [(30, 60), (0.005, 0.020), (0.002, 0.010), (1000, 5000), (90000, 110000), (290, 296),
                        (340, 360)]),
    "wing": (wing, [(150, 200), (220, 300), (6, 10), (-10, 10), (16, 45), (0.5, 1), (0.08, 0.18), (2.5, 6),
                    (1700, 2500), (0.025, 0.08)]),
    "friedman": (friedman, [(0, 1)] * 5),
}


def scale(u, bounds):
    lo, hi = np.array(bounds).T
    return lo + u * (hi - lo)


def run_ours(u, y, ut, yt, bounds):
    names = [f"x{i}" for i in range(len(bounds))]
    t0 = time.perf_counter()
    emu = Emulator(names, {k: (0.0, 1.0) for k in names}).fit(u, y[:, None])
    emu.validate()  # leave-one-out recalibration, as the engine does after every batch
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = emu.predict(ut)
    pred = time.perf_counter() - t0
    return validation_metrics(yt[:, None], ds["mean"].values[:, None], ds["std"].values[:, None],
                              recalibrate=False), fit, pred


def run_sklearn(u, y, ut, yt, bounds, restarts):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    d = u.shape[1]
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.full(d, 0.5), (1e-3, 1e3), nu=2.5) \
        + WhiteKernel(1e-5, (1e-10, 1e1))
    gp = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=restarts, random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gp.fit(u, y)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    m, s = gp.predict(ut, return_std=True)
    pred = time.perf_counter() - t0
    return validation_metrics(yt[:, None], m[:, None], s[:, None], recalibrate=False), fit, pred


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    ap.add_argument("--budgets", nargs="+", type=int, default=[50, 200, 1000])
    ap.add_argument("--restarts", type=int, default=2, help="scikit-learn optimizer restarts")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    rows = []
    head = (f"{'function':<9} {'n':>5} | {'NRMSE':>9} {'sklearn':>9} | {'cov95':>5} {'sklearn':>7} | "
            f"{'NLL':>6} {'sklearn':>7} | {'fit s':>6} {'sklearn':>7} | {'pred s':>6} {'sklearn':>7}")
    print(head)
    print("-" * len(head))
    for name in args.functions:
        f, bounds = FUNCTIONS[name]
        d = len(bounds)
        ut = np.random.default_rng(10_000 + args.seed).uniform(size=(2000, d))
        yt = f(scale(ut, bounds))
        for n in args.budgets:
            u = qmc.LatinHypercube(d, seed=args.seed).random(n)
            y = f(scale(u, bounds))
            torch.manual_seed(args.seed)
            ours, fit_o, pred_o = run_ours(u, y, ut, yt, bounds)
            base, fit_b, pred_b = run_sklearn(u, y, ut, yt, bounds, args.restarts)
            row = {"function": name, "dim": d, "n": n, "ours": ours, "sklearn": base, "fit_s": [fit_o, fit_b],
                   "predict_s": [pred_o, pred_b]}
            rows.append(row)
            print(f"{name:<9} {n:>5} | {ours['nrmse']:>9.2e} {base['nrmse']:>9.2e} | {ours['coverage']:>5.2f} "
                  f"{base['coverage']:>7.2f} | {ours['nll']:>6.2f} {base['nll']:>7.2f} | {fit_o:>6.2f} {fit_b:>7.2f} | "
                  f"{pred_o:>6.3f} {pred_b:>7.3f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()

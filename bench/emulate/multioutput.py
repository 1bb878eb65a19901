"""Multi-output emulator benchmark: sciml_lab against scikit-learn on simulators that return curves.

Two functional-output simulators, 100 output values each:

* ``oscillator``: a damped harmonic oscillator released from rest,
  ``x(t) = x0 exp(-zeta w0 t) (cos(wd t) + zeta w0 / wd sin(wd t))``, ``wd = w0 sqrt(1 - zeta^2)``,
  at 100 times evenly spaced in [0, 10] s; inputs damping ratio ``zeta`` in
  [0.05, 0.4], natural frequency ``w0`` in [1, 4] rad/s, initial displacement ``x0``
  in [0.5, 1.5].
* ``heat``: 1-D heat equation on [0, 1] with zero ends, a Gaussian pulse at
  ``t = 0`` (centre ``c`` in [0.2, 0.8], width ``w`` in [0.03, 0.15]), diffusivity
  ``kappa`` in [1e-3, 3e-2] (log-uniform); output the profile ``u(x, 1)`` at 100
  points in [0, 1] (exact sine series, 80 modes).

For each simulator and budget (50, 200, 1000 runs) both emulators get the same
Latin-hypercube design (scipy ``qmc.LatinHypercube``, seed 0) and are scored on 1000
fresh uniform test points (log-uniform for ``kappa``): normalised RMSE (each output
column's RMSE over its standard deviation, root mean square over the columns) and
the coverage of the central 90 % predictive interval, per output column (minimum
and median over the 100 columns) and pooled.

* sciml_lab: the data-mode job of the Python API, ``sciml_lab.emulate.fit((X, Y),
  bounds, ...)``, as a user runs it (default settings: PCA components chosen by the
  variance left out, GP, cross-validated calibration, then the job's snapshot with
  Sobol' indices per output). "fit s" is the engine's own fit + validation time (its
  ``fit_time``), "job s" the wall time from launch to done.
* scikit-learn: ``GaussianProcessRegressor(ConstantKernel(1.0) *
  Matern(length_scale=np.ones(d), length_scale_bounds=(1e-2, 1e2), nu=2.5) +
  WhiteKernel(noise_level=1.0, noise_level_bounds=(1e-5, 1e1)), normalize_y=True,
  n_restarts_optimizer=9)`` on all 100 outputs jointly (multi-target ``y``: one
  kernel, the likelihood summed over the standardised columns), inputs scaled to the
  unit cube (log for ``kappa``); the kernel and the 9 restarts are those of
  scikit-learn's GPR examples (``plot_gpr_noisy_targets``, ``plot_gpr_noisy``).
  ``--sk-restarts`` changes the restarts.

Both run on one thread (``torch.set_num_threads(1)``, BLAS/OpenMP threads 1, also
through threadpoolctl); one small fit of each before timing takes the one-time
imports (torch's optimiser imports ``torch._dynamo``: 3-10 s) out of the first row.

Run: ``python bench/emulate/multioutput.py`` (all rows), or ``--budgets 50 200
--simulators oscillator``; ``--json FILE`` also writes the rows. scikit-learn is a
bench-only extra (``pip install scikit-learn``).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import qmc  # noqa: E402

torch.set_num_threads(1)

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from sciml_lab.emulate import Emulator, emulator, fit  # noqa: E402
from sciml_lab.emulate.emulator import nrmse_interval  # noqa: E402

_Z90 = 1.6448536269514722
T_OSC = np.linspace(0.0, 10.0, 100)
X_HEAT = np.linspace(0.0, 1.0, 100)


def oscillator(p: np.ndarray) -> np.ndarray:
    zeta, w0, x0 = (p[:, i:i + 1] for i in range(3))
    wd = w0 * np.sqrt(1 - zeta ** 2)
    return x0 * np.exp(-zeta * w0 * T_OSC) * (np.cos(wd * T_OSC) + zeta * w0 / wd * np.sin(wd * T_OSC))


def heat(p: np.ndarray, modes: int = 80, t: float = 1.0) -> np.ndarray:
    kappa, c, w = (p[:, i:i + 1] for i in range(3))
    xq = (np.arange(512) + 0.5) / 512  # midpoint rule for the sine coefficients
    k = np.arange(1, modes + 1)
    u0 = np.exp(-0.5 * ((xq - c) / w) ** 2)  # (n, 512)
    b = 2 * u0 @ np.sin(np.pi * np.outer(xq, k)) / 512  # (n, modes)
    decay = np.exp(-kappa * (np.pi * k) ** 2 * t)  # (n, modes)
    return (b * decay) @ np.sin(np.pi * np.outer(k, X_HEAT))


# name -> (function, input names, bounds, log-scaled inputs)
SIMULATORS = {
    "oscillator": (oscillator, ["zeta", "w0", "x0"], [(0.05, 0.4), (1.0, 4.0), (0.5, 1.5)], []),
    "heat": (heat, ["kappa", "c", "w"], [(1e-3, 3e-2), (0.2, 0.8), (0.03, 0.15)], ["kappa"]),
}


def to_user(u: np.ndarray, bounds, log_mask: np.ndarray) -> np.ndarray:
    lo, hi = np.array(bounds, dtype=float).T
    lo, hi = np.where(log_mask, np.log(lo), lo), np.where(log_mask, np.log(hi), hi)
    x = lo + u * (hi - lo)
    return np.where(log_mask, np.exp(x), x)


def scores(y: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict:
    inside = np.abs(y - mean) < _Z90 * np.maximum(std, 1e-300)
    cov = inside.mean(0)  # per output column
    nrmse, lo, hi = nrmse_interval(y, mean)
    return {"nrmse": nrmse, "nrmse_low": lo, "nrmse_high": hi, "cov90_min": float(cov.min()),
            "cov90_median": float(np.median(cov)), "cov90_pooled": float(inside.mean()),
            "cov90_per_output": cov.round(4).tolist()}


def run_ours(x, y, xt, names, bounds, logs):
    spec = {k: (*b, "log") if k in logs else b for k, b in zip(names, bounds)}
    t0 = time.perf_counter()
    job = fit((x, y), spec, inputs=names, store=False, device="cpu", threads=1, name="multioutput-bench")
    status = job.wait(7200)
    wall = time.perf_counter() - t0
    if status != "done":
        raise RuntimeError(f"sciml_lab job ended {status!r}")
    emu = emulator(job)
    fit_s = float(job.result["validation"]["fit_time"].values[-1])
    ds = emu.predict(xt)
    n_comp = int(emu.basis.shape[1])
    return ds["mean"].values.reshape(len(xt), -1), ds["std"].values.reshape(len(xt), -1), fit_s, wall, n_comp


def sklearn_gp(d: int, restarts: int):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel(1.0) * Matern(length_scale=np.ones(d), length_scale_bounds=(1e-2, 1e2), nu=2.5) \
        + WhiteKernel(noise_level=1.0, noise_level_bounds=(1e-5, 1e1))
    return GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=restarts, random_state=0)


def run_sklearn(u, y, ut, restarts):
    gp = sklearn_gp(u.shape[1], restarts)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings at the bounds
        gp.fit(u, y)
    fit_s = time.perf_counter() - t0
    mean, std = gp.predict(ut, return_std=True)
    return mean, std.reshape(mean.shape), fit_s, str(gp.kernel_)


def warm_up() -> None:
    """One small fit of each, so one-time imports are not timed."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(12, 2))
    y = np.sin(3 * x[:, :1] + np.linspace(0, 1, 20))
    Emulator(["a", "b"], {"a": (0, 1), "b": (0, 1)}, layout=[{"name": "y", "dims": ["t"], "shape": [20]}],
             n_components="auto").fit(x, y).validate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sklearn_gp(2, 0).fit(x, y)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simulators", nargs="+", default=list(SIMULATORS), choices=list(SIMULATORS))
    ap.add_argument("--budgets", nargs="+", type=int, default=[50, 200, 1000])
    ap.add_argument("--sk-restarts", type=int, default=9, help="scikit-learn n_restarts_optimizer")
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    warm_up()
    rows = []
    head = (f"{'simulator':<10} {'n':>5} | {'fit s':>7} {'job s':>7} {'sklearn':>8} {'ratio':>6} | {'NRMSE':>6} "
            f"{'sklearn':>7} | {'cov90 min/med':>13} {'sklearn':>11} | {'k':>3}")
    print(head)
    print("-" * len(head))
    for name in args.simulators:
        f, names, bounds, logs = SIMULATORS[name]
        d = len(names)
        log_mask = np.array([k in logs for k in names])
        ut = np.random.default_rng(12345).uniform(size=(args.n_test, d))
        xt = to_user(ut, bounds, log_mask)
        yt = f(xt)
        for n in args.budgets:
            u = qmc.LatinHypercube(d, seed=0).random(n)
            x = to_user(u, bounds, log_mask)
            y = f(x)
            torch.manual_seed(0)
            m_o, s_o, fit_o, job_o, k = run_ours(x, y, xt, names, bounds, logs)
            m_s, s_s, fit_s, kernel = run_sklearn(u, y, ut, args.sk_restarts)
            ours, base = scores(yt, m_o, s_o), scores(yt, m_s, s_s)
            row = {"simulator": name, "n": n, "fit_s": fit_o, "job_s": job_o, "sklearn_fit_s": fit_s,
                   "ratio_fit": fit_o / fit_s, "ratio_job": job_o / fit_s, "components": k, "ours": ours,
                   "sklearn": base, "sklearn_kernel": kernel, "sklearn_restarts": args.sk_restarts}
            rows.append(row)
            print(f"{name:<10} {n:>5} | {fit_o:>7.2f} {job_o:>7.2f} {fit_s:>8.2f} {job_o / fit_s:>6.2f} | "
                  f"{ours['nrmse']:>6.3f} {base['nrmse']:>7.3f} | {ours['cov90_min']:>5.2f} / {ours['cov90_median']:.2f} "
                  f"{base['cov90_min']:>4.2f} / {base['cov90_median']:.2f} | {k:>3}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()

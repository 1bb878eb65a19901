"""Active-learning acquisitions compared: max-variance vs integrated variance reduction.

For each test function (the same five as ``bench.py``), budget and seed, the
:class:`~sciml_lab.emulate.EmulateEngine` runs its full loop (Sobol' initial design,
then active-learning batches, GP refit per batch) once per acquisition, and the
final emulator is scored on 2000 fresh uniform points: normalised RMSE and 95 %
coverage. Everything else (design, batch sizes, explore share, seeds) is equal.

Run: ``python bench/emulate/acquisition.py --budgets 50 200 --seeds 0 1``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import FUNCTIONS, scale  # noqa: E402

from sciml_lab.emulate import EmulateEngine, validation_metrics  # noqa: E402


def run(name: str, budget: int, acquisition: str, seed: int) -> dict:
    f, bounds = FUNCTIONS[name]
    d = len(bounds)
    names = [f"x{i}" for i in range(d)]
    eng = EmulateEngine(lambda x: float(f(np.asarray(x)[None])[0]), dict(zip(names, bounds)), budget=budget,
                        acquisition=acquisition, n_workers=1, poll=0.01, device="cpu", seed=seed, n_sobol=64)
    t0 = time.perf_counter()
    while not eng.done():
        eng.step()
    wall = time.perf_counter() - t0
    ut = np.random.default_rng(10_000 + seed).uniform(size=(2000, d))
    yt = f(scale(ut, bounds))
    ds = eng.get_emulator().predict(scale(ut, bounds))
    m = validation_metrics(yt[:, None], ds["mean"].values[:, None], ds["std"].values[:, None], recalibrate=False)
    return {"function": name, "dim": d, "budget": budget, "acquisition": acquisition, "seed": seed,
            "nrmse": m["nrmse"], "coverage": m["coverage"], "nll": m["nll"], "wall_s": wall}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    ap.add_argument("--budgets", nargs="+", type=int, default=[50, 200])
    ap.add_argument("--acquisitions", nargs="+", default=["variance", "ivr"], choices=["variance", "ivr", "random"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    rows = []
    for name in args.functions:
        for budget in args.budgets:
            for seed in args.seeds:
                for acq in args.acquisitions:
                    r = run(name, budget, acq, seed)
                    rows.append(r)
                    print(f"{name:<9} {budget:>5} seed {seed} {acq:<9} NRMSE {r['nrmse']:.3e} cov95 {r['coverage']:.2f} "
                          f"NLL {r['nll']:6.2f} wall {r['wall_s']:6.1f}s", flush=True)
                    if args.json:
                        Path(args.json).write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()

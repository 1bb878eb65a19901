"""Fan-out of simulator calls: thread pool vs process pool (vs Dask) on a GIL-bound simulator.

A pure-Python busy loop (``--cost`` seconds of CPU per call, holding the GIL) is
called ``--calls`` times through :class:`sciml_lab.emulate.simulator.Simulator` with
``--workers`` workers. Reported: wall time of the calls with the workers already
started (steady state), and the one-time start-up of the pool (spawning processes).
The serial time is ``calls x cost``; a thread pool cannot beat it for GIL-bound code.

Run: ``python bench/emulate/pools.py --workers 2 --calls 16 --cost 0.25 [--dask]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from sciml_lab.emulate.simulator import Simulator, SimulatorRun  # noqa: E402


def busy(cost: float):
    def sim(a, b):
        import time as _time

        t0, s = _time.thread_time(), 0.0
        while _time.thread_time() - t0 < cost:  # this thread's CPU time: the same work per call, however loaded the machine
            s += a * b
        return a + b
    return sim


def timed(sim: Simulator, points: np.ndarray) -> float:
    runs = [SimulatorRun(i, p, p) for i, p in enumerate(points)]
    t0 = time.perf_counter()
    for r in runs:
        sim.submit(r)
    values = [r.future.result()[0][0] for r in runs]
    wall = time.perf_counter() - t0
    assert np.allclose(values, points.sum(1))
    return wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--calls", type=int, default=16)
    ap.add_argument("--cost", type=float, default=0.25, help="CPU seconds per call")
    ap.add_argument("--dask", action="store_true", help="also a LocalCluster(processes=True)")
    args = ap.parse_args(argv)
    points = np.random.default_rng(0).uniform(size=(args.calls, 2))
    pools: list = ["thread", "process"]
    cluster = client = None
    if args.dask:
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        pools.append(client)
    print(f"{args.calls} calls x {args.cost} s CPU, {args.workers} workers; serial {args.calls * args.cost:.2f} s")
    rows = {}
    for pool in pools:
        name = pool if isinstance(pool, str) else "dask"
        sim = Simulator(busy(args.cost), ["a", "b"], n_workers=args.workers, pool=pool)
        start = timed(sim, points[:args.workers])  # starts the workers
        wall = timed(sim, points)
        sim.shutdown()
        rows[name] = wall
        print(f"{name:<8} start-up+{args.workers} calls {start:6.2f} s | {args.calls} calls {wall:6.2f} s | "
              f"speed-up vs thread {rows['thread'] / wall:4.2f}x", flush=True)
    if client is not None:
        client.close()
        cluster.close()
    return rows


if __name__ == "__main__":
    main()

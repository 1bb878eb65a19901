"""Chain-steps per second of sciml_lab.flowmc on the 10-D four-mode mixture.

One chain-step is one move (local or global) of one chain. The flow is trained in a
short warm-up first; the timed part is production loops (local + global moves).

Usage::

    python bench/flowmc/throughput.py --chains 1000,10000,100000 --device cuda
    python bench/flowmc/throughput.py --chains 1000,10000 --device cpu --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from targets import TARGETS, torch_log_prob  # noqa: E402


def main(argv=None) -> None:
    import torch

    from sciml_lab.flowmc import FlowMCEngine

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chains", default="1000,10000")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--loops", type=int, default=3, help="timed production loops")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t = TARGETS["mixture10"]
    print("| chains | device | chain-steps/s | s per production loop |\n|---|---|---|---|")
    for n in (int(c) for c in args.chains.split(",")):
        eng = FlowMCEngine(torch_log_prob(t), dim=t.dim, n_chains=n, n_training_loops=2, n_loops=args.loops,
                           n_local_steps=20, n_global_steps=20, n_epochs=3, device=args.device,
                           dtype=args.dtype, seed=0, max_train_points=20_000, thin=10)
        while not eng.schedule.production:
            eng.step()
        sync = torch.cuda.synchronize if eng.settings.device.startswith("cuda") else (lambda: None)
        sync()
        t0 = time.perf_counter()
        while not eng.done():
            eng.step()
        sync()
        wall = time.perf_counter() - t0
        steps = n * args.loops * 40
        print(f"| {n:,} | {eng.settings.device} | {steps / wall:,.0f} | {wall / args.loops:.2f} |", flush=True)


if __name__ == "__main__":
    main()

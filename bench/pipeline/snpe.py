"""sbi's sequential neural posterior estimation (NPE-C / APT, Greenberg et al. 2019)
on the pipeline problems, as its multi-round tutorial does it, scored like the others.

sbi is a bench-only extra with its own dependencies; run this with an environment
that has it (``pip install sbi``), e.g.::

    python bench/pipeline/snpe.py --problem oscillator --calls 200 500 1000 --rounds 4

The simulator is the problem's real one with its Gaussian observation noise added
(NPE learns p(theta | x) from simulated data); every call counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from metrics import summary  # noqa: E402
from problems import PROBLEMS, Problem, reference_draws  # noqa: E402


def snpe(p: Problem, calls: int, rounds: int, seed: int = 0) -> dict:
    from sbi.inference import NPE
    from sbi.utils import BoxUniform

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    lo, hi = p.box()
    prior = BoxUniform(low=torch.as_tensor(lo, dtype=torch.float32), high=torch.as_tensor(hi, dtype=torch.float32))
    x_o = torch.as_tensor(p.observed, dtype=torch.float32)
    inference = NPE(prior=prior)
    proposal, used, posterior = prior, 0, None
    per_round = [calls // rounds + (1 if r < calls % rounds else 0) for r in range(rounds)]
    for n in per_round:
        theta = proposal.sample((n,))
        x = np.array([p.simulate(**dict(zip(p.names, t.tolist()))) for t in theta.double()])
        x = x + p.noise * rng.normal(size=x.shape)
        used += n
        estimator = inference.append_simulations(theta, torch.as_tensor(x, dtype=torch.float32),
                                                 proposal=proposal).train()
        posterior = inference.build_posterior(estimator).set_default_x(x_o)
        proposal = posterior
    draws = posterior.sample((20_000,), x=x_o).double().numpy()
    return {"method": f"snpe_{rounds}r", "calls": used, **summary(draws, reference_draws(p))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", choices=sorted(PROBLEMS), default="oscillator")
    ap.add_argument("--calls", type=int, nargs="+", default=[200, 500, 1000])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for n in args.calls:
        t0 = time.perf_counter()
        row = snpe(PROBLEMS[args.problem], n, args.rounds, args.seed)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

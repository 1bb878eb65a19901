"""Pipeline benchmark: posterior accuracy against simulator calls, side by side.

Methods (each counts its calls of the real simulator):

- ``flowmc_sim``: flow-MCMC directly on the simulator's likelihood (the ODE solver is
  not differentiable, so the gradient-free random-walk kernel and the flow proposal);
  its draws are scored at checkpoints of simulator calls.
- ``oneshot``: an emulator trained on N adaptive simulator runs over the prior (no
  refinement), then flow-MCMC on the emulator's likelihood with its predictive
  variance added to the noise.

Scores (``metrics.py``): C2ST against exact draws (``problems.reference_draws``),
the largest mean error in posterior sd, the worst sd ratio.

    python bench/pipeline/run.py --problem oscillator --method oneshot --runs 25 50 100
    python bench/pipeline/run.py --problem sir --method flowmc_sim --calls 2000 10000 50000
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

from sciml_lab.emulate import EmulateEngine  # noqa: E402
from sciml_lab.flowmc import FlowMCEngine  # noqa: E402
from sciml_lab.pipeline import CalibrateEngine  # noqa: E402


class Counted:
    """The simulator with a call counter."""

    def __init__(self, p: Problem):
        self.p, self.calls = p, 0

    def __call__(self, **kw) -> np.ndarray:
        self.calls += 1
        return self.p.simulate(**kw)


def _draws(engine: FlowMCEngine, names) -> np.ndarray:
    post = engine.snapshot()["posterior"].to_dataset()
    return np.stack([post[k].values.reshape(-1) for k in names], -1)


def flowmc_sim(p: Problem, calls: list[int], seed: int = 0) -> list[dict]:
    sim = Counted(p)
    obs = np.asarray(p.observed)

    def log_prob(theta: dict) -> np.ndarray:
        x = np.stack([np.asarray(theta[k], dtype=float) for k in p.names], -1)
        out = np.empty(len(x))
        for i, row in enumerate(x):
            y = sim(**dict(zip(p.names, row)))
            out[i] = -0.5 * float((((y - obs) / p.noise) ** 2).sum())
        return out

    eng = FlowMCEngine(log_prob, params=list(p.names), bounds={k: p.bounds[k] for k in p.names},
                       n_chains=16, n_training_loops=6, n_loops=10 ** 6, n_local_steps=20, n_global_steps=20,
                       n_epochs=10, device="cpu", seed=seed)
    rows, exact = [], reference_draws(p)
    for target in sorted(calls):
        while sim.calls < target:
            eng.step()
        if eng.production_loops == 0:
            rows.append({"method": "flowmc_sim", "calls": sim.calls, "c2st": float("nan"), "note": "training"})
            continue
        rows.append({"method": "flowmc_sim", "calls": sim.calls, **summary(_draws(eng, p.names), exact)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def emulator_log_likelihood(emu, p: Problem):
    obs = torch.as_tensor(np.asarray(p.observed), dtype=torch.float64)

    def log_prob(theta: dict) -> torch.Tensor:
        x = torch.stack([theta[k].to(torch.float64) for k in p.names], -1)
        mean, sd = emu.mean_and_std(x)
        var = p.noise ** 2 + sd ** 2
        return (-0.5 * ((mean - obs) ** 2 / var + torch.log(var))).sum(-1).to(theta[p.names[0]].dtype)

    return log_prob


def oneshot(p: Problem, runs: list[int], seed: int = 0) -> list[dict]:
    rows, exact = [], reference_draws(p)
    for n in sorted(runs):
        sim = Counted(p)
        emu_engine = EmulateEngine(sim, {k: p.bounds[k] for k in p.names}, budget=n, seed=seed, device="cpu")
        while not emu_engine.done():
            emu_engine.step()
        emu = emu_engine.get_emulator()
        eng = FlowMCEngine(emulator_log_likelihood(emu, p), params=list(p.names),
                           bounds={k: p.bounds[k] for k in p.names}, n_chains=64, n_loops=20,
                           device="cpu", dtype="float64", seed=seed)
        while not eng.done():
            eng.step()
        rows.append({"method": "oneshot", "calls": sim.calls, **summary(_draws(eng, p.names), exact)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def calibrate(p: Problem, seed: int = 0, initial: int | None = None, per_round: int | None = None,
              rounds: int = 10, until: str = "move<0.05") -> list[dict]:
    """``calibrate`` with the given schedule, scored after every round (its draws then)."""
    sim = Counted(p)
    eng = CalibrateEngine(sim, {k: p.bounds[k] for k in p.names}, observed=np.asarray(p.observed), noise=p.noise,
                          rounds=rounds, until=until, initial_runs=initial, runs_per_round=per_round, n_check=0,
                          device="cpu", seed=seed)
    rows, exact, seen = [], reference_draws(p), 0
    while not eng.done():
        eng.step()
        if len(eng.state.history) > seen:
            seen = len(eng.state.history)
            h = eng.state.history.rows()[-1]
            rows.append({"method": "calibrate", "round": seen - 1, "calls": sim.calls, "move": h["move"],
                         "emulator_sd": h["emulator_sd"], **summary(eng.state.draws, exact)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problem", choices=sorted(PROBLEMS), default="oscillator")
    ap.add_argument("--method", choices=["flowmc_sim", "oneshot", "calibrate"], default="oneshot")
    ap.add_argument("--runs", type=int, nargs="+", default=[25, 50, 100], help="oneshot: simulator runs")
    ap.add_argument("--calls", type=int, nargs="+", default=[2000, 10000, 50000], help="flowmc_sim: checkpoints")
    ap.add_argument("--initial", type=int, default=None, help="calibrate: runs over the prior")
    ap.add_argument("--per-round", type=int, default=None, help="calibrate: runs per round")
    ap.add_argument("--rounds", type=int, default=10, help="calibrate: rounds at most")
    ap.add_argument("--until", default="move<0.05", help="calibrate: target")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    p = PROBLEMS[args.problem]
    t0 = time.perf_counter()
    if args.method == "flowmc_sim":
        flowmc_sim(p, args.calls, args.seed)
    elif args.method == "calibrate":
        calibrate(p, args.seed, args.initial, args.per_round, args.rounds, args.until)
    else:
        oneshot(p, args.runs, args.seed)
    print(f"# {args.problem} {args.method}: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()

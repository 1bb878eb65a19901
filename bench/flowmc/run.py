"""Flow-MCMC benchmark: sciml_lab.flowmc beside flowMC, NumPyro NUTS and emcee.

Every sampler gets the same budget of target evaluations per target (a gradient
evaluation counts as one). For the two flow-MCMC samplers the budget is
``chains x loops x (local + global steps)`` with identical settings; NUTS runs 4
chains with warm-up = samples sized from a pilot run's tree depth; emcee runs
``max(32, 2 dim + 2)`` walkers for ``budget / walkers`` steps and keeps the second half.

Per target it prints: wall time (JAX compile time apart: the first, tiny run of the
JAX samplers, whose compiled functions the timed run reuses), smallest bulk ESS,
ESS per second, worst R-hat, the largest error of a posterior mean in posterior
standard deviations (against exact reference draws), the mode-weight total-variation
distance and, for the mixtures, the fraction of chains that visited all four modes.

Baselines are bench-only extras: ``pip install flowmc numpyro emcee``.

Usage::

    python bench/flowmc/run.py                       # every target, every sampler, small budget
    python bench/flowmc/run.py --targets mixture2,gauss50 --samplers sciml,flowmc --budget full
    python bench/flowmc/run.py --samplers sciml --kernel hmc --leapfrog 5   # HMC, same evaluations
    python bench/flowmc/run.py --samplers sciml --kernel auto --leapfrog 5  # MALA or HMC, chosen in training
    python bench/flowmc/run.py --samplers sciml --mass diag
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from targets import TARGETS, jax_log_prob, mode_weight_tv, torch_log_prob  # noqa: E402

from sciml_lab.flowmc.diagnostics import ess_bulk, rhat  # noqa: E402

BUDGETS = {
    # chains, training loops, production loops, local steps, global steps, flow epochs
    "tiny": dict(n_chains=32, n_training_loops=4, n_loops=4, n_local_steps=20, n_global_steps=20, n_epochs=5),
    "small": dict(n_chains=64, n_training_loops=8, n_loops=12, n_local_steps=30, n_global_steps=30, n_epochs=10),
    "medium": dict(n_chains=128, n_training_loops=16, n_loops=24, n_local_steps=30, n_global_steps=30, n_epochs=10),
    "full": dict(n_chains=128, n_training_loops=16, n_loops=24, n_local_steps=50, n_global_steps=50, n_epochs=20),
}


def evaluations(b: dict) -> int:
    return b["n_chains"] * (b["n_training_loops"] + b["n_loops"]) * (b["n_local_steps"] + b["n_global_steps"])


def score(name: str, draws: np.ndarray, wall: float, compile_s: float, evals: int) -> dict:
    """Quality numbers of ``draws`` (chain, draw, dim) against the exact reference."""
    t = TARGETS[name]
    ref = t.reference(400_000, np.random.default_rng(0))
    flat = draws.reshape(-1, t.dim)
    ok = np.isfinite(flat).all()
    row = {"target": name, "wall_s": wall, "compile_s": compile_s, "evals": evals}
    if not ok:
        return row | {"ess": float("nan"), "ess_s": float("nan"), "rhat": float("nan"), "mean_err": float("nan"),
                      "tv": float("nan"), "hop": float("nan")}
    ess = float(ess_bulk(draws).min())
    row.update(ess=ess, ess_s=ess / wall, rhat=float(rhat(draws).max()),
               mean_err=float(np.max(np.abs(flat.mean(0) - ref.mean(0)) / ref.std(0))))
    if t.modes is not None:
        row["tv"] = mode_weight_tv(flat, t.modes)
        d2 = ((draws[:, :, None, :] - t.modes[None, None]) ** 2).sum(-1)
        label = d2.argmin(-1)
        row["hop"] = float(np.mean([len(np.unique(c)) == len(t.modes) for c in label]))
    else:
        row["tv"] = row["hop"] = float("nan")
    return row


# --------------------------------------------------------------------------- samplers
#: options of sciml_lab's sampler (``--kernel``, ``--mass``, ``--leapfrog``)
SCIML_OPTIONS: dict = {}


def sciml_settings(b: dict, options: dict) -> dict:
    """The engine's settings for budget ``b``: with HMC, whose move costs ``n_leapfrog``
    gradient evaluations, the local steps are divided by ``n_leapfrog`` (rounded, at
    least 1) so that the evaluations stay those of the budget.

    Example:
        >>> sciml_settings(BUDGETS["small"], {"kernel": "hmc", "n_leapfrog": 5})["n_local_steps"]
        6
    """
    settings = dict(b, **options)
    if options.get("kernel") == "hmc":
        settings["n_local_steps"] = max(1, round(b["n_local_steps"] / options.get("n_leapfrog", 5)))
    return settings


def sciml_evaluations(s: dict) -> int:
    """Target evaluations of the engine's settings ``s`` (an HMC move counts ``n_leapfrog``).
    The gradient recomputed once per global block for chains that moved is not counted
    (at most one evaluation per chain and loop, < 2 % of this budget). With
    ``kernel="auto"`` the engine itself makes ``n_local_steps / n_leapfrog`` HMC moves in
    an HMC loop, so a loop costs the same either way (exactly when it divides)."""
    per_local = s.get("n_leapfrog", 5) if s.get("kernel") == "hmc" else 1
    return s["n_chains"] * (s["n_training_loops"] + s["n_loops"]) * (
        s["n_local_steps"] * per_local + s["n_global_steps"])


def run_sciml(name: str, b: dict, seed: int) -> dict:
    from sciml_lab.flowmc import FlowMCEngine

    t = TARGETS[name]
    settings = sciml_settings(b, SCIML_OPTIONS)
    eng = FlowMCEngine(torch_log_prob(t), dim=t.dim, device="cpu", seed=seed, **settings)
    t0 = time.perf_counter()
    while not eng.done():
        eng.step()
    wall = time.perf_counter() - t0
    draws = eng.snapshot()["posterior"]["x"].values
    row = score(name, draws, wall, 0.0, sciml_evaluations(settings))
    _DIAG_FRACTIONS.append(eng.run.diag_wall / max(eng.run.wall, 1e-9))
    if eng.schedule.auto:
        c = eng.kernel_choice()
        _AUTO_CHOICES.append(f"{name}: {c['choice']} (MALA "
                             + "/".join(f"{v:.3g}" for v in c["scores"]["mala"]) + ", HMC "
                             + "/".join(f"{v:.3g}" for v in c["scores"]["hmc"]) + ")")
    return row


#: share of each sciml run's time spent on the live R-hat/ESS (measured by the engine)
_DIAG_FRACTIONS: list[float] = []
#: with ``--kernel auto``: the kernel each sciml run chose, and its trial scores
_AUTO_CHOICES: list[str] = []


def _persistent_jax_cache() -> None:
    import tempfile

    import jax

    if getattr(jax.config, "jax_compilation_cache_dir", None) is None:
        jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="flowmc-bench-jax-"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def run_flowmc(name: str, b: dict, seed: int) -> dict:
    import jax
    import jax.numpy as jnp
    from flowMC.resource_strategy_bundle.RQSpline_MALA import RQSpline_MALA_Bundle
    from flowMC.Sampler import Sampler

    t = TARGETS[name]
    f = jax_log_prob(t)

    def logpdf(x, data):
        return f(x)

    def make(bb, key):
        bundle = RQSpline_MALA_Bundle(
            key, bb["n_chains"], t.dim, logpdf, bb["n_local_steps"], bb["n_global_steps"],
            bb["n_training_loops"], bb["n_loops"], bb["n_epochs"], batch_size=10_000)
        return Sampler(n_dim=t.dim, n_chains=bb["n_chains"], rng_key=key, resource_strategy_bundles=bundle,
                       checkpoint_interval=0)

    key = jax.random.PRNGKey(seed)
    init = jax.random.uniform(jax.random.PRNGKey(seed + 1), (b["n_chains"], t.dim), minval=-2.0, maxval=2.0)
    # a new Sampler builds new jitted functions: run the identical configuration twice
    # and time the second run, whose XLA executables come from the persistent cache
    _persistent_jax_cache()
    t0 = time.perf_counter()
    make(b, key).sample(init, {})
    first = time.perf_counter() - t0
    sampler = make(b, key)
    t0 = time.perf_counter()
    sampler.sample(init, {})
    wall = time.perf_counter() - t0
    compile_s = max(first - wall, 0.0)
    draws = np.asarray(sampler.resources["positions_production"].data)
    del jnp
    return score(name, draws, wall, compile_s, evaluations(b))


def run_numpyro(name: str, b: dict, seed: int) -> dict:
    import jax
    import numpyro
    from numpyro.infer import MCMC, NUTS

    t = TARGETS[name]
    f = jax_log_prob(t)

    def potential(x):
        return -f(x)

    chains = 4
    init = jax.random.uniform(jax.random.PRNGKey(seed + 1), (chains, t.dim), minval=-2.0, maxval=2.0)

    def run(n, key):
        mcmc = MCMC(NUTS(potential_fn=potential), num_warmup=n, num_samples=n, num_chains=chains,
                    chain_method="vectorized", progress_bar=False)
        t0 = time.perf_counter()
        mcmc.run(key, init_params=init, extra_fields=("num_steps",))
        return mcmc, time.perf_counter() - t0

    _persistent_jax_cache()
    pilot_n = 100
    pilot, _ = run(pilot_n, jax.random.PRNGKey(seed + 2))
    steps_per_iter = float(np.mean(np.asarray(pilot.get_extra_fields()["num_steps"])))
    n = max(50, int(evaluations(b) / (chains * 2 * max(steps_per_iter, 1.0))))
    _, first = run(n, jax.random.PRNGKey(seed))
    mcmc, wall = run(n, jax.random.PRNGKey(seed))  # the same run again, compiled code cached
    compile_s = max(first - wall, 0.0)
    draws = np.asarray(mcmc.get_samples(group_by_chain=True))
    used = int(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum() * 2)  # warm-up ~ sampling
    del numpyro
    return score(name, draws, wall, compile_s, used)


def run_emcee(name: str, b: dict, seed: int) -> dict:
    import emcee
    import torch

    t = TARGETS[name]
    f = torch_log_prob(t)
    walkers = max(32, 2 * t.dim + 2)
    steps = max(20, evaluations(b) // walkers)

    def log_prob(x):
        with torch.no_grad():
            return f(torch.as_tensor(x, dtype=torch.float64)).numpy()

    rng = np.random.default_rng(seed)
    init = rng.uniform(-2, 2, size=(walkers, t.dim))
    np.random.seed(seed)  # emcee draws from NumPy's global generator
    sampler = emcee.EnsembleSampler(walkers, t.dim, log_prob, vectorize=True)
    t0 = time.perf_counter()
    sampler.run_mcmc(init, steps, progress=False)
    wall = time.perf_counter() - t0
    draws = sampler.get_chain()[steps // 2:].transpose(1, 0, 2)  # (walker, draw, dim)
    return score(name, draws, wall, 0.0, walkers * steps)


SAMPLERS = {"sciml": run_sciml, "flowmc": run_flowmc, "numpyro": run_numpyro, "emcee": run_emcee}


def fmt(v, spec):
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--samplers", default=",".join(SAMPLERS))
    p.add_argument("--budget", choices=tuple(BUDGETS), default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch/XLA CPU threads (default 1)")
    p.add_argument("--out", default=None, help="also write the table (markdown) to this file")
    p.add_argument("--kernel", choices=("mala", "hmc", "rw", "auto"), default=None,
                   help="sciml_lab's local kernel (default: the engine's, MALA); auto: MALA or HMC "
                        "chosen in training by whitened jump per evaluation")
    p.add_argument("--leapfrog", type=int, default=5, help="leapfrog steps per HMC move (default 5)")
    p.add_argument("--mass", choices=("full", "diag", "identity"), default=None,
                   help="sciml_lab's mass matrix (default: the engine's, full)")
    p.add_argument("--step-adaptation", choices=("pooled", "chain"), default=None,
                   help="sciml_lab's step-size adaptation (default: the engine's, pooled)")
    p.add_argument("--step-jitter", type=float, default=None,
                   help="sciml_lab's log-uniform step-size jitter half-width (default: the engine's, 0)")
    p.add_argument("--step-scale", choices=("fixed", "gradient"), default=None,
                   help="sciml_lab's MALA step at a point (default: the engine's, fixed)")
    p.add_argument("--train-reweighted", type=float, default=None,
                   help="sciml_lab's share of flow-training points resampled from global proposals by "
                        "importance weight (default: the engine's, 0)")
    args = p.parse_args(argv)
    if args.train_reweighted is not None:
        SCIML_OPTIONS["train_reweighted"] = args.train_reweighted
    if args.step_scale:
        SCIML_OPTIONS["step_scale"] = args.step_scale
    if args.step_adaptation:
        SCIML_OPTIONS["step_adaptation"] = args.step_adaptation
    if args.step_jitter is not None:
        SCIML_OPTIONS["step_jitter"] = args.step_jitter
    if args.kernel:
        SCIML_OPTIONS["kernel"] = args.kernel
        if args.kernel in ("hmc", "auto"):
            SCIML_OPTIONS["n_leapfrog"] = args.leapfrog
    if args.mass:
        SCIML_OPTIONS["mass"] = args.mass
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
                          if args.threads == 1 else "")
    import torch

    torch.set_num_threads(args.threads)
    b = BUDGETS[args.budget]
    label = "sciml" + "".join(f" {k}={v}" for k, v in SCIML_OPTIONS.items())
    lines = [f"budget '{args.budget}': {b} -> {evaluations(b):,} target evaluations per sampler and target; "
             f"{args.threads} CPU thread(s)" + (f"; {label}" if SCIML_OPTIONS else ""), "",
             "| target | sampler | wall s | compile s | evals | min ESS | ESS/s | max R-hat | mean err (sd) "
             "| mode TV | chains in all modes |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name in args.targets.split(","):
        for s in args.samplers.split(","):
            try:
                r = SAMPLERS[s](name, b, args.seed)
            except ImportError as exc:
                r = {"target": name, "error": f"not installed ({exc.name})"}
            except Exception as exc:  # noqa: BLE001 - a failing baseline is a row, not a crash
                r = {"target": name, "error": f"{type(exc).__name__}: {str(exc)[:80]}"}
            shown = label if s == "sciml" else s
            if "error" in r:
                line = f"| {name} | {shown} | {r['error']} | | | | | | | | |"
            else:
                line = (f"| {name} | {shown} | {r['wall_s']:.1f} | {r['compile_s']:.1f} | {r['evals']:,} | "
                        f"{fmt(r['ess'], '.0f')} | {fmt(r['ess_s'], '.0f')} | {fmt(r['rhat'], '.3f')} | "
                        f"{fmt(r['mean_err'], '.3f')} | {fmt(r['tv'], '.3f')} | {fmt(r['hop'], '.2f')} |")
            lines.append(line)
            print(line, flush=True)
    if _DIAG_FRACTIONS:
        lines += ["", "sciml: live R-hat/ESS took " + ", ".join(f"{100 * f:.1f}" for f in _DIAG_FRACTIONS)
                  + " % of the sampling time (targets in order)"]
        print(lines[-1])
    if _AUTO_CHOICES:
        lines += ["", "sciml kernel=auto chose (whitened squared jump per evaluation in each trial loop): "
                  + "; ".join(_AUTO_CHOICES)]
        print(lines[-1])
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

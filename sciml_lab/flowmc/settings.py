"""The flow-MCMC sampler's settings: one frozen dataclass that is the engine's signature.

Every option is declared once below (default, check, help, ``%sciml flowmc`` flag);
the engine's keyword arguments, its ``config()``/``from_config()`` and the magic's
options all come from this declaration.

Example:
    >>> s = FlowMCSettings(dim=2, until="rhat<1.01")
    >>> s.loops, FlowMCSettings(dim=2).loops     # the loop cap depends on ``until``
    (200, 20)
    >>> FlowMCSettings(dim=2, n_chains=1)
    Traceback (most recent call last):
    ...
    ValueError: n_chains: expected an integer >= 2, got 1
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch

from ..kit.checks import at_least, boolean, number, one_of, optional, pair, text, tuple_of
from ..kit.device import resolve_device, resolve_dtype
from ..kit.protocol import parse_criteria
from ..kit.settings import Settings, option

__all__ = ["FlowMCSettings", "METRICS", "KERNEL_CHOICES"]

#: the live metrics of a loop (``until`` may name any of them)
METRICS = ("lp_mean", "local_acceptance", "global_acceptance", "flow_loss", "rhat", "ess", "step_size",
           "production", "loop", "stuck_chains")
KERNEL_CHOICES = ("mala", "hmc", "rw", "auto")


def _device(name: str, v: Any) -> str:
    resolve_device(v)  # a clear error now, not at the first step
    return str(v) if isinstance(v, torch.device) else text(name, v)


def _dtype(name: str, v: Any) -> str:
    return "float64" if resolve_dtype(v) == torch.float64 else "float32"


def _gradient(name: str, v: Any) -> "bool | str":
    return v if v == "auto" else boolean(name, v)


def _shapes(name: str, v: Any) -> Any:
    """Named parameters as given (checked by :class:`~sciml_lab.flowmc.target.Target`);
    a stored config's shape lists become tuples."""
    if isinstance(v, Mapping):
        return {k: tuple(s) if isinstance(s, list) else s for k, s in v.items()}
    return v


def _bounds(name: str, v: Any) -> Any:
    if v is None:
        return None
    if not isinstance(v, Mapping):
        raise ValueError(f"{name}: expected a dict {{name: (low, high)}}, got {v!r}")
    return {k: tuple(b) for k, b in v.items()}


@dataclasses.dataclass(frozen=True)
class FlowMCSettings(Settings):
    """The settings of :class:`~sciml_lab.flowmc.engine.FlowMCEngine`.

    dim / params / bounds: the space (``dim`` without ``params``; inferred from ``init``);
    ``params`` names ``["a", "b"]`` or shapes ``{"theta": 3}``; ``bounds``
    ``{name: (low, high)}`` with ``None`` for an open side.

    kernel ``"auto"``: the training loops choose between MALA and HMC. After MALA
    burn-in loops, four *split* trial loops (:func:`~sciml_lab.flowmc.adaptation.auto_trials`)
    run HMC on every fourth chain and MALA on the others, with the same target
    evaluations per chain (an HMC chain moves every ``n_leapfrog`` steps and holds in
    between), each kernel with its own step size adapted from its nominal one; the flow
    is fitted to the MALA chains' draws and the HMC chains' trajectory ends. Each kernel
    is scored in each trial loop by the mean squared jump of its chains' local draws in
    the coordinates whitened by the current mass matrix per target evaluation
    (:func:`~sciml_lab.flowmc.adaptation.whitened_jump_per_eval`; a MALA move costs 1
    gradient evaluation, an HMC move ``n_leapfrog``). The kernel with the larger mean
    score runs, on all chains, the remaining training loops and all production loops
    (the production chain is a fixed, valid Markov chain). After the trials an HMC loop
    makes ``max(1, round(n_local_steps / n_leapfrog))`` moves (equal evaluations).
    Measured (``bench/flowmc``, budget ``small``, seeds 0-2): HMC chosen on the
    Rosenbrocks (mean R-hat 1.10 and 1.12 vs MALA's 1.15 and 1.20, flowMC's 1.15 and
    1.20), MALA on the 50-D Gaussian and the mixtures, either on the funnel; every chain
    visits every mode of the 10-D mixture on seeds 0-6, but its smallest ESS there is
    0.84x MALA's in total. The trials used to be whole loops (MALA, HMC, HMC, MALA): the
    HMC loops' 5x fewer draws made the flow drop the mixture's lightest mode on a seed.
    The choice and both kernels' scores are in the run's attrs (``kernel``,
    ``kernel_choice``), the kernel of each loop (``split`` for a trial) and the MALA
    chains' score in ``/diagnostics`` (``local_kernel``, ``jump_per_eval``).

    mass: the mass matrix learned in training is the chains' pooled covariance when
    their cloud looks Gaussian, else their within-chain covariance
    (:func:`~sciml_lab.flowmc.kernels.mass_cholesky`).

    Hard geometry (funnels, bananas; all off by default): ``step_adaptation="chain"``
    adapts one step size per chain in training, and production moves draw one of them
    at random; ``step_jitter`` multiplies each move's step by a log-uniform factor;
    ``step_scale="gradient"`` scales MALA's step at a point by the whitened gradient's
    inverse root mean square there (:func:`~sciml_lab.flowmc.kernels.gradient_step_scale`);
    all keep the moves exact (in ``kernel="auto"``'s split trial loops the step sizes are
    shared and not jittered). ``train_reweighted`` fits the flow also to the last
    training loop's global proposals resampled by importance weight
    (:func:`~sciml_lab.flowmc.kernels.importance_resample`), so that it reaches where
    the chains have not been yet. Measured in ``bench/flowmc/README.md``.

    until: checked on the production draws after each production loop whose R-hat/ESS
    were computed (they take at most ``DIAGNOSTICS_SHARE`` of the time, and always after
    the last loop of the budget).

    Example:
        >>> FlowMCSettings(dim=3, kernel="auto").config()["kernel"]
        'auto'
    """

    dim: int | None = option(None, optional(at_least(1)), "number of dimensions (without params/init)",
                             flag="--dim")
    params: Any = option(None, _shapes, "named parameters: names or {name: shape}")
    bounds: Any = option(None, _bounds, "{name: (low, high)}, None for an open side")
    n_chains: int = option(128, at_least(2), "number of chains", flag="--chains")
    n_loops: int | None = option(None, optional(at_least(1)), "production loops (default 20; 200 with --until)",
                                 flag="--loops")
    n_training_loops: int = option(8, at_least(1), "training loops", flag="--training-loops")
    n_local_steps: int = option(30, at_least(1), "local steps per loop", flag="--local-steps")
    n_global_steps: int = option(30, at_least(0), "global (flow) steps per loop", flag="--global-steps")
    n_epochs: int = option(10, at_least(0), "flow epochs per training loop", flag="--epochs")
    kernel: str = option("mala", one_of(*KERNEL_CHOICES), "local kernel (default mala; auto: MALA or HMC "
                         "chosen in training)", flag="--kernel")
    n_leapfrog: int = option(8, at_least(1), "leapfrog steps per HMC move", flag="--leapfrog")
    step_adaptation: str = option("pooled", one_of("pooled", "chain"), "step size adapted in training: one for "
                                  "all chains (pooled) or one per chain (chain: production moves draw one of "
                                  "the chains' step sizes at random)", flag="--step-adaptation")
    step_scale: str = option("fixed", one_of("fixed", "gradient"), "MALA's step size at a point: fixed, or "
                             "scaled by the whitened gradient's inverse root mean square there (a local scale: "
                             "small in a funnel's neck, large in its mouth; exact, the acceptance ratio "
                             "accounts for it)", flag="--step-scale")
    step_jitter: float = option(0.0, number(0, 5), "each local move's step size is multiplied by exp(jitter * u), "
                                "u uniform on [-1, 1] (0: off)", flag="--step-jitter")
    target_acceptance: float | None = option(None, optional(number(0, 1, open_low=True)),
                                             "local acceptance the step size adapts to (default per kernel: "
                                             "0.574 MALA, 0.75 HMC, 0.3 random walk)")
    mass: str = option("full", one_of("full", "diag", "identity"), "preconditioning learned in training: full, "
                       "diag or identity", flag="--mass")
    flow_layers: int = option(4, at_least(1), "coupling layers", flag="--flow-layers")
    flow_hidden: tuple[int, ...] = option((64, 64), tuple_of(at_least(1), min_len=1),
                                          "hidden widths, e.g. '128,128'", flag="--flow-hidden")
    flow_bins: int = option(8, at_least(2), "spline bins of the flow")
    learning_rate: float = option(1e-3, number(0, open_low=True), "flow training's learning rate")
    batch_size: int = option(1024, at_least(1), "flow training's batch size")
    max_train_points: int = option(10_000, at_least(2), "most points the flow is fitted to per training loop")
    defensive: float = option(0.1, number(0, 1), "weight of a wide Gaussian mixed into the flow proposal, so "
                              "that its tails are never too light")
    train_temperature: float = option(1.0, number(1), "widening of the flow's base normal in training loops "
                                      "(1: off; 1.25 helps a little on the 2-D Rosenbrock, costs on mixtures)")
    train_reweighted: float = option(0.0, number(0, 0.9), "share of the flow's training points drawn from the "
                                     "last training loop's global proposals by importance weight (target over "
                                     "proposal, truncated): the fit then reaches tails the chains have not (0: off)")
    train_window: int = option(1, at_least(1), "the flow is fitted to the local draws of the last N training "
                               "loops (3 helped the 10-D mixture, hurt the 50-D Gaussian)")
    until: str | None = option(None, optional(text), "convergence target, e.g. 'rhat<1.01 ess>2000'",
                               flag="--until")
    thin: int = option(1, at_least(1), "keep every N-th draw", flag="--thin")
    init_box: tuple[float, float] = option((-2.0, 2.0), pair(number()), "box of the default initial points")
    gradient: Any = option("auto", _gradient, "whether log_prob has a torch gradient (auto: try it)")
    device: str = option("auto", _device, "auto, cpu or cuda", flag="--device")
    dtype: str = option("float32", _dtype, "float32 or float64", flag="--dtype")
    seed: int = option(0, at_least(0), "random seed (a CPU run is deterministic given it)", flag="--seed")
    chunk: int = option(65536, at_least(1), "log_prob is called on at most this many points at once",
                        in_config=False)

    def validate(self) -> None:
        parse_criteria(self.until, known=METRICS)
        if self.step_scale == "gradient" and self.kernel not in ("mala", "auto"):
            raise ValueError(f"step_scale: 'gradient' scales MALA's step, but kernel is {self.kernel!r} "
                             "(use kernel='mala' or 'auto', or step_scale='fixed')")

    @property
    def loops(self) -> int:
        """The production loops of the budget: ``n_loops``, or a cap of 200 with
        ``until`` (20 without)."""
        if self.n_loops is not None:
            return self.n_loops
        return 200 if self.until and parse_criteria(self.until) else 20

    @property
    def auto(self) -> bool:
        """Whether the local kernel is chosen in training (``kernel="auto"``)."""
        return self.kernel == "auto"

"""The result of a flow-MCMC run as an ``xarray.DataTree`` in the ArviZ schema:
``/posterior`` and ``/sample_stats`` (production draws), ``/warmup_posterior`` and
``/warmup_sample_stats`` (training draws), ``/flow_samples`` and ``/diagnostics``.

Example:
    >>> from sciml_lab.flowmc import FlowMCEngine
    >>> eng = FlowMCEngine(lambda x: -0.5 * (x ** 2).sum(1), dim=2, n_chains=4, n_local_steps=4,
    ...                    n_global_steps=4, n_epochs=1, n_training_loops=1, n_loops=1, device="cpu")
    >>> while not eng.done(): _ = eng.step()
    >>> sorted(snapshot(eng).children)
    ['diagnostics', 'flow_samples', 'posterior', 'sample_stats', 'warmup_posterior', 'warmup_sample_stats']
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import torch
import xarray as xr

from .kernels import DIVERGENCE_THRESHOLD, divergent
from .state import Draws
from .target import Target

if TYPE_CHECKING:
    from .engine import FlowMCEngine

__all__ = ["snapshot", "draws_group", "named"]


def named(target: Target, x: np.ndarray, lead: tuple[str, ...]) -> dict[str, tuple]:
    """Flat points ``(*lead, dim)`` as named variables with ArviZ-style dims.

    Example:
        >>> t = Target(lambda p: p["a"], params={"a": 1, "w": 2})
        >>> {k: v[0] for k, v in named(t, np.zeros((3, 3)), ("draw",)).items()}
        {'a': ('draw',), 'w': ('draw', 'w_dim_0')}
    """
    out = {}
    for name, sl in target.slices.items():
        shape = target.shapes[name]
        dims = lead + tuple(f"{name}_dim_{i}" for i in range(len(shape)))
        out[name] = (dims, x[..., sl].reshape(*x.shape[:-1], *shape))
    return out


def _sample_stats(lp_user: np.ndarray, draws: Draws, group: str, coords: dict) -> xr.Dataset:
    energy = draws.cat(group, "energy_error").double().numpy()
    return xr.Dataset(
        {"lp": (("chain", "draw"), lp_user, {"long_name": "log density of the draw (user's log_prob)"}),
         "accepted": (("chain", "draw"), draws.cat(group, "accepted").numpy()),
         "kernel": (("chain", "draw"), draws.cat(group, "kernel").numpy(),
                    {"flag_values": [0, 1], "flag_meanings": "local global"}),
         "energy_error": (("chain", "draw"), energy, {
             "long_name": "energy error of the local proposal (minus its log Metropolis-Hastings ratio)",
             "comment": "NaN for a global (flow) move or a chain holding in a split trial loop; "
                        "inf for a proposal with a non-finite log density or gradient"}),
         "diverging": (("chain", "draw"), divergent(energy), {
             "long_name": f"divergent local proposal (energy error > {DIVERGENCE_THRESHOLD:g} or not finite)"})},
        coords=coords,
    )


def draws_group(target: Target, draws: Draws, group: str) -> tuple[xr.Dataset, xr.Dataset] | None:
    """The draws of ``group`` (``"posterior"`` or ``"warmup"``) in the user's space as
    ``(posterior, sample_stats)`` datasets; None before the first draw."""
    if draws.empty(group):
        return None
    u = draws.cat(group, "u")
    c, n, dim = u.shape
    flat = u.reshape(-1, dim).to(target.dtype).to(target.device)
    x = target.constrain(flat)
    log_j = target.log_jacobian(flat)
    lp_user = draws.cat(group, "lp").to(target.device) - log_j.reshape(c, n)
    x = x.reshape(c, n, dim).detach().cpu().double().numpy()
    coords = {"chain": np.arange(c), "draw": np.arange(n)}
    posterior = xr.Dataset(named(target, x, ("chain", "draw")), coords=coords)
    for name, (low, high) in target.bounds.items():
        posterior[name].attrs.update(lower_bound=low, upper_bound=high)  # "bounds" means a variable in CF
    return posterior, _sample_stats(lp_user.detach().cpu().double().numpy(), draws, group, coords)


def flow_samples(eng: "FlowMCEngine", n: int = 1000) -> xr.Dataset:
    """Independent draws from the current flow, in the user's space."""
    # a generator of its own: looking at the flow must not change the chains
    gen = torch.Generator(device=eng.target.device).manual_seed(eng.settings.seed * 1_000_003 + eng.run.loop)
    u, _ = eng.flow.sample_and_log_prob(n, gen)
    x = eng.target.constrain(u).detach().cpu().double().numpy()
    return xr.Dataset(named(eng.target, x, ("sample",)), coords={"sample": np.arange(n)},
                      attrs={"description": "independent draws from the current normalizing flow"})


def snapshot(eng: "FlowMCEngine") -> xr.DataTree:
    """The run's result so far (see the module's docstring)."""
    groups: dict[str, xr.Dataset] = {}
    for group, prefix in (("posterior", "/"), ("warmup", "/warmup_")):
        got = draws_group(eng.target, eng.run.draws, group)
        if got is not None:
            groups[f"{prefix}posterior"], groups[f"{prefix}sample_stats"] = got
    if eng.run.loop >= 1 and eng.settings.n_epochs:
        groups["/flow_samples"] = flow_samples(eng)
    diag = eng.run.diagnostics.to_dataset()
    diag["production"] = diag["production"].astype(np.int8)
    groups["/diagnostics"] = diag
    tree = xr.DataTree.from_dict(groups)
    tree.attrs.update(
        parameters=json.dumps(eng.target.names),
        kernel=eng.adapt.kernel, kernel_choice=json.dumps(eng.kernel_choice()),
        phase="production" if eng.schedule.production else "training",
        step_size=float(eng.adapt.eps), mass_estimator=eng.adapt.mass_estimator,
        stuck_chains=json.dumps(eng.run.stuck[:100]), note=eng.monitor.note,
        inference_library="sciml_lab.flowmc",
    )
    return tree

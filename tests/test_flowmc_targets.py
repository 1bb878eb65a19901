"""Flow-MCMC on the issue's 10-D mixture target.

CPU, fixed seeds, the engine's default kernels and flow; tolerances are justified
where they are set.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sciml_lab.flowmc import FlowMCEngine
from test_flowmc import run  # run an engine to its end, return the last metrics

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


# four unit Gaussians at the corners (+-5, +-5) of the first two coordinates, with
# fixed offsets of +-3 in the other eight: the nearest modes are 10 apart in x0/x1
# and further apart in 10-D; the 0.1 / 0.2 / 0.3 / 0.4 weights are unequal
CORNERS = torch.tensor([[-5.0, -5.0], [5.0, -5.0], [-5.0, 5.0], [5.0, 5.0]])
OFFSETS = 3.0 * torch.tensor([[1, -1, 1, 1, -1, 1, -1, -1], [-1, -1, 1, -1, 1, 1, 1, -1],
                              [1, 1, -1, -1, -1, 1, 1, 1], [-1, 1, -1, 1, 1, -1, -1, 1]], dtype=torch.float32)
MEANS10 = torch.cat([CORNERS, OFFSETS], dim=1)
WEIGHTS = torch.tensor([0.1, 0.2, 0.3, 0.4])


def mixture10(x: torch.Tensor) -> torch.Tensor:
    d2 = ((x[:, None, :] - MEANS10.to(x)) ** 2).sum(-1)
    return torch.logsumexp(torch.log(WEIGHTS.to(x)) - 0.5 * d2, dim=1)


def mode_labels(x: np.ndarray) -> np.ndarray:
    """(chain, draw, 10) -> the nearest mode of every draw."""
    t = torch.as_tensor(x, dtype=torch.float32)
    return ((t[..., None, :] - MEANS10) ** 2).sum(-1).argmin(-1).numpy()


def mode_weight_tv(labels: np.ndarray) -> float:
    w = np.bincount(labels.ravel(), minlength=4) / labels.size
    return 0.5 * float(np.abs(w - WEIGHTS.numpy()).sum())


def test_mixture10_weights_flow_mcmc_right_mala_alone_wrong():
    common = dict(n_chains=64, n_training_loops=6, n_loops=6, n_local_steps=20, n_epochs=10, device="cpu",
                  seed=1)
    flow = FlowMCEngine(mixture10, dim=10, n_global_steps=20, **common)
    m = run(flow)
    labels = mode_labels(flow.snapshot()["posterior"]["x"].values)
    tv_flow = mode_weight_tv(labels)
    # 64 chains of 240 production draws, each chain hopping: the mode indicator's
    # ESS is in the thousands, so each weight is known to ~0.01; TV < 0.06 is a
    # loose bound that a wrong mixture (TV >= 0.1) cannot meet
    assert tv_flow < 0.06, tv_flow
    assert m["global_acceptance"] > 0.1, m
    # every chain crosses between modes in production (the "every chain hopping")
    visits = np.array([len(np.unique(chain)) for chain in labels])
    assert (visits >= 3).mean() >= 0.9, visits

    mala = FlowMCEngine(mixture10, dim=10, n_global_steps=0, **common)
    run(mala)
    labels = mode_labels(mala.snapshot()["posterior"]["x"].values)
    # without the flow no chain leaves its mode: the weights are those of the start
    assert all(len(np.unique(chain)) == 1 for chain in labels)
    assert mode_weight_tv(labels) > 0.1


def banana(x: torch.Tensor) -> torch.Tensor:
    """x0 ~ N(0, 1), x1 | x0 ~ N(x0^2, 0.3^2): a curved ridge, narrow across and long
    along, with exact moments E[x1] = 1, Var[x0] = 1, Var[x1] = Var(x0^2) + 0.09 = 2.09."""
    return -0.5 * x[:, 0] ** 2 - 0.5 * ((x[:, 1] - x[:, 0] ** 2) / 0.3) ** 2


@pytest.mark.parametrize("kernel", ["mala", "hmc"])
def test_banana_started_at_exact_draws_stays_exact(kernel):
    """Every kernel (local moves, flow training, global moves) must leave the target
    invariant: 4096 chains started at exact draws are still exact draws after
    training and production, whatever the flow learned. A wrong acceptance ratio, a
    biased adaptation or an unadjusted step would move the moments."""
    n = 4096
    g = torch.Generator().manual_seed(11)
    x0 = torch.randn(n, generator=g)
    init = torch.stack([x0, x0 ** 2 + 0.3 * torch.randn(n, generator=g)], dim=1)
    eng = FlowMCEngine(banana, dim=2, init=init, kernel=kernel, n_chains=n, n_training_loops=2, n_loops=2,
                       n_local_steps=20, n_global_steps=20, n_epochs=5, device="cpu", seed=4)
    m = run(eng)
    assert m["global_acceptance"] > 0.3, m  # the flow really moved chains
    last = eng.snapshot()["posterior"]["x"].values[:, -1]  # one draw per chain: 4096 draws
    # standard errors of 4096 exact draws: mean of x0 1/64; mean of x1 sqrt(2.09)/64 = 0.023;
    # Var[x0] sqrt(2/4096) = 0.022; Var[x1] sqrt((mu4 - 2.09^2)/4096) = 0.12, with
    # mu4 = E[(x1 - 1)^4] = 60 + 6 * 2 * 0.09 + 3 * 0.3^4 = 61.1. Bounds: 4.5 of those.
    assert abs(last[:, 0].mean()) < 4.5 / 64
    assert abs(last[:, 1].mean() - 1.0) < 4.5 * 0.023
    assert abs(last[:, 0].var() - 1.0) < 4.5 * 0.022
    assert abs(last[:, 1].var() - 2.09) < 4.5 * 0.12

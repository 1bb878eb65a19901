"""Specification of the flow fitted to importance-resampled global proposals
(``train_reweighted``): the resampled points follow the target, not the proposal (a
run with them keeps a Gaussian's moments: ``test_flowmc_steps.py``).
"""

from __future__ import annotations

import math

import pytest
import torch

from sciml_lab.flowmc.kernels import importance_resample
from sciml_lab.flowmc.settings import FlowMCSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


def test_importance_resampled_proposals_follow_the_target():
    # proposals from N(0, 1.5^2), target N(0, 2^2): the proposals' variance is 2.25, the
    # resampled points' should be the target's 4. The weights' effective sample size is
    # ~12 600 of 20 000 (E_q[w^2] / E_q[w]^2 = 1.59), so the resampled variance has an sd
    # of ~0.15 (measured 3.72-4.15 over seeds 0-4); the truncation at sqrt(N) times the
    # mean weight removes almost nothing here. [3.4, 4.6] is a 4 sd band: 4 of 5 seeds
    good = 0
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        y = 1.5 * torch.randn(20000, 1, generator=g, dtype=torch.float64)
        lp = -0.5 * (y[:, 0] / 2) ** 2
        lq = -0.5 * (y[:, 0] / 1.5) ** 2 - math.log(1.5)
        r = importance_resample(torch.cat([y, lp[:, None], lq[:, None]], 1), 0.5, 20000, g)
        # asked for 20 000 points, it gives no more than the weights' effective number:
        # ~12 600 untruncated, ~15 000 after the truncation (which evens the weights)
        assert 10000 < r.shape[0] < 17000 and r.shape[1] == 1
        assert float(r.var()) > 3.0  # always far from the proposal's 2.25
        good += 3.4 < float(r.var()) < 4.6 and abs(float(r.mean())) < 0.2
    assert good >= 4


def test_importance_resample_share_and_degenerate_weights():
    g = torch.Generator().manual_seed(0)
    rows = torch.cat([torch.randn(100, 2, generator=g), torch.zeros(100, 1), torch.zeros(100, 1)], 1)
    # a share of 0.25 of the final set: 1/3 as many points as the 300 there are
    assert importance_resample(rows, 0.25, 300, g).shape == (100, 2)
    # no finite weight (every proposal outside the target's support): nothing to add
    rows[:, 2] = -math.inf
    assert importance_resample(rows, 0.5, 300, g).shape == (0, 2)


def test_train_reweighted_is_checked():
    with pytest.raises(ValueError, match="train_reweighted"):
        FlowMCSettings(dim=2, train_reweighted=1.0)

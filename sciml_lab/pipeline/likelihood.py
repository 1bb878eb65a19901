"""The calibration likelihood on an emulator: the observations' noise and the
emulator's own predictive uncertainty, both in the variance.

For observation ``j`` with noise sd ``s_j`` and an emulator predicting mean ``m_j``
and sd ``e_j`` at the parameters, the log-likelihood is the Gaussian one with
variance ``s_j² + e_j²``: where the emulator is unsure the posterior is wider, not
falsely sharp. Outputs are taken independent given the parameters.

Example:
    >>> import torch
    >>> from sciml_lab.emulate import Emulator
    >>> x = np.linspace(0, 1, 12)[:, None]
    >>> emu = Emulator(["k"], {"k": (0, 1)}, layout=[{"name": "y", "dims": ["t"], "shape": [2]}])
    >>> emu = emu.fit(x, np.hstack([x, 2 * x]))
    >>> obs, sd = flat_observations([0.5, 1.0], 0.1, emu.layout)
    >>> lik = EmulatorLikelihood(emu, obs, sd, ["k"])
    >>> lp = lik({"k": torch.tensor([0.5, 0.9], dtype=torch.float64)})
    >>> bool(lp[0] > lp[1])
    True
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

__all__ = ["flat_observations", "EmulatorLikelihood", "emulator_sd_ratio"]


def _flat(name: str, values: Any, layout: Any) -> np.ndarray:
    """``values`` (array-like, or a dict by output name) in the emulator's column order."""
    if isinstance(values, Mapping):
        names = [v["name"] for v in layout.variables]
        missing = [k for k in names if k not in values]
        if missing:
            raise ValueError(f"{name}: the simulator's outputs {missing} are missing; expected a dict with {names}")
        parts = [np.ravel(np.asarray(values[k], dtype=float)) for k in names]
        for k, p, sl in zip(names, parts, layout.slices()):
            n = sl.stop - sl.start
            if p.size not in (1, n) or (name == "observed" and p.size != n):
                raise ValueError(f"{name}: output {k!r} has {n} values, got {p.size}")
        return np.concatenate([np.broadcast_to(p, (sl.stop - sl.start,)) for p, sl in zip(parts, layout.slices())])
    a = np.ravel(np.asarray(values, dtype=float))
    if a.size == 1 and name == "noise":
        return np.full(layout.size, float(a[0]))
    if a.size != layout.size:
        raise ValueError(f"{name}: expected {layout.size} values, one per value the simulator returns "
                         f"({', '.join(layout.labels()[:4])}{', ...' if layout.size > 4 else ''}), got {a.size}")
    return a


def flat_observations(observed: Any, noise: Any, layout: Any) -> tuple[np.ndarray, np.ndarray]:
    """Observations and their noise sd as vectors in the emulator's column order
    (``layout``: the simulator's :class:`~sciml_lab.emulate.layout.OutputLayout`);
    a single noise value applies to every observation."""
    return _flat("observed", observed, layout), _flat("noise", noise, layout)


class EmulatorLikelihood:
    """``log p(observed | theta)`` on an emulator (see the module docstring), a torch
    function of a dict of parameter tensors, differentiable for the gradient kernels."""

    def __init__(self, emulator: Any, observed: np.ndarray, noise: np.ndarray, names: Sequence[str]):
        self.emulator, self.names = emulator, list(names)
        self.observed = torch.as_tensor(observed, dtype=torch.float64)
        self.noise_var = torch.as_tensor(noise, dtype=torch.float64) ** 2

    def __call__(self, theta: Mapping[str, torch.Tensor]) -> torch.Tensor:
        first = theta[self.names[0]]
        x = torch.stack([theta[k].to(torch.float64).reshape(first.shape[0]) for k in self.names], -1)
        mean, sd = self.emulator.mean_and_std(x)
        var = self.noise_var + sd ** 2
        return (-0.5 * ((mean - self.observed) ** 2 / var + torch.log(var))).sum(-1).to(first.dtype)


def emulator_sd_ratio(emulator: Any, x: np.ndarray, noise: np.ndarray) -> float:
    """How unsure the emulator is where ``x`` (posterior draws) lie, against the
    noise: the median over the points of the largest ``emulator sd / noise sd`` over
    the outputs (well below 1: the emulator's error hardly widens the posterior)."""
    with torch.no_grad():
        _, sd = emulator.mean_and_std(torch.as_tensor(x, dtype=torch.float64))
    return float(np.median((sd.numpy() / np.asarray(noise)[None]).max(1)))

"""A calibration problem with an exact answer, for the pipeline's tests: a damped
oscillator solved by scipy (the simulator a scientist would write), observed with
noise, and its exact posterior on a grid from the oscillator's closed form."""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

TIMES = np.arange(0.5, 5.01, 0.5)
BOUNDS = {"omega": (0.5, 3.0), "zeta": (0.01, 0.5)}
TRUTH = {"omega": 1.7, "zeta": 0.12}
NOISE = 0.05


def oscillator(omega: float, zeta: float) -> np.ndarray:
    """x(t) of x'' + 2 zeta omega x' + omega^2 x = 0, x(0) = 1, x'(0) = 0, at TIMES."""
    def rhs(t, z):
        return [z[1], -2.0 * zeta * omega * z[1] - omega ** 2 * z[0]]

    return solve_ivp(rhs, (0.0, TIMES[-1]), [1.0, 0.0], t_eval=TIMES, rtol=1e-9, atol=1e-11).y[0]


def observed() -> np.ndarray:
    return oscillator(**TRUTH) + NOISE * np.random.default_rng(12345).normal(size=TIMES.size)


def closed_form(omega: np.ndarray, zeta: np.ndarray) -> np.ndarray:
    wd = omega * np.sqrt(1.0 - zeta ** 2)
    t = TIMES[None]
    return np.exp(-zeta * omega * t) * (np.cos(wd * t) + zeta * omega / wd * np.sin(wd * t))


def exact_moments(cells: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of (omega, zeta) under the uniform prior, on a grid zoomed
    onto the posterior's support (a first coarse pass finds it)."""
    lo, hi = np.array([b[0] for b in BOUNDS.values()]), np.array([b[1] for b in BOUNDS.values()])
    y = observed()
    for _ in range(2):
        axes = [lo[j] + (np.arange(cells) + 0.5) * (hi[j] - lo[j]) / cells for j in range(2)]
        om, ze = np.meshgrid(*axes, indexing="ij")
        om, ze = om.ravel(), ze.ravel()
        lp = -0.5 * (((closed_form(om[:, None], ze[:, None]) - y) / NOISE) ** 2).sum(-1)
        w = np.exp(lp - lp.max())
        w /= w.sum()
        pts = np.stack([om, ze], -1)
        mean = (w[:, None] * pts).sum(0)
        sd = np.sqrt((w[:, None] * (pts - mean) ** 2).sum(0))
        lo, hi = np.maximum(lo, mean - 8 * sd), np.minimum(hi, mean + 8 * sd)
    return mean, sd

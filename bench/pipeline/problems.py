"""Calibration problems with a known answer, for the pipeline benchmark.

Each problem has a real simulator (an ODE solved with ``scipy.integrate.solve_ivp``,
called once per parameter point, as a scientist's code would be), observations with
Gaussian noise of known standard deviation, a uniform prior on a box, and an exact
posterior computed from a vectorised solution of the same model on a fine grid
(:func:`reference_draws`), checked against the simulator to far below the noise.

- ``sir``: the SIR epidemic, dS/dt = -beta S I, dI/dt = beta S I - gamma I, S(0) = 1 - I0;
  the infected fraction observed at t = 5, 10, ..., 60 days with noise sd 0.01;
  parameters (beta, gamma, I0), truth (0.45, 0.15, 0.01), R0 = beta / gamma = 3.
- ``oscillator``: a damped oscillator x'' + 2 zeta omega x' + omega^2 x = 0, x(0) = 1,
  x'(0) = 0, observed at t = 0.5, 1.0, ..., 5.0 with noise sd 0.05; parameters
  (omega, zeta), truth (1.7, 0.12).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
import torch
from scipy.integrate import solve_ivp

__all__ = ["Problem", "PROBLEMS", "reference_draws"]


@dataclasses.dataclass
class Problem:
    name: str
    names: tuple[str, ...]
    bounds: dict[str, tuple[float, float]]
    truth: np.ndarray
    times: np.ndarray
    noise: float
    simulate: Callable[..., np.ndarray]  # simulate(**params) -> (n_times,), the real simulator
    batch: Callable[[torch.Tensor], torch.Tensor]  # (n, d) float64 -> (n, n_times), vectorised twin
    observed: np.ndarray = dataclasses.field(default=None)

    def __post_init__(self) -> None:
        if self.observed is None:
            clean = self.simulate(**dict(zip(self.names, self.truth)))
            rng = np.random.default_rng(12345)
            self.observed = clean + self.noise * rng.normal(size=clean.shape)

    def log_likelihood(self, theta: torch.Tensor) -> torch.Tensor:
        """Exact Gaussian log-likelihood of the observations, vectorised over rows of ``theta``."""
        y = self.batch(theta)
        r = (y - torch.as_tensor(self.observed, dtype=y.dtype)) / self.noise
        return -0.5 * (r ** 2).sum(-1)

    def box(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([self.bounds[k][0] for k in self.names]), np.array([self.bounds[k][1] for k in self.names]))


# ---------------------------------------------------------------- SIR
SIR_TIMES = np.arange(5.0, 61.0, 5.0)


def sir_simulate(beta: float, gamma: float, i0: float) -> np.ndarray:
    def rhs(t, z):
        s, i = z
        return [-beta * s * i, beta * s * i - gamma * i]

    sol = solve_ivp(rhs, (0.0, SIR_TIMES[-1]), [1.0 - i0, i0], t_eval=SIR_TIMES, rtol=1e-8, atol=1e-10)
    return sol.y[1]


def _rk4(rhs, z, t_end: float, dt: float, times: np.ndarray) -> torch.Tensor:
    """Classic RK4 with a fixed step, recording the state's component 1 at ``times``."""
    out, t, k = [], 0.0, 0
    n = int(round(t_end / dt))
    marks = {int(round(tm / dt)): j for j, tm in enumerate(times)}
    for step in range(1, n + 1):
        k1 = rhs(z)
        k2 = rhs(z + 0.5 * dt * k1)
        k3 = rhs(z + 0.5 * dt * k2)
        k4 = rhs(z + dt * k3)
        z = z + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        if step in marks:
            out.append(z[..., 1])
    return torch.stack(out, -1)


def sir_batch(theta: torch.Tensor, dt: float = 0.1) -> torch.Tensor:
    beta, gamma, i0 = theta[:, 0:1], theta[:, 1:2], theta[:, 2:3]

    def rhs(z):
        s, i = z[..., 0:1], z[..., 1:2]
        return torch.cat([-beta * s * i, beta * s * i - gamma * i], -1)

    z = torch.cat([1.0 - i0, i0], -1)
    return _rk4(rhs, z, float(SIR_TIMES[-1]), dt, SIR_TIMES)


# ---------------------------------------------------------------- damped oscillator
OSC_TIMES = np.arange(0.5, 5.01, 0.5)


def oscillator_simulate(omega: float, zeta: float) -> np.ndarray:
    def rhs(t, z):
        return [z[1], -2.0 * zeta * omega * z[1] - omega ** 2 * z[0]]

    sol = solve_ivp(rhs, (0.0, OSC_TIMES[-1]), [1.0, 0.0], t_eval=OSC_TIMES, rtol=1e-9, atol=1e-11)
    return sol.y[0]


def oscillator_batch(theta: torch.Tensor) -> torch.Tensor:
    """Closed form of the underdamped oscillator (zeta < 1 on the whole prior)."""
    omega, zeta = theta[:, 0:1], theta[:, 1:2]
    t = torch.as_tensor(OSC_TIMES, dtype=theta.dtype)
    wd = omega * torch.sqrt(1.0 - zeta ** 2)
    return torch.exp(-zeta * omega * t) * (torch.cos(wd * t) + zeta * omega / wd * torch.sin(wd * t))


PROBLEMS = {
    "sir": Problem("sir", ("beta", "gamma", "i0"),
                   {"beta": (0.1, 1.0), "gamma": (0.05, 0.5), "i0": (0.001, 0.05)},
                   np.array([0.45, 0.15, 0.01]), SIR_TIMES, 0.01, sir_simulate, sir_batch),
    "oscillator": Problem("oscillator", ("omega", "zeta"), {"omega": (0.5, 3.0), "zeta": (0.01, 0.5)},
                          np.array([1.7, 0.12]), OSC_TIMES, 0.05, oscillator_simulate, oscillator_batch),
}


# ---------------------------------------------------------------- exact posterior
def _log_post_grid(p: Problem, lo: np.ndarray, hi: np.ndarray, cells: int, chunk: int = 200_000):
    axes = [lo[j] + (np.arange(cells) + 0.5) * (hi[j] - lo[j]) / cells for j in range(len(lo))]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(lo))
    plo, phi = p.box()
    inside = np.all((mesh >= plo) & (mesh <= phi), axis=1)
    lp = np.full(len(mesh), -np.inf)
    with torch.no_grad():
        for s in range(0, len(mesh), chunk):
            sl = slice(s, s + chunk)
            ok = inside[sl]
            if ok.any():
                th = torch.as_tensor(mesh[sl][ok], dtype=torch.float64)
                lp[s:s + chunk][ok] = p.log_likelihood(th).numpy()
    return mesh, lp


def reference_draws(p: Problem, n: int = 20_000, cells: int | None = None, seed: int = 0) -> np.ndarray:
    """Exact posterior draws, cached as plain arrays in ``bench/pipeline/.cache`` (see
    :func:`grid_draws`)."""
    from pathlib import Path

    path = Path(__file__).resolve().parent / ".cache" / f"{p.name}-{n}-{cells}-{seed}.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    draws = grid_draws(p, n, cells, seed)
    path.parent.mkdir(exist_ok=True)
    np.save(path, draws, allow_pickle=False)
    return draws


def grid_draws(p: Problem, n: int = 20_000, cells: int | None = None, seed: int = 0) -> np.ndarray:
    """Exact posterior draws: the posterior on a coarse grid over the prior finds the
    region holding the mass; a fine grid over +-7 posterior sd around it (clipped to
    the prior) is sampled cell by cell with uniform jitter inside each cell."""
    d = len(p.names)
    cells = cells or (400 if d == 2 else 64)
    plo, phi = p.box()
    mesh, lp = _log_post_grid(p, plo, phi, 60 if d == 3 else 200)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    mean = w @ mesh
    sd = np.sqrt(np.maximum(w @ (mesh - mean) ** 2, ((phi - plo) / 60) ** 2 / 12))
    lo, hi = np.maximum(plo, mean - 7 * sd), np.minimum(phi, mean + 7 * sd)
    mesh, lp = _log_post_grid(p, lo, hi, cells)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(mesh), size=n, p=w)
    width = (hi - lo) / cells
    return mesh[idx] + (rng.uniform(size=(n, d)) - 0.5) * width


def check_twin(p: Problem, n: int = 20, seed: int = 0) -> float:
    """Largest difference between the simulator and its vectorised twin at ``n``
    prior points, in units of the observation noise."""
    rng = np.random.default_rng(seed)
    plo, phi = p.box()
    th = plo + (phi - plo) * rng.uniform(size=(n, len(plo)))
    sim = np.array([p.simulate(**dict(zip(p.names, t))) for t in th])
    twin = p.batch(torch.as_tensor(th, dtype=torch.float64)).numpy()
    return float(np.abs(sim - twin).max() / p.noise)


if __name__ == "__main__":
    import sys
    for p in [PROBLEMS[k] for k in (sys.argv[1:] or PROBLEMS)]:
        print(p.name, "twin vs simulator, max |diff| / noise:", f"{check_twin(p):.2e}")
        a, b = reference_draws(p, cells=None, seed=0), grid_draws(p, cells=(600 if len(p.names) == 2 else 80), seed=1)
        print("  posterior mean", np.round(a.mean(0), 5), "sd", np.round(a.std(0), 5))
        print("  finer grid:   ", np.round(b.mean(0), 5), "sd", np.round(b.std(0), 5))

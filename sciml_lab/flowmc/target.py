"""The target density as the sampler sees it: flat, unconstrained, batched.

A user writes ``log_prob`` in the space they think in: a tensor ``(n_chains, dim)``,
or a dict of named parameters (``params=...``), possibly bounded (``bounds=...``),
possibly in NumPy without gradients. :class:`Target` turns that into one function of
an unconstrained tensor ``u`` of shape ``(n, dim)`` that includes the log-Jacobian of
the map ``u -> x``, never returns NaN (NaN becomes ``-inf``, a rejected proposal),
and gives gradients by autograd when the user's function allows it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["Target", "parse_params"]


def parse_params(params: "Sequence[str] | Mapping[str, Any] | None", dim: int | None) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes: ``["a", "b"]`` (scalars), ``{"theta": 3}`` or
    ``{"w": (2, 2)}``; without ``params`` a single vector ``x`` of length ``dim``.

    Example:
        >>> parse_params({"mu": 1, "theta": (2, 3)}, None)
        {'mu': (), 'theta': (2, 3)}
        >>> parse_params(None, 4)
        {'x': (4,)}
    """
    if params is None:
        if dim is None:
            raise ValueError("dim: give the number of dimensions (dim=...), named parameters (params=[...]) "
                             "or initial points (init=...)")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"dim: expected a positive integer, got {dim!r}")
        return {"x": (int(dim),)}
    if isinstance(params, str):
        params = params.replace(",", " ").split()
    out: dict[str, tuple[int, ...]] = {}
    if isinstance(params, Mapping):
        for name, shape in params.items():
            if isinstance(shape, int) and not isinstance(shape, bool):
                shape = () if shape == 1 else (shape,)
            shape = tuple(int(s) for s in shape)
            if any(s <= 0 for s in shape):
                raise ValueError(f"params: shape of {name!r} must be positive, got {shape}")
            out[str(name)] = shape
    else:
        for name in params:
            out[str(name)] = ()
    if not out:
        raise ValueError("params: expected at least one parameter name")
    return out


class Target:
    """A user's log-density on the flat unconstrained space.

    Arguments:
        log_prob: batched log-density, ``(n, dim) -> (n,)`` or, with ``params``,
            ``dict[name, (n, *shape)] -> (n,)``. Torch (differentiable) or NumPy.
        params: names (and shapes) of the parameters, see :func:`parse_params`.
        dim: the dimension when ``params`` is not given.
        bounds: ``{name: (low, high)}`` with ``None``/``±inf`` for an open side,
            applied elementwise; sampling happens in an unconstrained space.
        gradient: ``True``, ``False`` or ``"auto"`` (try autograd, else NumPy).
        chunk: largest batch passed to ``log_prob`` at once.

    Example:
        >>> t = Target(lambda x: -0.5 * (x ** 2).sum(1), dim=2)
        >>> t.log_prob(torch.zeros(3, 2)).tolist()
        [0.0, 0.0, 0.0]
        >>> b = Target(lambda p: torch.zeros(len(p["q"])), params=["q"], bounds={"q": (0, 1)})
        >>> b.constrain(torch.zeros(1, 1)).item()
        0.5
    """

    def __init__(self, log_prob: Callable, *, params=None, dim: int | None = None,
                 bounds: Mapping[str, Sequence[float | None]] | None = None, gradient: "bool | str" = "auto",
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, chunk: int = 65536):
        if not callable(log_prob):
            raise TypeError(f"log_prob: expected a function (n, dim) -> (n,), got {type(log_prob).__name__}")
        self.fn = log_prob
        self.named = params is not None
        self.shapes = parse_params(params, dim)
        self.sizes = {k: int(np.prod(s)) if s else 1 for k, s in self.shapes.items()}
        self.dim = sum(self.sizes.values())
        self.device, self.dtype, self.chunk = torch.device(device), dtype, int(chunk)
        if gradient not in (True, False, "auto"):
            raise ValueError(f"gradient: expected True, False or 'auto', got {gradient!r}")
        self.gradient = gradient
        lo = torch.full((self.dim,), -math.inf, dtype=torch.float64)
        hi = torch.full((self.dim,), math.inf, dtype=torch.float64)
        for name, b in (bounds or {}).items():
            if name not in self.shapes:
                raise ValueError(f"bounds: unknown parameter {name!r}; parameters are {', '.join(self.shapes)}")
            if not (isinstance(b, (tuple, list)) and len(b) == 2):
                raise ValueError(f"bounds: {name!r} expects (low, high), got {b!r}")
            low = -math.inf if b[0] is None else float(b[0])
            high = math.inf if b[1] is None else float(b[1])
            if not low < high:
                raise ValueError(f"bounds: {name!r} needs low < high, got {b!r}")
            sl = self.slices[name]
            lo[sl], hi[sl] = low, high
        self.bounds = {k: (float(lo[self.slices[k]][0]), float(hi[self.slices[k]][0])) for k in (bounds or {})}
        self.lo, self.hi = lo.to(device, dtype), hi.to(device, dtype)
        self.both = torch.isfinite(self.lo) & torch.isfinite(self.hi)
        self.lower = torch.isfinite(self.lo) & ~torch.isfinite(self.hi)
        self.upper = ~torch.isfinite(self.lo) & torch.isfinite(self.hi)
        self.bounded = bool((self.both | self.lower | self.upper).any())
        width = torch.where(self.both, self.hi - self.lo, torch.ones_like(self.lo))
        self.log_width = torch.log(width)

    @property
    def slices(self) -> dict[str, slice]:
        out, i = {}, 0
        for k, n in self.sizes.items():
            out[k] = slice(i, i + n)
            i += n
        return out

    @property
    def names(self) -> list[str]:
        """Names of the flat coordinates, e.g. ``["mu", "theta[0]", "theta[1]"]``."""
        out = []
        for k, shape in self.shapes.items():
            if not shape:
                out.append(k)
            else:
                out.extend(f"{k}[{','.join(map(str, idx))}]" for idx in np.ndindex(*shape))
        return out

    # ----------------------------------------------------------------- the bijection
    def constrain(self, u: torch.Tensor) -> torch.Tensor:
        """Map unconstrained points to the user's space (elementwise)."""
        if not self.bounded:
            return u
        finite_lo = torch.where(torch.isfinite(self.lo), self.lo, torch.zeros_like(self.lo))
        finite_hi = torch.where(torch.isfinite(self.hi), self.hi, torch.zeros_like(self.hi))
        x = torch.where(self.both, finite_lo + (finite_hi - finite_lo) * torch.sigmoid(u), u)
        x = torch.where(self.lower, finite_lo + torch.exp(u), x)
        return torch.where(self.upper, finite_hi - torch.exp(u), x)

    def unconstrain(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`constrain`; points on or outside a bound map to ``±inf``/NaN."""
        if not self.bounded:
            return x
        finite_lo = torch.where(torch.isfinite(self.lo), self.lo, torch.zeros_like(self.lo))
        finite_hi = torch.where(torch.isfinite(self.hi), self.hi, torch.zeros_like(self.hi))
        p = (x - finite_lo) / (finite_hi - finite_lo)
        u = torch.where(self.both, torch.log(p) - torch.log1p(-p), x)
        u = torch.where(self.lower, torch.log(x - finite_lo), u)
        return torch.where(self.upper, torch.log(finite_hi - x), u)

    def log_jacobian(self, u: torch.Tensor) -> torch.Tensor:
        """``log |det dx/du|`` per row."""
        if not self.bounded:
            return torch.zeros(u.shape[0], dtype=u.dtype, device=u.device)
        lj = torch.where(self.both, self.log_width + F.logsigmoid(u) + F.logsigmoid(-u), torch.zeros_like(u))
        lj = torch.where(self.lower | self.upper, u, lj)
        return lj.sum(-1)

    def to_params(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split flat points ``(n, dim)`` into named parameters ``(n, *shape)``."""
        return {k: x[:, sl].reshape(x.shape[0], *self.shapes[k]) for k, sl in self.slices.items()}

    # ----------------------------------------------------------------- evaluation
    def _user(self, x: torch.Tensor) -> torch.Tensor:
        arg: Any = self.to_params(x) if self.named else x
        if self.gradient is False:
            arg = {k: v.detach().cpu().numpy() for k, v in arg.items()} if self.named else arg.detach().cpu().numpy()
        out = self.fn(arg)
        out = torch.as_tensor(out, device=self.device)
        if out.dtype != self.dtype:
            out = out.to(self.dtype)
        if out.shape != (x.shape[0],):
            out = out.reshape(-1)
            if out.shape != (x.shape[0],):
                raise ValueError(f"log_prob must return one value per chain, shape ({x.shape[0]},); "
                                 f"got shape {tuple(out.shape)}")
        return out

    def resolve_gradient(self, u: torch.Tensor) -> bool:
        """Decide (once) whether autograd works on the user's function; returns it."""
        if self.gradient != "auto":
            return bool(self.gradient)
        try:
            self.gradient = True
            _, g = self.log_prob_and_grad(u[:2])
            ok = g is not None
        except Exception:  # noqa: BLE001 - any failure means: no autograd through this function
            ok = False
        self.gradient = ok
        return ok

    def log_prob(self, u: torch.Tensor) -> torch.Tensor:
        """Log-density of unconstrained points (with the Jacobian), ``-inf`` for NaN;
        evaluated in chunks of ``chunk`` rows, without gradients."""
        out = []
        with torch.no_grad():
            for part in torch.split(u, self.chunk):
                lp = self._user(self.constrain(part)) + self.log_jacobian(part)
                out.append(torch.nan_to_num(lp, nan=-math.inf, posinf=-math.inf, neginf=-math.inf))
        return torch.cat(out) if out else torch.zeros(0, dtype=self.dtype, device=self.device)

    def log_prob_and_grad(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-density and its gradient (``None`` for a function without gradients).
        Non-finite gradients are returned as they are: the caller rejects them."""
        if not self.gradient:
            return self.log_prob(u), None
        with torch.enable_grad():
            v = u.detach().requires_grad_(True)
            lp = self._user(self.constrain(v)) + self.log_jacobian(v)
            if not lp.requires_grad:
                raise TypeError("log_prob is not differentiable by torch autograd")
            (g,) = torch.autograd.grad(lp.sum(), v)
        lp = torch.nan_to_num(lp.detach(), nan=-math.inf, posinf=-math.inf, neginf=-math.inf)
        return lp, g

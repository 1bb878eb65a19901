"""The trained emulator: a torch module from the user's inputs to the simulator's outputs.

It owns the scalings, so the models inside only ever see inputs in the unit cube
and standardised outputs: inputs are mapped from their bounds (through a log for
log-scaled ones) to [0, 1]; outputs are standardised per column and, when there
are many of them (spectra, time series), projected on a PCA basis; a predictive
scale from recalibration multiplies the standard deviation.

``Emulator(x)`` is differentiable with respect to ``x`` (a flow-MCMC likelihood can
call it); :meth:`Emulator.predict` returns an ``xarray.Dataset`` with ``mean`` and
``std``; :meth:`Emulator.save` writes ``config.json`` and ``weights.pt`` (tensors
only), and :meth:`Emulator.load` reads them back with ``weights_only=True``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr
from torch import nn

from .crossval import CrossValidation
from .ensemble import DeepEnsemble
from .gp import ExactGP
from .layout import OutputLayout, input_matrix
from .metrics import calibrate_scale, nrmse_interval, validation_metrics
from .persist import MODELS, Persistence
from .reduce import AUTO_MIN_COLUMNS, DEFAULT_TOL, check_n_components, fit_pca
from .sharedgp import SharedGP
from .threads import small_problem_threads

__all__ = ["Emulator", "OutputLayout", "validation_metrics", "calibrate_scale", "nrmse_interval",
           "small_problem_threads"]


class Emulator(CrossValidation, Persistence, nn.Module):
    """A fitted surrogate of a simulator, with predictive uncertainty.

    Arguments:
        inputs: input names, in column order.
        bounds: ``{name: (low, high)}`` in the user's units.
        log_inputs: names of inputs scaled logarithmically (bounds must be > 0).
        layout: the output layout (:class:`OutputLayout` or its JSON list).
        model: ``"gp"`` or ``"ensemble"``.
        n_components: PCA components for the outputs: ``None`` (no PCA), a number,
            or ``"auto"`` (above 10 output columns, as many as leave out at most
            ``pca_tol`` of the variance, default 1e-4; no PCA up to 10 columns). What the truncation leaves out is added, column by column,
            to the predictive variance (see :mod:`sciml_lab.emulate.reduce`).
        options: model settings (GP: ``mean`` (``"linear"``, ``"constant"``,
            ``"zero"``), ``max_iter``, ``restarts``, ``max_fit_points``, ``polish_iter``,
            ``cv_folds`` (see :meth:`cv_folds`), ``shared_kernel`` (``"auto"``: the
            PCA components share one kernel, :class:`~sciml_lab.emulate.sharedgp.SharedGP`;
            ``False``: a GP of their own each); ensemble: ``n_members``,
            ``hidden``, ``steps`` (gradient steps of a fit: 1500 for the first,
            500 for a warm refit), ``lr``, ``batch_size``).

    Example:
        >>> x = np.random.default_rng(0).uniform(size=(40, 2))
        >>> emu = Emulator(["a", "b"], {"a": (0, 1), "b": (0, 1)}, layout=[{"name": "y"}])
        >>> emu = emu.fit(x, np.sin(3 * x[:, :1]) + x[:, 1:])
        >>> ds = emu.predict({"a": [0.5], "b": [0.5]})
        >>> bool(abs(float(ds["mean"][0]) - (np.sin(1.5) + 0.5)) < 0.05)
        True
    """

    def __init__(self, inputs: Sequence[str], bounds: Mapping[str, Sequence[float]], log_inputs: Sequence[str] = (),
                 layout: "OutputLayout | Sequence[Mapping[str, Any]]" = ({"name": "y"},), model: str = "gp",
                 n_components: "int | str | None" = None, device: "str | torch.device" = "cpu", **options: Any):
        super().__init__()
        if model not in MODELS:
            raise ValueError(f"model: expected 'gp' or 'ensemble', got {model!r}")
        self.inputs = list(inputs)
        self.bounds = {k: (float(bounds[k][0]), float(bounds[k][1])) for k in self.inputs}
        self.log_inputs = [k for k in self.inputs if k in set(log_inputs)]
        self.layout = layout if isinstance(layout, OutputLayout) else OutputLayout(layout)
        self.model_kind = model
        self.n_components = check_n_components(n_components)
        self.options = dict(options)
        if self.options.get("shared_kernel", "auto") not in ("auto", True, False):
            raise ValueError(f"shared_kernel: expected 'auto', True or False, got {self.options['shared_kernel']!r}")
        self.device = torch.device(device)
        self.dtype = torch.float64 if model == "gp" else torch.float32
        lo, hi = self._box()
        self.register_buffer("lo", lo)
        self.register_buffer("width", hi - lo)
        self.register_buffer("is_log", torch.tensor([k in self.log_inputs for k in self.inputs]))
        m = self.layout.size
        self.register_buffer("y_mean", torch.zeros(m, dtype=torch.float64))
        self.register_buffer("y_std", torch.ones(m, dtype=torch.float64))
        self.register_buffer("basis", torch.zeros(m, 0, dtype=torch.float64))  # (m, k) PCA directions
        self.register_buffer("resid_var", torch.zeros(m, dtype=torch.float64))  # PCA truncation error
        self.scale = 1.0
        self.model: nn.Module | None = None

    # ------------------------------------------------------------------ scalings
    def _box(self) -> tuple[torch.Tensor, torch.Tensor]:
        lo = torch.tensor([self.bounds[k][0] for k in self.inputs], dtype=torch.float64)
        hi = torch.tensor([self.bounds[k][1] for k in self.inputs], dtype=torch.float64)
        log = torch.tensor([k in self.log_inputs for k in self.inputs])
        return torch.where(log, lo.log(), lo), torch.where(log, hi.log(), hi)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """User units ``(n, d)`` -> unit cube (differentiable)."""
        x = x.to(torch.float64)
        x = torch.where(self.is_log, torch.log(x.clamp_min(1e-300)), x)
        return (x - self.lo) / self.width

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Unit cube -> user units."""
        x = u.to(torch.float64) * self.width + self.lo
        return torch.where(self.is_log, torch.exp(x), x)

    @property
    def pca(self) -> bool:
        return self.basis.shape[1] > 0

    def _encode(self, y: torch.Tensor) -> torch.Tensor:
        ys = (y - self.y_mean) / self.y_std
        return ys @ self.basis / self._latent_sd if self.pca else ys

    # ------------------------------------------------------------------ fitting
    def fit(self, x: Any, y: Any, *, warm: bool = True, generator: torch.Generator | None = None) -> "Emulator":
        """Fit the model to inputs ``x`` ``(n, d)`` (user units) and outputs ``y`` ``(n, m)``.

        With ``warm`` the previous fit's hyper-parameters / weights are the start.

        Example:
            >>> emu = Emulator(["a"], {"a": (1e-2, 1e2)}, log_inputs=["a"])
            >>> x = np.logspace(-2, 2, 20)[:, None]
            >>> abs(float(emu.fit(x, np.log(x)).predict(np.array([[1.0]]))["mean"][0])) < 0.05
            True
        """
        xt = torch.as_tensor(input_matrix(x, self.inputs), dtype=torch.float64)
        yt = torch.as_tensor(np.asarray(y, dtype=float).reshape(len(xt), -1), dtype=torch.float64)
        if yt.shape[1] != self.layout.size:
            raise ValueError(f"y: expected {self.layout.size} output columns, got {yt.shape[1]}")
        self._fit_output_transform(yt)
        self._train_y = yt
        u = self.to_unit(xt)
        z = self._encode(yt)
        n_latent = z.shape[1]
        fresh = self.model is None or not warm or getattr(self.model, "n_outputs", None) != n_latent
        if fresh:
            previous, self.model = self.model, self._new_model(n_latent)
            if warm and isinstance(previous, SharedGP) and isinstance(self.model, SharedGP):
                # a shared kernel does not depend on the number of components (it may
                # change from batch to batch): keep it as the start
                with torch.no_grad():
                    self.model.log_lengthscale.copy_(previous.log_lengthscale)
                    self.model.log_noise.copy_(previous.log_noise)
        self.model.to(self.device)
        with small_problem_threads(len(xt) if self.device.type == "cpu" else 10 ** 9):
            self._fit_model(u, z, fresh, generator)
        return self

    def _fit_model(self, u: torch.Tensor, z: torch.Tensor, fresh: bool, generator: torch.Generator | None) -> None:
        if self.model_kind == "gp":
            self._fit_gp(self.model, u.to(self.device), z.to(self.device), generator)
        else:
            self.model.fit(u.to(self.device, torch.float32), z.to(self.device, torch.float32),
                           steps=int(self.options.get("steps", 1500 if fresh else 500)),
                           lr=float(self.options.get("lr", 3e-3 if fresh else 1e-3)),
                           batch_size=int(self.options.get("batch_size", 256)), generator=generator)

    def _fit_gp(self, gp: ExactGP, u: torch.Tensor, z: torch.Tensor, generator: torch.Generator | None,
                restarts: int | None = None) -> None:
        if restarts is None:
            restarts = int(self.options.get("restarts", 3 if len(u) < 100 else 1))
        gp.fit(u, z, max_iter=int(self.options.get("max_iter", 100)), restarts=restarts,
               max_fit_points=int(self.options.get("max_fit_points", 500)),
               polish_iter=int(self.options.get("polish_iter", 20)), generator=generator)

    def _new_model(self, n_latent: int) -> nn.Module:
        d = len(self.inputs)
        if self.model_kind == "gp":
            cls = SharedGP if self._shares_kernel() else ExactGP
            return cls(d, n_latent, mean=str(self.options.get("mean", "constant")))
        return DeepEnsemble(d, n_latent, n_members=int(self.options.get("n_members", 5)),
                            hidden=tuple(self.options.get("hidden", (64, 64))))

    def _shares_kernel(self) -> bool:
        shared = self.options.get("shared_kernel", "auto")
        return self.model_kind == "gp" and (shared is True or (shared == "auto" and self.pca))

    def _fit_output_transform(self, y: torch.Tensor) -> None:
        # standardisation and the PCA basis are refitted with every batch (cheap, and
        # later runs change them); the model's latent columns keep their meaning
        # because the basis is sign-fixed and ordered by variance
        mean, std = y.mean(0), y.std(0) if len(y) > 1 else torch.ones(y.shape[1], dtype=y.dtype)
        self.y_mean, self.y_std = mean, torch.where(std > 0, std, torch.ones_like(std))
        k = self.n_components
        if k is None or (y.shape[1] <= AUTO_MIN_COLUMNS if k == "auto" else k >= y.shape[1]) or len(y) < 3:
            self.basis = torch.zeros(y.shape[1], 0, dtype=torch.float64)
            self.resid_var = torch.zeros(y.shape[1], dtype=torch.float64)
            return
        pca = fit_pca((y - self.y_mean) / self.y_std, k, float(self.options.get("pca_tol", DEFAULT_TOL)))
        self.basis, self._latent_sd_value, self.resid_var = pca.directions, pca.latent_sd, pca.resid_var
        if self._shares_kernel():
            # scores in their own units: the shared kernel's likelihood then weighs each
            # component by its variance (see SharedGP), not the trailing ones alike
            self._latent_sd_value = torch.ones_like(pca.latent_sd)

    @property
    def _latent_sd(self) -> torch.Tensor:
        v = getattr(self, "_latent_sd_value", None)
        return v if v is not None else torch.ones(self.basis.shape[1], dtype=torch.float64)

    # ------------------------------------------------------------------ prediction
    def _latent(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.model is None:
            raise RuntimeError("the emulator is not fitted yet")
        mean, var = self.model(u.to(self.device, self.dtype))
        return mean.to(torch.float64).cpu(), var.to(torch.float64).cpu()

    def _decode(self, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pca:
            sd = self._latent_sd
            mean = (mean * sd) @ self.basis.T
            var = (var * sd * sd) @ (self.basis * self.basis).T + self.resid_var
        return mean * self.y_std + self.y_mean, var * self.y_std ** 2

    def predict_unit(self, u: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and calibrated std ``(n, m)`` at unit-cube points (no gradients; chunked)."""
        means, stds = [], []
        with torch.no_grad():
            for i in range(0, max(len(u), 1), chunk):
                m, v = self._decode(*self._latent(u[i:i + chunk]))
                means.append(m)
                stds.append(v.clamp_min(0).sqrt() * self.scale)
        return torch.cat(means), torch.cat(stds)

    def sample_unit(self, u: torch.Tensor, n_draws: int = 64, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
        """Joint posterior draws of the outputs ``(n_draws, n, m)`` at unit-cube points
        ``u`` (GP only; exact, so keep ``n`` to a few thousand). Deviations from the
        mean carry the calibration scale, like :meth:`predict`'s std.

        Example:
            >>> emu = Emulator(["a"], {"a": (0, 1)}).fit(np.linspace(0, 1, 8)[:, None], np.linspace(0, 1, 8))
            >>> emu.sample_unit(torch.rand(5, 1, dtype=torch.float64), 16).shape
            torch.Size([16, 5, 1])
        """
        if self.model_kind != "gp":
            raise ValueError(f"model: joint posterior draws need a GP, this emulator is a {self.model_kind!r}")
        if self.model is None:
            raise RuntimeError("the emulator is not fitted yet")
        draws = self.model.sample_joint(u.to(self.device, self.dtype), n_draws, generator)  # (S, n, k)
        mean, _ = self.model(u.to(self.device, self.dtype))
        draws = (mean.detach() + self.scale * (draws - mean.detach())).to(torch.float64).cpu()
        s, n, k = draws.shape
        out, _ = self._decode(draws.reshape(s * n, k), torch.zeros(s * n, k, dtype=torch.float64))
        return out.reshape(s, n, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictive mean in user units, ``(n, m)`` for inputs ``(n, d)``; differentiable.

        Example:
            >>> emu = Emulator(["a"], {"a": (0, 1)}).fit(np.linspace(0, 1, 10)[:, None], np.linspace(0, 1, 10) ** 2)
            >>> x = torch.tensor([[0.5]], requires_grad=True)
            >>> emu(x).sum().backward(); round(float(x.grad), 1)
            1.0
        """
        mean, var = self._latent(self.to_unit(x))
        return self._decode(mean, var)[0]

    def mean_and_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable predictive mean and (calibrated) std in user units."""
        mean, var = self._decode(*self._latent(self.to_unit(x)))
        return mean, var.clamp_min(1e-30).sqrt() * self.scale

    def predict(self, x: Any) -> xr.Dataset:
        """Predict at ``x`` (array ``(n, d)``, dict, DataFrame or Dataset of inputs).

        Returns:
            A Dataset with ``mean`` and ``std`` (dim ``point`` plus the output's own
            dims, or ``output`` when there are several output variables) and the
            inputs as coordinates along ``point``.

        Example:
            >>> emu = Emulator(["a"], {"a": (0, 1)}).fit(np.linspace(0, 1, 8)[:, None], np.linspace(0, 1, 8))
            >>> sorted(emu.predict(np.array([[0.2], [0.7]])).data_vars)
            ['mean', 'std']
        """
        xm = input_matrix(x, self.inputs)
        mean, std = self.predict_unit(self.to_unit(torch.as_tensor(xm, dtype=torch.float64)))
        mean, std = mean.numpy(), std.numpy()
        coords: dict[str, Any] = {k: ("point", xm[:, i]) for i, k in enumerate(self.inputs)}
        if len(self.layout.variables) == 1:
            v = self.layout.variables[0]
            dims = ("point", *v["dims"])
            shape = (len(xm), *v["shape"])
            coords.update({d: c for d, c in v["coords"].items()})
            ds = xr.Dataset({"mean": (dims, mean.reshape(shape)), "std": (dims, std.reshape(shape))}, coords=coords)
            ds.attrs["output"] = v["name"]
        else:
            coords["output"] = self.layout.labels()
            ds = xr.Dataset({"mean": (("point", "output"), mean), "std": (("point", "output"), std)}, coords=coords)
        ds["std"].attrs["long_name"] = "predictive standard deviation (calibrated)"
        ds.attrs["calibration_scale"] = float(self.scale)
        return ds


    def extra_repr(self) -> str:
        return f"inputs={self.inputs}, outputs={self.layout.labels()[:6]}, model={self.model_kind!r}"

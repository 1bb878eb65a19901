"""Saving and loading an emulator: ``config.json`` (everything but the tensors) and
``weights.pt`` (tensors only, read back with ``weights_only=True``: nothing is
unpickled).

:class:`Persistence` gives :class:`~sciml_lab.emulate.emulator.Emulator` its
:meth:`~Persistence.save` and :meth:`~Persistence.load`.

Example:
    >>> jsonable({"n": np.int64(3), "xs": (np.float64(0.5),)})
    {'n': 3, 'xs': [0.5]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch

from .ensemble import DeepEnsemble
from .gp import ExactGP
from .sharedgp import SharedGP

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["Persistence", "MODELS", "jsonable"]

#: the model classes by the name a config gives (a shared-kernel GP is told by its own config)
MODELS = {"gp": ExactGP, "ensemble": DeepEnsemble}


class Persistence:
    """The save / load methods of :class:`~sciml_lab.emulate.emulator.Emulator` (a mixin)."""

    def config(self) -> dict[str, Any]:
        """JSON-able description (everything but the tensors)."""
        return {
            "format": "sciml_lab.emulate/1", "inputs": self.inputs, "bounds": {k: list(v) for k, v in self.bounds.items()},
            "log_inputs": self.log_inputs, "layout": self.layout.to_json(), "model": self.model_kind,
            "n_components": self.n_components, "options": jsonable(self.options), "scale": float(self.scale),
            "model_config": self.model.extra_state() if self.model is not None else None,
        }

    def tensors(self) -> dict[str, torch.Tensor]:
        """All tensors (buffers and the model's parameters), on the CPU."""
        out = {k: v.detach().cpu() for k, v in self.named_buffers() if not k.startswith("model.")}
        out["latent_sd"] = self._latent_sd.detach().cpu()
        if self.model is not None:
            for k, v in self.model.state_dict().items():
                out[f"model.{k}"] = v.detach().cpu()
        return out

    @classmethod
    def from_parts(cls, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor],
                   device: "str | torch.device" = "cpu") -> "Emulator":
        """Rebuild from :meth:`config` and :meth:`tensors`."""
        emu = cls(config["inputs"], config["bounds"], config.get("log_inputs", ()), config["layout"], config["model"],
                  config.get("n_components"), device=device, **config.get("options", {}))
        for k in ("y_mean", "y_std", "basis", "resid_var"):
            setattr(emu, k, tensors[k].to(torch.float64))
        emu._latent_sd_value = tensors["latent_sd"].to(torch.float64)
        emu.scale = float(config.get("scale", 1.0))
        if config.get("model_config") is not None:
            model_tensors = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
            cls = SharedGP if config["model_config"].get("kernel") == "shared" else MODELS[config["model"]]
            emu.model = cls.from_state(config["model_config"], model_tensors).to(emu.device)
        return emu

    def save(self, path: "str | Path") -> Path:
        """Write ``config.json`` and ``weights.pt`` (tensors only) into the folder ``path``.

        Example:
            >>> import tempfile
            >>> from sciml_lab.emulate.emulator import Emulator
            >>> emu = Emulator(["a"], {"a": (0, 1)}).fit(np.linspace(0, 1, 8)[:, None], np.linspace(0, 1, 8))
            >>> p = emu.save(tempfile.mkdtemp() + "/emu")
            >>> sorted(f.name for f in p.iterdir())
            ['config.json', 'weights.pt']
        """
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        (p / "config.json").write_text(json.dumps(self.config(), indent=1))
        torch.save(self.tensors(), p / "weights.pt")
        return p

    @classmethod
    def load(cls, path: "str | Path", device: "str | torch.device" = "cpu") -> "Emulator":
        """Read an emulator saved by :meth:`save` (nothing is unpickled).

        Example:
            >>> import tempfile
            >>> from sciml_lab.emulate.emulator import Emulator
            >>> emu = Emulator(["a"], {"a": (0, 1)}).fit(np.linspace(0, 1, 8)[:, None], np.linspace(0, 1, 8))
            >>> Emulator.load(emu.save(tempfile.mkdtemp())).inputs
            ['a']
        """
        p = Path(path)
        if not (p / "config.json").exists() or not (p / "weights.pt").exists():
            raise FileNotFoundError(f"path: {str(path)!r} has no config.json and weights.pt (an Emulator.save folder)")
        config = json.loads((p / "config.json").read_text())
        tensors = torch.load(p / "weights.pt", weights_only=True, map_location="cpu")
        return cls.from_parts(config, tensors, device=device)


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return obj

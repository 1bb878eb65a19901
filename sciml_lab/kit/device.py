"""Device placement: the one place where sciml_lab decides between CPU and GPU.

Every engine calls :func:`resolve_device` once, at construction, and moves all its
tensors there. Tests run the very same code on ``cpu``.
"""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "resolve_dtype", "restore_device"]


def resolve_device(device: "str | torch.device | None" = "auto") -> torch.device:
    """``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but torch sees no CUDA device here; use 'auto' or 'cpu'")
    return dev


def resolve_dtype(dtype: "str | torch.dtype" = "float32") -> torch.dtype:
    """``float32``/``float64`` as a string or a torch dtype.

    Example:
        >>> resolve_dtype("float64")
        torch.float64
    """
    table = {"float32": torch.float32, "float64": torch.float64, "float": torch.float32, "double": torch.float64}
    if isinstance(dtype, torch.dtype) and dtype in (torch.float32, torch.float64):
        return dtype
    if isinstance(dtype, str) and dtype in table:
        return table[dtype]
    raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")


def restore_device(device: str) -> str:
    """The device a reopened run uses: the one it was made with, except a GPU run
    reopened where torch sees no GPU, which continues on the CPU.

    Example:
        >>> restore_device("cpu"), restore_device("auto")
        ('cpu', 'auto')
    """
    if device in (None, "auto", "cpu"):
        return device or "auto"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return "cpu"
    return device

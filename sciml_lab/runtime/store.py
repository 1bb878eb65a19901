"""The run store: ``sciml-runs/<name>/`` with ``job.json``, ``result.nc`` and ``checkpoint.pt``.

Every file is written atomically (a temporary file in the same folder, flushed and
fsynced, then ``os.replace``), so a process killed mid-write leaves the previous
complete file, never a torn one. Loading never unpickles: ``job.json`` is JSON,
``result.nc`` is netCDF4 (HDF5) and the checkpoint is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import xarray as xr

__all__ = ["RunStore", "runs_dir", "atomic_write", "write_result", "read_result", "NAME_RE"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
NETCDF_ENGINE = "h5netcdf"


def runs_dir() -> Path:
    """The default root of run folders: ``$SCIML_RUNS_DIR`` or ``./sciml-runs``."""
    return Path(os.environ.get("SCIML_RUNS_DIR", "sciml-runs"))


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, fsync it, then rename
    it over ``path``. A crash at any moment leaves either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        try:  # make the rename itself durable
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _jsonable_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, (dict, list, tuple)) and not isinstance(v, str):
            v = json.dumps(v, default=str)
        elif isinstance(v, bool):
            v = int(v)
        elif v is None:
            v = ""
        out[k] = v
    return out


def write_result(tree: xr.DataTree, path: Path) -> None:
    """Write a DataTree to netCDF atomically (attrs that netCDF cannot hold, such as
    dicts, are stored as JSON text)."""
    tree = tree.copy()
    for node in tree.subtree:
        node.attrs = _jsonable_attrs(node.attrs)
        for var in node.dataset.variables.values():
            var.attrs = _jsonable_attrs(var.attrs)
    atomic_write(path, lambda tmp: tree.to_netcdf(tmp, engine=NETCDF_ENGINE, mode="w"))


def read_result(path: Path) -> xr.DataTree:
    """Read a ``result.nc`` fully into memory and close the file (so that the writer
    can replace it while the reader holds the tree)."""
    with xr.open_datatree(path, engine=NETCDF_ENGINE) as t:
        return t.load().copy()


class RunStore:
    """The folder of one run.

    Example:
        >>> import tempfile
        >>> s = RunStore(tempfile.mkdtemp())
        >>> s.write_json({"name": "x", "status": "queued"}); s.read_json()["status"]
        'queued'
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def job_json(self) -> Path:
        return self.path / "job.json"

    @property
    def result_nc(self) -> Path:
        return self.path / "result.nc"

    @property
    def checkpoint_pt(self) -> Path:
        return self.path / "checkpoint.pt"

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def write_json(self, record: Mapping[str, Any]) -> None:
        text = json.dumps(record, indent=2, default=str, allow_nan=True)
        atomic_write(self.job_json, lambda tmp: tmp.write_text(text))

    def read_json(self) -> dict[str, Any]:
        return json.loads(self.job_json.read_text())

    def write_result(self, tree: xr.DataTree) -> None:
        write_result(tree, self.result_nc)

    def read_result(self) -> xr.DataTree | None:
        return read_result(self.result_nc) if self.result_nc.exists() else None

    def write_checkpoint(self, state: Mapping[str, Any]) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(dict(state), buf)
        data = buf.getvalue()
        atomic_write(self.checkpoint_pt, lambda tmp: tmp.write_bytes(data))

    def read_checkpoint(self) -> dict[str, Any] | None:
        import torch

        if not self.checkpoint_pt.exists():
            return None
        return torch.load(self.checkpoint_pt, weights_only=True, map_location="cpu")

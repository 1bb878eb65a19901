"""The run store: ``sciml-runs/<name>/`` with ``job.json``, ``result.nc`` and ``checkpoint.pt``.

Every file is written atomically (a temporary file in the same folder, flushed and
fsynced, then ``os.replace``), so a process killed mid-write leaves the previous
complete file, never a torn one. A file is first serialised to bytes in memory and
then written with plain file I/O: a full disk is an ``OSError`` saying so (the
temporary file is removed and the previous file stays), never a half-written HDF5
file whose library state outlives the error. Loading never unpickles: ``job.json``
is JSON, ``result.nc`` is netCDF4 (HDF5) and the checkpoint is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import xarray as xr

__all__ = ["RunStore", "runs_dir", "atomic_write", "write_result", "read_result", "result_bytes", "NAME_RE",
           "valid_name", "CheckpointError"]

# used with fullmatch only: ``$`` would let a trailing newline through
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# temporary files name their writer (host and pid), so that a dead writer's leftovers can be told apart
_TMP_RE = re.compile(r"\.(?P<target>.+)\.(?P<host>[A-Za-z0-9_-]*)-(?P<pid>[0-9]+)\.[a-z0-9]+\.tmp")
_FULL_DISK = (errno.ENOSPC, errno.EDQUOT)
STALE_TMP_S = 600.0  # a temporary file of another host (or an older name form) this old is a dead writer's


class CheckpointError(ValueError):
    """``checkpoint.pt`` cannot be loaded; the message says why in the project's words."""


def valid_name(name: object) -> bool:
    """Whether ``name`` is a valid job name (and so a safe folder name).

    Example:
        >>> valid_name("banana-2"), valid_name("banana\\n"), valid_name("../x")
        (True, False, False)
    """
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40]
NETCDF_ENGINE = "h5netcdf"


def runs_dir() -> Path:
    """The default root of run folders: ``$SCIML_RUNS_DIR`` or ``./sciml-runs``."""
    return Path(os.environ.get("SCIML_RUNS_DIR", "sciml-runs"))


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, fsync it, then rename
    it over ``path``. A crash at any moment leaves either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.parent / f".{path.name}.{_host_tag()}-{os.getpid()}.{os.urandom(4).hex()}.tmp"
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
    except OSError as exc:
        if exc.errno in _FULL_DISK:
            raise OSError(exc.errno, f"no space left on device while writing {path.name} in {path.parent}; "
                                     f"the previous {path.name} is kept") from exc
        raise
    finally:
        try:
            tmp_path.unlink()
        except FileNotFoundError:
            pass


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically with plain file I/O (see :func:`atomic_write`)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write)


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


def result_bytes(tree: xr.DataTree) -> bytes:
    """A DataTree as the bytes of a netCDF4 file, built in memory (attrs that netCDF
    cannot hold, such as dicts, are stored as JSON text). HDF5 never touches the disk
    here, so a full disk cannot leave it with a half-written file."""
    tree = tree.copy()
    for node in tree.subtree:
        node.attrs = _jsonable_attrs(node.attrs)
        for var in node.dataset.variables.values():
            var.attrs = _jsonable_attrs(var.attrs)
    with _local_write_lock():
        return bytes(tree.to_netcdf(None, engine=NETCDF_ENGINE))


@contextlib.contextmanager
def _local_write_lock():
    """xarray takes its write lock from dask's active scheduler: in a Dask worker a
    distributed lock named after the target, which an in-memory file does not have
    (the job then fails with "Semaphore or Lock ... not known"). The file is this
    thread's own, so a lock of this process is the right one."""
    dask = sys.modules.get("dask")
    if dask is None:
        yield
        return
    with dask.config.set(scheduler="synchronous"):
        yield


def write_result(tree: xr.DataTree, path: Path) -> None:
    """Write a DataTree to netCDF atomically: serialised in memory, then written with
    plain file I/O (a full disk raises ``OSError`` and keeps the previous file)."""
    atomic_write_bytes(path, result_bytes(tree))


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

    @property
    def events_jsonl(self) -> Path:
        return self.path / "events.jsonl"

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)

    def write_json(self, record: Mapping[str, Any]) -> None:
        text = json.dumps(record, indent=2, default=str, allow_nan=True)
        atomic_write_bytes(self.job_json, text.encode("utf-8"))

    def read_json(self) -> dict[str, Any]:
        """``job.json`` as a dict; ValueError saying what is wrong with it otherwise."""
        try:
            text = self.job_json.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"job.json is not UTF-8 text (byte {exc.start})") from None
        try:
            rec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"job.json is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(rec, dict):
            raise ValueError(f"job.json holds a {type(rec).__name__}, expected a JSON object")
        return rec

    def write_result(self, tree: xr.DataTree) -> None:
        write_result(tree, self.result_nc)

    def read_result(self) -> xr.DataTree | None:
        return read_result(self.result_nc) if self.result_nc.exists() else None

    def write_checkpoint(self, state: Mapping[str, Any]) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(dict(state), buf)
        atomic_write_bytes(self.checkpoint_pt, buf.getvalue())

    def read_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint (None if there is none). Loaded with ``weights_only=True``;
        a damaged file or one holding anything but plain data raises
        :class:`CheckpointError` in the project's words (torch's own message for a
        refused object advises disabling that protection, which must never reach a user)."""
        import pickle

        import torch

        if not self.checkpoint_pt.exists():
            return None
        try:
            state = torch.load(self.checkpoint_pt, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError:
            raise CheckpointError(
                "checkpoint.pt holds objects other than tensors, numbers, strings, lists and dicts; it was not "
                "loaded, since loading such a file can run code") from None
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a damaged zip
            raise CheckpointError(f"checkpoint.pt is damaged (truncated, overwritten or not a checkpoint: "
                                  f"{type(exc).__name__})") from None
        runtime = state.get("runtime") if isinstance(state, dict) else None
        if not (isinstance(state, dict) and isinstance(state.get("engine"), dict) and isinstance(runtime, dict)
                and isinstance(runtime.get("step"), int) and not isinstance(runtime.get("step"), bool)
                and runtime["step"] >= 0 and isinstance(runtime.get("elapsed_s"), (int, float))):
            raise CheckpointError("checkpoint.pt is not a sciml_lab checkpoint (expected engine state and "
                                  "runtime step and elapsed_s)")
        return state

    def remove_stale_temps(self) -> list[str]:
        """Remove temporary files left by killed writers: those of a dead process of
        this host, and any older than ``STALE_TMP_S``. Returns their names."""
        removed = []
        host, now = _host_tag(), time.time()
        for p in self.path.glob(".*.tmp"):
            m = _TMP_RE.fullmatch(p.name)
            try:
                if m and m["host"] == host:
                    stale = int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"]))
                else:
                    stale = now - p.stat().st_mtime > STALE_TMP_S
                if stale:
                    p.unlink()
                    removed.append(p.name)
            except OSError:
                continue
        return removed

    def trim_events(self, step: int) -> None:
        """Cut ``events.jsonl`` after the last complete line of a step <= ``step``
        (where a resumed run starts again), so that no step is logged twice and a
        line torn by a crash does not swallow the next one."""
        path = self.events_jsonl
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        keep = _events_keep_offset(path, size, step)
        if keep < size:
            with open(path, "rb+") as f:
                f.truncate(keep)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _events_keep_offset(path: Path, size: int, step: int, block: int = 1 << 16) -> int:
    """Byte offset just after the last complete line whose step is <= ``step``,
    reading backwards from the end (steps are logged in order: usually one block)."""
    with open(path, "rb") as f:
        pos, head, first_pass = size, b"", True
        while True:
            start = max(0, pos - block)
            f.seek(start)
            data = f.read(pos - start) + head  # file[start : pos + len(head)]
            lines = data.split(b"\n")
            line_end = start + len(data)
            for i in range(len(lines) - 1, -1, -1):
                ln, end = lines[i], line_end
                line_end = end - len(ln) - 1
                if i == 0 and start > 0:
                    break  # its beginning lies in the block before
                if first_pass and i == len(lines) - 1:
                    continue  # after the last newline: empty, or a line torn by a crash
                try:
                    s = json.loads(ln)["step"]
                except (ValueError, KeyError, TypeError):
                    continue
                if isinstance(s, int) and s <= step:
                    return end + 1
            if start == 0:
                return 0
            pos, head, first_pass = start, lines[0], False

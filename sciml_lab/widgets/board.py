"""JobBoard: a live table of every job in the kernel."""

from __future__ import annotations

import math
import time

import anywidget
import traitlets as t

from ..runtime import jobs
from .monitor import PUMP, _file

__all__ = ["JobBoard"]


class JobBoard(anywidget.AnyWidget):
    """All jobs of this kernel, refreshed twice a second; a row's Stop button stops that job.

    Example:
        >>> board = JobBoard(); isinstance(board.rows, list)
        True
    """

    _esm = _file("board.js")
    _css = _file("monitor.css")
    rows = t.List(t.Dict()).tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._last = 0.0
        self.on_msg(self._on_custom_msg)
        self._tick(force=True)
        PUMP.add(self)

    def _tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        rows = []
        for j in jobs():
            if j is None:
                continue
            key, val = j.key_metric
            rows.append({
                "name": j.name, "kind": j.kind, "status": j.status, "step": j.step,
                "progress": j.progress if math.isfinite(j.progress) else None,
                "elapsed": j.elapsed, "key": key or "",
                "value": val if isinstance(val, float) and math.isfinite(val) else None,
            })
        if rows != self.rows:
            self.rows = rows

    def _on_custom_msg(self, widget, content, buffers) -> None:
        if isinstance(content, dict) and content.get("type") == "stop":
            from ..runtime import get_job

            try:
                get_job(content.get("name", "")).stop()
            except KeyError:
                pass

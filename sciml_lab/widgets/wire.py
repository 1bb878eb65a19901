"""The monitor's wire formats, kernel side.

They are defined once, in ``wire.json`` beside this module: JSON Schemas of the rows
message, the live view, the monitor spec and the page's commands, plus the layout of
the rows' binary buffer. This module reads it at import and encodes with it; the page
(``js/src/wire.js``) bundles the same file and decodes with it.

Example:
    >>> header, buf = rows_message(["loss"], [[1, 0.5, 2.0], [2, 1.0]], reset=False)
    >>> header
    {'type': 'rows', 'reset': False, 'names': ['loss'], 'n': 2}
    >>> np.frombuffer(buf, dtype=ROWS_DTYPE).reshape(2, 3)[:, 2].tolist()
    [2.0, nan]
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["WIRE", "LEADING", "ROWS_DTYPE", "rows_message", "json_safe"]

WIRE: dict[str, Any] = json.loads((Path(__file__).parent / "wire.json").read_text(encoding="utf-8"))
_BUFFER = WIRE["rows"]["buffer"]
LEADING: tuple[str, ...] = tuple(_BUFFER["leading"])  # the columns before the metrics: step, wall_time
ROWS_DTYPE = np.dtype(_BUFFER["dtype"])


def rows_message(names: Sequence[str], rows: Sequence[Sequence[float]],
                 reset: bool) -> tuple[dict[str, Any], memoryview]:
    """The custom message and binary buffer that carry ``rows`` to the page.

    Each row holds the ``LEADING`` values then one value per name, in ``names`` order; a
    row shorter than that (it ended before later metrics appeared) is padded with NaN.

    Example:
        >>> header, buf = rows_message(["a", "b"], [[0, 0.1, 1.0, 2.0]], reset=True)
        >>> header["n"], len(buf) == (len(LEADING) + 2) * ROWS_DTYPE.itemsize
        (1, True)
    """
    width = len(LEADING) + len(names)
    arr = np.full((len(rows), width), np.nan, dtype=ROWS_DTYPE)
    for i, r in enumerate(rows):
        arr[i, : len(r)] = r
    header = {"type": "rows", "reset": bool(reset), "names": list(names), "n": len(rows)}
    return header, memoryview(arr.tobytes())


def json_safe(x: Any) -> Any:
    """A value as the page receives it (a live view): NaN and inf become None (JSON has
    no NaN), numpy scalars plain numbers, tuples lists, keys strings; containers walked.

    Example:
        >>> json_safe({"x": (1.0, float("nan")), 2: np.float32(0.5)})
        {'x': [1.0, None], '2': 0.5}
    """
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return json_safe(x.item())
    return x

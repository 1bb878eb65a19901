"""Torch's intra-op threads while fitting small problems.

Example:
    >>> with small_problem_threads(60):
    ...     torch.get_num_threads()
    1
"""

from __future__ import annotations

import contextlib
import threading

import torch

__all__ = ["small_problem_threads"]

_THREADS_LOCK = threading.Lock()


@contextlib.contextmanager
def small_problem_threads(n: int, limit: int = 512):
    """One intra-op thread while fitting on at most ``limit`` points.

    The kernel matrices of a small design are tiny; torch's thread pool then costs
    far more than it saves (measured: a 60-point GP fit takes 0.4 s on one thread,
    4 s on two busy cores, 18 s when the cores are shared with other work). The
    setting is process-wide, so it is restored right after the fit.
    """
    if n > limit or torch.get_num_threads() == 1:
        yield
        return
    with _THREADS_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

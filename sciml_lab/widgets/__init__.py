"""Widgets: the live monitor and the job board (anywidget; front end in ``js/``)."""

from .board import JobBoard
from .monitor import Monitor

__all__ = ["Monitor", "JobBoard"]

"""Stages: ordinary runs that a pipeline job drives one slice at a time.

A stage is an engine (an emulator, a flow-MCMC sampler, ...) with its own run
folder inside the pipeline's (``<run>/stages/<name>/``: ``job.json``,
``result.nc``, ``checkpoint.pt``, ``events.jsonl``), written by the runtime's own
step loop (:func:`~sciml_lab.runtime.loop.drive`), so that ``sciml_lab.open`` of a
stage folder gives an ordinary job with its monitor and result. The pipeline's
step advances its current stage for a slice of wall time and then returns, so
the pipeline job itself stays responsive to stop and extend; each slice ends with
the stage's result and checkpoint on disk, so a pipeline killed mid-stage resumes
that stage from where it was.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sciml_lab.demo import PiEngine
    >>> stage = Stage(PiEngine(steps=4, samples_per_step=1000), Path(tempfile.mkdtemp()) / "pi", parent="p")
    >>> while stage.advance(1.0) != "done": pass
    >>> stage.record["step"], sorted(p.name for p in stage.store.path.iterdir())
    (4, ['checkpoint.pt', 'events.jsonl', 'job.json', 'result.nc'])
    >>> again = Stage.reopen(PiEngine(steps=4, samples_per_step=1000), stage.store.path)
    >>> again.record["step"], again.status
    (4, 'done')
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

from ..runtime.loop import drive, now_iso, python_info
from ..runtime.messages import Events, Message, Status, Stop
from ..runtime.store import RunStore

__all__ = ["Stage", "StageFailed"]


class StageFailed(RuntimeError):
    """A stage's engine failed; its run folder keeps what it produced."""


class _Slice:
    """The link of one slice of a stage's loop: a stop command once the slice's wall
    time is up; keeps the stage's latest metrics and its error."""

    local = False  # the result goes to the run folder, not through the link

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.metrics: dict[str, float] = {}
        self.steps = 0
        self.error: str | None = None

    def commands(self) -> list[Message]:
        # at least one step per slice, however long the loop's first save took
        return [Stop()] if self.steps and time.monotonic() >= self.deadline else []

    def send(self, message: Message) -> None:
        if isinstance(message, Events) and message.rows:
            self.metrics, self.steps = dict(message.rows[-1][2]), self.steps + len(message.rows)
        elif isinstance(message, Status) and message.error:
            self.error = message.error


class Stage:
    """An engine run as a stage of a pipeline, in run folder ``folder`` (None: in memory).

    ``advance(seconds)`` runs its loop for about that long (at least one step) and
    returns the stage's status: ``"done"``, ``"stopped"`` (the slice ended, the
    stage goes on next time) or raises :class:`StageFailed`.
    """

    def __init__(self, engine: Any, folder: "Path | None", *, parent: str = "", record: Mapping[str, Any] | None = None,
                 save_every: float = 5.0):
        self.engine, self.save_every = engine, save_every
        self.store = RunStore(folder) if folder is not None else None
        self.record: dict[str, Any] = dict(record) if record is not None else {
            "name": folder.name if folder is not None else engine.kind, "kind": engine.kind, "status": "queued",
            "created": now_iso(), "config": engine.config(), "executor": "thread", "step": 0, "elapsed_s": 0.0,
            "versions": python_info(), "budget_words": list(engine.budget_words), "save_every": save_every,
            "threads": None, "parent": parent}
        self.status = str(self.record.get("status", "queued"))
        self.metrics: dict[str, float] = dict(self.record.get("metrics") or {})
        if self.store is not None and record is None:
            self.store.create()
            self.store.write_json(self.record)

    @classmethod
    def reopen(cls, engine: Any, folder: Path) -> "Stage":
        """The stage of run folder ``folder``, its ``engine`` (built from the folder's
        config) loaded from the folder's checkpoint, the record from its ``job.json``."""
        store = RunStore(folder)
        record = store.read_json()
        state = store.read_checkpoint()
        if state is None:
            raise StageFailed(f"stage {folder} has no checkpoint.pt to resume from")
        engine.load_state_dict(state["engine"])
        record["step"], record["elapsed_s"] = int(state["runtime"]["step"]), float(state["runtime"]["elapsed_s"])
        return cls(engine, folder, record=record, save_every=float(record.get("save_every", 5.0)))

    @staticmethod
    def saved_config(folder: Path) -> dict[str, Any]:
        """The engine config in ``folder``'s ``job.json`` (to rebuild the engine)."""
        return dict(RunStore(folder).read_json()["config"])

    def advance(self, seconds: float) -> str:
        """Run the stage for about ``seconds`` of wall time (at least one step)."""
        if self.engine.done() and self.status == "done":
            return "done"
        link = _Slice(seconds)
        self.status = drive(self.engine, link, self.store, self.record, save_every=self.save_every)
        self.metrics = dict(self.record.get("metrics") or link.metrics)
        if self.status == "failed":
            where = f"; its run folder {self.store.path} keeps what it produced" if self.store is not None else ""
            raise StageFailed(f"stage {self.record['name']} ({self.record['kind']}) failed: "
                              f"{link.error or self.record.get('error')}{where}")
        return self.status

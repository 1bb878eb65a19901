"""Where the next simulator runs go, and the runs in flight.

:class:`Design` chooses each batch in the unit cube: the space-filling initial
design, then active learning (a share continues the space-filling sequence, the
rest goes where the emulator is least certain, or where a run most lowers its
integrated variance), weighed away from where the simulator fails once it has.
:class:`InFlight` submits a batch to the simulator's pool and collects the results
in run order (a failing call is retried once), so the run table never depends on
the pool or its timing.

Example:
    >>> from sciml_lab.emulate.settings import EmulateSettings
    >>> from sciml_lab.emulate.runs import Runs
    >>> s = EmulateSettings(bounds={"a": (0, 1), "b": (0, 1)}).resolve(n_rows=None)
    >>> design = Design()
    >>> u = design.next_points(s, Runs.empty(2), None, left=100)
    >>> u.shape, design.n_batches, design.n_space_filling
    ((20, 2), 1, 20)
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import math
from typing import Any

import numpy as np
import torch

from ..kit.state import State
from .design import candidates, initial_design, select_batch
from .emulator import Emulator, small_problem_threads
from .feasibility import SuccessClassifier
from .runs import Box, Runs
from .settings import EmulateSettings
from .simulator import Simulator, SimulatorRun, describe_error

__all__ = ["Design", "InFlight"]


@dataclasses.dataclass
class Design(State):
    """The batches chosen so far and the points taken from the space-filling sequence."""

    n_batches: int = 0
    n_space_filling: int = 0
    focus: Any = None  # unit-cube points the active batches choose among (see EmulateEngine.focus_on)

    def next_points(self, s: EmulateSettings, runs: Runs, emulator: Emulator | None, left: int) -> np.ndarray:
        """The next batch in the unit cube (at most ``left`` points): the initial design
        (or, while nothing could be fitted, more of it), then active learning."""
        d = len(s.bounds)
        seed = s.seed * 1000 + self.n_batches
        self.n_batches += 1
        if runs.n == 0 or emulator is None:
            n = min(s.n_initial if runs.n == 0 else s.batch_size, left)
            return self._sequence(n, d, s.design, s.seed)
        n = min(s.batch_size, left)
        if s.acquisition == "random":
            return np.random.default_rng(seed).uniform(size=(n, d))
        if emulator.device.type == "cpu":
            with small_problem_threads(runs.n):
                return self._active(s, runs, emulator, n, seed)
        return self._active(s, runs, emulator, n, seed)

    def _sequence(self, n: int, d: int, kind: str, seed: int) -> np.ndarray:
        u = initial_design(n, d, kind, seed=seed, start=self.n_space_filling)
        self.n_space_filling += n
        return u

    def _active(self, s: EmulateSettings, runs: Runs, emulator: Emulator, n: int, seed: int) -> np.ndarray:
        """The next ``n`` points: a share continues the space-filling design (so a model
        whose hyper-parameters are wrong, an input wrongly judged inactive say, cannot
        steer every new run away from where it is wrong), the rest goes where the
        emulator is least certain (``"variance"``) or where a run most lowers its
        variance integrated over the box (``"ivr"``, GP only).

        Once a run has failed, the acquisition is weighted by the probability of
        success and conditioned on the failed points, so the batch avoids the region
        where the simulator fails."""
        d = runs.U.shape[1]
        n_explore = int(math.ceil(s.explore * n)) if n > 1 else 0
        clf = runs.success_model(s.seed)
        m = max(1024, min(256 * d, 4096))
        if self.focus is not None and len(self.focus):
            u_explore, cand = self._focused(n_explore, m, seed)
        else:
            u_explore = self._space_filling(n_explore, d, clf, s.seed, seed)
            cand = torch.as_tensor(candidates(m, d, seed), dtype=torch.float64)
        x_train = torch.as_tensor(runs.U[runs.ok()], dtype=torch.float64)
        acquisition, reference = "variance", None
        if s.acquisition == "ivr" and emulator.model_kind == "gp":
            # the integral runs over an independent Sobol' cloud; its size keeps the
            # (outputs x reference x candidates) covariance block under ~256 MB
            n_latent = int(emulator.model.n_outputs)
            n_ref = int(min(1024, max(128, 3.2e7 // (n_latent * m))))
            acquisition = "ivr"
            reference = torch.as_tensor(candidates(n_ref, d, seed + 7919), dtype=torch.float64)
        feasibility: dict[str, Any] = {}
        if clf is not None:
            feasibility["success"] = torch.as_tensor(clf.predict(cand.numpy()))
            if reference is not None:
                feasibility["reference_success"] = torch.as_tensor(clf.predict(reference.numpy()))
        seen = torch.as_tensor(np.concatenate([runs.U[runs.status == 1], u_explore]), dtype=torch.float64)
        return np.concatenate([u_explore, select_batch(emulator.model, x_train, cand, n - n_explore,
                                                       acquisition=acquisition, reference=reference, seen=seen,
                                                       **feasibility)])

    def _focused(self, n_explore: int, m: int, seed: int) -> tuple[np.ndarray, torch.Tensor]:
        """With a focus: the exploring share is a seeded random pick of the focus points
        (a spread over the region they cover), the candidates are at most ``m`` of them."""
        focus = np.asarray(self.focus, dtype=float)
        rng = np.random.default_rng(seed)
        u_explore = focus[rng.choice(len(focus), n_explore, replace=len(focus) < n_explore)]
        cand = focus if len(focus) <= m else focus[rng.choice(len(focus), m, replace=False)]
        return u_explore, torch.as_tensor(cand, dtype=torch.float64)

    def _space_filling(self, n: int, d: int, clf: SuccessClassifier | None, base_seed: int, seed: int
                       ) -> np.ndarray:
        """The next ``n`` points of the space-filling sequence; once runs have failed,
        each is kept with its probability of success (a seeded draw), so the share
        thins out where the simulator fails without ever leaving a region for good."""
        if clf is None or n == 0:
            return self._sequence(n, d, "sobol", base_seed)
        rng = np.random.default_rng(seed)
        kept: list[np.ndarray] = []
        for _ in range(64):  # at most 64 n points looked at: then the rest are taken as they come
            u = self._sequence(n, d, "sobol", base_seed)
            keep = rng.uniform(size=n) < clf.predict(u)
            kept.extend(u[keep])
            if len(kept) >= n:
                break
        else:
            kept.extend(u)
        return np.array(kept[:n]).reshape(n, d)


class InFlight:
    """The runs submitted to ``simulator`` and not yet in the run table."""

    def __init__(self, simulator: Simulator | None, poll: float):
        self.simulator, self.poll = simulator, poll
        self.pending: list[SimulatorRun] = []
        self._finished: dict[int, tuple[SimulatorRun, np.ndarray | None]] = {}  # done, waiting for earlier runs

    def clear(self) -> None:
        """Forget the runs in flight (a checkpoint does not hold them: they are chosen again)."""
        self.pending, self._finished = [], {}

    def submit(self, u: np.ndarray, box: Box, first: int) -> None:
        """Start one run per row of ``u`` (unit cube), numbered from ``first``."""
        x = box.from_unit(u)
        for i in range(len(u)):
            run = SimulatorRun(first + i, u[i], x[i])
            self.simulator.submit(run)
            self.pending.append(run)

    def collect(self, runs: Runs, inputs: list[str], batch: int) -> None:
        """Wait up to ``poll`` seconds, then move every finished run to ``runs`` in run
        order; a failing call is retried once, then recorded as a failed run."""
        if not self.pending:
            return
        cf.wait([r.future for r in self.pending], timeout=self.poll)
        still = []
        finished: list[tuple[SimulatorRun, np.ndarray | None]] = []
        for run in self.pending:
            if not run.future.done():
                still.append(run)
                continue
            try:
                flat, layout = run.future.result()
                runs.adopt_layout(layout, inputs)
                finished.append((run, flat))
            except Exception as exc:  # noqa: BLE001 - a failing simulator call never stops the job
                run.errors.append(describe_error(exc))
                if run.attempts < 2:
                    self.simulator.submit(run)  # retried once
                    still.append(run)
                else:
                    finished.append((run, None))
        self.pending = still
        # rows are appended in run order, whatever order the pool finishes them in, so
        # the design (and every fit on it) does not depend on the pool or its timing
        self._finished.update({run.index: (run, flat) for run, flat in finished})
        while runs.n in self._finished:
            run, flat = self._finished.pop(runs.n)
            runs.append(run.x, run.u, flat, batch=batch, attempts=run.attempts,
                        error=run.errors[-1] if flat is None else "")

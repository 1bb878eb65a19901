"""Overhead of a live monitor on a running job.

The same engine (the demo's Monte Carlo pi, ~1.5 ms steps) runs a fixed number of
steps headless and with a live Monitor attached, alternately, several times, in
one process. The monitor's comm serialises every message to JSON as a kernel
would (the browser side is not part of this measure). Prints the median wall and
CPU times (the CPU time of the whole process counts the pump thread's work, and
is less sensitive to other load on the machine) and the slowdown ratios; the
target is under 3 %.

    python bench/monitor_overhead.py [--steps 2000] [--samples 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import comm
import torch
from comm.base_comm import BaseComm

from sciml_lab.demo import PiEngine
from sciml_lab.runtime import launch
from sciml_lab.widgets import Monitor


class SerialisingComm(BaseComm):
    """Does the work a kernel comm does per message: JSON text and buffer copies."""

    messages = 0
    bytes = 0

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        SerialisingComm.messages += 1
        SerialisingComm.bytes += len(json.dumps(data, default=str)) + sum(len(bytes(b)) for b in buffers or [])


def run(steps: int, monitored: bool, samples: int) -> tuple[float, float, int]:
    """Wall and CPU seconds (all threads of this process: the job's, the pump's) of one run."""
    job = launch(PiEngine(samples_per_step=samples, steps=steps, seed=0), store=False, start=False)
    mon = Monitor(job) if monitored else None
    t0, c0 = time.perf_counter(), time.process_time()
    job.start()
    job.wait()
    dt = time.perf_counter() - t0
    time.sleep(0.15)  # the pump's last flush belongs to the monitored run's CPU time; same idle for both
    dc = time.process_time() - c0
    flushes = mon.flushes if mon else 0
    if mon is not None:
        mon.close()
    return dt, dc, flushes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=100_000, help="points per step (sets the step time)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    comm.create_comm = lambda *a, **k: SerialisingComm(*a, **k)
    torch.set_num_threads(1)  # one core for the job, the other free for the pump and the OS
    run(200, True, args.samples)  # warm up torch and the widget machinery
    head, live, flushes = [], [], []
    for _ in range(args.repeats):  # interleaved, so drifts of the machine hit both alike
        head.append(run(args.steps, False, args.samples)[:2])
        dt, dc, f = run(args.steps, True, args.samples)
        live.append((dt, dc))
        flushes.append(f)
    hw, hc = (statistics.median(x[i] for x in head) for i in (0, 1))
    mw, mc = (statistics.median(x[i] for x in live) for i in (0, 1))
    print(f"budget: {args.steps} steps x {args.samples} points, {args.repeats} interleaved repeats, "
          f"median of each; torch threads 1")
    print(f"{'run':<24}{'wall (s)':>10}{'CPU (s)':>10}{'steps/s':>10}{'flushes':>9}")
    print(f"{'headless (baseline)':<24}{hw:>10.3f}{hc:>10.3f}{args.steps / hw:>10.0f}{'-':>9}")
    print(f"{'with live monitor':<24}{mw:>10.3f}{mc:>10.3f}{args.steps / mw:>10.0f}"
          f"{statistics.median(flushes):>9.0f}")
    print(f"slowdown ratio, wall: {mw / hw:.4f} ({100 * (mw / hw - 1):+.2f} %); "
          f"CPU: {mc / hc:.4f} ({100 * (mc / hc - 1):+.2f} %); target < 3 %")
    print(f"all repeats, headless wall: {', '.join(f'{x[0]:.3f}' for x in head)}")
    print(f"all repeats, monitor wall:  {', '.join(f'{x[0]:.3f}' for x in live)}")


if __name__ == "__main__":
    main()

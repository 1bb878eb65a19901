"""Overhead of a live monitor on a running job.

The same engine (the demo's Monte Carlo pi, ~1 ms steps) runs a fixed number of
steps headless and with a live Monitor attached, alternately, several times, in
one process. The monitor's comm serialises every message to JSON as a kernel
would (the browser side is not part of this measure). Prints the median wall
times and the slowdown ratio; the target is under 3 %.

    python bench/monitor_overhead.py [--steps 3000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import comm
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


def run(steps: int, monitored: bool, samples: int) -> tuple[float, int]:
    job = launch(PiEngine(samples_per_step=samples, steps=steps, seed=0), store=False, start=False)
    mon = Monitor(job) if monitored else None
    t0 = time.perf_counter()
    job.start()
    job.wait()
    dt = time.perf_counter() - t0
    flushes = mon.flushes if mon else 0
    if mon is not None:
        mon.close()
    return dt, flushes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--samples", type=int, default=20_000, help="points per step (sets the step time)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    comm.create_comm = lambda *a, **k: SerialisingComm(*a, **k)
    run(200, True, args.samples)  # warm up torch and the widget machinery
    head, live, flushes = [], [], []
    for _ in range(args.repeats):  # interleaved, so drifts of the machine hit both alike
        head.append(run(args.steps, False, args.samples)[0])
        dt, f = run(args.steps, True, args.samples)
        live.append(dt)
        flushes.append(f)
    h, m = statistics.median(head), statistics.median(live)
    print(f"budget: {args.steps} steps x {args.samples} points, {args.repeats} interleaved repeats, "
          f"median of each")
    print(f"{'run':<28}{'wall (s)':>10}{'steps/s':>10}{'flushes':>9}")
    print(f"{'headless (baseline)':<28}{h:>10.3f}{args.steps / h:>10.0f}{'-':>9}")
    print(f"{'with live monitor':<28}{m:>10.3f}{args.steps / m:>10.0f}{statistics.median(flushes):>9.0f}")
    print(f"slowdown ratio: {m / h:.4f}  ({100 * (m / h - 1):+.2f} %; target < 3 %)")
    print(f"all repeats, headless: {', '.join(f'{x:.3f}' for x in head)}")
    print(f"all repeats, monitor:  {', '.join(f'{x:.3f}' for x in live)}")


if __name__ == "__main__":
    main()

"""Run statistical tests over many seeds and count how often each passes.

A test that asserts a statistical bound on one seed is only honest if the bound holds on
most seeds: another machine (another CPU, another BLAS code path) takes another path through
floating-point rounding, which is as good as another seed. This script reruns the named tests
with ``--seed-shift k`` for ``k = 0 .. n-1`` (tests/conftest.py adds ``k`` to the seed of every
engine a test builds) and prints, per test, how many of the ``n`` runs passed. The k-of-n
bounds in the tests and the comments beside them come from these counts.

Usage::

    .venv/bin/python bench/seed_sweep.py -n 20 tests/test_flowmc.py::test_until_stops_once_converged
    .venv/bin/python bench/seed_sweep.py -n 20 -k "mixture or banana" tests/test_flowmc_targets.py
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(shift: int, targets: list[str], keyword: str | None) -> dict[str, str]:
    """Outcome ('passed', 'failed', 'skipped') of each test with every engine seed shifted by ``shift``."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--seed-shift={shift}",
               f"--junitxml={report}", *targets]
        if keyword:
            cmd += ["-k", keyword]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        outcomes = {}
        for case in ET.parse(report).getroot().iter("testcase"):
            name = f"{case.get('classname')}::{case.get('name')}"
            kinds = {child.tag for child in case}
            outcomes[name] = ("failed" if kinds & {"failure", "error"} else
                              "skipped" if "skipped" in kinds else "passed")
        return outcomes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="+", help="pytest node ids or files")
    parser.add_argument("-n", type=int, default=20, help="number of seeds (shifts 0 .. n-1)")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression")
    args = parser.parse_args(argv)

    passed: dict[str, int] = collections.Counter()
    failed_at: dict[str, list[int]] = collections.defaultdict(list)
    t0 = time.time()
    for shift in range(args.n):
        for name, outcome in run_once(shift, args.targets, args.keyword).items():
            passed[name] += outcome == "passed"
            if outcome == "failed":
                failed_at[name].append(shift)
        print(f"seed shift {shift} done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    width = max(map(len, passed), default=10)
    print(f"{'test':<{width}}  passed / {args.n}  failed at shifts")
    for name in sorted(passed):
        print(f"{name:<{width}}  {passed[name]:>6} / {args.n}  {failed_at.get(name, [])}")


if __name__ == "__main__":
    main()

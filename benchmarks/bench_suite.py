"""How long `make test` takes, where the time goes, and whether it keeps its budget (15 minutes on 2 cores).

Runs the suite as `make test` does (`pytest -n WORKERS --dist loadgroup`, tests/groups.py) and prints: wall
time, the CPU time of pytest and everything it started (a shared machine stretches wall time, CPU time
much less), the load average before and after (say what else ran), and the modules that took longest
(summed test time, from pytest's JUnit XML), the daemon groups marked. Exits 1 past the budget.

Run: `.venv/bin/python benchmarks/bench_suite.py [--workers N|auto|0] [pytest args...]`, e.g.
`--workers 0` for one process. Not part of `make bench`: it runs the whole suite.

Measured (issue 17; this 2-core machine, shared with six other checkouts' work, so load is given):
- before, main at cdc92bb, one process, 1019 tests: 5 min 55 s wall, 112 s CPU (load 11 -> 5); again
  4 min 53 s, 99 s CPU (load 4.7 -> 5.4). The waits: test_slurm_real 72 s (a 45 s test waiting out
  Slurm's 30 s SuspendTimeout, 14 s of teardown waiting on zombies), every `status` test running the
  host's sinfo, whose configless DNS lookup took ~9 s each when DNS was slow (94 s in test_ops alone).
- after, this work on the main of 08:00, 1219 tests (with the new real-daemon suites): `-n 2` 3 min 00 s
  wall, 139 s CPU (load 2.7 -> 2.7); at 08:07, 1226 tests, `make test` (2 workers) 4 min 12 s wall, 159 s
  CPU (load 4.5 -> 8.3), every test passing with an untracked stacks/Pulumi.research.yaml present.
- after, main at 27a5404, 1248 tests (the boot suite on trixie and sid), back to back while others'
  boot and Slurm suites ran: one process 8 min 30 s wall, 149 s CPU (load 5.6 -> 4.6); `make test`
  6 min 26 s wall, 170 s CPU (load 4.6 -> 6.4); the daemon suites took about 3 min of worker time.
  (Both started in the background: four Ctrl-C tests failed on an inherited ignored SIGINT, fixed since.)
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 15 * 60
DAEMON_MODULES = ("test_slurm_real", "test_elastic_slurm", "test_boot_real", "test_realroots")


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="auto", help="pytest-xdist workers: a number, auto, or 0")
    args, rest = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}"]
        if args.workers != "0":
            argv += ["-n", args.workers, "--dist", "loadgroup"]
        load_before = os.getloadavg()
        started, cpu_before = time.monotonic(), _cpu_of_children()
        done = subprocess.run(argv + rest, cwd=ROOT, check=False)
        wall, cpu = time.monotonic() - started, _cpu_of_children() - cpu_before
        load_after = os.getloadavg()
        per_module: collections.Counter[str] = collections.Counter()
        if junit.exists():
            for case in ET.parse(junit).iter("testcase"):
                per_module[case.get("classname", "?")] += float(case.get("time") or 0)
    print(f"\nworkers {args.workers}: {wall:.0f} s wall, {cpu:.0f} s CPU (pytest and all it started)")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1 min)")
    print("slowest modules (summed test time; * real daemons):")
    for module, seconds in per_module.most_common(12):
        mark = "*" if module.rsplit(".", 1)[-1] in DAEMON_MODULES else " "
        print(f"  {seconds:7.1f} s {mark} {module}")
    if wall > BUDGET_S:
        print(f"over budget: {wall:.0f} s > {BUDGET_S} s")
        return 1
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

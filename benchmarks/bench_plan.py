"""How long `azcluster plan STACK --json` takes as a whole process, and how much memory it peaks at.

Targets (issue 3): within 1.5x of a process that merely imports the pulumi-azure-native classes the
program uses, and under 250 MiB peak RSS, for the example stack and for a large (>= 512 node) stack.
The cost of a plan must not grow with the node count beyond the extra scale sets.

Each command runs once to warm the file cache and bytecode, then all of them run in turn `--runs` times
(default 5), so load from other processes falls on all alike; the table shows the median, min and max
wall time, the median user+sys CPU time and the highest peak RSS of the timed runs (per process, from
os.wait4). The verdict compares medians.
Run: `make bench`, or `.venv/bin/python benchmarks/bench_plan.py [--runs N] [STACK...]`.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIME_RATIO_TARGET = 1.5
RSS_TARGET_MIB = 250
LARGE_NODES = 512

# The modules the stack program uses and one class of each, so the lazily loaded modules really load.
BASELINE_CLASSES = {
    "compute": "VirtualMachineScaleSet",
    "network": "VirtualNetwork",
    "storage": "StorageAccount",
    "storagecache": "AmlFilesystem",
    "managedidentity": "UserAssignedIdentity",
    "authorization": "RoleAssignment",
    "privatedns": "PrivateZone",
    "resources": "ResourceGroup",
}


@dataclass
class Timing:
    label: str
    command: list[str]
    check_json: bool = False
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_rss_mib: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def run_once(self, record: bool) -> None:
        """One process: wall time, user+sys CPU time and peak RSS (os.wait4 reports them per process)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            process = subprocess.Popen(self.command, stdout=out, stderr=err, cwd=ROOT)
            _, status, usage = os.wait4(process.pid, 0)
            elapsed = time.perf_counter() - start
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode != 0:
                err.seek(0)
                raise SystemExit(
                    f"{self.label}: exit {process.returncode}\n{err.read().decode(errors='replace')}"
                )
            if self.check_json and not record:
                out.seek(0)
                json.loads(out.read())  # the plan printed one valid JSON document
        if record:
            self.seconds.append(elapsed)
            self.cpu_seconds.append(usage.ru_utime + usage.ru_stime)
            self.peak_rss_mib = max(self.peak_rss_mib, usage.ru_maxrss / 1024)  # ru_maxrss: KiB on Linux


def measure(timings: list[Timing], runs: int) -> None:
    """Warm every command up once, then run them in turn `runs` times, so that load from other processes
    falls on all of them alike."""
    for timing in timings:
        timing.run_once(record=False)
    for _ in range(runs):
        for timing in timings:
            timing.run_once(record=True)


def azcluster_command() -> list[str]:
    script = Path(sys.executable).with_name("azcluster")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from azcluster.cli import main; main()"]


def baseline_command(extra_types: set[str]) -> list[str]:
    """A process that imports the azure-native classes the program uses, and nothing of azcluster."""
    classes = {(module, name) for module, name in BASELINE_CLASSES.items()}
    for token in extra_types:
        parts = token.split(":")
        if len(parts) == 3 and parts[0] == "azure-native":
            classes.add((parts[1], parts[2]))
    lines = ["import importlib"]
    for module, name in sorted(classes):
        lines.append(f"getattr(importlib.import_module('pulumi_azure_native.{module}'), '{name}')")
    return [sys.executable, "-c", "\n".join(lines)]


def default_stacks() -> list[str]:
    """The example stack and the stack with the most nodes (it must have >= 512)."""
    sys.path.insert(0, str(ROOT))
    from azcluster import stackfile

    sizes = {}
    for name in stackfile.available_stacks(ROOT / "stacks"):
        loaded = stackfile.load_stack(str(ROOT / "stacks" / f"Pulumi.{name}.yaml"))
        if loaded.spec is not None:
            sizes[name] = loaded.spec.total_nodes
    largest = max(sizes, key=sizes.get) if sizes else None
    if largest is None or sizes[largest] < LARGE_NODES:
        raise SystemExit(f"no stack in stacks/ has >= {LARGE_NODES} nodes; pass stack names explicitly")
    return ["example", largest] if "example" in sizes and largest != "example" else [largest]


def resource_types(command: list[str]) -> set[str]:
    document = json.loads(
        subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    )
    return {resource["type"] for resource in document["resources"]}


def row(timing: Timing, ratio: float, verdict: str) -> str:
    return (
        f"{timing.label:<44} {timing.median:>9.2f} {min(timing.seconds):>7.2f} {max(timing.seconds):>7.2f} "
        f"{statistics.median(timing.cpu_seconds):>6.2f} {timing.peak_rss_mib:>9.0f} {ratio:>7.2f}  {verdict}"
    ).rstrip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="*", help="stack names or files (default: example and the largest)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command (default 5)")
    options = parser.parse_args()
    stacks = options.stacks or default_stacks()
    plan = azcluster_command()

    types: set[str] = set()
    for stack in stacks:
        types |= resource_types([*plan, "plan", stack, "--json"])
    baseline = Timing("baseline: import azure-native classes", baseline_command(types))
    results = [
        Timing(f"azcluster plan {Path(stack).name[:24]} --json", [*plan, "plan", stack, "--json"], True)
        for stack in stacks
    ]
    measure([baseline, *results], options.runs)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {options.runs} timed runs (median)")
    header = (
        f"{'command':<44} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>6} {'peak MiB':>9}"
        f" {'x base':>7}  verdict"
    )
    print(header)
    print("-" * len(header))
    print(row(baseline, 1.0, ""))
    missed = False
    for timing in results:
        ratio = timing.median / baseline.median
        fast = ratio <= TIME_RATIO_TARGET
        small = timing.peak_rss_mib <= RSS_TARGET_MIB
        missed |= not (fast and small)
        verdict = ("ok" if fast else f"SLOW (> {TIME_RATIO_TARGET}x)") + (
            "" if small else f", BIG (> {RSS_TARGET_MIB} MiB)"
        )
        print(row(timing, ratio, verdict))
    print(f"targets: <= {TIME_RATIO_TARGET}x the baseline's median time, <= {RSS_TARGET_MIB} MiB peak RSS")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

"""What `azcluster stop`, `start` and `status` cost the client at scale, against the project's fake ARM.

The fake Resource Manager (tests/fakes/arm.py, loopback HTTPS) serves a cluster of N nodes in islands of
100 (the spec's default island_max_nodes) plus a login VM; each command runs as its own process, the way a
user runs it (`--json`, the Azure CLI credential from a fake `az`), so its CPU time is the client's alone
(os.wait4), never the fake's. The table gives, per command and N: requests the client sent (by kind), wall
time, and the client's user+sys CPU time; then the CPU per node as the slope between the two sizes (the
process start-up and imports cancel out).

Target (issue 10): `start` reads every node once, and costs <= 0.5 ms of client CPU per node at 4096 nodes.
Run: `make bench`, or `.venv/bin/python benchmarks/bench_ops.py [--nodes 512 4096] [--page-size 100]`.
Exits 1 when the CPU target is missed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.arm import FakeArm, FakeArmServer, fake_az_script  # noqa: E402

H100 = "Standard_ND96isr_H100_v5"
CPU_PER_NODE_TARGET_MS = 0.5
STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: bench
    pools:
      - name: gpu
        size: Standard_ND96isr_H100_v5
        nodes: {nodes}
"""


def island_sizes(nodes: int) -> list[int]:
    from azcluster.components.spec import PoolSpec

    return PoolSpec.model_validate({"name": "gpu", "size": H100, "nodes": nodes}).island_sizes()


def kind(path: str) -> str:
    tail = path.split("/providers/", 2)[-1]
    tail = re.sub(r"virtualMachineScaleSets/[^/]+", "virtualMachineScaleSets/{set}", tail)
    tail = re.sub(r"operations/[^/]+", "operations/{id}", tail)
    return tail


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, user+sys CPU s, exit code, stderr) of one client process."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(proc.pid, 0)  # files, not pipes: a large document cannot block it
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stderr = err.read()
        if proc.returncode == 0:
            json.loads(out.read() or "null")  # one JSON document, as the CLI promises
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode, stderr


def measure(nodes: int, page_size: int, commands: list[str]) -> dict[str, dict]:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        fake = FakeArm()
        fake.page_size = page_size
        fake.lro_polls = 1
        fake.lro_retry_after = "1"  # azure-core reads "0" as "none given" and waits its own interval
        fake.add_cluster("bench", {"gpu": (H100, island_sizes(nodes))})
        stack = tmp / "Pulumi.bench.yaml"
        stack.write_text(STACK.format(nodes=nodes), encoding="utf-8")
        fake_az_script(tmp / "bin", fake.token)
        with FakeArmServer(fake, tmp) as server:
            env = {
                **os.environ,
                "PATH": f"{tmp / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "AZCLUSTER_ARM_ENDPOINT": server.url,
                "REQUESTS_CA_BUNDLE": str(server.ca_path),
                "AZURE_SUBSCRIPTION_ID": fake.subscription_id,
                "AZURE_CONFIG_DIR": str(tmp / "azure-config"),
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
                "COLUMNS": "200",
            }
            exe = str(Path(sys.executable).parent / "azcluster")
            for command in commands:
                fake.requests.clear()
                args = [exe, command, str(stack), "--json", "--auth", "cli"]
                if command == "status":
                    args.append("--no-diagnose")
                wall, cpu, code, stderr = run(args, env)
                if code != 0:
                    raise SystemExit(f"{command} at {nodes} nodes exited {code}:\n{stderr[-2000:]}")
                kinds = collections.Counter(f"{r.method} {kind(r.path)}" for r in fake.requests)
                results[command] = {"wall": wall, "cpu": cpu, "requests": len(fake.requests), "kinds": kinds}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs=2, default=[512, 4096], metavar=("SMALL", "LARGE"))
    parser.add_argument("--page-size", type=int, default=100, help="scale-set VMs and NICs per page")
    parser.add_argument("--commands", nargs="+", default=["stop", "start", "status"])
    args = parser.parse_args()
    small, large = args.nodes
    by_size = {n: measure(n, args.page_size, args.commands) for n in (small, large)}
    print(f"{'command':<8} {'nodes':>6} {'requests':>9} {'wall s':>8} {'CPU s':>7}")
    for n, results in by_size.items():
        for command, r in results.items():
            print(f"{command:<8} {n:>6} {r['requests']:>9} {r['wall']:>8.2f} {r['cpu']:>7.2f}")
    print(f"\nrequests by kind at {large} nodes:")
    for command, r in by_size[large].items():
        print(f"  {command}:")
        for what, count in sorted(r["kinds"].items(), key=lambda item: -item[1]):
            print(f"    {count:>5}  {what}")
    ok = True
    print(f"\nclient CPU per node (slope {small} -> {large} nodes):")
    for command in args.commands:
        slope_ms = (by_size[large][command]["cpu"] - by_size[small][command]["cpu"]) / (large - small) * 1000
        verdict = ""
        if command == "start":
            ok = slope_ms <= CPU_PER_NODE_TARGET_MS
            verdict = f"  (target <= {CPU_PER_NODE_TARGET_MS} ms: {'met' if ok else 'MISSED'})"
        print(f"  {command:<8} {slope_ms:.3f} ms{verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

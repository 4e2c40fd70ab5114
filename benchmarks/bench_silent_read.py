"""How long `azcluster status` takes to give up on a read that is accepted and never answered, with the
timeouts it ships with (timeouts.py: GET_READ_TIMEOUT_S, GET_READ_RETRIES; no environment override).

The fake Resource Manager (tests/fakes/arm.py, loopback HTTPS) serves a small cluster and holds one
island's VM list for ever (`FakeArm.stall`). Before this bound, such a `status` was still silent after
150 s (75 s per try, three retries). Target: exit 1 naming the request, within two minutes; expected
about (1 + GET_READ_RETRIES) x GET_READ_TIMEOUT_S = 40 s.

Run: `.venv/bin/python benchmarks/bench_silent_read.py` (not part of `make bench`: it waits ~40 s on
purpose). Exits 1 when the target is missed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from azcluster import timeouts  # noqa: E402
from tests.fakes.arm import FakeArm, FakeArmServer, fake_az_script  # noqa: E402

H100 = "Standard_ND96isr_H100_v5"
TARGET_S = 120.0
STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: bench
    pools:
      - name: gpu
        size: Standard_ND96isr_H100_v5
        nodes: 4
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        fake = FakeArm()
        (hung, *_rest) = fake.add_cluster("bench", {"gpu": (H100, [2, 2])})
        silent = fake.stall("GET", f"/virtualMachineScaleSets/{hung.name}/virtualMachines", times=100)
        stack = tmp / "Pulumi.bench.yaml"
        stack.write_text(STACK, encoding="utf-8")
        fake_az_script(tmp / "bin", fake.token)
        with FakeArmServer(fake, tmp) as server:
            env = {
                key: value
                for key, value in os.environ.items()
                if key not in (timeouts.ENV_READ_TIMEOUT, timeouts.ENV_DEADLINE)
            }
            env.update(
                {
                    "PATH": f"{tmp / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "AZCLUSTER_ARM_ENDPOINT": server.url,
                    "REQUESTS_CA_BUNDLE": str(server.ca_path),
                    "AZURE_SUBSCRIPTION_ID": fake.subscription_id,
                    "AZURE_CONFIG_DIR": str(tmp / "azure-config"),
                    "NO_PROXY": "127.0.0.1,localhost",
                    "no_proxy": "127.0.0.1,localhost",
                    "COLUMNS": "200",
                }
            )
            exe = str(Path(sys.executable).parent / "azcluster")
            started = time.monotonic()
            done = subprocess.run(
                [exe, "status", str(stack), "--auth", "cli", "--no-diagnose"],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            wall = time.monotonic() - started
    said = " ".join(done.stderr.split())
    named = f"/virtualMachineScaleSets/{hung.name}/virtualMachines did not answer" in said
    ok = done.returncode == 1 and named and wall <= TARGET_S
    print(f"read timeout {timeouts.GET_READ_TIMEOUT_S:g}s, {timeouts.GET_READ_RETRIES} retry")
    print(f"status exited {done.returncode} after {wall:.1f} s; tries held: {len(silent.held)}")
    print(f"message: {said[:300]}")
    print(f"target: exit 1 naming the request within {TARGET_S:g} s: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Booting nodes the way Azure does: how long from `systemd-nspawn --boot` to cloud-init done and to a joined
Slurm cluster, for the login node and two GPU nodes of tests/components/test_boot_real.py.

One boot per run (the same one the test makes: real systemd and cloud-init on a cached Debian root, the
rendered cloud-configs through a NoCloud seed). Prints, per suite, the seconds from start to each node's
cloud-init `done`, to both GPU nodes listed by sinfo on the login node, and systemd's own
`systemd-analyze time` line from each container. Needs root, systemd-nspawn and debootstrap; the first run
builds the root (minutes). Run: `.venv/bin/python benchmarks/bench_boot.py [--suite trixie|sid]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import realroots  # noqa: E402
from tests.components import nspawn, test_boot_real  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default=test_boot_real.SUITE, choices=sorted(realroots.SUITES))
    args = parser.parse_args()
    why = nspawn.missing() or realroots.missing_tools()
    if why:
        print(f"bench_boot: cannot boot nodes here: {why}", file=sys.stderr)
        return 0
    root = realroots.ensure_root(args.suite, realroots.BOOT_PACKAGES)
    info = realroots.root_info(root)
    with (
        tempfile.TemporaryDirectory(prefix="bench-boot-") as work,
        test_boot_real.boot(root, Path(work)) as c,
    ):
        print(f"suite {args.suite} (Slurm {info['slurm']}), {len(c.all)} containers booted at once")
        for host, seconds in sorted(c.cloud_init_s.items(), key=lambda item: item[1]):
            print(f"  {host:24} cloud-init done after {seconds:6.1f} s")
        print(f"  {'cluster':24} both GPU nodes joined after {c.joined_s:6.1f} s")
        for node in c.all:
            line = node.sh("systemd-analyze time 2>/dev/null | head -1").stdout.strip()
            print(f"  {node.container.hostname:24} {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

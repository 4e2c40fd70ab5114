"""The team's Slurm accounts: how long azc-slurm-accounts.py takes against a real slurmdbd on MariaDB.

On a cluster the login node runs it from azc-slurm-accounts.timer (OnUnitInactiveSec=2min, AccuracySec=10s)
and right after `azcluster users sync`, so a new user can submit, and a removed one is refused, within
about 130 s plus the time printed here. Per team size (users spread over 4 accounts with GPU limits):
the first sync on an empty database (accounts, QOS, associations, default accounts), a second one (nothing
to change: the cost of every timer run), and removing one user.

Needs root, unshare and the trixie accounting root (tests/realroots.py ACCOUNTING_PACKAGES; built on first
use: minutes). Run: `.venv/bin/python benchmarks/bench_accounts.py [--sizes 10,200]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from azcluster.components.spec import ClusterSpec  # noqa: E402
from tests import realroots  # noqa: E402
from tests.components import slurmlab  # noqa: E402
from tests.components import test_slurm_accounting_real as real  # noqa: E402

ACCOUNTS = ("vision", "nlp", "speech", "infra")


def team(size: int) -> ClusterSpec:
    base = real.team_spec([]).model_dump(exclude_unset=True)
    base["team"] = {
        "users": [{"name": f"u{i:05d}", "uid": 3000 + i, "account": ACCOUNTS[i % 4]} for i in range(size)],
        "accounts": [{"name": name, "max_gpus_per_user": 8} for name in ACCOUNTS],
    }
    return ClusterSpec.model_validate(base)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,200")
    args = parser.parse_args()
    why = realroots.missing_tools()
    if why:
        print(f"bench_accounts: cannot run daemons here: {why}", file=sys.stderr)
        return 0
    print("trixie: Slurm 24.11 + MariaDB 11.8; wall seconds; the timer adds up to ~130 s on a cluster")
    for size in [int(n) for n in args.sizes.split(",")]:
        spec = team(size)
        with tempfile.TemporaryDirectory(prefix="bench-accounts-") as work:
            lab = slurmlab.new_lab("trixie", Path(work), spec, packages=realroots.ACCOUNTING_PACKAGES)
            try:
                lab.start_controller()
                real.hand_over(lab, spec)
                first = _timed(lab)
                again = _timed(lab)
                fewer = spec.model_copy(
                    update={"team": spec.team.model_copy(update={"users": spec.team.users[1:]})}
                )
                real.hand_over(lab, fewer)
                removal = _timed(lab)
            finally:
                lab.close()
        print(
            f"{size:>5} users: first sync {first:6.2f} s, unchanged {again:5.2f} s, "
            f"one removed {removal:5.2f} s"
        )
    return 0


def _timed(lab: slurmlab.SlurmLab) -> float:
    start = time.monotonic()
    real.sync_accounts(lab)
    return time.monotonic() - start


if __name__ == "__main__":
    raise SystemExit(main())

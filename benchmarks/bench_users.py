"""The team's users on a node: how long azc-users.py takes to apply a users file, and from a new users file
to the new user's first successful SSH login (real sshd of Debian trixie, PAM as Debian configures it).

On a cluster the nodes run the applier from azc-users.timer: OnUnitInactiveSec=2min (120 s after the
previous run ended) with AccuracySec=10s, so from `azcluster users sync` (or `up`) to a login on every node
takes at most about 130 s plus the apply time printed here, plus the hand-over's Run Command (tens of
seconds). This measures what is not the timer: per team size, the first apply on a fresh node (every
group, user, home and key made), a second apply (nothing to change), and from writing a file with one more
user to that user's `ssh ... id -u` answering, with the applier run at once.

Needs root, unshare and the trixie sshd root (built on first use: minutes).
Run: `.venv/bin/python benchmarks/bench_users.py [--sizes 10,200,1000]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import realroots  # noqa: E402
from tests.components import test_users_ssh_real as ssh_test  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,200,1000")
    args = parser.parse_args()
    why = realroots.missing_tools()
    if why:
        print(f"bench_users: cannot run nodes here: {why}", file=sys.stderr)
        return 0
    root = realroots.ensure_root("trixie", realroots.SSH_PACKAGES)
    private, public = ssh_test.keypair("bench@laptop")
    print("trixie sshd root; times are wall seconds; the timer adds up to ~130 s on a cluster")
    for size in [int(n) for n in args.sizes.split(",")]:
        team = [{"name": f"u{i:05d}", "uid": 3000 + i, "ssh_keys": [public]} for i in range(size)]
        with tempfile.TemporaryDirectory(prefix="bench-users-") as work:
            home = Path(work) / "home"
            (home / ".azcluster").mkdir(parents=True)
            os.chmod(home, 0o755)
            os.chmod(home / ".azcluster", 0o755)
            binds = {"/home": home, "/opt/azc": ssh_test.SCRIPTS}
            with realroots.Machine(root, "login", Path(work) / "m", binds=binds) as machine:
                machine.run(["ssh-keygen", "-A"])
                machine.run(["mkdir", "-p", "/run/sshd"])
                machine.path("/root/key").write_text(private)
                machine.path("/root/key").chmod(0o600)
                ssh_test.hand_over(home, ssh_test.users_file(team))
                first = _timed(machine)
                again = _timed(machine)
                sshd = machine.popen(["/usr/sbin/sshd", "-D", "-e"], stderr=subprocess.DEVNULL)
                ssh_test.wait_for_sshd(machine)
                newcomer = {"name": "newcomer", "uid": 2999, "ssh_keys": [public]}
                start = time.monotonic()
                ssh_test.hand_over(home, ssh_test.users_file([*team, newcomer]))
                _timed(machine)
                login = ssh_test.ssh(machine, "newcomer", "/root/key")
                to_login = time.monotonic() - start
                sshd.kill()
                ok = login.returncode == 0 and login.stdout.strip() == "2999"
                print(
                    f"  {size:5d} users: first apply {first:6.2f} s, unchanged apply {again:5.2f} s, "
                    f"new user to SSH login {to_login:5.2f} s{'' if ok else ' (LOGIN FAILED)'}"
                )
    return 0


def _timed(machine: realroots.Machine) -> float:
    start = time.monotonic()
    result = machine.run(["python3", "/opt/azc/azc-users.py", "apply"], timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"azc-users.py failed: {result.stdout[-2000:]}")
    return time.monotonic() - start


if __name__ == "__main__":
    raise SystemExit(main())

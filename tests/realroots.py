"""Debian root file systems for tests that run real daemons of the versions production runs.

The host is Debian 12 (Slurm 22.05); production runs Slurm 24.11 and newer. So tests build Debian root
file systems from Debian's own packages with `debootstrap --variant=minbase` (trixie: Slurm 24.11, sid:
Slurm 26.05), cache them outside the checkout and run the daemons inside them, in namespaces made with
`unshare`, loopback only.

Roots
    ensure_root(suite, packages=SLURM_PACKAGES) -> Path
        The root for `suite` with `packages` installed: built once, cached under
        ${AZCLUSTER_TEST_CACHE:-/var/cache/azcluster-tests}/roots/<suite>-<hash of the package list>.
        Built in a temporary directory next to it and renamed into place (so a half-built root is never
        seen), under a file lock (so parallel pytest workers, or `.ci/run`'s pre-build, never build the
        same root twice). Downloaded packages are kept under <cache>/debs/<suite> for the next build.
        The mirror is the host's own (the first Debian archive in /etc/apt/sources.list[.d]), else
        debootstrap's default; AZCLUSTER_DEBIAN_MIRROR overrides it.
    root_or_skip(suite, packages=SLURM_PACKAGES) -> Path
        The same for tests: skips, saying why, only where root, debootstrap or unshare is missing.
        A build that fails is an error, not a skip.
    root_info(root) -> dict
        What the root holds: {"suite", "packages", "slurm": "24.11.5", "built": ...}.
    `python -m tests.realroots [SUITE...]` builds them (in parallel) ahead of the tests (.ci/run).

Machines
    Loopback() -> a network namespace with only a loopback interface, up, holding 127.0.0.1 and
        127.0.0.2/8: glibc's getaddrinfo with AI_ADDRCONFIG (which slurmctld uses) finds no address when
        127.0.0.1 is the only one, so a second loopback address is needed. Held by a sleeping process;
        `close()` ends it. `call(fn)` runs fn in a thread inside the namespace: a socket it opens
        listens there (a test's in-process fake served to the machines).
    Machine(root, hostname, workdir, net=Loopback | None, binds={inside: host}) -> one "computer": its
        own UTS namespace (host name), mount namespace and PID namespace, the root mounted through an
        overlay whose upper layer is under `workdir` (so the cached root is never written), and its own
        /tmp, /run and /dev/shm (tmpfs: each slurmd needs its own /tmp, or PMIx collides on
        `spmix_appdir ... File exists`). Machines given the same Loopback share its network namespace;
        net=None gives the machine its own; net=HOST_NETWORK keeps the test's (to reach its fakes).
        `binds` bind-mounts host directories inside (read-write).
        machine.run(argv, ...)    -> CompletedProcess: a command inside it (nsenter into its namespaces
                                     and root), as root
        machine.popen(argv, ...)  -> Popen, the same without waiting (daemons in the foreground)
        machine.path(inside)      -> the host path of a file inside (/proc/<init>/root/...: read and
                                     write its files from the test while it runs)
        machine.close()           -> kills everything in it (its PID namespace ends), unmounts
    Use both as context managers, or close them in a `finally`: nothing outlives the test.

Everything needs root (namespaces, mounts, chroot); the tests that use this module skip without it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SUITES = {"trixie": "24.11", "sid": "26.05"}
"""Debian suites whose Slurm production-like tests run, and the Slurm release each ships."""

SLURM_PACKAGES = (
    "slurmctld",
    "slurmd",
    "slurm-client",
    "munge",
    # A small PMIx program is built inside the root (srun --mpi=pmix). libltdl-dev (pulled in by
    # libpmix-dev) depends on the virtual package automake-1.17, which debootstrap's resolver does not
    # follow: name automake itself.
    "libpmix-dev",
    "automake",
    "gcc",
    "libc6-dev",
    # What the node scripts use: ip (loopback set-up), python3 (azc-slurm-health.sh), ps.
    "iproute2",
    "python3",
    "procps",
)
"""What the real-Slurm suites need inside a root."""

BOOT_PACKAGES = (
    "slurmctld",
    "slurmd",
    "slurm-client",
    "munge",
    "systemd",
    "systemd-sysv",
    "dbus",
    "cloud-init",
    # cloud-init needs python3-cryptography, which depends on a virtual package that python3-cffi-backend
    # provides; debootstrap's resolver does not follow virtual packages, so name it.
    "python3-cffi-backend",
    "python3",
    "iproute2",
    "procps",
)
"""What a root needs to boot nodes the way Azure does (tests/components/test_boot_real.py): systemd as
init, cloud-init, and what the images and Microsoft's packages give the node scripts."""

SSH_PACKAGES = ("openssh-server", "openssh-client", "python3", "iproute2", "procps")
"""A node people log in to: OpenSSH's server and client (with PAM, as Debian configures them) and the
python3 azc-users.py runs with (tests/components/test_users_ssh_real.py)."""
SSH_SUITES = ("trixie",)
"""Suites whose sshd roots `python -m tests.realroots` builds."""

ACCOUNTING_PACKAGES = (
    "slurmctld",
    "slurmd",
    "slurm-client",
    "slurmdbd",
    "munge",
    "mariadb-server",
    "python3",
    "iproute2",
    "procps",
)
"""A controller that keeps accounts: slurmctld and slurmd with slurmdbd on a real MariaDB, and the python3
that azc-users.py and azc-slurm-accounts.py run with (tests/components/test_slurm_accounting_real.py)."""
ACCOUNTING_SUITES = ("trixie", "sid")
"""Suites whose slurmdbd + MariaDB roots `python -m tests.realroots` builds."""

MONITORING_PACKAGES = ("prometheus", "prometheus-node-exporter", "python3", "iproute2", "procps")
"""A node's metrics side: Prometheus (run in agent mode, as the nodes run it; Debian builds it without the
`azuread` remote-write option, see the test) and its node exporter with the InfiniBand collector
(tests/components/test_metrics_real.py)."""
MONITORING_SUITES = ("trixie", "sid")
"""Suites whose monitoring roots `python -m tests.realroots` builds: trixie ships Prometheus 2.53, sid 3.x."""

BOOT_SUITES = ("trixie", "sid")
"""Suites whose boot roots `python -m tests.realroots` builds beside the Slurm roots."""

BUILD_TIMEOUT_S = 1800
INFO_FILE = ".azcluster-root.json"


def cache_dir() -> Path:
    return Path(os.environ.get("AZCLUSTER_TEST_CACHE") or "/var/cache/azcluster-tests")


def _key(packages: Iterable[str]) -> str:
    return hashlib.sha256(",".join(sorted(set(packages))).encode()).hexdigest()[:12]


def root_path(suite: str, packages: Iterable[str] = SLURM_PACKAGES) -> Path:
    """Where the root for `suite` with `packages` is (or will be) cached."""
    return cache_dir() / "roots" / f"{suite}-{_key(packages)}"


def missing_tools() -> str | None:
    """Why roots cannot be built or used here, or None."""
    if os.geteuid() != 0:
        return "needs root (namespaces, mounts, chroot)"
    absent = [tool for tool in ("debootstrap", "unshare", "nsenter", "mount") if shutil.which(tool) is None]
    if absent:
        return (
            f"needs {', '.join(absent)} (Debian: apt-get install -y debootstrap util-linux mount; "
            ".ci/run does)"
        )
    return None


def host_mirror() -> str | None:
    """The Debian archive the host's apt uses (AZCLUSTER_DEBIAN_MIRROR overrides), or None."""
    if os.environ.get("AZCLUSTER_DEBIAN_MIRROR"):
        return os.environ["AZCLUSTER_DEBIAN_MIRROR"]
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            # one-line format: "deb [opts] URL suite comp"; deb822: "URIs: URL ..."
            match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line) or re.match(r"^URIs:\s*(\S+)", line)
            if match and re.search(r"/debian/?$", match.group(1)):
                return match.group(1).rstrip("/")
    return None


def root_info(root: Path) -> dict:
    return json.loads((root / INFO_FILE).read_text())


def ensure_root(suite: str, packages: Sequence[str] = SLURM_PACKAGES) -> Path:
    """The cached root for `suite` with `packages`, built first when missing (see the module docstring)."""
    final = root_path(suite, packages)
    if (final / INFO_FILE).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be building it: wait for it
        if (final / INFO_FILE).exists():
            return final
        if final.exists():  # a root without its info file is left from an interrupted rename: rebuild
            shutil.rmtree(final)
        _build(suite, packages, final)
    return final


def _build(suite: str, packages: Sequence[str], final: Path) -> None:
    debs = cache_dir() / "debs" / suite
    debs.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    target = work / "root"
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--cache-dir={debs}",
        f"--include={','.join(packages)}",
        suite,
        str(target),
    ]
    mirror = host_mirror()
    if mirror:
        argv.append(mirror)
    log = work / "debootstrap.log"
    try:
        with log.open("w") as out:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S, check=False
            )
        if done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"debootstrap {suite} exited {done.returncode}:\n{tail}")
        slurm = _chroot_output(target, ["slurmd", "-V"]).split()
        info = {
            "suite": suite,
            "packages": sorted(packages),
            "slurm": slurm[1] if len(slurm) > 1 else "",
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mirror": mirror or "debootstrap's default",
        }
        (target / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
        os.rename(target, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _chroot_output(root: Path, argv: Sequence[str]) -> str:
    done = subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, timeout=60)
    return done.stdout


def root_or_skip(suite: str, packages: Sequence[str] = SLURM_PACKAGES) -> Path:
    """ensure_root for a test: pytest.skip (saying why) only where this machine cannot have roots."""
    import pytest

    reason = missing_tools()
    if reason:
        pytest.skip(f"Debian {suite} root file system: {reason}")
    return ensure_root(suite, packages)


# --- namespaces ------------------------------------------------------------------------------------------

_REAPER = (
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "print('ready', flush=True)\n"
    "while True:\n"
    "    try:\n"
    "        os.wait()\n"
    "    except ChildProcessError:\n"
    "        time.sleep(0.5)\n"
)
"""PID 1 of a machine: reaps the daemons that fork into the background (no zombies), ends on SIGTERM."""

_LOOPBACK_SETUP = "ip link set lo up && ip addr add 127.0.0.2/8 dev lo && echo ready && exec sleep infinity"


_CLONE_NEWNET = 0x40000000


class Loopback:
    """A network namespace with only loopback (127.0.0.1 and 127.0.0.2/8), kept by a sleeping process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", _LOOPBACK_SETUP],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = self.proc.stdout.readline() if self.proc.stdout else ""
        if ready.strip() != "ready":
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.close()
            raise RuntimeError(f"could not set up a loopback network namespace: {err.strip()}")

    @property
    def ns(self) -> str:
        return f"/proc/{self.proc.pid}/ns/net"

    def call(self, fn):
        """fn() in a thread that has entered this network namespace (setns(2) moves only the calling
        thread), so the sockets fn opens belong to it; returns fn's result, raises what it raised."""
        outcome: dict = {}

        def inside() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(self.ns, os.O_RDONLY)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns({self.ns})")
                outcome["value"] = fn()
            except BaseException as err:  # handed to the caller's thread
                outcome["error"] = err
            finally:
                os.close(fd)

        thread = threading.Thread(target=inside, name="in-netns")
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def close(self) -> None:
        _end(self.proc)

    def __enter__(self) -> Loopback:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream:
            stream.close()


_MACHINE_SETUP = r"""
set -eu
root="$1" upper="$2" work="$3" merged="$4" host="$5" own_net="$6" host_net="$7"; shift 7
mount --make-rprivate /
hostname "$host"
mount -t overlay overlay -o "lowerdir=$root,upperdir=$upper,workdir=$work" "$merged"
mount -t proc proc "$merged/proc"
mount --rbind /sys "$merged/sys"
mount --rbind /dev "$merged/dev"
for dir in tmp run dev/shm; do
    mkdir -p "$merged/$dir" && mount -t tmpfs -o mode=1777 tmpfs "$merged/$dir"
done
while [ "$#" -gt 1 ]; do
    mkdir -p "$merged$1" && mount --bind "$2" "$merged$1"; shift 2
done
if [ "$host_net" = 1 ]; then addr=127.0.0.1; else addr=127.0.0.2; fi
echo "127.0.0.1 localhost
$addr $host" > "$merged/etc/hosts"
echo "$host" > "$merged/etc/hostname"
if [ "$own_net" = 1 ]; then
    chroot "$merged" sh -c 'ip link set lo up && ip addr add 127.0.0.2/8 dev lo'
fi
exec chroot "$merged" python3 -c "$REAPER"
"""


def _fresh_boot() -> list[str]:
    """unshare options for a machine that has just booted: its own time namespace whose CLOCK_BOOTTIME
    (the uptime that /proc/uptime and sysinfo(2) report, which slurmd sends slurmctld) starts near 0.
    Slurm ignores a registration for a node it is powering up from a host that booted before the
    resume request ("Still waiting for boot"), as it would from a VM that never restarted."""
    uptime = int(float(Path("/proc/uptime").read_text().split()[0]))
    return ["--time", f"--boottime={-uptime}"]


HOST_NETWORK = "host"
"""Machine(net=HOST_NETWORK): stay in the caller's network namespace (to reach a test's loopback fakes;
the machine's daemons must then take free ports)."""


class Machine:
    """One computer made of namespaces over a cached root (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        hostname: str,
        workdir: Path,
        net: Loopback | str | None = None,
        binds: Mapping[str, Path] | None = None,
        fresh_boot: bool = False,
    ) -> None:
        self.root = Path(root)
        self.hostname = hostname
        self.workdir = Path(workdir)
        for sub in ("upper", "work", "merged"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        bind_args: list[str] = []
        for inside, host in (binds or {}).items():
            bind_args += [inside, str(host)]
        host_net = net == HOST_NETWORK
        enter_net = ["nsenter", f"--net={net.ns}", "--"] if isinstance(net, Loopback) else []
        own_net = ["--net"] if net is None else []
        argv = [
            *enter_net,
            "unshare",
            *(_fresh_boot() if fresh_boot else []),
            "--uts",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            *own_net,
            "--",
            "sh",
            "-c",
            _MACHINE_SETUP,
            "sh",
            str(self.root),
            str(self.workdir / "upper"),
            str(self.workdir / "work"),
            str(self.workdir / "merged"),
            hostname,
            "1" if net is None else "0",
            "1" if host_net else "0",
            *bind_args,
        ]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "REAPER": _REAPER},
        )
        ready = self.proc.stdout.readline() if self.proc.stdout else ""
        if ready.strip() != "ready":
            _end(self.proc)
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"machine {hostname} did not start: {err.strip()}")
        self.init_pid = _child_pid(self.proc.pid)

    def _enter(self) -> list[str]:
        # nsenter's --wd changes directory before it changes root (util-linux 2.38), which leaves the
        # command in a directory outside its root: env changes to / inside instead.
        return ["nsenter", f"--target={self.init_pid}", "--all", "--root", "--", "/usr/bin/env", "--chdir=/"]

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        base["HOME"] = "/root"
        return {**base, **(extra or {})}

    def run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the machine (as root, in / of its root) and wait for it."""
        return subprocess.run(
            [*self._enter(), *argv],
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=False,
        )

    def popen(self, argv: Sequence[str], env: Mapping[str, str] | None = None, **kwargs) -> subprocess.Popen:
        """Start `argv` inside the machine without waiting (it dies with the machine)."""
        return subprocess.Popen([*self._enter(), *argv], env=self.env(env), **kwargs)

    def path(self, inside: str) -> Path:
        """The host path of `inside` as the machine sees it (through /proc/<its init>/root: the merged
        overlay and its private mounts; valid while the machine runs)."""
        return Path(f"/proc/{self.init_pid}/root") / inside.lstrip("/")

    def close(self) -> None:
        # unshare --kill-child: killing it kills the PID namespace's init, and the kernel every process
        # in that namespace with it; the mount namespace (overlay, tmpfs) goes with its last process.
        _end(self.proc)

    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _child_pid(pid: int) -> int:
    """The one child of `pid` (unshare --fork's child: the machine's init, as the host numbers it)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError(f"process {pid} has no child")


def _main(argv: list[str]) -> int:
    suites = argv or list(SUITES)
    reason = missing_tools()
    if reason:
        print(f"realroots: cannot build roots here: {reason}", file=sys.stderr)
        return 0
    wanted = [(suite, SLURM_PACKAGES, suite) for suite in suites]
    wanted += [(suite, BOOT_PACKAGES, f"{suite} (boot)") for suite in BOOT_SUITES if suite in suites]
    wanted += [(suite, SSH_PACKAGES, f"{suite} (sshd)") for suite in SSH_SUITES if suite in suites]
    wanted += [
        (suite, ACCOUNTING_PACKAGES, f"{suite} (accounting)")
        for suite in ACCOUNTING_SUITES
        if suite in suites
    ]
    wanted += [
        (suite, MONITORING_PACKAGES, f"{suite} (monitoring)")
        for suite in MONITORING_SUITES
        if suite in suites
    ]
    failed = 0
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        futures = {label: pool.submit(ensure_root, suite, packages) for suite, packages, label in wanted}
        for label, future in futures.items():
            try:
                root = future.result()
                print(f"realroots: {label}: {root} (Slurm {root_info(root)['slurm']})")
            except Exception as err:  # report every suite, then fail
                print(f"realroots: {label}: {err}", file=sys.stderr)
                failed = 1
    return failed


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

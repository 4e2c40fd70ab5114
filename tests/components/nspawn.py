"""Containers that boot real systemd (`systemd-nspawn --boot`) over a cached Debian root, for tests that boot
what azcluster's cloud-config puts on a node the way Azure boots it.

This machine's init is not systemd, so there is no systemd-machined and no unit to run a container in:
`--register=no` (do not ask machined) and `--keep-unit` (stay in the caller's cgroup instead of asking
PID 1 for a scope). Each container gets a cgroup of its own, made here in the cgroup v2 hierarchy and
entered before nspawn starts, because that is the only handle on everything the container runs: the
container's systemd daemonises nothing back into nspawn's process group, and it outlives a killed
nspawn (seen on this machine: systemd, journald, munged, slurmd kept running after SIGKILL to nspawn).
`close()` therefore kills the cgroup (`cgroup.kill`, Linux 5.14+), waits for it to empty and removes it.

`--volatile=overlay` mounts the root read-only under a tmpfs overlay: the cached root is never written, a
container's changes vanish with it, and several containers boot from one root at once.

Container(root, hostname, workdir, netns=None, binds={inside: host}, binds_ro={inside: host})
    .start() / .close() (or a `with` block), .pid1 (the container's systemd as the host numbers it)
    .run(argv) -> CompletedProcess inside it (nsenter into its namespaces), .console() (its boot output)
`missing()` says why this machine cannot run them (or None); `sweep_orphans()` kills what a run killed
with SIGKILL left behind (each cgroup is named after the pid of the run that made it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNIFIED = {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
"""Give the container the cgroup v2 hierarchy alone. On a hybrid host (this one: v1 controllers, v2 at
/sys/fs/cgroup/unified) nspawn would otherwise hand a hybrid layout to the container, which systemd 258
and later refuse ("Detected unsupported legacy cgroup hierarchy, refusing execution", seen with sid's
systemd 262); Azure's images boot with cgroup v2 alone too."""


def cgroup2_mount() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid
    host), or None."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return Path(fields[1])
    return None


def missing() -> str | None:
    """Why containers cannot be booted here, or None."""
    if os.geteuid() != 0:
        return "needs root (namespaces, mounts, cgroups)"
    absent = [tool for tool in ("systemd-nspawn", "nsenter", "unshare") if shutil.which(tool) is None]
    if absent:
        hint = "Debian: apt-get install -y systemd-container util-linux; .ci/run does"
        return f"needs {', '.join(absent)} ({hint})"
    if cgroup2_mount() is None:
        return "needs a cgroup v2 hierarchy (to hold and kill each container)"
    return None


PREFIX = "azc-test-"


def sweep_orphans() -> list[str]:
    """Kill and remove the containers of test runs that no longer exist (a run killed with SIGKILL never
    reaches its `close()`): cgroups named PREFIX<pid>-... whose pid is gone. Returns their names."""
    mount = cgroup2_mount()
    swept = []
    for cgroup in sorted(mount.glob(f"{PREFIX}*")) if mount else []:
        owner = cgroup.name[len(PREFIX) :].split("-", 1)[0]
        if not owner.isdigit() or Path(f"/proc/{owner}").exists():
            continue
        _kill_cgroup(cgroup)
        swept.append(cgroup.name)
    return swept


def _kill_cgroup(cgroup: Path) -> None:
    with contextlib.suppress(OSError):
        (cgroup / "cgroup.kill").write_text("1")
    deadline = time.monotonic() + 20
    while _pids(cgroup) and time.monotonic() < deadline:
        time.sleep(0.1)
    for directory in sorted((p for p in cgroup.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()
    with contextlib.suppress(OSError):
        cgroup.rmdir()


def _pids(cgroup: Path) -> list[int]:
    pids: list[int] = []
    for procs in cgroup.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(pid) for pid in procs.read_text().split()]
    return pids


class Container:
    """One booted machine over `root` (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        hostname: str,
        workdir: Path,
        netns: str | None = None,
        binds: Mapping[str, Path] | None = None,
        binds_ro: Mapping[str, Path] | None = None,
    ) -> None:
        self.root = Path(root)
        self.hostname = hostname
        self.workdir = Path(workdir)
        self.netns = netns
        self.binds = dict(binds or {})
        self.binds_ro = dict(binds_ro or {})
        mount = cgroup2_mount()
        if mount is None:
            raise RuntimeError("no cgroup v2 hierarchy")
        # The owner's pid is in the name, so a later run can kill what a killed run left (sweep_orphans).
        self.cgroup = mount / f"{PREFIX}{os.getpid()}-{hostname}-{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen | None = None
        self._pid1: int | None = None
        self.started = 0.0

    @property
    def console_path(self) -> Path:
        return self.workdir / f"{self.hostname}.console"

    def start(self) -> Container:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cgroup.mkdir()
        argv = [
            "systemd-nspawn",
            "--register=no",
            "--keep-unit",
            "--quiet",
            f"--directory={self.root}",
            "--volatile=overlay",
            f"--machine={self.hostname}",
            f"--hostname={self.hostname}",
            *[f"--bind={host}:{inside}" for inside, host in self.binds.items()],
            *[f"--bind-ro={host}:{inside}" for inside, host in self.binds_ro.items()],
            "--boot",
        ]
        if self.netns is None:
            argv.insert(1, "--private-network")
        # Into the container's own cgroup first, then into the shared network namespace, then nspawn.
        enter = ["sh", "-c", 'echo $$ >"$0/cgroup.procs" && exec "$@"', str(self.cgroup)]
        if self.netns is not None:
            enter += ["nsenter", f"--net={self.netns}", "--"]
        with self.console_path.open("wb") as console:
            self.proc = subprocess.Popen(
                [*enter, *argv],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={"PATH": PATH, "SYSTEMD_LOG_COLOR": "0", "TERM": "dumb", **UNIFIED},
            )
        self.started = time.monotonic()
        return self

    @property
    def pid1(self) -> int:
        """The container's init (PID 1 inside), as the host numbers it."""
        if self._pid1 is not None:
            return self._pid1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for pid in self._cgroup_pids():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                nspid = next(
                    (line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), []
                )
                if len(nspid) > 1 and nspid[-1] == "1":
                    self._pid1 = pid
                    return pid
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.hostname}: systemd-nspawn exited {self.proc.returncode}\n{self.console()}"
                )
            time.sleep(0.2)
        raise RuntimeError(f"{self.hostname}: no init in the container after 30 s\n{self.console()}")

    def _cgroup_pids(self) -> list[int]:
        return _pids(self.cgroup)

    def run(
        self, argv: Sequence[str], timeout: float = 60, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside the container, as root, and wait for it."""
        enter = ["nsenter", f"--target={self.pid1}", "--all", "--root", "--wd", "--"]
        return subprocess.run(
            [*enter, *argv],
            env={"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root", "SYSTEMD_COLORS": "0", **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def console(self, lines: int = 40) -> str:
        try:
            text = self.console_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Kill everything the container runs and remove its cgroup; nothing outlives this."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.cgroup.exists():
            _kill_cgroup(self.cgroup)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        # nspawn mounts in a mount namespace of its own, which ends with it; a mount it left on the host
        # (it should not) would be under the root or the work directory: unmount it.
        for point in _mounts_under((self.root, self.workdir)):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)

    def __enter__(self) -> Container:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()


def _mounts_under(paths: Sequence[Path]) -> list[str]:
    prefixes = [str(Path(p).resolve()) + "/" for p in paths]
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            point = line.split()[1]
            if any((point + "/").startswith(prefix) for prefix in prefixes):
                found.append(point)
    return sorted(found, key=len, reverse=True)

"""A Slurm cluster made the way azcluster's cloud-config makes it, on real daemons of one Debian release.

One loopback network namespace holds a login machine (`<cluster>-login`, the controller) and GPU node
machines named as scale-set VMs are (`<cluster>-<pool>-i<island>-<instance>`), each its own host name,
mount and PID namespace over a cached Debian root (tests/realroots.py). Each machine gets the files its
rendered cloud-config writes (scripts, node.env, munge key, /etc/slurm on the login node) and runs the
same programs the units run: `azc-slurm-controller.sh` on the login node, `azc-slurm-node.sh start` on a
node, `azc-slurm-reaper.sh` as the timer does.

What differs from Azure, each named here and nowhere hidden:
- systemd: `SYSTEMCTL` is a stand-in that starts what the units would (munged, slurmctld, slurmd with
  /etc/default/slurmd's SLURMD_OPTIONS); booting through real systemd and cloud-init is another suite's.
- Slurm comes from the root's Debian packages: node.env's AZC_SLURM_VERSION is set to the root's version,
  so azc-slurm-lib.sh finds it installed instead of fetching Microsoft's packages (no network here).
- Enroot and Pyxis are not downloaded (CURL=false): the node logs that containers are unavailable.
- cgroup.conf leaves the plugin to autodetection: this machine's hierarchy is v1 (production's is v2).
- slurm.conf as the cluster's (`SlurmSettings.for_cluster`) with: proctrack/linuxproc and task/none (no
  cgroup hierarchy to give a test machine), the catalogue's CPU layout of each pool's size but 256 MB and
  no GPUs, a short SlurmdTimeout, and one slurmd port per slot (all machines share one loopback
  namespace).
- Each node machine has its VM size's CPU layout: slurmd's hwloc reads it from HWLOC_SYNTHETIC (hwloc's
  own switch for a described topology; `slurmd -C` then prints that size's sockets, cores and threads)
  instead of this machine's 2 cores, so slurmd finds what slurm.conf declares and logs no "Node
  configuration differs from hardware". Memory is this machine's (slurm.conf declares less).
- 22.05 (Debian 12) needs `SlurmctldParameters=cloud_reg_addrs` for a CLOUD slot to take the address of
  the slurmd that registers (23.11 made that the default and calls the option defunct).
"""

from __future__ import annotations

import base64
import contextlib
import re
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from azcluster.components import bootstrap, cluster_key
from azcluster.components.bootstrap import slurm
from azcluster.components.catalog import find_size
from azcluster.components.spec import ClusterSpec, PoolSpec
from tests import realroots

WAIT_S = 90
"""Upper bound for any one thing the daemons must do (a loaded CI machine is slow); never a timing assert."""

VERSIONS = {"bookworm": "22.05", "trixie": "24.11", "sid": "26.05"}

ARTEFACTS = (
    # A controller's very first start has no state to read: every new cluster logs these once.
    "Could not open node state file",
    "Could not open job state file",
    "Could not open reservation state file",
    "Could not open trigger state file",
    "NOTE: Trying backup state save file",
    # Enroot/Pyxis are not downloaded here (no network): the node says so.
    "Enroot/Pyxis could not be installed",
    # This machine's cgroup hierarchy is v1 (production's is v2, and rendered cgroup.conf says cgroup/v2).
    "cgroup/v1 plugin is deprecated",
    # srun exits the moment its step of a millisecond-long job ends; slurmctld's completion notice to it
    # then finds the socket closed (Slurm's own race, seen with any configuration).
    "slurm_bufs_sendto(msg_type=SRUN_JOB_COMPLETE) failed: Connection reset by peer",
    # slurmctld times its clock at start; on a loaded test machine that is slow.
    "High latency for 1000 calls to gettimeofday()",
    # With accounting, a new cluster's first start has no federation state either, and slurmdbd is asked
    # for the cluster's root association in the moment slurmctld first records the cluster.
    "No fed_mgr state file",
    "We can't find assoc 1 on cluster",
    # slurmdbd's check of MariaDB 11.8's InnoDB settings at its start, though the server reports the 1 GiB
    # buffer pool azc-slurm-controller.sh sets (and the other two settings pass); seen in this machine.
    "Database settings not recommended values: innodb_buffer_pool_size",
)
"""Log lines with `error:` that come from the test machine, not from azcluster's configuration."""

BAD_LINE = re.compile(r"error:|defunct|deprecat", re.IGNORECASE)

SYSTEMCTL_SHIM = r"""#!/bin/bash
# Stands in for systemd in a test machine: starts what azcluster's and Debian's units would start.
set -u
cmd="${1:-}"; shift || true
now=0
if [[ "${1:-}" == --now ]]; then now=1; shift; fi
unit="${1:-}"; unit="${unit%.service}"
stop() {
    pkill -x "$1" || true
    for _ in $(seq 100); do pgrep -x "$1" >/dev/null || return 0; sleep 0.1; done
}
start() {
    case "$unit" in
        munge) stop munged; mkdir -p /run/munge; chown munge: /run/munge; rm -f /run/munge/munge.socket.2*
               su -s /bin/sh munge -c /usr/sbin/munged
               for _ in $(seq 100); do munge -n >/dev/null 2>&1 && break; sleep 0.1; done ;;
        slurmd) stop slurmd; SLURMD_OPTIONS=""; . /etc/default/slurmd; mkdir -p /run/slurm
                # the VM size's CPU layout, as hwloc (and so slurmd) will see it (module docstring)
                if [ -r /etc/azc-lab/hwloc.env ]; then . /etc/azc-lab/hwloc.env; fi
                # shellcheck disable=SC2086
                slurmd $SLURMD_OPTIONS ;;
        slurmctld) stop slurmctld; mkdir -p /run/slurm; SLURMCTLD_OPTIONS=""
                   if [ -r /etc/default/slurmctld ]; then . /etc/default/slurmctld; fi
                   # shellcheck disable=SC2086
                   slurmctld $SLURMCTLD_OPTIONS ;;
        slurmdbd) stop slurmdbd; mkdir -p /run/slurm; slurmdbd ;;
        # mariadb.service's RuntimeDirectory: /run/mysqld (Debian 13), /run/mariadbd (sid)
        mariadb) stop mariadbd; mkdir -p /run/mysqld /run/mariadbd; chown mysql: /run/mysqld /run/mariadbd
                 [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/var/log/mariadb-init.log
                 mariadbd --user=mysql --skip-networking </dev/null >>/var/log/mariadbd.log 2>&1 &
                 for _ in $(seq 300); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 0.1; done ;;
        # the nvidia-imex unit's ExecStart (GB nodes of test_nvlink_slurm_real: a fake daemon)
        nvidia-imex) stop nvidia-imex; /usr/bin/nvidia-imex -c /etc/nvidia-imex/config.cfg ;;
        *) ;;
    esac
}
case "$cmd" in
    enable) if [[ "$now" == 1 ]]; then start; fi ;;
    start|restart) start ;;
    stop) case "$unit" in
              munge) stop munged ;; mariadb) stop mariadbd ;; slurm*|nvidia-imex) stop "$unit" ;;
          esac ;;
    is-active) pgrep -x "$unit" >/dev/null ;;
    *) ;;
esac
"""


def spec() -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "lab",
            "location": "eastus",
            "scheduler": "slurm",
            "pools": [
                # 4 nodes, 2 per island: islands gpu-i0 and gpu-i1, two slots each
                {"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 4, "island_max_nodes": 2},
                {"name": "infer", "size": "Standard_NC96ads_A100_v4", "nodes": 1, "island_max_nodes": 1},
                # one island of 3 slots, for nodes that boot at the same moment
                {"name": "burst", "size": "Standard_ND96isr_H100_v5", "nodes": 3, "island_max_nodes": 3},
                # a VM whose CPU layout differs from the catalogue's (test_slurm_real)
                {"name": "split", "size": "Standard_ND96isr_H100_v5", "nodes": 1, "island_max_nodes": 1},
            ],
        }
    )


def _write_files(machine: realroots.Machine, cloud_config: str, edit=None) -> None:
    """Write what cloud-init's write_files would, into the machine."""
    for entry in yaml.safe_load(cloud_config)["write_files"]:
        content = entry["content"]
        if edit is not None:
            content = edit(entry["path"], content)
        target = machine.path(entry["path"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(int(entry["permissions"], 8))


@dataclass
class SlurmLab:
    suite: str
    root: Path
    work: Path
    spec: ClusterSpec
    version: str
    settings: slurm.SlurmSettings
    net: realroots.Loopback
    key_b64: str
    machines: dict[str, realroots.Machine] = field(default_factory=dict)
    client_output: list[str] = field(default_factory=list)
    dns_zone: str = "lab.azcluster.internal"
    prepare: Any = None
    """Called with each new machine before anything runs in it (a suite's own test-machine changes)."""
    cpu_layouts: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    """Per pool, the (sockets, cores per socket, threads per core) its VMs show, where a test gives them
    another layout than slurm.conf declares."""
    excused: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per log file name, lines a test provokes on purpose (and checks itself)."""
    elastic_config: str | None = None
    """The power programs' configuration (elastic.render_config) the login node's cloud-config carries,
    for a lab with elastic power driven by the real azc-elastic.py."""

    @property
    def login(self) -> realroots.Machine:
        return self.machines[f"{self.spec.name}-login"]

    def _machine(self, hostname: str) -> realroots.Machine:
        # a VM that has just booted (its uptime starts at 0): Slurm checks that for a node it resumed
        machine = realroots.Machine(self.root, hostname, self.work / hostname, self.net, fresh_boot=True)
        self.machines[hostname] = machine
        with machine.path("/etc/hosts").open("a") as hosts:  # the private DNS zone's record
            hosts.write(f"127.0.0.1 {slurm.controller_address(self.dns_zone)}\n")
        shim = machine.path("/usr/local/sbin/azc-test-systemctl")
        shim.parent.mkdir(parents=True, exist_ok=True)
        shim.write_text(SYSTEMCTL_SHIM)
        shim.chmod(0o755)
        if self.prepare is not None:
            self.prepare(machine)
        return machine

    def _node_env(self, path: str, content: str) -> str:
        if path == bootstrap.NODE_ENV_PATH:
            return re.sub(r"^AZC_SLURM_VERSION=.*$", f"AZC_SLURM_VERSION={self.version}", content, flags=re.M)
        return content

    def boot_env(self) -> dict[str, str]:
        return {
            "SYSTEMCTL": "/usr/local/sbin/azc-test-systemctl",
            "CURL": "false",
            "AZC_SLURM_REGISTER_WAIT": str(WAIT_S),
            "AZC_SLURM_VERIFY_WAIT": "3",  # GB nodes' NVLink-domain check
        }

    def start_controller(self, extra: dict[str, str] | None = None, edit_configs=None, before=None) -> None:
        """The login node's files, then azc-slurm-controller.sh as its unit; `before(login)` adds files the
        test needs before slurmctld starts."""
        boot = bootstrap.SlurmBoot(munge_key_b64=self.key_b64, dns_zone=self.dns_zone, extra=extra)
        login = self._machine(f"{self.spec.name}-login")
        _write_files(
            login,
            bootstrap.render_login_cloud_config(
                self.spec, None, None, slurm=boot, elastic_config=self.elastic_config
            ),
            self._node_env,
        )
        # slurm.conf and friends with the test machine's changes (module docstring)
        configs = slurm.render_configs(self.spec, self.settings, extra)
        # This machine's cgroup hierarchy is v1 (hybrid), production's v2: let slurmd detect it.
        configs["cgroup.conf"] = configs["cgroup.conf"].replace("CgroupPlugin=cgroup/v2\n", "")
        if edit_configs is not None:  # a suite's own test-machine changes, which it names
            configs = edit_configs(configs)
        for name, text in configs.items():
            login.path(f"/etc/slurm/{name}").write_text(text)
        if before is not None:
            before(login)
        done = login.run(
            [f"{bootstrap.INSTALL_DIR}/azc-slurm-controller.sh"], env=self.boot_env(), timeout=WAIT_S
        )
        assert done.returncode == 0, done.stdout + done.stderr
        self.client_output.append(done.stderr)

    def boot_node(self, pool: str, island: int, instance: int) -> realroots.Machine:
        """A VM of the island boots: its cloud-config's files, then azc-slurm-node.sh start as its unit."""
        return self.join(self.new_vm(pool, island, instance))

    def new_vm(self, pool: str, island: int, instance: int) -> realroots.Machine:
        """A VM of the island, named as the scale set names it, with its cloud-config's files written."""
        host = f"{bootstrap.computer_name_prefix(self.spec.name, pool, island)}{instance:06x}"
        boot = bootstrap.SlurmBoot(munge_key_b64=self.key_b64, dns_zone=self.dns_zone)
        node = self._machine(host)
        _write_files(node, bootstrap.render_cloud_config(self.spec, pool, island, slurm=boot), self._node_env)
        layout = self.cpu_layouts.get(pool) or _declared_layout(self.settings.hardware[pool])
        env = node.path("/etc/azc-lab/hwloc.env")
        env.parent.mkdir(parents=True, exist_ok=True)
        env.write_text(f'export HWLOC_SYNTHETIC="Package:{layout[0]} Core:{layout[1]} PU:{layout[2]}"\n')
        return node

    def join(self, node: realroots.Machine) -> realroots.Machine:
        """The VM's azc-slurm-node.service runs; returns once its slot answers in slurmctld."""
        host = node.hostname
        done = node.run(
            [f"{bootstrap.INSTALL_DIR}/azc-slurm-node.sh", "start"], env=self.boot_env(), timeout=WAIT_S * 2
        )
        assert done.returncode == 0, f"{host}: {done.stdout}{done.stderr}\n{self.logs()}"
        self.client_output.append(done.stderr)
        node.boot_log = done.stderr  # what the unit logged
        slot = self.slot_of(node)
        self.wait_for(
            f"{slot} ({host}) to answer",
            lambda: not re.search(r"NOT_RESPONDING|DRAIN|POWER", self.node(slot).get("State", "?")),
        )
        return node

    def slot_of(self, node: realroots.Machine) -> str:
        return node.path("/var/lib/azcluster/slurm-node").read_text().strip()

    def stop(self, hostname: str) -> None:
        """The VM is gone (deleted, or deallocated): everything on it ends."""
        self.machines.pop(hostname).close()

    def run(
        self, *argv: str, check: bool = True, machine: realroots.Machine | None = None
    ) -> subprocess.CompletedProcess:
        try:
            done = (machine or self.login).run(list(argv), timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            state = self.login.run(["sh", "-c", "squeue -a; sinfo -N; scontrol -o show node"], timeout=30)
            raise AssertionError(
                f"{' '.join(argv)}: no answer in {WAIT_S} s\n{state.stdout}\n{self.logs()}"
            ) from None
        self.client_output.append(done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: {done.stdout}{done.stderr}")
        return done

    def script(self, name: str, *args: str, machine: realroots.Machine | None = None, env=None):
        done = (machine or self.login).run(
            [f"{bootstrap.INSTALL_DIR}/{name}", *args], env={**self.boot_env(), **(env or {})}, timeout=WAIT_S
        )
        self.client_output.append(done.stderr)
        return done

    def node(self, name: str) -> dict[str, str]:
        """`scontrol show node NAME` as key -> value ({} when slurmctld does not show it)."""
        done = self.run("scontrol", "-o", "show", "node", name, check=False)
        if done.returncode != 0:
            return {}
        fields: dict[str, str] = {}
        for token in done.stdout.split():
            key, sep, value = token.partition("=")
            if sep:
                fields[key] = value
        reason = done.stdout.split(" Reason=", 1)
        if len(reason) == 2:
            fields["Reason"] = reason[1].rsplit(" [", 1)[0]
        return fields

    def job(self, job: str) -> dict[str, str]:
        out = self.run("scontrol", "-o", "show", "job", job).stdout
        return dict(token.split("=", 1) for token in out.split() if "=" in token)

    def wait_for(self, what: str, predicate, timeout: float = WAIT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        nodes = self.run("scontrol", "-o", "show", "node", check=False).stdout
        raise AssertionError(f"timed out waiting for {what}\n{nodes}\n{self.logs()}")

    def wait_for_value(self, what: str, value, timeout: float = WAIT_S):
        """Poll `value()` until it is truthy and return it (bounded, as wait_for)."""
        found = []
        self.wait_for(what, lambda: found.append(value()) or found[-1], timeout)
        return found[-1]

    def logs(self) -> str:
        out = []
        for name, machine in self.machines.items():
            for path in sorted(machine.path("/var/log/slurm").glob("*.log")):
                lines = path.read_text(errors="replace").splitlines()[-15:]
                out.append(f"--- {name}:{path.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def bad_lines(self) -> list[str]:
        """Every `error:`, `defunct` or `deprecated` line from the daemons' logs and the commands' output,
        except the named artefacts of the test machine."""
        texts = [(text, ()) for text in self.client_output]
        for machine in self.machines.values():
            for path in machine.path("/var/log/slurm").glob("*.log"):
                texts.append((path.read_text(errors="replace"), self.excused.get(path.name, ())))
        return [
            line
            for text, excused in texts
            for line in text.splitlines()
            if BAD_LINE.search(line) and not any(known in line for known in (*ARTEFACTS, *excused))
        ]

    def close(self) -> None:
        for name in list(self.machines):
            with contextlib.suppress(Exception):
                self.machines.pop(name).close()
        self.net.close()


def _declared_layout(hardware: slurm.NodeHardware) -> tuple[int, int, int]:
    if hardware.sockets and hardware.cores_per_socket and hardware.threads_per_core:
        return hardware.sockets, hardware.cores_per_socket, hardware.threads_per_core
    return hardware.cpus, 1, 1  # CPUs alone: Slurm reads that as one core per socket


def lab_hardware(pool: PoolSpec) -> slurm.NodeHardware:
    """The pool's size as slurm.conf declares it (catalogue CPUs and layout), with 256 MB and no GPUs."""
    size = find_size(pool.size)
    assert size is not None, pool.size
    return replace(slurm.node_hardware(size), memory_mb=256, gpus=0)


def settings_for(spec: ClusterSpec, dns_zone: str, **changes) -> slurm.SlurmSettings:
    base = {
        "proctrack_type": "proctrack/linuxproc",
        "task_plugin": "task/none",
        "slurmd_timeout_s": 10,
        "per_slot_ports": True,
        "hardware": {pool.name: lab_hardware(pool) for pool in spec.pools},
    }
    return slurm.SlurmSettings.for_cluster(spec, dns_zone, **{**base, **changes})


def new_lab(
    suite: str,
    work: Path,
    spec_: ClusterSpec | None = None,
    packages=realroots.SLURM_PACKAGES,
    **settings_changes,
) -> SlurmLab:
    root = realroots.root_or_skip(suite, packages)
    the_spec = spec_ or spec()
    lab = SlurmLab(
        suite=suite,
        root=root,
        work=work,
        spec=the_spec,
        version=realroots.root_info(root)["slurm"],
        settings=settings_for(the_spec, "lab.azcluster.internal", **settings_changes),
        net=realroots.Loopback(),
        key_b64=cluster_key.new_key(),
    )
    base64.b64decode(lab.key_b64)  # the key is what ClusterKey makes: base64
    return lab


def legacy_extra(lab: SlurmLab) -> dict[str, str]:
    """What a release older than 23.11 needs on top of the rendered slurm.conf (module docstring)."""
    if lab.version.startswith("22."):
        return {"SlurmctldParameters": "enable_configless,cloud_reg_addrs"}
    return {}

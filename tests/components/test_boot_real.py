"""A login node and two GPU nodes booted the way Azure boots them: real systemd, real cloud-init, the rendered
cloud-config handed over through a NoCloud seed, on Debian 13 (trixie: systemd 257, cloud-init 25.1,
Slurm 24.11) and Debian sid (systemd 262, cloud-init 26.2, Slurm 26.05).

Each node is a `systemd-nspawn --boot` container (tests/components/nspawn.py) over one cached root per
suite (tests/realroots.py, BOOT_PACKAGES) that holds what the Azure images and Microsoft's packages would:
systemd, cloud-init, Slurm, munge, python3. cloud-init finds its data in
/var/lib/cloud/seed/nocloud/{user-data,meta-data} (`datasource_list: [NoCloud]`, as Azure's image names
Azure) and runs the cloud-config as Azure's custom data would: bootcmd, write_files, then runcmd
(daemon-reload, enable, start --no-block). One boot of the three containers per suite serves every test
here (a module fixture); they are always killed at the end, SIGTERM included.

What the test machine changes, each named (everything else is the rendered text):
- Slurm comes from the root's Debian packages, not from Microsoft's repository (no network here):
  node.env's AZC_SLURM_VERSION is set to the root's Slurm version, so `slurm_install` finds it installed
  and asks no repository, exactly as on an image that already has the pinned version. For the same
  reason the Enroot/Pyxis download from GitHub fails on the GPU nodes, which log it and go on, and so does
  the metrics installer's (monitoring is on: it retries in the background).
- The three machines share one loopback-only network namespace, so they cannot all listen on 6818 and
  8585: slurm.conf gives each node slot its own slurmd port (SlurmSettings.per_slot_ports) and the second
  GPU node's health endpoint listens on another port (node.env AZC_HEALTH_PORT).
- slurm.conf declares the containers' hardware (this machine's CPUs, a little memory, no GPUs) instead of
  an H100's, and proctrack/linuxproc + task/none; cgroup.conf says `CgroupPlugin=disabled`. This host
  mounts its CPU, memory and cpuset controllers on cgroup v1 hierarchies (hybrid), so the cgroup v2 tree
  the containers get has no controller for Slurm, and Slurm 26.05's slurmd refuses a hybrid host outright
  ("fatal: Hybrid mode is not supported"). Azure's images run cgroup v2 alone.
- The cluster's private DNS zone (slurmctld.<zone> -> the login node) is an /etc/hosts file.
- One root serves both roles, so the Debian daemon a role never has (slurmd on the login node, slurmctld
  on a GPU node) is masked.
Units that fail or retry because this machine has no GPU, InfiniBand, NVMe, Lustre or network are listed
in EXPECTED and RETRYING, each with why; any other failed or restarted unit fails the test.

Skipped, saying why, only without root, systemd-nspawn (Debian: systemd-container), debootstrap or a cgroup
v2 hierarchy; `.ci/run` installs what it needs and builds the roots.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from azcluster.components import bootstrap, cluster_key
from azcluster.components.bootstrap import slurm
from azcluster.components.spec import ClusterSpec
from tests import realroots
from tests.components import nspawn

SUITE = "trixie"
SUITES = ("trixie", "sid")
"""Debian 13 (systemd 257, cloud-init 25.1, Slurm 24.11); sid (systemd 262, cloud-init 26.2, Slurm 26.05)."""
ZONE = "lab.azcluster.internal"
LUSTRE = f"lustre-mgs.{ZONE}"
WAIT_S = 240
"""Upper bound for the boot and the join on a loaded 2-core machine; never a timing assert."""

EXPECTED = {
    "login": {},
    "gpu": {
        "azc-prepare.service": "no NVMe disks to RAID, no GPUs, no nvidia-fabricmanager or nvidia_peermem "
        "on this machine: node preparation reports what it cannot repair and exits 1",
        "azc-health.service": "no GPUs and no InfiniBand here: the health check records the node unhealthy "
        "and exits 1 (Slurm's health hook then drains the node: see the join test)",
    },
}
"""Failed units each role may have here, and why. Anything else in `systemctl --failed` is a bug."""

RETRYING = {
    "azc-mount-lustre.service": "the Lustre MGS name never resolves here; the unit retries every 30 s by "
    "design (Restart=on-failure) and never blocks boot",
    "azc-metrics-install.service": "no network here: downloading Prometheus and node_exporter fails; the "
    "installer retries every 5 minutes (Restart=on-failure) in the background, and the nodes still boot, "
    "pass cloud-init and join Slurm (the tests below)",
}
"""Units that may restart here, and why; every other unit the cloud-config starts must never restart."""

WANTED = {
    "login": ["azc-slurm-controller.service", "slurmctld.service", "munge.service"],
    "gpu": ["azc-slurm-node.service", "slurmd.service", "munge.service", "azc-health-server.service"],
}
"""The units each role must have active for Slurm to work (the controller's and the node's, and theirs)."""

MASKED = {"login": "slurmd.service", "gpu": "slurmctld.service"}
"""The Debian daemon a role never has on Azure (the root holds both): masked in that role's container."""

pytestmark = [
    pytest.mark.xdist_group("boot-real"),
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        bool(nspawn.missing() or realroots.missing_tools()),
        reason=f"booting nodes: {nspawn.missing() or realroots.missing_tools()}",
    ),
]


def _spec() -> ClusterSpec:
    """A small stack whose GPU nodes need what this machine lacks: H100 GPUs, InfiniBand, NVMe, Lustre."""
    return ClusterSpec.model_validate(
        {
            "name": "lab",
            "location": "eastus",
            "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 2, "island_max_nodes": 2}],
            "monitoring": {"enabled": True},
        }
    )


METRICS = bootstrap.MetricsValues(
    "http://127.0.0.1:9/dataCollectionRules/dcr-0/streams/Microsoft-PrometheusMetrics/api/v1/write", "0" * 32
)
"""Monitoring on: the metrics piece boots too (its installer cannot download here: RETRYING)."""


@dataclass
class Node:
    role: str
    container: nspawn.Container
    written: list[str] = field(default_factory=list)  # paths the cloud-config writes

    def sh(self, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.container.run(["sh", "-c", command], timeout=timeout)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.container.run(["systemctl", "show", unit, *[f"--property={p}" for p in props]]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    @property
    def units(self) -> list[str]:
        return [
            Path(p).name for p in self.written if p.startswith(bootstrap.UNIT_DIR + "/") and p.count("/") == 4
        ]

    def journal(self, unit: str, lines: int = 30) -> str:
        return self.sh(f"journalctl --no-pager -o cat -n {lines} -u {unit}").stdout


@dataclass
class Cluster:
    login: Node
    nodes: list[Node]
    slurm_version: str
    booted_s: float
    joined_s: float
    cloud_init_s: dict[str, float] = field(default_factory=dict)  # per host: boot to cloud-init done

    @property
    def all(self) -> list[Node]:
        return [self.login, *self.nodes]


def _yaml() -> YAML:
    yaml = YAML()
    yaml.width = 4096
    return yaml


def _set_env(document: dict, **values: str) -> None:
    for entry in document["write_files"]:
        if entry["path"] == bootstrap.NODE_ENV_PATH:
            lines = [
                f"{key}={values.pop(key)}" if (key := line.split("=", 1)[0]) in values else line
                for line in str(entry["content"]).splitlines()
            ]
            entry["content"] = "\n".join(lines + [f"{k}={v}" for k, v in values.items()]) + "\n"


def _replace_file(document: dict, path: str, content: str) -> None:
    for entry in document["write_files"]:
        if entry["path"] == path:
            entry["content"] = content
            return
    raise AssertionError(f"the cloud-config writes no {path}")


def _dump(document: dict, path: Path) -> None:
    with path.open("w") as out:
        out.write("#cloud-config\n")
        _yaml().dump(document, out)


def _seed(directory: Path, document: dict, hostname: str) -> Path:
    directory.mkdir(parents=True)
    _dump(document, directory / "user-data")
    (directory / "meta-data").write_text(f"instance-id: {hostname}\nlocal-hostname: {hostname}\n")
    return directory


def _settings(spec: ClusterSpec) -> slurm.SlurmSettings:
    hardware = slurm.NodeHardware(cpus=os.cpu_count() or 1, memory_mb=256, gpus=0)
    return slurm.SlurmSettings.for_cluster(
        spec,
        ZONE,
        per_slot_ports=True,
        proctrack_type="proctrack/linuxproc",
        task_plugin="task/none",
        hardware={pool.name: hardware for pool in spec.pools},
    )


def _without_cgroups(text: str) -> str:
    """cgroup.conf with `CgroupPlugin=disabled`: this host lists cgroup v1 hierarchies in every process's
    /proc/self/cgroup, so Slurm 26.05's slurmd stops with "fatal: Hybrid mode is not supported" even where
    no cgroup plugin is used (seen booting sid); Azure's images run cgroup v2 alone."""
    lines = [line for line in text.splitlines() if not line.strip().lower().startswith("cgroupplugin")]
    return "\n".join([*lines, "CgroupPlugin=disabled"]) + "\n"


def _wait(what: str, predicate, why=lambda: "", timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{why()}")


def _hostnames(spec: ClusterSpec, count: int) -> list[str]:
    prefix = bootstrap.computer_name_prefix(spec.name, spec.pools[0].name, 0)
    return [f"{prefix}{index:06d}" for index in range(count)]


@pytest.fixture(scope="module", params=SUITES)
def cluster(request, tmp_path_factory) -> Iterator[Cluster]:
    root = realroots.root_or_skip(request.param, realroots.BOOT_PACKAGES)
    nspawn.sweep_orphans()
    with boot(root, tmp_path_factory.mktemp(f"boot-{request.param}")) as booted:
        yield booted


@contextlib.contextmanager
def boot(root: Path, work: Path) -> Iterator[Cluster]:
    """Boot the login node and two GPU nodes from the rendered cloud-configs; kill them all on leaving."""
    version = realroots.root_info(root)["slurm"]
    spec = _spec()
    boot = bootstrap.SlurmBoot(cluster_key.new_key(), ZONE)
    login_name = slurm.controller_hostname(spec)
    node_names = _hostnames(spec, 2)

    hosts = work / "hosts"
    hosts.write_text(
        "127.0.0.1 localhost\n"
        f"127.0.0.1 {slurm.controller_address(ZONE)} {login_name}\n"
        + "".join(f"127.0.0.1 {name}\n" for name in node_names)
    )
    cloud_cfg = work / "90-azcluster-test.cfg"
    cloud_cfg.write_text("datasource_list: [NoCloud]\n")

    login_doc = _yaml().load(
        bootstrap.render_login_cloud_config(spec, LUSTRE, None, slurm=boot, metrics=METRICS)
    )
    _set_env(login_doc, AZC_SLURM_VERSION=version)
    for name, text in slurm.render_configs(spec, _settings(spec), boot.extra).items():
        if name == "cgroup.conf":
            text = _without_cgroups(text)
        _replace_file(login_doc, f"{slurm.SLURM_ETC}/{name}", text)
    node_text = bootstrap.render_cloud_config(spec, "gpu", 0, LUSTRE, slurm=boot, metrics=METRICS)
    documents = {login_name: ("login", login_doc)}
    for index, name in enumerate(node_names):
        document = _yaml().load(node_text)
        _set_env(document, AZC_SLURM_VERSION=version)
        if index:
            _set_env(document, AZC_HEALTH_PORT=str(bootstrap.HEALTH_PORT + index))
        documents[name] = ("gpu", document)

    with realroots.Loopback() as net, _terminate_raises():
        nodes: dict[str, Node] = {}
        try:
            for name, (role, document) in documents.items():
                seed = _seed(work / name / "seed", document, name)
                container = nspawn.Container(
                    root,
                    name,
                    work / name,
                    netns=net.ns,
                    binds_ro={
                        "/var/lib/cloud/seed/nocloud": seed,
                        "/etc/cloud/cloud.cfg.d/90-azcluster-test.cfg": cloud_cfg,
                        "/etc/hosts": hosts,
                        # One root serves both roles; Azure's login node has no slurmd package and a GPU
                        # node no slurmctld (slurm_install installs one role's): masked, as if absent.
                        f"/etc/systemd/system/{MASKED[role]}": Path("/dev/null"),
                    },
                )
                nodes[name] = Node(role, container, [entry["path"] for entry in document["write_files"]])
            started = time.monotonic()
            for node in nodes.values():
                node.container.start()
            ready: dict[str, float] = {}

            def cloud_init_done() -> bool:
                for name, node in nodes.items():
                    if name not in ready and node.sh("cloud-init status").stdout.split(":")[-1].strip() in {
                        "done",
                        "error",
                    }:
                        ready[name] = time.monotonic() - started
                return len(ready) == len(nodes)

            _wait(
                "every node to finish booting and cloud-init",
                cloud_init_done,
                lambda: "\n".join(n.container.console() for k, n in nodes.items() if k not in ready),
            )
            booted = time.monotonic() - started
            login = nodes[login_name]
            _wait(
                "both GPU nodes to join (sinfo on the login node)",
                lambda: _sinfo(login).keys() >= set(node_names),
                lambda: _why(login, nodes),
            )
            for node in nodes.values():
                for unit in WANTED[node.role]:
                    _wait(
                        f"{unit} on {node.container.hostname} to finish starting",
                        lambda node=node, unit=unit: (
                            node.show(unit, "ActiveState")["ActiveState"] not in {"activating", "reloading"}
                        ),
                        lambda node=node, unit=unit: node.journal(unit),
                    )
            yield Cluster(
                login,
                [nodes[name] for name in node_names],
                version,
                booted_s=booted,
                joined_s=time.monotonic() - started,
                cloud_init_s=ready,
            )
        finally:
            for node in nodes.values():
                node.container.close()


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, a worker stopped) raises in the main thread, so the containers are
    still killed on the way out; Python's default would end the process and leave them running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sinfo(login: Node) -> dict[str, tuple[str, str]]:
    """{host name: (Slurm node name, state)} of the nodes slurmctld lists, as sinfo on the login node."""
    out = login.sh("sinfo -h -N -o '%n|%N|%T'").stdout
    rows = {}
    for line in out.splitlines():
        host, name, state = (line.split("|") + ["", ""])[:3]
        if host and host != name:  # a slot a VM registered for: its host name replaced the slot name
            rows[host] = (name, state)
    return rows


def _why(login: Node, nodes: dict[str, Node]) -> str:
    out = [login.sh("sinfo -N; scontrol -o show node | head -5").stdout]
    for name, node in nodes.items():
        unit = "azc-slurm-controller.service" if node.role == "login" else "azc-slurm-node.service"
        out.append(f"--- {name}: {unit}\n{node.journal(unit)}")
        out.append(node.sh("systemctl --failed --no-legend; tail -5 /var/log/slurm/*.log").stdout)
    return "\n".join(out)


# --- the tests -------------------------------------------------------------------------------------------


def test_cloud_init_ran_the_cloud_config_to_the_end_on_every_node(cluster) -> None:
    for node in cluster.all:
        status = node.sh("cloud-init status --long --format json").stdout
        document = json.loads(status)
        assert document["status"] == "done", (node.container.hostname, status)
        assert document["datasource"] == "nocloud", document
        assert not document.get("errors"), document["errors"]
        for path in node.written:
            assert node.sh(f"test -e {path}").returncode == 0, (
                f"{node.container.hostname}: {path} not written"
            )
        # Slurm came from the root's packages: slurm_install found the pinned version and added no
        # repository (Microsoft's would be /etc/apt/sources.list.d/slurm.list).
        assert node.sh("test -e /etc/apt/sources.list.d/slurm.list").returncode != 0
        assert node.sh("slurmd -V || slurmctld -V").stdout.split()[-1] == cluster.slurm_version


def test_every_unit_the_cloud_config_writes_loads(cluster) -> None:
    for node in cluster.all:
        assert node.units, node.written
        for unit in node.units:
            shown = node.show(unit, "LoadState", "LoadError", "UnitFileState")
            assert shown["LoadState"] == "loaded", (node.container.hostname, unit, shown)
            assert shown["UnitFileState"] in {"enabled", "static"}, (node.container.hostname, unit, shown)
        verify = node.sh(f"cd {bootstrap.UNIT_DIR} && systemd-analyze verify --man=no {' '.join(node.units)}")
        problems = [line for line in verify.stderr.splitlines() if line.strip() and not _downloaded(line)]
        assert verify.returncode == 0 or not problems, verify.stderr


DOWNLOADED = "/opt/azcluster/metrics/"
"""Where azc-metrics-install.service puts the Prometheus and node_exporter it downloads at boot: not here
(no network, RETRYING), so systemd-analyze says their units' binaries are missing, and nothing else."""


def _downloaded(line: str) -> bool:
    return f"Command {DOWNLOADED}" in line and "is not executable" in line


JOINED_STATES = {"idle", "drained", "draining"}


def test_the_gpu_nodes_join_slurm_by_themselves(cluster) -> None:
    names = {node.container.hostname for node in cluster.nodes}

    def settled() -> bool:
        # A loaded machine can miss one of slurmctld's pings: sinfo then marks the node `idle*` (not
        # responding) until the next one answers. Joined means answering again, not answering every time.
        rows = _sinfo(cluster.login)
        return names <= rows.keys() and all(rows[name][1] in JOINED_STATES for name in names)

    _wait("both GPU nodes joined and answering", settled, lambda: repr(_sinfo(cluster.login)), timeout=120)
    joined = _sinfo(cluster.login)
    assert names <= joined.keys()
    slots = {joined[name][0] for name in names}
    assert len(slots) == 2 and all(slot.startswith("gpu-i0-") for slot in slots)
    for name in names:
        state = joined[name][1]
        # idle, or drained by the health hook because this machine has no GPUs (EXPECTED): joined either way
        assert state in JOINED_STATES, joined
        if state != "idle":
            reason = cluster.login.sh(f"sinfo -h -n {joined[name][0]} -o %E").stdout
            assert reason.startswith("azc-health: gpu:"), reason


def test_slurmd_never_starts_before_the_node_has_claimed_its_name(cluster) -> None:
    """The root has slurmd installed and enabled, as an image that ships the pinned Slurm would: boot must
    not start it before azc-slurm-node.sh wrote its options (it would hold boot for 90 s asking DNS)."""
    for node in cluster.nodes:
        log = node.sh("journalctl -b --no-pager -o cat -u slurmd.service").stdout
        assert "DNS SRV lookup failed" not in log, log[-2000:]
        assert node.show("slurmd.service", "ActiveState")["ActiveState"] == "active"


def test_controller_and_node_units_are_active_and_never_restarted(cluster) -> None:
    wanted = WANTED
    first = {}
    for node in cluster.all:
        for unit in wanted[node.role]:
            shown = node.show(unit, "ActiveState", "NRestarts", "Result")
            first[(node.container.hostname, unit)] = shown
            assert shown["ActiveState"] == "active", (
                node.container.hostname,
                unit,
                shown,
                node.journal(unit),
            )
            assert shown["NRestarts"] == "0", (node.container.hostname, unit, shown, node.journal(unit))
    time.sleep(35)  # longer than RestartSec=30: a unit in a restart loop would have restarted by now
    for node in cluster.all:
        for unit in wanted[node.role]:
            shown = node.show(unit, "ActiveState", "NRestarts")
            assert (shown["ActiveState"], shown["NRestarts"]) == ("active", "0"), (
                node.container.hostname,
                unit,
            )
        for unit in node.units:
            if unit in RETRYING or unit.endswith(".timer"):
                continue
            shown = node.show(unit, "NRestarts")
            assert shown.get("NRestarts", "0") == "0", (node.container.hostname, unit, node.journal(unit))


def test_no_unit_failed_but_what_this_machine_cannot_have(cluster) -> None:
    for node in cluster.all:
        failed = node.sh("systemctl --failed --no-legend --plain | awk '{print $1}'").stdout.split()
        allowed = EXPECTED[node.role].keys() | RETRYING.keys()  # a retrying unit is "failed" between tries
        unexpected = {unit: node.journal(unit, 15) for unit in failed if unit not in allowed}
        assert not unexpected, (node.container.hostname, unexpected)


def test_status_reads_slurm_on_the_booted_login_node(cluster) -> None:
    """What `azcluster status` runs on the login node through Run Command (slurmstate.script), run on the
    booted one: its parser reads the real sinfo of this Slurm version, and the login node's MPI record."""
    from azcluster.ops import runcommand, slurmstate

    encoded, first = "", ""
    for _ in range(slurmstate.MAX_CALLS):
        lines = slurmstate.script("0badc0de", len(encoded))
        out = cluster.login.container.run(["bash", "-c", "\n".join(lines)]).stdout
        first = first or out
        size, chunk = runcommand.listing_chunk(out, slurmstate.MARKER)
        encoded += chunk
        if len(encoded) >= size or not chunk:
            break
    assert len(first.encode()) <= 4096  # all of it comes back through Run Command's 4 KiB
    nodes = slurmstate.parse_sinfo(gzip.decompress(base64.b64decode(encoded)).decode())
    by_host = {node.hostname: node for node in nodes}
    for node in cluster.nodes:
        shown = by_host[node.container.hostname]
        assert shown.name.startswith("gpu-i0-") and shown.base_state in {"idle", "drained", "draining"}
    mpi, why = slurmstate._mpi(first)
    if "slurm-mpi.json" in bootstrap.read_script("azc-slurm-lib.sh"):  # the node side writes the record
        assert mpi is not None, why
        assert mpi.slurm == cluster.slurm_version
        assert mpi.pmix or mpi.mpi_default != "pmix"  # never MpiDefault=pmix without the plugin
    else:
        assert why.startswith("no /var/lib/azcluster/slurm-mpi.json on the login node yet"), why


def test_slurms_own_logs_have_no_error_line_but_the_test_machines(cluster) -> None:
    """The issue-16 rule on a booted cluster: no `error:`, `defunct` or `deprecated` line in slurmctld's or
    slurmd's log, except the artefacts of this machine the real-daemon suite names (slurmlab.ARTEFACTS) and
    one of this suite's: slurm.conf declares this machine's CPU count alone (module docstring), which
    slurmd reads as one core per socket and finds different from the hardware (the real-daemon suite
    gives each node its size's layout and has no such line)."""
    from tests.components import slurmlab

    artefacts = (*slurmlab.ARTEFACTS, "Node configuration differs from hardware")
    for node in cluster.all:
        text = node.sh("cat /var/log/slurm/*.log 2>/dev/null").stdout
        bad = [
            line
            for line in text.splitlines()
            if slurmlab.BAD_LINE.search(line) and not any(known in line for known in artefacts)
        ]
        assert text.strip() and not bad, (node.container.hostname, bad[:10])

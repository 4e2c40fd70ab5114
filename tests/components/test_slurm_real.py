"""The configuration azcluster renders, run by real Slurm daemons on loopback.

One slurmctld (configless) and several slurmd (one per node slot, each with its own port; slurmd fetches
its configuration from slurmctld) start from the files `components.bootstrap.slurm` renders for a small
cluster, with munge on a key made the way the cluster's is. Slurm's own tools then check: partitions
and features (`sinfo`), the islands (`scontrol show topology`), a job (`srun`), a job that needs two
nodes never spanning two islands, the node scripts claiming a slot (join), the reaper freeing the slot of
a node that stopped answering (leave), and the health hook draining and resuming a node.

What differs from a cluster, and why: the daemons run as root with their own ports, state and log
directories under a temporary directory; `proctrack/linuxproc` and `task/none` (no cgroups in a test
container); no MPI plugin (Debian's Slurm has no PMIx library); tiny node hardware (CPUs=1, no GPUs) so a
laptop's slurmd satisfies the node records; SlurmdTimeout 5 s and SuspendTimeout 2 s, so a node that
stops answering is noticed and its slot hidden in seconds. Several slurmd share one host through
per-slot ports (SlurmSettings.per_slot_ports). slurmd fetches its configuration before it has read
AuthInfo, so it looks for munge at the default socket: each slurmd runs in its own mount namespace
(`unshare -m`) where the test's munge directory is bind-mounted on /run/munge.

Skipped, saying why, only where the binaries (Debian: slurmctld slurmd slurm-client munge) or root are
missing; `.ci/run` installs them. Every daemon is stopped at the end, also when a test fails.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from azcluster.components import bootstrap, cluster_key
from azcluster.components.bootstrap import slurm
from azcluster.components.spec import ClusterSpec
from tests.groups import REAL_DAEMONS

BINARIES = ("slurmctld", "slurmd", "scontrol", "sinfo", "srun", "sbatch", "squeue", "munged", "unshare")
SCRIPTS = Path(bootstrap.__file__).parent / "scripts"
WAIT_S = 60
"""Upper bound for any one thing the daemons must do (a loaded CI machine is slow); never a timing assert."""

pytestmark = [
    pytest.mark.skipif(
        any(shutil.which(name) is None for name in BINARIES) or os.geteuid() != 0,
        reason="real Slurm tests need root and slurmctld, slurmd, slurm-client and munge "
        "(Debian/Ubuntu: apt-get install -y slurmctld slurmd slurm-client munge; .ci/run does)",
    ),
    pytest.mark.xdist_group(REAL_DAEMONS),  # one daemon suite at a time, on its own worker
]


def _spec() -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "lab",
            "location": "eastus",
            "pools": [
                # 4 nodes, 2 per island: islands gpu-i0 and gpu-i1, two slots each
                {"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 4, "island_max_nodes": 2},
                {"name": "infer", "size": "Standard_NC96ads_A100_v4", "nodes": 1, "island_max_nodes": 1},
            ],
        }
    )


def _free_port_block(count: int) -> int:
    """A base port with `count` free ports after it (checked by binding each on loopback).

    Blocks are tried in a random order: other checkouts on the machine run this suite too, and two that
    both began at the first block could both find it free before either's daemons bound it."""
    bases = list(range(23000, 60000, 97))
    random.shuffle(bases)
    for base in bases:
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                sockets.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free block of ports on loopback")


@dataclass
class LoopbackSlurm:
    """Real daemons from azcluster's rendered configuration, in one temporary directory."""

    root: Path
    spec: ClusterSpec
    settings: slurm.SlurmSettings
    env: dict[str, str]
    munge_dir: Path
    slurmd_pids: dict[str, int] = field(default_factory=dict)
    daemons: list[Path] = field(default_factory=list)

    def run(
        self, *argv: str, check: bool = True, extra_env: dict[str, str] | None = None, timeout: int = WAIT_S
    ):
        proc = subprocess.run(
            list(argv),
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
        return proc

    def wait_for(self, what: str, predicate) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.5)
        jobs = self.run("squeue", "-a", "-o", "%i %T %r %N", check=False).stdout
        nodes = self.run("scontrol", "-o", "show", "node", check=False).stdout
        raise AssertionError(f"timed out waiting for {what}\n{jobs}\n{nodes}\n{self.logs()}")

    def logs(self) -> str:
        out = []
        for path in sorted((self.root / "log").glob("*.log")):
            out.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(out)

    def node(self, name: str) -> dict[str, str]:
        """`scontrol show node NAME` as key -> value ({} when slurmctld does not show it)."""
        proc = self.run("scontrol", "-o", "show", "node", name, check=False)
        if proc.returncode != 0:
            return {}
        fields: dict[str, str] = {}
        for token in proc.stdout.split():
            key, sep, value = token.partition("=")
            if sep:
                fields[key] = value
        reason = proc.stdout.split(" Reason=", 1)
        if len(reason) == 2:
            fields["Reason"] = reason[1].rsplit(" [", 1)[0]
        return fields

    def start_slurmd(self, slot: str) -> None:
        """What azc-slurm-node.sh start does on a node, with slurmd started here instead of by systemd."""
        (self.root / "spool" / slot).mkdir(parents=True, exist_ok=True)

        conf_server = f"127.0.0.1:{self.settings.slurmctld_port}"
        script = 'mount --bind "$1" /run/munge && exec slurmd -N "$2" --conf-server "$3"'
        self.run("unshare", "-m", "--", "sh", "-c", script, "sh", str(self.munge_dir), slot, conf_server)
        pid_file = self.root / "run" / f"slurmd-{slot}.pid"
        # slurmd creates the file before it writes the number: wait for the number (an empty file was read)
        self.wait_for(f"slurmd {slot} to start", lambda: _pid(pid_file) is not None)
        self.slurmd_pids[slot] = _pid(pid_file)
        self.wait_for(f"{slot} to register", lambda: "IDLE" in self.node(slot).get("State", ""))
        activated = self.script("azc-slurm-node.sh", "activate", slot, extra_env=_island(slot))
        assert activated.returncode == 0, activated.stderr
        self.wait_for(f"{slot} to be schedulable", lambda: self.node(slot).get("State") == "IDLE+CLOUD")

    def stop_slurmd(self, slot: str) -> None:
        pid = self.slurmd_pids.pop(slot)
        _kill(pid)

    def script(self, name: str, *args: str, extra_env: dict[str, str]) -> subprocess.CompletedProcess:
        env = {"AZC_NODE_ENV": "/dev/null", "AZC_ROOT": str(self.root / "node"), **extra_env}
        return self.run("bash", str(SCRIPTS / name), *args, extra_env=env, check=False)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _running(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Whether `pid` still runs. An exited daemon (it forked away from us) stays a zombie until this
    machine's init reaps it, which can take seconds: `kill(pid, 0)` succeeds on a zombie, /proc says Z."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # the state follows the parenthesised command name


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[LoopbackSlurm]:
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("etc", "state", "spool", "log", "run", "munge", "node/var/lib/azcluster"):
        (root / sub).mkdir(parents=True)
    munge_dir = root / "munge"
    munge_dir.chmod(0o755)
    # The task prolog as cloud-init installs it (mode 0755; the checkout's copy need not be executable).
    prolog = root / "azc-slurm-taskprolog.sh"
    prolog.write_text(bootstrap.read_script("azc-slurm-taskprolog.sh"))
    prolog.chmod(0o755)
    spec = _spec()
    base = _free_port_block(2 + len(list(slurm.slot_names(spec))))
    tiny = slurm.NodeHardware(cpus=1, memory_mb=256, gpus=0)
    settings = slurm.SlurmSettings(
        controller_host=socket.gethostname().split(".")[0],
        controller_addr="127.0.0.1",
        slurmctld_port=base,
        slurmd_port=base + 1,
        slurm_user="root",
        state_save_location=str(root / "state"),
        slurmd_spool_dir=str(root / "spool"),
        log_dir=str(root / "log"),
        run_dir=str(root / "run"),
        munge_socket=str(munge_dir / "munge.socket.2"),
        proctrack_type="proctrack/linuxproc",
        task_plugin="task/none",
        mpi_default="none",
        health_check_program=None,
        task_prolog=str(prolog),
        slurmd_timeout_s=5,
        per_slot_ports=True,
        hardware={"gpu": tiny, "infer": tiny},
    )
    # SuspendTimeout 2 s instead of Slurm's 30: a freed slot (power_down_force) is hidden once that time has
    # passed, and the test of a node that leaves waited those 30 s; what Slurm does is the same.
    for name, text in slurm.render_configs(spec, settings, {"SuspendTimeout": "2"}).items():
        (root / "etc" / name).write_text(text)
    # The cluster's key is made the way ClusterKey makes it, and installed the way azc-slurm-lib does.
    key_file = root / "munge.key"
    key_file.write_bytes(base64.b64decode(cluster_key.new_key()))
    key_file.chmod(0o400)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SLURM_CONF": str(root / "etc" / "slurm.conf"),
        "HOME": str(root),
        "LANG": "C",
    }
    lab = LoopbackSlurm(root, spec, settings, env, munge_dir)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)  # the mount point slurmd's namespace needs
    try:
        lab.run(
            "munged",
            "--force",
            f"--socket={settings.munge_socket}",
            f"--key-file={key_file}",
            f"--pid-file={root / 'run' / 'munged.pid'}",
            f"--log-file={root / 'log' / 'munged.log'}",
            f"--seed-file={root / 'munged.seed'}",
        )
        lab.run("slurmctld", "-f", env["SLURM_CONF"])
        lab.wait_for("slurmctld to answer", lambda: lab.run("scontrol", "ping", check=False).returncode == 0)
        # As the controller does right after slurmctld starts: drain the unclaimed slots.
        reaped = lab.script("azc-slurm-reaper.sh", extra_env={})
        assert reaped.returncode == 0, reaped.stderr
        for slot in ("gpu-i0-000", "gpu-i1-000", "infer-i0-000"):
            lab.start_slurmd(slot)
        yield lab
    finally:
        for pid in list(lab.slurmd_pids.values()):
            _kill(pid)
        for pid_file in (root / "run").glob("slurmd-*.pid"):
            pid = _pid(pid_file)
            if pid is not None:
                _kill(pid)
        # A slurmd that had not yet written its pid file when a test gave up: found by this test's own
        # controller port on its command line, so only daemons this fixture started are touched.
        marker = f"--conf-server127.0.0.1:{settings.slurmctld_port}".encode()
        for proc in Path("/proc").iterdir():
            try:
                argv = (proc / "cmdline").read_bytes().replace(b"\0", b"")
            except OSError:
                continue
            if proc.name.isdigit() and argv.startswith(b"slurmd") and marker in argv:
                _kill(int(proc.name))
        for pid_file in (root / "run" / "slurmctld.pid", root / "run" / "munged.pid"):
            pid = _pid(pid_file)
            if pid is not None:
                _kill(pid)


def test_partitions_and_features_come_from_the_pools_and_islands(lab) -> None:
    listing = lab.run("sinfo", "-h", "-N", "-o", "%N %P %f %t").stdout.split("\n")
    rows = {tuple(line.split()) for line in listing if line.strip()}
    assert ("gpu-i0-000", "gpu*", "gpu,gpu-i0", "idle") in rows
    assert ("gpu-i1-000", "gpu*", "gpu,gpu-i1", "idle") in rows
    assert ("infer-i0-000", "infer", "infer,infer-i0", "idle") in rows
    # Unclaimed slots are hidden: only registered nodes are listed.
    assert {row[0] for row in rows} == {"gpu-i0-000", "gpu-i1-000", "infer-i0-000"}


def test_scontrol_shows_one_switch_per_island(lab) -> None:
    topology = lab.run("scontrol", "show", "topology").stdout
    switches = {
        fields["SwitchName"]: fields
        for fields in (
            dict(t.split("=", 1) for t in line.split() if "=" in t) for line in topology.splitlines()
        )
        if "SwitchName" in fields
    }
    assert set(switches) == {"gpu-i0", "gpu-i1", "infer-i0"}
    assert switches["gpu-i0"]["Nodes"] == "gpu-i0-[000-001]"
    assert all(s["Level"] == "0" for s in switches.values())  # no switch joins two islands


def test_a_job_runs_with_the_nodes_nccl_environment(lab) -> None:
    nccl_env = lab.root / "nccl.env"
    nccl_env.write_text("NCCL_SOCKET_IFNAME=eth0\nUCX_IB_PCI_RELAXED_ORDERING=on\n")
    proc = lab.run(
        "srun",
        "-N1",
        "-p",
        "gpu",
        "printenv",
        "NCCL_SOCKET_IFNAME",
        extra_env={"AZC_NCCL_ENV": str(nccl_env)},
    )
    assert proc.stdout.strip() == "eth0"
    assert lab.run("srun", "-N1", "-p", "infer", "hostname").stdout.strip()


def test_node_join_claims_a_free_slot_and_a_two_node_job_stays_in_one_island(lab) -> None:
    island = {"AZC_ISLAND_KEY": "gpu-i0", "AZC_SLURM_SLOTS": "2", "AZC_SLURM_SLOT_WIDTH": "3"}
    # Only one node per island is up: a job that needs two gpu nodes must wait, not span the islands.
    output = str(lab.root / "job-%j.out")  # never the checkout (sbatch's default is the working directory)
    submitted = lab.run("sbatch", "-N2", "-p", "gpu", "-o", output, "--parsable", "--wrap", "hostname")
    job = submitted.stdout.strip()
    lab.wait_for(
        "the scheduler to give the job a reason to wait",
        lambda: "Reason=None" not in lab.run("scontrol", "-o", "show", "job", job).stdout,
    )
    assert "JobState=PENDING" in lab.run("scontrol", "-o", "show", "job", job).stdout
    # A new VM of island 0 (instance 0, whose preferred slot 000 is taken) claims the free slot 001...
    claim = lab.script(
        "azc-slurm-node.sh", "claim", extra_env={**island, "AZC_HOSTNAME": "lab-gpu-i0-000000"}
    )
    assert claim.returncode == 0, claim.stderr
    assert claim.stdout.strip() == "gpu-i0-001"
    lab.start_slurmd("gpu-i0-001")
    # ... and the waiting job runs on the two nodes of that island.
    lab.wait_for(
        f"two-node job {job} to finish",
        lambda: "JobState=COMPLETED" in lab.run("scontrol", "-o", "show", "job", job).stdout,
    )
    shown = lab.run("scontrol", "-o", "show", "job", job).stdout
    assert "NodeList=gpu-i0-[000-001]" in shown
    # A host that already holds a slot (a reboot) gets the same one back.
    again = lab.script(
        "azc-slurm-node.sh",
        "claim",
        extra_env={**island, "AZC_HOSTNAME": lab.node("gpu-i0-000")["NodeHostName"]},
    )
    assert again.stdout.strip() in {"gpu-i0-000", "gpu-i0-001"}


def test_a_node_that_stops_answering_leaves_and_its_slot_is_free_again(lab) -> None:
    if "gpu-i0-001" not in lab.slurmd_pids:
        lab.start_slurmd("gpu-i0-001")
    lab.stop_slurmd("gpu-i0-001")
    lab.wait_for("slurmctld to notice", lambda: "NOT_RESPONDING" in lab.node("gpu-i0-001").get("State", ""))
    reaped = lab.script("azc-slurm-reaper.sh", "--after", "0", extra_env={})
    assert reaped.returncode == 0, reaped.stderr
    lab.wait_for("the slot to be hidden", lambda: lab.node("gpu-i0-001") == {})
    assert "gpu-i0-001" not in lab.run("sinfo", "-h", "-N", "-o", "%N").stdout
    island = {"AZC_ISLAND_KEY": "gpu-i0", "AZC_SLURM_SLOTS": "2", "AZC_SLURM_SLOT_WIDTH": "3"}
    claim = lab.script(
        "azc-slurm-node.sh", "claim", extra_env={**island, "AZC_HOSTNAME": "lab-gpu-i0-000003"}
    )
    assert claim.stdout.strip() == "gpu-i0-001"
    lab.start_slurmd("gpu-i0-001")  # a replacement node takes it
    assert "gpu-i0-001" in lab.run("sinfo", "-h", "-N", "-o", "%N").stdout


def _island(slot: str) -> dict[str, str]:
    """The node.env values a node of the slot's island has."""
    key = slot.rsplit("-", 1)[0]
    count = next(i.count for p in _spec().pools for i in slurm.island_slots(p, None) if i.key == key)
    return {"AZC_ISLAND_KEY": key, "AZC_SLURM_SLOTS": str(count), "AZC_SLURM_SLOT_WIDTH": "3"}


def _health(lab, healthy: bool, detail: str = "") -> Path:
    result = lab.root / "health.json"
    checks = [{"name": "gpu", "ok": True, "detail": "8 GPUs"}]
    if not healthy:
        checks.append({"name": "infiniband", "ok": False, "detail": detail})
    result.write_text(json.dumps({"healthy": healthy, "time": "now", "checks": checks}))
    return result


def test_the_health_hook_drains_with_the_failing_check_and_resumes(lab) -> None:
    node = "infer-i0-000"
    hook = {"AZC_SLURM_NODE": node}
    bad = _health(lab, False, "7 of 8 ports ACTIVE")
    run = lab.script("azc-slurm-health.sh", extra_env={**hook, "AZC_HEALTH_RESULT": str(bad)})
    assert run.returncode == 0, run.stderr
    state = lab.node(node)
    assert "DRAIN" in state["State"]
    assert state["Reason"] == "azc-health: infiniband: 7 of 8 ports ACTIVE"
    good = _health(lab, True)
    run = lab.script("azc-slurm-health.sh", extra_env={**hook, "AZC_HEALTH_RESULT": str(good)})
    assert run.returncode == 0, run.stderr
    assert "DRAIN" not in lab.node(node)["State"]
    # A drain an administrator set is theirs: a passing health check leaves it alone.
    lab.run("scontrol", "update", f"nodename={node}", "state=drain", "reason=maintenance")
    lab.script("azc-slurm-health.sh", extra_env={**hook, "AZC_HEALTH_RESULT": str(good)})
    assert "DRAIN" in lab.node(node)["State"] and lab.node(node)["Reason"] == "maintenance"
    lab.run("scontrol", "update", f"nodename={node}", "state=resume")

"""The configuration and node programs azcluster renders, run by real Slurm daemons of three releases.

For each of Debian 12's Slurm 22.05, Debian 13's 24.11 and Debian sid's 26.05 (production installs 25.11
from Microsoft's packages; these bracket it), a login machine and GPU node machines are made the way the
cloud-config makes them (tests/components/slurmlab.py says how, and every difference from Azure):
the controller starts through azc-slurm-controller.sh, nodes join through azc-slurm-node.sh, the
reaper and the health hook are the deployed scripts. Slurm's own tools then check: joined nodes idle
in their partitions and islands, capacity without a VM never given a job (a job that needs more nodes
than have joined stays PENDING, never CONFIGURING), one switch per island, a 2-node job inside one
island, a node that leaves and one that replaces it, nodes that boot at the same moment taking different
slots (slurmctld arbitrates the claims), each node showing the CPU layout slurm.conf declares for its
size, drain and resume by the health hook, MPI (PMIx where the build has it, plain srun everywhere), and
no `error:`, `defunct` or `deprecated` line anywhere but the test machine's named artefacts. Power
saving with joined nodes is test_slurm_power's.

Each release's cluster lives in its own loopback network namespace, so releases (and other suites)
never share a port; under pytest-xdist each release is a group of its own (tests/groups.py), so the
three run beside each other on different workers (about a minute each here). Skipped, saying
why, only where root, debootstrap or unshare is missing; `.ci/run` installs them and builds the roots.
Every machine is stopped at the end, also when a test fails.
"""

from __future__ import annotations

import concurrent.futures
import json
import time

import pytest

from azcluster.components.bootstrap.slurm_mpi import parse_slurm_mpi
from tests.components import slurmlab

pytestmark = pytest.mark.timeout(600)  # a cluster of 4 machines is set up in the first test of a release

PMIX_PROGRAM = r"""
#include <pmix.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    pmix_proc_t me, peer; pmix_value_t v, *got = NULL; char key[] = "azc-key", val[64];
    if (PMIx_Init(&me, NULL, 0) != PMIX_SUCCESS) return 1;
    snprintf(val, sizeof val, "rank-%u", me.rank);
    v.type = PMIX_STRING; v.data.string = val;
    if (PMIx_Put(PMIX_GLOBAL, key, &v) != PMIX_SUCCESS || PMIx_Commit() != PMIX_SUCCESS) return 2;
    if (PMIx_Fence(NULL, 0, NULL, 0) != PMIX_SUCCESS) return 3;
    PMIX_PROC_CONSTRUCT(&peer);
    strncpy(peer.nspace, me.nspace, PMIX_MAX_NSLEN);
    peer.rank = (me.rank + 1) % 4;
    if (PMIx_Get(&peer, key, NULL, 0, &got) != PMIX_SUCCESS) return 4;
    printf("%u read %s\n", me.rank, got->data.string);
    PMIx_Finalize(NULL, 0);
    return 0;
}
"""


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(suite, id=version, marks=pytest.mark.xdist_group(f"slurm-{version}"))
        for suite, version in slurmlab.VERSIONS.items()
    ],
)
def lab(request, tmp_path_factory):
    lab = slurmlab.new_lab(request.param, tmp_path_factory.mktemp(f"slurm-{request.param}"))
    # The split pool's VM shows its 96 cores as 4 sockets of 24 where slurm.conf declares the catalogue's
    # 2 of 48 (Microsoft publishes no socket split): its slurmd's line about it is that test's to check.
    lab.cpu_layouts["split"] = (4, 24, 1)
    lab.excused["slurmd-split-i0-000.log"] = ("Node configuration differs from hardware",)
    try:
        lab.start_controller(slurmlab.legacy_extra(lab))
        lab.nodes = {
            "gpu-i0": lab.boot_node("gpu", 0, 0),
            "gpu-i1": lab.boot_node("gpu", 1, 0x10),
            "infer-i0": lab.boot_node("infer", 0, 0),
        }
        yield lab
    finally:
        lab.close()


def _rows(lab) -> dict[str, tuple[str, ...]]:
    listing = lab.run("sinfo", "-h", "-N", "-o", "%N %P %f %t").stdout.splitlines()
    return {line.split()[0]: tuple(line.split()[1:]) for line in listing if line.strip()}


def test_nodes_join_idle_in_their_partition_and_island_and_unclaimed_slots_are_never_schedulable(lab) -> None:
    slots = {key: lab.slot_of(node) for key, node in lab.nodes.items()}
    assert {key: slot.rsplit("-", 1)[0] for key, slot in slots.items()} == {
        "gpu-i0": "gpu-i0",
        "gpu-i1": "gpu-i1",
        "infer-i0": "infer-i0",
    }
    rows = _rows(lab)
    assert rows[slots["gpu-i0"]] == ("gpu*", "gpu,gpu-i0", "idle")
    assert rows[slots["gpu-i1"]] == ("gpu*", "gpu,gpu-i1", "idle")
    assert rows[slots["infer-i0"]] == ("infer", "infer,infer-i0", "idle")
    # Every other slot is hidden (22.05) or drained and powered down (24.11+): never schedulable.
    for name, (_partition, _features, state) in rows.items():
        if name not in slots.values():
            assert state.startswith("drain"), (name, state)
    assert lab.node(slots["gpu-i0"])["NodeHostName"] == "lab-gpu-i0-000000"


def test_nodes_find_the_cpu_layout_slurm_conf_declares(lab) -> None:
    # slurm.conf declares the catalogue's layout of ND H100 v5; the node's slurmd detects that layout
    shown = lab.node(lab.slot_of(lab.nodes["gpu-i0"]))
    assert (shown["CPUTot"], shown["Sockets"], shown["CoresPerSocket"], shown["ThreadsPerCore"]) == (
        "96",
        "2",
        "48",
        "1",
    )
    log = lab.nodes["gpu-i0"].path(f"/var/log/slurm/slurmd-{lab.slot_of(lab.nodes['gpu-i0'])}.log")
    assert "CPUs=96 Boards=1 Sockets=2 Cores=48 Threads=1" in log.read_text()


def test_a_socket_split_unlike_the_catalogues_never_drains_the_node(lab) -> None:
    # The split pool's VM has the size's 96 cores and 1 thread each, as 4 sockets of 24 (the fixture)
    node = lab.nodes.get("split") or lab.boot_node("split", 0, 0)
    lab.nodes["split"] = node
    shown = lab.node("split-i0-000")
    assert "DRAIN" not in shown["State"] and shown["CPUTot"] == "96", shown
    assert lab.run("srun", "-N1", "-p", "split", "hostname").stdout.strip() == node.hostname
    log = node.path("/var/log/slurm/slurmd-split-i0-000.log").read_text()
    split = "SocketsPerBoard=2:4(hw) CoresPerSocket=48:24(hw)"
    if lab.version.startswith(("22.", "24.")):  # slurmd takes the split it finds and notes it
        assert f"Node reconfigured socket/core boundaries {split}" in log
        assert "differs from hardware" not in log
    else:  # 26.05 calls it a difference (an error: line), and the node still runs
        assert "Node configuration differs from hardware: CPUs=96:96(hw) Boards=1:1(hw) " + split in log


def test_scontrol_shows_one_switch_per_island(lab) -> None:
    topology = lab.run("scontrol", "show", "topology").stdout
    switches = {
        fields["SwitchName"]: fields
        for fields in (
            dict(t.split("=", 1) for t in line.split() if "=" in t) for line in topology.splitlines()
        )
        if "SwitchName" in fields
    }
    assert set(switches) == {"gpu-i0", "gpu-i1", "infer-i0", "burst-i0", "split-i0"}
    assert switches["gpu-i0"]["Nodes"] == "gpu-i0-[000-001]"
    assert all(s["Level"] == "0" for s in switches.values())  # no switch joins two islands


def test_a_job_runs_with_the_nodes_nccl_environment(lab) -> None:
    node = lab.nodes["gpu-i0"]
    node.path("/etc/azcluster/nccl.env").write_text("NCCL_SOCKET_IFNAME=eth0\n")
    done = lab.run("srun", "-N1", "-w", lab.slot_of(node), "printenv", "NCCL_SOCKET_IFNAME")
    assert done.stdout.strip() == "eth0"
    assert lab.run("srun", "-N1", "-p", "infer", "hostname").stdout.strip() == "lab-infer-i0-000000"


def test_capacity_without_a_vm_is_never_given_a_job_and_a_new_node_takes_it(lab) -> None:
    # One node of island gpu-i1 has joined; a job that needs two there must wait, not take a slot no VM backs
    submitted = lab.run(
        "sbatch",
        "-N2",
        "-p",
        "gpu",
        "-C",
        "gpu-i1",
        "-o",
        "/tmp/job-%j.out",
        "--parsable",
        "--wrap",
        "hostname",
    )
    job = submitted.stdout.strip().split(";")[0]
    lab.wait_for("the scheduler to give the job a reason to wait", lambda: lab.job(job)["Reason"] != "None")
    for _ in range(6):  # and it keeps waiting: never CONFIGURING on a slot no VM backs
        shown = lab.job(job)
        assert shown["JobState"] == "PENDING", shown
        time.sleep(0.5)
    assert "POWERING_UP" not in lab.run("scontrol", "-o", "show", "node").stdout
    # A second VM of island 1 boots: it claims the free slot, and the job runs on that island's two nodes
    second = lab.boot_node("gpu", 1, 0x11)
    lab.nodes["gpu-i1-b"] = second
    assert lab.slot_of(second) != lab.slot_of(lab.nodes["gpu-i1"])
    lab.wait_for(f"two-node job {job} to finish", lambda: lab.job(job)["JobState"] == "COMPLETED")
    assert lab.job(job)["NodeList"] == "gpu-i1-[000-001]"


def test_a_node_that_leaves_hands_its_slot_to_the_node_that_replaces_it(lab) -> None:
    if "gpu-i0-b" not in lab.nodes:
        lab.nodes["gpu-i0-b"] = lab.boot_node("gpu", 0, 1)
    gone = lab.slot_of(lab.nodes["gpu-i0-b"])
    lab.stop(lab.nodes.pop("gpu-i0-b").hostname)
    lab.wait_for("slurmctld to notice", lambda: "NOT_RESPONDING" in lab.node(gone).get("State", ""))
    reaped = lab.script("azc-slurm-reaper.sh", "--after", "0")
    assert reaped.returncode == 0, reaped.stderr
    state = lab.node(gone).get("State", "DRAIN")  # 22.05 may hide it
    assert "DRAIN" in state and "DOWN" in state, state  # never schedulable while no VM has it
    # Automatic repairs recreate the VM under a new instance id: it takes the freed slot, no one helps
    replacement = lab.boot_node("gpu", 0, 0x2A)
    lab.nodes["gpu-i0-b"] = replacement
    assert lab.slot_of(replacement) == gone
    lab.wait_for("the replacement to be idle", lambda: lab.node(gone).get("State") in {"IDLE", "IDLE+CLOUD"})
    done = lab.run("srun", "-N1", "-w", gone, "hostname")
    assert done.stdout.strip() == replacement.hostname


def test_nodes_that_boot_at_the_same_moment_take_different_slots(lab) -> None:
    # Every VM here has an instance number of 0 modulo 3, so each one's first choice is burst-i0-000.
    # A node booting at this moment holds that slot's claim (the reservation azc-slurm-node.sh takes):
    claim = "reservationname=azc-claim-burst-i0-000"
    lab.run(
        "scontrol",
        "create",
        "reservation",
        claim,
        "nodes=burst-i0-000",
        "users=root",
        "starttime=now",
        "duration=5",
        "flags=ignore_jobs",
    )
    try:
        # Two VMs start their node unit together: neither takes the claimed slot, and they race for the
        # next one, which slurmctld's claim gives to one of them.
        vms = [lab.new_vm("burst", 0, instance) for instance in (0x30, 0x33)]
        with concurrent.futures.ThreadPoolExecutor(len(vms)) as pool:
            nodes = list(pool.map(lab.join, vms))
    finally:
        lab.run("scontrol", "delete", claim)
    assert sorted(lab.slot_of(node) for node in nodes) == ["burst-i0-001", "burst-i0-002"]
    for node in nodes:
        assert "slot burst-i0-000 is being claimed by another node" in node.boot_log
    # The claim is handed back: the next VM takes the slot
    nodes.append(lab.boot_node("burst", 0, 0x36))
    assert lab.slot_of(nodes[-1]) == "burst-i0-000"
    for node in nodes:
        assert lab.node(lab.slot_of(node))["NodeHostName"] == node.hostname
    assert "azc-claim" not in lab.run("scontrol", "show", "reservation").stdout  # every claim handed back
    done = lab.run("srun", "-N3", "-p", "burst", "hostname")
    assert sorted(done.stdout.split()) == sorted(node.hostname for node in nodes)


def test_a_node_that_reboots_keeps_its_slot(lab) -> None:
    node = lab.nodes["gpu-i1"]
    before = lab.slot_of(node)
    again = lab.script("azc-slurm-node.sh", "start", machine=node)
    assert again.returncode == 0, again.stderr
    assert lab.slot_of(node) == before


def _health(node, healthy: bool, detail: str = "") -> str:
    checks = [{"name": "gpu", "ok": True, "detail": "8 GPUs"}]
    if not healthy:
        checks.append({"name": "infiniband", "ok": False, "detail": detail})
    node.path("/var/lib/azcluster/health.json").write_text(
        json.dumps({"healthy": healthy, "time": "now", "checks": checks})
    )
    return "/var/lib/azcluster/health.json"


def test_the_health_hook_drains_with_the_failing_check_and_resumes(lab) -> None:
    node = lab.nodes["infer-i0"]
    name = lab.slot_of(node)
    _health(node, False, "7 of 8 ports ACTIVE")
    assert lab.script("azc-slurm-health.sh", machine=node).returncode == 0
    state = lab.node(name)
    assert "DRAIN" in state["State"]
    assert state["Reason"] == "azc-health: infiniband: 7 of 8 ports ACTIVE"
    _health(node, True)
    assert lab.script("azc-slurm-health.sh", machine=node).returncode == 0
    assert "DRAIN" not in lab.node(name)["State"]
    # A drain an administrator set is theirs: a passing health check leaves it alone.
    lab.run("scontrol", "update", f"nodename={name}", "state=drain", "reason=maintenance")
    lab.script("azc-slurm-health.sh", machine=node)
    assert "DRAIN" in lab.node(name)["State"] and lab.node(name)["Reason"] == "maintenance"
    lab.run("scontrol", "update", f"nodename={name}", "state=resume")


def test_plain_srun_always_runs_and_pmix_works_where_the_build_has_it(lab) -> None:
    report = json.loads(lab.login.path("/var/lib/azcluster/slurm-mpi.json").read_text())
    node_report = json.loads(lab.nodes["gpu-i0"].path("/var/lib/azcluster/slurm-mpi.json").read_text())
    assert report["pmix"] == node_report["pmix"] == any(p.startswith("pmix") for p in report["plugins"])
    assert "none" in report["plugins"]
    parse_slurm_mpi(json.dumps(report))  # the shape azcluster status reads
    conf = lab.login.path("/etc/slurm/slurm.conf").read_text()
    assert ("MpiDefault=pmix\n" in conf) == report["pmix"]
    if "gpu-i0-b" not in lab.nodes:  # tests of a release may run in any order
        lab.nodes["gpu-i0-b"] = lab.boot_node("gpu", 0, 1)
    assert lab.run("srun", "-N2", "-w", "gpu-i0-[000-001]", "hostname").returncode == 0
    if not report["pmix"]:
        assert "no PMIx plugin" in report["detail"] and report["mpi_default"] == "none"
        return
    # a small PMIx program, built in the root: put, commit, fence, read a peer's key
    for node in (lab.nodes["gpu-i0"], lab.nodes["gpu-i0-b"]):
        node.path("/tmp/azc-pmix.c").write_text(PMIX_PROGRAM)
        built = node.run(
            [
                "sh",
                "-c",
                "gcc -o /usr/local/bin/azc-pmix /tmp/azc-pmix.c "
                "-I/usr/lib/x86_64-linux-gnu/pmix2/include -L/usr/lib/x86_64-linux-gnu/pmix2/lib -lpmix",
            ]
        )
        assert built.returncode == 0, built.stderr
    done = lab.run(
        "srun",
        "-N2",
        "-n4",
        "--overcommit",
        "-w",
        "gpu-i0-[000-001]",
        "--mpi=pmix",
        "/usr/local/bin/azc-pmix",
    )
    lines = sorted(done.stdout.splitlines())
    assert lines == [f"{rank} read rank-{(rank + 1) % 4}" for rank in range(4)], done.stdout + done.stderr


def test_no_error_defunct_or_deprecated_line_anywhere(lab) -> None:
    bad = lab.bad_lines()
    assert bad == [], "\n".join(bad)

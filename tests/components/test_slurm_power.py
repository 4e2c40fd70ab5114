"""Slurm's power saving with joined nodes, on real daemons of Slurm 24.11 and 26.05 (not 22.05: VERSIONS).

The cluster is made as in test_slurm_real (tests/components/slurmlab.py: the rendered configuration, the
controller and node programs of the cloud-config), with elastic power on: slurm.conf carries the keys
`elastic.slurm_power_save` renders, with seconds instead of minutes. slurmctld's SuspendProgram and
ResumeProgram are stand-ins for azc-elastic.py that only write down what Slurm asked; the test plays
Azure from that record, doing to the VM what azc-elastic.py's suspend and resume do to it: deallocate
(the machine stops) and start (the VM that last held the slot boots again, with the disk it had,
and its unit azc-slurm-node.sh joins it). azc-elastic.py itself, against ARM and IMDS fakes, is
test_elastic_slurm's. Everything else is driven by Slurm:

- a joined node idle past SuspendTime is handed to SuspendProgram and shown powered down;
- a job for it makes Slurm call ResumeProgram; the node boots, takes its slot back, and the job runs;
- a start that never comes back within ResumeTimeout ends with the node DOWN with Slurm's reason and
  the job back in the queue (PENDING), never left CONFIGURING.

Each island has one slot (one VM), so which slot Slurm resumes is known. A machine's uptime starts at
0 (its own time namespace): Slurm ignores a registration for a resumed node from a host that booted
before the resume request, as a real VM that restarted never is.
"""

from __future__ import annotations

import re
import time

import pytest

from azcluster.components import elastic
from azcluster.components.spec import ClusterSpec
from tests.components import slurmlab

pytestmark = pytest.mark.timeout(600)

SUSPEND_TIME_S = 4
RESUME_TIMEOUT_S = 40
"""Long enough for a machine to boot and join on a loaded test machine; the refused start waits it out."""
POWER_LOG = "/var/lib/azc-lab/power.log"
STAND_IN = """#!/bin/sh
# Test stand-in for {program}: write down what slurmctld asked; the test plays Azure from this record.
echo "{command} $*" >>{log}
"""


def power_spec() -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "lab",
            "location": "eastus",
            "scheduler": "slurm",
            "pools": [
                # two islands of one VM each: Slurm can only resume the slot a job names by island
                {"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 2, "island_max_nodes": 1},
                # one island of two VMs, for a VM started for the other VM's slot
                {"name": "pair", "size": "Standard_ND96isr_H100_v5", "nodes": 2, "island_max_nodes": 2},
            ],
            "elastic": {"idle_minutes": 1, "resume_timeout_minutes": 1},
        }
    )


VERSIONS = {suite: version for suite, version in slurmlab.VERSIONS.items() if version != "22.05"}
"""Not 22.05: it hides a powered-down CLOUD node from `scontrol show node` (no state to wait for), and
after ResumeTimeout it looks the never-registered slot up by name (getaddrinfo `error:` lines every
second); production runs 25.11. Its power programs' path is test_elastic_slurm's on 22.05 as well."""


@pytest.fixture(
    params=[
        pytest.param(suite, id=version, marks=pytest.mark.xdist_group(f"slurm-{version}"))
        for suite, version in VERSIONS.items()
    ]
)
def lab(request, tmp_path):
    lab = slurmlab.new_lab(request.param, tmp_path, power_spec())
    extra = {**elastic.slurm_power_save(lab.spec), **slurmlab.legacy_extra(lab)}
    for key, (path, _command) in elastic.SLURM_PROGRAMS.items():
        extra[key] = path.replace("azc-elastic-", "azc-lab-elastic-")
    # Test changes: seconds instead of minutes (the keys are the rendered ones)
    extra.update(
        SuspendTime=str(SUSPEND_TIME_S),
        SuspendTimeout="4",
        ResumeTimeout=str(RESUME_TIMEOUT_S),
        BatchStartTimeout=str(RESUME_TIMEOUT_S),
    )
    try:
        lab.start_controller(extra, before=_stand_ins)
        yield lab
    finally:
        lab.close()


def _stand_ins(login) -> None:
    log = login.path(POWER_LOG)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.parent.chmod(0o1777)  # slurmctld runs the programs as SlurmUser
    for _key, (path, command) in elastic.SLURM_PROGRAMS.items():
        stand_in = login.path(path.replace("azc-elastic-", "azc-lab-elastic-"))
        stand_in.parent.mkdir(parents=True, exist_ok=True)
        stand_in.write_text(STAND_IN.format(program=path, command=command, log=POWER_LOG))
        stand_in.chmod(0o755)


def _asked(lab, command: str) -> list[str]:
    """The node names Slurm has handed to the program for `command` (suspend, resume, resume-fail)."""
    path = lab.login.path(POWER_LOG)
    lines = path.read_text().splitlines() if path.exists() else []
    names: list[str] = []
    for line in lines:
        verb, _, hostlist = line.partition(" ")
        if verb == command:
            names += lab.run("scontrol", "show", "hostnames", hostlist).stdout.split()
    return names


def _state(lab, slot: str) -> str:
    return lab.node(slot).get("State", "")


def _powered_down(lab, slot: str) -> bool:
    return re.search(r"IDLE.*POWERED_DOWN", _state(lab, slot)) is not None


def test_an_idle_node_is_powered_down_and_a_job_brings_it_back(lab) -> None:
    node = lab.boot_node("gpu", 0, 0)
    slot = lab.slot_of(node)
    assert slot == "gpu-i0-000"
    # idle past SuspendTime: slurmctld hands it to SuspendProgram; "Azure" deallocates the VM
    lab.wait_for(f"SuspendProgram for {slot}", lambda: slot in _asked(lab, "suspend"))
    lab.stop(node.hostname)
    lab.wait_for(f"{slot} powered down", lambda: _powered_down(lab, slot))
    assert "DRAIN" not in _state(lab, slot) and "DOWN+" not in _state(lab, slot)
    # A job for the island: slurmctld calls ResumeProgram for the slot; "Azure" starts the same VM
    job = _sbatch(lab, "gpu-i0")
    lab.wait_for(f"ResumeProgram for {slot}", lambda: slot in _asked(lab, "resume"))
    assert lab.job(job)["JobState"] in {"CONFIGURING", "PENDING"}
    time.sleep(2)  # a VM takes minutes to start; here it must at least boot after Slurm asked (seconds)
    again = lab.boot_node("gpu", 0, 0)
    assert lab.slot_of(again) == slot  # its own slot, which Slurm is powering up
    lab.wait_for(f"job {job} to run on the resumed node", lambda: lab.job(job)["JobState"] == "COMPLETED")
    assert lab.job(job)["NodeList"] == slot
    assert again.path(f"/tmp/job-{job}.out").read_text().strip() == node.hostname
    assert _asked(lab, "resume-fail") == []
    bad = lab.bad_lines()
    assert bad == [], "\n".join(bad)


def test_a_start_that_never_comes_back_ends_down_with_a_reason_and_the_job_queued(lab) -> None:
    slot = "gpu-i1-000"
    job = _sbatch(lab, "gpu-i1")
    lab.wait_for(f"ResumeProgram for {slot}", lambda: slot in _asked(lab, "resume"))
    # "Azure" never starts the VM (refused, or it never boots): after ResumeTimeout Slurm gives up
    lab.wait_for(
        f"{slot} marked down after ResumeTimeout",
        lambda: "DOWN" in _state(lab, slot),
        timeout=RESUME_TIMEOUT_S + slurmlab.WAIT_S,
    )
    shown = lab.node(slot)
    assert shown.get("Reason"), shown  # Slurm says why
    lab.wait_for("ResumeFailProgram", lambda: slot in _asked(lab, "resume-fail"))
    # the job is back in the queue waiting for a node, not stuck on the slot
    lab.wait_for("the job requeued", lambda: lab.job(job)["JobState"] == "PENDING")
    for _ in range(4):
        assert lab.job(job)["JobState"] == "PENDING", lab.job(job)
        time.sleep(0.5)
    bad = [line for line in lab.bad_lines() if "not resumed by ResumeTimeout" not in line]
    assert bad == [], "\n".join(bad)


def test_a_vm_started_for_another_slot_takes_the_slot_slurm_is_powering_up(lab) -> None:
    # Two VMs of one island join, go idle and are powered down, each remembering its own slot
    first, second = lab.boot_node("pair", 0, 0), lab.boot_node("pair", 0, 1)
    slot_of = {lab.slot_of(first): first, lab.slot_of(second): second}
    assert sorted(slot_of) == ["pair-i0-000", "pair-i0-001"]
    lab.wait_for("SuspendProgram for both", lambda: set(slot_of) <= set(_asked(lab, "suspend")))
    for node in slot_of.values():
        lab.stop(node.hostname)
    for slot in slot_of:
        lab.wait_for(f"{slot} powered down", lambda slot=slot: _powered_down(lab, slot))
        # Slurm forgets a powered-down slot's host (its NodeHostName is the slot's name again), so a VM
        # that boots finds no slot of its own and takes the one Slurm is powering up
        assert lab.node(slot)["NodeHostName"] == slot
    # A job: Slurm resumes one slot; its own VM cannot be had, so "Azure" starts the other one (what
    # azc-elastic.py's pick_vms does), whose disk still records the other slot
    job = _sbatch(lab, "pair-i0", partition="pair")
    [wanted] = lab.wait_for_value(
        f"ResumeProgram for job {job}", lambda: [slot for slot in _asked(lab, "resume") if slot in slot_of]
    )
    other = next(slot for slot in slot_of if slot != wanted)
    time.sleep(2)  # boots after Slurm asked
    vm = lab.boot_node("pair", 0, int(slot_of[other].hostname[-6:], 16))
    assert lab.slot_of(vm) == wanted  # not its own powered-down slot, where nothing waits for it
    lab.wait_for(f"job {job} to run", lambda: lab.job(job)["JobState"] == "COMPLETED")
    assert lab.job(job)["NodeList"] == wanted


def _sbatch(lab, island: str, partition: str = "gpu") -> str:
    options = ["-N1", "-p", partition, "-C", island, "-o", "/tmp/job-%j.out", "--parsable"]
    done = lab.run("sbatch", *options, "--wrap", "hostname")
    return done.stdout.strip().split(";")[0]

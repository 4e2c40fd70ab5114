"""Slurm's power saving, as azcluster renders it, driving the real power programs.

A real slurmctld (Debian's 22.05, 24.11 and 26.05, each in a machine over its Debian root:
tests/realroots.py, in this test's network namespace so it reaches the fakes) runs on loopback with
the slurm.conf azcluster renders plus the elastic keys (times shortened for the test); its
SuspendProgram/ResumeProgram/ResumeFailProgram are the real azc-elastic.py, pointed at the loopback ARM
and IMDS fakes. A job for a powered-down node makes
Slurm call the resume program, which starts a VM of that node's island in the fake; when Slurm powers the
node down it calls the suspend program, which deallocates that same VM. A start Azure refuses marks the
node down with Azure's code and the job is requeued; the island then backs off without asking Azure.

Not driven here: a node going idle past SuspendTime after a slurmd registered it. Slurm 22.05 ignores a
registration from a host that booted before the resume request ("still waiting for boot"), and this
machine cannot play a freshly booted VM; Slurm's power-down path (SuspendProgram) is the same either way.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from azcluster.components import elastic
from azcluster.components.bootstrap import slurm
from tests import realroots
from tests.components.test_elastic_programs import RG, World, cluster_spec
from tests.fakes.arm import TOKEN, FakeArm, FakeArmServer
from tests.fakes.imds import FakeImds, FakeImdsServer
from tests.groups import REAL_DAEMONS

VERSIONS = {"bookworm": "22.05", "trixie": "24.11", "sid": "26.05"}
"""Debian suites whose Slurm runs the controller (skipped, saying why, where roots cannot be had)."""

pytestmark = pytest.mark.xdist_group(REAL_DAEMONS)  # one daemon suite at a time, on its own worker

CLIENT_ID = "5b1c2f0e-0000-4000-8000-00000000c1d0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    """Poll until `check()` is truthy (bounded: a Slurm that never gets there fails the test, not hangs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


class Slurm:
    """munged + slurmctld on loopback with azcluster's rendered configuration; slurmd on demand."""

    def __init__(self, tmp: Path, world: World, root: Path) -> None:
        self.dir = tmp / "slurm"
        self.dir.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []
        # the controller's machine sees this test's directory at the same path (state, programs, CA)
        self.machine = realroots.Machine(
            root, "azc-elastic-ctl", tmp / "machine", realroots.HOST_NETWORK, binds={str(tmp): tmp}
        )
        spec = cluster_spec(idle_minutes=30)
        settings = slurm.SlurmSettings(
            controller_host="azc-elastic-ctl",
            controller_addr="127.0.0.1",
            slurmctld_port=_free_port(),
            slurmd_port=_free_port(),
            slurm_user="root",
            state_save_location=str(self.dir / "state"),
            slurmd_spool_dir=str(self.dir / "spool"),
            log_dir=str(self.dir),
            run_dir=str(self.dir),
            munge_socket=str(self.dir / "munge.sock"),
            proctrack_type="proctrack/linuxproc",  # test changes: no cgroup hierarchy in the test sandbox
            task_plugin="task/none",
            mpi_default="none",
            health_check_program=None,
            task_prolog=None,
            hardware={"h100": slurm.NodeHardware(cpus=1, memory_mb=100, gpus=0)},
        )
        self.conf = self.dir / "slurm.conf"
        # what azc-slurm-controller.sh writes before slurmctld starts (plugstack.conf includes it; a
        # missing include stalls slurmctld for a minute of retries)
        local = self.machine.path(slurm.PLUGSTACK_LOCAL)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("# no SPANK plugins on this host\n")
        extra = elastic.slurm_power_save(spec)
        env = {key: value for key, value in world.env.items() if key.startswith("AZC_")}
        env.update(AZC_SCONTROL="/usr/bin/scontrol", SLURM_CONF=str(self.conf))
        exports = "".join(f"export {key}='{value}'\n" for key, value in sorted(env.items()))
        for key, (path, command) in elastic.SLURM_PROGRAMS.items():
            # The deployed wrapper (elastic.slurm_wrapper), with the fakes' endpoints: slurmctld runs its
            # programs with a clean environment, so the test's variables go into the wrapper itself.
            wrapper = self.dir / Path(path).name
            wrapper.write_text(f'#!/bin/sh\n{exports}exec /usr/bin/python3 {world.program} {command} "$@"\n')
            wrapper.chmod(0o755)
            extra[key] = str(wrapper)
        # Test changes: seconds instead of an hour, so the test sees a whole suspend/resume cycle.
        extra.update(SuspendTime="4", ResumeTimeout="60", SuspendTimeout="4", BatchStartTimeout="60")
        (self.dir / "state").mkdir()
        (self.dir / "spool").mkdir()
        for name, text in slurm.render_configs(spec, settings, extra).items():
            (self.dir / name).write_text(text)
        self.env = {"SLURM_CONF": str(self.conf)}

    def start(self) -> None:
        key = self.dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        munge = [
            "munged",
            "-F",
            "-f",
            f"--socket={self.dir / 'munge.sock'}",
            f"--key-file={key}",
            f"--log-file={self.dir / 'munged.log'}",
            f"--pid-file={self.dir / 'munged.pid'}",
            f"--seed-file={self.dir / 'munged.seed'}",
        ]
        self._spawn(munge)
        _wait("munged", lambda: (self.dir / "munge.sock").exists(), 20)
        self._spawn(["slurmctld", "-D", "-i", "-f", str(self.conf)])
        _wait("slurmctld", lambda: self.run("scontrol", "ping").returncode == 0, 30)

    def _spawn(self, argv: list[str]) -> None:
        log = (self.dir / f"{Path(argv[0]).name}.out").open("ab")
        self.procs.append(self.machine.popen(argv, env=self.env, stdout=log, stderr=subprocess.STDOUT))

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.machine.run(list(argv), env=self.env, timeout=30)

    def node(self, name: str) -> dict[str, str]:
        out = self.run("scontrol", "-o", "show", "node", name).stdout
        return dict(token.split("=", 1) for token in out.split() if "=" in token)

    def job(self, job_id: str) -> dict[str, str]:
        out = self.run("scontrol", "-o", "show", "job", job_id).stdout
        return dict(token.split("=", 1) for token in out.split() if "=" in token)

    def stop(self) -> None:
        self.machine.close()  # every daemon it ran ends with it


@pytest.fixture(params=[pytest.param(suite, id=version) for suite, version in VERSIONS.items()])
def cluster(request, tmp_path: Path) -> Iterator[tuple[World, Slurm]]:
    root = realroots.root_or_skip(request.param)
    arm = FakeArm()
    imds = FakeImds(CLIENT_ID, TOKEN)
    with FakeArmServer(arm, tmp_path) as arm_server, FakeImdsServer(imds) as imds_server:
        world = World(tmp_path, arm, arm_server, imds, imds_server.url)
        world.env["AZC_ELASTIC_POLL"] = "inline"
        for scale_set in arm.scale_sets.values():
            for inst in scale_set.instances:
                inst.power = "deallocated"  # the cluster is idle: every node powered off
        daemons = Slurm(tmp_path, world, root)
        try:
            daemons.start()
            yield world, daemons
        finally:
            daemons.stop()


def _submit(daemons: Slurm) -> str:
    done = daemons.run("sbatch", "--parsable", "-N1", "-p", "h100", "--wrap", "true")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(";")[0]


def test_a_queued_job_powers_a_node_up_and_a_powered_down_node_is_deallocated(cluster) -> None:
    world, daemons = cluster
    job = _submit(daemons)
    # Slurm picks a powered-down slot and calls ResumeProgram: one VM of that slot's island is started
    [(scale_set, ids)] = _wait("a start call to Azure", lambda: world.posts("start"))
    slot = daemons.job(job)["NodeList"]
    island = slot.rsplit("-", 1)[0]
    assert scale_set == f"llm-h100-ib{island[-1]}" and len(ids) == 1
    assert "POWERING_UP" in daemons.node(slot)["State"]
    started = world.arm.scale_sets[(RG, scale_set)].instances[int(ids[0])]
    # the program follows Azure's operation to its end; on a loaded machine that is not done yet here
    _wait("the started VM running", lambda: started.power == "running")
    assert world.state()["slots"][slot] == started.computer_name.lower()
    # Slurm powers the node down (here forced; an idle node past SuspendTime takes the same path): it
    # calls SuspendProgram, which deallocates the VM it started for that slot, and requeues the job
    assert daemons.run("scontrol", "update", f"NodeName={slot}", "State=POWER_DOWN_FORCE").returncode == 0
    [(_, deallocated)] = _wait("a deallocate call to Azure", lambda: world.posts("deallocate"))
    assert deallocated == ids
    # as with the start: the call is posted before Azure's operation ends (a fresh-clone CI run saw
    # 'deallocating' here on a loaded machine)
    _wait("the VM deallocated", lambda: started.power == "deallocated")
    assert "POWER" in daemons.node(slot)["State"] and "POWERING_UP" not in daemons.node(slot)["State"]
    assert daemons.job(job)["JobState"] == "PENDING"
    _wait(
        "the island recorded as deallocated",
        lambda: world.state()["islands"][island]["state"] == "deallocated",
    )


def test_a_refused_start_marks_the_node_down_requeues_and_the_island_backs_off(cluster) -> None:
    world, daemons = cluster
    for scale_set in world.arm.scale_sets.values():  # no capacity anywhere
        scale_set.start_error = (
            "AllocationFailed",
            "Allocation failed. We do not have sufficient capacity for the requested VM size in this region.",
        )
    job = _submit(daemons)
    [(scale_set, _ids)] = _wait("a start call to Azure", lambda: world.posts("start"))
    island = f"h100-i{scale_set[-1]}"
    down = _wait("the node marked down", lambda: _down_reasons(daemons))
    [(node, reason)] = down.items()
    assert node.startswith(island) and reason.startswith("azure AllocationFailed")
    _wait("the job requeued", lambda: daemons.job(job).get("JobState") == "PENDING")
    assert world.state()["islands"][island]["last_error"]["code"] == "AllocationFailed"
    # Another job for the same island: Slurm picks another of its nodes, and the program refuses it
    # without asking Azure again while the island backs off (no loop hammering Azure)
    second = daemons.run(
        "sbatch", "--parsable", "-N1", "-p", "h100", f"--constraint={island}", "--wrap", "true"
    )
    assert second.returncode == 0, second.stderr
    _wait("a second node of the island marked down", lambda: len(_down_reasons(daemons)) == 2)
    assert all("backs off" in reason for reason in _down_reasons(daemons).values())
    assert len(world.posts("start")) == 1


def _down_reasons(daemons: Slurm) -> dict[str, str]:
    """Nodes Slurm holds down or drained, with their reasons (`sinfo -R`)."""
    lines = daemons.run("sinfo", "-R", "-h", "-N", "-o", "%N|%E").stdout.splitlines()
    return dict(line.split("|", 1) for line in lines if "|" in line)

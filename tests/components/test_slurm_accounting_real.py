"""Slurm accounting for a team, on real daemons: slurmdbd on a real MariaDB, slurmctld and slurmd of Debian
13's Slurm 24.11.5 and Debian sid's 26.05.5, each with MariaDB 11.8 (tests/realroots.py ACCOUNTING_PACKAGES),
each release a cluster in its own loopback namespace and xdist group.

The controller starts through azc-slurm-controller.sh with accounting on (MariaDB, slurmdbd.conf, the
cluster's record), as the login node's cloud-config makes it (tests/components/slurmlab.py says how a test
machine differs from Azure). The team's users file (components/team.py) is applied by the real
azc-users.py on every machine and by azc-slurm-accounts.py on the controller. Slurm's own tools then check:
the associations, fair shares and QOS limits are those of the spec; a second run changes nothing; a job
over its account's GPUs-per-user limit pends with reason QOSMaxGRESPerUser; a removed user's running job
runs on, their pending job is cancelled and their submissions are refused, and once the running job ends
their association is gone; `azcluster cost`'s script (azcluster/ops/usage.py) turns the real sacct output
into the report, whose arithmetic is checked against sacct's own ElapsedRaw.

Differences from Azure besides slurmlab's: each node's 2 GPUs are character devices like /dev/null in its
own /etc (gres.conf `File=` names them: this machine has no GPUs), and it has 2 CPUs; the users file is
written into each machine's /home (on Azure the shared home carries one copy to all).
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import pytest

from azcluster.components import bootstrap
from azcluster.components.bootstrap import slurm
from azcluster.components.spec import ClusterSpec
from azcluster.components.team import render_users_file
from azcluster.ops import runcommand, slurmstate, usage
from azcluster.ops.model import TopUser
from tests import realroots
from tests.components import slurmlab

pytestmark = pytest.mark.timeout(600)
SUITES = {suite: slurmlab.VERSIONS[suite] for suite in realroots.ACCOUNTING_SUITES}

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl {}@team"


def team_spec(users: list[str]) -> ClusterSpec:
    people = {
        "alice": {"uid": 2001, "account": "vision"},
        "bob": {"uid": 2002, "account": "vision"},
        "carol": {"uid": 2003, "account": "nlp"},
    }
    return ClusterSpec.model_validate(
        {
            "name": "lab",
            "location": "eastus",
            "scheduler": "slurm",
            "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 2, "island_max_nodes": 2}],
            "slurm": {"accounting": {"enabled": True}},
            "team": {
                "users": [{"name": name, "ssh_keys": [KEY.format(name)], **people[name]} for name in users],
                # nlp is carol's project: it leaves with her
                "accounts": [{"name": "vision", "fairshare": 2, "max_gpus_per_user": 2}]
                + (["nlp"] if "carol" in users else []),
            },
        }
    )


FAKE_GPUS = "/etc/azc-test-gpu"


def fake_gpus(configs: dict[str, str]) -> dict[str, str]:
    """No GPU device files here: each node's 2 GPUs are two files of its own (slurmd ignores a GPU
    without a file: "Ignoring file-less GPU")."""
    configs["gres.conf"] = re.sub(r"File=\S+", f"File={FAKE_GPUS}[0-1]", configs["gres.conf"])
    return configs


def gpu_files(machine) -> None:
    """slurmd wants character devices: each "GPU" is one like /dev/null (1, 3), in the machine's own /etc."""
    for index in range(2):
        os.mknod(machine.path(f"{FAKE_GPUS}{index}"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))


def hand_over(lab: slurmlab.SlurmLab, spec: ClusterSpec) -> None:
    """What `users sync` and the shared home do: the same root-owned users file on every machine; then each
    machine's azc-users.py run, as its timer would."""
    text = render_users_file(spec)
    for name, machine in lab.machines.items():
        target = machine.path("/home/.azcluster/users.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        done = machine.run(["python3", f"{bootstrap.INSTALL_DIR}/azc-users.py", "apply"], timeout=120)
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"


def sync_accounts(lab: slurmlab.SlurmLab) -> str:
    done = lab.login.run(["python3", f"{bootstrap.INSTALL_DIR}/azc-slurm-accounts.py", "apply"], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr + lab.logs()
    return done.stdout


def as_user(lab: slurmlab.SlurmLab, user: str, *argv: str):
    return lab.run("runuser", "-u", user, "--", *argv, check=False)


def refused(lab: slurmlab.SlurmLab, user: str) -> str:
    """A submission that must fail: its error, kept out of the lines test_no_error_lines reads."""
    done = lab.login.run(["runuser", "-u", user, "--", "sbatch", "--wrap", "true"], timeout=slurmlab.WAIT_S)
    assert done.returncode != 0, done.stdout
    return done.stderr


def submit(lab: slurmlab.SlurmLab, user: str, *options: str) -> str:
    done = as_user(lab, user, "sbatch", "--parsable", "-o", "/dev/null", *options)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().split(";")[0]


def state(lab: slurmlab.SlurmLab, job: str) -> tuple[str, str]:
    out = lab.run("squeue", "-h", "-j", job, "-o", "%T|%r", check=False).stdout.strip()
    if not out:
        row = lab.run("sacct", "-n", "-P", "-X", "-j", job, "-o", "State").stdout.strip()
        return (row.split()[0] if row else "GONE"), ""
    status, _, reason = out.partition("|")
    return status, reason


def wait_state(lab: slurmlab.SlurmLab, job: str, wanted: str) -> tuple[str, str]:
    deadline = time.monotonic() + slurmlab.WAIT_S
    while time.monotonic() < deadline:
        found = state(lab, job)
        if found[0] == wanted:
            return found
        time.sleep(0.5)
    raise AssertionError(f"job {job} is {state(lab, job)}, not {wanted}\n{lab.logs()}")


def associations(lab: slurmlab.SlurmLab) -> dict[tuple[str, str], tuple[str, str, str]]:
    out = lab.run(
        "sacctmgr", "-n", "-P", "show", "assoc", "cluster=lab", "format=account,user,fairshare,qos,defaultqos"
    ).stdout
    rows = {}
    for line in out.splitlines():
        account, user, fairshare, qos, default = line.split("|")
        rows[(account, user)] = (fairshare, qos, default)
    return rows


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(suite, id=version, marks=pytest.mark.xdist_group(f"slurm-accounting-{version}"))
        for suite, version in SUITES.items()
    ],
)
def lab(request, tmp_path_factory):
    # 2 CPUs as one socket of 2 cores: the layout the lab's node machines show slurmd (slurmlab)
    hardware = {
        "gpu": slurm.NodeHardware(
            cpus=2, memory_mb=512, gpus=2, sockets=1, cores_per_socket=2, threads_per_core=1
        )
    }
    lab = slurmlab.new_lab(
        request.param,
        tmp_path_factory.mktemp(f"slurm-accounting-{request.param}"),
        team_spec(["alice", "bob", "carol"]),
        packages=realroots.ACCOUNTING_PACKAGES,
        hardware=hardware,
        slurmd_port=6900,  # the slots' ports (6901...) clear of slurmdbd's 6819 in the shared namespace
    )
    lab.prepare = gpu_files
    try:
        lab.start_controller(edit_configs=fake_gpus)
        lab.nodes = [lab.boot_node("gpu", 0, 0), lab.boot_node("gpu", 0, 1)]
        hand_over(lab, lab.spec)
        lab.first_sync = sync_accounts(lab)
        yield lab
    finally:
        lab.close()


def test_the_sync_made_the_associations_fair_shares_and_limits(lab) -> None:
    rows = associations(lab)
    assert rows[("vision", "alice")][1:] == ("azc-vision", "azc-vision")
    assert rows[("vision", "bob")][1:] == ("azc-vision", "azc-vision")
    assert rows[("nlp", "carol")][1:] == ("azc-nlp", "azc-nlp")
    assert rows[("general", "azureuser")][1:] == ("azc-general", "azc-general")  # the admin user
    assert rows[("vision", "")][0] == "2" and rows[("nlp", "")][0] == "1"
    qos = lab.run("sacctmgr", "-n", "-P", "show", "qos", "format=name,maxtrespu,grptres").stdout
    assert "azc-vision|gres/gpu=2|" in qos.splitlines()
    assert "azc-nlp||" in qos.splitlines()
    users = lab.run("sacctmgr", "-n", "-P", "show", "user", "format=user,defaultaccount").stdout.splitlines()
    assert {"alice|vision", "bob|vision", "carol|nlp", "azureuser|general"} <= set(users)
    # fair share is what the scheduler weighs: multifactor priority, the account's raw shares
    config = lab.run("scontrol", "show", "config").stdout
    assert re.search(r"^PriorityType\s*=\s*priority/multifactor$", config, re.M)
    assert re.search(r"^AccountingStorageEnforce\s*=\s*associations,limits,qos$", config, re.M)
    shares = lab.run("sshare", "-n", "-P", "-o", "Account,User,RawShares").stdout.splitlines()
    assert "vision||2" in [line.strip() for line in shares]
    # applied twice, it changes nothing
    assert "0 changes" in sync_accounts(lab)


def test_a_job_over_the_gpus_per_user_limit_pends_with_the_qos_reason(lab) -> None:
    first = submit(lab, "alice", "--gpus=2", "--wrap", "sleep 300")
    second = submit(lab, "alice", "--gpus=1", "--wrap", "sleep 300")
    try:
        wait_state(lab, first, "RUNNING")
        # a node with 2 GPUs is free, yet alice holds her account's 2 GPUs per user already
        assert lab.run("sinfo", "-h", "-N", "-t", "idle", "-o", "%N").stdout.strip()
        assert wait_state(lab, second, "PENDING")[1] == "QOSMaxGRESPerUser"
        # `status` reads the top users with squeue in its first Run Command script: real squeue's lines
        done = lab.login.run(["bash", "-c", "\n".join(slurmstate.script("0badcafe", 0))])
        assert slurmstate.parse_top_users(done.stdout) == [TopUser("alice", 1, 1, 2)], done.stdout
        job = lab.job(first)
        assert "gres/gpu=2" in job.get("AllocTRES", job.get("TRES", ""))
        assert job["NumCPUs"] == "2"  # DefCpuPerGPU=1: the node's 2 CPUs over its 2 GPUs, per GPU
        # bob, in the same account, has a limit of his own
        other = submit(lab, "bob", "--gpus=2", "--wrap", "sleep 1")
        wait_state(lab, other, "COMPLETED")
    finally:
        lab.run("scancel", first, second, check=False)


def test_a_removed_user_cannot_submit_and_their_running_job_finishes(lab) -> None:
    running = submit(lab, "carol", "--gpus=1", "--wrap", "sleep 8")
    pending = submit(lab, "carol", "--begin=now+3600", "--wrap", "true")
    wait_state(lab, running, "RUNNING")
    try:
        hand_over(lab, team_spec(["alice", "bob"]))
        out = sync_accounts(lab)
        assert "carol may not submit to nlp" in out and "cancelled carol's pending jobs" in out
        assert "running jobs finish first" in out
        assert state(lab, running)[0] == "RUNNING"
        assert state(lab, pending)[0] == "CANCELLED"
        assert "Job violates accounting/QOS policy" in refused(lab, "carol")
        wait_state(lab, running, "COMPLETED")
        out = sync_accounts(lab)
        assert "removed carol from account nlp" in out and "removed account nlp" in out
        assert not any(user == "carol" for _, user in associations(lab))
        assert "Invalid account" in refused(lab, "carol")
    finally:
        lab.run("scancel", "-u", "carol", check=False)
        hand_over(lab, lab.spec)  # carol is back: the tests after this one see the whole team
        assert "carol" in sync_accounts(lab)


def test_sacct_becomes_the_cost_report_with_exact_arithmetic(lab) -> None:
    since = int(time.time()) + 1
    time.sleep(2)  # the window opens after every earlier test's jobs ended
    jobs = [
        submit(lab, "bob", "--gpus=2", "--wrap", "sleep 3"),
        submit(lab, "alice", "--gpus=1", "--wrap", "sleep 2"),
    ]
    for job in jobs:
        wait_state(lab, job, "COMPLETED")
    elapsed = {}
    for job in jobs:
        user, raw = lab.run("sacct", "-n", "-P", "-X", "-j", job, "-o", "User,ElapsedRaw").stdout.split("|")
        elapsed[user] = int(raw)
    # the script `azcluster cost` sends through Run Command, run on the login node
    text = ""
    for _ in range(usage.MAX_CALLS):
        done = lab.login.run(["bash", "-c", "\n".join(usage.script("0badcafe", len(text), since))])
        assert done.returncode == 0, done.stderr
        size, chunk = runcommand.listing_chunk(done.stdout, usage.MARKER)
        text += chunk
        if len(text) >= size:
            break
    import base64
    import gzip

    listing = usage.parse_usage(gzip.decompress(base64.b64decode(text)).decode())
    report = usage.price_rows(lab.spec, listing, "user")
    lines = {line.key: line for line in report.lines}
    from fractions import Fraction

    price = Fraction(str(usage.catalog.find_size("Standard_ND96isr_H100_v5").price.usd_per_hour))
    assert {row.island for row in listing.rows} == {"gpu-i0"}
    for user, gpus in (("bob", 2), ("alice", 1)):
        line = lines[user]
        assert line.gpu_hours == Fraction(gpus * elapsed[user], 3600)
        assert line.node_hours == Fraction(elapsed[user], 3600)
        # the H100 size has 8 GPUs a node: a job of `gpus` holds gpus/8 of it
        assert line.usd == Fraction(elapsed[user], 3600) * Fraction(gpus, 8) * price
    assert set(lines) == {"bob", "alice"}
    assert report.compute_usd == lines["bob"].usd + lines["alice"].usd
    # sacct's own format is what tests/azcluster/fixtures/sacct was captured from (the ARM fake's sacct)
    raw = lab.run(
        "env", "TZ=UTC", "SLURM_TIME_FORMAT=%s", "sacct", "-a", "-X", "-n", "-P", "-S", "now-1hour",
        "-o", usage.SACCT_FIELDS,
    ).stdout  # fmt: skip
    if os.environ.get("AZC_CAPTURE_SACCT") and lab.suite == "trixie":
        Path(os.environ["AZC_CAPTURE_SACCT"]).write_text(raw)
    for job in jobs:
        row = next(line for line in raw.splitlines() if line.startswith(f"{job}|")).split("|")
        assert len(row) == 9 and row[6].isdigit() and row[7].isdigit()
        assert re.fullmatch(r"gpu-i0-00[01]", row[8])  # the slot the job ran on: its island's
        assert re.fullmatch(r"billing=\d+,cpu=\d+,gres/gpu=\d+,mem=\d+M,node=1", row[5])


EXPECTED = (
    # the tests cancel running jobs: slurmstepd says so as an error
    re.compile(r"error: \*\*\* JOB \d+ ON \S+ CANCELLED AT "),
    # slurmctld on carol's submission after her association went (UID 2003): the refusal tested above
    re.compile(r"error: User 2003 not found$"),
)


def test_no_error_lines(lab) -> None:
    """Only what the tests provoke on purpose: submissions refused are read from their own output above."""
    assert [line for line in lab.bad_lines() if not any(p.search(line) for p in EXPECTED)] == []

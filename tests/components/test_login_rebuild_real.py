"""The login node can be rebuilt: real slurmctld, slurmd and slurmdbd of Debian 13 (Slurm 24.11.5) and sid
(26.05.5) with the accounting database on a real MariaDB (11.8) server of its
own, reached over TCP by name with the administrator login and the password file cloud-init wrote,
as `slurm.accounting.database: mysql` makes it on Azure (components/accounting_db.py).

The login node starts from its rendered cloud-config (slurm.conf with StateSaveLocation on the shared home,
the database's password file, node.env naming the server and the CA bundle) through
azc-slurm-controller.sh; a GPU node joins; jobs run, wait in the queue and finish. Then the login VM is
lost: its machine (and its disk: the overlay's upper layer) is thrown away, and a new login machine with a
fresh, empty disk and only the shared home kept (a host directory bind-mounted at /home on both, as the
Azure Files share is) boots the same cloud-config. Slurm's own tools then show: the running job still
running with the same id, the pending jobs still pending, the finished job and the whole history in sacct,
new job ids continuing after the old ones.

Differences from Azure besides tests/components/slurmlab.py's: the "MySQL flexible server" is MariaDB 11.8
in a machine of its own, its name resolves through /etc/hosts instead of the private DNS zone, and the
shared home is a host directory instead of an NFS share. And TLS is not required here: with
`StorageParameters=SSL_CA=...` (what node.env's AZC_SLURMDBD_STORAGE_CA makes) Debian 13's slurmdbd
24.11.5 connects to MariaDB 11.8 over TLS (verified against the test CA) and then fails its first query
(`select @var := concat('')`: "5027 Number of columns in result (=1) set exceeds maximum allowed number
of columns (=0)", fatal), while the same slurmdbd without SSL_CA is refused by a server that requires TLS
("3159 Connections using insecure transport are prohibited"), both seen on this machine. So this test
drops AZC_SLURMDBD_STORAGE_CA from the login node's node.env and its server does not require TLS; the
TLS setting itself is asserted on the rendered slurmdbd.conf (test_accounting_db.py renders it) and must
be checked against Azure's MySQL 8.0 (whose protocol has no MariaDB metadata extensions) on a real cluster.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path

import pytest

from azcluster.components import bootstrap
from azcluster.components.accounting_db import ADMIN_LOGIN, server_fqdn
from azcluster.components.bootstrap import slurm
from azcluster.components.spec import ClusterSpec
from tests import realroots
from tests.components import slurmlab
from tests.groups import REAL_DAEMONS

pytestmark = [pytest.mark.timeout(900), pytest.mark.xdist_group(REAL_DAEMONS)]

SERVER = server_fqdn("lab-slurmdb-0a1b2c")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def lab_spec() -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "lab",
            "location": "eastus",
            "scheduler": "slurm",
            "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 2, "island_max_nodes": 2}],
            "slurm": {"accounting": {"enabled": True, "database": "mysql"}},
        }
    )


def machine(lab: slurmlab.SlurmLab, hostname: str, disk: str, binds=None) -> realroots.Machine:
    """A machine as slurmlab makes one, on a disk (overlay upper layer) of its own name, with `binds`."""
    box = realroots.Machine(lab.root, hostname, lab.work / disk, lab.net, binds=binds or {})
    lab.machines[hostname] = box
    with box.path("/etc/hosts").open("a") as hosts:
        hosts.write(f"127.0.0.1 {slurm.controller_address(lab.dns_zone)} {SERVER}\n")
    shim = box.path("/usr/local/sbin/azc-test-systemctl")
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text(slurmlab.SYSTEMCTL_SHIM)
    shim.chmod(0o755)
    return box


def start_database(lab: slurmlab.SlurmLab, password: str) -> realroots.Machine:
    """MariaDB as the managed server: TCP on 3306 (no TLS: module docstring), the administrator slurmdbd
    logs in as."""
    db = machine(lab, "lab-db", "db-disk")
    done = db.run(
        ["sh", "-c", "mariadb-install-db --user=mysql >/var/log/mariadb-init.log 2>&1"], timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # the socket's directory: /run/mysqld up to Debian 13, /run/mariadbd from MariaDB 1:11.8.6-5 (sid),
    # whose data moved to /var/lib/mariadb too (its 50-server.cnf says so): the log goes beside neither
    made = "mkdir -p /run/mysqld /run/mariadbd && touch /var/log/mariadb-error.log"
    db.run(
        ["sh", "-c", f"{made} && chown mysql: /run/mysqld /run/mariadbd /var/log/mariadb-error.log"],
        timeout=30,
    )
    db.popen(
        [
            "mariadbd", "--user=mysql", "--bind-address=127.0.0.1", "--port=3306",
            "--skip-ssl", "--innodb-lock-wait-timeout=900",
            "--log-error=/var/log/mariadb-error.log",
        ]
    )  # fmt: skip
    deadline = time.monotonic() + slurmlab.WAIT_S
    while db.run(["mariadb-admin", "--skip-ssl", "ping"], timeout=30).returncode != 0:
        log = db.path("/var/log/mariadb-error.log")
        assert time.monotonic() < deadline, (
            log.read_text(errors="replace")[-2000:] if log.exists() else "no log"
        )
        time.sleep(0.5)
    sql = (
        f"CREATE USER '{ADMIN_LOGIN}'@'%' IDENTIFIED BY '{password}';"
        f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_LOGIN}'@'%';"
    )
    done = db.run(["mariadb", "--skip-ssl", "-e", sql], timeout=30)
    assert done.returncode == 0, done.stderr
    return db


def boot_login(lab: slurmlab.SlurmLab, disk: str, home: Path, password: str):
    """A login VM boots: its cloud-config's files, then azc-slurm-controller.sh."""
    login = machine(lab, "lab-login", disk, binds={"/home": home})
    server = bootstrap.AccountingServer(SERVER, ADMIN_LOGIN, password)
    boot = bootstrap.SlurmBoot(munge_key_b64=lab.key_b64, dns_zone=lab.dns_zone, accounting_server=server)

    def edit(path: str, content: str) -> str:  # no SSL_CA here (module docstring)
        content = lab._node_env(path, content)
        if path == bootstrap.NODE_ENV_PATH:
            assert f"AZC_SLURMDBD_STORAGE_CA={CA_BUNDLE}" in content
            content = content.replace(f"AZC_SLURMDBD_STORAGE_CA={CA_BUNDLE}\n", "")
        return content

    slurmlab._write_files(login, bootstrap.render_login_cloud_config(lab.spec, None, None, slurm=boot), edit)
    configs = slurm.render_configs(lab.spec, lab.settings)
    configs["cgroup.conf"] = configs["cgroup.conf"].replace("CgroupPlugin=cgroup/v2\n", "")
    for name, text in configs.items():
        login.path(f"/etc/slurm/{name}").write_text(text)
    try:
        done = login.run(
            [f"{bootstrap.INSTALL_DIR}/azc-slurm-controller.sh"],
            env=lab.boot_env(),
            timeout=slurmlab.WAIT_S * 3,
        )
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"azc-slurm-controller.sh: no end in {err.timeout} s\n{lab.logs()}") from None
    assert done.returncode == 0, done.stdout + done.stderr + lab.logs()
    lab.client_output.append(done.stderr)
    return login, done.stderr


def squeue(lab: slurmlab.SlurmLab) -> dict[str, str]:
    out = lab.run("squeue", "-h", "-o", "%i|%T").stdout
    return dict(line.split("|") for line in out.split())


def sacct(lab: slurmlab.SlurmLab) -> dict[str, str]:
    out = lab.run("sacct", "-a", "-n", "-P", "-X", "-S", "now-1hour", "-o", "JobID,State").stdout
    return dict(line.split("|") for line in out.split())


def submit(lab: slurmlab.SlurmLab, *options: str) -> str:
    done = lab.run("sbatch", "--parsable", "-o", "/dev/null", *options)
    return done.stdout.strip().split(";")[0]


def wait(lab: slurmlab.SlurmLab, what: str, predicate) -> None:
    deadline = time.monotonic() + slurmlab.WAIT_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(
        f"timed out waiting for {what}\n{lab.run('squeue', check=False).stdout}\n{lab.logs()}"
    )


LOGIN_REBUILD_SUITES = ("trixie", "sid")
"""Debian 13 (24.11.5) and sid (26.05.5). The lost login VM never stopped slurmctld cleanly, so the shared
state has no assoc_usage: 26.05's slurmctld would refuse it (fatal) but for azc-slurm-controller.sh's
recover_options (slurmctld -i in that case only)."""


@pytest.fixture(
    scope="module",
    params=[pytest.param(suite, id=slurmlab.VERSIONS[suite]) for suite in LOGIN_REBUILD_SUITES],
)
def rebuilt(request, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"login-rebuild-{request.param}")
    lab = slurmlab.new_lab(
        request.param,
        work,
        lab_spec(),
        packages=realroots.ACCOUNTING_PACKAGES,
        slurmd_port=6900,  # the slots' ports (6901...) clear of slurmdbd's 6819 in the shared namespace
    )
    # a loaded machine may take longer than slurmlab's 3 s for slurmd to register its claim
    lab.boot_env = lambda: {**slurmlab.SlurmLab.boot_env(lab), "AZC_SLURM_VERIFY_WAIT": "10"}  # type: ignore[method-assign]
    home = work / "shared-home"
    home.mkdir()
    password = "Az9-" + secrets.token_urlsafe(24)
    try:
        start_database(lab, password)
        boot_login(lab, "login-disk-1", home, password)
        lab.boot_node("gpu", 0, 0)
        before: dict[str, object] = {}
        finished = submit(lab, "--wrap", "true")
        wait(lab, f"job {finished} to finish", lambda: sacct(lab).get(finished) == "COMPLETED")
        running = submit(lab, "--wrap", "sleep 600")
        wait(lab, f"job {running} to run", lambda: squeue(lab).get(running) == "RUNNING")
        queued = submit(lab, "--wrap", "true")  # the node's one CPU is taken: it waits for resources
        submitted = time.time()
        later = submit(lab, "--begin=now+3600", "--wrap", "true")
        wait(lab, "the queue", lambda: squeue(lab).get(queued) == "PENDING" and later in squeue(lab))
        # slurmctld writes its state a moment after a change (its state-save thread batches changes for a
        # few seconds): a VM lost within that moment loses that moment's changes (seen: the last two
        # submissions gone, the running job back to pending). Wait for the write, as a loss some time
        # after the last submission would find it.
        state = home / ".azcluster" / "slurmctld" / "job_state"
        wait(lab, "slurmctld to save its state", lambda: state.exists() and state.stat().st_mtime > submitted)
        before.update(
            finished=finished,
            running=running,
            queued=queued,
            later=later,
            queue=squeue(lab),
            sacct=sacct(lab),
        )
        # The login VM is gone: everything on it ends, its disk with it.
        lab.stop("lab-login")
        assert not (work / "login-disk-2").exists()
        _, log = boot_login(lab, "login-disk-2", home, password)
        before["log"] = log
        yield lab, before
    finally:
        lab.close()


def test_the_new_login_disk_started_empty_and_the_state_came_from_the_shared_home(rebuilt) -> None:
    lab, before = rebuilt
    assert "slurmctld's state found in /home/.azcluster/slurmctld" in before["log"]
    assert lab.login.path("/home/.azcluster/slurmctld/job_state").exists()
    # the new disk has no copy of the old one's local spool
    assert not any(lab.work.joinpath("login-disk-2").rglob("job_state"))


def test_the_queue_is_still_there_running_and_pending_jobs_included(rebuilt) -> None:
    lab, before = rebuilt
    queue = squeue(lab)
    detail = lab.run("scontrol", "show", "job", check=False).stdout
    assert queue.get(before["running"]) == "RUNNING", f"{before}\n{queue}\n{detail}\n{lab.logs()}"
    assert queue.get(before["later"]) == "PENDING", queue
    assert queue.get(before["queued"]) in ("PENDING", "RUNNING", None), queue
    # the running job was never restarted: its node kept it and the new controller took it back
    job = lab.job(before["running"])
    assert job["Restarts"] == "0" and job["JobState"] == "RUNNING"


def test_the_accounting_history_is_still_there_and_job_ids_continue(rebuilt) -> None:
    lab, before = rebuilt
    history = sacct(lab)
    assert history.get(before["finished"]) == "COMPLETED"
    assert history.get(before["running"]) == "RUNNING" and before["queued"] in history
    assert set(before["sacct"]) <= set(history)
    new = submit(lab, "--begin=now+3600", "--wrap", "true")
    assert int(new) > max(int(job) for job in before["sacct"])
    lab.run("scancel", new, before["later"], before["running"], check=False)


def test_slurmdbd_stores_on_the_server_with_the_delivered_password(rebuilt) -> None:
    lab, _ = rebuilt
    conf = lab.login.path("/etc/slurm/slurmdbd.conf").read_text()
    assert f"StorageHost={SERVER}" in conf and f"StorageUser={ADMIN_LOGIN}" in conf
    password = lab.login.path(bootstrap.SLURMDBD_PASS_PATH).read_text().strip()
    assert f"StoragePass={password}" in conf
    assert (lab.login.path("/etc/slurm/slurmdbd.conf").stat().st_mode & 0o777) == 0o600
    assert (lab.login.path(bootstrap.SLURMDBD_PASS_PATH).stat().st_mode & 0o777) == 0o600
    # the database slurmdbd made is on the server, not on the login disk
    db = lab.machines["lab-db"]
    tables = db.run(
        ["mariadb", "--skip-ssl", "-N", "-e", "SHOW TABLES FROM slurm_acct_db LIKE 'lab_job_table'"],
        timeout=30,
    )
    assert tables.stdout.strip() == "lab_job_table", tables.stderr
    for datadir in ("/var/lib/mysql", "/var/lib/mariadb"):  # MariaDB's on Debian 13, on sid
        assert not lab.login.path(f"{datadir}/slurm_acct_db").exists()
    assert lab.login.run(["pgrep", "-x", "mariadbd"], timeout=30).returncode != 0

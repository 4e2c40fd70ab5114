"""Slurm's view of the nodes for `status`: each node's state (idle, allocated, drained + reason) beside
Azure's power and health, read with one `sinfo` on the login node through Run Command.

What is read: `sinfo -h -N -o '%N|%T|%n|%o|%E'`, one line per node: Slurm's node name (a slot,
components/bootstrap/slurm.py), its state in long form, the host name and address it registered with
(cloud_reg_addrs: the VM's), and the reason (`none` without one). A fixed format, not `sinfo --json`
(Slurm 22.05 prints JSON only with the openapi plugins). State suffixes (sinfo(1), NODE STATE CODES):
`*` not responding, `~` powered off, `#` powering up, `%` powering down, `!` pending power down,
`$` maintenance, `@` pending reboot, `^` reboot issued, `-` planned by the backfill scheduler.
Unclaimed CLOUD slots are not listed.

Run Command returns only the last 4 KiB of stdout (runcommand.OUTPUT_LIMIT), and a 1000-node cluster's
sinfo is tens of KiB. So the login node keeps the listing gzip'ed and base64'ed in /run (a file named by
this run), and each call prints one chunk of it; a small cluster takes one call. Slurm's view is extra:
when it cannot be read, `status` says why and shows Azure's view alone.

The first call also prints the login node's MPI record (components/bootstrap/slurm_mpi.py): whether the
cluster's Slurm has a PMIx plugin, so `status` can say why MPI jobs will fail before one does. The login
node's record answers for the cluster: the controller and every node pin one Slurm version from one
repository (catalog/slurm.yaml), and users launch srun there (srun itself refuses an MPI type its build
lacks). It costs no Run Command of its own.

The first call also prints the users with the most GPUs in running jobs now (TOP_USERS of them), read with
`squeue -h -t RUNNING -O 'UserName:|,NumNodes:|,tres-alloc:|'` (one `user|nodes|cpu=..,gres/gpu=N,...|`
line per job, as Slurm 24.11 prints it: tests/components/test_slurm_accounting_real.py) and added up on
the node, so it stays a few lines whatever the queue holds.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from azcluster.components.bootstrap.slurm_mpi import SLURM_MPI_PATH, SlurmMpi, parse_slurm_mpi
from azcluster.components.spec import ClusterSpec

from . import runcommand
from .model import ClusterStatus, SlurmNode, SlurmView, TopUser

SINFO_FORMAT = "%N|%T|%n|%o|%E"
CHUNK = 3600  # base64 characters per call: under Run Command's 4 KiB with the marker lines
MPI_RECORD_LIMIT = 512  # bytes of the MPI record the first call prints (its chunk is that much shorter)
TOP_USERS = 5
TOP_USERS_LIMIT = 512  # bytes of the top-users lines the first call prints
SQUEUE_FORMAT = "UserName:|,NumNodes:|,tres-alloc:|"
TOP_USERS_PROGRAM = (
    "import sys\n"
    "u = {}\n"
    "for line in sys.stdin:\n"
    "    f = line.strip().split('|')\n"
    "    if len(f) < 3 or not f[1].isdigit():\n"
    "        continue\n"
    "    t = dict(x.split('=', 1) for x in f[2].split(',') if '=' in x)\n"
    "    g = t.get('gres/gpu', '0')\n"
    "    j, n, gp = u.get(f[0], (0, 0, 0))\n"
    "    u[f[0]] = (j + 1, n + int(f[1]), gp + (int(g) if g.isdigit() else 0))\n"
    f"for name, (j, n, g) in sorted(u.items(), key=lambda i: (-i[1][2], -i[1][1], i[0]))[:{TOP_USERS}]:\n"
    "    print('%s|%d|%d|%d' % (name, j, n, g))\n"
)
"""Run on the login node: squeue's running jobs on stdin -> `user|jobs|nodes|gpus`, most GPUs first."""
MAX_CALLS = 12
TIMEOUT_S = 120.0
MARKER = "AZC-SINFO"
_RUN = re.compile(r"^[a-f0-9]{8}$")


def parse_sinfo(text: str) -> list[SlurmNode]:
    """Nodes from `sinfo -h -N -o SINFO_FORMAT`, once each (-N repeats a node per partition)."""
    nodes: dict[str, SlurmNode] = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 4)
        if len(parts) != 5 or not parts[0]:
            continue
        name, state, hostname, address, reason = (part.strip() for part in parts)
        nodes.setdefault(
            name, SlurmNode(name, state, hostname, address, None if reason == "none" else reason)
        )
    return list(nodes.values())


def script(run_id: str, start: int) -> list[str]:
    """The Run Command script: (first call) save the gzip'ed, base64'ed listing; print one chunk of it."""
    if not _RUN.match(run_id) or start < 0:
        raise ValueError("run id: 8 lower-case hex digits; start: >= 0")
    path = f"${{AZC_ROOT:-}}/run/azcluster/sinfo-{run_id}.b64"
    lines = ["set -eu", "set -o pipefail", f'f="{path}"']
    if start == 0:
        lines += [
            'mkdir -p "$(dirname "$f")"',
            f"sinfo -h -N -o '{SINFO_FORMAT}' | gzip -9 | base64 -w0 >\"$f\"",
        ]
    # the first call also prints the MPI record and the top users
    size = CHUNK if start else CHUNK - MPI_RECORD_LIMIT - TOP_USERS_LIMIT
    lines += runcommand.chunk_lines(MARKER, start, size)
    if start == 0:
        record = f"${{AZC_ROOT:-}}{SLURM_MPI_PATH}"
        lines += [
            "echo AZC-MPI",
            f'{{ head -c {MPI_RECORD_LIMIT} "{record}" | tr -d "\\n"; }} 2>&1 || true',
            "echo; echo AZC-MPI-END",
            "echo AZC-TOP",
            f"{{ squeue -h -t RUNNING -O '{SQUEUE_FORMAT}' | {runcommand.python_program(TOP_USERS_PROGRAM)}"
            f" | head -c {TOP_USERS_LIMIT}; }} 2>/dev/null || true",
            "echo AZC-TOP-END",
        ]
    return lines


def _mpi(stdout: str) -> tuple[SlurmMpi | None, str | None]:
    """(the login node's MPI record, None) from the first call's stdout, or (None, why it is missing)."""
    lines = [line.strip() for line in stdout.splitlines()]
    if "AZC-MPI" not in lines or "AZC-MPI-END" not in lines:
        return None, "the login node did not answer for it"
    start = lines.index("AZC-MPI")
    text = "\n".join(lines[start + 1 : lines.index("AZC-MPI-END", start)]).strip()
    if not text or "no such file" in text.lower():
        return None, f"no {SLURM_MPI_PATH} on the login node yet (written once Slurm runs there)"
    try:
        return parse_slurm_mpi(text), None
    except ValueError as err:
        return None, f"{SLURM_MPI_PATH} on the login node: {err}"


def parse_top_users(stdout: str) -> list[TopUser]:
    """The first call's top-users lines (empty when squeue said nothing or is not there)."""
    lines = [line.strip() for line in stdout.splitlines()]
    if "AZC-TOP" not in lines or "AZC-TOP-END" not in lines:
        return []
    start = lines.index("AZC-TOP")
    users = []
    for line in lines[start + 1 : lines.index("AZC-TOP-END", start)]:
        parts = line.split("|")
        if len(parts) == 4 and all(part.isdigit() for part in parts[1:]):
            users.append(TopUser(parts[0], int(parts[1]), int(parts[2]), int(parts[3])))
    return users


def read_slurm(
    begin: runcommand.Begin, *, timeout: float = TIMEOUT_S, run_id: str | None = None
) -> SlurmView:
    """Slurm's nodes, read on the login node in as few calls as the listing takes; errors become
    `SlurmView.error` (Slurm's view is extra to `status`, never its failure)."""
    run_id = run_id or secrets.token_hex(4)
    first: list[str] = []
    try:
        text = runcommand.read_listing(
            begin,
            lambda start: script(run_id, start),
            MARKER,
            tool="sinfo",
            listing="Slurm's node list",
            timeout=timeout,
            max_calls=MAX_CALLS,
            first=first.append,
        )
    except runcommand.ListingUnreadable as err:
        if not err.tool_failed:
            return SlurmView(error=str(err))
        mpi, mpi_error = _mpi(first[0])  # the login node answered: its MPI record still counts
        return SlurmView(error=str(err), mpi=mpi, mpi_error=mpi_error)
    mpi, mpi_error = _mpi(first[0])
    top = parse_top_users(first[0])
    return SlurmView(nodes=parse_sinfo(text), mpi=mpi, mpi_error=mpi_error, top_users=top)


def attach(status: ClusterStatus, view: SlurmView) -> None:
    """Give each Azure node its Slurm node (same host name, else same address); keep the rest apart."""
    by_host = {node.hostname.lower(): node for node in view.nodes}
    by_address = {node.address: node for node in view.nodes}
    matched: set[str] = set()
    for island in status.islands:
        for vm in island.nodes:
            found = by_host.get((vm.computer_name or "").lower()) or by_address.get(vm.private_ip or "")
            if found is not None:
                vm.slurm = found
                matched.add(found.name)
    view.unmatched = [node for node in view.nodes if node.name not in matched]
    status.slurm = view


def read_for_status(
    client: Any, spec: ClusterSpec, status: ClusterStatus, *, timeout: float = TIMEOUT_S
) -> None:
    """Read Slurm's view when the cluster runs Slurm and its login node is running; attach it. `timeout`
    bounds each Run Command (status passes its diagnosis timeout)."""
    if spec.scheduler != "slurm" or status.login is None:
        return
    if status.login.power_state != "running":
        status.slurm = SlurmView(error=f"the login node is {status.login.power_state or 'not running'}")
        return
    begin = runcommand.on_vm(client, spec.resource_group_name, status.login.name)
    attach(status, read_slurm(begin, timeout=timeout))

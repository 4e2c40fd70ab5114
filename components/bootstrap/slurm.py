"""Slurm's configuration, rendered from the cluster spec: slurm.conf, topology.conf, gres.conf, cgroup.conf,
plugstack.conf.

The controller (slurmctld on the login node) holds these files; every GPU node's slurmd fetches them from it
(configless, `SlurmctldParameters=enable_configless`, https://slurm.schedmd.com/configless_slurm.html), so
they are rendered once, into the login node's cloud-config, never into the nodes'. Every option is valid on
Slurm 24.11, 25.x and 26.05 (no `error:`, `defunct` or `deprecated` line from slurmctld, slurmd or a client
command: tests/components/test_slurm_real.py runs them on Debian's 22.05, 24.11 and 26.05).

How nodes join and leave without anyone listing them. Scale-set host names are only known once a VM
exists and change when automatic repairs replace a node, so slurm.conf does not name hosts. It names
*slots*: per InfiniBand island (one scale set) as many node records as the island can ever hold
(`PoolSpec.island_max_nodes`, the placement-group limit), `<pool>-i<island>-<nnn>`, in `State=CLOUD`;
with elastic power, exactly as many as the island has VMs (every slot is backed by a VM that Slurm can
resume; declaring more would let Slurm resume, and requeue jobs onto, slots no VM can answer for). A
booting node claims a free slot of its own island (azc-slurm-node.sh) and starts `slurmd -N <slot>`;
slurmctld learns the slot's address and host name from that registration (since 23.11 always for CLOUD
nodes; 22.05 needed `SlurmctldParameters=cloud_reg_addrs`, which 24.11 and 26.05 call defunct). A node
that stops answering is handed back by the controller's reaper (azc-slurm-reaper.sh) once it has been
gone longer than a reboot; the next node that boots in that island takes the slot.

Capacity no VM backs is never given a job. Since 23.x an unclaimed CLOUD slot is shown and scheduled
(`IDLE+CLOUD+POWERED_DOWN`: Slurm would "power it up" for a job and wait for a boot that never comes;
seen on 24.11.5 and 26.05.5), where 22.05 hid it. So the controller drains every slot no node has
claimed (reason `azc-slot: free`) right after slurmctld starts and every minute after (the reaper), and
a node takes that drain back only once its own slurmd has registered for the slot (activate). A job
that needs more nodes than have joined stays PENDING (`ReqNodeNotAvail`), never CONFIGURING on a slot
without a VM. With elastic power the slots are not drained: each is backed by a (deallocated) VM that
the resume program starts.

Why named slots and not Slurm's other ways of adding nodes, checked against the real daemons:
- `State=FUTURE` records joined with `slurmd -N`: the registration does not set the address (24.11.5:
  `NodeAddr` stays the slot name, srun fails "Can't find an address"), and a job asking for more nodes
  than have joined is refused at submission ("Requested topology configuration is not available")
  instead of waiting for them.
- Dynamic future nodes (`slurmd -F<feature>`): slurmctld maps a node to a FUTURE record only when
  CPUs, boards, sockets, cores and threads equal what the node's slurmd detects
  (`_find_avail_future_node`, src/slurmctld/proc_req.c), so the catalogue would have to know every
  size's socket and core layout exactly, or nodes never join.
- Dynamic nodes (`slurmd -Z`): created after slurmctld has built its switch table, so with
  topology/tree they belong to no switch and no multi-node job can use them on 22.05
  ("Requested node configuration is not available"); setting a dynamic node's switch needs 25.05's
  topology changes, not in 24.11.
Named slots need neither: topology.conf lists them under their island's switch from the start.

Claims never collide, because slurmctld arbitrates them. The claim reads slurmctld's node table (with a
minimal client configuration naming the controller, since a configless node has none before slurmd runs:
an unreadable table fails the claim, so systemd retries it, rather than looking empty) and picks the slot
this host already holds (a reboot, a start after a stop), else a slot Slurm is powering up for a job,
else a free one (the instance number only spreads first choices). It then takes that slot's claim: a
reservation named `azc-claim-<slot>`. slurmctld creates a reservation only if no reservation has that
name (else "Duplicate reservation name"), one request at a time, so of nodes asking at once exactly one
gets it and the others move to their next choice. Holding the claim, the node reads the slot again and
goes on only if it is still free or its own (a node may have registered for it between the two
readings), starts `slurmd -N <slot>`, waits until slurmctld shows its registration, and then deletes the
reservation. Every node that takes a slot therefore does so alone and leaves it visibly taken, so a
second node can never start slurmd for the same slot. A claim whose node died lapses after five minutes
(the reservation's duration; other nodes take other slots meanwhile). Check-and-retry alone (both start
slurmd, the later registration wins, the loser moves on) is not enough: a node whose registration came
first, and was checked before the other's arrived, would believe it holds a slot slurmctld has given to
another host, and its slurmd would never be asked for again. `tests/components/test_slurm_real.py`
boots nodes together whose first choice is the same slot, on 22.05, 24.11 and 26.05.

CPU layout: each node record declares the size's sockets, cores per socket and threads per core from the
catalogue (`cpu`), so slurmd finds what slurm.conf says and logs no "Node configuration differs from
hardware" (on the real daemons, with each node showing its size's layout through hwloc: test_slurm_real).
Microsoft publishes physical-core counts (so threads per core) for some series but no socket split. A
layout whose product is the vCPU count never drains a node; a wrong socket split only makes 22.05 and
24.11 note "Node reconfigured socket/core boundaries" (select/cons_tres) and use what they find, where
26.05 logs the difference as an error (and the node still runs), so a split seen on a real VM that
differs from the catalogue's belongs in the catalogue. Sizes without a layout declare CPUs only, which
Slurm reads as one core per socket: slurmd then logs the difference on every start (no drain).

An island built on a stand-in size (`capacity.island_stand_ins`, e.g. H200 for H100) gets its own node
line with that size's CPUs, memory and GPU count, and its own gres.conf line: Slurm declares each island
as the hardware it has, so a node never registers with less memory than declared (which drains it).

Topology: topology/tree with one switch per island and no common root, so a multi-node job lands inside
one island and never spans two (topology.conf(5): "Jobs can only span nodes connected by the same switch
fabric"). `scontrol show topology` lists the islands.

NVLink domains (GB200/GB300 v6: a VM is a 4-GPU slice of an NVL72 rack of 18; catalogue `rack_vms`): a
cluster with such a pool runs topology/block instead, one block per NVLink domain, rendered in
topology.conf, the form Slurm 24.11, 25.11 and 26.05 all read (topology.yaml, which would let a partition
keep topology/tree beside it, is 25.05+; TopologyPlugin is cluster-wide). Blocks are fixed runs of
`rack_vms` slots (`<island>-r<n>`: `gb-i0-r0` is `gb-i0-[000-017]`), never a guess from host names or
scale-set order: a booting GB node reads its domain from its own GPUs (`nvidia-smi -q`, Fabric ClusterUUID
+ CliqueId, every GPU Completed/Success and agreeing) and claims a free slot of the block its domain
already holds, else of an empty block (azc-imex.sh claim), and records the domain on its slot (`scontrol
update Extra=nvl:<ClusterUUID>.<CliqueId>`, kept across reconfigure and restart on 24.11 and 26.05); two
domains that took one empty block at the same moment are told apart after registration and the one that
sorts last claims again. A node that joins, leaves or is replaced therefore lands in its domain's block
with no change to topology.conf: nobody's job is restarted, no reconfigure is needed (`scontrol update
nodename=X Topology=` exists only from 25.05, so is not used). `BlockSizes` is the rack, then doubled
while every island holds a whole number of those larger blocks (each island is padded to a power of two
of racks, the pad slots drained like every free slot), so Slurm's aggregated blocks pair racks of one
island only and a job larger than a rack stays inside its InfiniBand island: the islands are the level
above the domains (seen on 24.11.5 and 26.05.5: `-N3` with racks of 2 stays in one island; with only
the base size it spanned two). `--segment=N` (N <= rack) places every N nodes inside one block, and a
job whose segment no block can hold waits rather than being spread. Every block must hold at least
`rack_vms` slots (24.11 is fatal: "children count lower than bblock_node_cnt"), so every island of such
a cluster, non-GB ones too, is whole blocks. A powered-down node of a block counts toward a segment: Slurm
allocates the block and powers the node up, the job CONFIGURING until it boots (24.11.5 and 26.05.5); with
one rack partly idle beside a busy node and another powered off, `--segment=<rack>` takes the powered-off
rack whole rather than spreading (test_elastic_racks_real, through the real power programs). Slurm
25.11.0-25.11.2 dropped powered-down CLOUD nodes from topology.conf's blocks when their node line has no
`Topology=` (SchedMD's CHANGELOG/slurm-25.11.md, 25.11.3: "Prevent removing cloud nodes from the topology
when putting them in the POWERED_DOWN state"); the catalogue's 25.11.5 has the fix.
`TopologyParam=BlockAsNodeRank` (25.11+: the same CHANGELOG, 25.11.0rc1; 24.11 has none) is not needed:
slot names already rank in block order.

IMEX per job (multi-node NVLink): `Prolog`/`Epilog` (with `PrologFlags=Alloc`, so every node of the job
runs it at allocation, before the batch script) are azc-imex.sh: on a GB node the prolog writes the
job's node addresses, exactly, to /etc/nvidia-imex/nodes_config.cfg, creates the IMEX channel
/dev/nvidia-caps-imex-channels/channel0 and (re)starts nvidia-imex, waiting until `nvidia-imex-ctl -q`
says READY; the epilog stops it and empties the file. A start that fails drains the node with the reason
(`azc-imex: ...`; Slurm keeps that reason, holds the job and requeues it: 24.11.5). Why not
`SwitchType=switch/nvidia_imex` (in Debian's 24.11 and 26.05 builds): it only hands out channel numbers
per job; the IMEX daemon still needs its peers' addresses, which on Azure exist only once VMs join, so a
prolog has to write them anyway, and a per-job daemon holds exactly the job's nodes, which also isolates
jobs without channel numbers (the way Microsoft's cyclecloud-slurm runs IMEX). On nodes without IMEX the
script exits 0 at once (Slurm runs the Prolog on every node and fails a job whose Prolog is missing, so
every node of such a cluster has one).

Per-job GPU view: every cluster's `Prolog`/`Epilog` is azc-slurm-prolog.sh, which keeps dcgm-exporter's
HPC job mapping in /run/azcluster/hpc-jobs (the exporter's `--hpc-job-mapping-dir`, scripts/azc-metrics.sh):
"Each file is named after a unique GPU ID (e.g., 0, 1, 2, etc.). Each line in the file contains JOB IDs
that run on the corresponding GPU" (NVIDIA/dcgm-exporter README, "Include HPC jobs in metric labels"), so
each GPU's metrics carry `hpc_job`. The prolog writes the job id into the file of each GPU index in
SLURM_JOB_GPUS ("GPU IDs allocated to the job (if any). Available in the Prolog",
https://slurm.schedmd.com/prolog_epilog.html; CUDA_VISIBLE_DEVICES where it is not set); the epilog
takes the job's line out of every file (it needs no GPU list) and removes files left empty. The mapping
never fails a job (a failing Prolog drains the node). On a cluster with NVLink domains it then execs
azc-imex.sh, whose exit status decides as before: one script, because every node must have the Prolog
and GB pools alone carry the IMEX logic (other pools get a stand-in that exits 0).

MPI: `MpiDefault=pmix` (Microsoft's Slurm packages are built with PMIx). Where the installed build has no
PMIx plugin (Debian sid's 26.05 has none), `MpiDefault=pmix` would make every plain `srun` fail
("Invalid MPI type 'pmix'"): the controller then sets `MpiDefault=none` before slurmctld starts, and
controller and nodes record the fact in /var/lib/azcluster/slurm-mpi.json and their log.

Pure: no pulumi. `render_slurm_conf(spec, settings, extra)` takes `extra` (global `Key=Value` lines that
replace or add to the rendered ones) so other features (power saving: SuspendProgram/ResumeProgram) build
on this renderer without editing it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from ..capacity import island_size_name
from ..catalog import GpuSize, find_size
from ..spec import ClusterSpec, PoolSpec
from ..topology import IslandSlots, cluster_rack_size, pool_island_slots, rack_blocks
from .document import INSTALL_DIR

SLURMCTLD_PORT = 6817
SLURMD_PORT = 6818
SLURM_USER = "slurm"
CONTROLLER_RECORD = "slurmctld"
"""A record in the cluster's private DNS zone naming the controller: nodes find it by name, never by IP."""
SLURM_ETC = "/etc/slurm"
GIB_MB = 1024
NEVER_SUSPEND_S = 365 * 24 * 3600
MIN_MEMORY_RESERVE_MB = 1024
IMEX_SCRIPT = f"{INSTALL_DIR}/azc-imex.sh"
"""What the Prolog and Epilog run last on a cluster with NVLink domains (module docstring)."""
PROLOG_SCRIPT = f"{INSTALL_DIR}/azc-slurm-prolog.sh"
"""Every cluster's Prolog and Epilog: the HPC job mapping, then IMEX (module docstring)."""
HPC_JOB_MAP_DIR = "/run/azcluster/hpc-jobs"
"""dcgm-exporter's --hpc-job-mapping-dir (scripts/azc-metrics.sh mounts it into the exporter)."""


def controller_address(dns_zone: str) -> str:
    """The controller's DNS name, e.g. 'slurmctld.llm.azcluster.internal'."""
    return f"{CONTROLLER_RECORD}.{dns_zone}"


LOCAL_STATE_DIR = "/var/spool/slurmctld"
STATE_SUBDIR = ".azcluster/slurmctld"
"""slurmctld's state under the shared home's mount point (next to the users file in .azcluster/)."""


def state_save_dir(spec: ClusterSpec) -> str:
    """Where slurmctld keeps its state (StateSaveLocation): the queue, running jobs, node states, job ids,
    reservations. On the shared home when the cluster has one, because the login VM's OS disk is deleted
    with the VM (login.py: `deleteOption: Delete`): a login node rebuilt by `up` after its VM was lost then
    reads the same state, and no queued or running job is lost; jobs keep running on their nodes meanwhile
    (slurmd and slurmstepd do not need the controller to run a job) and the new controller takes them
    back when their nodes register. Slurm documents StateSaveLocation on a shared file system as the way
    a backup controller takes over (slurm.conf(5) StateSaveLocation; quickstart_admin "High
    Availability"); an Azure Files premium share (single-digit ms, NFS 4.1 locking) is such a file
    system. Without a shared home: the local spool directory, lost with the VM (rule AZC147 says so)."""
    if spec.storage.home.enabled:
        return f"{spec.storage.home.mount.rstrip('/')}/{STATE_SUBDIR}"
    return LOCAL_STATE_DIR


def controller_hostname(spec: ClusterSpec) -> str:
    """The login VM's host name (its computer name): SlurmctldHost must be the controller's short name."""
    return f"{spec.name}-login"


@dataclass(frozen=True)
class NodeHardware:
    """What one node offers Slurm: CPUs, memory (MB, after the OS reservation) and GPUs."""

    cpus: int
    memory_mb: int
    gpus: int
    gpu_vendor: str = "nvidia"
    sockets: int | None = None
    """Sockets, cores per socket and threads per core as the guest sees them (catalogue `cpu`); None:
    unknown, slurm.conf then declares CPUs only."""
    cores_per_socket: int | None = None
    threads_per_core: int | None = None

    def topology(self) -> list[str]:
        """slurm.conf's CPU words for this node: CPUs and, when known, the layout slurmd will detect."""
        words = [f"CPUs={self.cpus}"]
        if self.sockets and self.cores_per_socket and self.threads_per_core:
            words += [
                f"Sockets={self.sockets}",
                f"CoresPerSocket={self.cores_per_socket}",
                f"ThreadsPerCore={self.threads_per_core}",
            ]
        return words


def node_hardware(size: GpuSize, memory_reserve_percent: int = 5) -> NodeHardware:
    """CPUs and GPUs from the catalogue; memory less `memory_reserve_percent` (at least 1 GiB) for the OS.

    Slurm drains a node whose slurmd reports less memory than RealMemory, and the kernel, page cache and
    GPU driver take some of what the size page lists, so RealMemory keeps a reserve (CycleCloud's
    `slurm.dampen_memory`: 5 % or 1 GiB, whichever is larger; Azure/cyclecloud-slurm README).
    """
    total = size.memory_gib * GIB_MB
    reserve = max(MIN_MEMORY_RESERVE_MB, total * memory_reserve_percent // 100)
    cpu = size.cpu
    return NodeHardware(
        cpus=size.vcpus,
        memory_mb=total - reserve,
        gpus=size.gpus,
        gpu_vendor=size.gpu_vendor,
        sockets=cpu.sockets if cpu else None,
        cores_per_socket=cpu.cores_per_socket if cpu else None,
        threads_per_core=cpu.threads_per_core if cpu else None,
    )


def cluster_island_slots(spec: ClusterSpec, pool: PoolSpec) -> list[IslandSlots]:
    """island_slots for a pool of this cluster (elastic when the cluster's power is)."""
    return pool_island_slots(spec, pool)


@dataclass(frozen=True)
class SlurmSettings:
    """Where Slurm's daemons live and how they find each other. The defaults are the cluster's; tests that
    run real daemons on loopback change the ports, paths and plugins (and say so)."""

    controller_host: str
    """SlurmctldHost: the controller's short host name."""
    controller_addr: str
    """How others reach it (a DNS name in the cluster's private zone)."""
    slurmctld_port: int = SLURMCTLD_PORT
    slurmd_port: int = SLURMD_PORT
    slurm_user: str = SLURM_USER
    state_save_location: str = LOCAL_STATE_DIR
    """slurmctld's StateSaveLocation: `for_cluster` puts it on the shared home (`state_save_dir`)."""
    slurmd_spool_dir: str = "/var/spool/slurmd"
    log_dir: str = "/var/log/slurm"
    run_dir: str = "/run/slurm"
    munge_socket: str | None = None
    """AuthInfo socket; None: munge's default (/run/munge/munge.socket.2)."""
    proctrack_type: str = "proctrack/cgroup"
    task_plugin: str = "task/cgroup,task/affinity"
    mpi_default: str = "pmix"
    """`srun` uses PMIx unless told otherwise (Microsoft's Slurm packages are built with PMIx 4.2.9)."""
    health_check_program: str | None = f"{INSTALL_DIR}/azc-slurm-health.sh"
    health_check_interval_s: int = 120
    """Longer than Slurm's HealthCheckTimeout (60 s; 26.05 refuses an interval that is not)."""
    task_prolog: str | None = f"{INSTALL_DIR}/azc-slurm-taskprolog.sh"
    prolog: str | None = PROLOG_SCRIPT
    """Prolog and Epilog (module docstring); None: none (a cluster with NVLink domains keeps azc-imex.sh)."""
    slurmd_timeout_s: int = 300
    per_slot_ports: bool = False
    """Give every slot its own slurmd port (SlurmdPort + slot number) so several slurmd can share one
    host: for tests on loopback, never on a cluster."""
    hardware: Mapping[str, NodeHardware] = field(default_factory=dict)
    """Per pool name (`pool/island` for an island on a stand-in size), hardware to declare instead of the
    catalogue's (tests; sizes azcluster lacks)."""
    accounting_host: str | None = None
    """AccountingStorageHost: where slurmdbd runs; None: the controller (slurmdbd beside slurmctld)."""
    accounting_port: int | None = None
    """AccountingStoragePort: slurmdbd's port; None: Slurm's default (6819)."""

    @classmethod
    def for_cluster(cls, spec: ClusterSpec, dns_zone: str, **changes: object) -> SlurmSettings:
        """The settings of a deployed cluster whose private DNS zone is `dns_zone`."""
        base = cls(
            controller_host=controller_hostname(spec),
            controller_addr=controller_address(dns_zone),
            state_save_location=state_save_dir(spec),
        )
        return replace(base, **changes) if changes else base  # type: ignore[arg-type]


def default_dns_zone(spec: ClusterSpec) -> str:
    """The cluster's private DNS zone name (network.ClusterNetworkArgs' default)."""
    return f"{spec.name}.azcluster.internal"


def _hardware(spec: ClusterSpec, pool: PoolSpec, settings: SlurmSettings, island: int = 0) -> NodeHardware:
    """What one island's nodes offer: its built size (a stand-in from `capacity.island_stand_ins`, else
    the pool's), so an island on H200 is declared with H200's memory while H100 islands keep theirs."""
    name = island_size_name(pool, island)
    own = name.lower() == pool.size.lower()
    if own and pool.name in settings.hardware:
        return settings.hardware[pool.name]
    if not own and f"{pool.name}/{island}" in settings.hardware:
        return settings.hardware[f"{pool.name}/{island}"]
    size = find_size(name)
    if size is None:
        raise ValueError(f"pool {pool.name!r}: size {name!r} is not in azcluster's catalogue")
    return node_hardware(size, spec.slurm.memory_reserve_percent)


def _slots(spec: ClusterSpec, pool: PoolSpec) -> list[IslandSlots]:
    return cluster_island_slots(spec, pool)


def default_partition(spec: ClusterSpec) -> str | None:
    """The partition jobs land in when they name none: `slurm.default_partition` or the first pool."""
    if spec.slurm.default_partition:
        return spec.slurm.default_partition
    return spec.pools[0].name if spec.pools else None


_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def _global_parameters(spec: ClusterSpec, settings: SlurmSettings) -> dict[str, str]:
    s = settings
    params: dict[str, str] = {
        "ClusterName": spec.name,
        "SlurmctldHost": f"{s.controller_host}({s.controller_addr})",
        "SlurmctldPort": str(s.slurmctld_port),
        "SlurmdPort": str(s.slurmd_port),
        "SlurmUser": s.slurm_user,
        "AuthType": "auth/munge",
        "CredType": "cred/munge",
    }
    if s.munge_socket:
        params["AuthInfo"] = f"socket={s.munge_socket}"
    params.update(
        {
            "StateSaveLocation": s.state_save_location,
            "SlurmdSpoolDir": s.slurmd_spool_dir + ("/%n" if s.per_slot_ports else ""),
            "SlurmctldPidFile": f"{s.run_dir}/slurmctld.pid",
            "SlurmdPidFile": f"{s.run_dir}/slurmd" + ("-%n" if s.per_slot_ports else "") + ".pid",
            "SlurmctldLogFile": f"{s.log_dir}/slurmctld.log",
            "SlurmdLogFile": f"{s.log_dir}/slurmd" + ("-%n" if s.per_slot_ports else "") + ".log",
            # configless: slurmd and the client commands fetch these files from slurmctld. A CLOUD slot
            # takes the address and host name of the slurmd that registers (23.11 and later always).
            "SlurmctldParameters": "enable_configless",
            # A node that was DOWN (not responding) becomes usable again when it registers; a DRAINED one
            # stays drained (only the health hook or an admin resumes it).
            "ReturnToService": "2",
            "SchedulerType": "sched/backfill",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core_Memory",
            "GresTypes": "gpu",
            "TopologyPlugin": "topology/block" if cluster_rack_size(spec) else "topology/tree",
            "ProctrackType": s.proctrack_type,
            "TaskPlugin": s.task_plugin,
            "MpiDefault": s.mpi_default,
            "LaunchParameters": "use_interactive_step",
            "SlurmdTimeout": str(s.slurmd_timeout_s),
            "InactiveLimit": "0",
            "KillWait": "30",
            "MinJobAge": "300",
            "Waittime": "0",
        }
    )
    # Power saving on, so the reaper can power a freed slot down (which hides it again); idle nodes are
    # never suspended (SuspendTime: one year) and a resume does nothing (nodes start by themselves).
    # Slurm refuses POWER_DOWN_FORCE while power saving is off ("PowerSave is disabled", 22.05.8).
    # Elastic power (issue 12) replaces these three with its own programs through `extra`.
    params.update(
        {"SuspendProgram": "/bin/true", "ResumeProgram": "/bin/true", "SuspendTime": str(NEVER_SUSPEND_S)}
    )
    if s.task_prolog:
        params["TaskProlog"] = s.task_prolog
    prolog = s.prolog or (IMEX_SCRIPT if cluster_rack_size(spec) else None)
    if prolog:
        params.update({"Prolog": prolog, "Epilog": prolog})
    if cluster_rack_size(spec):
        params["PrologFlags"] = "Alloc"
    if s.health_check_program:
        params["HealthCheckProgram"] = s.health_check_program
        params["HealthCheckInterval"] = str(s.health_check_interval_s)
        params["HealthCheckNodeState"] = "ANY"
    if spec.slurm.accounting.enabled:
        params.update(
            {
                "AccountingStorageType": "accounting_storage/slurmdbd",
                "AccountingStorageHost": s.accounting_host or s.controller_addr,
            }
        )
        if s.accounting_port:
            params["AccountingStoragePort"] = str(s.accounting_port)
        params.update(accounting_parameters())
        params["JobAcctGatherType"] = (
            "jobacct_gather/cgroup" if s.proctrack_type == "proctrack/cgroup" else "jobacct_gather/linux"
        )
    else:
        params["AccountingStorageType"] = "accounting_storage/none"
    return params


PRIORITY_WEIGHTS = {
    "PriorityWeightFairshare": 10000,
    "PriorityWeightAge": 1000,
    "PriorityWeightQOS": 0,
    "PriorityWeightJobSize": 0,
    "PriorityWeightPartition": 0,
}
"""Fair share decides, waiting time breaks ties: a project that has used less than its share goes first,
and a job that has waited a week (PriorityMaxAge) gains a tenth of what fair share can give, so nothing
starves. Job size and partition do not count: one partition per pool, and a large job is not more
important than a small one. (slurm.conf(5) and https://slurm.schedmd.com/priority_multifactor.html.)"""


def accounting_parameters() -> dict[str, str]:
    """What accounting adds to slurm.conf besides where slurmdbd is: limits, GPUs counted, fair share.

    - AccountingStorageEnforce=associations,limits,qos: a job of a user with no association (never listed,
      or removed from the team) is refused at submission, and the accounts' QOS limits hold
      (slurm.conf(5): "associations" refuses jobs without a valid association; "limits" and "qos" apply
      them; https://slurm.schedmd.com/resource_limits.html).
    - AccountingStorageTRES=gres/gpu: GPUs are counted (sacct's AllocTRES, the cost report) and can be
      limited (QOS MaxTRESPerUser=gres/gpu=N); without it Slurm tracks only cpu, mem, energy, node,
      billing, fs/disk, vmem and pages.
    - PriorityType=priority/multifactor with PRIORITY_WEIGHTS; the usage that fair share weighs halves
      every week (PriorityDecayHalfLife, Slurm's default 7 days, said here so it shows).
    """
    params = {
        "AccountingStorageEnforce": "associations,limits,qos",
        "AccountingStorageTRES": "gres/gpu",
        "PriorityType": "priority/multifactor",
        "PriorityDecayHalfLife": "7-0",
        "PriorityMaxAge": "7-0",
    }
    params.update({key: str(value) for key, value in PRIORITY_WEIGHTS.items()})
    return params


def _merge(params: dict[str, str], extra: Mapping[str, str] | None) -> dict[str, str]:
    """`extra` keys replace rendered ones whatever their case (Slurm's keys are case-insensitive)."""
    if not extra:
        return params
    merged = dict(params)
    folded = {key.lower(): key for key in merged}
    for key, value in extra.items():
        if not _KEY.match(key):
            raise ValueError(f"slurm.conf parameter name {key!r}: letters and digits only")
        text = str(value)
        if "\n" in text or "\r" in text:
            raise ValueError(f"slurm.conf parameter {key}: the value has a line break")
        existing = folded.get(key.lower())
        if existing is not None:
            merged.pop(existing)
        merged[key] = text
        folded[key.lower()] = key
    return merged


def _node_lines(spec: ClusterSpec, settings: SlurmSettings) -> list[str]:
    lines = []
    for pool in spec.pools:
        for island in _slots(spec, pool):
            hw = _hardware(spec, pool, settings, island.island)
            parts = [*hw.topology(), f"RealMemory={hw.memory_mb}"]
            if hw.gpus:
                parts.append(f"Gres=gpu:{hw.gpus}")
            if spec.slurm.reserved_cores:
                parts.append(f"CoreSpecCount={spec.slurm.reserved_cores}")
            features = f"Feature={pool.name},{island.key}"
            tail = " ".join([*parts, features, "State=CLOUD"])
            if settings.per_slot_ports:
                for index in range(island.count):
                    port = settings.slurmd_port + 1 + _slot_number(spec, island, index)
                    lines.append(f"NodeName={island.name(index)} {tail} Port={port}")
            else:
                lines.append(f"NodeName={island.hostlist} {tail}")
    return lines


def _slot_number(spec: ClusterSpec, target: IslandSlots, index: int) -> int:
    """A slot's position among all slots of the cluster (for per-slot test ports)."""
    offset = 0
    for pool in spec.pools:
        for island in _slots(spec, pool):
            if island == target:
                return offset + index
            offset += island.count
    raise ValueError(f"no island {target.key}")


def gpu_defaults(spec: ClusterSpec, hw: NodeHardware) -> dict[str, int]:
    """DefCpuPerGPU and DefMemPerGPU (MB) for a pool: the node's CPUs (less the reserved cores) and memory
    (after the OS reserve) split evenly over its GPUs, so `sbatch --gpus=2` on an 8-GPU node gets a quarter
    of its cores and memory rather than one core and all of the memory (Slurm's defaults), and eight such
    jobs fit on the node (Azure/cyclecloud-slurm#351 asks for the same). {} for a pool without GPUs."""
    if not hw.gpus:
        return {}
    cpus = max(hw.cpus - spec.slurm.reserved_cores, hw.gpus)
    return {"DefCpuPerGPU": cpus // hw.gpus, "DefMemPerGPU": hw.memory_mb // hw.gpus}


def _partition_lines(spec: ClusterSpec, settings: SlurmSettings) -> list[str]:
    default = default_partition(spec)
    lines = []
    for pool in spec.pools:
        nodes = ",".join(island.hostlist for island in _slots(spec, pool))
        flag = "YES" if pool.name == default else "NO"
        # An island on a stand-in size may have less per GPU: the partition's defaults fit every island.
        per_island = [
            gpu_defaults(spec, _hardware(spec, pool, settings, island.island))
            for island in _slots(spec, pool)
        ]
        defaults = {key: min(d.get(key, value) for d in per_island) for key, value in per_island[0].items()}
        tail = "".join(f" {key}={value}" for key, value in defaults.items())
        lines.append(
            f"PartitionName={pool.name} Nodes={nodes} Default={flag} MaxTime=INFINITE State=UP{tail}"
        )
    return lines


def render_slurm_conf(
    spec: ClusterSpec, settings: SlurmSettings, extra: Mapping[str, str] | None = None
) -> str:
    """slurm.conf: global parameters (then `extra`, which replaces or adds), node slots, partitions.

    One partition per pool, named after it; the default partition is `slurm.default_partition` or the
    first pool. Node records carry the pool and island as features (`--constraint=h100-i0`).
    """
    params = _merge(_global_parameters(spec, settings), extra)
    lines = [f"# slurm.conf for cluster {spec.name}, rendered by azcluster from the cluster spec."]
    lines += [f"{key}={value}" for key, value in params.items()]
    lines.append("# Node slots: one range per InfiniBand island; nodes claim a slot when they boot.")
    lines += _node_lines(spec, settings)
    lines += _partition_lines(spec, settings)
    return "\n".join(lines) + "\n"


def block_sizes(spec: ClusterSpec) -> list[int]:
    """BlockSizes of a cluster with NVLink domains: the rack, doubled while every island holds a whole
    number of the larger block (so an aggregated block never spans two islands); [] without racks."""
    rack = cluster_rack_size(spec)
    if not rack:
        return []
    counts = [island.count for pool in spec.pools for island in _slots(spec, pool)]
    sizes = [rack]
    while all(count % (sizes[-1] * 2) == 0 for count in counts):
        sizes.append(sizes[-1] * 2)
    return sizes


def render_block_topology(spec: ClusterSpec, rack: int) -> str:
    """topology.conf for topology/block: each island's slots in blocks of `rack`, island after island."""
    lines = [
        "# One block per NVLink domain (a node claims a slot in its own domain's block), island after",
        "# island; BlockSizes never pairs blocks of two InfiniBand islands.",
    ]
    for pool in spec.pools:
        for island in _slots(spec, pool):
            lines += [f"BlockName={b.name} Nodes={b.hostlist}" for b in rack_blocks(island, rack)]
    lines.append("BlockSizes=" + ",".join(str(size) for size in block_sizes(spec)))
    return "\n".join(lines) + "\n"


def render_topology_conf(spec: ClusterSpec) -> str:
    """topology.conf: one switch per island holding its slots, and no switch above them, so Slurm never
    places one job on two islands; a cluster with NVLink domains gets blocks instead (module docstring)."""
    rack = cluster_rack_size(spec)
    if rack:
        return render_block_topology(spec, rack)
    lines = ["# One switch per InfiniBand island, no common root: a job never spans two islands."]
    for pool in spec.pools:
        for island in _slots(spec, pool):
            lines.append(f"SwitchName={island.key} Nodes={island.hostlist}")
    return "\n".join(lines) + "\n"


def gpu_device_files(vendor: str, gpus: int) -> str:
    """The device files of a node's GPUs: /dev/nvidia[0-N] (NVIDIA) or the DRM render nodes (AMD ROCm,
    /dev/dri/renderD128 upwards; Slurm's gres.conf(5) example for AMD uses the same files)."""
    if vendor == "amd":
        return f"/dev/dri/renderD[128-{127 + gpus}]" if gpus > 1 else "/dev/dri/renderD128"
    return f"/dev/nvidia[0-{gpus - 1}]" if gpus > 1 else "/dev/nvidia0"


def render_gres_conf(spec: ClusterSpec, settings: SlurmSettings) -> str:
    """gres.conf: the GPUs of each pool's slots as explicit device files.

    Explicit files rather than `AutoDetect=nvml`: NVML autodetection needs a Slurm built against NVML,
    which the distribution packages and Microsoft's packages do not promise; the device files are the
    same on every node of a size.
    """
    lines = ["# GPUs per pool, as device files (explicit, not autodetected)."]
    for pool in spec.pools:
        files: dict[str, list[str]] = {}  # device files -> the slot ranges of islands that have them
        for island in _slots(spec, pool):
            hw = _hardware(spec, pool, settings, island.island)
            if hw.gpus:
                files.setdefault(gpu_device_files(hw.gpu_vendor, hw.gpus), []).append(island.hostlist)
        for devices, ranges in files.items():
            lines.append(f"NodeName={','.join(ranges)} Name=gpu File={devices}")
    return "\n".join(lines) + "\n"


def render_cgroup_conf() -> str:
    """cgroup.conf: jobs see only the cores, memory and GPUs they were given (`--gpus-per-node`).

    `CgroupPlugin=cgroup/v2` explicitly: the Ubuntu HPC images boot with the unified hierarchy, and
    autodetection would fall back to cgroup/v1, deprecated since 25.05 (cgroup.conf(5))."""
    return "CgroupPlugin=cgroup/v2\nConstrainCores=yes\nConstrainRAMSpace=yes\nConstrainDevices=yes\n"


PYXIS_PLUGIN = "/usr/local/lib/slurm/spank_pyxis.so"
"""Where azc-slurm-node.sh installs Pyxis (NVIDIA's SPANK plugin for `srun --container-image`)."""
PLUGSTACK_LOCAL = f"{SLURM_ETC}/plugstack.local.conf"
"""Each host's own SPANK plugin lines (azc-slurm-node.sh, azc-slurm-controller.sh write it at boot)."""


def render_plugstack_conf(spec: ClusterSpec) -> str:
    """plugstack.conf: `include` of each host's own plugin lines (spank(8); an absolute path outside the
    configless cache, so every host reads its own file). NVIDIA nodes write Pyxis's line there once it is
    installed; MI300X (AMD) nodes never install Pyxis and write none, so srun and sbatch there print no
    dlopen errors (Pyxis and Enroot are NVIDIA's; AMD nodes run containers without a SPANK plugin). One
    file, not a glob: Debian's 24.11 build refuses globs in plugstack.conf ("Slurm does not support glob
    parsing")."""
    if not spec.slurm.containers:
        return "# containers are off (slurm.containers: false)\n"
    return f"include {PLUGSTACK_LOCAL}\n"


def render_configs(
    spec: ClusterSpec, settings: SlurmSettings, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every file the controller serves (configless sends them all to slurmd), by file name."""
    return {
        "slurm.conf": render_slurm_conf(spec, settings, extra),
        "topology.conf": render_topology_conf(spec),
        "gres.conf": render_gres_conf(spec, settings),
        "cgroup.conf": render_cgroup_conf(),
        "plugstack.conf": render_plugstack_conf(spec),
    }


def parse_conf(text: str) -> list[dict[str, str]]:
    """Lines of a Slurm config file as {key: value} dicts (comments and blanks dropped): for tests and
    tools that read back what was rendered. Keys keep their case."""
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        entry = {}
        for token in line.split():
            key, _, value = token.partition("=")
            entry[key] = value
        entries.append(entry)
    return entries


def slot_names(spec: ClusterSpec) -> Iterable[str]:
    """Every slot name of the cluster, island by island."""
    for pool in spec.pools:
        for island in _slots(spec, pool):
            for index in range(island.count):
                yield island.name(index)

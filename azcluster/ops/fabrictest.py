"""`azcluster test`: an all-reduce across each InfiniBand island, through Slurm, against what it should reach.

This is how a user knows the supercomputer works: every GPU of an island talks to every other over the
fabric at the speed the size is sold for. For each island the login node submits one Slurm job
(`sbatch --wait`) that runs nccl-tests' all_reduce_perf (rccl-tests' on MI300X) on all the island's usable
nodes, one rank per GPU, and the peak bus bandwidth at messages of 1 GiB and up is compared with the
catalogue's expected figure (components/catalog/allreduce.yaml, with its sources). An island under
`far_below` of it, or whose job failed, makes the command exit 1.

How it gets there (runcommand.py has what Azure says about Run Command):
- One Run Command on the login node per batch of islands (ISLANDS_PER_CALL, so the printed results fit
  in the 4 KiB of stdout Run Command returns); the islands of a batch run in parallel.
- The job script travels base64-encoded; the only other words in the script are constants, numbers,
  island keys and host-name prefixes checked against [a-z0-9-], so nothing from Azure reaches the shell.
- Nodes: those sinfo lists among the island's slots (components/bootstrap/slurm.py: node records are
  named `<island key>-<nnn>`, and unclaimed slots are hidden from sinfo) in a state that can run a job
  (idle, mixed, allocated, completing; `~` powered-down ones are resumed by Slurm). Drained or down
  nodes are left out and counted, so a test of the rest still says something.
- The job runs as the cluster's admin user, its output lands in the shared home (the login node reads
  what the first compute node wrote there), under `.azcluster-test/<run id>/`.
- GB200/GB300 islands (catalogue `rack_vms`) are tested rack by rack, since an NVL72 rack is one NVLink
  domain: one short `srun` reads each usable node's domain from the node itself
  (/var/lib/azcluster/nvlink-domain, "<ClusterUUID>.<CliqueId>", written by its health check from
  `nvidia-smi -q`), then one job per domain runs the all-reduce over all its GPUs with
  NCCL_MNNVL_ENABLE=1 (multi-node NVLink through IMEX; NCCL's environment docs: 1 always checks for it,
  0 never uses it) against the catalogue's `nvlink_domain_gbps`, and, with two domains or more, one job
  across all of them with NCCL_MNNVL_ENABLE=0 (InfiniBand between the racks) against the InfiniBand
  bound. NCCL falls back to the NICs without a word when a GPU's fabric is not ready, so the proof that
  a rack's NVLink works is its figure: over InfiniBand a rack reaches well under 80% of it. Racks are named by
  their domain and hosts; a rack under `far_below` fails the command. One island per Run Command there,
  rows squeezed, 8 GiB and up, so up to seven results fit the 4 KiB of stdout.
- Launch as Azure's HPC images document and test it (Azure/azhpc-images tests/test-definitions.sh,
  verify_nccl_installation / verify_rccl_installation): `module load mpi/hpcx`, mpirun with
  `--map-by ppr:<gpus>:node`, `-mca coll_hcoll_enable 0`, binaries /opt/nccl-tests/build/all_reduce_perf
  and /opt/rccl-tests/all_reduce_perf (with /opt/rccl/lib first on LD_LIBRARY_PATH); each rank sources
  the NCCL settings azc-prepare-node wrote (/etc/profile.d/azcluster-nccl.sh).
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azcluster.components import catalog
from azcluster.components.bootstrap import island_key
from azcluster.components.capacity import island_size
from azcluster.components.spec import ClusterSpec

from ..errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError
from . import ncclperf, runcommand

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext

ISLANDS_PER_CALL = 4
JOB_TIME_MIN = 30
TIMEOUT_S = (JOB_TIME_MIN + 15) * 60  # queueing, powering nodes up, the job itself
MARKER = "azcluster-test: done"
NCCL_BINARY = "/opt/nccl-tests/build/all_reduce_perf"
RCCL_BINARY = "/opt/rccl-tests/all_reduce_perf"
NCCL_ENV = "/etc/profile.d/azcluster-nccl.sh"
USABLE_STATES = "idle|mixed|allocated|completing"
_SAFE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_RESULT = re.compile(r"^AZC-TEST (?P<key>\S+) (?P<job>\S+) (?P<nodes>\d+) (?P<listed>\d+) (?P<rc>-?\d+)$")
_RACK = re.compile(r"^AZC-RACK (?P<key>\S+) (?P<domain>\S+) (?P<hosts>\S+)$")
DOMAIN_FILE = "/var/lib/azcluster/nvlink-domain"
UNKNOWN_DOMAIN = "unknown"
RACK_MESSAGE_MIN = "8G"


@dataclass
class IslandPlan:
    pool: str
    island: int
    key: str
    prefix: str
    nodes: int  # in the spec
    size: catalog.GpuSize
    expectation: catalog.AllReduceExpectation | None

    @property
    def gpus(self) -> int:
        return self.size.gpus

    @property
    def racked(self) -> bool:
        """GB200/GB300: the island is tested per NVLink domain (rack) and across them."""
        return bool(self.size.rack_vms)


@dataclass
class IslandResult:
    plan: IslandPlan
    verdict: str  # ok | far-below | failed | skipped | measured
    reason: str = ""
    job_id: str | None = None
    tested_nodes: int = 0
    slurm_nodes: int = 0
    peak_busbw: float | None = None
    average_busbw: float | None = None
    expected: float | None = None
    rows: list[ncclperf.Row] = field(default_factory=list)
    key: str = ""
    """What the row is called: the island key, `<island>-r<n>` for a rack, `<island>-x` across racks."""
    kind: str = "island"  # island | rack | across racks
    domain: str | None = None
    """A rack's NVLink domain, "<ClusterUUID>.<CliqueId>" as its nodes report it."""
    hosts: str | None = None
    """A rack's Slurm nodes, as a Slurm host list (e.g. gb-i0-[000-017])."""

    def __post_init__(self) -> None:
        self.key = self.key or self.plan.key

    @property
    def name(self) -> str:
        """How a person finds it: the key, and for a rack its hosts and domain."""
        if self.kind != "rack":
            return self.key
        return f"{self.key} (rack {self.hosts or '?'}, NVLink domain {self.domain or '?'})"

    @property
    def failed(self) -> bool:
        return self.verdict in ("far-below", "failed")

    @property
    def fraction(self) -> float | None:
        if self.peak_busbw is None or not self.expected:
            return None
        return self.peak_busbw / self.expected

    def to_json(self) -> dict[str, Any]:
        exp = self.plan.expectation
        source = exp.source if exp else None
        if exp is not None and self.kind == "rack":
            source = exp.nvlink_domain_source or exp.source
        return {
            "pool": self.plan.pool,
            "island": self.plan.island,
            "key": self.key,
            "kind": self.kind,
            "domain": self.domain,
            "hosts": self.hosts,
            "size": self.plan.size.name,
            "nodes": self.plan.nodes,
            "slurm_nodes": self.slurm_nodes,
            "tested_nodes": self.tested_nodes,
            "job_id": self.job_id,
            "verdict": self.verdict,
            "reason": self.reason or None,
            "busbw_gbps": self.peak_busbw,
            "avg_busbw_gbps": self.average_busbw,
            "expected_gbps": self.expected,
            "fraction": round(self.fraction, 3) if self.fraction is not None else None,
            "expected_source": source,
            "expected_confidence": exp.confidence if exp else None,
            "rows": [{"bytes": r.size, "busbw_gbps": r.busbw} for r in self.rows],
        }


@dataclass
class TestReport:
    stack: str
    vm: str
    islands: list[IslandResult]
    far_below: float

    @property
    def ok(self) -> bool:
        tested = [r for r in self.islands if r.verdict != "skipped"]
        return bool(tested) and not any(r.failed for r in self.islands)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "ok": self.ok,
            "login_vm": self.vm,
            "far_below": self.far_below,
            "islands": [r.to_json() for r in self.islands],
        }


# --- which islands ---------------------------------------------------------------------------------------


def plan_islands(spec: ClusterSpec, stack: str, island: str | None = None) -> list[IslandPlan]:
    """The islands to test: every island of every InfiniBand pool, or the one `island` names.

    `island` is an island key (`gpu-i0`, as `azcluster hosts` and the hostfiles name them) or an index,
    which must then be unambiguous (one InfiniBand pool). Unknown names are exit 2.
    """
    plans = []
    for pool in spec.pools:
        size = catalog.find_size(pool.size)
        if size is None or size.infiniband is None or pool.nodes == 0:
            continue
        for index, nodes in enumerate(pool.island_sizes()):
            key = island_key(pool.name, index)
            prefix = f"{key}-"  # Slurm's node records of the island: <key>-<nnn> (bootstrap/slurm.py)
            built = island_size(pool, index) or size  # a stand-in island is held to its own size's bar
            expectation = catalog.allreduce_expectations().get(built.name)
            plans.append(IslandPlan(pool.name, index, key, prefix, nodes, built, expectation))
    if not plans:
        raise AzclusterError(
            f"stack {stack} has no InfiniBand pool with nodes: there is no island to test",
            "add a pool of an InfiniBand size (`azcluster skus`)",
            EXIT_USAGE,
        )
    if island is None:
        return plans
    chosen = [p for p in plans if island in (p.key, str(p.island))]
    if island.isdigit() and len({p.pool for p in chosen}) > 1:
        raise AzclusterError(
            f"--island {island} is in more than one pool ({', '.join(p.key for p in chosen)})",
            "name it by its key, e.g. --island " + chosen[0].key,
            EXIT_USAGE,
        )
    if not chosen:
        raise AzclusterError(
            f"stack {stack} has no island {island!r}",
            "islands: " + ", ".join(p.key for p in plans),
            EXIT_USAGE,
        )
    return chosen


# --- what runs on the login node -------------------------------------------------------------------------


def job_script(plan: IslandPlan, mnnvl: int | None = None) -> str:
    """The Slurm batch script for one island: all_reduce_perf over every allocated GPU, 1 GiB and up.

    mnnvl (GB racks): 1 for a job inside one NVLink domain (multi-node NVLink must work, or NCCL fails),
    0 for a job across domains (InfiniBand only); None leaves NCCL's default."""
    exp = plan.expectation
    library = exp.library if exp else ("rccl" if plan.size.gpu_vendor == "amd" else "nccl")
    message = exp.message if exp else "8G"
    binary = RCCL_BINARY if library == "rccl" else NCCL_BINARY
    gpus = plan.gpus
    what = {None: f"island {plan.key}", 1: f"one NVLink domain of {plan.key}", 0: f"the racks of {plan.key}"}
    lines = [
        "#!/bin/bash",
        f"# azcluster test: {library.upper()} all-reduce across {what[mnnvl]} ({plan.size.name})",
        "set -eu",
        ". /etc/profile.d/modules.sh 2>/dev/null || true",
        "module load mpi/hpcx",
    ]
    if library == "rccl":
        lines.append('export LD_LIBRARY_PATH="/opt/rccl/lib:${LD_LIBRARY_PATH:-}"')
    passed = "-x LD_LIBRARY_PATH -x PATH"
    smallest = "1G"
    if mnnvl is not None:
        lines.append(f"export NCCL_MNNVL_ENABLE={mnnvl}")
        passed += " -x NCCL_MNNVL_ENABLE"
        smallest = RACK_MESSAGE_MIN  # fewer rows: up to seven results share 4 KiB of Run Command output
    lines += [
        f'hosts=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | sed "s/$/:{gpus}/" | paste -sd, -)',
        f'exec mpirun -np $((SLURM_JOB_NUM_NODES * {gpus})) -H "$hosts" --map-by ppr:{gpus}:node '
        f"--bind-to numa -mca coll_hcoll_enable 0 {passed} \\",
        f"    bash -c '[ -r {NCCL_ENV} ] && . {NCCL_ENV}; "
        f"exec {binary} -b {smallest} -e {message} -f 2 -g 1'",
    ]
    return "\n".join(lines) + "\n"


def rack_key(plan: IslandPlan, index: int) -> str:
    return f"{plan.key}-r{index}"


def across_key(plan: IslandPlan) -> str:
    return f"{plan.key}-x"


def login_script(plans: list[IslandPlan], spec: ClusterSpec, run_id: str) -> list[str]:
    """The Run Command script: write the job scripts, submit one job per island in parallel and wait,
    then print one result line and the rows that matter of each island's output, and a marker.

    A GB island (IslandPlan.racked) submits one job per NVLink domain its nodes report and one across
    the domains; its results are printed per rack, each with an AZC-RACK line (domain, Slurm host list)."""
    admin = spec.ssh.admin_username
    for word in [admin, run_id, *(p.key for p in plans), *(p.prefix.rstrip("-") for p in plans)]:
        if not _SAFE.match(word):
            raise ValueError(f"{word!r} cannot go into the test script: lower-case letters, digits, '-' only")
    home = spec.storage.home.mount.rstrip("/") or "/"
    sbatch = (
        f'runuser -u {admin} -- sbatch --wait --parsable --job-name="azc-test-$key" --nodes="$n" '
        '--nodelist="$list" --ntasks-per-node="$gpus" --exclusive '
        f'--time={JOB_TIME_MIN} --output="$dir/$key.out" "$script" >"$dir/$key.id" 2>"$dir/$key.err"'
    )
    lines = [
        "set -u",
        "umask 022",
        f'dir="${{AZC_ROOT:-}}{home}/.azcluster-test/{run_id}"',
        'mkdir -p "$dir"',
        f'chown {admin} "$dir" "$(dirname "$dir")" 2>/dev/null || true',
        "nodes() { sinfo -h -N -o '%N %T' | "
        f"awk -v p=\"$1\" 'index($1, p) == 1 && $2 ~ /^({USABLE_STATES})/ {{print $1}}' | sort -u; }}",
        "listed() { sinfo -h -N -o '%N' | awk -v p=\"$1\" 'index($1, p) == 1' | sort -u | wc -l; }",
        "job() {",
        "  key=$1; list=$2; gpus=$3; script=$4; all=$5; n=$(echo \"$list\" | tr , '\\n' | wc -l)",
        f"  {sbatch}",
        "  rc=$?",
        '  echo "AZC-TEST $key $(head -n1 "$dir/$key.id" | cut -d";" -f1 | grep . || echo -) $n $all $rc" '
        '>"$dir/$key.result"',
        "}",
        "submit() {",
        '  key=$1; prefix=$2; gpus=$3; list=$(nodes "$prefix" | paste -sd, -); all=$(listed "$prefix")',
        '  if [ -z "$list" ]; then echo "AZC-TEST $key - 0 $all 0" >"$dir/$key.result"; return; fi',
        '  job "$key" "$list" "$gpus" "$dir/$key.sh" "$all"',
        "}",
    ]
    if any(plan.racked for plan in plans):
        lines += [
            # Each usable node says which NVLink domain it is in (its health check read nvidia-smi -q);
            # srun sets SLURMD_NODENAME, the Slurm node name, in every task.
            "racks() {",
            "  island=$1; prefix=$2; gpus=$3",
            '  list=$(nodes "$prefix" | paste -sd, -); all=$(listed "$prefix")',
            '  if [ -z "$list" ]; then echo "AZC-TEST $island-r0 - 0 $all 0" >"$dir/$island-r0.result"; '
            'echo "AZC-RACK $island-r0 - -" >"$dir/$island-r0.rack"; return; fi',
            "  n=$(echo \"$list\" | tr , '\\n' | wc -l)",
            f'  runuser -u {admin} -- srun --job-name="azc-test-$island-domains" --nodes="$n" '
            '--nodelist="$list" --ntasks-per-node=1 --time=5 '
            f'bash -c \'echo "$SLURMD_NODENAME $(cat "${{AZC_ROOT:-}}{DOMAIN_FILE}" 2>/dev/null || '
            f'echo {UNKNOWN_DOMAIN})"\' >"$dir/$island.raw" 2>"$dir/$island.domains.err"',
            # What a node wrote is data: anything but an id's characters reads as no domain (never a glob).
            f'  awk \'NF >= 1 {{d = (NF == 2 && $2 ~ /^[0-9A-Za-z._-]+$/) ? $2 : "{UNKNOWN_DOMAIN}"; '
            'print $1, d}\' "$dir/$island.raw" >"$dir/$island.domains"',
            "  i=0",
            "  for d in $(awk 'NF == 2 {print $2}' \"$dir/$island.domains\" | sort -u); do",
            '    key="$island-r$i"; hosts=$(awk -v d="$d" \'NF == 2 && $2 == d {print $1}\' '
            '"$dir/$island.domains" | sort | paste -sd, -)',
            "    count=$(echo \"$hosts\" | tr , '\\n' | wc -l)",
            '    short=$(scontrol show hostlistsorted "$hosts" 2>/dev/null || echo "$hosts")',
            '    echo "AZC-RACK $key $d $short" >"$dir/$key.rack"',
            f'    if [ "$d" = {UNKNOWN_DOMAIN} ]; then',
            '      echo "AZC-TEST $key - 0 $count 0" >"$dir/$key.result"',
            '    else job "$key" "$hosts" "$gpus" "$dir/$island-rack.sh" "$count" & fi',
            "    i=$((i + 1))",
            "  done",
            '  if [ "$i" -eq 0 ]; then echo "AZC-TEST $island-r0 - 0 $n 0" >"$dir/$island-r0.result"; '
            'echo "AZC-RACK $island-r0 - -" >"$dir/$island-r0.rack"; fi',
            '  if [ "$i" -gt 1 ]; then job "$island-x" "$list" "$gpus" "$dir/$island-x.sh" "$all" & fi',
            "  wait",
            "}",
        ]
    for plan in plans:
        scripts = [(plan.key, job_script(plan))]
        if plan.racked:
            scripts = [(f"{plan.key}-rack", job_script(plan, 1)), (across_key(plan), job_script(plan, 0))]
        for name, text in scripts:
            encoded = base64.b64encode(text.encode()).decode()
            lines.append(
                f'printf %s \'{encoded}\' | base64 -d >"$dir/{name}.sh"; chmod 0755 "$dir/{name}.sh"'
            )
    lines += [f"{'racks' if p.racked else 'submit'} {p.key} {p.prefix} {p.gpus} &" for p in plans]
    lines.append("wait")
    rows = (
        "awk '($1 ~ /^[0-9]+$/ && $1 >= 1073741824 && NF >= 12) || "
        "/^# (Out of bounds|Avg bus)/ || /Test (NCCL |CUDA )?failure/ {$1 = $1; print}'"
    )
    lines += [
        "report() {",
        '  key=$1; [ -f "$dir/$key.rack" ] && cat "$dir/$key.rack"; cat "$dir/$key.result"',
        f'  [ -f "$dir/$key.out" ] && {rows} "$dir/$key.out" | head -n "$2"',
        '  [ -s "$dir/$key.err" ] && sed -n "1,2s/^/AZC-TEST-ERR $key /p" "$dir/$key.err"',
        '  echo "AZC-TEST-END $key"',
        "}",
    ]
    for plan in plans:
        if plan.racked:
            lines += [
                f'for f in "$dir/{plan.key}"-r*.result; do report "$(basename "$f" .result)" 6; done',
                f'[ -f "$dir/{across_key(plan)}.result" ] && report {across_key(plan)} 6',
                f'[ -s "$dir/{plan.key}.domains.err" ] && '
                f'sed -n "1s/^/AZC-TEST-ERR {plan.key}-r0 /p" "$dir/{plan.key}.domains.err"',
            ]
        else:
            lines.append(f"report {plan.key} 16")
    lines.append(f'echo "{MARKER}"')
    return lines


# --- reading what came back ---------------------------------------------------------------------------------


@dataclass
class _Raw:
    job_id: str | None
    nodes: int
    listed: int
    rc: int
    text: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    domain: str | None = None
    hosts: str | None = None


def parse_output(stdout: str) -> dict[str, _Raw]:
    """Each island's (or rack's) result line, output rows and sbatch errors from the login script's
    stdout; a rack's AZC-RACK line (its NVLink domain and Slurm hosts) comes just before its result."""
    found: dict[str, _Raw] = {}
    racks: dict[str, tuple[str, str]] = {}
    current: _Raw | None = None
    for line in stdout.splitlines():
        if match := _RESULT.match(line.strip()):
            job = match["job"]
            current = _Raw(
                None if job == "-" else job, int(match["nodes"]), int(match["listed"]), int(match["rc"])
            )
            found[match["key"]] = current
        elif match := _RACK.match(line.strip()):
            racks[match["key"]] = (match["domain"], match["hosts"])
        elif line.startswith("AZC-TEST-ERR "):
            _, key, message = line.split(" ", 2)
            if key in found:
                found[key].errors.append(message.strip())
        elif line.startswith("AZC-TEST-END "):
            current = None
        elif current is not None:
            current.text.append(line)
    for key, (domain, hosts) in racks.items():
        if key in found:
            found[key].domain = None if domain == "-" else domain
            found[key].hosts = None if hosts == "-" else hosts
    return found


def _expected(plan: IslandPlan, kind: str, nodes: int) -> float | None:
    """The catalogue's figure for this result: inside one NVLink domain, or the island's (IB) bound."""
    exp = plan.expectation
    if exp is None:
        return None
    if kind == "rack":
        return exp.nvlink_domain_gbps
    ports = plan.size.infiniband.ports if plan.size.infiniband else 0
    return exp.expected_gbps(nodes, ports)


def judge(
    plan: IslandPlan, raw: _Raw | None, far_below: float, key: str = "", kind: str = "island"
) -> IslandResult:
    """The verdict of an island (or, on GB sizes, of a rack or of the job across racks) from its job."""
    result = IslandResult(plan, "failed", key=key, kind=kind)
    if raw is None:
        result.reason = "no result came back for this island (the script stopped early)"
        return result
    result.job_id, result.tested_nodes, result.slurm_nodes = raw.job_id, raw.nodes, raw.listed
    result.domain, result.hosts = raw.domain, raw.hosts
    if kind == "rack" and raw.domain == UNKNOWN_DOMAIN:
        result.reason = (
            f"{raw.listed} node(s) report no NVLink domain ({DOMAIN_FILE} is missing: their nvlink_fabric "
            "health check fails or has not run; `azcluster status`)"
        )
        return result
    if kind == "rack" and raw.domain is None and raw.errors:
        result.reason = f"no node reported its NVLink domain (srun: {raw.errors[0]})"
        return result
    if raw.nodes == 0:
        result.verdict = "skipped"
        result.reason = (
            f"Slurm lists {raw.listed} node(s) of this island and none can run a job (drained, down or "
            "not registered)"
        )
        return result
    run = ncclperf.parse("\n".join(raw.text))
    result.rows = [row for row in run.rows if row.size >= ncclperf.GIB]
    result.peak_busbw = run.peak_busbw()
    result.average_busbw = run.average_busbw
    if raw.job_id is None or raw.errors and raw.rc != 0 and not run.rows:
        result.reason = "sbatch: " + (raw.errors[0] if raw.errors else f"exit status {raw.rc}")
        return result
    problem = run.problem()
    if raw.rc != 0 or problem:
        result.reason = problem or f"the job ended with exit status {raw.rc}"
        return result
    if result.peak_busbw is None:
        result.reason = "the job printed no rows of 1 GiB or more"
        return result
    partial = ""
    if kind == "rack" and plan.size.rack_vms and raw.nodes < plan.size.rack_vms:
        partial = f"; partial rack: {raw.nodes} of {plan.size.rack_vms} nodes"
    result.expected = _expected(plan, kind, raw.nodes)
    if result.expected is None:
        result.verdict = "measured"
        result.reason = f"the catalogue has no expected figure for {plan.size.name}" + partial
        return result
    where = {
        "island": f"{plan.size.series} should reach on {raw.nodes} node(s)",
        "rack": f"an all-reduce inside one {plan.size.series} NVLink domain should reach ({raw.nodes} nodes)",
        "across racks": f"{plan.size.series} should reach across racks (InfiniBand) on {raw.nodes} node(s)",
    }[kind]
    if result.peak_busbw < far_below * result.expected:
        result.verdict = "far-below"
        result.reason = (
            f"{result.peak_busbw:.0f} GB/s is under {far_below:.0%} of the {result.expected:.0f} GB/s {where}"
            + partial
        )
    else:
        result.verdict = "ok"
        result.reason = partial.removeprefix("; ")
    return result


def judge_racks(plan: IslandPlan, raws: dict[str, _Raw], far_below: float) -> list[IslandResult]:
    """A GB island's results: one per NVLink domain its nodes reported, then the one across them."""
    keys = sorted(
        (k for k in raws if k.startswith(f"{plan.key}-r") and k[len(plan.key) + 2 :].isdigit()),
        key=lambda k: int(k[len(plan.key) + 2 :]),
    )
    results = [judge(plan, raws[k], far_below, k, "rack") for k in keys] or [
        judge(plan, None, far_below, rack_key(plan, 0), "rack")
    ]
    if across_key(plan) in raws:
        results.append(judge(plan, raws[across_key(plan)], far_below, across_key(plan), "across racks"))
    return results


# --- running it --------------------------------------------------------------------------------------------


def run_test(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    *,
    island: str | None = None,
    timeout: float = TIMEOUT_S,
    progress: bool = True,
    client: Any = None,
    run_id: str | None = None,
) -> TestReport:
    """Test the chosen islands through Slurm on the login node; a TestReport (AzclusterError when the login
    node cannot be asked at all)."""
    from ..azure import azure_errors, compute_client
    from .loginhosts import login_vm_name

    require_login_and_home(spec, stack)
    plans = plan_islands(spec, stack, island)
    run_id = run_id or secrets.token_hex(4)
    vm = login_vm_name(spec)
    target = runcommand.on_vm(client or compute_client(ctx), spec.resource_group_name, vm)
    far_below = catalog.allreduce_far_below()
    results: list[IslandResult] = []
    # A GB island prints up to seven results (racks and across): it gets a Run Command of its own.
    plain = [p for p in plans if not p.racked]
    batches = [plain[i : i + ISLANDS_PER_CALL] for i in range(0, len(plain), ISLANDS_PER_CALL)]
    batches += [[p] for p in plans if p.racked]
    for number, batch in enumerate(batches, start=1):
        part = f" ({number} of {len(batches)})" if len(batches) > 1 else ""
        keys = ", ".join(p.key for p in batch)
        with (
            runcommand.waiting_line(f"all-reduce on {keys} through Slurm on {vm}{part} (minutes)", progress),
            azure_errors(ctx, f"running the all-reduce test on {vm}"),
        ):
            stdout = _run(target, login_script(batch, spec, run_id), stack, vm, timeout)
        raws = parse_output(stdout)
        for plan in batch:
            if plan.racked:
                results += judge_racks(plan, raws, far_below)
            else:
                results.append(judge(plan, raws.get(plan.key), far_below))
    return TestReport(stack, vm, results, far_below)


def require_login_and_home(spec: ClusterSpec, stack: str) -> None:
    """Exit 2 without Slurm (nothing to submit to), a login node (nowhere to submit from) or a shared
    home (nowhere for job output)."""
    if spec.scheduler != "slurm":
        raise AzclusterError(
            f"stack {stack} has no scheduler (scheduler: {spec.scheduler}): the test runs through Slurm",
            "set `scheduler: slurm`, or run nccl-tests yourself with the hostfiles of `azcluster hosts`",
            EXIT_USAGE,
        )
    if not spec.login.enabled:
        raise AzclusterError(
            f"stack {stack} has no login node (login.enabled: false): nowhere to submit the test from",
            "enable the login node",
            EXIT_USAGE,
        )
    if not spec.storage.home.enabled:
        raise AzclusterError(
            f"stack {stack} has no shared home (storage.home.enabled: false): the login node cannot read "
            "what the jobs print on the compute nodes",
            "enable storage.home",
            EXIT_USAGE,
        )


def _run(target: runcommand.Begin, lines: list[str], stack: str, vm: str, timeout: float) -> str:
    try:
        output = runcommand.run_shell(target, lines, timeout)
    except runcommand.RunCommandFailed as err:
        raise AzclusterError(
            f"could not run the test on {vm}: {err.detail}",
            err.hint
            or f"is the cluster up (`azcluster status {stack}`)? then run `azcluster test {stack}` again",
            EXIT_REFUSED,
        ) from None
    if MARKER not in output.stdout:
        why = runcommand.first_line(output.stderr) or "the script stopped before its end"
        raise AzclusterError(
            f"the test on {vm} did not finish: {why}",
            "on the login node, check that Slurm answers (`sinfo`) and the shared home is mounted",
            EXIT_REFUSED,
        )
    return output.stdout


def failure(report: TestReport) -> AzclusterError:
    """The command's error when the report is not ok: which islands, and what to do."""
    bad = [r for r in report.islands if r.failed]
    if bad:
        what = "; ".join(f"{r.name} {r.verdict}: {r.reason}" for r in bad)
        hint = (
            f"look for unhealthy nodes with `azcluster status {report.stack}`; drain or replace them "
            "(`scontrol update nodename=NODE state=drain reason=WHY`), then run "
            f"`azcluster test {report.stack} --island {bad[0].plan.key}` again"
            + (
                "; a rack below its NVLink figure: check IMEX on its nodes (`nvidia-imex-ctl -N`) and "
                "the nvlink_fabric health check"
                if any(r.kind == "rack" for r in bad)
                else ""
            )
        )
        return AzclusterError(
            f"all-reduce test failed on {len(bad)} island(s)/rack(s): {what}", hint, EXIT_REFUSED
        )
    return AzclusterError(
        "no island could be tested: Slurm has no usable node in any of them",
        f"check the nodes with `azcluster status {report.stack}` and `sinfo -R` on the login node",
        EXIT_REFUSED,
    )

"""Operations on a built cluster: `status`, `stop`, `start`, `hosts`. No Pulumi state needed.

The cluster is found by tags (components/tags.py): in the cluster's resource group, the scale sets tagged
`azcluster-cluster=<name>` with a pool and island tag are its InfiniBand islands, and the virtual machine
tagged `azcluster-role=login` is its login node.

What each island's nodes look like comes from the scale set's VM list with `$expand=instanceView` (power
state, provisioning state and, when the Application Health extension runs, `vmHealth`), one call per page
for the whole island. Private IPs live in Microsoft.Network, not Microsoft.Compute: they come from the scale
set's network-interface list (`.../virtualMachineScaleSets/{name}/networkInterfaces`, api-version
2018-10-01), sent through the same authenticated, retrying pipeline as the Compute client's own calls.

`status` also says WHICH check failed on an unhealthy node. vmHealth only says healthy or not; the checks
azc-health.sh ran live on the node, in the JSON file at bootstrap's HEALTH_RESULT_PATH. Nodes must not
need SSH, a public IP or a route from the laptop, so the file is read through Azure's Run Command on the
scale-set VM (RunShellScript `cat FILE`: a long-running POST, polled like stop/start). Run Command is slow
(about 20 s at best per node, one script at a time per VM), so the nodes are read in parallel, at most
DIAGNOSE_LIMIT per run, and `--no-diagnose` skips it. A node whose file cannot be read gets that said on
its own line; it never fails the whole command. Azure refusing Run Command itself (a Reader: 403) is the
same answer on every node, so the first refusal stops the diagnosis and the report says once what role it
needs. The Run Command plumbing is shared with the login node's hostfiles (runcommand.py).

`stop` and `start` run one long-running operation per island in parallel; azure-core polls each the way
Azure says (Azure-AsyncOperation, then Location; Retry-After). Each island's outcome is reported on its
own: what succeeded stays succeeded, and any failure makes the command exit 1.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azcluster.components import catalog
from azcluster.components.bootstrap import HEALTH_RESULT_PATH, parse_health_result
from azcluster.components.spec import ClusterSpec
from azcluster.components.tags import ROLE_COMPUTE, ROLE_LOGIN, TAG_CLUSTER, TAG_ISLAND, TAG_POOL, TAG_ROLE

from . import remedies, runcommand
from .errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError

if TYPE_CHECKING:  # pragma: no cover
    from .azure import AzureContext

MAX_PARALLEL = 16

# Diagnosis through Run Command (azcluster/runcommand.py has what Azure says about it): slow, one script
# at a time per VM, and it needs Microsoft.Compute/virtualMachines/runCommand/action.
DIAGNOSE_LIMIT = 16
DIAGNOSE_TIMEOUT_S = runcommand.TIMEOUT_S
DIAGNOSE_STATES = ("unhealthy", "unknown")  # in this order: the limit keeps the nodes Azure calls unhealthy
UNREADABLE = "could not read the health result"


@dataclass
class Diagnosis:
    """What a node's own health check recorded (HEALTH_RESULT_PATH), read through Run Command.

    state: `read` (the file parsed; `failing` lists its failed checks), `unreadable` (Run Command or the
    file failed; `detail` says how), `skipped` (nothing was sent: over the limit, or the node not running).
    """

    state: str
    detail: str
    failing: list[tuple[str, str]] = field(default_factory=list)
    time: str | None = None

    def failing_json(self) -> list[dict[str, str]]:
        return [{"name": name, "detail": detail} for name, detail in self.failing]

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail, "time": self.time}


@dataclass
class DiagnosisRun:
    """How much of the cluster was diagnosed, so a capped or refused run says what it left out.

    denied: Azure's refusal ({"node", "code", "message"}) when the identity may not run commands on the
    nodes; `denied_nodes` were then not even asked.
    """

    enabled: bool
    limit: int
    sent: int = 0
    over_limit: int = 0
    not_running: int = 0
    denied: dict[str, str] | None = None
    denied_nodes: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "limit": self.limit,
            "diagnosed": self.sent,
            "skipped_over_limit": self.over_limit,
            "skipped_not_running": self.not_running,
            "skipped_denied": self.denied_nodes,
            "denied": self.denied,
        }


@dataclass
class Node:
    name: str
    instance_id: str
    computer_name: str | None
    private_ip: str | None
    power_state: str | None  # running | deallocated | stopped | starting | deallocating | ...
    provisioning_state: str | None
    health: str | None  # healthy | unhealthy | unknown | initializing | None (no health extension)
    health_detail: str | None = None
    zone: str | None = None
    diagnosis: Diagnosis | None = None  # None: not asked (healthy, or --no-diagnose)

    @property
    def failing_checks(self) -> list[dict[str, str]]:
        return self.diagnosis.failing_json() if self.diagnosis else []

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instance_id": self.instance_id,
            "computer_name": self.computer_name,
            "private_ip": self.private_ip,
            "power_state": self.power_state,
            "provisioning_state": self.provisioning_state,
            "health": self.health,
            "health_detail": self.health_detail,
            "failing_checks": self.failing_checks,
            "diagnosis": self.diagnosis.to_json() if self.diagnosis else None,
            "zone": self.zone,
        }


@dataclass
class Island:
    """One scale set: one InfiniBand island of a pool."""

    pool: str
    island: int
    scale_set: str
    size: str
    capacity: int
    provisioning_state: str | None
    spot: bool
    zones: list[str]
    nodes: list[Node] = field(default_factory=list)
    automatic_repairs: str | None = None

    @property
    def power_states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for node in self.nodes:
            key = node.power_state or "unknown"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def running(self) -> int:
        return sum(node.power_state == "running" for node in self.nodes)

    def cost_per_hour(self) -> float | None:
        size = catalog.find_size(self.size)
        return None if size is None else round(self.running * size.price.usd_per_hour, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "scale_set": self.scale_set,
            "size": self.size,
            "capacity": self.capacity,
            "provisioning_state": self.provisioning_state,
            "spot": self.spot,
            "zones": self.zones,
            "power_states": self.power_states,
            "automatic_repairs": self.automatic_repairs,
            "cost_per_hour_usd": self.cost_per_hour(),
            "nodes": [node.to_json() for node in self.nodes],
        }


@dataclass
class LoginNode:
    name: str
    size: str
    private_ip: str | None
    power_state: str | None
    provisioning_state: str | None

    def cost_per_hour(self) -> float | None:
        size = catalog.general_sizes().get(self.size)
        if size is None or self.power_state != "running":
            return 0.0 if size is not None else None
        return round(size.price.usd_per_hour, 2)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "private_ip": self.private_ip,
            "power_state": self.power_state,
            "provisioning_state": self.provisioning_state,
            "cost_per_hour_usd": self.cost_per_hour(),
        }


@dataclass
class ClusterStatus:
    stack: str
    cluster: str
    resource_group: str
    location: str
    islands: list[Island]
    login: LoginNode | None
    diagnosis: DiagnosisRun | None = None

    @property
    def found(self) -> bool:
        return bool(self.islands) or self.login is not None

    def unhealthy(self) -> list[tuple[Island, Node]]:
        return [
            (island, node)
            for island in self.islands
            for node in island.nodes
            if node.health in DIAGNOSE_STATES
        ]

    def cost_per_hour(self) -> float:
        costs = [island.cost_per_hour() or 0.0 for island in self.islands]
        if self.login:
            costs.append(self.login.cost_per_hour() or 0.0)
        return round(sum(costs), 2)

    def to_json(self) -> dict[str, Any]:
        pools: dict[str, list[dict[str, Any]]] = {}
        for island in self.islands:
            pools.setdefault(island.pool, []).append(island.to_json())
        return {
            "stack": self.stack,
            "cluster": self.cluster,
            "resource_group": self.resource_group,
            "location": self.location,
            "found": self.found,
            "pools": [{"pool": name, "islands": islands} for name, islands in pools.items()],
            "login": self.login.to_json() if self.login else None,
            "unhealthy": [
                {
                    "pool": island.pool,
                    "island": island.island,
                    "scale_set": island.scale_set,
                    "node": node.computer_name or node.name,
                    "private_ip": node.private_ip,
                    "health": node.health,
                    "detail": node.health_detail,
                    "failing_checks": node.failing_checks,
                    "diagnosis": node.diagnosis.to_json() if node.diagnosis else None,
                }
                for island, node in self.unhealthy()
            ],
            "diagnosis": self.diagnosis.to_json() if self.diagnosis else None,
            "cost_per_hour_usd": self.cost_per_hour(),
            "cost_basis": "running VMs x catalogue pay-as-you-go Linux prices (Spot billed lower); "
            "deallocated VMs cost no compute",
        }


@dataclass
class IslandOutcome:
    pool: str
    island: int
    scale_set: str
    ok: bool
    code: str | None = None
    message: str | None = None
    hint: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "scale_set": self.scale_set,
            "ok": self.ok,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class OperationReport:
    stack: str
    action: str  # stop | start
    islands: list[IslandOutcome]

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.islands)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "action": self.action,
            "ok": self.ok,
            "islands": [outcome.to_json() for outcome in self.islands],
        }


@dataclass
class Hostfile:
    pool: str
    island: int
    scale_set: str
    slots: int
    hosts: list[Node]
    excluded: list[Node]

    def text(self, fmt: str = "plain") -> str:
        lines = []
        for node in self.hosts:
            lines.append(f"{node.private_ip} slots={self.slots}" if fmt == "mpi" else str(node.private_ip))
        return "\n".join(lines) + ("\n" if lines else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "scale_set": self.scale_set,
            "slots": self.slots,
            "hosts": [{"name": n.computer_name or n.name, "private_ip": n.private_ip} for n in self.hosts],
            "excluded": [
                {"name": n.computer_name or n.name, "power_state": n.power_state, "private_ip": n.private_ip}
                for n in self.excluded
            ],
        }


# --- finding the cluster ---------------------------------------------------------------------------


def load_spec(stack: str) -> tuple[str, ClusterSpec]:
    """(stack name, spec) for STACK; a stack whose cluster does not parse is exit 2, pointing at validate."""
    from . import stackfile

    loaded = stackfile.load_stack(stack)
    if loaded.spec is None:
        raise AzclusterError(
            f"{loaded.path}: the cluster in this stack file does not match the schema",
            f"run `azcluster validate {stack}` to see where",
            EXIT_USAGE,
        )
    return loaded.name, loaded.spec


@dataclass
class _Set:
    pool: str
    island: int
    name: str
    body: dict[str, Any]


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    """Tags with lower-case names: Azure treats tag names case-insensitively."""
    return {str(key).lower(): str(value) for key, value in (resource.get("tags") or {}).items()}


def find_scale_sets(client: Any, spec: ClusterSpec) -> list[_Set]:
    """The cluster's island scale sets, ordered as the spec orders pools, then by island."""
    from azure.core.exceptions import ResourceNotFoundError

    from .azure import rest

    try:
        sets = [rest(s) for s in client.virtual_machine_scale_sets.list(spec.resource_group_name)]
    except ResourceNotFoundError:
        return []
    found: list[_Set] = []
    for vmss in sets:
        tags = _tags(vmss)
        if tags.get(TAG_CLUSTER) != spec.name or tags.get(TAG_ROLE, ROLE_COMPUTE) != ROLE_COMPUTE:
            continue
        if TAG_POOL not in tags:
            continue
        try:
            island = int(tags.get(TAG_ISLAND, "0"))
        except ValueError:
            island = 0
        found.append(_Set(tags[TAG_POOL], island, str(vmss["name"]), vmss))
    order = {pool.name: index for index, pool in enumerate(spec.pools)}
    found.sort(key=lambda s: (order.get(s.pool, len(order)), s.pool, s.island))
    return found


def _require(sets: list[_Set], spec: ClusterSpec, stack: str) -> None:
    if not sets:
        raise AzclusterError(
            f"no scale sets tagged {TAG_CLUSTER}={spec.name} in resource group {spec.resource_group_name}",
            f"is the cluster up (`azcluster up {stack}`), and are --subscription and the stack's resource "
            "group the ones it was deployed with?",
            EXIT_REFUSED,
        )


# --- reading nodes ---------------------------------------------------------------------------------


def _status_code(statuses: list[dict[str, Any]], prefix: str) -> str | None:
    for status in statuses or []:
        code = str(status.get("code") or "")
        if code.lower().startswith(prefix.lower() + "/"):
            return code.split("/", 1)[1]
    return None


def _health(view: dict[str, Any]) -> tuple[str | None, str | None]:
    """(health, detail) from the instance view's vmHealth and the Application Health extension's status."""
    status = (view.get("vmHealth") or {}).get("status") or {}
    code = str(status.get("code") or "")
    health = code.split("/", 1)[1].lower() if code.lower().startswith("healthstate/") else None
    details = [str(status["message"])] if status.get("message") else []
    for extension in view.get("extensions") or []:
        if "applicationhealth" not in str(extension.get("type", "")).lower():
            continue
        for sub in extension.get("substatuses") or []:
            message = sub.get("message")
            if message and str(message) not in details:
                details.append(str(message))
    return health, "; ".join(details) or None


def island_ips(client: Any, subscription: str, resource_group: str, scale_set: str) -> dict[str, str]:
    """instance id -> primary private IPv4 of each VM in a scale set (Microsoft.Network NIC list)."""
    from .azure import VMSS_NIC_API_VERSION, arm_get_pages

    path = (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/"
        f"virtualMachineScaleSets/{scale_set}/networkInterfaces"
    )
    ips: dict[str, str] = {}
    for nic in arm_get_pages(client, path, VMSS_NIC_API_VERSION):
        props = nic.get("properties") or {}
        vm_id = str((props.get("virtualMachine") or {}).get("id") or "")
        if not vm_id:
            continue
        instance = vm_id.rstrip("/").rsplit("/", 1)[-1]
        configs = props.get("ipConfigurations") or []
        primary = next(
            (c for c in configs if (c.get("properties") or {}).get("primary")),
            configs[0] if configs else None,
        )
        address = ((primary or {}).get("properties") or {}).get("privateIPAddress")
        if address and (props.get("primary", True) or instance not in ips):
            ips[instance] = str(address)
    return ips


def read_island(client: Any, ctx: AzureContext, spec: ClusterSpec, found: _Set) -> Island:
    """One island's scale set and nodes. `client` may be shared between threads (Azure SDK clients are)."""
    from .azure import rest

    rg = spec.resource_group_name
    body = found.body
    sku = body.get("sku") or {}
    profile = (body.get("properties") or {}).get("virtualMachineProfile") or {}
    island = Island(
        pool=found.pool,
        island=found.island,
        scale_set=found.name,
        size=str(sku.get("name") or ""),
        capacity=int(sku.get("capacity") or 0),
        provisioning_state=(body.get("properties") or {}).get("provisioningState"),
        spot=str(profile.get("priority") or "").lower() in ("spot", "low"),
        zones=[str(z) for z in body.get("zones") or []],
    )
    ips = island_ips(client, ctx.subscription_id, rg, found.name)
    for vm in client.virtual_machine_scale_set_vms.list(rg, found.name, expand="instanceView"):
        data = rest(vm)
        props = data.get("properties") or {}
        view = props.get("instanceView") or {}
        health, detail = _health(view)
        instance_id = str(data.get("instanceId") or str(data.get("id", "")).rsplit("/", 1)[-1])
        island.nodes.append(
            Node(
                name=str(data.get("name") or ""),
                instance_id=instance_id,
                computer_name=(props.get("osProfile") or {}).get("computerName") or view.get("computerName"),
                private_ip=ips.get(instance_id),
                power_state=_status_code(view.get("statuses") or [], "PowerState"),
                provisioning_state=props.get("provisioningState"),
                health=health,
                health_detail=detail,
                zone=(data.get("zones") or [None])[0],
            )
        )
    island.nodes.sort(key=lambda node: _instance_order(node.instance_id))
    return island


def _instance_order(instance_id: str) -> tuple[int, str]:
    return (int(instance_id), "") if instance_id.isdigit() else (1 << 30, instance_id)


def _automatic_repairs(client: Any, rg: str, name: str) -> str | None:
    from .azure import rest

    view = rest(client.virtual_machine_scale_sets.get_instance_view(rg, name))
    for service in view.get("orchestrationServices") or []:
        if str(service.get("serviceName")) == "AutomaticRepairs":
            return service.get("serviceState")
    return None


def find_login(client: Any, ctx: AzureContext, spec: ClusterSpec) -> LoginNode | None:
    from azure.core.exceptions import ResourceNotFoundError

    from .azure import NETWORK_API_VERSION, arm_get_pages, rest

    rg = spec.resource_group_name
    try:
        vms = [rest(vm) for vm in client.virtual_machines.list(rg)]
    except ResourceNotFoundError:
        return None
    for vm in vms:
        tags = _tags(vm)
        if tags.get(TAG_CLUSTER) != spec.name or tags.get(TAG_ROLE) != ROLE_LOGIN:
            continue
        props = vm.get("properties") or {}
        view = rest(client.virtual_machines.instance_view(rg, vm["name"]))
        ip = None
        nics = (props.get("networkProfile") or {}).get("networkInterfaces") or []
        if nics:
            nic = next(arm_get_pages(client, str(nics[0]["id"]), NETWORK_API_VERSION), {})
            configs = (nic.get("properties") or {}).get("ipConfigurations") or []
            if configs:
                ip = (configs[0].get("properties") or {}).get("privateIPAddress")
        return LoginNode(
            name=str(vm["name"]),
            size=str((props.get("hardwareProfile") or {}).get("vmSize") or ""),
            private_ip=ip,
            power_state=_status_code(view.get("statuses") or [], "PowerState"),
            provisioning_state=props.get("provisioningState"),
        )
    return None


# --- status ----------------------------------------------------------------------------------------


def cluster_status(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    *,
    diagnose: bool = True,
    diagnose_limit: int = DIAGNOSE_LIMIT,
    diagnose_timeout: float = DIAGNOSE_TIMEOUT_S,
    progress: bool = False,
) -> ClusterStatus:
    """Every island's scale set and nodes (IP, power, health), the login node, the running cost; with
    `diagnose`, the failing checks of up to `diagnose_limit` unhealthy nodes (read on the nodes)."""
    from .azure import azure_errors, compute_client

    client = compute_client(ctx)
    with azure_errors(ctx, f"listing the scale sets of {spec.name} in {spec.resource_group_name}"):
        sets = find_scale_sets(client, spec)

    def read(found: _Set) -> Island:
        with azure_errors(ctx, f"reading scale set {found.name}"):
            island = read_island(client, ctx, spec, found)
            island.automatic_repairs = _automatic_repairs(client, spec.resource_group_name, found.name)
            return island

    islands = _parallel(read, sets)
    with azure_errors(ctx, f"looking for the login node of {spec.name}"):
        login = find_login(client, ctx, spec) if spec.login.enabled else None
    status = ClusterStatus(stack, spec.name, spec.resource_group_name, spec.location, islands, login)
    status.diagnosis = DiagnosisRun(enabled=diagnose, limit=diagnose_limit)
    if diagnose:
        with azure_errors(ctx, f"reading the health results of {spec.name}'s unhealthy nodes"):
            diagnose_nodes(client, status, diagnose_timeout, progress)
    return status


# --- diagnosis: which check failed, read on the node -------------------------------------------------


def diagnose_nodes(client: Any, status: ClusterStatus, timeout: float, progress: bool) -> None:
    """Read the health result of the cluster's unhealthy nodes (then unknown ones) in parallel.

    Only running nodes can run a command; the rest, and those past the limit, get a `skipped` diagnosis
    that says why, so the report never silently leaves a node out. Azure refusing Run Command itself
    (403: a Reader) is the same answer for every node, so after the first refusal nothing more is sent.
    """
    run = status.diagnosis = status.diagnosis or DiagnosisRun(enabled=True, limit=DIAGNOSE_LIMIT)
    order = {state: rank for rank, state in enumerate(DIAGNOSE_STATES)}
    candidates = sorted(status.unhealthy(), key=lambda pair: order[pair[1].health or ""])
    runnable = []
    for island, node in candidates:
        if node.power_state == "running":
            runnable.append((island, node))
        else:
            run.not_running += 1
            node.diagnosis = Diagnosis(
                "skipped", f"not diagnosed: the node is {node.power_state or 'in an unknown power state'}"
            )
    chosen, rest = runnable[: max(run.limit, 0)], runnable[max(run.limit, 0) :]
    for _island, node in rest:
        node.diagnosis = Diagnosis("skipped", f"not diagnosed: over the limit of {run.limit} nodes per run")
    run.over_limit = len(rest)
    gate = _DenialGate()

    pilot = chosen[0][1] if chosen else None

    def one(pair: tuple[Island, Node], update: Callable[[str], None]) -> Diagnosis:
        island, node = pair
        target = runcommand.on_scale_set_vm(client, status.resource_group, island.scale_set, node.instance_id)
        name = node.computer_name or node.name
        return read_health_result(target, name, gate, node is pilot, timeout, update)

    results = _diagnose_with_progress(chosen, one, progress)
    for (_island, node), diagnosis in zip(chosen, results, strict=True):
        node.diagnosis = diagnosis
    run.sent = len(chosen) - gate.held_back
    run.denied_nodes = gate.held_back
    if gate.refusal is not None:
        refusal = gate.refusal
        run.denied = {"node": gate.refused_on or "", "code": refusal.code or "", "message": refusal.message}


class _DenialGate:
    """Lets the first node's Run Command POST go alone, and stops the rest once Azure has refused one (403).

    The POST is answered in well under a second, so the other nodes wait that long, not a whole Run
    Command (20 s or more): a Reader then sends one request, not one per unhealthy node.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pilot_answered = threading.Event()
        self.refusal: runcommand.RunCommandFailed | None = None
        self.refused_on: str | None = None
        self.held_back = 0

    def send(
        self,
        target: runcommand.Begin,
        lines: list[str],
        node: str,
        pilot: bool,
        update: Callable[[str], None],
    ) -> Any:
        """The poller, or None when a refusal holds this node back; RunCommandFailed as runcommand.send."""
        if not pilot:
            update("waiting: the first node's Run Command goes alone")
            self._pilot_answered.wait()
        try:
            with self._lock:
                if self.refusal is not None:
                    self.held_back += 1
                    return None
            return runcommand.send(target, lines, update)
        except runcommand.RunCommandFailed as err:
            if err.denied:
                with self._lock:
                    if self.refusal is None:
                        self.refusal, self.refused_on = err, node
            raise
        finally:
            if pilot:
                self._pilot_answered.set()


def read_health_result(
    target: runcommand.Begin,
    node: str,
    gate: _DenialGate | None = None,
    pilot: bool = True,
    timeout: float = DIAGNOSE_TIMEOUT_S,
    update: Callable[[str], None] = lambda _text: None,
) -> Diagnosis:
    """Run `cat HEALTH_RESULT_PATH` on one scale-set VM through Run Command and parse what it printed.

    Every way this can fail (Azure refuses, the operation fails or outlasts `timeout`, the file is missing
    or not a health result) becomes an `unreadable` diagnosis: one node's problem is not the command's.
    A refusal for lack of permission is said once for the whole run (DiagnosisRun.denied), not per node.
    """
    gate = gate or _DenialGate()
    lines = [f"cat {shlex.quote(HEALTH_RESULT_PATH)}"]
    try:
        poller = gate.send(target, lines, node, pilot, update)
        if poller is None:
            return Diagnosis(
                "skipped", f"not diagnosed: Azure refused Run Command on {gate.refused_on} (see below)"
            )
        update("running on the node")
        output = runcommand.wait(poller, timeout)
    except runcommand.RunCommandFailed as err:
        hint = f" ({err.hint})" if err.hint and not err.denied else ""
        return _unreadable(f"{err.detail}{hint}")
    return _diagnosis_from(output.stdout, output.stderr)


def _diagnosis_from(stdout: str, stderr: str) -> Diagnosis:
    """The node's failing checks, or why they could not be read."""
    text = stdout.strip()
    if not text:
        why = runcommand.first_line(stderr) or f"{HEALTH_RESULT_PATH} is empty"
        if "no such file" in why.lower():
            why += (
                "; azc-health has not written it yet (on the node: `systemctl status azc-prepare "
                "azc-health.timer`)"
            )
        return _unreadable(why)
    try:
        result = parse_health_result(text)
    except ValueError as err:
        cut = len(stdout.encode()) >= runcommand.OUTPUT_LIMIT
        note = f" (Run Command returns only the last {runcommand.OUTPUT_LIMIT} bytes)" if cut else ""
        return _unreadable(f"{HEALTH_RESULT_PATH}: {err}{note}")
    failing = [(check.name, check.detail) for check in result.failing]
    if result.healthy or not failing:
        detail = (
            "the node's own last check passed; Azure's probe disagrees (is azc-health-server running, and "
            "is the result fresh?)"
            if result.healthy
            else "unhealthy, but no failed check is recorded"
        )
        return Diagnosis("read", detail, failing, result.time or None)
    return Diagnosis("read", result.summary(), failing, result.time or None)


def _unreadable(why: str) -> Diagnosis:
    return Diagnosis("unreadable", f"{UNREADABLE}: {why}")


def _diagnose_with_progress(
    chosen: list[tuple[Island, Node]],
    work: Callable[[tuple[Island, Node], Callable[[str], None]], Diagnosis],
    progress: bool,
) -> list[Diagnosis]:
    """Run `work` on every chosen node in parallel, with a live line per node on stderr."""

    from .render import console

    if not progress or not chosen:
        return _parallel(lambda pair: work(pair, lambda _text: None), chosen)
    console.print(
        f"reading the health result of {len(chosen)} node(s) through Run Command "
        "(tens of seconds; --no-diagnose skips this)",
        soft_wrap=True,
    )
    with _task_progress(console) as bar:
        tasks = {
            id(node): bar.add_task(
                f"{node.computer_name or node.name} ({island.pool}/{island.island})", total=1, state="sending"
            )
            for island, node in chosen
        }

        def tracked(pair: tuple[Island, Node]) -> Diagnosis:
            task = tasks[id(pair[1])]
            diagnosis = work(pair, lambda text: bar.update(task, state=text))
            done = {"read": "[green]read[/]", "skipped": "[dim]not asked[/]"}.get(
                diagnosis.state, "[bold red]unreadable[/]"
            )
            bar.update(task, completed=1, state=done)
            return diagnosis

        return _parallel(tracked, chosen)


def print_status(status: ClusterStatus) -> None:
    from rich.table import Table

    from .render import console, stdout

    if not status.found:
        console.print(
            f"[yellow]nothing found[/] for {status.cluster} in resource group {status.resource_group}"
        )
        return
    for island in status.islands:
        title = (
            f"pool {island.pool} island {island.island}: {island.scale_set} ({island.size}, "
            f"capacity {island.capacity}, {island.provisioning_state or 'unknown'})"
        )
        table = Table(title=title)
        for column in ("node", "private IP", "power", "health", "detail"):
            table.add_column(column)
        for node in island.nodes:
            health = node.health or "-"
            if node.health in ("unhealthy", "unknown"):
                health = f"[bold red]{health}[/]"
            table.add_row(
                node.computer_name or node.name,
                node.private_ip or "-",
                node.power_state or "?",
                health,
                node.health_detail or "",
            )
        stdout.print(table)
        states = (
            ", ".join(f"{count} {state}" for state, count in island.power_states.items()) or "no instances"
        )
        stdout.print(f"  {states}; ${island.cost_per_hour() or 0:.2f}/h" + ("; spot" if island.spot else ""))
    if status.login:
        login = status.login
        stdout.print(
            f"login node {login.name} ({login.size}): {login.power_state or '?'}, "
            f"{login.private_ip or 'no IP'}"
        )
    unhealthy = status.unhealthy()
    if unhealthy:
        console.print(
            f"[bold red]{len(unhealthy)} unhealthy node(s)[/] (Application Health: unhealthy or unknown)"
        )
        _print_unhealthy(status)
        for note in _diagnosis_notes(status):
            console.print(note, soft_wrap=True)
    console.print(f"running now: [bold]${status.cost_per_hour():.2f}/h[/] (catalogue pay-as-you-go prices)")


def _print_unhealthy(status: ClusterStatus) -> None:
    """The "unhealthy nodes" section: node, island, IP, health, then one line per failing check.

    Lines, not a table: check details are long sentences that a narrow table would chop into fragments,
    and one check per line is what people grep and paste into a ticket.
    """
    from rich.markup import escape

    from .render import stdout

    rows = [
        (node, (node.computer_name or node.name, f"{island.pool}/{island.island} ({island.scale_set})"))
        for island, node in status.unhealthy()
    ]
    widths = [max(len(row[1][i]) for row in rows) for i in (0, 1)]
    enabled = bool(status.diagnosis and status.diagnosis.enabled)
    stdout.print("[bold]unhealthy nodes[/] (node, island, private IP, health; then the failing check)")
    for node, (name, where) in rows:
        stdout.print(
            f"  {escape(name):<{widths[0]}}  {escape(where):<{widths[1]}}  {node.private_ip or '-':<15} "
            f"[bold red]{node.health}[/]",
            soft_wrap=True,
        )
        for line in _failing_lines(node, enabled):
            stdout.print(f"      {line}", soft_wrap=True)


def _failing_lines(node: Node, diagnosed: bool) -> list[str]:
    from rich.markup import escape

    diagnosis = node.diagnosis
    if diagnosis is None:
        lines = [escape(node.health_detail)] if node.health_detail else []
        return lines + ([] if diagnosed else ["[dim]failing check not read (--no-diagnose)[/]"])
    if diagnosis.state == "read" and diagnosis.failing:
        lines = [f"[bold]{escape(name)}[/]: {escape(detail)}" for name, detail in diagnosis.failing]
        return lines + ([f"[dim](checked {escape(diagnosis.time)})[/]"] if diagnosis.time else [])
    style = "dim" if diagnosis.state == "skipped" else "yellow"
    return [f"[{style}]{escape(diagnosis.detail)}[/]"]


def _diagnosis_notes(status: ClusterStatus) -> list[str]:
    """Say what the report left out: nodes over the limit, diagnosis turned off, or not allowed (once)."""
    from rich.markup import escape

    run = status.diagnosis
    if run is None:
        return []
    if not run.enabled:
        return ["[dim]failing checks were not read (--no-diagnose)[/]"]
    notes = []
    if run.denied:
        where = escape(f"{run.denied['node']} ({run.denied['code']})")
        held = f"; {run.denied_nodes} more node(s) not asked" if run.denied_nodes else ""
        notes.append(
            f"[yellow]diagnosis stopped: Azure refused Run Command on {where}[/]{held}. Reading the failing "
            "check on the nodes needs Virtual Machine Contributor (Microsoft.Compute/virtualMachines/"
            f"runCommand/action) on resource group {escape(status.resource_group)}; or pass --no-diagnose"
        )
    if run.over_limit:
        notes.append(
            f"[yellow]{run.over_limit} more unhealthy node(s) not diagnosed[/]: at most {run.limit} per run "
            "(Run Command is slow); raise it with --diagnose-limit"
        )
    return notes


# --- stop / start ----------------------------------------------------------------------------------


def stop_cluster(
    spec: ClusterSpec, ctx: AzureContext, stack: str, *, progress: bool = True
) -> OperationReport:
    """Deallocate every island (no compute billed; disks and IPs stay) in parallel."""
    return _operate(spec, ctx, stack, "stop", progress)


def start_cluster(
    spec: ClusterSpec, ctx: AzureContext, stack: str, *, progress: bool = True
) -> OperationReport:
    """Start every island in parallel; say which island could not be allocated and what to do."""
    return _operate(spec, ctx, stack, "start", progress)


def _operate(
    spec: ClusterSpec, ctx: AzureContext, stack: str, action: str, progress: bool
) -> OperationReport:
    from .azure import azure_errors, compute_client

    with azure_errors(ctx, f"listing the scale sets of {spec.name} in {spec.resource_group_name}"):
        client = compute_client(ctx)
        sets = find_scale_sets(client, spec)
    _require(sets, spec, stack)

    def one(found: _Set, update: Callable[[str], None]) -> IslandOutcome:
        return _run_island(client, spec, stack, found, action, update)

    verb = {"stop": "deallocating", "start": "starting"}[action]
    with azure_errors(ctx, f"{verb} the scale sets of {spec.name}"):
        outcomes = _with_progress(sets, one, action, progress)
    return OperationReport(stack, action, outcomes)


def _run_island(
    client: Any, spec: ClusterSpec, stack: str, found: _Set, action: str, update: Callable[[str], None]
) -> IslandOutcome:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    from .azure import begin_with_throttle_retry, error_code, error_message

    operations = client.virtual_machine_scale_sets
    begin = operations.begin_deallocate if action == "stop" else operations.begin_start
    started = time.monotonic()
    outcome = IslandOutcome(found.pool, found.island, found.name, ok=False)
    try:
        poller = begin_with_throttle_retry(begin, spec.resource_group_name, found.name, update=update)
        update("waiting for Azure")
        poller.result()
        outcome.ok = True
    except ClientAuthenticationError as err:
        if getattr(err, "response", None) is None:  # no token at all: the same for every island
            raise
        outcome.code, outcome.message = error_code(err) or "AuthorizationFailed", error_message(err)
        outcome.hint = _failure_hint(outcome.code, outcome.message, action, spec, stack, found)
    except HttpResponseError as err:
        outcome.code = error_code(err) or f"HTTP {getattr(err, 'status_code', '?')}"
        outcome.message = error_message(err)
        outcome.hint = _failure_hint(outcome.code, outcome.message or "", action, spec, stack, found)
    outcome.seconds = time.monotonic() - started
    return outcome


def _failure_hint(code: str, message: str, action: str, spec: ClusterSpec, stack: str, found: _Set) -> str:
    """What to do about one island's failed stop/start.

    What the code means comes from remedies.py, the one table `up` uses too; this adds only what the
    island says: its size, zone and placement group, and that a re-run retries just the islands that
    failed. A code remedies knows but gives no kind we word here gets its generic advice.
    """
    remedy = remedies.remedy_for("TooManyRequests" if code == "HTTP 429" else code, message)
    if remedy is None:
        return (
            f"see the activity log of scale set {found.name}; running the command again retries this island"
        )
    wording = _ISLAND_WORDING.get(remedy.kind)
    if wording is not None:
        return wording(_IslandFailure(spec, stack, found, action))
    return f"{remedy.what.rstrip('.')}: {remedy.for_stack(stack, action)}"


@dataclass(frozen=True)
class _IslandFailure:
    """Where an island's stop/start failed, in the words its hint needs."""

    spec: ClusterSpec
    stack: str
    found: _Set
    action: str

    @property
    def size(self) -> str:
        return str((self.found.body.get("sku") or {}).get("name") or "this size")

    @property
    def where(self) -> str:
        return self.spec.location + (f" zone {self.spec.zone}" if self.spec.zone else "")

    @property
    def island(self) -> str:
        return f"{self.found.pool}/{self.found.island}"


def _capacity(f: _IslandFailure) -> str:
    return (
        f"Azure has no capacity for {f.size} in {f.where} right now. Island {f.island} is one placement "
        f"group and is allocated as a whole: retry later with `azcluster start {f.stack}` (islands already "
        "running are left as they are), or allocate from a capacity reservation "
        "(pools[].capacity_reservation_group_id), or move the pool to another zone or region "
        f"(`azcluster preflight {f.stack}` lists where {f.size} is offered)"
    )


def _constraints(f: _IslandFailure) -> str:
    zone = f"zone {f.spec.zone}, " if f.spec.zone else ""
    return (
        f"Azure cannot meet all the constraints on island {f.island} at once (size {f.size}, {zone}"
        "single placement group). Retry later, or relax one: drop `zone:`, or use a capacity reservation"
    )


def _quota(f: _IslandFailure) -> str:
    return (
        f"the vCPU quota for {f.size} in {f.spec.location} is exhausted; `azcluster preflight {f.stack}` "
        "gives the exact increase to request"
    )


def _restricted(f: _IslandFailure) -> str:
    return (
        f"{f.size} is restricted for this subscription in {f.where}; `azcluster preflight {f.stack}` lists "
        "where it is offered, or ask Azure support to enable it"
    )


def _throttled(_f: _IslandFailure) -> str:
    return "Azure Resource Manager is throttling the subscription; wait a minute and run it again"


def _not_found(f: _IslandFailure) -> str:
    return f"scale set {f.found.name} disappeared while {f.action} ran; run `azcluster status {f.stack}`"


def _permission(f: _IslandFailure) -> str:
    verb = {"stop": "deallocate", "start": "start"}.get(f.action, f.action)
    return (
        f"the signed-in identity needs Virtual Machine Contributor (or Contributor) on resource group "
        f"{f.spec.resource_group_name} to {verb} its scale sets"
    )


_ISLAND_WORDING: dict[str, Callable[[_IslandFailure], str]] = {
    remedies.CAPACITY: _capacity,
    remedies.CONSTRAINTS: _constraints,
    remedies.QUOTA: _quota,
    remedies.RESTRICTED: _restricted,
    remedies.THROTTLED: _throttled,
    remedies.NOT_FOUND: _not_found,
    remedies.PERMISSION: _permission,
}
"""Hints for a failed island, by remedies' kind: a new code of a known kind is worded here at once."""


def _with_progress(
    sets: list[_Set],
    work: Callable[[_Set, Callable[[str], None]], IslandOutcome],
    action: str,
    progress: bool,
) -> list[IslandOutcome]:
    """Run `work` on every island in parallel, with a live line per island on stderr."""

    from .render import console

    verb = {"stop": "deallocating", "start": "starting"}[action]
    if not progress:
        return _parallel(lambda found: work(found, lambda _text: None), sets)
    with _task_progress(console) as bar:
        tasks = {
            found.name: bar.add_task(
                f"{verb} {found.pool}/{found.island} ({found.name})", total=1, state="sending"
            )
            for found in sets
        }

        def tracked(found: _Set) -> IslandOutcome:
            task = tasks[found.name]
            outcome = work(found, lambda text: bar.update(task, state=text))
            bar.update(
                task, completed=1, state="[green]done[/]" if outcome.ok else f"[bold red]{outcome.code}[/]"
            )
            return outcome

        return _parallel(tracked, sets)


def _parallel(work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(items))) as pool:
        return list(pool.map(work, items))


def print_operation(report: OperationReport) -> None:
    from .render import console

    verb = {"stop": "deallocated", "start": "started"}[report.action]
    for outcome in report.islands:
        where = f"{outcome.pool}/{outcome.island} ({outcome.scale_set})"
        if outcome.ok:
            console.print(f"[green]{verb}[/] {where} in {outcome.seconds:.0f}s")
        else:
            console.print(f"[bold red]failed[/] {where}: {outcome.code}: {outcome.message}")
            if outcome.hint:
                console.print(f"  [dim]hint:[/] {outcome.hint}")
    failed = sum(not outcome.ok for outcome in report.islands)
    if failed:
        console.print(
            f"[bold red]{failed} of {len(report.islands)} island(s) failed;[/] the others stay {verb}"
        )


# --- hosts -----------------------------------------------------------------------------------------


def hostfiles(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    *,
    island: int | None = None,
    pool: str | None = None,
    client: Any = None,
) -> list[Hostfile]:
    """One hostfile per InfiniBand island: the running nodes' private IPs, in instance order.

    `client`: the command's Compute client when it has one (so `hosts --install` signs in once).
    """
    from .azure import azure_errors, compute_client

    client = client or compute_client(ctx)
    with azure_errors(ctx, f"listing the scale sets of {spec.name} in {spec.resource_group_name}"):
        sets = find_scale_sets(client, spec)
    _require(sets, spec, stack)
    chosen = [s for s in sets if (pool is None or s.pool == pool) and (island is None or s.island == island)]
    if not chosen:
        have = ", ".join(f"{s.pool}/{s.island}" for s in sets)
        wanted = "/".join(str(x) for x in (pool, island) if x is not None)
        raise AzclusterError(
            f"no island {wanted} in cluster {spec.name}", f"islands (pool/index): {have}", EXIT_USAGE
        )

    def read(found: _Set) -> Hostfile:
        with azure_errors(ctx, f"reading the nodes of scale set {found.name}"):
            data = read_island(client, ctx, spec, found)
        gpu = catalog.find_size(data.size)
        running = [n for n in data.nodes if n.power_state == "running" and n.private_ip]
        others = [n for n in data.nodes if n not in running]
        return Hostfile(found.pool, found.island, found.name, gpu.gpus if gpu else 1, running, others)

    return _parallel(read, chosen)


def note_excluded(files: list[Hostfile]) -> None:
    """Say on stderr which islands' hostfiles leave nodes out (not running), so nobody counts on them."""
    from .render import console

    for hostfile in files:
        if hostfile.excluded:
            console.print(
                f"[yellow]note:[/] {len(hostfile.excluded)} node(s) of {hostfile.pool}/{hostfile.island} "
                "are not running and are left out"
            )


def print_hostfiles(files: list[Hostfile], fmt: str = "plain", out_dir: Path | None = None) -> None:
    """Hostfiles on stdout (a `# pool/island` comment before each), or one file per island in out_dir."""
    import sys

    from .render import console

    note_excluded(files)
    for hostfile in files:
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"hostfile.{hostfile.pool}.{hostfile.island}"
            path.write_text(hostfile.text(fmt), encoding="utf-8")
            console.print(f"wrote {path} ({len(hostfile.hosts)} hosts)")
            continue
        if len(files) > 1:
            sys.stdout.write(
                f"# pool {hostfile.pool} island {hostfile.island} ({hostfile.scale_set}): "
                f"{len(hostfile.hosts)} hosts\n"
            )
        sys.stdout.write(hostfile.text(fmt))
    sys.stdout.flush()


def _task_progress(console: Any) -> Any:
    """One line per parallel Azure operation: spinner, what, its latest state, elapsed time (stderr)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[dim]{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )

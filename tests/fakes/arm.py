"""A loopback HTTPS fake of Azure Resource Manager, for driving the real azure-mgmt-compute client.

It speaks the wire protocol the SDK expects, not a mock of the SDK: bearer tokens over TLS (a throwaway CA
from trustme), `api-version` on every call, `$filter` on resource SKUs, `$expand=instanceView` on scale-set
VMs, `nextLink` paging, 202 + `Azure-AsyncOperation` + `Location` for long-running POSTs polled to
Succeeded or Failed, ARM error bodies (`{"error": {"code", "message"}}`), and scripted faults (429 with
Retry-After, 500 once). Run Command on a scale-set VM runs `cat FILE` lines against the instance's `files`
and answers as Azure does: 202, polled, then the RunCommandResult from the final GET of `Location`. Run
Command on a plain VM (the login node) runs the script for real, the way the Linux extension does (saved
as script.sh, run by /bin/bash), with AZC_ROOT set to that VM's own directory, so what it wrote can be
read back from `LoginVm.root`.
Bodies are built from fixtures/ (trimmed official REST API examples; each file's `_source` and
fixtures/README.md name where they come from).

Tests arrange the world on `FakeArm` (sizes, usages, clusters, faults) and read what the client asked
for from `FakeArm.requests`.
"""

from __future__ import annotations

import atexit
import functools
import http.server
import json
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from .capacity import CapacityModel, allocation_message
from .https import LocalHttpsServer

FIXTURES = Path(__file__).parent / "fixtures"
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"
TOKEN = "fake-arm-token"
VMSS_NIC_API_VERSION = "2018-10-01"
SERVED_API_VERSIONS = {
    "accounts": (
        "2021-06-03-preview",
        "2023-04-03",
        "2023-10-01-preview",
        "2025-05-03-preview",
        "2025-10-03",
        "2025-10-03-preview",
    ),
    "grafana": (
        "2021-09-01-preview",
        "2022-05-01-preview",
        "2022-08-01",
        "2022-10-01-preview",
        "2023-09-01",
        "2023-10-01-preview",
        "2024-10-01",
        "2024-11-01-preview",
        "2025-08-01",
        "2025-09-01-preview",
    ),
}
"""The API versions Azure serves for Microsoft.Monitor/accounts and Microsoft.Dashboard/grafana: the
versions pulumi-azure-native 3 names for AzureMonitorWorkspace and Grafana (its docstrings: the default and
"Other available API versions"), with the earlier previews in azure-rest-api-specs. Any other version is
refused as Resource Manager refuses it: 400 NoRegisteredProviderFound naming the supported ones."""
RUN_COMMAND_TAIL = 4096  # the Linux Run Command extension returns the last 4 KiB of stdout and of stderr


def fixture(name: str) -> Any:
    data = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data.pop("_source", None)
    return data


def _fill(template: Any, values: dict[str, str]) -> Any:
    """Replace `{key}` placeholders in every string of a fixture template."""
    if isinstance(template, dict):
        return {key: _fill(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(item, values) for item in template]
    if isinstance(template, str):
        for key, value in values.items():
            template = template.replace("{" + key + "}", value)
        return template
    return template


@dataclass
class Instance:
    instance_id: str
    computer_name: str
    private_ip: str
    power: str = "running"  # running | deallocated | stopped | starting | deallocating
    health: str | None = None  # HealthState/healthy, HealthState/unhealthy, ... or None (no extension)
    health_message: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # what `cat PATH` finds on the node
    run_command_refusal: tuple[int, str, str] | None = None  # (status, code, message) refusing the POST
    run_command_error: tuple[str, str] | None = None  # (code, message) the Run Command operation ends with
    provisioning: str = "Succeeded"  # Succeeded | Failed (capacity.py: an instance Azure could not place)
    provisioning_error: tuple[str, str] | None = None  # (code, message) of a Failed instance


@dataclass
class ScaleSet:
    name: str
    resource_group: str
    location: str
    size: str
    tags: dict[str, str]
    instances: list[Instance]
    zones: list[str] = field(default_factory=list)
    priority: str = "Regular"
    start_error: tuple[str, str] | None = None  # (code, message) the start LRO ends with
    deallocate_error: tuple[str, str] | None = None
    accept_error: tuple[int, str, str] | None = None  # (status, code, message) refusing the POST itself
    provisioning: str = "Succeeded"  # the scale set's provisioningState (Updating while it scales)
    computer_prefix: str = ""  # computer names of new instances: prefix + instance id in hex (Uniform sets)
    subnet_prefix: str = "10.42.0."
    first_host: int = 4
    last_id: int = -1  # Azure never reuses a deleted instance's id

    @property
    def zone(self) -> str | None:
        return self.zones[0] if self.zones else None

    def new_instance(self) -> Instance:
        """The next instance a scale-out adds: ids keep counting up, as Azure's do."""
        number = max([self.last_id, *(int(i.instance_id) for i in self.instances)]) + 1
        self.last_id = number
        return Instance(
            instance_id=str(number),
            computer_name=f"{self.computer_prefix}{number:06X}",
            private_ip=f"{self.subnet_prefix}{self.first_host + number}",
        )


@dataclass
class LoginVm:
    name: str
    resource_group: str
    location: str
    size: str
    tags: dict[str, str]
    private_ip: str
    power: str = "running"
    root: Path | None = None  # the VM's "/" for Run Command scripts (AZC_ROOT); set by the fake
    run_command_refusal: tuple[int, str, str] | None = None  # (status, code, message) refusing the POST
    run_command_error: tuple[str, str] | None = None  # (code, message) the Run Command operation ends with
    scripts: list[list[str]] = field(default_factory=list)  # every script Run Command ran here, in order
    programs: Path | None = None  # a directory of commands installed on the VM (sinfo, sbatch...), on PATH


@dataclass
class Fault:
    method: str
    path_contains: str
    status: int
    headers: dict[str, str]
    body: Any
    times: int


@dataclass
class Stall:
    """Requests to hold before answering: for `seconds`, or (None) never answered at all."""

    method: str
    path_contains: str
    seconds: float | None
    times: int
    held: list[str] = field(default_factory=list)  # the path of each request held


@dataclass
class Operation:
    op_id: str
    location: str
    polls_left: int
    error: tuple[str, str] | None
    apply: Any
    done: bool = False
    result: Any = None  # the body of the final GET on Location (Run Command's RunCommandResult)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float
    body: Any = None  # the JSON the client sent, if any


class FakeArm:
    """The state of the fake Azure: what exists, what fails, what was asked."""

    def __init__(self, subscription_id: str = SUBSCRIPTION, token: str = TOKEN) -> None:
        self.subscription_id = subscription_id
        self.token = token
        self.base_url = ""  # set by the server once it listens
        self.workdir: Path | None = None  # set by the server: where plain VMs get their root directories
        self.skus: list[dict[str, Any]] = fixture("skus.json")["value"]
        self.usages: dict[str, list[dict[str, Any]]] = {
            loc: page["value"] for loc, page in fixture("usages.json").items()
        }
        self.resource_groups: set[str] = set()
        self.scale_sets: dict[tuple[str, str], ScaleSet] = {}
        self.vms: dict[tuple[str, str], LoginVm] = {}
        self.workspaces: dict[tuple[str, str], str] = {}  # Azure Monitor workspaces: their query endpoint
        self.grafanas: dict[tuple[str, str], str] = {}  # Azure Managed Grafana: its endpoint
        self.faults: list[Fault] = []
        self.stalls: list[Stall] = []
        self.stopped = threading.Event()  # set when the server stops: requests held for ever end then
        self.operations: dict[str, Operation] = {}
        self.requests: list[Recorded] = []
        self.page_size = 2  # scale-set VMs and NICs come back this many per page, joined by nextLink
        self.sku_page_size = 4
        self.lro_polls = 1  # InProgress answers before an operation ends
        self.lro_retry_after: str | None = None
        # Run Command answers: "linux" (RunShellScript on Linux: one status packing stdout and stderr) or
        # "example" (the REST example's two statuses, ComponentStatus/StdOut and ComponentStatus/StdErr).
        self.run_command_output = "linux"
        self.run_command_location_only = False  # 202 with Location only, exactly as the REST example
        self.run_command_polls: int | None = None  # InProgress answers for Run Command (None: lro_polls)
        self.capacity = CapacityModel()  # what Azure can place per size and zone (capacity.py)
        # Capacity reservation groups by (resource group, name): their reservations, each as the REST API
        # lists it (add_reservation).
        self.reservation_groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.lock = threading.RLock()

    # -- arranging the world ---------------------------------------------------------------------------

    def add_resource_group(self, name: str) -> None:
        self.resource_groups.add(name.lower())

    def add_scale_set(
        self,
        resource_group: str,
        name: str,
        size: str,
        nodes: int,
        *,
        tags: dict[str, str] | None = None,
        location: str = "eastus",
        subnet_prefix: str = "10.42.0.",
        first_host: int = 4,
        computer_prefix: str | None = None,
        **kwargs: Any,
    ) -> ScaleSet:
        self.add_resource_group(resource_group)
        prefix = computer_prefix or name.replace("-", "")[:9]
        instances = [
            Instance(
                instance_id=str(i),
                computer_name=f"{prefix}{i:06X}",
                private_ip=f"{subnet_prefix}{first_host + i}",
            )
            for i in range(nodes)
        ]
        scale_set = ScaleSet(name, resource_group, location, size, dict(tags or {}), instances, **kwargs)
        scale_set.computer_prefix, scale_set.subnet_prefix, scale_set.first_host = (
            prefix,
            subnet_prefix,
            first_host,
        )
        self.scale_sets[(resource_group.lower(), name.lower())] = scale_set
        return scale_set

    def add_cluster(
        self,
        cluster: str,
        pools: dict[str, tuple[str, list[int]]],
        *,
        resource_group: str | None = None,
        login: bool = True,
        location: str = "eastus",
    ) -> list[ScaleSet]:
        """A deployed cluster as azcluster tags it: one scale set per pool island, and a login VM.

        `pools` maps pool name -> (size, nodes per island). Tag names are written out here, not imported,
        so the fake checks the contract in components/tags.py rather than echoing it.
        """
        rg = resource_group or f"{cluster}-rg"
        sets = []
        for index, (pool, (size, islands)) in enumerate(pools.items()):
            for island, nodes in enumerate(islands):
                tags = {
                    "azcluster-cluster": cluster,
                    "azcluster-pool": pool,
                    "azcluster-island": str(island),
                    "azcluster-role": "compute",
                    "owner": "ml-infra",
                }
                sets.append(
                    self.add_scale_set(
                        rg,
                        f"{cluster}-{pool}-{island}",
                        size,
                        nodes,
                        tags=tags,
                        location=location,
                        subnet_prefix=f"10.42.{index * 16 + island}.",
                        computer_prefix=f"{pool}{island}",
                    )
                )
        if login:
            login_tags = {"azcluster-cluster": cluster, "azcluster-role": "login"}
            self.add_login_vm(rg, f"{cluster}-login", "Standard_D4s_v5", login_tags, "10.42.200.4")
        return sets

    def add_login_vm(
        self, resource_group: str, name: str, size: str, tags: dict[str, str], ip: str
    ) -> LoginVm:
        self.add_resource_group(resource_group)
        vm = LoginVm(name, resource_group, "eastus", size, dict(tags), ip)
        self.vms[(resource_group.lower(), name.lower())] = vm
        return vm

    def add_workspace(self, resource_group: str, name: str, query_endpoint: str) -> None:
        """An Azure Monitor workspace whose Prometheus query API answers at `query_endpoint`."""
        self.workspaces[(resource_group.lower(), name.lower())] = query_endpoint

    def add_grafana(self, resource_group: str, name: str, endpoint: str) -> None:
        """An Azure Managed Grafana whose HTTP API answers at `endpoint`."""
        self.grafanas[(resource_group.lower(), name.lower())] = endpoint

    def add_reservation(
        self, rg: str, group: str, name: str, size: str, capacity: int, zones: list[str] | None = None
    ) -> dict[str, Any]:
        """A capacity reservation in group `group` (created with it), shaped like Microsoft's example for
        CapacityReservations_ListByCapacityReservationGroup (REST API, Compute 2024-03-01): `sku` {name,
        capacity}, `zones`, `properties` {reservationId, provisioningState, virtualMachinesAssociated}."""
        self.add_resource_group(rg)
        group_id = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Compute/"
            f"capacityReservationGroups/{group}"
        )
        body: dict[str, Any] = {
            "name": name,
            "id": f"{group_id}/capacityReservations/{name}",
            "type": "Microsoft.Compute/capacityReservationGroups/capacityReservations",
            "location": "eastus",
            "sku": {"name": size, "capacity": capacity},
            "properties": {
                "reservationId": f"{abs(hash(name)) % 10**8:08d}-0000-0000-0000-000000000000",
                "provisioningState": "Succeeded",
                "virtualMachinesAssociated": [],
            },
        }
        if zones:
            body["zones"] = list(zones)
        self.reservation_groups.setdefault((rg.lower(), group.lower()), []).append(body)
        return body

    def usage(self, location: str, name: str) -> dict[str, Any]:
        for item in self.usages[location]:
            if item["name"]["value"] == name:
                return item
        raise KeyError(name)

    def sku(self, name: str, location: str) -> dict[str, Any]:
        for item in self.skus:
            if item["name"] == name and location in item["locations"]:
                return item
        raise KeyError((name, location))

    def inject(
        self,
        method: str,
        path_contains: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
        code: str | None = None,
        message: str = "",
    ) -> None:
        """Answer the next `times` matching requests with `status` (before any other handling).

        `body` as bytes is sent as it is (with the headers given): what a proxy or a half-written answer
        looks like, e.g. an HTML error page where JSON was expected.
        """
        if body is None and status >= 400:
            body = {"error": {"code": code or _default_code(status), "message": message or "injected fault"}}
        self.faults.append(
            Fault(method.upper(), path_contains.lower(), status, dict(headers or {}), body, times)
        )

    def stall(self, method: str, path_contains: str, seconds: float | None = None, times: int = 1) -> Stall:
        """Hold the next `times` matching requests: accepted and read, then answered after `seconds`, or
        (None) never: a Resource Manager front end that takes the request and says nothing."""
        stall = Stall(method.upper(), path_contains.lower(), seconds, times)
        with self.lock:
            self.stalls.append(stall)
        return stall

    def take_stall(self, method: str, raw_path: str) -> Stall | None:
        path = urlsplit(raw_path).path
        with self.lock:
            for stall in self.stalls:
                if stall.times > 0 and stall.method == method and stall.path_contains in path.lower():
                    stall.times -= 1
                    stall.held.append(path)
                    return stall
        return None

    def calls(self, method: str, path_contains: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_contains.lower() in r.path.lower()]

    def run_commands(self) -> list[Recorded]:
        """Every Run Command POST the client sent to scale-set VMs."""
        return [
            r
            for r in self.calls("POST", "/virtualMachineScaleSets/")
            if r.path.lower().endswith("/runcommand")
        ]

    def vm_run_commands(self, name: str | None = None) -> list[Recorded]:
        """Every Run Command POST the client sent to plain VMs (the login node), or to VM `name`."""
        return [
            r
            for r in self.calls("POST", "/providers/Microsoft.Compute/virtualMachines/")
            if r.path.lower().endswith("/runcommand")
            and (name is None or r.path.lower().endswith(f"/{name.lower()}/runcommand"))
        ]

    # -- serving ---------------------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        try:
            sent = json.loads(body) if body else None
        except ValueError:
            sent = body.decode("utf-8", "replace")
        with self.lock:
            self.requests.append(Recorded(method, path, dict(query), dict(headers), time.monotonic(), sent))
            fault = self._take_fault(method, path)
        query["__path__"] = [path]
        query["__body__"] = [sent]
        if fault:
            return fault.status, fault.headers, fault.body
        if headers.get("authorization") != f"Bearer {self.token}":
            return (
                401,
                {},
                {"error": {"code": "AuthenticationFailed", "message": "missing or wrong bearer token"}},
            )
        if "api-version" not in query:
            return (
                400,
                {},
                {"error": {"code": "MissingApiVersionParameter", "message": "api-version required"}},
            )
        lowered = path.lower()
        prefix = f"/subscriptions/{self.subscription_id}"
        if not lowered.startswith(prefix):
            sub = lowered.split("/")[2] if lowered.count("/") > 1 else ""
            return 404, {}, _error("SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        rest = path[len(prefix) :]
        for pattern, verb, handler in self._routes():
            match = re.fullmatch(pattern, rest, flags=re.IGNORECASE)
            if match and verb == method:
                with self.lock:
                    return handler(query, **match.groupdict())
        return 404, {}, _error("InvalidResourceType", f"no route for {method} {path}")

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.path_contains in path.lower():
                fault.times -= 1
                return fault
        return None

    def _routes(self) -> list[tuple[str, str, Any]]:
        rg = r"/resourceGroups/(?P<rg>[^/]+)"
        vmss = rg + r"/providers/Microsoft\.Compute/virtualMachineScaleSets"
        return [
            (r"/providers/Microsoft\.Compute/skus", "GET", self._skus),
            (r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/usages", "GET", self._usages),
            (
                r"/providers/Microsoft\.Compute/locations/(?P<loc>[^/]+)/operations/(?P<op>[^/]+)",
                "GET",
                self._op,
            ),
            (
                rg + r"/providers/Microsoft\.Compute/capacityReservationGroups/(?P<group>[^/]+)"
                r"/capacityReservations",
                "GET",
                self._reservations,
            ),
            (vmss, "GET", self._vmss_list),
            (vmss + r"/(?P<name>[^/]+)", "GET", self._vmss_get),
            (vmss + r"/(?P<name>[^/]+)/instanceView", "GET", self._vmss_instance_view),
            (vmss + r"/(?P<name>[^/]+)/virtualMachines", "GET", self._vmss_vms),
            (vmss + r"/(?P<name>[^/]+)/networkInterfaces", "GET", self._vmss_nics),
            (vmss + r"/(?P<name>[^/]+)/(?P<action>deallocate|start)", "POST", self._vmss_action),
            (vmss + r"/(?P<name>[^/]+)", "PATCH", self._vmss_update),
            (vmss + r"/(?P<name>[^/]+)/delete", "POST", self._vmss_delete_instances),
            (
                vmss + r"/(?P<name>[^/]+)/virtualMachines/(?P<instance>[^/]+)/runCommand",
                "POST",
                self._run_command,
            ),
            (rg + r"/providers/Microsoft\.Compute/virtualMachines", "GET", self._vm_list),
            (
                rg + r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)/runCommand",
                "POST",
                self._vm_run_command,
            ),
            (
                rg + r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)/instanceView",
                "GET",
                self._vm_iv,
            ),
            (rg + r"/providers/Microsoft\.Network/networkInterfaces/(?P<name>[^/]+)", "GET", self._nic_get),
            (rg + r"/providers/Microsoft\.Monitor/accounts/(?P<name>[^/]+)", "GET", self._workspace_get),
            (rg + r"/providers/Microsoft\.Dashboard/grafana/(?P<name>[^/]+)", "GET", self._grafana_get),
        ]

    # -- routes ----------------------------------------------------------------------------------------

    def _skus(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        items = self.skus
        flt = (query.get("$filter") or [""])[0]
        if flt:
            match = re.fullmatch(r"\s*location eq '([^']+)'\s*", flt)
            if not match:
                return 400, {}, _error("InvalidFilter", "Only the location filter is supported.")
            location = match.group(1).lower()
            items = [s for s in items if location in [loc.lower() for loc in s["locations"]]]
        return self._page(items, query, self.sku_page_size)

    def _usages(self, query: dict[str, list[str]], loc: str) -> tuple[int, dict[str, str], Any]:
        if loc.lower() not in self.usages:
            return 404, {}, _error("LocationNotAvailableForResourceType", f"location {loc} unknown")
        return 200, {}, {"value": self.usages[loc.lower()], "nextLink": None}

    def _reservations(self, query: dict[str, list[str]], rg: str, group: str) -> tuple[int, dict, Any]:
        missing = self._group(rg)
        if missing:
            return missing
        found = self.reservation_groups.get((rg.lower(), group.lower()))
        if found is None:
            return (
                404,
                {},
                _error(
                    "ResourceNotFound",
                    f"The Resource 'Microsoft.Compute/capacityReservationGroups/{group}' under resource "
                    f"group '{rg}' was not found.",
                ),
            )
        return self._page(found, query, self.page_size)

    def _group(self, rg: str) -> tuple[int, dict[str, str], Any] | None:
        if rg.lower() not in self.resource_groups:
            return 404, {}, _error("ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return None

    def _scale_set(self, rg: str, name: str) -> ScaleSet | tuple[int, dict[str, str], Any]:
        missing = self._group(rg)
        if missing:
            return missing
        found = self.scale_sets.get((rg.lower(), name.lower()))
        if not found:
            return (
                404,
                {},
                _error(
                    "ResourceNotFound",
                    f"The Resource 'Microsoft.Compute/virtualMachineScaleSets/{name}' under resource group "
                    f"'{rg}' was not found.",
                ),
            )
        return found

    def _vmss_list(self, query: dict[str, list[str]], rg: str) -> tuple[int, dict[str, str], Any]:
        missing = self._group(rg)
        if missing:
            return missing
        items = [self._vmss_body(s) for (g, _), s in self.scale_sets.items() if g == rg.lower()]
        return 200, {}, {"value": items}

    def _vmss_get(self, query: dict[str, list[str]], rg: str, name: str) -> tuple[int, dict[str, str], Any]:
        found = self._scale_set(rg, name)
        return found if isinstance(found, tuple) else (200, {}, self._vmss_body(found))

    def _vmss_instance_view(self, query: dict[str, list[str]], rg: str, name: str) -> tuple[int, dict, Any]:
        found = self._scale_set(rg, name)
        if isinstance(found, tuple):
            return found
        body = fixture("vmss_instance_view.json")
        body["virtualMachine"]["statusesSummary"][0]["count"] = len(found.instances)
        return 200, {}, body

    def _vmss_vms(self, query: dict[str, list[str]], rg: str, name: str) -> tuple[int, dict[str, str], Any]:
        found = self._scale_set(rg, name)
        if isinstance(found, tuple):
            return found
        expand = (query.get("$expand") or [""])[0].lower() == "instanceview"
        items = [self._vm_body(found, inst, expand) for inst in found.instances]
        return self._page(items, query, self.page_size)

    def _vmss_nics(self, query: dict[str, list[str]], rg: str, name: str) -> tuple[int, dict[str, str], Any]:
        if query["api-version"][0] != VMSS_NIC_API_VERSION:
            return (
                400,
                {},
                _error(
                    "NoRegisteredProviderFound",
                    f"No registered resource provider found for API version '{query['api-version'][0]}' "
                    f"(supported: {VMSS_NIC_API_VERSION})",
                ),
            )
        found = self._scale_set(rg, name)
        if isinstance(found, tuple):
            return found
        items = [self._vmss_nic_body(found, inst) for inst in found.instances]
        return self._page(items, query, self.page_size)

    def _vmss_action(
        self, query: dict[str, list[str]], rg: str, name: str, action: str
    ) -> tuple[int, dict[str, str], Any]:
        found = self._scale_set(rg, name)
        if isinstance(found, tuple):
            return found
        if found.accept_error:
            status, code, message = found.accept_error
            return status, {}, _error(code, message)
        action = action.lower()
        error = found.start_error if action == "start" else found.deallocate_error
        target = "running" if action == "start" else "deallocated"
        transient = "starting" if action == "start" else "deallocating"
        # VirtualMachineScaleSetVMInstanceIDs: `instanceIds` names the VMs; no body (or none) means all.
        sent = query["__body__"][0]
        wanted = sent.get("instanceIds") if isinstance(sent, dict) else None
        chosen = [i for i in found.instances if wanted is None or i.instance_id in wanted]
        for inst in chosen:
            inst.power = transient

        def apply(ok: bool, instances: list[Instance] = chosen) -> None:
            for inst in instances:
                inst.power = target if ok else ("deallocated" if action == "start" else "running")

        operation = Operation(str(uuid.uuid4()), found.location, self.lro_polls, error, apply)
        return self._accepted(operation, query)

    def _vmss_update(
        self, query: dict[str, list[str]], rg: str, name: str
    ) -> tuple[int, dict[str, str], Any]:
        """VirtualMachineScaleSets_Update (PATCH): a new `sku.capacity` scales out or in.

        A scale-out places what the capacity model allows now (capacity.py): placed instances Succeeded
        and running, the rest Failed with the allocation error, which the operation also ends with.
        Answers 200 with the scale set (provisioningState Updating) and Azure-AsyncOperation, as Azure's
        PATCH does (VirtualMachineScaleSets_Update: 200 only, long-running).
        """
        found = self._scale_set(rg, name)
        if isinstance(found, tuple):
            return found
        sent = query["__body__"][0]
        capacity = (sent.get("sku") or {}).get("capacity") if isinstance(sent, dict) else None
        error: tuple[str, str] | None = None
        if isinstance(capacity, int) and capacity > len(found.instances):
            wanted = capacity - len(found.instances)
            placed, code = self.capacity.place(found.size, found.zone, wanted)
            fresh = []
            for _ in range(wanted):  # one at a time: each new id counts on from the last
                fresh.append(found.new_instance())
                found.instances.append(fresh[-1])
            if code is not None:
                resource = (
                    f"/subscriptions/{self.subscription_id}/resourceGroups/{found.resource_group}/providers/"
                    f"Microsoft.Compute/virtualMachineScaleSets/{found.name}"
                )
                message = allocation_message(
                    code,
                    resource=resource,
                    size=found.size,
                    location=found.location,
                    zone=found.zone,
                    sub=self.subscription_id,
                )
                error = (code, message)
                for inst in fresh[placed:]:
                    inst.provisioning, inst.provisioning_error, inst.power = "Failed", error, "deallocated"
        elif isinstance(capacity, int) and capacity < len(found.instances):
            doomed = sorted(found.instances, key=lambda i: int(i.instance_id))[capacity:]
            self._remove_instances(found, doomed)
        found.provisioning = "Updating"

        def apply(ok: bool, scale_set: ScaleSet = found) -> None:
            scale_set.provisioning = "Succeeded" if ok else "Failed"

        operation = Operation(str(uuid.uuid4()), found.location, self.lro_polls, error, apply)
        self.operations[operation.op_id] = operation
        base = f"{self.base_url}/subscriptions/{self.subscription_id}/providers/Microsoft.Compute/locations/"
        version = query["api-version"][0]
        status_url = f"{base}{found.location}/operations/{operation.op_id}?p=fake&api-version={version}"
        headers = {"Azure-AsyncOperation": status_url}
        if self.lro_retry_after is not None:
            headers["Retry-After"] = self.lro_retry_after
        return 200, headers, self._vmss_body(found)

    def _vmss_delete_instances(
        self, query: dict[str, list[str]], rg: str, name: str
    ) -> tuple[int, dict[str, str], Any]:
        """VirtualMachineScaleSets_DeleteInstances (POST .../delete, body `instanceIds`): 202, polled; the
        instances go and `sku.capacity` drops by as many. Unknown ids are refused as Azure does."""
        found = self._scale_set(rg, name)
        if isinstance(found, tuple):
            return found
        sent = query["__body__"][0]
        wanted = sent.get("instanceIds") if isinstance(sent, dict) else None
        if not wanted:
            return 400, {}, _error("InvalidParameter", "Required parameter 'instanceIds' is missing (null).")
        known = {inst.instance_id: inst for inst in found.instances}
        unknown = [i for i in wanted if i not in known]
        if unknown:
            return 400, {}, _error("InvalidParameter", f"Instance ids {', '.join(unknown)} are not valid.")
        doomed = [known[i] for i in wanted]

        def apply(ok: bool, scale_set: ScaleSet = found, instances: list[Instance] = doomed) -> None:
            if ok:
                self._remove_instances(scale_set, instances)

        operation = Operation(str(uuid.uuid4()), found.location, self.lro_polls, None, apply)
        return self._accepted(operation, query)

    def _remove_instances(self, scale_set: ScaleSet, doomed: list[Instance]) -> None:
        """Instances leave the set; the hosts of those that were placed are free again."""
        gone = {inst.instance_id for inst in doomed}
        placed = sum(1 for inst in doomed if inst.provisioning != "Failed")
        scale_set.instances = [inst for inst in scale_set.instances if inst.instance_id not in gone]
        self.capacity.release(scale_set.size, scale_set.zone, placed)

    def _accepted(
        self, operation: Operation, query: dict[str, list[str]], *, location_only: bool = False
    ) -> tuple[int, dict[str, str], Any]:
        """202 for a long-running POST: Azure-AsyncOperation (unless location_only) and Location."""
        self.operations[operation.op_id] = operation
        base = f"{self.base_url}/subscriptions/{self.subscription_id}/providers/Microsoft.Compute/locations/"
        version = query["api-version"][0]
        status_url = f"{base}{operation.location}/operations/{operation.op_id}?p=fake&api-version={version}"
        headers = {"Location": status_url + "&monitor=true"}
        if not location_only:
            headers["Azure-AsyncOperation"] = status_url
        if self.lro_retry_after is not None:
            headers["Retry-After"] = self.lro_retry_after
        return 202, headers, None

    def _run_command(
        self, query: dict[str, list[str]], rg: str, name: str, instance: str
    ) -> tuple[int, dict[str, str], Any]:
        """VirtualMachineScaleSetVMs_RunCommand: accept, run the script on the instance, poll, answer."""
        found = self._scale_set(rg, name)
        if isinstance(found, tuple):
            return found
        inst = next((i for i in found.instances if i.instance_id == instance), None)
        if inst is None:
            return 404, {}, _error("NotFound", f"The entity was not found: instance {instance} of {name}.")
        refused = self._run_command_refused(query, inst.run_command_refusal, inst.power)
        if refused:
            return refused
        stdout, stderr = _run_script(inst, _script(query))
        return self._run_command_accepted(query, found.location, stdout, stderr, inst.run_command_error)

    def _vm_run_command(self, query: dict[str, list[str]], rg: str, name: str) -> tuple[int, dict, Any]:
        """VirtualMachines_RunCommand (runCommandExamples/VirtualMachineRunCommand.json): run it for real."""
        missing = self._group(rg)
        if missing:
            return missing
        vm = self.vms.get((rg.lower(), name.lower()))
        if vm is None:
            return (
                404,
                {},
                _error(
                    "ResourceNotFound",
                    f"The Resource 'Microsoft.Compute/virtualMachines/{name}' under resource group '{rg}' "
                    "was not found.",
                ),
            )
        refused = self._run_command_refused(query, vm.run_command_refusal, vm.power)
        if refused:
            return refused
        lines = _script(query)
        vm.scripts.append(lines)
        stdout, stderr = self._run_on_vm(vm, lines)
        return self._run_command_accepted(query, vm.location, stdout, stderr, vm.run_command_error)

    def _run_command_refused(
        self, query: dict[str, list[str]], refusal: tuple[int, str, str] | None, power: str
    ) -> tuple[int, dict[str, str], Any] | None:
        """How Azure refuses a Run Command POST before running anything, or None when it accepts."""
        body = query["__body__"][0]
        if not isinstance(body, dict) or not body.get("commandId"):
            return 400, {}, _error("InvalidParameter", "The value of parameter commandId is invalid.")
        if body["commandId"] != "RunShellScript":
            return 404, {}, _error("NotFound", "The entity was not found in this Azure location.")
        if refusal:
            status, code, message = refusal
            return status, {}, _error(code, message)
        if power != "running":
            return (
                409,
                {},
                _error("OperationNotAllowed", "The operation requires the VM to be running (or set to run)."),
            )
        return None

    def _run_command_accepted(
        self,
        query: dict[str, list[str]],
        location: str,
        stdout: str,
        stderr: str,
        error: tuple[str, str] | None,
    ) -> tuple[int, dict[str, str], Any]:
        """202, polled; the RunCommandResult (last 4 KiB of each stream) from the final GET of Location."""
        template = "run_command_linux.json" if self.run_command_output == "linux" else "run_command.json"
        result = _fill_streams(fixture(template), stdout[-RUN_COMMAND_TAIL:], stderr[-RUN_COMMAND_TAIL:])
        polls = self.lro_polls if self.run_command_polls is None else self.run_command_polls
        operation = Operation(str(uuid.uuid4()), location, polls, error, lambda ok: None, result=result)
        return self._accepted(operation, query, location_only=self.run_command_location_only)

    def vm_root(self, vm: LoginVm) -> Path:
        """The directory that is `/` for scripts run on `vm` (created on first use)."""
        if vm.root is None:
            if self.workdir is None:
                raise RuntimeError("FakeArm.workdir is not set: serve the fake with FakeArmServer")
            vm.root = self.workdir / "vms" / vm.name
        vm.root.mkdir(parents=True, exist_ok=True)
        return vm.root

    def _run_on_vm(self, vm: LoginVm, lines: list[str]) -> tuple[str, str]:
        """Run the script as the Linux extension does: saved as script.sh (0500) in a download directory
        and run by `/bin/bash -c <path>`; AZC_ROOT makes the house's scripts write under `vm.root`."""
        root = self.vm_root(vm)
        work = root / "var/lib/waagent/run-command/download" / str(len(vm.scripts))
        work.mkdir(parents=True, exist_ok=True)
        script = work / "script.sh"
        script.write_text("\n".join(lines), encoding="utf-8")
        script.chmod(0o500)
        proc = subprocess.run(
            ["/bin/bash", "-c", str(script)],
            cwd=work,
            env={"PATH": _vm_path(vm), "AZC_ROOT": str(root), "LC_ALL": "C"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return proc.stdout, proc.stderr

    def _op(self, query: dict[str, list[str]], loc: str, op: str) -> tuple[int, dict[str, str], Any]:
        operation = self.operations.get(op)
        if not operation:
            return 404, {}, _error("NotFound", f"operation {op} not found")
        headers = {"Retry-After": self.lro_retry_after} if self.lro_retry_after is not None else {}
        monitor = (query.get("monitor") or [""])[0] == "true"
        if not operation.done and operation.polls_left > 0:
            operation.polls_left -= 1
            if monitor:
                return 202, headers, None
            body = fixture("async_operation.json")
            body["name"] = op
            return 200, headers, body
        if not operation.done:
            operation.done = True
            operation.apply(operation.error is None)
        if monitor:
            if operation.error:  # ARM's async contract: a failed operation's Location answers 4xx + error
                return 409, {}, _error(*operation.error)
            return 200, {}, operation.result
        body = fixture("async_operation.json")
        body.update(name=op, endTime="2026-01-05T10:01:00.0000000+00:00")
        if operation.error:
            body["status"] = "Failed"
            body["error"] = {"code": operation.error[0], "message": operation.error[1]}
        else:
            body["status"] = "Succeeded"
        return 200, {}, body

    def _workspace_get(self, query: dict[str, list[str]], rg: str, name: str) -> tuple[int, dict, Any]:
        if (refused := _unserved_version(query, "accounts")) is not None:
            return refused
        endpoint = self.workspaces.get((rg.lower(), name.lower()))
        if endpoint is None:
            return (
                404,
                {},
                _error(
                    "ResourceNotFound",
                    f"The Resource 'Microsoft.Monitor/accounts/{name}' under resource group '{rg}' was not "
                    "found.",
                ),
            )
        values = {"subscription": self.subscription_id, "rg": rg, "name": name, "endpoint": endpoint}
        return 200, {}, _fill(fixture("monitor_account.json"), values)

    def _grafana_get(self, query: dict[str, list[str]], rg: str, name: str) -> tuple[int, dict, Any]:
        if (refused := _unserved_version(query, "grafana")) is not None:
            return refused
        endpoint = self.grafanas.get((rg.lower(), name.lower()))
        if endpoint is None:
            return (
                404,
                {},
                _error(
                    "ResourceNotFound",
                    f"The Resource 'Microsoft.Dashboard/grafana/{name}' under resource group '{rg}' was not "
                    "found.",
                ),
            )
        values = {"subscription": self.subscription_id, "rg": rg, "name": name, "endpoint": endpoint}
        return 200, {}, _fill(fixture("grafana.json"), values)

    def _vm_list(self, query: dict[str, list[str]], rg: str) -> tuple[int, dict[str, str], Any]:
        missing = self._group(rg)
        if missing:
            return missing
        items = [self._login_body(vm) for (g, _), vm in self.vms.items() if g == rg.lower()]
        return 200, {}, {"value": items}

    def _vm_iv(self, query: dict[str, list[str]], rg: str, name: str) -> tuple[int, dict[str, str], Any]:
        vm = self.vms.get((rg.lower(), name.lower()))
        if not vm:
            return 404, {}, _error("ResourceNotFound", f"virtual machine {name} not found")
        body = _fill(fixture("vm_instance_view.json"), {"name": vm.name})
        body["statuses"][1] = _power_status(vm.power)
        return 200, {}, body

    def _nic_get(self, query: dict[str, list[str]], rg: str, name: str) -> tuple[int, dict[str, str], Any]:
        for vm in self.vms.values():
            if vm.resource_group.lower() == rg.lower() and f"{vm.name}-nic".lower() == name.lower():
                group = f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}/providers"
                nic_id = f"{group}/Microsoft.Network/networkInterfaces/{name}"
                vm_id = f"{group}/Microsoft.Compute/virtualMachines/{vm.name}"
                return 200, {}, self._nic(nic_id, name, vm_id, vm.private_ip, vm.location, rg)
        return 404, {}, _error("NotFound", f"network interface {name} not found")

    # -- bodies ----------------------------------------------------------------------------------------

    def _values(self, scale_set: ScaleSet, **extra: str) -> dict[str, str]:
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroup": scale_set.resource_group,
            "name": scale_set.name,
            "location": scale_set.location,
            "size": scale_set.size,
            **extra,
        }

    def _vmss_body(self, scale_set: ScaleSet) -> dict[str, Any]:
        body = _fill(
            fixture("vmss.json"),
            self._values(scale_set, uniqueId=str(uuid.uuid5(uuid.NAMESPACE_URL, scale_set.name))),
        )
        body["tags"] = dict(scale_set.tags)
        body["sku"]["capacity"] = len(scale_set.instances)
        body["zones"] = list(scale_set.zones)
        body["properties"]["virtualMachineProfile"]["priority"] = scale_set.priority
        body["properties"]["provisioningState"] = scale_set.provisioning
        return body

    def _vm_body(self, scale_set: ScaleSet, inst: Instance, expand: bool) -> dict[str, Any]:
        body = _fill(
            fixture("vmss_vm.json"),
            self._values(
                scale_set,
                instanceId=inst.instance_id,
                computerName=inst.computer_name,
                vmId=str(uuid.uuid5(uuid.NAMESPACE_URL, scale_set.name + inst.instance_id)),
                placementGroupId=str(uuid.uuid5(uuid.NAMESPACE_URL, scale_set.name + "-pg")),
            ),
        )
        body["zones"] = list(scale_set.zones)
        body["properties"]["provisioningState"] = inst.provisioning
        view = body["properties"].pop("instanceView")
        if expand and inst.provisioning_error:
            code, message = inst.provisioning_error
            failed = {"code": f"ProvisioningState/failed/{code}", "level": "Error"}
            view["statuses"] = [{**failed, "displayStatus": "Provisioning failed", "message": message}]
            body["properties"]["instanceView"] = view
        elif expand:
            view["statuses"][1] = _power_status(inst.power)
            if inst.health:
                status = {"code": inst.health, "level": "Info", "displayStatus": inst.health.split("/")[-1]}
                if inst.health_message:
                    status["message"] = inst.health_message
                view["vmHealth"] = {"status": status}
                view["extensions"] = [
                    {
                        "name": "HealthExtension",
                        "type": "Microsoft.ManagedServices.ApplicationHealthLinux",
                        "typeHandlerVersion": "2.0.12",
                        "statuses": [
                            {
                                "code": "ProvisioningState/succeeded",
                                "level": "Info",
                                "displayStatus": "Provisioning succeeded",
                            }
                        ],
                        "substatuses": (
                            [
                                {
                                    "code": "ComponentStatus/CustomMetrics/succeeded",
                                    "level": "Info",
                                    "message": inst.health_message,
                                }
                            ]
                            if inst.health_message
                            else []
                        ),
                    }
                ]
            body["properties"]["instanceView"] = view
        return body

    def _vmss_nic_body(self, scale_set: ScaleSet, inst: Instance) -> dict[str, Any]:
        vm_id = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{scale_set.resource_group}/providers/"
            f"Microsoft.Compute/virtualMachineScaleSets/{scale_set.name}/virtualMachines/{inst.instance_id}"
        )
        nic_name = f"{scale_set.name}-nic"
        return self._nic(
            f"{vm_id}/networkInterfaces/{nic_name}",
            nic_name,
            vm_id,
            inst.private_ip,
            scale_set.location,
            scale_set.resource_group,
        )

    def _nic(self, nic_id: str, name: str, vm_id: str, ip: str, location: str, rg: str) -> dict[str, Any]:
        return _fill(
            fixture("nic.json"),
            {
                "nicName": name,
                "nicId": nic_id,
                "vmId": vm_id,
                "privateIp": ip,
                "location": location,
                "subscriptionId": self.subscription_id,
                "resourceGroup": rg,
                "resourceGuid": str(uuid.uuid5(uuid.NAMESPACE_URL, nic_id)),
            },
        )

    def _login_body(self, vm: LoginVm) -> dict[str, Any]:
        values = {
            "subscriptionId": self.subscription_id,
            "resourceGroup": vm.resource_group,
            "name": vm.name,
            "location": vm.location,
            "size": vm.size,
            "vmId": str(uuid.uuid5(uuid.NAMESPACE_URL, vm.name)),
        }
        body = _fill(fixture("vm.json"), values)
        body["tags"] = dict(vm.tags)
        return body

    def _page(
        self, items: list[Any], query: dict[str, list[str]], size: int
    ) -> tuple[int, dict[str, str], Any]:
        start = int((query.get("$skiptoken") or ["0"])[0])
        page = items[start : start + size]
        body: dict[str, Any] = {"value": page}
        if start + size < len(items):
            params = {k: v[0] for k, v in query.items() if k != "$skiptoken" and not k.startswith("__")}
            params["$skiptoken"] = str(start + size)
            path = query["__path__"][0]
            body["nextLink"] = f"{self.base_url}{path}?{urlencode(params)}"
        return 200, {}, body


def _vm_path(vm: LoginVm) -> str:
    """PATH of a Run Command script: the system's, after the VM's own programs when a test installs some."""
    return f"{vm.programs}:{_system_bin()}" if vm.programs else _system_bin()


SLURM_CLIENT_COMMANDS = frozenset(
    # Debian's slurm-client package, /usr/bin (`dpkg -L slurm-client`), and the daemons
    {
        *("sacct", "sacctmgr", "salloc", "sattach", "sbatch", "sbcast", "scancel", "scontrol", "sdiag"),
        *("sinfo", "sprio", "squeue", "sreport", "srun", "sshare", "sstat", "strigger", "scrontab", "sview"),
        *("slurmctld", "slurmd", "slurmdbd", "slurmrestd"),
    }
)


@functools.cache
def _system_bin() -> str:
    """The host's /usr/bin and /bin as a VM without Slurm has them: every program but Slurm's.

    The house's Run Command scripts call `sinfo`; a test that gives the VM no Slurm (no `programs`) means a
    VM where it is not installed. The host may have Slurm (.ci/run installs it for the real-daemon
    tests): its `sinfo`, with no slurm.conf, asks DNS for the controller (configless `_slurmctld._tcp`
    SRV), which leaves loopback and, where DNS is slow, took ~9 s per status call. So scripts see a folder
    of links to the host's programs without Slurm's, made once per test process.
    """
    folder = Path(tempfile.mkdtemp(prefix="azcluster-fake-vm-bin-"))
    atexit.register(shutil.rmtree, folder, True)
    for system in (Path("/usr/bin"), Path("/bin")):
        if not system.is_dir():
            continue
        for program in system.iterdir():
            link = folder / program.name
            if program.name not in SLURM_CLIENT_COMMANDS and not link.exists() and not link.is_symlink():
                link.symlink_to(program)
    return str(folder)


def _script(query: dict[str, list[str]]) -> list[str]:
    body = query["__body__"][0]
    return [str(line) for line in body.get("script") or []]


def _run_script(inst: Instance, lines: list[str]) -> tuple[str, str]:
    """(stdout, stderr) of a RunShellScript on the node: `cat PATH...` reads `inst.files`, others fail."""
    stdout, stderr = [], []
    for number, line in enumerate(lines, start=1):
        words = shlex.split(line)
        if not words:
            continue
        if words[0] != "cat":
            stderr.append(
                f"/var/lib/waagent/run-command/download/0/script.sh: line {number}: {words[0]}: "
                "command not found\n"
            )
            continue
        for path in words[1:]:
            if path in inst.files:
                stdout.append(inst.files[path])
            else:
                stderr.append(f"cat: {path}: No such file or directory\n")
    return "".join(stdout), "".join(stderr)


def _fill_streams(template: Any, stdout: str, stderr: str) -> Any:
    """Put the streams into a Run Command fixture's `{stdout}`/`{stderr}` in one pass (never re-read)."""
    streams = {"stdout": stdout, "stderr": stderr}
    for status in template["value"]:
        status["message"] = re.sub(r"\{(stdout|stderr)\}", lambda m: streams[m.group(1)], status["message"])
    return template


def _power_status(power: str) -> dict[str, str]:
    display = {"running": "VM running", "deallocated": "VM deallocated", "stopped": "VM stopped"}
    return {
        "code": f"PowerState/{power}",
        "level": "Info",
        "displayStatus": display.get(power, f"VM {power}"),
    }


def _unserved_version(query: dict[str, list[str]], resource_type: str) -> tuple[int, dict, Any] | None:
    version = query["api-version"][0]
    served = SERVED_API_VERSIONS[resource_type]
    if version in served:
        return None
    return (
        400,
        {},
        _error(
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location 'eastus' and API version '{version}' for "
            f"type '{resource_type}'. The supported api-versions are '{', '.join(served)}'.",
        ),
    )


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _default_code(status: int) -> str:
    return {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}.get(
        status, "Error"
    )


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeARM/1.0"
    disable_nagle_algorithm = True  # headers and body go out as two writes; no 40 ms delayed-ACK stalls

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length) if length else b""
        fake: FakeArm = self.server.fake  # type: ignore[attr-defined]
        stall = fake.take_stall(self.command, self.path)
        if stall is not None:
            fake.stopped.wait(stall.seconds)
            if stall.seconds is None or fake.stopped.is_set():
                self.close_connection = True  # never answered
                return
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, extra, body = fake.handle(self.command, self.path, headers, sent)
        raw = isinstance(body, bytes)
        payload = body if raw else b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        if payload and not raw:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve
    do_PATCH = _serve


class FakeArmServer(LocalHttpsServer):
    """Serves a FakeArm over HTTPS on 127.0.0.1 with a certificate from a throwaway CA."""

    def __init__(self, fake: FakeArm, ca_dir: Path) -> None:
        self.fake = fake
        super().__init__(_Handler, fake, "fake", ca_dir / "fake-arm-ca.pem", "fake-arm")
        fake.base_url = self.url
        fake.workdir = ca_dir


class StaticTokenCredential:
    """A real azure-core TokenCredential that hands out a fixed token and remembers the scopes asked for."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None):
        from azure.core.credentials import AccessTokenInfo

        self.scopes.append(scopes)
        return AccessTokenInfo(self.token, int(time.time()) + 3600)


class RefusingCredential:
    """A credential that cannot get a token, the way azure-identity says so (CredentialUnavailableError)."""

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.identity import CredentialUnavailableError

        raise CredentialUnavailableError(
            message="EnvironmentCredential: environment variables are not fully configured"
        )

    def get_token_info(self, *scopes: str, options: Any = None):
        return self.get_token(*scopes)


def fake_az_script(directory: Path, token: str = TOKEN, *, logged_in: bool = True) -> Path:
    """Write an `az` executable that answers `az account get-access-token` as the Azure CLI does.

    With logged_in=False it fails the way the CLI does before `az login`. Its arguments are appended to
    `az-calls.log` beside it, so tests can check the resource azure-identity asked for.
    """
    import sys

    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "az"
    log = directory / "az-calls.log"
    if logged_in:
        body = (
            "import json, sys, time\n"
            f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
            "print(json.dumps({'accessToken': "
            + repr(token)
            + ", 'expiresOn': time.strftime('%Y-%m-%d %H:%M:%S.000000', "
            "time.localtime(time.time() + 3600)), 'expires_on': int(time.time()) + 3600, "
            f"'subscription': {SUBSCRIPTION!r}, 'tenant': '72f988bf-0000-0000-0000-000000000000', "
            "'tokenType': 'Bearer'}))\n"
        )
    else:
        body = (
            "import sys\n"
            f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
            "sys.stderr.write(\"ERROR: Please run 'az login' to setup account.\\n\")\n"
            "sys.exit(1)\n"
        )
    script.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    script.chmod(0o755)
    return script

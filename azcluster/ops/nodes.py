"""Reading what an island's nodes and the login node look like now.

What each island's nodes look like comes from the scale set's VM list with `$expand=instanceView` (power
state, provisioning state and, when the Application Health extension runs, `vmHealth`), one call per page
for the whole island. Private IPs live in Microsoft.Network, not Microsoft.Compute: they come from the scale
set's network-interface list (`.../virtualMachineScaleSets/{name}/networkInterfaces`, api-version
2018-10-01), sent through the same authenticated, retrying pipeline as the Compute client's own calls.
The login node is the virtual machine tagged `azcluster-role=login`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from azcluster.components.spec import ClusterSpec
from azcluster.components.tags import ROLE_LOGIN, TAG_CLUSTER, TAG_ROLE

from .cluster import tags_of
from .model import Island, LoginNode, Node, ScaleSet

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext


def status_code(statuses: list[dict[str, Any]], prefix: str) -> str | None:
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
    from ..azure import VMSS_NIC_API_VERSION, arm_get_pages

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


def scale_set_vms(client: Any, subscription: str, resource_group: str, scale_set: str) -> Iterator[dict]:
    """Every VM of a scale set with its instance view (VirtualMachineScaleSetVMs_List,
    `$expand=instanceView`), as the REST JSON: no SDK models (see azure.arm_get_pages)."""
    from ..azure import COMPUTE_API_VERSION, arm_get_pages

    path = (
        f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/"
        f"virtualMachineScaleSets/{scale_set}/virtualMachines"
    )
    return arm_get_pages(client, path, COMPUTE_API_VERSION, {"$expand": "instanceView"})


def _island(found: ScaleSet) -> Island:
    """The island as its scale set's body describes it, before its nodes are read."""
    body = found.body
    sku = body.get("sku") or {}
    profile = (body.get("properties") or {}).get("virtualMachineProfile") or {}
    return Island(
        pool=found.pool,
        island=found.island,
        scale_set=found.name,
        size=str(sku.get("name") or ""),
        capacity=int(sku.get("capacity") or 0),
        provisioning_state=(body.get("properties") or {}).get("provisioningState"),
        spot=str(profile.get("priority") or "").lower() in ("spot", "low"),
        zones=[str(z) for z in body.get("zones") or []],
    )


def read_island(client: Any, ctx: AzureContext, spec: ClusterSpec, found: ScaleSet) -> Island:
    """One island's scale set and nodes. `client` may be shared between threads (Azure SDK clients are)."""
    rg = spec.resource_group_name
    island = _island(found)
    ips = island_ips(client, ctx.subscription_id, rg, found.name)
    for data in scale_set_vms(client, ctx.subscription_id, rg, found.name):
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
                power_state=status_code(view.get("statuses") or [], "PowerState"),
                provisioning_state=props.get("provisioningState"),
                health=health,
                health_detail=detail,
                zone=(data.get("zones") or [None])[0],
            )
        )
    island.nodes.sort(key=lambda node: _instance_order(node.instance_id))
    return island


def started_island(client: Any, ctx: AzureContext, spec: ClusterSpec, found: ScaleSet) -> Island:
    """An island the command has just started whole, read once: its NIC list alone.

    VirtualMachineScaleSets_Start without `instanceIds` acts on every VM of the scale set ("Omitting the
    virtual machine scale set instance ids will result in the operation being performed on all virtual
    machines in the virtual machine scale set": VirtualMachineScaleSetVMInstanceIDs, azure-rest-api-specs
    .../ComputeRP/stable/2024-07-01/virtualMachineScaleSet.json), so once it has succeeded every node is
    running and only the private IPs are still to learn. Reading the VM list too would read every node twice.
    """
    island = _island(found)
    ips = island_ips(client, ctx.subscription_id, spec.resource_group_name, found.name)
    island.nodes = [
        Node(
            name=f"{found.name}_{instance_id}",
            instance_id=instance_id,
            computer_name=None,
            private_ip=ip,
            power_state="running",
            provisioning_state=None,
            health=None,
        )
        for instance_id, ip in ips.items()
    ]
    island.nodes.sort(key=lambda node: _instance_order(node.instance_id))
    return island


def _instance_order(instance_id: str) -> tuple[int, str]:
    return (int(instance_id), "") if instance_id.isdigit() else (1 << 30, instance_id)


def find_login(client: Any, ctx: AzureContext, spec: ClusterSpec) -> LoginNode | None:
    from azure.core.exceptions import ResourceNotFoundError

    from ..azure import NETWORK_API_VERSION, arm_get_pages, rest

    rg = spec.resource_group_name
    try:
        vms = [rest(vm) for vm in client.virtual_machines.list(rg)]
    except ResourceNotFoundError:
        return None
    for vm in vms:
        tags = tags_of(vm)
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
            power_state=status_code(view.get("statuses") or [], "PowerState"),
            provisioning_state=props.get("provisioningState"),
        )
    return None

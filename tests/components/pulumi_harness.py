"""Run a Pulumi program offline under mocks and capture what it registers.

`run(program)` sets fresh mocks (preview off, so every value is concrete), runs `program()` inside the
Pulumi runtime, waits for every registration, and returns a `Capture`: each resource's type, logical
name, URN, inputs (as registered, Pulumi's camelCase), outputs, parent, dependencies, `protect` and
`retain_on_delete`, plus the resolved value the program returned.

Two pieces do the work:

- `AzureMocks` answers like Azure would, enough for components to wire up: it echoes the inputs, adds
  `name` (the Azure name from the type's `...Name` input, else the logical name) and an ARM-shaped
  `id`, and a few read-only outputs components consume (identity principal/client ids, the Lustre
  MGS address, public IP addresses, NIC private IPs). It answers the invoke
  `azure-native:authorization:getClientConfig` with `MOCK_SUBSCRIPTION` / `MOCK_TENANT`.
- `CapturingMonitor` (a `pulumi.runtime.mocks.MockMonitor`) sees every RegisterResource request, which
  is where the parent, the dependencies and the resource options live; `Mocks.new_resource` is never told
  those.

Extend `EXTRA_OUTPUTS` (type token -> function(inputs, name, id) -> dict) when a component reads another
output that Azure computes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

MOCK_SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
MOCK_TENANT = "00000000-0000-4000-8000-0000000000aa"
MOCK_CLIENT_ID = "00000000-0000-4000-8000-0000000000cc"
MOCK_MGS_ADDRESS = "10.42.8.4"
MOCK_PUBLIC_IP = "203.0.113.10"
MOCK_PRIVATE_IP = "10.42.0.4"

_SUB = f"/subscriptions/{MOCK_SUBSCRIPTION}"
_RG = _SUB + "/resourceGroups/{resourceGroupName}"

# type token -> (input holding the Azure name, ARM id template). Templates format with the inputs plus
# `name`; types not listed get the logical name and a generic id under the resource group.
ARM_SHAPES: dict[str, tuple[str, str]] = {
    "azure-native:resources:ResourceGroup": ("resourceGroupName", _SUB + "/resourceGroups/{name}"),
    "azure-native:network:VirtualNetwork": (
        "virtualNetworkName",
        _RG + "/providers/Microsoft.Network/virtualNetworks/{name}",
    ),
    "azure-native:network:Subnet": (
        "subnetName",
        _RG + "/providers/Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets/{name}",
    ),
    "azure-native:network:NetworkSecurityGroup": (
        "networkSecurityGroupName",
        _RG + "/providers/Microsoft.Network/networkSecurityGroups/{name}",
    ),
    "azure-native:network:NatGateway": (
        "natGatewayName",
        _RG + "/providers/Microsoft.Network/natGateways/{name}",
    ),
    "azure-native:network:PublicIPAddress": (
        "publicIpAddressName",
        _RG + "/providers/Microsoft.Network/publicIPAddresses/{name}",
    ),
    "azure-native:network:BastionHost": (
        "bastionHostName",
        _RG + "/providers/Microsoft.Network/bastionHosts/{name}",
    ),
    "azure-native:network:PrivateEndpoint": (
        "privateEndpointName",
        _RG + "/providers/Microsoft.Network/privateEndpoints/{name}",
    ),
    "azure-native:network:PrivateDnsZoneGroup": (
        "privateDnsZoneGroupName",
        _RG
        + "/providers/Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups/{name}",
    ),
    "azure-native:network:NetworkInterface": (
        "networkInterfaceName",
        _RG + "/providers/Microsoft.Network/networkInterfaces/{name}",
    ),
    "azure-native:privatedns:PrivateZone": (
        "privateZoneName",
        _RG + "/providers/Microsoft.Network/privateDnsZones/{name}",
    ),
    "azure-native:privatedns:VirtualNetworkLink": (
        "virtualNetworkLinkName",
        _RG + "/providers/Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks/{name}",
    ),
    "azure-native:privatedns:PrivateRecordSet": (
        "relativeRecordSetName",
        _RG + "/providers/Microsoft.Network/privateDnsZones/{privateZoneName}/{recordType}/{name}",
    ),
    "azure-native:storage:StorageAccount": (
        "accountName",
        _RG + "/providers/Microsoft.Storage/storageAccounts/{name}",
    ),
    "azure-native:storage:BlobContainer": (
        "containerName",
        _RG
        + "/providers/Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers/{name}",
    ),
    "azure-native:storagecache:AmlFilesystem": (
        "amlFilesystemName",
        _RG + "/providers/Microsoft.StorageCache/amlFilesystems/{name}",
    ),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "resourceName",
        _RG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
    ),
    "azure-native:authorization:RoleAssignment": (
        "roleAssignmentName",
        "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
    ),
    "azure-native:compute:VirtualMachineScaleSet": (
        "vmScaleSetName",
        _RG + "/providers/Microsoft.Compute/virtualMachineScaleSets/{name}",
    ),
    "azure-native:compute:VirtualMachine": (
        "vmName",
        _RG + "/providers/Microsoft.Compute/virtualMachines/{name}",
    ),
}


def _stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mock:" + "/".join(parts)))


def _identity_outputs(inputs: dict, name: str, id_: str) -> dict:
    return {
        "principalId": _stable_uuid("principal", id_),
        "clientId": _stable_uuid("client", id_),
        "tenantId": MOCK_TENANT,
    }


def _lustre_outputs(inputs: dict, name: str, id_: str) -> dict:
    return {
        "clientInfo": {
            "mgsAddress": MOCK_MGS_ADDRESS,
            "mountCommand": f"sudo mount -t lustre -o noatime,flock {MOCK_MGS_ADDRESS}@tcp:/lustrefs /lustre",
            "lustreVersion": "2.15.7",
            "containerStorageInterface": {},
        },
        "throughputProvisionedMBps": 0,
    }


def _nic_outputs(inputs: dict, name: str, id_: str) -> dict:
    configs = [
        dict(c, privateIPAddress=c.get("privateIPAddress") or MOCK_PRIVATE_IP)
        for c in inputs.get("ipConfigurations") or []
    ]
    return {"ipConfigurations": configs} if configs else {}


def _storage_outputs(inputs: dict, name: str, id_: str) -> dict:
    return {
        "primaryEndpoints": {
            "blob": f"https://{name}.blob.core.windows.net/",
            "dfs": f"https://{name}.dfs.core.windows.net/",
        }
    }


EXTRA_OUTPUTS: dict[str, Callable[[dict, str, str], dict]] = {
    "azure-native:managedidentity:UserAssignedIdentity": _identity_outputs,
    "azure-native:storagecache:AmlFilesystem": _lustre_outputs,
    "azure-native:network:PublicIPAddress": lambda inputs, name, id_: {"ipAddress": MOCK_PUBLIC_IP},
    "azure-native:network:NetworkInterface": _nic_outputs,
    "azure-native:storage:StorageAccount": _storage_outputs,
}


class AzureMocks(Mocks):
    """Echo inputs, add `name`, an ARM-shaped `id` and the computed outputs listed in EXTRA_OUTPUTS."""

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        if not args.custom:  # component resources have no state of their own
            return "", {}
        inputs = dict(args.inputs)
        name_key, template = ARM_SHAPES.get(args.typ, ("", _RG + "/providers/Mock/" + args.typ + "/{name}"))
        name = str(inputs.get(name_key) or args.name)
        values = {"resourceGroupName": "mock-rg", "scope": _SUB, **inputs, "name": name}
        try:
            id_ = template.format(**values)
        except (KeyError, IndexError, ValueError):
            id_ = f"{_SUB}/resourceGroups/mock-rg/providers/Mock/{args.typ}/{name}"
        state = {**inputs, "name": name, "id": id_}
        extra = EXTRA_OUTPUTS.get(args.typ)
        if extra:
            state.update(extra(inputs, name, id_))
        return id_, state

    def call(self, args: MockCallArgs) -> dict:
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": MOCK_CLIENT_ID,
                "objectId": _stable_uuid("deployer"),
                "subscriptionId": MOCK_SUBSCRIPTION,
                "tenantId": MOCK_TENANT,
            }
        return {}


@dataclass
class Resource:
    """One registered resource, as the engine would have seen it."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    retain_on_delete: bool = False


class CapturingMonitor(MockMonitor):
    """A MockMonitor that records every RegisterResource request with its options."""

    def __init__(self, mocks: Mocks):
        super().__init__(mocks)
        self.captured: dict[str, Resource] = {}

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        urn = response.urn
        registration = self.resources.get(urn)
        self.captured[urn] = Resource(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            inputs=rpc.deserialize_properties(request.object),
            outputs=dict(registration.state) if registration else {},
            id=registration.id if registration else "",
            parent=request.parent,
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
        )
        return response


@dataclass
class Capture:
    """What a program registered, in registration order, and the value it returned (resolved)."""

    resources: list[Resource]
    value: Any = None

    def of_type(self, type_: str) -> list[Resource]:
        """Resources whose type token is `type_` or ends with `:type_` (e.g. "network:Subnet")."""
        return [r for r in self.resources if r.type == type_ or r.type.endswith(":" + type_)]

    def one(self, type_: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one {type_} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    @cached_property
    def _dependencies(self) -> dict[str, list[str]]:
        return {r.urn: r.dependencies for r in self.resources}

    def depends_on(self, resource: Resource, target: Resource) -> bool:
        """True when `resource` waits for `target`, directly or through other resources."""
        seen: set[str] = set()
        stack = list(resource.dependencies)
        while stack:
            urn = stack.pop()
            if urn == target.urn:
                return True
            if urn not in seen:
                seen.add(urn)
                stack.extend(self._dependencies.get(urn, []))
        return False

    def dependents(self, target: Resource) -> list[Resource]:
        """Every resource that waits for `target`, directly or transitively."""
        return [r for r in self.resources if r is not target and self.depends_on(r, target)]


def run(program: Callable[[], Any], *, project: str = "azcluster", stack: str = "test") -> Capture:
    """Run `program` under fresh mocks and return everything it registered.

    Whatever `program` returns (Outputs, dicts or lists of them) is resolved into `Capture.value`.
    Exceptions raised by the program propagate.
    """
    mocks = AzureMocks()
    monitor = CapturingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    box: dict[str, Any] = {}

    @pulumi.runtime.test
    def _program():
        return pulumi.Output.from_input(program()).apply(lambda value: box.setdefault("value", value))

    _program()
    return Capture(resources=list(monitor.captured.values()), value=box.get("value"))

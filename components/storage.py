"""SharedStorage: the blob data account and Azure Managed Lustre, both private to the cluster.

Blob data account (datasets, checkpoints): StorageV2 with hierarchical namespace (set at creation only;
BlobFuse2 and Lustre HSM both use it), HTTPS only, TLS 1.2, no anonymous blob access, public network
access disabled (reached only through a private endpoint in the `endpoints` subnet, whose DNS record the
`privatelink.blob.core.windows.net` zone holds), and no account keys: nodes use their managed identity,
which gets Storage Blob Data Contributor on this one account.
Exception, documented by Azure: Lustre blob integration (HSM) needs account key access enabled (the
service signs SAS tokens), so `allow_shared_key_access` is on only when `lustre.import_container` is set.
Source: learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites (blob integration).

Azure Managed Lustre (`Microsoft.StorageCache/amlFilesystems`): one zone (AMLFS is zonal: the cluster's
zone, else "1"; no `zones` in a region without zones, see placement.py), its own subnet, a weekly 30-minute
maintenance window, and, with `import_container`,
HSM settings that import from that container and log to a separate one in the same account. Azure asks
the "HPC Cache Resource Provider" service principal (app id 4392ab71-2ce2-4b0d-8770-b352745c73f5) to hold
Storage Account Contributor and Storage Blob Data Contributor on the account before the file system is
created. Its object id differs per tenant and azure-native cannot look it up, so pass it as
`hpc_cache_rp_principal_id` (`az ad sp show --id 4392ab71-2ce2-4b0d-8770-b352745c73f5 --query id -o tsv`);
without it the component warns and leaves that grant to the user.

Nothing waits for the file system except one DNS record: `lustre.<cluster zone>` -> the MGS address, so
nodes can be created at once and mount `lustre.<zone>@tcp:/lustrefs` when the name resolves.

Data rule (docs/architecture.md, CLI promises): the account, its containers and the file system get
`protect` (refuse to delete) and `retain_on_delete` (a destroy forgets them and leaves them in Azure)
unless the caller turns those off for `down --delete-data`. Note that deleting the resource group deletes
everything in it: ClusterNetworkArgs.retain_resource_group keeps the group for that reason.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
from pulumi_azure_native import authorization, network, privatedns, storage, storagecache

from .identity import NodeIdentity, assign_role
from .placement import DEFAULT_ZONE, cluster_zone, lustre_zones
from .private_dns import endpoint_zone_group
from .spec import BlobSpec, LustreSpec
from .tags import cluster_tags

if TYPE_CHECKING:
    from .network import ClusterNetwork
    from .spec import ClusterSpec

LUSTRE_FSNAME = "lustrefs"  # the file system name AMLFS always uses
LUSTRE_MOUNT_POINT = "/lustre"
LUSTRE_RECORD_NAME = "lustre"
LUSTRE_DEFAULT_ZONE = DEFAULT_ZONE  # placement.py decides the cluster's zone
HSM_LOGGING_CONTAINER = "lustre-logs"
HPC_CACHE_RP_APP_ID = "4392ab71-2ce2-4b0d-8770-b352745c73f5"
HSM_ROLES = ("Storage Account Contributor", "Storage Blob Data Contributor")
BLOB_SKUS = (
    "Standard_LRS",
    "Standard_ZRS",
    "Standard_GRS",
    "Standard_GZRS",
    "Standard_RAGRS",
    "Standard_RAGZRS",
)

_CONTAINER_NAME = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def storage_account_name(cluster_name: str, salt: str) -> str:
    """3-24 lower-case letters and digits: the cluster name's alphanumerics (up to 16) + 8 hex of a hash.

    Account names are global across Azure; `salt` (the subscription id and region) keeps two users' clusters
    with the same name apart while staying stable for one deployment.
    """
    prefix = re.sub(r"[^a-z0-9]", "", cluster_name.lower())[:16] or "azc"
    digest = hashlib.sha256(f"{cluster_name}|{salt}".encode()).hexdigest()[:8]
    return (prefix + digest)[:24]


def data_options(
    parent: pulumi.Resource, protect: bool, retain: bool, depends_on: list[pulumi.Resource] | None = None
) -> pulumi.ResourceOptions:
    """Options of a resource that holds data (module docstring, data rule): `protect` and
    `retain_on_delete` unless the caller turns them off for `down --delete-data`."""
    return pulumi.ResourceOptions(
        parent=parent, protect=protect, retain_on_delete=retain, depends_on=depends_on
    )


def subscription_salted_name(
    parent: pulumi.Resource,
    given: str | None,
    derive: Callable[[str, str], str],
    cluster_name: str,
    location: str,
) -> pulumi.Output[str]:
    """A globally unique Azure name (storage account, MySQL server): `given`, else
    `derive(cluster_name, "<subscription>/<location>")`, so two subscriptions or regions never collide."""
    if given:
        return pulumi.Output.from_input(given)
    config = authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=parent))
    return config.subscription_id.apply(lambda sub: derive(cluster_name, f"{sub}/{location}"))


def lustre_mount_command(host: str, mount_point: str = LUSTRE_MOUNT_POINT) -> str:
    """The client mount command for an AMLFS reachable as `host` (a name or the MGS IP)."""
    return f"mount -t lustre -o noatime,flock {host}@tcp:/{LUSTRE_FSNAME} {mount_point}"


@dataclass
class SharedStorageArgs:
    """Inputs of SharedStorage. Build it from a spec with `SharedStorageArgs.from_spec(...)`."""

    cluster_name: str
    location: str
    zone: str | None
    tags: dict[str, str]
    resource_group_name: pulumi.Input[str]  # also the group of the cluster DNS zone
    lustre: LustreSpec | None
    blob: BlobSpec
    lustre_subnet_id: pulumi.Input[str]
    endpoints_subnet_id: pulumi.Input[str]
    blob_dns_zone_id: pulumi.Input[str] | None  # None: the endpoint's DNS record is left to the hub network
    cluster_dns_zone_name: pulumi.Input[str]  # give a plain str to get a plain `lustre_mount_host`
    node_identity: NodeIdentity | None
    protect_data: bool = True
    retain_data: bool = True  # False only for `down --delete-data`
    blob_account_name: str | None = None  # override the derived, subscription-salted name
    blob_sku: str = "Standard_LRS"
    hpc_cache_rp_principal_id: str | None = None  # object id of "HPC Cache Resource Provider" (HSM)
    hsm_logging_container: str = HSM_LOGGING_CONTAINER

    def __post_init__(self) -> None:
        if self.blob_sku not in BLOB_SKUS:
            raise ValueError(f"blob_sku {self.blob_sku!r}: use one of {', '.join(BLOB_SKUS)}")
        if self.blob_account_name is not None and not re.fullmatch(r"[a-z0-9]{3,24}", self.blob_account_name):
            raise ValueError(
                f"blob_account_name {self.blob_account_name!r}: 3-24 lower-case letters and digits"
            )
        # Containers are created only in the blob account: without it, their names are never used (AZC038).
        names = list(self.blob.containers) if self.blob.enabled else []
        if self.hsm_container:
            if not self.blob.enabled:
                raise ValueError(
                    "storage.lustre.import_container needs storage.blob.enabled: the container lives in the "
                    "cluster's blob data account"
                )
            if self.hsm_container == self.hsm_logging_container:
                raise ValueError(
                    f"lustre import container {self.hsm_container!r} must differ from the HSM logging "
                    "container (Azure requires a separate one)"
                )
            names += [self.hsm_container, self.hsm_logging_container]
        for container in names:
            if not _CONTAINER_NAME.fullmatch(container):
                raise ValueError(
                    f"blob container name {container!r}: 3-63 lower-case letters, digits and single hyphens, "
                    "starting and ending with a letter or digit"
                )

    @property
    def lustre_enabled(self) -> bool:
        return self.lustre is not None and self.lustre.enabled

    @property
    def hsm_container(self) -> str | None:
        """The container Lustre imports from and archives to, when blob integration is asked for."""
        return self.lustre.import_container if self.lustre_enabled and self.lustre else None

    @classmethod
    def from_spec(
        cls,
        spec: ClusterSpec,
        net: ClusterNetwork,
        node_identity: NodeIdentity | None,
        *,
        protect_data: bool = True,
        retain_data: bool = True,
    ) -> SharedStorageArgs:
        return cls(
            cluster_name=spec.name,
            location=spec.location,
            zone=cluster_zone(spec).zone,
            tags=dict(spec.tags),
            resource_group_name=net.resource_group_name,
            lustre=spec.storage.lustre,
            blob=spec.storage.blob,
            lustre_subnet_id=net.subnet_ids["lustre"],
            endpoints_subnet_id=net.subnet_ids["endpoints"],
            blob_dns_zone_id=net.blob_dns_zone_id,
            cluster_dns_zone_name=net.cluster_dns_zone_name,
            node_identity=node_identity,
            protect_data=protect_data,
            retain_data=retain_data,
            hpc_cache_rp_principal_id=spec.storage.lustre.provider_principal_id
            if spec.storage.lustre
            else None,
        )


class SharedStorage(pulumi.ComponentResource):
    """Blob data account (private endpoint, identity access) and Azure Managed Lustre.

    Outputs: `blob_account_name`, `blob_account_id`, `blob_container_ids` (dict), `lustre_id`,
    `lustre_mgs_address` (Output, waits for the file system; None without Lustre), `lustre_mount_host`
    (plain `lustre.<zone>`; None without Lustre), `lustre_mount_command` (plain, uses the host name).
    Only the MGS address depends on the file system: give nodes the host name, not the address.
    """

    def __init__(self, name: str, args: SharedStorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("azcluster:index:SharedStorage", name, None, opts)
        self._name = name
        self._args = args
        self.blob_account: storage.StorageAccount | None = None
        self.blob_account_name: pulumi.Output[str] | None = None
        self.blob_account_id: pulumi.Output[str] | None = None
        self.blob_containers: dict[str, storage.BlobContainer] = {}
        self.blob_dns_zone_group: network.PrivateDnsZoneGroup | None = None
        self.lustre: storagecache.AmlFilesystem | None = None
        self.lustre_id: pulumi.Output[str] | None = None
        self.lustre_mgs_address: pulumi.Output[str] | None = None
        self.lustre_mount_host: pulumi.Input[str] | None = None
        self.lustre_mount_command: pulumi.Input[str] | None = None

        if args.blob.enabled:
            self._create_blob()
        if args.lustre_enabled:
            self._create_lustre()
        self.blob_container_ids = {c: r.id for c, r in self.blob_containers.items()}

        self.register_outputs(
            {
                "blob_account_name": self.blob_account_name,
                "blob_account_id": self.blob_account_id,
                "blob_container_ids": self.blob_container_ids,
                "lustre_id": self.lustre_id,
                "lustre_mgs_address": self.lustre_mgs_address,
                "lustre_mount_host": self.lustre_mount_host,
                "lustre_mount_command": self.lustre_mount_command,
            }
        )

    def _data_opts(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return data_options(self, self._args.protect_data, self._args.retain_data, depends_on)

    def _create_blob(self) -> None:
        name, args = self._name, self._args
        account_name = subscription_salted_name(
            self, args.blob_account_name, storage_account_name, args.cluster_name, args.location
        )
        tags = cluster_tags(args.cluster_name, "blob", args.tags)
        account = storage.StorageAccount(
            f"{name}-blob",
            account_name=account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=args.blob_sku),
            access_tier=storage.AccessTier.HOT,
            is_hns_enabled=True,
            enable_https_traffic_only=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            public_network_access=storage.PublicNetworkAccess.DISABLED,
            allow_shared_key_access=bool(args.hsm_container),
            default_to_o_auth_authentication=True,
            allow_cross_tenant_replication=False,
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction.DENY, bypass=storage.Bypass.AZURE_SERVICES
            ),
            tags=tags,
            opts=self._data_opts(),
        )
        self.blob_account = account
        self.blob_account_name = account_name  # no dependency on the account: safe for node bootstrap
        self.blob_account_id = account.id

        containers = list(dict.fromkeys(args.blob.containers))
        if args.hsm_container:
            containers += [c for c in (args.hsm_container, args.hsm_logging_container) if c not in containers]
        for container in containers:
            self.blob_containers[container] = storage.BlobContainer(
                f"{name}-container-{container}",
                account_name=account.name,
                resource_group_name=args.resource_group_name,
                container_name=container,
                public_access=storage.PublicAccess.NONE,
                opts=self._data_opts(),
            )

        endpoint = account_private_endpoint(
            f"{name}-blob-pe",
            azure_name=f"{args.cluster_name}-blob-pe",
            group="blob",
            account_id=account.id,
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet_id=args.endpoints_subnet_id,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.blob_private_endpoint = endpoint
        if args.blob_dns_zone_id is None:  # joining a hub network: its zone (or Azure Policy) has the record
            pulumi.log.info(
                "blob private endpoint: no privatelink.blob.core.windows.net zone named; its DNS record is "
                "left to the network's own private DNS (set network.dns_zones.blob to register it).",
                resource=self,
            )
        else:
            self._blob_dns_zone_group(name, endpoint)
        self.node_blob_role = None
        if args.node_identity is not None:
            self.node_blob_role = args.node_identity.grant_blob_data(
                account.id, name=f"{name}-nodes-blob-data", opts=pulumi.ResourceOptions(parent=self)
            )

    def _blob_dns_zone_group(self, name: str, endpoint: network.PrivateEndpoint) -> None:
        """Register the endpoint's A record in the privatelink.blob zone (created or reused)."""
        args = self._args
        assert args.blob_dns_zone_id is not None  # checked by the caller
        self.blob_dns_zone_group = endpoint_zone_group(
            f"{name}-blob-dns",
            endpoint,
            "blob",
            args.blob_dns_zone_id,
            args.resource_group_name,
            pulumi.ResourceOptions(parent=self),
        )

    def _create_lustre(self) -> None:
        name, args = self._name, self._args
        lustre = args.lustre
        assert lustre is not None  # lustre_enabled checked by the caller
        hsm = None
        waits_for: list[pulumi.Resource] = []
        if args.hsm_container and self.blob_account is not None:
            waits_for += self._grant_hsm_roles()
            if self.blob_dns_zone_group is not None:
                waits_for.append(self.blob_dns_zone_group)  # AMLFS must resolve the account privately
            hsm = storagecache.AmlFilesystemHsmArgs(
                settings=storagecache.AmlFilesystemHsmSettingsArgs(
                    container=self.blob_containers[args.hsm_container].id,
                    logging_container=self.blob_containers[args.hsm_logging_container].id,
                )
            )
        self.lustre = storagecache.AmlFilesystem(
            f"{name}-lustre",
            aml_filesystem_name=f"{args.cluster_name}-lustre",
            resource_group_name=args.resource_group_name,
            location=args.location,
            zones=lustre_zones(args.location, args.zone),
            sku=storagecache.SkuNameArgs(name=lustre.sku),
            storage_capacity_ti_b=float(lustre.capacity_tib),
            filesystem_subnet=args.lustre_subnet_id,
            maintenance_window=storagecache.AmlFilesystemMaintenanceWindowArgs(
                day_of_week=storagecache.MaintenanceDayOfWeekType(lustre.maintenance_day),
                time_of_day_utc=lustre.maintenance_time,
            ),
            hsm=hsm,
            tags=cluster_tags(args.cluster_name, "lustre", args.tags),
            opts=self._data_opts(depends_on=waits_for),
        )
        self.lustre_id = self.lustre.id
        self.lustre_mgs_address = self.lustre.client_info.apply(
            lambda info: info.mgs_address if info else None
        )
        # The one resource that waits for the file system: nodes mount the name, not the address.
        self.lustre_dns_record = privatedns.PrivateRecordSet(
            f"{name}-lustre-dns",
            private_zone_name=args.cluster_dns_zone_name,
            relative_record_set_name=LUSTRE_RECORD_NAME,
            record_type="A",
            resource_group_name=args.resource_group_name,
            ttl=300,
            a_records=[privatedns.ARecordArgs(ipv4_address=self.lustre_mgs_address)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        zone_name = args.cluster_dns_zone_name
        if isinstance(zone_name, str):
            self.lustre_mount_host = f"{LUSTRE_RECORD_NAME}.{zone_name}"
            self.lustre_mount_command = lustre_mount_command(self.lustre_mount_host)
        else:
            host = pulumi.Output.from_input(zone_name).apply(lambda zone: f"{LUSTRE_RECORD_NAME}.{zone}")
            self.lustre_mount_host = host
            self.lustre_mount_command = host.apply(lustre_mount_command)

    def _grant_hsm_roles(self) -> list[pulumi.Resource]:
        """Storage Account Contributor + Storage Blob Data Contributor for the HPC Cache RP on the account."""
        args = self._args
        if not args.hpc_cache_rp_principal_id:
            pulumi.log.warn(
                "Lustre blob integration: grant the 'HPC Cache Resource Provider' service principal "
                f"({HPC_CACHE_RP_APP_ID}) Storage Account Contributor and Storage Blob Data Contributor "
                "on the blob account before the file system is created, or pass hpc_cache_rp_principal_id "
                f"(az ad sp show --id {HPC_CACHE_RP_APP_ID} --query id -o tsv).",
                resource=self,
            )
            return []
        assert self.blob_account is not None
        return [
            assign_role(
                f"{self._name}-hsm-{role.lower().replace(' ', '-')}",
                scope=self.blob_account.id,
                principal_id=args.hpc_cache_rp_principal_id,
                role=role,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for role in HSM_ROLES
        ]


def account_private_endpoint(
    resource_name: str,
    *,
    azure_name: str,
    group: str,
    account_id: pulumi.Input[str],
    resource_group_name: pulumi.Input[str],
    location: str,
    subnet_id: pulumi.Input[str],
    tags: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> network.PrivateEndpoint:
    """The private endpoint of one Private Link sub-resource (`group`: blob, file, mysqlServer,
    prometheusMetrics, grafana, azuremonitor) of `account_id` in the endpoints subnet.

    Its network interface is named after it (`<azure_name>-nic`) instead of Azure's random suffix, so the
    cluster's resources can be told apart in the portal. Used for the blob account, the shared home, the
    accounting database and monitoring's workspace, Grafana and Private Link Scope.
    """
    return network.PrivateEndpoint(
        resource_name,
        private_endpoint_name=azure_name,
        custom_network_interface_name=f"{azure_name}-nic",
        resource_group_name=resource_group_name,
        location=location,
        subnet=network.SubnetArgs(id=subnet_id),
        private_link_service_connections=[
            network.PrivateLinkServiceConnectionArgs(
                name=group, private_link_service_id=account_id, group_ids=[group]
            )
        ],
        tags=tags,
        opts=opts,
    )

"""SharedHome: the home directories every node shares, on Azure Files premium NFS 4.1.

Why this service: see `home_default` in catalog/storage.yaml (throughput and price against Azure NetApp
Files). Why these settings (learn.microsoft.com/azure/storage/files/...):
- NFS 4.1 shares live only in a premium `FileStorage` account (`Premium_LRS` or `Premium_ZRS`), and the
  share's protocol is chosen on the share (`enabledProtocols: NFS`, at creation only)
  (create-classic-file-share, files-nfs-protocol).
- NFS has no user authentication; access is the network's job: public network access is disabled and
  the account is reached only through a private endpoint (group id `file`) in the `endpoints` subnet,
  whose DNS record lives in `privatelink.file.core.windows.net` (files-nfs-protocol "Security and
  networking", storage-files-networking-endpoints).
- "Secure transfer required" (`supportsHttpsTrafficOnly`, azure-native `enable_https_traffic_only`) must
  be off: plain NFS 4.1 is not TLS, and an account that requires secure transfer refuses it
  (storage-files-quick-create-use-linux, "Disable secure transfer"). The data never leaves the virtual
  network (private endpoint only) and shared-key access is off, so no REST client can use plain HTTP.
- `rootSquash: NoRootSquash`: the node bootstrap runs as root and creates home directories owned by
  their users (and seeds the admin user's home); under RootSquash root is mapped to nobody and cannot.
  Root on any node is already root of the cluster; who reaches the share at all is decided by the
  network (nfs-root-squash).

Network: NFS 4.1 uses TCP 2049 only (no portmapper, 111); the traffic is outbound from the nodes to the
endpoint's private IP. The `endpoints` subnet has private endpoint network policies on, so its NSG must
allow TCP 2049 from the compute and login subnets to the endpoint (ClusterNetwork's endpoint rules).

Nodes mount `<account>.file.core.windows.net:/<account>/<share>` (mount-nfs-shares: the export path is
the account name then the share name). The account name is derived (subscription-salted, like the blob
account's), so the nodes' cloud-init never waits for the share: they retry until it resolves privately.

Data rule (docs/architecture.md, CLI promises): the account and the share are protected and retained
(`down` keeps them) unless the caller turns that off for `down --delete-data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
from pulumi_azure_native import network, storage

from .network import private_dns_zone
from .private_dns import endpoint_zone_group, endpoint_zone_id
from .storage import account_private_endpoint, data_options, storage_account_name, subscription_salted_name
from .tags import cluster_tags

if TYPE_CHECKING:
    from .network import ClusterNetwork
    from .spec import ClusterSpec

FILE_PRIVATE_DNS_ZONE = "privatelink.file.core.windows.net"
FILE_ENDPOINT_SUFFIX = "file.core.windows.net"
HOME_SHARE_NAME = "home"
HOME_ROLE = "home"
NFS_PORT = "2049"


def home_account_name(cluster_name: str, salt: str) -> str:
    """The home account's name: like the blob account's, with its own salt so the two never collide."""
    return storage_account_name(cluster_name, f"{salt}/home")


def nfs_source(account: str, share: str = HOME_SHARE_NAME, suffix: str = FILE_ENDPOINT_SUFFIX) -> str:
    """What the nodes mount: `<account>.file.core.windows.net:/<account>/<share>`."""
    return f"{account}.{suffix}:/{account}/{share}"


@dataclass
class SharedHomeArgs:
    """Inputs of SharedHome. Build it from a spec with `SharedHomeArgs.from_spec(...)`."""

    cluster_name: str
    location: str
    tags: dict[str, str]
    resource_group_name: pulumi.Input[str]
    endpoints_subnet_id: pulumi.Input[str]
    vnet_id: pulumi.Input[str]
    size_gib: int = 1024
    redundancy: str = "LRS"  # LRS or ZRS
    protect_data: bool = True
    retain_data: bool = True  # False only for `down --delete-data`
    account_name: str | None = None  # override the derived, subscription-salted name
    existing_file_dns_zone_id: str | None = None  # a hub's privatelink.file zone, already linked
    create_file_dns_zone: bool = True  # without an existing one; False: no zone, the hub's DNS has the record
    file_dns_zone_name: str = FILE_PRIVATE_DNS_ZONE  # other clouds use other suffixes
    endpoint_suffix: str = FILE_ENDPOINT_SUFFIX

    def __post_init__(self) -> None:
        if self.redundancy not in ("LRS", "ZRS"):
            raise ValueError(f"home redundancy {self.redundancy!r}: use LRS or ZRS (premium file shares)")
        if not 100 <= self.size_gib <= 102_400:
            raise ValueError(f"home size_gib {self.size_gib}: premium file shares hold 100 to 102400 GiB")

    @classmethod
    def from_spec(
        cls, spec: ClusterSpec, net: ClusterNetwork, *, protect_data: bool = True, retain_data: bool = True
    ) -> SharedHomeArgs:
        home = spec.storage.home
        # network.private_dns_zone: never a second privatelink.file zone on a hub's network (issue 9 item 2).
        existing_zone, create_zone = private_dns_zone(spec, "file", home.enabled)
        return cls(
            cluster_name=spec.name,
            location=spec.location,
            tags=dict(spec.tags),
            resource_group_name=net.resource_group_name,
            endpoints_subnet_id=net.subnet_ids["endpoints"],
            vnet_id=net.vnet_id,
            size_gib=home.size_gib,
            redundancy=home.redundancy,
            protect_data=protect_data,
            retain_data=retain_data,
            existing_file_dns_zone_id=existing_zone,
            create_file_dns_zone=create_zone,
        )


class SharedHome(pulumi.ComponentResource):
    """A premium FileStorage account with one NFS share, reached only through a private endpoint.

    Outputs: `account_name` (derived, no dependency on the account: safe for node bootstrap),
    `account_id`, `share_id`, `nfs_source` (`<account>.file.core.windows.net:/<account>/home`, also
    without a dependency on the share), `private_endpoint_id`.
    """

    def __init__(self, name: str, args: SharedHomeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("azcluster:index:SharedHome", name, None, opts)
        self._name = name
        tags = cluster_tags(args.cluster_name, HOME_ROLE, args.tags)
        data = data_options(self, args.protect_data, args.retain_data)
        child = pulumi.ResourceOptions(parent=self)

        account_name = subscription_salted_name(
            self, args.account_name, home_account_name, args.cluster_name, args.location
        )
        self.account = storage.StorageAccount(
            f"{name}-account",
            account_name=account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind=storage.Kind.FILE_STORAGE,
            sku=storage.SkuArgs(name=f"Premium_{args.redundancy}"),
            enable_https_traffic_only=False,  # NFS 4.1 is not TLS (module docstring)
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            allow_blob_public_access=False,
            allow_shared_key_access=False,
            allow_cross_tenant_replication=False,
            public_network_access=storage.PublicNetworkAccess.DISABLED,
            network_rule_set=storage.NetworkRuleSetArgs(
                default_action=storage.DefaultAction.DENY, bypass=storage.Bypass.AZURE_SERVICES
            ),
            tags=tags,
            opts=data,
        )
        self.share = storage.FileShare(
            f"{name}-share",
            account_name=self.account.name,
            resource_group_name=args.resource_group_name,
            share_name=HOME_SHARE_NAME,
            enabled_protocols=storage.EnabledProtocols.NFS,
            root_squash=storage.RootSquashType.NO_ROOT_SQUASH,
            share_quota=args.size_gib,
            access_tier=storage.ShareAccessTier.PREMIUM,
            opts=data,
        )
        self.private_endpoint = account_private_endpoint(
            f"{name}-pe",
            azure_name=f"{args.cluster_name}-home-pe",
            group="file",
            account_id=self.account.id,
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet_id=args.endpoints_subnet_id,
            tags=tags,
            opts=child,
        )
        zone_id = endpoint_zone_id(
            f"{name}-file-zone",
            args.file_dns_zone_name,
            args.existing_file_dns_zone_id,
            args.create_file_dns_zone,
            args.resource_group_name,
            args.cluster_name,
            args.vnet_id,
            tags,
            child,
        )
        self.dns_zone_group: network.PrivateDnsZoneGroup | None = None
        if zone_id is not None:  # None: joining a hub network whose own DNS registers the endpoint
            self.dns_zone_group = endpoint_zone_group(
                f"{name}-dns", self.private_endpoint, "file", zone_id, args.resource_group_name, child
            )

        self.account_name = account_name
        self.account_id = self.account.id
        self.share_id = self.share.id
        self.private_endpoint_id = self.private_endpoint.id
        self.nfs_source: pulumi.Output[str] = account_name.apply(
            lambda account: nfs_source(account, HOME_SHARE_NAME, args.endpoint_suffix)
        )
        self.register_outputs(
            {
                "account_name": self.account_name,
                "account_id": self.account_id,
                "share_id": self.share_id,
                "nfs_source": self.nfs_source,
                "private_endpoint_id": self.private_endpoint_id,
            }
        )

"""AccountingDatabase: slurmdbd's database on Azure Database for MySQL flexible server, private only.

Why (`slurm.accounting.database: mysql`): the login node's MariaDB lives on the login VM's OS disk, which
Azure deletes with the VM, so a rebuilt login node would start with an empty history (no sacct, no usage
for fair share, no `azcluster cost`). A managed server outlives the VM, is backed up by Azure and is kept
by `down` like the shared home. Microsoft's CycleCloud Workspace for Slurm offers the same choice.

Why each setting is what it is (learn.microsoft.com/azure/mysql/flexible-server/...):
- Private endpoint, public access off: the server is made with the *public access* connectivity method
  and `network.publicNetworkAccess: Disabled`, then reached only through a private endpoint (group id
  `mysqlServer`) in the cluster's `endpoints` subnet, named through `privatelink.mysql.database.azure.com`
  linked to the VNet (concepts-networking-private-link: "Enabling Private Link is exclusively possible for
  ... instances that are created with public access"; how-to-networking-private-link-deny-public-access).
  Chosen over VNet integration (a subnet delegated to Microsoft.DBforMySQL/flexibleServers) because the
  cluster already has an endpoints subnet with its NSG, private endpoints and zone handling (the shared
  home's), so no new subnet is carved from a user's address space; the NSG opens TCP 3306 from the login
  subnet only (network.py MYSQL_ACCOUNTING).
- TLS: `require_secure_transport=ON` (the flexible server's default, set explicitly so nobody turns it off
  by accident: concepts-networking "TLS and SSL") and TLS 1.2 at least (the server's default
  `tls_version`). slurmdbd connects with `StorageParameters=SSL_CA=<the OS CA bundle>` (slurmdbd.conf(5)
  StorageParameters: SSL_CA): the server's certificate chains to DigiCert Global Root G2 / Microsoft RSA Root
  CA 2017, both in Ubuntu's and Debian's ca-certificates (how-to-connect-tls-ssl).
- `innodb_lock_wait_timeout=900`: what Slurm's accounting guide asks of the database (accounting.html,
  "MySQL configuration"); MySQL's default is 50 s. The buffer pool follows the SKU (the server's
  own setting), so slurmdbd may log that it is below Slurm's recommendation on the smallest sizes.
- Backups: automatic, retention `backup_retention_days` (1-35, concepts-backup-restore), geo-redundant
  when asked (creation only); storage auto-grow on so a full disk never stops accounting.
- Version 8.0.21 (the SDK's ServerVersion enum offers 5.7 and 8.0.21; 5.7 is at end of support).
- Data rule: the server is protected and retained (`down` keeps it; `down --delete-data` deletes it);
  so is its administrator password (a secret generated once, components/cluster_key.py), without which a
  kept server could not be opened again. slurmdbd makes the `slurm_acct_db` database itself (it creates
  it when missing, as the administrator may), so no Database resource exists whose deletion could drop it.

The password reaches the login node the way the munge key does: a Pulumi secret in state, written by
cloud-init into a root-only file (`/etc/azcluster/slurmdbd.pass`, 0600), inside custom data, which Azure
never returns in an API response (custom-data). Key Vault would add a vault, its private endpoint and a
boot-time fetch for one password that still has to be made somewhere first (cluster_key.py's reasoning).

Not proven by a test here: TLS from slurmdbd to the server. Debian 13's slurmdbd 24.11.5 with SSL_CA
fails against MariaDB 11.8 (README, "Accounting that survives"); check it on a first deployment.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
from pulumi_azure_native import dbformysql, network

from .cluster_key import ClusterKey, new_password
from .network import private_dns_zone
from .private_dns import endpoint_zone_group, endpoint_zone_id
from .spec import PRIVATE_DNS_ZONE_NAMES
from .storage import account_private_endpoint, data_options, subscription_salted_name
from .tags import cluster_tags

if TYPE_CHECKING:
    from .network import ClusterNetwork
    from .spec import ClusterSpec

TYPE_TOKEN = "azcluster:index:AccountingDatabase"
ADMIN_LOGIN = "slurmdbd"
"""The server's administrator, which slurmdbd logs in as (StorageUser): the cluster's only client."""
MYSQL_PORT = 3306
MYSQL_GROUP_ID = "mysqlServer"
"""The private link sub-resource of a flexible server (private-endpoint-dns: Microsoft.DBforMySQL)."""
MYSQL_DNS_SUFFIX = "mysql.database.azure.com"
MYSQL_VERSION = "8.0.21"
SERVER_PARAMETERS = {"require_secure_transport": "ON", "innodb_lock_wait_timeout": "900"}
"""Server parameters set on the server (module docstring says why)."""
ROLE = "accounting"


def server_name(cluster_name: str, salt: str) -> str:
    """`<cluster>-slurmdb-<6 hex>`: 3-63 lower-case letters, digits and hyphens (server names are global,
    like storage accounts': the salt is the subscription and region)."""
    prefix = re.sub(r"[^a-z0-9-]", "", cluster_name.lower()).strip("-")[:48] or "azc"
    digest = hashlib.sha256(f"{cluster_name}|{salt}".encode()).hexdigest()[:6]
    return f"{prefix}-slurmdb-{digest}"


def server_fqdn(name: str) -> str:
    """What slurmdbd connects to; inside the VNet it resolves to the private endpoint (CNAME into the
    privatelink zone), and it is the name the server's TLS certificate carries."""
    return f"{name}.{MYSQL_DNS_SUFFIX}"


@dataclass
class AccountingDatabaseArgs:
    cluster_name: str
    location: str
    tags: dict[str, str]
    resource_group_name: pulumi.Input[str]
    endpoints_subnet_id: pulumi.Input[str]
    vnet_id: pulumi.Input[str]
    sku: str = "Standard_B1ms"
    tier: str = "Burstable"
    storage_gb: int = 20
    backup_retention_days: int = 7
    geo_redundant_backup: bool = False
    server_name: str | None = None
    existing_dns_zone_id: str | None = None
    create_dns_zone: bool = True
    protect_data: bool = True
    retain_data: bool = True

    @classmethod
    def from_spec(cls, spec: ClusterSpec, net: ClusterNetwork) -> AccountingDatabaseArgs:
        mysql = spec.slurm.accounting.mysql
        existing_zone, create_zone = private_dns_zone(spec, "mysql", True)
        return cls(
            cluster_name=spec.name,
            location=spec.location,
            tags=dict(spec.tags),
            resource_group_name=net.resource_group_name,
            endpoints_subnet_id=net.subnet_ids["endpoints"],
            vnet_id=net.vnet_id,
            sku=mysql.sku,
            tier=mysql.tier,
            storage_gb=mysql.storage_gb,
            backup_retention_days=mysql.backup_retention_days,
            geo_redundant_backup=mysql.geo_redundant_backup,
            server_name=mysql.server_name,
            existing_dns_zone_id=existing_zone,
            create_dns_zone=create_zone,
        )


class AccountingDatabase(pulumi.ComponentResource):
    """The server, its parameters, its private endpoint and zone, and its administrator password.

    Outputs: `host` (the server's FQDN, with no dependency on the server: safe for the login node's custom
    data), `user`, `password` (secret), `server_id`, `private_endpoint_id`.
    """

    def __init__(self, name: str, args: AccountingDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(TYPE_TOKEN, name, None, opts)
        tags = cluster_tags(args.cluster_name, ROLE, args.tags)
        data = data_options(self, args.protect_data, args.retain_data)
        child = pulumi.ResourceOptions(parent=self)

        name_out = subscription_salted_name(
            self, args.server_name, server_name, args.cluster_name, args.location
        )
        self.admin_password = ClusterKey(f"{name}-admin-password", opts=data, value=new_password())
        self.server = dbformysql.Server(
            f"{name}-server",
            server_name=name_out,
            resource_group_name=args.resource_group_name,
            location=args.location,
            version=MYSQL_VERSION,
            administrator_login=ADMIN_LOGIN,
            administrator_login_password=self.admin_password.value,
            sku=dbformysql.MySQLServerSkuArgs(name=args.sku, tier=args.tier),
            storage=dbformysql.StorageArgs(
                storage_size_gb=args.storage_gb, auto_grow=dbformysql.EnableStatusEnum.ENABLED
            ),
            backup=dbformysql.BackupArgs(
                backup_retention_days=args.backup_retention_days,
                geo_redundant_backup=(
                    dbformysql.EnableStatusEnum.ENABLED
                    if args.geo_redundant_backup
                    else dbformysql.EnableStatusEnum.DISABLED
                ),
            ),
            high_availability=dbformysql.HighAvailabilityArgs(mode=dbformysql.HighAvailabilityMode.DISABLED),
            network=dbformysql.NetworkArgs(public_network_access=dbformysql.EnableStatusEnum.DISABLED),
            tags=tags,
            opts=data,
        )
        # One after the other: a flexible server applies one configuration change at a time.
        previous: list[pulumi.Resource] = []
        self.parameters: dict[str, dbformysql.Configuration] = {}
        for parameter, value in SERVER_PARAMETERS.items():
            config_res = dbformysql.Configuration(
                f"{name}-{parameter.replace('_', '-')}",
                configuration_name=parameter,
                server_name=self.server.name,
                resource_group_name=args.resource_group_name,
                value=value,
                source=dbformysql.ConfigurationSource.USER_OVERRIDE,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(previous)),
            )
            self.parameters[parameter] = config_res
            previous = [config_res]
        self.private_endpoint = account_private_endpoint(
            f"{name}-pe",
            azure_name=f"{args.cluster_name}-slurmdb-pe",
            group=MYSQL_GROUP_ID,
            account_id=self.server.id,
            resource_group_name=args.resource_group_name,
            location=args.location,
            subnet_id=args.endpoints_subnet_id,
            tags=tags,
            opts=child,
        )
        zone_id = endpoint_zone_id(
            f"{name}-mysql-zone",
            PRIVATE_DNS_ZONE_NAMES["mysql"],
            args.existing_dns_zone_id,
            args.create_dns_zone,
            args.resource_group_name,
            args.cluster_name,
            args.vnet_id,
            tags,
            child,
        )
        self.dns_zone_group: network.PrivateDnsZoneGroup | None = None
        if zone_id is not None:
            self.dns_zone_group = endpoint_zone_group(
                f"{name}-dns", self.private_endpoint, MYSQL_GROUP_ID, zone_id, args.resource_group_name, child
            )
        self.host: pulumi.Output[str] = name_out.apply(server_fqdn)
        self.user = ADMIN_LOGIN
        self.password: pulumi.Output[str] = self.admin_password.value
        self.server_id = self.server.id
        self.private_endpoint_id = self.private_endpoint.id
        self.register_outputs(
            {"host": self.host, "server_id": self.server_id, "private_endpoint_id": self.private_endpoint_id}
        )

"""ClusterNetwork: where the cluster lives on the network, and what may talk to what.

One virtual network (or subnets inside an existing one) with a subnet per role: `compute` (GPU nodes),
`login`, `lustre` (Azure Managed Lustre wants its own subnet), `endpoints` (private endpoints) and, when
asked, `AzureBastionSubnet`. Address ranges come from `subnets.plan_subnets`, the same plan the
validation rules check.

Security model (network security groups, one per subnet except Bastion's):
- Nothing comes in from the Internet: an explicit deny, so a later "allow" cannot open it by accident.
- Inside the virtual network only what the cluster needs is allowed; everything else from the
  `VirtualNetwork` tag is denied (Azure's default rule would allow it all):
  compute <-> compute all (Ethernet MPI/NCCL bootstrap; InfiniBand is not Ethernet and not filtered),
  login -> compute all (the login node is the head node: SSH, schedulers, interactive jobs) and back,
  SSH to compute from Bastion, SSH to login from the virtual network (Bastion, peered or VPN networks),
  Lustre TCP 988 and 1019-1023 from clients to the Lustre subnet and from the Lustre servers back to
  the clients (AMLFS needs both directions), anything within the Lustre subnet, HTTPS to private
  endpoints, Azure Load Balancer probes.
- A port is open only where something listens: a feature that serves something (an Azure Files NFS share
  behind a private endpoint, say) declares an `InboundService` (role of the subnet it listens in, ports,
  client roles) and `inbound_services(spec)` returns it; `security_rules` opens exactly that. Nothing in
  the cluster serves NFS by default, so no NSG opens 111 or 2049.
  Source: learn.microsoft.com/azure/azure-managed-lustre/configure-network-security-group and
  amlfs-prerequisites ("inbound and outbound access on port 988 and ports 1019-1023").
- Outbound is left to Azure's defaults; with `nat_gateway` the compute, login and Lustre subnets leave
  through one NAT gateway with a static public IP (no default outbound access), because compute nodes
  have no public IPs and Azure is retiring default outbound access.

Private DNS: `privatelink.blob.core.windows.net` for the blob account's private endpoint, and the
cluster's own zone, where the storage component writes `lustre.<zone>` once the file system exists, so
nodes never wait for Managed Lustre to be created. Both are linked to the virtual network without
auto-registration. The private-link zone is created only when the blob account exists and only where it
cannot clash: Azure links a virtual network to at most one zone of a given name (a second
privatelink.blob.core.windows.net link is refused: "A virtual network cannot be linked to multiple zones
with overlapping namespaces"), and a hub network in a hub-and-spoke design already has one. So in an
existing network azcluster creates none unless `network.dns_zones.blob: create`; `dns_zones.blob: <id>`
reuses the hub's zone (the endpoint's record goes there); with neither, the record is left to the hub
(Azure Policy's private-endpoint DNS integration does that in landing zones) and AZC060 says so. The
cluster's own zone has a name no one else uses, so it is always created.

Subnets are created one after another: Azure rejects concurrent subnet writes to one virtual network
(`AnotherOperationInProgress`). The Lustre subnet also waits for the cluster DNS zone, so anything placed
in it (the file system, and through it the DNS record) comes after the zone exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
from pulumi_azure_native import network, privatedns, resources

from .placement import cluster_zone, zones_for
from .spec import CREATE_DNS_ZONE, PRIVATE_DNS_ZONE_NAMES
from .subnets import SubnetPlan, plan_subnets
from .tags import cluster_tags

if TYPE_CHECKING:
    from .spec import ClusterSpec

BLOB_PRIVATE_DNS_ZONE = PRIVATE_DNS_ZONE_NAMES["blob"]
BASTION_SUBNET_NAME = "AzureBastionSubnet"  # Azure requires exactly this name
SUBNET_ROLES = ("compute", "login", "lustre", "endpoints")
NAT_SUBNET_ROLES = ("compute", "login", "lustre")
LUSTRE_PORTS = ("988", "1019-1023")

_VNET_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Network/virtualNetworks/(?P<name>[^/]+)/?$",
    re.IGNORECASE,
)


def parse_vnet_id(vnet_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of a virtual network resource id; ValueError when malformed."""
    match = _VNET_ID.match(vnet_id.strip())
    if not match:
        raise ValueError(
            f"existing_vnet_id {vnet_id!r} is not a virtual network id: expected "
            "/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<name>"
        )
    return match["sub"], match["rg"], match["name"]


@dataclass(frozen=True)
class SecurityRule:
    """One inbound NSG rule, as plain data (what the tests and `plan` read)."""

    name: str
    priority: int
    access: str  # "Allow" | "Deny"
    protocol: str  # "Tcp" | "Udp" | "*"
    sources: tuple[str, ...]  # CIDRs, or one service tag
    ports: tuple[str, ...]  # "*" or ports / ranges
    destination: str
    description: str

    def to_args(self) -> network.SecurityRuleArgs:
        many_sources = len(self.sources) > 1
        many_ports = len(self.ports) > 1
        return network.SecurityRuleArgs(
            name=self.name,
            priority=self.priority,
            direction=network.SecurityRuleDirection.INBOUND,
            access=self.access,
            protocol=self.protocol,
            source_address_prefix=None if many_sources else self.sources[0],
            source_address_prefixes=list(self.sources) if many_sources else None,
            source_port_range="*",
            destination_address_prefix=self.destination,
            destination_port_range=None if many_ports else self.ports[0],
            destination_port_ranges=list(self.ports) if many_ports else None,
            description=self.description,
        )


# Why each rule exists: written into the rule's description, so the portal shows it too.
RULE_REASONS = {
    "allow-compute-intra": "Between GPU nodes: MPI/NCCL bootstrap over Ethernet, schedulers.",
    "allow-from-login": "From the login (head) node: SSH, scheduler, interactive jobs.",
    "allow-ssh-from-bastion": "SSH through Azure Bastion.",
    "allow-lustre-from-servers": "Managed Lustre servers to clients (AMLFS needs 988, 1019-1023 both ways).",
    "allow-ssh-from-vnet": "SSH from Bastion and from peered or VPN-connected networks.",
    "allow-from-compute": "From GPU nodes back to the head node (scheduler, job callbacks).",
    "allow-login-intra": "Between login nodes.",
    "allow-lustre-intra": "Between Managed Lustre servers (AMLFS requires any/any within its subnet).",
    "allow-lustre-clients": "Lustre clients to the file system: TCP 988 and 1019-1023.",
    "allow-azure-monitor": "Azure Monitor health and security checks of the AMLFS hosts (AMLFS NSG guide).",
    "allow-https-from-vnet": "HTTPS to private endpoints (blob) from the network, Lustre HSM included.",
    "allow-azure-load-balancer": "Azure Load Balancer health probes (Azure's default, kept explicit).",
    "deny-other-vnet-inbound": "Anything inside the network not allowed above (Azure's default allows it).",
    "deny-internet-inbound": "Nothing from the Internet, explicitly.",
}
ANY = ("*",)
SERVICE_PRIORITY_BASE = 200
"""Priorities of `InboundService` rules: 200, 210, ... (below the Load Balancer and deny rules)."""


@dataclass(frozen=True)
class InboundService:
    """A port something in the cluster serves, opened only on the subnet where it listens, only to the
    subnets of its clients. Whatever serves it declares it (see `inbound_services`)."""

    name: str
    """NSG rule name, e.g. "allow-nfs-home" (unique within the subnet's NSG)."""
    role: str
    """The subnet role where the server listens: compute, login, lustre or endpoints."""
    ports: tuple[str, ...]
    protocol: str
    """"Tcp", "Udp" or "*"."""
    clients: tuple[str, ...]
    """Subnet roles allowed to connect, e.g. ("compute", "login")."""
    description: str

    def __post_init__(self) -> None:
        unknown = [r for r in (self.role, *self.clients) if r not in SUBNET_ROLES]
        if unknown or not self.clients or not self.ports:
            raise ValueError(
                f"inbound service {self.name!r}: roles must be among {', '.join(SUBNET_ROLES)} "
                f"(got {', '.join(unknown) or 'no clients or no ports'})"
            )


AZURE_FILES_NFS = InboundService(
    "allow-nfs-files",
    "endpoints",
    ("2049",),
    "Tcp",
    ("compute", "login"),
    "NFSv4.1 to an Azure Files share's private endpoint (port 2049 only) from the nodes and login node.",
)
"""Ready for a feature that mounts an Azure Files NFS share through a private endpoint in the endpoints
subnet: that subnet's NSG applies to private endpoints (network policies are on), so 2049 must be open
there. NFSv4.x needs TCP 2049 only, no portmapper (RFC 7530 section 3.1, RFC 8881 section 2.9.3); Azure
Files serves NFS 4.1 (learn.microsoft.com/azure/storage/files/files-nfs-protocol)."""


MYSQL_ACCOUNTING = InboundService(
    "allow-mysql-accounting",
    "endpoints",
    ("3306",),
    "Tcp",
    ("login",),
    "MySQL (TLS) to the accounting database's private endpoint from the login node (slurmdbd) only.",
)
"""With `slurm.accounting.database: mysql` (components/accounting_db.py): slurmdbd on the login node is the
server's only client, so 3306 is open from the login subnet alone; GPU nodes never reach the database."""


def inbound_services(spec: ClusterSpec) -> tuple[InboundService, ...]:
    """What the spec's features serve inside the network: nothing by default. A feature that serves a
    port (e.g. an NFS home share) adds its `InboundService` here, so its NSG rule exists exactly when the
    server does. The shared home (components/home.py) is an Azure Files NFS share behind a private
    endpoint in the endpoints subnet."""
    services: list[InboundService] = []
    if spec.storage.home.enabled:
        services.append(AZURE_FILES_NFS)
    if spec.uses_mysql_accounting:
        services.append(MYSQL_ACCOUNTING)
    return tuple(services)


def _rule(
    name: str,
    priority: int,
    sources: tuple[str, ...],
    ports: tuple[str, ...],
    destination: str,
    protocol: str,
) -> SecurityRule:
    access = "Deny" if name.startswith("deny-") else "Allow"
    return SecurityRule(name, priority, access, protocol, sources, ports, destination, RULE_REASONS[name])


def security_rules(
    plan: SubnetPlan, address_space: str, bastion: bool, services: tuple[InboundService, ...] = ()
) -> dict[str, list[SecurityRule]]:
    """Inbound rules per subnet role (pure, so `plan` and tests can read them without Pulumi); each of
    `services` opens its ports on its own subnet to its clients' subnets only."""
    compute, login, lustre, endpoints = (str(getattr(plan, r)) for r in SUBNET_ROLES)
    bastion_ssh = [_rule("allow-ssh-from-bastion", 120, (str(plan.bastion),), ("22",), compute, "Tcp")]
    if not bastion:
        bastion_ssh = []
    rules: dict[str, list[SecurityRule]] = {
        "compute": [
            _rule("allow-compute-intra", 100, (compute,), ANY, compute, "*"),
            _rule("allow-from-login", 110, (login,), ANY, compute, "*"),
            *bastion_ssh,
            _rule("allow-lustre-from-servers", 130, (lustre,), LUSTRE_PORTS, compute, "Tcp"),
        ],
        "login": [
            _rule("allow-ssh-from-vnet", 100, ("VirtualNetwork",), ("22",), login, "Tcp"),
            _rule("allow-from-compute", 110, (compute,), ANY, login, "*"),
            _rule("allow-login-intra", 120, (login,), ANY, login, "*"),
            _rule("allow-lustre-from-servers", 130, (lustre,), LUSTRE_PORTS, login, "Tcp"),
        ],
        "lustre": [
            _rule("allow-lustre-intra", 100, (lustre,), ANY, lustre, "*"),
            _rule("allow-lustre-clients", 110, (compute, login), LUSTRE_PORTS, lustre, "Tcp"),
            _rule("allow-azure-monitor", 120, ("AzureMonitor",), ANY, lustre, "Tcp"),
        ],
        "endpoints": [
            _rule("allow-https-from-vnet", 100, ("VirtualNetwork",), ("443",), endpoints, "Tcp"),
        ],
    }
    for index, service in enumerate(services):
        sources = tuple(str(getattr(plan, client)) for client in service.clients)
        rules[service.role].append(
            SecurityRule(
                service.name,
                SERVICE_PRIORITY_BASE + 10 * index,
                "Allow",
                service.protocol,
                sources,
                service.ports,
                str(getattr(plan, service.role)),
                service.description,
            )
        )
    for role, role_rules in rules.items():
        destination = str(getattr(plan, role))
        role_rules += [
            _rule("allow-azure-load-balancer", 3900, ("AzureLoadBalancer",), ANY, destination, "*"),
            _rule("deny-other-vnet-inbound", 4000, ("VirtualNetwork",), ANY, "*", "*"),
            _rule("deny-internet-inbound", 4096, ("Internet",), ANY, "*", "*"),
        ]
    return rules


@dataclass
class ClusterNetworkArgs:
    """Inputs of ClusterNetwork. Build it from a spec with `ClusterNetworkArgs.from_spec(spec)`."""

    cluster_name: str
    location: str
    tags: dict[str, str]
    resource_group_name: str | None  # existing group to deploy into; None: create f"{cluster_name}-rg"
    address_space: str
    subnet_plan: SubnetPlan
    bastion: bool = True
    nat_gateway: bool = True
    existing_vnet_id: str | None = None  # join this virtual network: create only the subnets in it
    private_dns_zone: str = ""  # default f"{cluster_name}.azcluster.internal"
    zone: str | None = None  # availability zone of the NAT gateway and its IP, when the cluster is zonal
    bastion_sku: str = "Standard"  # Standard or Premium allow native-client SSH (tunneling); Basic does not
    blob_dns_zone_name: str = BLOB_PRIVATE_DNS_ZONE  # other clouds use other suffixes
    existing_blob_dns_zone_id: str | None = None  # reuse a hub's privatelink.blob zone (already linked)
    create_blob_dns_zone: bool = True  # without an existing one; False: no zone, no link (see the docstring)
    retain_resource_group: bool = True  # keep the group on destroy: deleting it would delete kept data too
    services: tuple[InboundService, ...] = ()  # ports something in the cluster serves (inbound_services)

    def __post_init__(self) -> None:
        if not self.cluster_name:
            raise ValueError("cluster_name must not be empty")
        if not self.private_dns_zone:
            self.private_dns_zone = f"{self.cluster_name}.azcluster.internal"
        if self.existing_vnet_id:
            parse_vnet_id(self.existing_vnet_id)
        if self.bastion_sku not in ("Basic", "Standard", "Premium", "Developer"):
            raise ValueError(f"bastion_sku {self.bastion_sku!r}: use Basic, Standard, Premium or Developer")

    @classmethod
    def from_spec(cls, spec: ClusterSpec) -> ClusterNetworkArgs:
        """Everything from the spec; subnets carved by the same plan the validation rules check."""
        space = spec.address_space()
        if space is None:
            raise ValueError(f"network.address_space {spec.network.address_space!r} is not an IPv4 CIDR")
        plan = plan_subnets(space, spec.total_nodes, spec.network.subnets.model_dump())
        lustre = spec.storage.lustre
        holds_data = spec.storage.blob.enabled or bool(lustre and lustre.enabled)
        return cls(
            cluster_name=spec.name,
            location=spec.location,
            tags=dict(spec.tags),
            resource_group_name=spec.resource_group,
            address_space=str(space),
            subnet_plan=plan,
            bastion=spec.network.bastion,
            nat_gateway=spec.network.nat_gateway,
            existing_vnet_id=spec.network.existing_vnet_id,
            zone=cluster_zone(spec).zone,
            retain_resource_group=holds_data,
            services=inbound_services(spec),
            **_blob_dns_zone(spec),
        )


def private_dns_zone(spec: ClusterSpec, kind: str, needed: bool) -> tuple[str | None, bool]:
    """(existing zone id, create one?) for a private-link kind (`spec.PRIVATE_DNS_ZONE_NAMES`): reuse the
    zone `network.dns_zones.<kind>` names; else create one when an endpoint of that kind exists (`needed`),
    in an existing network only when asked (`create`), because Azure links a network to only one zone of
    a name (module docstring). Neither: the endpoint's record is left to the network's own DNS (AZC060)."""
    choice = spec.network.dns_zones.get(kind)
    if choice and choice.strip().lower() != CREATE_DNS_ZONE:
        return choice.strip(), False
    wanted = choice is not None or spec.network.existing_vnet_id is None
    return None, needed and wanted


def _blob_dns_zone(spec: ClusterSpec) -> dict[str, object]:
    existing, create = private_dns_zone(spec, "blob", spec.storage.blob.enabled)
    return {"existing_blob_dns_zone_id": existing, "create_blob_dns_zone": create}


class ClusterNetwork(pulumi.ComponentResource):
    """Resource group, virtual network and subnets, NSGs, NAT gateway, Bastion and private DNS zones.

    Outputs: `resource_group_name`, `vnet_id`, `vnet_name`, `subnet_ids` (compute, login, lustre,
    endpoints and, with Bastion, bastion), `subnet_prefixes` (plain CIDRs), `nsg_ids`, `blob_dns_zone_id`,
    `cluster_dns_zone_name` (plain str), `cluster_dns_zone_id`, `nat_public_ip` (None without NAT),
    `bastion_name` (None without Bastion), `location`, `zone`.
    """

    def __init__(self, name: str, args: ClusterNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("azcluster:index:ClusterNetwork", name, None, opts)
        cluster, location = args.cluster_name, args.location
        child = pulumi.ResourceOptions(parent=self)

        def tags(role: str) -> dict[str, str]:
            return cluster_tags(cluster, role, args.tags)

        # Resource group: the given one is used by name and never created or deleted.
        self.resource_group: resources.ResourceGroup | None = None
        if args.resource_group_name:
            rg_name: pulumi.Output[str] = pulumi.Output.from_input(args.resource_group_name)
        else:
            self.resource_group = resources.ResourceGroup(
                f"{name}-rg",
                resource_group_name=f"{cluster}-rg",
                location=location,
                tags=tags("cluster"),
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_resource_group),
            )
            rg_name = self.resource_group.name
        self.resource_group_name = rg_name

        # Virtual network, or the existing one (its subnets go in its own resource group).
        self.vnet: network.VirtualNetwork | None = None
        if args.existing_vnet_id:
            _, vnet_rg, vnet_name = parse_vnet_id(args.existing_vnet_id)
            vnet_rg_name: pulumi.Input[str] = vnet_rg
            self.vnet_id = pulumi.Output.from_input(args.existing_vnet_id)
            self.vnet_name = pulumi.Output.from_input(vnet_name)
        else:
            self.vnet = network.VirtualNetwork(
                f"{name}-vnet",
                virtual_network_name=f"{cluster}-vnet",
                resource_group_name=rg_name,
                location=location,
                address_space=network.AddressSpaceArgs(address_prefixes=[args.address_space]),
                tags=tags("network"),
                opts=child,
            )
            vnet_rg_name = rg_name
            self.vnet_id = self.vnet.id
            self.vnet_name = self.vnet.name

        # Network security groups, one per subnet (not AzureBastionSubnet: Bastion needs its own rules).
        rules = security_rules(args.subnet_plan, args.address_space, args.bastion, args.services)
        self.nsgs = {
            role: network.NetworkSecurityGroup(
                f"{name}-nsg-{role}",
                network_security_group_name=f"{cluster}-{role}-nsg",
                resource_group_name=rg_name,
                location=location,
                security_rules=[rule.to_args() for rule in rules[role]],
                tags=tags("network"),
                opts=child,
            )
            for role in SUBNET_ROLES
        }
        self.nsg_ids = {role: nsg.id for role, nsg in self.nsgs.items()}

        # Outbound: one NAT gateway with a static Standard public IP.
        zones = zones_for(location, args.zone)  # never in a region without zones (placement.py)
        self.nat_gateway: network.NatGateway | None = None
        self.nat_public_ip: pulumi.Output[str] | None = None
        if args.nat_gateway:
            nat_ip = network.PublicIPAddress(
                f"{name}-nat-ip",
                public_ip_address_name=f"{cluster}-nat-ip",
                resource_group_name=rg_name,
                location=location,
                sku=network.PublicIPAddressSkuArgs(
                    name=network.PublicIPAddressSkuName.STANDARD, tier=network.PublicIPAddressSkuTier.REGIONAL
                ),
                public_ip_allocation_method=network.IPAllocationMethod.STATIC,
                public_ip_address_version=network.IPVersion.I_PV4,
                zones=zones,
                tags=tags("nat"),
                opts=child,
            )
            self.nat_gateway = network.NatGateway(
                f"{name}-nat",
                nat_gateway_name=f"{cluster}-nat",
                resource_group_name=rg_name,
                location=location,
                sku=network.NatGatewaySkuArgs(name=network.NatGatewaySkuName.STANDARD),
                public_ip_addresses=[network.SubResourceArgs(id=nat_ip.id)],
                zones=zones,
                tags=tags("nat"),
                opts=child,
            )
            self.nat_public_ip = nat_ip.ip_address

        # Private DNS: the blob private-link zone and the cluster's own zone.
        self.cluster_dns_zone = privatedns.PrivateZone(
            f"{name}-zone",
            private_zone_name=args.private_dns_zone,
            resource_group_name=rg_name,
            location="global",
            tags=tags("dns"),
            opts=child,
        )
        self.cluster_dns_zone_name: str = args.private_dns_zone
        self.cluster_dns_zone_id = self.cluster_dns_zone.id
        self._link(name, "zone-link", self.cluster_dns_zone, f"{cluster}-vnet", rg_name, tags("dns"))
        self.blob_dns_zone: privatedns.PrivateZone | None = None
        self.blob_dns_zone_id: pulumi.Output[str] | None = None
        if args.existing_blob_dns_zone_id:
            self.blob_dns_zone_id = pulumi.Output.from_input(args.existing_blob_dns_zone_id)
        elif args.create_blob_dns_zone:
            self.blob_dns_zone = privatedns.PrivateZone(
                f"{name}-blob-zone",
                private_zone_name=args.blob_dns_zone_name,
                resource_group_name=rg_name,
                location="global",
                tags=tags("dns"),
                opts=child,
            )
            self.blob_dns_zone_id = self.blob_dns_zone.id
            self._link(name, "blob-zone-link", self.blob_dns_zone, f"{cluster}-vnet", rg_name, tags("dns"))

        # Subnets, one after another (see the module docstring).
        plan = args.subnet_plan
        self.subnets: dict[str, network.Subnet] = {}
        previous: pulumi.Resource | None = None
        for role in SUBNET_ROLES:
            waits_for = [r for r in (previous, self.cluster_dns_zone if role == "lustre" else None) if r]
            nat = self.nat_gateway if role in NAT_SUBNET_ROLES else None
            subnet = network.Subnet(
                f"{name}-subnet-{role}",
                subnet_name=f"{cluster}-{role}",
                resource_group_name=vnet_rg_name,
                virtual_network_name=self.vnet_name,
                address_prefix=str(getattr(plan, role)),
                network_security_group=network.NetworkSecurityGroupArgs(id=self.nsgs[role].id),
                nat_gateway=network.SubResourceArgs(id=nat.id) if nat else None,
                default_outbound_access=False if args.nat_gateway else None,
                private_endpoint_network_policies=(
                    network.VirtualNetworkPrivateEndpointNetworkPolicies.NETWORK_SECURITY_GROUP_ENABLED
                    if role == "endpoints"
                    else None
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=waits_for),
            )
            self.subnets[role] = subnet
            previous = subnet
        self.bastion_host: network.BastionHost | None = None
        self.bastion_name: pulumi.Output[str] | None = None
        if args.bastion:
            self.subnets["bastion"] = network.Subnet(
                f"{name}-subnet-bastion",
                subnet_name=BASTION_SUBNET_NAME,
                resource_group_name=vnet_rg_name,
                virtual_network_name=self.vnet_name,
                address_prefix=str(plan.bastion),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous] if previous else None),
            )
            self._bastion(name, args, rg_name, tags("bastion"))
        self.subnet_ids: dict[str, pulumi.Output[str]] = {role: s.id for role, s in self.subnets.items()}
        self.subnet_prefixes: dict[str, str] = {role: str(getattr(plan, role)) for role in self.subnets}
        self.location = location
        self.zone = args.zone

        self.register_outputs(
            {
                "resource_group_name": self.resource_group_name,
                "vnet_id": self.vnet_id,
                "vnet_name": self.vnet_name,
                "subnet_ids": self.subnet_ids,
                "nsg_ids": self.nsg_ids,
                "blob_dns_zone_id": self.blob_dns_zone_id,
                "cluster_dns_zone_name": self.cluster_dns_zone_name,
                "cluster_dns_zone_id": self.cluster_dns_zone_id,
                "nat_public_ip": self.nat_public_ip,
                "bastion_name": self.bastion_name,
            }
        )

    def _link(
        self,
        name: str,
        suffix: str,
        zone: privatedns.PrivateZone,
        link_name: str,
        rg_name: pulumi.Input[str],
        tags: dict[str, str],
    ) -> privatedns.VirtualNetworkLink:
        """Link a private zone to the cluster's virtual network; no auto-registration of VM names."""
        return privatedns.VirtualNetworkLink(
            f"{name}-{suffix}",
            private_zone_name=zone.name,
            virtual_network_link_name=link_name,
            resource_group_name=rg_name,
            location="global",
            virtual_network=privatedns.SubResourceArgs(id=self.vnet_id),
            registration_enabled=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _bastion(self, name: str, args: ClusterNetworkArgs, rg_name: pulumi.Input[str], tags: dict) -> None:
        """Azure Bastion with its Standard static public IP; tunneling on for `az network bastion ssh`."""
        ip = network.PublicIPAddress(
            f"{name}-bastion-ip",
            public_ip_address_name=f"{args.cluster_name}-bastion-ip",
            resource_group_name=rg_name,
            location=args.location,
            sku=network.PublicIPAddressSkuArgs(
                name=network.PublicIPAddressSkuName.STANDARD, tier=network.PublicIPAddressSkuTier.REGIONAL
            ),
            public_ip_allocation_method=network.IPAllocationMethod.STATIC,
            public_ip_address_version=network.IPVersion.I_PV4,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        tunneling = args.bastion_sku in ("Standard", "Premium")
        self.bastion_host = network.BastionHost(
            f"{name}-bastion",
            bastion_host_name=f"{args.cluster_name}-bastion",
            resource_group_name=rg_name,
            location=args.location,
            sku=network.SkuArgs(name=args.bastion_sku),
            enable_tunneling=True if tunneling else None,
            ip_configurations=[
                network.BastionHostIPConfigurationArgs(
                    name="ipconfig",
                    subnet=network.SubResourceArgs(id=self.subnets["bastion"].id),
                    public_ip_address=network.SubResourceArgs(id=ip.id),
                    private_ip_allocation_method=network.IPAllocationMethod.DYNAMIC,
                )
            ],
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.bastion_name = self.bastion_host.name

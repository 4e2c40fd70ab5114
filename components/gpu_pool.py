"""GpuPool: a pool of identical GPU nodes, one Uniform scale set per InfiniBand island.

VMs share an InfiniBand fabric only inside one scale set with a single placement group, and a placement
group holds 100 VMs unless support raises it. So an IB pool of N nodes becomes ceil(N / island limit) scale
sets (`PoolSpec.island_sizes()`), each an island a scheduler places jobs in. Each set follows what Azure's
HPC tooling (azurehpc, CycleCloud) proved: Uniform orchestration, `singlePlacementGroup: true`,
`platformFaultDomainCount: 1`, overprovisioning off (extra VMs would join the fabric and be deleted),
manual upgrades (a model change never reimages a training node under a job), accelerated networking,
no public IP, SSH keys only. Sizes without InfiniBand (NC) get one scale set and none of the IB settings.

Every GPU scale set carries the Application Health extension (Rich Health States, typeHandlerVersion 2.0)
probing the endpoint the bootstrap installs (`bootstrap.HEALTH_PORT`/`HEALTH_PATH`), so `azcluster status`
sees each node's health in the instance view; automatic instance repairs are on only when the pool asks.

An island's node count is requested here (`sku.capacity`) and owned by azcluster afterwards: the scale set
is created asking for the whole island, with `ignoreChanges: ["sku.capacity"]`, and `azcluster grow`
keeps what Azure placed, removes failed instances and asks for the gap later through the Compute API
(azcluster/ops/grow.py says why). Without that, a shortfall would be drift Pulumi keeps trying to undo,
each later update asking again for the whole island and failing again. The same holds for the count
elastic changes by deallocating and starting instances: Pulumi never sees it.

A pool with `capacity.reservation` allocates from a capacity reservation group: an existing one by id, or
one created here (`compute.CapacityReservationGroup` in the zones the pool may use, and one
`compute.CapacityReservation` with `sku {name: size, capacity: nodes}` in the zone its scale set is built
in), referenced as `virtualMachineProfile.capacityReservation.capacityReservationGroup.id`; the scale set
depends on the reservation, so it allocates from held capacity. Azure associates a Uniform scale set with
a group only with `singlePlacementGroup: false` (InfiniBand islands cannot: AZC015) and reserves no
ND-series size (AZC104); a zonal VM uses a reservation of its own zone (AZC109). Sources:
learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview and
capacity-reservation-associate-virtual-machine-scale-set. A reservation holds no data and bills at the
size's pay-as-you-go rate whether used or not, so it is never protected or retained: `down` deletes it.

GB200 and GB300 v6 (NVL72 racks of 18 VMs, catalogue `rack_vms`) get the same scale sets: Azure's
rack-scale placement cannot be expressed here. It takes an interconnect group
(Microsoft.Network/interconnectGroups, API 2025-07-01, which pulumi-azure-native 3.x can create as
`network.InterconnectGroup`) joined by the scale set's `highSpeedInterconnectPlacement` (Compute API
2025-04-01), `interconnectGroupProfile` (2026-03-01) or an interconnect block
(Microsoft.Compute/interconnectBlocks); `compute.VirtualMachineScaleSet` here is API 2024-11-01 with none
of them, and there is no InterconnectBlock resource. A group nothing can join would only be a resource to
pay attention to, so none is created; rule AZC131 and README "GB200/GB300 racks" say what a user does by
hand. Which rack a VM landed in is read from its GPUs at boot (bootstrap/gb_boot.py).

An island azcluster switched to a stand-in size (`capacity.island_stand_ins`, components/capacity.py) is
built as that size: its `sku.name`, its default image and disk controller are the stand-in's, and its
custom data prepares the stand-in's GPUs and InfiniBand ports; it allocates without the pool's capacity
reservation (which holds the pool's own size). A change of zone or size replaces the island's scale set,
deleting it first (`replaceOnChanges` zones and sku.name): azcluster only moves an island it emptied.

Property names follow pulumi-azure-native 3.x (`compute.VirtualMachineScaleSet`, API 2024-11-01).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import compute

from . import bootstrap, catalog
from .capacity import island_size_name, island_zone
from .images import image_reference, purchase_plan
from .placement import cluster_zone, region_has_zones, zones_for
from .spec import ClusterSpec, PoolSpec
from .tags import ROLE_COMPUTE, cluster_tags

TYPE_TOKEN = "azcluster:index:GpuPool"

SCALE_SET_NAME_MAX = 64
"""Azure's limit on a scale set's name (Microsoft.Compute/virtualMachineScaleSets: 1-64 characters)."""
CUSTOM_DATA_MAX_BYTES = 65535
"""Azure's limit on custom data once base64-decoded (osProfile.customData)."""

HEALTH_EXTENSION_NAME = "HealthExtension"
"""The extension's name in the scale set model; publisher, type, version and settings are the bootstrap's
(bootstrap: HEALTH_EXTENSION_*, `health_extension_settings()`), the other side of the probe."""

REPAIR_GRACE_PERIOD = "PT30M"
"""automaticRepairsPolicy.gracePeriod, ISO 8601 (Azure allows 10-90 minutes): no repair before it ends."""
REPAIR_ACTION = "Replace"
"""automaticRepairsPolicy.repairAction: Replace (default), Reimage or Restart. A bad GPU or IB link stays
bad across a reimage or restart on the same host; Replace gets a new host."""

OS_DISK_STORAGE = "Premium_LRS"

CAPACITY_PROPERTY = "sku.capacity"
"""The input Pulumi ignores after creation: the island's node count, which azcluster owns from then on
(property path as Pulumi's `ignoreChanges` takes it: the input's camelCase name, dotted)."""

REPLACE_ON_CHANGES = ("zones", "sku.name")
"""What moves an island: another zone or another size is a new scale set (deleted first, same name)."""

CustomData = Callable[[int], pulumi.Input[str]] | Sequence[pulumi.Input[str]] | None
"""Per-island custom data (base64): a function of the island index, or one value per island, or none."""


@dataclass
class GpuPoolArgs:
    """What a GpuPool needs. Plain values where the spec has them; Inputs where other resources do."""

    cluster_name: str
    """Cluster name: prefix of the scale sets' names and the value of the azcluster-cluster tag."""
    pool: PoolSpec
    """The pool: name, size, node count, island limit, image, spot, reservation, disk, repair."""
    size: catalog.GpuSize | None
    """The pool's size from the catalogue (`catalog.find_size(pool.size)`); None is an error that names
    the closest known sizes."""
    location: str
    """Azure region, e.g. eastus."""
    resource_group_name: pulumi.Input[str]
    """Resource group the scale sets are created in."""
    subnet_id: pulumi.Input[str]
    """The compute subnet: every node's one NIC goes there, with no public IP."""
    identity_id: pulumi.Input[str]
    """Resource id of the user-assigned managed identity the nodes use (blob mounts, Azure APIs)."""
    admin_username: str = "azureuser"
    """Admin user name on every node."""
    ssh_public_keys: list[str] = field(default_factory=list)
    """OpenSSH public keys (key text) for the admin user; password authentication is always off."""
    custom_data: CustomData = None
    """Base64 cloud-init per island; `from_spec` renders it with azcluster.components.bootstrap."""
    zone: str | None = None
    """Availability zone ('1'-'3') for every scale set, or None for a regional deployment."""
    tags: dict[str, str] = field(default_factory=dict)
    """Extra tags; azcluster's own (cluster, role, pool, island) are added and win."""

    @classmethod
    def from_spec(
        cls,
        spec: ClusterSpec,
        pool: PoolSpec,
        *,
        resource_group_name: pulumi.Input[str],
        subnet_id: pulumi.Input[str],
        identity_id: pulumi.Input[str],
        lustre_mount_host: pulumi.Input[str] | None = None,
        blob_account_name: pulumi.Input[str] | None = None,
        identity_client_id: pulumi.Input[str] | None = None,
        home_nfs_source: pulumi.Input[str] | None = None,
        munge_key: pulumi.Input[str] | None = None,
        dns_zone: str | None = None,
        metrics_write_url: pulumi.Input[str] | None = None,
    ) -> GpuPoolArgs:
        """Args for one of the spec's pools, with custom data rendered by azcluster.components.bootstrap.

        `lustre_mount_host` must be a name that resolves once Managed Lustre exists (never the file
        system's own output), so the scale sets do not wait for Lustre; nodes mount it when it appears.
        `blob_account_name` (None: no blob mount) and `identity_client_id` (the user-assigned identity
        BlobFuse2 authenticates as) go into the nodes' cloud-init. `home_nfs_source` (None: no shared
        home) is the NFS export mounted at the spec's `storage.home.mount`. `munge_key` (the cluster's
        key, a secret: ClusterKey) and `dns_zone` (the cluster's private zone, where the controller is
        `slurmctld.<zone>`): given both, as Cluster does with `scheduler: slurm`, the nodes join Slurm by
        themselves; a pool built on its own has no controller to join and gets no Slurm.
        `metrics_write_url` (the data collection rule's remote-write URL; None: no metrics) with
        `identity_client_id`: the nodes send their metrics there as that identity (bootstrap/metrics.py).
        """
        return cls(
            cluster_name=spec.name,
            pool=pool,
            size=catalog.find_size(pool.size),
            location=spec.location,
            resource_group_name=resource_group_name,
            subnet_id=subnet_id,
            identity_id=identity_id,
            admin_username=spec.ssh.admin_username,
            ssh_public_keys=list(spec.ssh.public_keys),
            custom_data=_bootstrap_custom_data(
                spec,
                pool,
                lustre_mount_host,
                blob_account_name,
                identity_client_id,
                home_nfs_source,
                munge_key,
                dns_zone,
                metrics_write_url,
            ),
            zone=cluster_zone(spec).zone,
            tags=dict(spec.tags),
        )


def _bootstrap_custom_data(
    spec: ClusterSpec,
    pool: PoolSpec,
    lustre_host: pulumi.Input[str] | None,
    blob_account: pulumi.Input[str] | None,
    client_id: pulumi.Input[str] | None,
    home_source: pulumi.Input[str] | None = None,
    munge_key: pulumi.Input[str] | None = None,
    dns_zone: str | None = None,
    metrics_url: pulumi.Input[str] | None = None,
) -> Callable[[int], pulumi.Input[str]]:
    """Per-island custom data; rendered inside `Output.all` when a value only exists at deployment.

    With a munge key the result is a secret Output (the key is one), so the custom data is encrypted in
    Pulumi's state and masked in previews and `plan --json`.
    """
    metrics_client = client_id if metrics_url is not None else None  # the agent's remote-write identity
    if blob_account is None:
        client_id = None  # only BlobFuse2 needs the identity's client id
    values = [lustre_host, blob_account, client_id, home_source, munge_key, metrics_url, metrics_client]

    def gather(resolved: list[Any]) -> bootstrap.PoolBoot:
        host, account, client, home, munge, url, metrics_id = resolved
        slurm = bootstrap.SlurmBoot(munge, dns_zone) if munge is not None and dns_zone else None
        storage = bootstrap.StorageValues(host, account, client, home_source=home)
        metrics = bootstrap.MetricsValues(url, metrics_id) if url and metrics_id else None
        return bootstrap.PoolBoot.gather(spec, pool, storage, slurm, metrics)

    # One PoolBoot for all the pool's islands (they resolve the same values): gathered once, and once
    # per pool the Outputs it waits for, however many scale sets the pool has.
    boot: Any = None

    def render(island: int) -> pulumi.Input[str]:
        nonlocal boot
        if boot is None:
            if any(isinstance(value, pulumi.Output) for value in values):
                boot = pulumi.Output.all(*values).apply(gather)
            else:
                boot = gather(values)
        if isinstance(boot, pulumi.Output):
            return boot.apply(lambda pool_boot: pool_boot.custom_data(island))
        return boot.custom_data(island)

    return render


@dataclass(frozen=True)
class Island:
    """One scale set of the pool: its index, node count and Azure name."""

    index: int
    nodes: int
    name: str


def plan_islands(cluster_name: str, pool: PoolSpec, size: catalog.GpuSize) -> list[Island]:
    """The pool's scale sets: one per IB island, or a single set for sizes without InfiniBand."""
    if size.has_infiniband:
        return [
            Island(index, nodes, f"{cluster_name}-{pool.name}-ib{index}")
            for index, nodes in enumerate(pool.island_sizes())
        ]
    return [Island(0, pool.nodes, f"{cluster_name}-{pool.name}")]


def _validate(args: GpuPoolArgs) -> tuple[catalog.GpuSize, list[Island]]:
    """Refuse what Azure would refuse, with messages that say what to change."""
    size = args.size
    if size is None:
        known = catalog.gpu_sizes()
        guesses = catalog.closest(args.pool.size, list(known))
        hint = (
            f"did you mean {', '.join(guesses)}?" if guesses else f"known sizes: {', '.join(sorted(known))}"
        )
        raise ValueError(f"pool {args.pool.name!r}: unknown GPU size {args.pool.size!r}; {hint}")
    if not args.ssh_public_keys:
        raise ValueError(
            f"pool {args.pool.name!r}: no SSH public keys; password authentication is off, so nobody could "
            "log in. Add keys under ssh.public_keys."
        )
    reservation = args.pool.uses_reservation
    if reservation and size.has_infiniband:
        # learn.microsoft.com/azure/virtual-machines/capacity-reservation-associate-virtual-machine-scale-set:
        # a Uniform scale set uses a reservation only with singlePlacementGroup false, which IB rules out.
        raise ValueError(
            f"pool {args.pool.name!r}: {size.name} islands are Uniform scale sets with a single placement "
            "group, which Azure cannot associate with a capacity reservation group; remove "
            f"{args.pool.reservation_path()} (reservations work for sizes without InfiniBand)"
        )
    if reservation and args.pool.spot:
        raise ValueError(
            f"pool {args.pool.name!r}: Spot VMs cannot use a capacity reservation group; drop one of the two"
        )
    islands = plan_islands(args.cluster_name, args.pool, size)
    for island in islands:
        if len(island.name) > SCALE_SET_NAME_MAX:
            raise ValueError(
                f"pool {args.pool.name!r}: scale set name {island.name!r} has {len(island.name)} characters, "
                f"Azure allows {SCALE_SET_NAME_MAX}; shorten the cluster or pool name."
            )
    data = args.custom_data
    if data is not None and not callable(data) and len(data) != len(islands):
        raise ValueError(
            f"pool {args.pool.name!r}: {len(data)} custom data values for {len(islands)} scale sets; "
            "give one per island or a function of the island index."
        )
    return size, islands


def _custom_data_for(args: GpuPoolArgs, island: int) -> pulumi.Input[str] | None:
    data = args.custom_data
    if data is None:
        return None
    value = data(island) if callable(data) else data[island]
    if isinstance(value, str):
        check_custom_data(value, f"pool {args.pool.name!r} island {island}")
    return value


def check_custom_data(value: str, what: str) -> None:
    """Custom data must be base64 and at most 65535 bytes once decoded (Azure's osProfile.customData)."""
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what}: custom data is not base64; encode the cloud-init text first") from None
    if len(decoded) > CUSTOM_DATA_MAX_BYTES:
        raise ValueError(
            f"{what}: custom data is {len(decoded)} bytes, Azure allows {CUSTOM_DATA_MAX_BYTES}; gzip it or "
            "move files out of cloud-init"
        )


def health_extension() -> dict[str, Any]:
    """The Application Health extension (Rich Health States) probing the bootstrap's local endpoint.

    typeHandlerVersion 2.0: the endpoint answers 2xx with {"ApplicationHealthState": "Healthy"} or
    "Unhealthy"; no answer, a non-2xx or a bad body reads as Unknown, which repairs treat as Unhealthy.
    A new node stays Initializing until `numberOfProbes` equal answers or `gracePeriod` seconds.
    """
    return {
        "name": HEALTH_EXTENSION_NAME,
        "publisher": bootstrap.HEALTH_EXTENSION_PUBLISHER,
        "type": bootstrap.HEALTH_EXTENSION_TYPE,
        "type_handler_version": bootstrap.HEALTH_EXTENSION_VERSION,
        "auto_upgrade_minor_version": True,
        "settings": bootstrap.health_extension_settings(),
    }


def linux_configuration(admin_username: str, keys: Sequence[str]) -> dict[str, Any]:
    """SSH keys only: password authentication off, keys in the admin user's authorized_keys."""
    return {
        "disable_password_authentication": True,
        "ssh": {
            "public_keys": [
                {"path": f"/home/{admin_username}/.ssh/authorized_keys", "key_data": key.strip()}
                for key in keys
            ]
        },
    }


class GpuPool(pulumi.ComponentResource):
    """GPU nodes of one pool: a Uniform scale set per InfiniBand island (or one set for non-IB sizes).

    Outputs: `scale_set_names` and `scale_set_ids` (one Output per island, in island order), `islands`
    (index, node count and Azure name of each set, plain values) and `scale_sets` (the resources).
    """

    scale_set_names: list[pulumi.Output[str]]
    """Azure names of the pool's scale sets, one per InfiniBand island, in island order."""
    scale_set_ids: list[pulumi.Output[str]]
    """Resource ids of the pool's scale sets, in island order."""

    def __init__(self, name: str, args: GpuPoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        size, islands = _validate(args)
        super().__init__(TYPE_TOKEN, name, None, opts)
        self.size = size
        self.islands = islands
        # The count is azcluster's once the island exists (module docstring; ops/grow.py). A scale set's
        # zones cannot change in place, and its Azure name stays the island's: moving an island to
        # another zone (capacity.island_zones) deletes it, then creates it there. The same for its size
        # (capacity.island_stand_ins): resizing a Uniform set in place changes the model only, and with
        # manual upgrades its running nodes would keep the old size while Slurm declares the new one.
        child = pulumi.ResourceOptions(
            parent=self,
            ignore_changes=[CAPACITY_PROPERTY],
            replace_on_changes=list(REPLACE_ON_CHANGES),
            delete_before_replace=True,
        )
        self.reservation_group: compute.CapacityReservationGroup | None = None
        self.reservation: compute.CapacityReservation | None = None
        group_id: pulumi.Input[str] | None = args.pool.reservation_group_id
        if args.pool.capacity.reservation is not None and args.pool.capacity.reservation.create:
            self.reservation_group, self.reservation = _create_reservation(name, args, size, islands, self)
            group_id = self.reservation_group.id
            child = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.reservation]))
        self.scale_sets = []
        for island in islands:
            built = built_size(args, size, island.index)
            # A reservation holds the pool's own size: an island on a stand-in allocates without it.
            held = group_id if built.name == size.name else None
            self.scale_sets.append(
                compute.VirtualMachineScaleSet(
                    f"{name}-ib{island.index}" if size.has_infiniband else f"{name}-vmss",
                    opts=child,
                    **_scale_set_args(args, built, island, held),
                )
            )
        self.scale_set_names = [vmss.name for vmss in self.scale_sets]
        self.scale_set_ids = [vmss.id for vmss in self.scale_sets]
        self.register_outputs({"scale_set_names": self.scale_set_names, "scale_set_ids": self.scale_set_ids})


def built_size(args: GpuPoolArgs, size: catalog.GpuSize, index: int) -> catalog.GpuSize:
    """The size island `index` is built as: a stand-in recorded in `capacity.island_stand_ins` (its own
    sku, default image and disk controller), else the pool's. Rules AZC100-102 and AZC160 make sure a
    stand-in is a known InfiniBand size of the pool's GPU vendor and architecture, listed by the policy."""
    name = island_size_name(args.pool, index)
    if name.lower() == size.name.lower():
        return size
    stand_in = catalog.find_size(name)
    if stand_in is None:
        raise ValueError(
            f"pool {args.pool.name!r} island {index}: stand-in size {name!r} is not in azcluster's "
            "catalogue (`azcluster skus`); remove it from capacity.island_stand_ins"
        )
    return stand_in


def reservation_zones(args: GpuPoolArgs, islands: Sequence[Island]) -> tuple[list[str], list[str]]:
    """(the group's zones, the reservation's zones): the group spans every zone the pool may use (an
    island moved by the capacity policy still finds its group), the reservation sits where the scale set
    is built (or in `capacity.reservation.zones`); both empty for a regional pool."""
    pool = args.pool
    if region_has_zones(args.location) is False:
        return [], []
    built = [zone for island in islands if (zone := island_zone(pool, island.index, args.zone))]
    given = pool.capacity.reservation.zones if pool.capacity.reservation is not None else []
    reserved = list(dict.fromkeys(given or built))
    group = list(dict.fromkeys([*pool.capacity.zones, *([args.zone] if args.zone else []), *reserved]))
    return group, reserved


def _create_reservation(
    name: str, args: GpuPoolArgs, size: catalog.GpuSize, islands: Sequence[Island], parent: pulumi.Resource
) -> tuple[compute.CapacityReservationGroup, compute.CapacityReservation]:
    """A group and one reservation for the pool's size and node count (compute.CapacityReservationGroup,
    compute.CapacityReservation: pulumi-azure-native 3.x, API 2024-11-01)."""
    group_zones, reserved_zones = reservation_zones(args, islands)
    tags = cluster_tags(args.cluster_name, ROLE_COMPUTE, args.tags, pool=args.pool.name)
    group_args: dict[str, Any] = {
        "resource_group_name": args.resource_group_name,
        "capacity_reservation_group_name": f"{args.cluster_name}-{args.pool.name}-crg",
        "location": args.location,
        "tags": tags,
    }
    if group_zones:
        group_args["zones"] = group_zones
    # A group's zones are fixed at creation, as are a reservation's: a change replaces them.
    opts = pulumi.ResourceOptions(parent=parent, replace_on_changes=["zones"], delete_before_replace=True)
    group = compute.CapacityReservationGroup(f"{name}-crg", opts=opts, **group_args)
    reservation_args: dict[str, Any] = {
        "resource_group_name": args.resource_group_name,
        "capacity_reservation_group_name": group.name,
        "capacity_reservation_name": f"{args.cluster_name}-{args.pool.name}-{size.name.lower()}",
        "location": args.location,
        "sku": {"name": size.name, "capacity": sum(island.nodes for island in islands)},
        "tags": tags,
    }
    if reserved_zones:
        reservation_args["zones"] = reserved_zones
    reservation = compute.CapacityReservation(f"{name}-cr", opts=opts, **reservation_args)
    return group, reservation


def _scale_set_args(
    args: GpuPoolArgs, size: catalog.GpuSize, island: Island, group_id: pulumi.Input[str] | None = None
) -> dict[str, Any]:
    """Keyword arguments of one compute.VirtualMachineScaleSet (snake_case, pulumi-azure-native 3.x)."""
    pool = args.pool
    ib = size.has_infiniband
    os_disk: dict[str, Any] = {
        "create_option": "FromImage",
        "caching": "ReadWrite",
        "managed_disk": {"storage_account_type": OS_DISK_STORAGE},
        "disk_size_gb": pool.os_disk_gb,
    }
    storage_profile: dict[str, Any] = {
        "image_reference": image_reference(pool.image or size.default_image),
        "os_disk": os_disk,
    }
    if size.disk_controller == "NVMe":
        storage_profile["disk_controller_type"] = "NVMe"

    os_profile: dict[str, Any] = {
        "computer_name_prefix": bootstrap.computer_name_prefix(args.cluster_name, pool.name, island.index),
        "admin_username": args.admin_username,
        "linux_configuration": linux_configuration(args.admin_username, args.ssh_public_keys),
    }
    custom_data = _custom_data_for(args, island.index)
    if custom_data is not None:
        os_profile["custom_data"] = custom_data

    profile: dict[str, Any] = {
        "os_profile": os_profile,
        "storage_profile": storage_profile,
        "network_profile": {
            "network_interface_configurations": [
                {
                    "name": "nic0",
                    "primary": True,
                    "enable_accelerated_networking": True,
                    "ip_configurations": [
                        {"name": "ipconfig0", "primary": True, "subnet": {"id": args.subnet_id}}
                    ],
                }
            ]
        },
        "extension_profile": {"extensions": [health_extension()]},
        # Boot diagnostics in a platform-managed account: serial console and boot logs for a node that
        # never answers SSH, at no setup cost.
        "diagnostics_profile": {"boot_diagnostics": {"enabled": True}},
    }
    if pool.spot:
        profile["priority"] = "Spot"
        profile["eviction_policy"] = "Delete"
        profile["billing_profile"] = {"max_price": -1}
    if group_id is not None:
        profile["capacity_reservation"] = {"capacity_reservation_group": {"id": group_id}}

    kwargs: dict[str, Any] = {
        "resource_group_name": args.resource_group_name,
        "vm_scale_set_name": island.name,
        "plan": purchase_plan(pool.image or size.default_image, pool.image_plan),
        "location": args.location,
        "orchestration_mode": "Uniform",
        "sku": {"name": size.name, "tier": "Standard", "capacity": island.nodes},
        "overprovision": False,
        "upgrade_policy": {"mode": "Manual"},
        "identity": {"type": "UserAssigned", "user_assigned_identities": [args.identity_id]},
        "virtual_machine_profile": profile,
        "tags": cluster_tags(args.cluster_name, ROLE_COMPUTE, args.tags, pool=pool.name, island=island.index),
    }
    if ib:
        kwargs["single_placement_group"] = True
        kwargs["platform_fault_domain_count"] = 1
    else:
        # Without InfiniBand nothing needs one placement group, and without it a set may pass 100 VMs.
        kwargs["single_placement_group"] = False
    # An island lives whole in one zone: where the capacity policy put it (capacity.py; never split).
    zone = island_zone(args.pool, island.index, args.zone)
    zones = zones_for(args.location, zone)  # never in a region without zones (placement.py)
    if zones:
        kwargs["zones"] = zones
    if pool.repair:
        kwargs["automatic_repairs_policy"] = {
            "enabled": True,
            "grace_period": REPAIR_GRACE_PERIOD,
            "repair_action": REPAIR_ACTION,
        }
    return kwargs

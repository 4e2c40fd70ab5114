"""The cluster's shape: the one typed, validated source of truth.

A stack file (`stacks/Pulumi.<stack>.yaml`) holds the cluster under the structured config key
`azcluster:cluster`; the region comes from `azure-native:location`. This module turns that mapping into a
`ClusterSpec`. Only *shape* is checked here (types, unknown keys, impossible values such as a negative node
count); whether the shape will deploy on Azure is the job of the rules module, which reports findings
that users can read and suppress. Defaults live here, once.
"""

from __future__ import annotations

import ipaddress
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .safefile import UnsafeFile, read_small_text

CLUSTER_CONFIG_KEY = "azcluster:cluster"
LOCATION_CONFIG_KEY = "azure-native:location"
DEFAULT_ADDRESS_SPACE = "10.42.0.0/16"
DEFAULT_ISLAND_MAX_NODES = 100
PRIVATE_DNS_ZONE_NAMES = {
    "blob": "privatelink.blob.core.windows.net",
    "file": "privatelink.file.core.windows.net",
    "mysql": "privatelink.mysql.database.azure.com",
}
"""The private-link DNS zones the cluster's private endpoints need, by `network.dns_zones` key (Azure
public cloud names: learn.microsoft.com/azure/private-link/private-endpoint-dns): blob for the data
account, file for the shared home, mysql for the accounting database (`slurm.accounting.database:
mysql`). A feature that adds an endpoint of another kind adds its key here."""
CREATE_DNS_ZONE = "create"
LOGIN_DEFAULT_SIZE = "Standard_D4s_v5"


class _Strict(BaseModel):
    """Base for every spec section: unknown keys are errors, so a typo never silently does nothing.

    Types are strict where a silent conversion would change the meaning: `nodes: true` is not 1 node and
    `spot: "yes"` is not a yes (pydantic's lax mode takes both). Numbers may still arrive as integral
    floats, as Pulumi's component plugin passes every number (protobuf Struct values are doubles). Text
    must be valid Unicode: a lone surrogate (`"\\udc80"` in YAML) passes here and fails in the engine.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_silent_conversion(cls, value: Any, info: ValidationInfo) -> Any:
        _check_text(value)
        annotation = cls.model_fields[info.field_name].annotation if info.field_name else None
        if value is None and type(None) in getattr(annotation, "__args__", ()):
            return value  # an optional number left unset (the component plugin passes None explicitly)
        kinds = _plain_kinds(annotation) if annotation is not None else set()
        if kinds == {bool} and not isinstance(value, bool):
            raise ValueError("must be true or false")
        if (
            kinds
            and kinds <= {int, float}
            and (isinstance(value, bool) or not isinstance(value, int | float))
        ):
            raise ValueError("must be a number")
        return value


def _plain_kinds(annotation: Any) -> set[type]:
    """{int}, {bool}, {int, float}: the scalar types a field takes (None aside); empty for any other."""
    args = getattr(annotation, "__args__", None)
    if annotation in (int, float, bool):
        return {annotation}
    if args is None or getattr(annotation, "__origin__", None) is Literal:
        return set()
    if type(annotation).__name__ not in ("UnionType", "_UnionGenericAlias"):
        return set()
    kinds = {arg for arg in args if arg is not type(None)}
    return kinds if kinds and kinds <= {int, float, bool} else set()


def _check_text(value: Any) -> None:
    """Refuse strings that cannot be encoded as UTF-8 (lone surrogates), anywhere in a value."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(
                f"contains {value[err.start]!r}, which is not valid Unicode text (a lone surrogate)"
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_text(item)


def _bare(value: str | None) -> str | None:
    """A CIDR is taken as written (Azure gets these very characters): no space or line break around it."""
    if value is not None and value != value.strip():
        raise ValueError("has a space or line break around it; write the CIDR alone, e.g. 10.42.0.0/16")
    return value


class SubnetPrefixes(_Strict):
    """Explicit subnet ranges. Leave out to have them carved from `network.address_space`."""

    compute: str | None = Field(None, description="CIDR of the GPU nodes' subnet (sized for all nodes).")
    login: str | None = Field(None, description="CIDR of the login node's subnet.")
    lustre: str | None = Field(None, description="CIDR of Azure Managed Lustre's own subnet (/24 or larger).")
    endpoints: str | None = Field(None, description="CIDR of the private endpoints' subnet.")
    bastion: str | None = Field(None, description="CIDR of AzureBastionSubnet (/26 or larger).")

    @field_validator("*")
    @classmethod
    def _bare_cidr(cls, value: str | None) -> str | None:
        return _bare(value)


class NetworkSpec(_Strict):
    """Where the cluster lives on the network. Compute nodes never get public IPs."""

    address_space: str = Field(
        DEFAULT_ADDRESS_SPACE,
        description="Private IPv4 range (CIDR) of the cluster's virtual network; subnets are carved from it.",
    )
    existing_vnet_id: str | None = Field(
        None,
        description="Resource id of an existing virtual network to join instead of creating one; the "
        "cluster's subnets are created inside it from `address_space`.",
    )
    subnets: SubnetPrefixes = Field(default_factory=SubnetPrefixes, description="Override subnet ranges.")
    bastion: bool = Field(
        True, description="Create Azure Bastion, the way to reach the login node without a public IP."
    )
    nat_gateway: bool = Field(
        True,
        description="Give private subnets outbound internet through a NAT gateway (nodes have no public IPs "
        "and Azure is retiring default outbound access).",
    )
    dns_zones: dict[str, str] = Field(
        default_factory=dict,
        description="Private DNS zones for private endpoints, by kind (`blob`: the data account, `file`: the "
        "shared home) -> the resource id of an existing privatelink.<kind>.core.windows.net zone already "
        "linked to the network (e.g. a hub's), or `create` to have azcluster create one and link it. "
        "Default: `create` in a new network; in an "
        "existing network (`existing_vnet_id`) none is created, because Azure links a network to only one "
        "zone of a name and a hub network usually has it.",
    )

    @field_validator("dns_zones")
    @classmethod
    def _known_zone_kinds(cls, zones: dict[str, str]) -> dict[str, str]:
        """Only the private-link kinds the cluster creates endpoints for (keys of PRIVATE_DNS_ZONE_NAMES)."""
        unknown = sorted(set(zones) - set(PRIVATE_DNS_ZONE_NAMES))
        if unknown:
            raise ValueError(
                f"unknown private DNS zone kind {', '.join(map(repr, unknown))}; "
                f"use {', '.join(sorted(PRIVATE_DNS_ZONE_NAMES))}"
            )
        return zones

    @field_validator("address_space")
    @classmethod
    def _bare_address_space(cls, value: str) -> str:
        return _bare(value) or value


class ImagePlan(_Strict):
    """A Marketplace purchase plan (`plan` on the VM or scale set). azcluster derives it from the image URN
    for publishers that sell under a plan (catalogue `images.yaml`); give it for an image Azure cannot
    tell, such as a gallery image built from such a Marketplace image."""

    publisher: str = Field(description="Plan publisher, e.g. almalinux.")
    product: str = Field(description="Plan product (the Marketplace offer), e.g. almalinux-hpc.")
    name: str = Field(description="Plan name (the Marketplace sku), e.g. 8_10-hpc-gen2.")


ZoneName = Annotated[str, Field(pattern=r"^[1-3]$")]

CAPACITY_WAIT_MAX_MINUTES = 7 * 24 * 60
"""The longest a capacity policy may keep trying (a week): longer is a reservation, not a wait."""


class CapacityReservationSpec(_Strict):
    """A capacity reservation group the pool's scale set allocates from: an existing one (`group_id`), or
    one azcluster creates with a reservation for the pool's size and node count (`create: true`).

    A reservation holds the capacity whether VMs use it or not and bills it at the size's pay-as-you-go
    rate all the while (learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview); one
    azcluster created goes with `down`. Azure offers reservations for some GPU sizes only (NC A100 v4:
    yes; ND-series: no, AZC104) and not for single-placement-group scale sets (InfiniBand islands, AZC015).
    """

    group_id: str | None = Field(
        None,
        description="Resource id of an existing capacity reservation group "
        "(/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Compute/capacityReservationGroups/"
        "<name>) to allocate from; azcluster neither creates nor deletes it. Default: none.",
    )
    create: bool = Field(
        False,
        description="Create a capacity reservation group with one reservation for the pool's size and "
        "node count in the zone its scale set is built in; billed whether used or not, deleted by `down`. "
        "Default: false.",
    )
    zones: list[ZoneName] = Field(
        default_factory=list,
        description="Zones the reservation is in: for `group_id`, the zones of that group's reservations "
        "(azcluster checks them against the pool's zones, AZC109); for `create`, where to reserve. "
        "Default: none given (create: the zone the pool's scale set is built in).",
    )

    @model_validator(mode="after")
    def _one_form(self) -> CapacityReservationSpec:
        if self.create == (self.group_id is not None):
            raise ValueError("give either group_id (an existing group) or create: true, exactly one")
        return self


class CapacityPolicy(_Strict):
    """What azcluster does when Azure cannot place a whole island (components/capacity.py).

    Azure places a scale set's VMs as capacity allows and reports the ones it could not place as failed
    (AllocationFailed, ZonalAllocationFailed, ...). An island is one placement group, so it never spans
    zones: when its zone has too little, it is placed whole in the next zone listed. Defaults suit a first
    user: the cluster's zone only, no stand-in size, whole islands or nothing, one try.
    """

    zones: list[ZoneName] = Field(
        default_factory=list,
        description="Availability zones to try, in order, for each island of the pool; an island is placed "
        "whole in one of them (one placement group never spans zones). Default: the cluster's `zone` only. "
        "Storage stays in the cluster's zone, so an island elsewhere reads it across zones.",
    )
    stand_in_sizes: list[str] = Field(
        default_factory=list,
        description="VM sizes that may stand in for `size` when Azure has none of it, in order of "
        "preference, e.g. Standard_ND96isr_H200_v5 for Standard_ND96isr_H100_v5. Each has its own quota "
        "family and price; both are checked before one is used. Default: none.",
    )
    min_nodes: int | None = Field(
        None,
        ge=1,
        description="Smallest island worth keeping: when Azure places only part of an island, keep the "
        "placed nodes if there are at least this many (the failed ones are removed, and `up` or `grow` "
        "asks for the gap later). Default: whole islands only.",
    )
    min_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="The smallest island worth keeping as a share of each island's nodes, e.g. 0.75 "
        "(rounded up). Give `min_nodes` or `min_fraction`, not both.",
    )
    wait_minutes: int = Field(
        0,
        ge=0,
        le=CAPACITY_WAIT_MAX_MINUTES,
        description="Minutes `up` and `grow` keep trying to place this pool's islands, with back-off, "
        "before reporting what they obtained; 0 is one try. `--wait-for-capacity` overrides it.",
    )

    reservation: CapacityReservationSpec | None = Field(
        None,
        description="A capacity reservation group to allocate from, existing (`group_id`) or created by "
        "azcluster (`create: true`); for sizes Azure reserves (not ND-series). Default: none.",
    )

    island_zones: dict[str, str] = Field(
        default_factory=dict,
        description="Where azcluster placed islands outside the first zone, by island index ('0', '1', "
        "...): written by `up --wait-for-capacity` when it moved an island whole to the next zone in "
        "`zones`. Delete an entry to bring the island back to the first zone on the next `up` (its "
        "nodes are recreated there).",
    )

    island_stand_ins: dict[str, str] = Field(
        default_factory=dict,
        description="Islands azcluster built on a stand-in size, by island index ('0', '1', ...): written "
        "by `up` and `grow` when no zone had the pool's `size` and a size in `stand_in_sizes` had room and "
        "quota. The island's scale set, node preparation and Slurm node records follow that size. Delete "
        "an entry to build the island as `size` again on the next `up` (its nodes are recreated).",
    )

    @field_validator("island_zones")
    @classmethod
    def _zone_names(cls, zones: dict[str, str]) -> dict[str, str]:
        for island, zone in zones.items():
            if not island.isdigit():
                raise ValueError(f"island {island!r} is not an island index such as '0'")
            if zone not in ("1", "2", "3"):
                raise ValueError(f"zone {zone!r} of island {island} is not '1', '2' or '3'")
        return zones

    @field_validator("island_stand_ins")
    @classmethod
    def _island_indexes(cls, sizes: dict[str, str]) -> dict[str, str]:
        for island in sizes:
            if not island.isdigit():
                raise ValueError(f"island {island!r} is not an island index such as '0'")
        return sizes

    @field_validator("zones", "stand_in_sizes")
    @classmethod
    def _no_repeats(cls, values: list[str]) -> list[str]:
        seen: set[str] = set()
        for value in values:
            if value.lower() in seen:
                raise ValueError(f"{value!r} is listed twice; list each once, in the order to try")
            seen.add(value.lower())
        return values

    @model_validator(mode="after")
    def _one_minimum(self) -> CapacityPolicy:
        if self.min_nodes is not None and self.min_fraction is not None:
            raise ValueError("give min_nodes or min_fraction, not both")
        return self

    def smallest_island(self, requested: int) -> int:
        """The fewest nodes of a `requested`-node island worth keeping (the whole island by default)."""
        if self.min_nodes is not None:
            return min(self.min_nodes, requested)
        if self.min_fraction is not None:
            return min(requested, max(1, math.ceil(self.min_fraction * requested - 1e-9)))
        return requested


class PoolSpec(_Strict):
    """A set of identical GPU nodes. InfiniBand sizes are split into islands of one scale set each."""

    name: str = Field(
        description="Pool name: lower-case letters and digits, used in resource and host names."
    )
    size: str = Field(description="Azure VM size, e.g. Standard_ND96isr_H100_v5 (see `azcluster skus`).")
    nodes: int = Field(ge=0, le=10_000, description="Number of VMs in the pool.")
    image: str | None = Field(
        None,
        description="Marketplace image URN publisher:offer:sku:version, or an image resource id. "
        "Default: the catalogue's HPC image for the size.",
    )
    image_plan: ImagePlan | None = Field(
        None, description="Purchase plan of the image; default: derived from the URN where one is needed."
    )
    spot: bool = Field(False, description="Use Spot VMs (cheaper, can be evicted at any time).")
    capacity_reservation_group_id: str | None = Field(
        None,
        description="Deprecated: give `capacity.reservation.group_id` instead (AZC161). Still read as "
        "that: the resource id of an existing capacity reservation group to allocate from.",
    )
    island_max_nodes: int = Field(
        DEFAULT_ISLAND_MAX_NODES,
        ge=1,
        description="Most nodes per InfiniBand island (one scale set, one placement group). Azure's default "
        "limit is 100; support can raise it to 300.",
    )
    os_disk_gb: int = Field(256, ge=30, le=4095, description="OS disk size in GiB.")
    repair: bool = Field(
        False, description="Let Azure replace nodes that stay unhealthy (automatic instance repairs)."
    )
    capacity: CapacityPolicy = Field(
        default_factory=CapacityPolicy,
        description="What to do when Azure cannot place a whole island: zones to try, stand-in sizes, the "
        "smallest island worth keeping, how long to keep trying. Default: the cluster's zone, no "
        "stand-in, whole islands, one try.",
    )
    allow_partial_racks: bool = Field(
        False,
        description="GB200/GB300 (NVL72 rack) sizes only: allow `nodes` that are not whole racks of 18 VMs. "
        "Default false: a partial rack leaves part of an NVLink domain idle or shared (rule AZC130).",
    )

    @model_validator(mode="after")
    def _one_reservation(self) -> PoolSpec:
        if self.capacity_reservation_group_id and self.capacity.reservation is not None:
            raise ValueError(
                "give capacity_reservation_group_id or capacity.reservation, not both "
                "(capacity.reservation.group_id is the same as capacity_reservation_group_id)"
            )
        return self

    @property
    def reservation_group_id(self) -> str | None:
        """The existing group the pool allocates from, in either form (None: none, or one to create)."""
        reservation = self.capacity.reservation
        return self.capacity_reservation_group_id or (reservation.group_id if reservation else None)

    @property
    def uses_reservation(self) -> bool:
        """Whether the pool's scale set allocates from a capacity reservation group (existing or created)."""
        return self.reservation_group_id is not None or (
            self.capacity.reservation is not None and self.capacity.reservation.create
        )

    def reservation_path(self) -> str:
        """Where the pool's reservation is given, relative to the pool (for findings)."""
        if self.capacity_reservation_group_id:
            return "capacity_reservation_group_id"
        reservation = self.capacity.reservation
        return (
            "capacity.reservation.group_id"
            if reservation and reservation.group_id
            else "capacity.reservation"
        )

    def island_sizes(self) -> list[int]:
        """Nodes per island: ceil(nodes / limit) scale sets, nodes spread as evenly as possible.

        A size that comes in NVL72 racks (GB200/GB300, catalogue `rack_vms`) spreads whole racks instead,
        when the pool is whole racks and an island holds at least one: an island that ended in half a rack
        would split an NVLink domain across two scale sets (rules AZC012, AZC130)."""
        if self.nodes == 0:
            return [0]
        rack = self.rack_vms
        if rack and self.nodes % rack == 0 and self.island_max_nodes >= rack:
            racks, per_island = self.nodes // rack, self.island_max_nodes // rack
            count = math.ceil(racks / per_island)
            base, extra = divmod(racks, count)
            return [(base + 1 if i < extra else base) * rack for i in range(count)]
        count = math.ceil(self.nodes / self.island_max_nodes)
        base, extra = divmod(self.nodes, count)
        return [base + 1 if i < extra else base for i in range(count)]

    @property
    def rack_vms(self) -> int | None:
        """VMs per NVL72 rack of the pool's size (catalogue `rack_vms`); None for other or unknown sizes."""
        from .catalog import find_size

        size = find_size(self.size)
        return size.rack_vms if size is not None else None


class LoginSpec(_Strict):
    """A small VM users log in to, reached through Bastion or the user's own network."""

    enabled: bool = Field(True, description="Create the login node.")
    size: str = Field(LOGIN_DEFAULT_SIZE, description="Azure VM size of the login node.")
    image: str = Field(
        "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest",
        description="Marketplace image URN of the login node.",
    )
    image_plan: ImagePlan | None = Field(
        None, description="Purchase plan of the image; default: derived from the URN where one is needed."
    )


class LustreSpec(_Strict):
    """Azure Managed Lustre: the fast shared file system."""

    enabled: bool = Field(True, description="Create an Azure Managed Lustre file system.")
    sku: Literal[
        "AMLFS-Durable-Premium-40",
        "AMLFS-Durable-Premium-125",
        "AMLFS-Durable-Premium-250",
        "AMLFS-Durable-Premium-500",
    ] = Field("AMLFS-Durable-Premium-250", description="Throughput tier (MB/s per TiB).")
    capacity_tib: int = Field(
        8, ge=1, description="Capacity in TiB: within the SKU's range, a multiple of its step."
    )
    import_container: str | None = Field(
        None,
        description="Blob container in the cluster's data account to import from and archive to (HSM). "
        "Needs `storage.blob.enabled`.",
    )
    provider_principal_id: str | None = Field(
        None,
        description="With import_container: object id of your tenant's 'HPC Cache Resource Provider' "
        "service principal (`az ad sp show --id 4392ab71-2ce2-4b0d-8770-b352745c73f5 --query id -o tsv`), "
        "granted access to the data account so Managed Lustre can import and archive.",
    )
    maintenance_day: Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] = (
        Field("Sunday", description="Day of the weekly maintenance window.")
    )
    maintenance_time: str = Field(
        "02:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="UTC start (HH:MM) of the maintenance window.",
    )


class BlobSpec(_Strict):
    """A storage account for datasets and checkpoints, reached only through a private endpoint."""

    enabled: bool = Field(False, description="Create a blob data account (hierarchical namespace).")
    containers: list[str] = Field(
        default_factory=lambda: ["data"], description="Containers to create in the account."
    )
    mount: bool = Field(True, description="Mount the first container on every node with BlobFuse2.")


class HomeSpec(_Strict):
    """The shared home: one NFS share mounted at the same path on the login node and every GPU node, so
    a job submitted from a directory under it finds that directory on every node it runs on."""

    enabled: bool = Field(True, description="Create the shared home (Azure Files premium NFS 4.1).")
    size_gib: int = Field(
        1024,
        ge=100,
        le=102_400,
        description="Provisioned size in GiB (100-102400). Throughput grows with it: about 100 MiB/s plus "
        "0.1 MiB/s per GiB (203 MiB/s at 1024 GiB).",
    )
    redundancy: Literal["LRS", "ZRS"] = Field(
        "LRS",
        description="Premium_LRS (one zone) or Premium_ZRS (copies in three zones; zonal regions only).",
    )
    mount: str = Field(
        "/home",
        pattern=r"^/[A-Za-z0-9._/-]+$",
        description="Where nodes mount the share. Local home directories that exist at first mount (the "
        "admin user's) are copied onto the share first.",
    )


class StorageSpec(_Strict):
    """Shared storage. Storage that holds data survives `azcluster down` unless --delete-data."""

    lustre: LustreSpec | None = Field(None, description="Azure Managed Lustre; leave out for none.")
    blob: BlobSpec = Field(default_factory=BlobSpec, description="Blob data account.")
    home: HomeSpec = Field(default_factory=HomeSpec, description="Shared home directories (NFS).")


class ElasticSpec(_Strict):
    """Power GPU nodes off when they stay idle and back on when work needs them (see components/elastic.py).

    With Slurm, Slurm's power saving calls azcluster's suspend/resume programs on the login node; without a
    scheduler, an idle watcher on the login node deallocates an island whose GPUs all stayed idle, and
    `azcluster start` brings it back. Leave the section out for nodes that are always on.
    """

    enabled: bool = Field(True, description="Power idle nodes off (deallocate) and back on when needed.")
    idle_minutes: int = Field(
        60,
        ge=1,
        le=10_080,
        description="Minutes a node (Slurm) or a whole island (no scheduler) stays idle before it is "
        "deallocated. Keep it longer than a node takes to boot, or nodes spend their time starting.",
    )
    resume_timeout_minutes: int = Field(
        30,
        ge=1,
        le=1_440,
        description="Minutes a started node has to boot and rejoin before Slurm marks it down and requeues "
        "its job (Slurm's ResumeTimeout).",
    )
    keep_warm_islands: int = Field(
        0,
        ge=0,
        description="InfiniBand islands of each pool that are never powered off (the first N), so small "
        "jobs start at once.",
    )


class SshSpec(_Strict):
    """How people log in: SSH keys only; password authentication is always off."""

    admin_username: str = Field("azureuser", description="Admin user name on every VM.")
    public_keys: list[str] = Field(
        default_factory=list,
        description="OpenSSH public keys, each given as the key text or a path to a .pub file "
        "(relative to the stack file, `~` allowed).",
    )

    @field_validator("public_keys", mode="before")
    @classmethod
    def _read_key_files(cls, keys: Any, info: ValidationInfo) -> Any:
        """Replace `*.pub` paths with the key they hold, so everything downstream sees key text."""
        if not isinstance(keys, list):
            return keys
        base = Path((info.context or {}).get("base_dir", "."))
        return [_read_key(key, base) if _looks_like_path(key) else key for key in keys]


def _looks_like_path(value: Any) -> bool:
    return isinstance(value, str) and value.strip().endswith(".pub") and " " not in value.strip()


SSH_KEY_FILE_MAX_BYTES = 16 * 1024
"""An OpenSSH public key line is under 1 KB even for RSA-16384 (about 2.8 KB); anything larger is not one."""


def _read_key(value: str, base: Path) -> str:
    try:
        path = Path(value.strip()).expanduser()
    except RuntimeError as err:  # `~nosuchuser/...`: no such user, or no home directory
        raise ValueError(f"cannot read SSH public key file {value.strip()}: {err}") from None
    if not path.is_absolute():
        path = base / path
    try:
        return read_small_text(path, SSH_KEY_FILE_MAX_BYTES, "SSH public key file").strip()
    except UnsafeFile as err:
        raise ValueError(f"cannot read {err}") from None
    except OSError as err:
        raise ValueError(f"cannot read SSH public key file {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ValueError(f"SSH public key file {path} is not text (UTF-8)") from None


class TeamGroup(_Strict):
    """A Linux group made on every node with the same GID, so group-owned files on the shared home and
    Lustre mean the same group everywhere."""

    name: str = Field(
        description="Group name: a POSIX name (lower-case letter or '_' first, then "
        "lower-case letters, digits, '_' or '-'; at most 32 characters)."
    )
    gid: int = Field(
        description="Group id, the same on every node: 1000-60000 (below 1000 is the "
        "system's; 65534 is nobody)."
    )


class TeamUser(_Strict):
    """A person who logs in: a Linux user made on every node with the same UID, so a job runs as them on
    every GPU node and writes to their own home on the shared home."""

    name: str = Field(
        description="User name: a POSIX name (lower-case letter or '_' first, then "
        "lower-case letters, digits, '_' or '-'; at most 32 characters)."
    )
    uid: int = Field(
        description="User id, the same on every node: 1000-60000 (below 1000 is the "
        "system's; 65534 is nobody). Never reuse a removed user's id: their files keep it."
    )
    ssh_keys: list[str] = Field(
        default_factory=list,
        description="OpenSSH public keys that may log in as this user, each the key text or a path to a "
        ".pub file (relative to the file that lists the user, `~` allowed).",
    )
    groups: list[str] = Field(
        default_factory=list,
        description="Names of `team.groups` the user belongs to; the first is the user's primary group "
        "(default: a group of the user's own name with GID = UID, as useradd makes).",
    )
    account: str | None = Field(
        None,
        description="Slurm account (project) the user's jobs are charged to by default; default: none.",
    )
    admin: bool = Field(False, description="May run any command as root with sudo (no password).")

    @field_validator("ssh_keys", mode="before")
    @classmethod
    def _read_key_files(cls, keys: Any, info: ValidationInfo) -> Any:
        """Replace `*.pub` paths with the key they hold, so everything downstream sees key text."""
        if not isinstance(keys, list):
            return keys
        base = Path((info.context or {}).get("team_dir") or (info.context or {}).get("base_dir", "."))
        return [_read_key(key, base) if _looks_like_path(key) else key for key in keys]


class TeamAccount(_Strict):
    """A Slurm account (a project): its users' jobs are charged to it, it has a fair share of the cluster
    and, optionally, GPU limits. azc-slurm-accounts.py keeps Slurm's accounting database in step with it
    (slurm.accounting.enabled); written as a plain name, it is an account with the defaults."""

    name: str = Field(
        description="Account name: lower-case letters, digits, '_' and '-' (Slurm lowers account names)."
    )
    fairshare: int = Field(
        1,
        ge=1,
        le=1_000_000,
        description="Shares of the cluster against the other accounts (Slurm's `Fairshare`): an account with "
        "2 gets twice the priority weight of one with 1 when both have used the same (priority/multifactor).",
    )
    max_gpus_per_user: int | None = Field(
        None,
        ge=0,
        description="GPUs one user of the account may hold at once over all their running jobs (Slurm QOS "
        "`MaxTRESPerUser=gres/gpu=N`); more stays pending with reason QOSMaxGRESPerUser. Default: no limit.",
    )
    max_gpus: int | None = Field(
        None,
        ge=0,
        description="GPUs the whole account may hold at once (QOS `GrpTRES=gres/gpu=N`); more stays pending "
        "with reason QOSGrpGRES. Default: no limit.",
    )


class TeamSpec(_Strict):
    """The people of the cluster, beside the admin user. Changing them never changes a VM: the list is
    handed to the cluster as a file on the shared home, and every node applies it by itself
    (components/team.py, bootstrap/scripts/azc-users.py).

    No Entra ID sign-in: Microsoft's AADSSHLoginForLinux makes a person's account on a VM at their first
    sign-in to that VM, with a UID it picks there (undocumented; Azure/azure-linux-extensions#1936,
    MicrosoftDocs/azure-docs#9532 and #13061), while Slurm runs a job as the same UID on every node of the
    job and the shared storage keeps owners by UID; so the UIDs come from here (README "Entra ID
    sign-in")."""

    file: str | None = Field(
        None,
        description="A YAML file holding `users:` and `groups:` (relative to the stack file, `~` allowed), "
        "so a large team's list lives apart from the cluster; then leave `users` and `groups` out here.",
    )
    groups: list[TeamGroup] = Field(default_factory=list, description="Groups made on every node.")
    users: list[TeamUser] = Field(default_factory=list, description="Users made on every node.")
    accounts: list[TeamAccount] = Field(
        default_factory=list,
        description="Slurm accounts (projects) users may be charged to (`users[].account`): a name, or "
        "`{name, fairshare, max_gpus_per_user, max_gpus}`.",
    )

    @field_validator("accounts", mode="before")
    @classmethod
    def _account_names(cls, accounts: Any) -> Any:
        """A plain name is an account with the defaults."""
        if not isinstance(accounts, list):
            return accounts
        return [{"name": item} if isinstance(item, str) else item for item in accounts]

    @property
    def account_names(self) -> list[str]:
        return [account.name for account in self.accounts]


MYSQL_TIERS = ("Burstable", "GeneralPurpose", "MemoryOptimized")
"""Azure Database for MySQL flexible server's compute tiers (the SDK's ServerSkuTier; Microsoft's
concepts-service-tiers-storage page)."""


class AccountingMySqlSpec(_Strict):
    """Azure Database for MySQL flexible server for slurmdbd (`slurm.accounting.database: mysql`):
    components/accounting_db.py says why each setting is what it is."""

    sku: str = Field(
        "Standard_B1ms",
        description="Compute size, e.g. Standard_B1ms (Burstable, 1 vCore, 2 GiB: a team's accounting "
        "needs little), Standard_D2ads_v5 (GeneralPurpose). Must belong to `tier`.",
    )
    tier: Literal["Burstable", "GeneralPurpose", "MemoryOptimized"] = Field(
        "Burstable", description="Compute tier of `sku`."
    )
    storage_gb: int = Field(
        20,
        ge=20,
        le=16384,
        description="Provisioned storage in GiB (20 to 16384); auto-grow is on, so it only ever grows.",
    )
    backup_retention_days: int = Field(
        7,
        ge=1,
        le=35,
        description="Days Azure keeps the server's automatic backups for point-in-time restore (1 to 35; "
        "Azure's default 7).",
    )
    geo_redundant_backup: bool = Field(
        False,
        description="Copy backups to the paired region as well (chosen at creation only: Azure cannot "
        "switch it later; not offered in every region). Backup storage beyond the provisioned size is "
        "billed.",
    )
    server_name: str | None = Field(
        None,
        description="The server's name (global: <name>.mysql.database.azure.com); default "
        "`<cluster>-slurmdb-<6 hex of subscription and region>`.",
    )


class SlurmAccountingSpec(_Strict):
    """Slurm job accounting (sacct, fair-share): slurmdbd on the controller and its database."""

    enabled: bool = Field(
        False,
        description="Run slurmdbd with a MariaDB database on the controller (the login node) and record "
        "every job. Off by default: a training cluster often has one team and no need for fair-share.",
    )
    database: Literal["login", "mysql"] = Field(
        "login",
        description="Where slurmdbd keeps the accounting database. `login`: MariaDB on the login node's "
        "OS disk (no extra cost; lost with the login VM). `mysql`: Azure Database for MySQL flexible "
        "server, private endpoint only, TLS, automatic backups; kept by `down` like other data, so the "
        "accounting history survives a rebuilt login node and a `down`/`up`.",
    )
    mysql: AccountingMySqlSpec = Field(
        default_factory=AccountingMySqlSpec,
        description="The MySQL flexible server's size, storage and backups (with `database: mysql`).",
    )


class SlurmSpec(_Strict):
    """The Slurm scheduler: slurmctld on the login node, slurmd on every GPU node, configless."""

    default_partition: str | None = Field(
        None,
        description="Name of the pool whose partition jobs land in when they name none; default: the "
        "first pool. Every pool is a partition of the same name.",
    )
    accounting: SlurmAccountingSpec = Field(
        default_factory=SlurmAccountingSpec, description="Job accounting (slurmdbd); off by default."
    )
    containers: bool = Field(
        True,
        description="Pyxis + Enroot, so `srun --container-image=...` runs a container: used where the "
        "image has them, installed where it does not (NVIDIA nodes); ignored on AMD nodes.",
    )
    memory_reserve_percent: int = Field(
        5,
        ge=0,
        le=50,
        description="Share of each node's memory kept from jobs for the OS and page cache (at least 1 GiB), "
        "as CycleCloud's `slurm.dampen_memory` does; Slurm drains a node that reports less memory than "
        "it is configured with.",
    )
    reserved_cores: int = Field(
        0,
        ge=0,
        description="Cores per node kept from jobs for system daemons (Slurm's CoreSpecCount).",
    )


MONITORING_SCRAPE_INTERVAL_DEFAULT = 30
"""Seconds between scrapes: Azure Monitor managed Prometheus's own default scrape interval (its
ama-metrics settings, `default-scrape-settings`: 30s)."""


class MonitoringSpec(_Strict):
    """Azure Monitor managed Prometheus and Azure Managed Grafana for the cluster (components/monitoring.py).

    Retention has no setting: an Azure Monitor workspace keeps Prometheus metrics 18 months, and that
    cannot be changed (learn.microsoft.com/azure/azure-monitor/service-limits, "Prometheus metrics").
    """

    enabled: bool = Field(
        False,
        description="Create the metrics side in Azure: an Azure Monitor workspace, its data collection "
        "endpoint and rule, Azure Managed Grafana linked to it with the cluster's dashboards, and the "
        "alert rules. `azcluster init` writes it on for every new stack (`--no-monitoring` leaves it "
        "out); a stack file without the section keeps planning as it did before monitoring existed "
        "(off), so no existing cluster gains resources or cost by an upgrade.",
    )
    existing_workspace_id: str | None = Field(
        None,
        description="Resource id of an existing Azure Monitor workspace (Microsoft.Monitor/accounts) to "
        "send metrics to instead of creating one, e.g. a hub team's shared workspace. The data "
        "collection endpoint and rule are still the cluster's own.",
    )
    existing_grafana_id: str | None = Field(
        None,
        description="Resource id of an existing Azure Managed Grafana (Microsoft.Dashboard/grafana) to use "
        "instead of creating one. azcluster does not change it: link it to the workspace and grant its "
        "identity Monitoring Data Reader there yourself (or let the hub team do it).",
    )
    existing_private_link_scope_id: str | None = Field(
        None,
        description="Resource id of a hub's Azure Monitor Private Link Scope (Microsoft.Insights/"
        "privateLinkScopes). With `public_network_access: false` the cluster's data collection endpoint "
        "joins that scope instead of one of its own: a network resolves Azure Monitor through one scope "
        "only, so a hub network that has one must be given it. Needs rights on the scope's resource group.",
    )
    scrape_interval_seconds: int = Field(
        MONITORING_SCRAPE_INTERVAL_DEFAULT,
        ge=1,
        le=3600,
        description="Seconds between two scrapes of each node's exporters (default 30, Azure managed "
        "Prometheus's default). Ingestion is billed per sample: 15 s costs twice 30 s.",
    )
    public_network_access: bool = Field(
        True,
        description="Reach Grafana and the workspace's query endpoint from the internet, and send metrics to "
        "the data collection endpoint's public address (Entra ID sign-in or token still required). false: "
        "Grafana and the workspace are reached only through private endpoints in the cluster's `endpoints` "
        "subnet, so only machines in (or peered with) the network see the dashboards, and the nodes send "
        "metrics through an Azure Monitor Private Link Scope (the cluster's own, or "
        "`existing_private_link_scope_id`).",
    )
    alert_emails: list[str] = Field(
        default_factory=list,
        description="E-mail addresses that receive the cluster's alerts (an Azure Monitor action group). "
        "Default: none (alerts still show in Grafana and the Azure portal).",
    )
    alert_webhook: str | None = Field(
        None,
        description="An https:// URL that receives the cluster's alerts as a POST (Azure Monitor's common "
        "alert schema), e.g. a Slack, Teams or PagerDuty endpoint.",
    )
    grafana_admin_principal_id: str | None = Field(
        None,
        description="Object id (GUID) of the Entra user or group made Grafana Admin on the cluster's "
        "Grafana. Default: the principal that runs `up`.",
    )
    grafana_admin_principal_type: Literal["User", "Group", "ServicePrincipal"] | None = Field(
        None,
        description="What the Grafana Admin is: User, Group or ServicePrincipal (Azure refuses a role "
        "assignment whose type does not match the principal). Default: Group when "
        "`grafana_admin_principal_id` is given, else User (the person running `up`); a pipeline that "
        "runs `up` as a service principal sets ServicePrincipal, or names a group.",
    )


class ClusterSpec(_Strict):
    """A whole cluster: network, GPU pools, login node, shared storage and access."""

    name: str = Field(description="Cluster name: prefix of every resource name (lower-case, digits, '-').")
    location: str = Field(description="Azure region, e.g. eastus (from `azure-native:location`).")
    zone: ZoneName | None = Field(
        None, description="Availability zone ('1', '2' or '3') for every zonal resource; leave out for none."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags added to every resource.")
    resource_group: str | None = Field(
        None, description="Existing resource group to deploy into; default: create `<name>-rg`."
    )
    network: NetworkSpec = Field(
        default_factory=NetworkSpec, description="Virtual network and outbound access."
    )
    pools: list[PoolSpec] = Field(default_factory=list, description="GPU pools.")
    login: LoginSpec = Field(default_factory=LoginSpec, description="Login node.")
    storage: StorageSpec = Field(default_factory=StorageSpec, description="Shared storage.")
    ssh: SshSpec = Field(default_factory=SshSpec, description="SSH access.")
    elastic: ElasticSpec | None = Field(
        None, description="Power idle GPU nodes off and back on by themselves; leave out for always on."
    )
    scheduler: Literal["slurm", "none"] = Field(
        "slurm",
        description="`slurm`: a Slurm cluster (slurmctld on the login node, one partition per pool, "
        "one topology switch per InfiniBand island); `none`: nodes and one hostfile per island only.",
    )
    slurm: SlurmSpec = Field(default_factory=SlurmSpec, description="Slurm settings (scheduler: slurm).")
    team: TeamSpec = Field(
        default_factory=TeamSpec,
        description="Users and groups on every node beside the admin user; default: the admin user only.",
    )
    monitoring: MonitoringSpec = Field(
        default_factory=MonitoringSpec,
        description="Metrics, dashboards and alerts in Azure Monitor managed Prometheus and Azure Managed "
        "Grafana (written on by `azcluster init`; off when the section is left out).",
    )
    suppress: list[str] = Field(default_factory=list, description="Finding ids to silence, e.g. AZC012.")

    @field_validator("location")
    @classmethod
    def _normalise_location(cls, value: str) -> str:
        """Azure accepts 'East US' and 'eastus'; resource ids and prices use the latter."""
        return value.replace(" ", "").lower()

    @property
    def resource_group_name(self) -> str:
        return self.resource_group or f"{self.name}-rg"

    @property
    def elastic_enabled(self) -> bool:
        return self.elastic is not None and self.elastic.enabled

    @property
    def total_nodes(self) -> int:
        return sum(pool.nodes for pool in self.pools)

    @property
    def uses_mysql_accounting(self) -> bool:
        """Whether the cluster builds the accounting database server (components/accounting_db.py): Slurm
        with accounting on a MySQL flexible server, and a login node (the controller) to use it. The
        component, its NSG rule, its private DNS zone and its price all ask here."""
        accounting = self.slurm.accounting
        return (
            self.scheduler == "slurm"
            and self.login.enabled
            and accounting.enabled
            and accounting.database == "mysql"
        )

    def address_space(self) -> ipaddress.IPv4Network | None:
        """The parsed address space, or None when it is not a valid IPv4 CIDR (a rule reports that)."""
        try:
            return ipaddress.IPv4Network(self.network.address_space, strict=False)
        except ValueError:
            return None


def parse_cluster(
    config: dict[str, Any], base_dir: Path | str = ".", team_dir: Path | str | None = None
) -> ClusterSpec:
    """Build a ClusterSpec from a stack file's `config:` mapping.

    Raises pydantic.ValidationError for shape errors; callers turn those into findings with YAML paths.
    `team_dir`: the directory of the team file the stack names (`team.file`), where its users' key paths
    are read from; the stack file reader merges that file into `team:` (azcluster/stackfile.py).
    """
    cluster = config.get(CLUSTER_CONFIG_KEY)
    if not isinstance(cluster, dict):
        raise KeyError(CLUSTER_CONFIG_KEY)
    data = dict(cluster)
    if LOCATION_CONFIG_KEY in config and "location" not in data:
        data["location"] = config[LOCATION_CONFIG_KEY]
    context = {"base_dir": str(base_dir), "team_dir": str(team_dir) if team_dir is not None else None}
    return ClusterSpec.model_validate(data, context=context)


def yaml_path(loc: tuple[Any, ...], config: dict[str, Any]) -> str:
    """The stack file's YAML path of a validation error's `loc`, e.g. `azcluster:cluster.pools[0].size`.

    A missing region is reported at `azure-native:location` when the cluster block does not set it,
    since that is where stack files keep it.
    """
    cluster = config.get(CLUSTER_CONFIG_KEY)
    if loc == ("location",) and not (isinstance(cluster, dict) and "location" in cluster):
        return LOCATION_CONFIG_KEY
    return CLUSTER_CONFIG_KEY + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def json_schema() -> dict[str, Any]:
    """JSON Schema of the `azcluster:cluster` object, for editors that complete stack files."""
    schema = ClusterSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "azcluster:cluster"
    return schema

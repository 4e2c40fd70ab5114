"""Validation rules: what in a spec would break the deployment, found before Azure is asked.

The spec module checks only shape. These rules check what Azure, the catalogue and the cluster's own
design will refuse or quietly get wrong: unknown sizes and regions, InfiniBand islands past the placement
group limit, subnets that cannot hold the nodes, Spot with a capacity reservation, images that do not fit
the GPUs, names and tags Azure rejects, SSH keys Azure will not install. Like AWS ParallelCluster's
validators, each rule is one small function registered with a stable id (AZC001...), a fixed severity and a
name; its docstring says why it matters and cites where the limit comes from.

Rules are pure: no Azure calls, no Pulumi, only the spec and the catalogue. A rule yields
`(path, message, hint)` triples; the registry turns them into `Finding`s with the rule's id and severity.
Paths are YAML paths relative to the stack file's `config:`, e.g. `azcluster:cluster.pools[0].size` or
`azure-native:location`. Every rule must cope with any spec `parse_cluster` accepts (a property test
generates such specs): a rule that crashes would hide every other finding.

Ids are stable: a new rule takes the next free id; a retired rule's id is never reused.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import ipaddress
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from . import catalog
from .findings import SCHEMA_ERROR_ID, Finding, Severity, sort_findings
from .placement import cluster_zone
from .spec import (
    CLUSTER_CONFIG_KEY,
    CREATE_DNS_ZONE,
    LOCATION_CONFIG_KEY,
    PRIVATE_DNS_ZONE_NAMES,
    ClusterSpec,
    PoolSpec,
)
from .subnets import SubnetPlan, SubnetPlanError, plan_subnets, usable_addresses

Problem = tuple[str, str, str]
"""What a rule yields: (YAML path, message naming the offending value, hint saying what to do)."""
RuleCheck = Callable[[ClusterSpec], Iterable[Problem]]


@dataclass(frozen=True)
class Rule:
    """One registered rule: a stable id, a fixed severity, a kebab-case name and a one-line title."""

    id: str
    severity: Severity
    name: str
    title: str
    check: RuleCheck

    @property
    def doc(self) -> str:
        """Why the rule exists and where its limit comes from (the check function's docstring)."""
        return inspect.cleandoc(self.check.__doc__ or "")

    def run(self, spec: ClusterSpec) -> list[Finding]:
        return [
            Finding(self.id, self.severity, path, message, hint) for path, message, hint in self.check(spec)
        ]

    def to_json(self) -> dict[str, str]:
        """The rule as a CLI listing shows it (no docstring)."""
        return {"id": self.id, "severity": self.severity, "name": self.name, "title": self.title}


RULES: dict[str, Rule] = {}
"""Every rule by id, in id order (registration order)."""


def rule(rule_id: str, severity: Severity, name: str, title: str) -> Callable[[RuleCheck], RuleCheck]:
    """Register a rule function under `rule_id`. Ids and names must be unique."""

    def register(check: RuleCheck) -> RuleCheck:
        if rule_id in RULES:
            raise ValueError(f"rule id {rule_id} registered twice")
        if any(existing.name == name for existing in RULES.values()):
            raise ValueError(f"rule name {name} registered twice")
        RULES[rule_id] = Rule(rule_id, severity, name, title, check)
        return check

    return register


def check(spec: ClusterSpec, suppress: Iterable[str] = ()) -> list[Finding]:
    """Run every rule over `spec`; drop the ids in `suppress` and in `spec.suppress`; sorted findings.

    Ids are matched without regard to case or surrounding blanks. AZC000 (schema errors) is not a rule
    here and cannot be suppressed.
    """
    silenced = {_normalise_id(ident) for ident in (*suppress, *spec.suppress)}
    findings = [finding for r in RULES.values() if r.id not in silenced for finding in r.run(spec)]
    return sort_findings(findings)


def _normalise_id(ident: str) -> str:
    return str(ident).strip().upper()


# --- paths and small helpers ---------------------------------------------------------------------

LOCATION_PATH = LOCATION_CONFIG_KEY


def _at(path: str = "") -> str:
    """`azcluster:cluster.<path>`."""
    return f"{CLUSTER_CONFIG_KEY}.{path}" if path else CLUSTER_CONFIG_KEY


def _pool_at(index: int, field: str = "") -> str:
    return _at(f"pools[{index}].{field}" if field else f"pools[{index}]")


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    matches = catalog.closest(name, list(choices))
    return f"Did you mean {' or '.join(matches)}? " if matches else ""


def _preview(text: str, width: int = 24) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width] + "..."


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _lustre_enabled(spec: ClusterSpec) -> bool:
    return spec.storage.lustre is not None and spec.storage.lustre.enabled


# ==================================================================================================
# Region and zone
# ==================================================================================================


@rule("AZC001", "error", "unknown-region", "The region is not an Azure region azcluster knows")
def unknown_region(spec: ClusterSpec) -> Iterator[Problem]:
    """A misspelt region fails the whole deployment at the first resource, after Pulumi has started.

    The catalogue lists Azure's public-cloud regions by programmatic name
    (https://learn.microsoft.com/azure/reliability/regions-list); 'East US' and 'eastus' both work because
    the spec normalises spaces and case.
    """
    regions = catalog.regions()
    if spec.location not in regions:
        yield (
            LOCATION_PATH,
            f"region {spec.location!r} is not an Azure region azcluster knows.",
            f"{_did_you_mean(spec.location, regions)}Use a programmatic region name as "
            "`az account list-locations -o table` prints it, e.g. eastus.",
        )


@rule(
    "AZC002",
    "error",
    "zone-in-region-without-zones",
    "An availability zone is set in a region that has none",
)
def zone_in_region_without_zones(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses zonal resources (scale sets, Managed Lustre) in a region without availability zones.

    Which regions have zones: https://learn.microsoft.com/azure/reliability/regions-list (catalogue
    `regions.yaml`).
    """
    region = catalog.regions().get(spec.location)
    if spec.zone is not None and region is not None and not region.zones:
        yield (
            _at("zone"),
            f"zone {spec.zone!r} is set, but region {spec.location!r} has no availability zones.",
            "Remove `zone`, or pick a region with zones (e.g. eastus, westus3, swedencentral).",
        )


# ==================================================================================================
# GPU pools
# ==================================================================================================


@rule("AZC003", "warning", "no-pools", "The cluster has no GPU pools")
def no_pools(spec: ClusterSpec) -> Iterator[Problem]:
    """A cluster without pools deploys network, storage and a login node but no GPUs: usually a mistake."""
    if not spec.pools:
        yield (
            _at("pools"),
            "the cluster has no GPU pools: it would have a network, storage and a login node, but no GPUs.",
            "Add a pool under `pools:` (name, size, nodes), e.g. Standard_ND96isr_H100_v5 x 2.",
        )


@rule("AZC004", "info", "empty-pool", "A pool has 0 nodes")
def empty_pool(spec: ClusterSpec) -> Iterator[Problem]:
    """A 0-node pool creates an empty scale set: fine for scaling up later, but worth saying."""
    for index, pool in enumerate(spec.pools):
        if pool.nodes == 0:
            yield (
                _pool_at(index, "nodes"),
                f"pool {pool.name!r} has 0 nodes: its scale set is created empty.",
                "Set `nodes` to the count you need, or keep 0 to scale up later.",
            )


POOL_NAME_PATTERN = re.compile(r"^[a-z0-9]+$")


@rule("AZC005", "error", "pool-name-invalid", "A pool name is not lower-case letters and digits")
def pool_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Pool names become part of scale set names, host names and tags.

    Linux host names allow letters, digits and hyphens, and Azure scale set names refuse spaces and most
    punctuation (Microsoft.Compute in
    https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules). azcluster
    keeps pool names to lower-case letters and digits so every derived name is valid and the hyphens
    between cluster, pool and island stay unambiguous.
    """
    for index, pool in enumerate(spec.pools):
        if not POOL_NAME_PATTERN.fullmatch(pool.name):
            suggestion = re.sub(r"[^a-z0-9]", "", pool.name.lower()) or "gpu"
            yield (
                _pool_at(index, "name"),
                f"pool name {pool.name!r} is not lower-case letters and digits only.",
                f"Rename it, e.g. {suggestion!r}.",
            )


@rule("AZC006", "error", "duplicate-pool-name", "Two pools have the same name")
def duplicate_pool_name(spec: ClusterSpec) -> Iterator[Problem]:
    """Two pools with one name would derive the same scale set names; Azure names are case-insensitive."""
    seen: dict[str, int] = {}
    for index, pool in enumerate(spec.pools):
        key = pool.name.lower()
        if key in seen:
            yield (
                _pool_at(index, "name"),
                f"pool name {pool.name!r} is already used by pools[{seen[key]}].",
                "Give every pool its own name.",
            )
        else:
            seen[key] = index


@rule("AZC007", "error", "unknown-vm-size", "A pool's VM size is not a GPU size azcluster knows")
def unknown_vm_size(spec: ClusterSpec) -> Iterator[Problem]:
    """azcluster prepares nodes per size (drivers, NCCL topology, health checks, quota family, island
    rules); a size outside the catalogue cannot be prepared, and a misspelt one fails the deployment.
    """
    sizes = catalog.gpu_sizes()
    for index, pool in enumerate(spec.pools):
        if catalog.find_size(pool.size) is None:
            yield (
                _pool_at(index, "size"),
                f"pool {pool.name!r}: VM size {pool.size!r} is not a GPU size azcluster knows.",
                f"{_did_you_mean(pool.size, sizes)}`azcluster skus` lists the known sizes.",
            )


PLACEMENT_GROUP_DEFAULT_MAX = 100
PLACEMENT_GROUP_RAISED_MAX = 300


def _ib_size(pool: PoolSpec) -> catalog.GpuSize | None:
    size = catalog.find_size(pool.size)
    return size if size is not None and size.has_infiniband else None


@rule(
    "AZC008",
    "error",
    "island-above-placement-group-maximum",
    "An InfiniBand island would exceed 300 VMs, the most one placement group can hold",
)
def island_above_placement_group_maximum(spec: ClusterSpec) -> Iterator[Problem]:
    """An IB island is one scale set with a single placement group; even with a support request a placement
    group holds at most 300 VMs, so the scale set cannot reach its capacity.

    Sources (100 VMs per single placement group):
    https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups
    and shared/reference/azure-gpu-clusters.md (support raises it to 300).
    """
    for index, pool in enumerate(spec.pools):
        largest = max(pool.island_sizes())
        if _ib_size(pool) is not None and largest > PLACEMENT_GROUP_RAISED_MAX:
            yield (
                _pool_at(index, "island_max_nodes"),
                f"pool {pool.name!r}: island_max_nodes {pool.island_max_nodes} makes an InfiniBand island "
                f"of {largest} VMs; a placement group holds at most {PLACEMENT_GROUP_RAISED_MAX}.",
                f"Set island_max_nodes to {PLACEMENT_GROUP_RAISED_MAX} or less; the pool is then split into "
                "several islands (scale sets).",
            )


@rule(
    "AZC009",
    "warning",
    "island-needs-support-request",
    "An InfiniBand island exceeds 100 VMs, which needs a support request",
)
def island_needs_support_request(spec: ClusterSpec) -> Iterator[Problem]:
    """A single placement group holds 100 VMs by default; 101-300 needs Azure support to raise the limit
    for the subscription, or the scale set stops at 100 with an allocation error.

    Source:
    https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-placement-groups
    """
    for index, pool in enumerate(spec.pools):
        largest = max(pool.island_sizes())
        if _ib_size(pool) is not None and PLACEMENT_GROUP_DEFAULT_MAX < largest <= PLACEMENT_GROUP_RAISED_MAX:
            yield (
                _pool_at(index, "island_max_nodes"),
                f"pool {pool.name!r}: InfiniBand islands of up to {largest} VMs exceed Azure's default of "
                f"{PLACEMENT_GROUP_DEFAULT_MAX} VMs per placement group.",
                "Ask Azure support to raise the placement group limit for this subscription and region "
                f"before `up`, or set island_max_nodes to {PLACEMENT_GROUP_DEFAULT_MAX}.",
            )


@rule("AZC010", "info", "pool-split-into-islands", "A pool is split into several InfiniBand islands")
def pool_split_into_islands(spec: ClusterSpec) -> Iterator[Problem]:
    """VMs share an InfiniBand fabric only inside one scale set; a pool larger than its island limit becomes
    several scale sets, and a job spanning two of them falls back to Ethernet. Schedulers must place jobs
    per island (shared/reference/azure-gpu-clusters.md, "InfiniBand rules").
    """
    for index, pool in enumerate(spec.pools):
        islands = pool.island_sizes()
        if _ib_size(pool) is not None and len(islands) > 1:
            shown = ", ".join(str(n) for n in islands[:6]) + (", ..." if len(islands) > 6 else "")
            yield (
                _pool_at(index, "nodes"),
                f"pool {pool.name!r} ({pool.nodes} nodes) will be split into {len(islands)} scale sets of "
                f"at most {pool.island_max_nodes} nodes ({shown}), each its own InfiniBand island.",
                "Place each multi-node job inside one island (e.g. one Slurm partition or topology block "
                "per scale set); raise island_max_nodes (up to 300, with a support request) for larger "
                "islands.",
            )


@rule(
    "AZC011",
    "info",
    "multi-node-pool-without-infiniband",
    "A multi-node pool uses a size without InfiniBand",
)
def multi_node_pool_without_infiniband(spec: ClusterSpec) -> Iterator[Problem]:
    """Sizes without InfiniBand (NC series) talk over Ethernet only: multi-node training on them is far
    slower than on ND sizes, and island settings do nothing for them.
    """
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is not None and not size.has_infiniband and pool.nodes > 1:
            yield (
                _pool_at(index, "size"),
                f"pool {pool.name!r}: {size.name} has no InfiniBand, so its {pool.nodes} nodes talk over "
                "Ethernet only (island_max_nodes has no effect).",
                "Fine for independent jobs; for multi-node training use an ND size with InfiniBand, e.g. "
                "Standard_ND96isr_H100_v5.",
            )


@rule("AZC012", "info", "partial-nvl72-rack", "A GB200 pool does not fill whole NVL72 racks")
def partial_nvl72_rack(spec: ClusterSpec) -> Iterator[Problem]:
    """A GB200 v6 VM is a 4-GPU slice of an NVL72 rack of 18 VMs; the NVLink domain spans the rack. Pools or
    islands that are not whole racks leave NVLink domains partly filled or shared with other scale sets
    (https://learn.microsoft.com/azure/virtual-machines/sizes/gpu-accelerated/nd-gb200-v6-series;
    catalogue `rack_vms`).
    """
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        rack = size.rack_vms if size is not None else None
        if size is None or not rack or pool.nodes == 0:
            continue
        islands = pool.island_sizes() if size.has_infiniband else [pool.nodes]
        uneven = [n for n in islands if n % rack]
        if uneven:
            where = f" (islands of {', '.join(str(n) for n in islands[:6])})" if len(islands) > 1 else ""
            yield (
                _pool_at(index, "nodes"),
                f"pool {pool.name!r}: {pool.nodes} {size.name} VMs{where} do not fill whole NVL72 racks "
                f"of {rack} VMs: {_plural(len(uneven), 'island')} would end in a partial rack.",
                f"Use multiples of {rack} for nodes and island_max_nodes (e.g. "
                f"{rack * max(1, pool.nodes // rack)} nodes) so every NVLink domain is whole.",
            )


@rule("AZC013", "error", "spot-with-capacity-reservation", "A Spot pool names a capacity reservation group")
def spot_with_capacity_reservation(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure does not support Spot VMs with capacity reservations; the deployment is refused.

    Source: https://learn.microsoft.com/azure/virtual-machines/capacity-reservation-overview
    (Limitations and restrictions: "Spot VMs and Azure Dedicated Host Nodes aren't supported").
    """
    for index, pool in enumerate(spec.pools):
        if pool.spot and pool.capacity_reservation_group_id:
            yield (
                _pool_at(index, "capacity_reservation_group_id"),
                f"pool {pool.name!r} is Spot and also names capacity reservation group "
                f"{_preview(pool.capacity_reservation_group_id, 60)!r}; Azure does not allow both.",
                "Remove `spot: true` to use the reservation, or remove capacity_reservation_group_id.",
            )


@rule("AZC014", "warning", "spot-on-infiniband-pool", "An InfiniBand pool uses Spot VMs")
def spot_on_infiniband_pool(spec: ClusterSpec) -> Iterator[Problem]:
    """Spot VMs can be evicted at any time; in a tightly coupled IB job one eviction kills the whole job,
    and the evicted node is deleted from the island.
    """
    for index, pool in enumerate(spec.pools):
        if pool.spot and _ib_size(pool) is not None and pool.nodes > 1:
            yield (
                _pool_at(index, "spot"),
                f"pool {pool.name!r} runs {pool.nodes} InfiniBand nodes as Spot: one eviction breaks every "
                "multi-node job on the island.",
                "Use Spot only with frequent checkpoints and automatic requeue, or set `spot: false`.",
            )


@rule(
    "AZC015",
    "error",
    "capacity-reservation-on-infiniband-pool",
    "An InfiniBand pool names a capacity reservation group",
)
def capacity_reservation_on_infiniband_pool(spec: ClusterSpec) -> Iterator[Problem]:
    """azcluster builds each IB island as a Uniform scale set with `singlePlacementGroup: true` (the fabric
    needs it: components/gpu_pool.py), but a Uniform scale set can use a capacity reservation only with
    `singlePlacementGroup: false`, so Azure refuses the association.

    Source:
    https://learn.microsoft.com/azure/virtual-machines/capacity-reservation-associate-virtual-machine-scale-set
    ("Limitations of scale sets in Uniform Orchestration").
    """
    for index, pool in enumerate(spec.pools):
        if pool.capacity_reservation_group_id and _ib_size(pool) is not None:
            yield (
                _pool_at(index, "capacity_reservation_group_id"),
                f"pool {pool.name!r}: {pool.size} islands are Uniform scale sets with a single placement "
                "group, which Azure cannot associate with a capacity reservation group.",
                "Remove capacity_reservation_group_id from InfiniBand pools (ask your Azure account team "
                "about capacity for ND sizes instead); reservations work for pools without InfiniBand.",
            )


_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_RESOURCE_GROUP = r"[-\w.()]{0,89}[-\w()]"
CAPACITY_RESERVATION_GROUP_ID = re.compile(
    rf"^/subscriptions/{_GUID}/resourceGroups/{_RESOURCE_GROUP}/providers/Microsoft\.Compute/"
    r"capacityReservationGroups/[^/\s]{1,80}$",
    re.IGNORECASE,
)


@rule(
    "AZC016",
    "error",
    "capacity-reservation-id-malformed",
    "A capacity reservation group id is not a well-formed resource id",
)
def capacity_reservation_id_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The scale set references the group by resource id; a name or a truncated id fails the deployment
    with a LinkedInvalidPropertyId error.
    """
    for index, pool in enumerate(spec.pools):
        value = pool.capacity_reservation_group_id
        if value is not None and not CAPACITY_RESERVATION_GROUP_ID.fullmatch(value.strip()):
            yield (
                _pool_at(index, "capacity_reservation_group_id"),
                f"pool {pool.name!r}: {_preview(value, 60)!r} is not a capacity reservation group "
                "resource id.",
                "Use the full id: /subscriptions/<subscription-guid>/resourceGroups/<group>/providers/"
                "Microsoft.Compute/capacityReservationGroups/<name> (`az capacity reservation group "
                "show`).",
            )


IMAGE_URN = re.compile(r"^[^:\s/]+:[^:\s/]+:[^:\s/]+:[^:\s/]+$")


def _image_form(image: str) -> str | None:
    """'urn', 'id' or None: the forms the Compute API's imageReference takes (as components/images.py)."""
    text = image.strip()
    if IMAGE_URN.fullmatch(text):
        return "urn"
    lowered = text.lower()
    if lowered.startswith("/subscriptions/") and "/providers/microsoft.compute/" in lowered:
        return "id"
    if lowered.startswith(("/communitygalleries/", "/sharedgalleries/")):
        return "id"
    return None


@rule(
    "AZC017",
    "error",
    "image-reference-malformed",
    "An image is neither a Marketplace URN nor an image id",
)
def image_reference_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The Compute API takes a Marketplace image as publisher, offer, sku and version, or an image by
    resource id; anything else cannot be turned into an imageReference.
    """
    images = [(_pool_at(i, "image"), f"pool {p.name!r}", p.image) for i, p in enumerate(spec.pools)]
    if spec.login.enabled:
        images.append((_at("login.image"), "the login node", spec.login.image))
    for path, owner, image in images:
        if image and _image_form(image) is None:
            yield (
                path,
                f"{owner}: image {_preview(image, 60)!r} is neither a Marketplace URN nor an image "
                "resource id.",
                "Use publisher:offer:sku:version (e.g. microsoft-dsvm:ubuntu-hpc:2204:latest) or "
                "/subscriptions/.../providers/Microsoft.Compute/galleries/<g>/images/<i>[/versions/<v>].",
            )


@rule("AZC018", "error", "image-does-not-fit-size", "A pool's image does not fit its GPUs")
def image_does_not_fit_size(spec: ClusterSpec) -> Iterator[Problem]:
    """The wrong image boots but the GPUs never come up: MI300X needs a ROCm image, NVIDIA sizes need a
    CUDA (non-ROCm) image, and GB200 v6 (Arm64, NVMe) needs Ubuntu 24.04 for Arm64
    (microsoft-dsvm:ubuntu-hpc:2404-gb; AZC055 checks the architecture).

    Sources: shared/reference/azure-gpu-clusters.md ("Images and node preparation"), Azure/azhpc-images.
    Only Marketplace URNs are checked; a custom image id cannot be read offline.
    """
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is None or not pool.image or _image_form(pool.image) != "urn":
            continue
        image = pool.image.lower()
        needs = size.required_image_hint or f"a CUDA image such as {size.default_image}"
        problem = None
        if size.gpu_vendor == "amd" and "rocm" not in image:
            problem = f"{size.name} has AMD GPUs but image {pool.image!r} is not a ROCm image"
        elif size.gpu_vendor != "amd" and "rocm" in image:
            problem = f"{size.name} has NVIDIA GPUs but image {pool.image!r} is a ROCm (AMD) image"
        elif "gb200" in size.name.lower() and "2404" not in image:
            problem = f"{size.name} needs Ubuntu 24.04 but image {pool.image!r} is not a 24.04 image"
        if problem:
            yield (
                _pool_at(index, "image"),
                f"pool {pool.name!r}: {problem}.",
                f"Use {needs}, or leave `image` out to get the catalogue's default ({size.default_image}).",
            )


def _node_images(spec: ClusterSpec) -> Iterator[tuple[str, str, str, str, object]]:
    """(YAML path of the image, owner, image, the size's CPU architecture, explicit image_plan) of every
    pool whose size the catalogue knows, and of the login node."""
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is not None:
            image = pool.image or size.default_image
            yield (
                _pool_at(index, "image"),
                f"pool {pool.name!r} ({size.name})",
                image,
                size.architecture,
                pool.image_plan,
            )
    if spec.login.enabled:
        login = catalog.general_sizes().get(spec.login.size) or catalog.find_size(spec.login.size)
        architecture = login.architecture if login is not None else "x64"
        yield (
            _at("login.image"),
            f"the login node ({spec.login.size})",
            spec.login.image,
            architecture,
            spec.login.image_plan,
        )


@rule("AZC055", "error", "image-architecture-mismatch", "An image's CPU architecture does not match its size")
def image_architecture_mismatch(spec: ClusterSpec) -> Iterator[Problem]:
    """An x64 image does not boot on an Arm64 size and the reverse: ND GB200 v6 is Grace (Arm64), and
    Azure refuses the combination (the image's architecture must match the size's). Architectures come from
    the catalogue (`sizes.yaml` architecture, `images.yaml`; an "arm64"/"aarch64" offer or sku marks an
    Arm64 image). GB200's image is microsoft-dsvm:ubuntu-hpc:2404-gb (Azure/azhpc-images issue 603), not
    the x64 2404 image.
    """
    for path, owner, image, architecture, _ in _node_images(spec):
        image_arch = catalog.image_architecture(image)
        if image_arch is not None and image_arch != architecture:
            size = next((s for s in catalog.gpu_sizes().values() if s.architecture == architecture), None)
            suggestion = size.default_image if size is not None and architecture == "Arm64" else None
            yield (
                path,
                f"{owner}: image {_preview(image, 60)!r} is {image_arch} but the size is {architecture}.",
                f"Use an {architecture} image"
                + (f" such as {suggestion}" if suggestion else "")
                + ", or leave `image` out for the catalogue's default.",
            )


@rule("AZC056", "warning", "node-software-missing", "Something the bootstrap adds has no build for the node")
def node_software_missing(spec: ClusterSpec) -> Iterator[Problem]:
    """The bootstrap installs the Managed Lustre client (when the image has none) and BlobFuse2, and runs
    Azure's node health checks (AzNHC) where they have a configuration for the size. Not all of them exist
    everywhere: Microsoft builds the Lustre client for Arm64 only on Ubuntu 24.04 (client-install-plan
    support matrix), and AzNHC has no configuration for GB200 v6 (Azure/azurehpc-health-checks). Said here,
    at validate, instead of a node that quietly lacks a mount or checks less. Catalogue: images.yaml.
    """
    from .bootstrap import AZNHC_SIZES

    lustre = _lustre_enabled(spec)
    blob = spec.storage.blob
    blob_mount = blob.enabled and blob.mount
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is None:
            continue
        image = pool.image or size.default_image
        missing = []
        info = catalog.find_image(image)
        if lustre and info is not None and catalog.lustre_client_for(image, size.architecture) is None:
            missing.append(f"the Managed Lustre client ({info.os}, {size.architecture})")
        blobfuse = catalog.node_software().get("BlobFuse2")
        if blob_mount and blobfuse is not None and size.architecture not in blobfuse.architectures:
            missing.append(f"BlobFuse2 ({size.architecture})")
        if size.architecture != "x64" and size.name.lower() not in AZNHC_SIZES:
            missing.append("AzNHC, Azure's node health checks (no configuration for this size)")
        if missing:
            yield (
                _pool_at(index, "image"),
                f"pool {pool.name!r} ({size.name}, {size.architecture}): not available on these nodes: "
                f"{'; '.join(missing)}.",
                "Nodes still come up; health is GPU and InfiniBand presence only where AzNHC is missing. Use "
                "an image that ships the missing pieces, or suppress this finding once you have checked.",
            )


@rule(
    "AZC057",
    "warning",
    "nvlink-imex-not-configured",
    "GB200 nodes without nvidia-imex peers: no multi-node NVLink",
)
def nvlink_imex_not_configured(spec: ClusterSpec) -> Iterator[Problem]:
    """A GB200 v6 VM is a 4-GPU slice of an NVL72 rack; GPUs in different VMs of a rack talk over NVLink only
    through NVIDIA's IMEX service, which needs every peer's address in /etc/nvidia-imex/nodes_config.cfg
    (NVIDIA IMEX guide, "nodes_config.cfg"). The peers of a scale set exist only after it is deployed, and
    azcluster does not write that file yet: multi-node NVLink (MNNVL, cuMem fabric handles) does not work,
    and NCCL between VMs uses InfiniBand. Documented decision (issue 9 item 1).
    """
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is not None and size.rack_vms and pool.nodes > 1:
            yield (
                _pool_at(index, "size"),
                f"pool {pool.name!r}: {pool.nodes} {size.name} VMs share NVL72 racks, but azcluster does not "
                "configure nvidia-imex with each rack's peers: multi-node NVLink is off; NCCL between VMs "
                "uses InfiniBand.",
                "For multi-node NVLink, write the rack's node addresses (`azcluster hosts`) to "
                "/etc/nvidia-imex/nodes_config.cfg on each node and restart nvidia-imex; or suppress this.",
            )


@rule("AZC058", "warning", "image-needs-purchase-plan", "An image is sold under a Marketplace purchase plan")
def image_needs_purchase_plan(spec: ClusterSpec) -> Iterator[Problem]:
    """Images from some publishers (AlmaLinux HPC, Rocky Linux, azhpc, azurecyclecloud; catalogue
    `images.yaml` purchase_plans) are sold under a purchase plan: the VM or scale set must carry `plan`
    {publisher, product, name} (azcluster sends it, derived from the URN as Azure/azurehpc pyazhpc/arm.py
    does) and the plan's terms must be accepted once per subscription, or the deployment fails
    (MarketplacePurchaseEligibilityFailed).
    """
    from .images import purchase_plan

    for path, owner, image, _, explicit in _node_images(spec):
        plan = purchase_plan(image, explicit)
        if plan is not None:
            urn = ":".join((plan["publisher"], plan["product"], plan["name"], "latest"))
            yield (
                path,
                f"{owner}: image {_preview(image, 60)!r} is sold under a purchase plan; azcluster sends plan "
                f"{{publisher: {plan['publisher']}, product: {plan['product']}, name: {plan['name']}}}.",
                f"Accept its terms once per subscription: `az vm image terms accept --urn {urn}`.",
            )


@rule("AZC059", "error", "image-plan-mismatch", "image_plan does not match the Marketplace image")
def image_plan_mismatch(spec: ClusterSpec) -> Iterator[Problem]:
    """A Marketplace image's plan is its publisher, offer (product) and sku (name); a different plan is
    refused by Azure. `image_plan` is for images Azure cannot tell (a gallery image built from a plan
    image); for a URN azcluster derives it.
    """
    for path, owner, image, _, explicit in _node_images(spec):
        parts = image.strip().split(":")
        if explicit is None or _image_form(image) != "urn":
            continue
        given = (explicit.publisher.lower(), explicit.product.lower(), explicit.name.lower())
        if given != tuple(part.lower() for part in parts[:3]):
            yield (
                path.rsplit(".", 1)[0] + ".image_plan",
                f"{owner}: image_plan {explicit.publisher}:{explicit.product}:{explicit.name} does not match "
                f"image {_preview(image, 60)!r}.",
                "Remove `image_plan` (azcluster derives it from the URN) or make it publisher, offer, sku "
                "of the image.",
            )


# ==================================================================================================
# Login node
# ==================================================================================================


@rule("AZC019", "warning", "login-size-unknown", "The login node's size is not in the catalogue")
def login_size_unknown(spec: ClusterSpec) -> Iterator[Problem]:
    """Many general-purpose sizes exist, so an unknown login size is not an error; but azcluster cannot
    price it or check its quota family, and a typo fails the deployment.
    """
    if not spec.login.enabled:
        return
    known = {name.lower() for name in catalog.general_sizes()}
    if spec.login.size.lower() in known or catalog.find_size(spec.login.size) is not None:
        return
    yield (
        _at("login.size"),
        f"login size {spec.login.size!r} is not in azcluster's catalogue: it cannot be priced or "
        "quota-checked.",
        f"{_did_you_mean(spec.login.size, [*catalog.general_sizes(), *catalog.gpu_sizes()])}"
        "Check the spelling with `az vm list-sizes -l <region>`; Standard_D4s_v5 is the default.",
    )


# ==================================================================================================
# Network
# ==================================================================================================

SUBNET_ROLES = ("compute", "login", "lustre", "endpoints", "bastion")


def _parse_cidr(text: str | None) -> ipaddress.IPv4Network | None:
    """An IPv4 CIDR (host bits allowed), or None. A bare address without /prefix is not a CIDR."""
    if not isinstance(text, str) or "/" not in text:
        return None
    try:
        return ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError:
        return None


def _cidr_fields(spec: ClusterSpec) -> list[tuple[str, str]]:
    """(path, value) of the address space and every subnet override that is set."""
    fields = [(_at("network.address_space"), spec.network.address_space)]
    for role in SUBNET_ROLES:
        value = getattr(spec.network.subnets, role)
        if value is not None:
            fields.append((_at(f"network.subnets.{role}"), value))
    return fields


def _overrides(spec: ClusterSpec) -> dict[str, ipaddress.IPv4Network]:
    """The subnet overrides that parse, by role."""
    parsed = {role: _parse_cidr(getattr(spec.network.subnets, role)) for role in SUBNET_ROLES}
    return {role: network for role, network in parsed.items() if network is not None}


def _plan_inputs(spec: ClusterSpec) -> tuple[ipaddress.IPv4Network, dict[str, str | None]] | None:
    """The address space and overrides `plan_subnets` takes, or None when one is not a valid CIDR."""
    space = _parse_cidr(spec.network.address_space)
    given = {role: getattr(spec.network.subnets, role) for role in SUBNET_ROLES}
    if space is None or any(value and _parse_cidr(value) is None for value in given.values()):
        return None
    return space, given


def _subnet_plan(spec: ClusterSpec) -> SubnetPlan | None:
    """The plan ClusterNetwork will build, or None when an input is invalid or it does not fit."""
    inputs = _plan_inputs(spec)
    if inputs is None:
        return None
    try:
        return plan_subnets(inputs[0], spec.total_nodes, inputs[1])
    except SubnetPlanError:
        return None


@rule("AZC020", "error", "cidr-invalid", "An address range is not an IPv4 CIDR")
def cidr_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure virtual networks and subnets take IPv4 ranges in CIDR notation (a.b.c.d/n); anything else is
    refused (and Managed Lustre accepts only IPv4:
    https://learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites).
    """
    for path, value in _cidr_fields(spec):
        if _parse_cidr(value) is None:
            yield (
                path,
                f"{value!r} is not an IPv4 range in CIDR notation.",
                "Write it as address/prefix-length, e.g. 10.42.0.0/16.",
            )


@rule("AZC021", "warning", "cidr-host-bits-set", "An address range has host bits set")
def cidr_host_bits_set(spec: ClusterSpec) -> Iterator[Problem]:
    """'10.42.1.7/16' names the range 10.42.0.0/16; Azure expects the network address, and a range written
    with host bits usually means a typo in the prefix length.
    """
    for path, value in _cidr_fields(spec):
        network = _parse_cidr(value)
        if network is not None and network.network_address != ipaddress.IPv4Interface(value.strip()).ip:
            yield (
                path,
                f"{value!r} has host bits set; the range it names is {network}.",
                f"Write {network} (or fix the prefix length if a different range was meant).",
            )


AZURE_REFUSED_RANGES = {
    ipaddress.IPv4Network("224.0.0.0/4"): "multicast",
    ipaddress.IPv4Network("255.255.255.255/32"): "broadcast",
    ipaddress.IPv4Network("127.0.0.0/8"): "loopback",
    ipaddress.IPv4Network("169.254.0.0/16"): "link-local",
    ipaddress.IPv4Network("168.63.129.16/32"): "Azure's internal DNS",
}


@rule("AZC022", "error", "reserved-address-range", "An address range overlaps a range Azure reserves")
def reserved_address_range(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses virtual network ranges that overlap multicast, broadcast, loopback, link-local or its
    internal DNS address 168.63.129.16.

    Source: https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq
    ("What address ranges can I use in my virtual networks?").
    """
    for path, value in _cidr_fields(spec):
        network = _parse_cidr(value)
        if network is None:
            continue
        clashes = [f"{net} ({what})" for net, what in AZURE_REFUSED_RANGES.items() if network.overlaps(net)]
        if clashes:
            yield (
                path,
                f"{value!r} overlaps {', '.join(clashes)}, which Azure does not allow in a virtual network.",
                "Use a private range (RFC 1918): 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16.",
            )


RFC1918 = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)
SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")


@rule(
    "AZC023",
    "warning",
    "non-private-address-space",
    "The address space is not an RFC 1918 private range",
)
def non_private_address_space(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure accepts public ranges in a virtual network, but then the nodes can no longer reach the real
    internet hosts in that range (package mirrors, registries); 100.64.0.0/10 (RFC 6598 shared space) is
    usable but collides with carrier-grade NAT on many networks. Microsoft recommends RFC 1918 ranges
    (https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq).
    """
    network = _parse_cidr(spec.network.address_space)
    if network is None or any(network.subnet_of(private) for private in RFC1918):
        return
    if any(network.overlaps(reserved) for reserved in AZURE_REFUSED_RANGES):
        return  # AZC022 says it
    if network.subnet_of(SHARED_ADDRESS_SPACE):
        why = "is RFC 6598 shared address space (carrier-grade NAT), not an RFC 1918 private range"
    else:
        why = "is not a private range: internet hosts in it become unreachable from the cluster"
    yield (
        _at("network.address_space"),
        f"address space {spec.network.address_space!r} {why}.",
        "Use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 that does not overlap your other "
        "networks.",
    )


@rule("AZC024", "error", "subnet-outside-address-space", "A subnet override lies outside the address space")
def subnet_outside_address_space(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses a subnet whose range is not inside its virtual network's address space
    (https://learn.microsoft.com/azure/virtual-network/virtual-network-manage-subnet).
    """
    space = _parse_cidr(spec.network.address_space)
    if space is None:
        return
    for role, network in _overrides(spec).items():
        if not network.subnet_of(space):
            yield (
                _at(f"network.subnets.{role}"),
                f"the {role} subnet {network} is not inside the address space {space}.",
                f"Pick a range inside {space}, or leave `subnets.{role}` out to have it carved "
                "automatically.",
            )


@rule("AZC025", "error", "subnets-overlap", "Two subnet overrides overlap")
def subnets_overlap(spec: ClusterSpec) -> Iterator[Problem]:
    """Subnets of one virtual network must not overlap; Azure refuses the second one
    (NetcfgSubnetRangesOverlap).
    """
    overrides = list(_overrides(spec).items())
    for i, (role, network) in enumerate(overrides):
        for other_role, other in overrides[:i]:
            if network.overlaps(other):
                yield (
                    _at(f"network.subnets.{role}"),
                    f"the {role} subnet {network} overlaps the {other_role} subnet {other}.",
                    "Give every subnet its own range, or leave one out to have it carved automatically.",
                )


@rule("AZC026", "error", "address-space-too-small", "The address space cannot hold the cluster's subnets")
def address_space_too_small(spec: ClusterSpec) -> Iterator[Problem]:
    """azcluster carves compute (sized for every node), login, Managed Lustre (/24), private endpoint and
    AzureBastionSubnet (/26) subnets from the address space (components/subnets.py); if they do not fit,
    the network cannot be built.
    """
    inputs = _plan_inputs(spec)
    if inputs is None:
        return  # AZC020 says it
    space, given = inputs
    try:
        plan_subnets(space, spec.total_nodes, given)
    except SubnetPlanError as err:
        yield (
            _at("network.address_space"),
            f"address space {space} cannot hold the cluster's subnets for {spec.total_nodes} nodes: {err}.",
            "Use a larger address space (a /16 fits thousands of nodes) or smaller subnet overrides.",
        )


@rule("AZC027", "error", "compute-subnet-too-small", "The compute subnet override cannot hold every node")
def compute_subnet_too_small(spec: ClusterSpec) -> Iterator[Problem]:
    """Every GPU node takes one address in the compute subnet and Azure keeps 5 addresses of every subnet;
    nodes past the last free address fail to allocate (SubnetIsFull).

    Source: https://learn.microsoft.com/azure/virtual-network/virtual-networks-faq
    ("Are there any restrictions on using IP addresses within these subnets?").
    """
    network = _overrides(spec).get("compute")
    if network is not None and usable_addresses(network) < spec.total_nodes:
        yield (
            _at("network.subnets.compute"),
            f"the compute subnet {network} has {usable_addresses(network)} usable addresses (Azure keeps "
            f"5) but the pools have {spec.total_nodes} nodes.",
            "Use a larger compute subnet, or leave `subnets.compute` out to have it sized automatically.",
        )


BASTION_MIN_PREFIX = 26


@rule("AZC028", "error", "bastion-subnet-too-small", "The AzureBastionSubnet override is smaller than /26")
def bastion_subnet_too_small(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure Bastion refuses an AzureBastionSubnet smaller than /26
    (https://learn.microsoft.com/azure/bastion/configuration-settings#subnet).
    """
    network = _overrides(spec).get("bastion")
    if spec.network.bastion and network is not None and network.prefixlen > BASTION_MIN_PREFIX:
        yield (
            _at("network.subnets.bastion"),
            f"the Bastion subnet {network} is smaller than the /{BASTION_MIN_PREFIX} Azure Bastion requires.",
            f"Use a /{BASTION_MIN_PREFIX} or larger, or leave `subnets.bastion` out.",
        )


LUSTRE_SUBNET_PREFIX_BY_TIB = ((16, 27), (40, 26), (92, 25), (196, 24), (400, 23))
"""Recommended Managed Lustre subnet size by capacity: (up to TiB, prefix length)."""


def lustre_subnet_prefix(capacity_tib: int) -> int:
    """Largest prefix length (smallest subnet) Microsoft recommends for a file system of that capacity.

    Past 400 TiB the table ends; each doubling is assumed to need one more bit.
    """
    for up_to, prefix in LUSTRE_SUBNET_PREFIX_BY_TIB:
        if capacity_tib <= up_to:
            return prefix
    prefix, limit = 23, 400
    while capacity_tib > limit and prefix > 16:
        prefix, limit = prefix - 1, limit * 2
    return prefix


@rule(
    "AZC029",
    "warning",
    "lustre-subnet-too-small",
    "The Managed Lustre subnet is small for its capacity",
)
def lustre_subnet_too_small(spec: ClusterSpec) -> Iterator[Problem]:
    """Managed Lustre needs more addresses as it grows: 4-16 TiB a /27, up to 40 TiB a /26, 92 TiB a /25,
    196 TiB a /24, 400 TiB a /23. The automatic plan gives it a /24.

    Source:
    https://learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites#network-size-requirements
    """
    lustre = spec.storage.lustre
    if lustre is None or not lustre.enabled:
        return
    network = _overrides(spec).get("lustre")
    if network is None:
        plan = _subnet_plan(spec)
        network = plan.lustre if plan is not None else None
    wanted = lustre_subnet_prefix(lustre.capacity_tib)
    if network is not None and network.prefixlen > wanted:
        source = "override" if spec.network.subnets.lustre else "automatic /24"
        yield (
            _at("network.subnets.lustre"),
            f"the Managed Lustre subnet {network} ({source}) is smaller than the /{wanted} Microsoft "
            f"recommends for {lustre.capacity_tib} TiB.",
            f"Set `network.subnets.lustre` to a /{wanted} or larger inside the address space.",
        )


VIRTUAL_NETWORK_ID = re.compile(
    rf"^/subscriptions/{_GUID}/resourceGroups/{_RESOURCE_GROUP}/providers/Microsoft\.Network/"
    r"virtualNetworks/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}[A-Za-z0-9_]$",
    re.IGNORECASE,
)


@rule(
    "AZC030",
    "error",
    "existing-vnet-id-malformed",
    "existing_vnet_id is not a virtual network resource id",
)
def existing_vnet_id_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The subnets are created inside the existing network by its resource id; a name or a malformed id
    fails the deployment. Virtual network names: 2-64 characters, alphanumerics, underscores, periods and
    hyphens, starting alphanumeric, ending alphanumeric or underscore
    (https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
    """
    value = spec.network.existing_vnet_id
    if value is not None and not VIRTUAL_NETWORK_ID.fullmatch(value.strip()):
        yield (
            _at("network.existing_vnet_id"),
            f"{_preview(value, 60)!r} is not a virtual network resource id.",
            "Use /subscriptions/<subscription-guid>/resourceGroups/<group>/providers/Microsoft.Network/"
            "virtualNetworks/<name> (`az network vnet show -g <group> -n <name> --query id`).",
        )


@rule(
    "AZC031",
    "warning",
    "cluster-unreachable",
    "No Bastion and no existing network: nothing can reach the VMs",
)
def cluster_unreachable(spec: ClusterSpec) -> Iterator[Problem]:
    """No VM azcluster builds has a public IP. Without Bastion and without an existing (peered,
    VPN-connected) network, nothing outside the new virtual network can reach the login node or the GPU
    nodes.
    """
    if not spec.network.bastion and spec.network.existing_vnet_id is None:
        target = "the login node" if spec.login.enabled else "any node"
        yield (
            _at("network.bastion"),
            f"Bastion is off and the cluster gets a new virtual network: nothing outside it can reach "
            f"{target} (no VM has a public IP).",
            "Set `network.bastion: true`, or deploy into a network you can reach with "
            "`network.existing_vnet_id`.",
        )


@rule(
    "AZC032",
    "warning",
    "no-outbound-internet",
    "No NAT gateway in a new network: nodes have no outbound access",
)
def no_outbound_internet(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure is retiring default outbound access: VMs without public IPs in a new subnet need explicit
    outbound (a NAT gateway) to reach package mirrors, container registries and Azure endpoints.

    Source: https://learn.microsoft.com/azure/virtual-network/ip-services/default-outbound-access
    """
    if not spec.network.nat_gateway and spec.network.existing_vnet_id is None:
        yield (
            _at("network.nat_gateway"),
            "the NAT gateway is off in a new virtual network: nodes cannot reach package mirrors, "
            "registries or the internet.",
            "Set `network.nat_gateway: true`, or use `network.existing_vnet_id` with your own outbound "
            "route.",
        )


PRIVATE_DNS_ZONE_ID = re.compile(
    rf"^/subscriptions/{_GUID}/resourceGroups/{_RESOURCE_GROUP}/providers/Microsoft\.Network/"
    r"privateDnsZones/(?P<name>[^/\s]+)$",
    re.IGNORECASE,
)


def _private_endpoint_kinds(spec: ClusterSpec) -> list[tuple[str, str]]:
    """(private-link kind, what uses it) for each private endpoint the spec creates."""
    kinds = []
    if spec.storage.blob.enabled:
        kinds.append(("blob", "the blob data account"))
    home = getattr(spec.storage, "home", None)
    if home is not None and home.enabled:
        kinds.append(("file", "the shared home (Azure Files NFS)"))
    return kinds


@rule(
    "AZC060",
    "warning",
    "existing-network-dns-zone-unnamed",
    "Joining an existing network without naming its private DNS zones",
)
def existing_network_dns_zone_unnamed(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure links a virtual network to at most one private DNS zone of a given name: creating another
    privatelink.blob.core.windows.net (or .file.) zone and linking it to a hub's network, which usually has
    one, is refused ("A virtual network cannot be linked to multiple zones with overlapping namespaces"). So
    in an existing network azcluster creates no such zone by default (components/network.py,
    `private_dns_zone`) and the endpoint's A record is left to the network's own DNS (in Azure landing
    zones, Azure Policy's private-endpoint DNS integration writes it). Without that record the nodes resolve
    the account's public address, which refuses them (public network access is off), and mounts fail.

    Sources: https://learn.microsoft.com/azure/private-link/private-endpoint-dns-integration (hub-and-spoke:
    one zone per name in the hub, linked to the spokes); https://learn.microsoft.com/azure/dns/private-dns-
    virtual-network-links.
    """
    if not spec.network.existing_vnet_id:
        return
    for kind, user in _private_endpoint_kinds(spec):
        if kind in spec.network.dns_zones:
            continue
        zone = PRIVATE_DNS_ZONE_NAMES[kind]
        yield (
            _at("network.dns_zones"),
            f"the cluster joins an existing virtual network and {user} gets a private endpoint, but no "
            f"{zone} zone is named: azcluster creates none (the network may already be linked to one), so "
            "the endpoint resolves only if your network's DNS registers it.",
            f"Set `network.dns_zones.{kind}` to the resource id of the hub's zone (`az network private-dns "
            f"zone show -g <group> -n {zone} --query id`), or to `create` if no zone of that name is linked "
            "to the network.",
        )


@rule("AZC061", "error", "dns-zone-id-malformed", "A private DNS zone in network.dns_zones is not a zone id")
def dns_zone_id_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """The private endpoint's DNS zone group references the zone by resource id, and only a zone named for
    the private-link kind resolves it (privatelink.blob.core.windows.net for blob:
    https://learn.microsoft.com/azure/private-link/private-endpoint-dns); anything else fails the
    deployment or resolves nothing.
    """
    for kind, value in spec.network.dns_zones.items():
        text = value.strip()
        if text.lower() == CREATE_DNS_ZONE:
            continue
        expected = PRIVATE_DNS_ZONE_NAMES[kind]
        match = PRIVATE_DNS_ZONE_ID.fullmatch(text)
        if match is None:
            problem = f"{_preview(value, 60)!r} is neither `create` nor a private DNS zone resource id."
        elif match["name"].lower() != expected:
            problem = f"zone {match['name']!r} is not {expected}, the zone {kind} private endpoints use."
        else:
            continue
        yield (
            _at(f"network.dns_zones.{kind}"),
            problem,
            f"Use /subscriptions/<guid>/resourceGroups/<group>/providers/Microsoft.Network/privateDnsZones/"
            f"{expected}, or `create`.",
        )


# ==================================================================================================
# Storage
# ==================================================================================================


@rule(
    "AZC033",
    "error",
    "lustre-capacity-out-of-range",
    "Managed Lustre capacity is outside the SKU's range",
)
def lustre_capacity_out_of_range(spec: ClusterSpec) -> Iterator[Problem]:
    """Each Managed Lustre SKU has a minimum and a maximum capacity; larger sizes (up to 2.5 PB) need a
    support request.

    Source:
    https://learn.microsoft.com/azure/azure-managed-lustre/create-file-system-portal#throughput-configurations
    (catalogue `storage.yaml`).
    """
    lustre = spec.storage.lustre
    sku = catalog.lustre_skus().get(lustre.sku) if lustre is not None else None
    if lustre is None or not lustre.enabled or sku is None:
        return
    if not sku.min_tib <= lustre.capacity_tib <= sku.max_tib:
        yield (
            _at("storage.lustre.capacity_tib"),
            f"capacity_tib {lustre.capacity_tib} is outside {sku.name}'s range of "
            f"{sku.min_tib}-{sku.max_tib} TiB.",
            f"Use {sku.min_tib}-{sku.max_tib} TiB in steps of {sku.step_tib}; larger sizes need an Azure "
            "support request, or pick another SKU.",
        )


@rule(
    "AZC034",
    "error",
    "lustre-capacity-not-a-step",
    "Managed Lustre capacity is not a multiple of the SKU's step",
)
def lustre_capacity_not_a_step(spec: ClusterSpec) -> Iterator[Problem]:
    """Managed Lustre capacity comes in SKU-sized increments (48, 16, 8 or 4 TiB); other values are refused
    by the API. Source: as AZC033.
    """
    lustre = spec.storage.lustre
    sku = catalog.lustre_skus().get(lustre.sku) if lustre is not None else None
    if lustre is None or not lustre.enabled or sku is None:
        return
    if sku.min_tib <= lustre.capacity_tib <= sku.max_tib and lustre.capacity_tib % sku.step_tib:
        below = lustre.capacity_tib - lustre.capacity_tib % sku.step_tib
        choices = [str(n) for n in (below, below + sku.step_tib) if sku.min_tib <= n <= sku.max_tib]
        yield (
            _at("storage.lustre.capacity_tib"),
            f"capacity_tib {lustre.capacity_tib} is not a multiple of {sku.name}'s step of "
            f"{sku.step_tib} TiB.",
            f"Use {' or '.join(choices)} TiB.",
        )


@rule("AZC035", "info", "lustre-without-zone", "Managed Lustre without `zone`: azcluster picks zone 1")
def lustre_without_zone(spec: ClusterSpec) -> Iterator[Problem]:
    """Managed Lustre lives in one availability zone and its clients must be in that zone ("Clients must
    reside in the same Availability Zone in which the cluster resides", learn.microsoft.com/azure/
    azure-managed-lustre/connect-clients). Without `zone`, azcluster puts the file system, the GPU scale
    sets, the login node and the NAT gateway all in zone 1 (components/placement.py), rather than regional
    scale sets beside a zone-1 file system; this says so, since zone 1 may not be where the GPU size has
    capacity.
    """
    placement = cluster_zone(spec)
    if _lustre_enabled(spec) and placement.chosen:
        yield (
            _at("zone"),
            f"no zone is set in {spec.location}, which has zones: azcluster places Managed Lustre, the GPU "
            f"nodes, the login node and the NAT gateway in zone {placement.zone}, since Lustre clients must "
            "share the file system's zone.",
            f'Set `zone` (e.g. "{placement.zone}") to the zone where your GPU size has capacity '
            "(`azcluster preflight` checks it).",
        )


@rule(
    "AZC036",
    "error",
    "lustre-import-needs-blob",
    "Lustre import_container is set but the blob account is off",
)
def lustre_import_needs_blob(spec: ClusterSpec) -> Iterator[Problem]:
    """Blob integration (HSM) imports from and archives to a container in the cluster's data account;
    without `storage.blob.enabled` there is no account to point Managed Lustre at.

    Source: https://learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites
    (blob integration prerequisites).
    """
    lustre = spec.storage.lustre
    if (
        _lustre_enabled(spec)
        and lustre is not None
        and lustre.import_container
        and not spec.storage.blob.enabled
    ):
        yield (
            _at("storage.lustre.import_container"),
            f"import_container {lustre.import_container!r} is set, but storage.blob.enabled is false.",
            "Set `storage.blob.enabled: true`, or remove import_container.",
        )


BLOB_CONTAINER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
HSM_LOGGING_CONTAINER = "lustre-logs"
"""The container components/storage.py creates for Managed Lustre's import/export logs."""


@rule(
    "AZC037",
    "error",
    "lustre-import-container-invalid",
    "Lustre import_container is not a valid container name, or is the logging container",
)
def lustre_import_container_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """azcluster creates the import container in the data account (next to the blob containers), so its
    name must be a valid container name; and Managed Lustre logs import/export jobs to a separate container
    in the same account, which azcluster names `lustre-logs`, so the import container cannot be that one.

    Source: https://learn.microsoft.com/azure/azure-managed-lustre/create-file-system-portal
    (blob integration: "The logs must be stored in a separate container from the data container").
    """
    lustre = spec.storage.lustre
    if not (_lustre_enabled(spec) and lustre is not None and lustre.import_container):
        return
    name = lustre.import_container
    if not BLOB_CONTAINER_NAME.fullmatch(name):
        problem = "is not 3-63 lower-case letters, digits and single hyphens"
    elif name == HSM_LOGGING_CONTAINER:
        problem = f"is the container azcluster keeps for Managed Lustre's logs ({HSM_LOGGING_CONTAINER})"
    else:
        return
    yield (
        _at("storage.lustre.import_container"),
        f"import_container {_preview(name, 70)!r} {problem}.",
        "Use another container name, e.g. datasets.",
    )


@rule("AZC038", "error", "blob-container-name-invalid", "A blob container name is invalid or repeated")
def blob_container_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Container names are 3-63 characters of lower-case letters, digits and hyphens, start with a letter or
    digit, and every hyphen sits between letters or digits; names are unique in the account.

    Sources: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
    (Microsoft.Storage) and
    https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
    """
    blob = spec.storage.blob
    if not blob.enabled:
        return
    seen: set[str] = set()
    for index, name in enumerate(blob.containers):
        path = _at(f"storage.blob.containers[{index}]")
        if not BLOB_CONTAINER_NAME.fullmatch(name):
            suggestion = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "", name.lower())).strip("-") or "data"
            yield (
                path,
                f"blob container name {name!r} is not 3-63 lower-case letters, digits and single hyphens.",
                f"Rename it, e.g. {suggestion!r}.",
            )
        elif name in seen:
            yield (path, f"blob container {name!r} is listed twice.", "List each container once.")
        seen.add(name)


@rule(
    "AZC039",
    "error",
    "blob-mount-without-container",
    "Blob mount is on but there is no container to mount",
)
def blob_mount_without_container(spec: ClusterSpec) -> Iterator[Problem]:
    """`storage.blob.mount` mounts the first container on every node with BlobFuse2; with no container there
    is nothing to mount and node preparation fails.
    """
    blob = spec.storage.blob
    if blob.enabled and blob.mount and not blob.containers:
        yield (
            _at("storage.blob.containers"),
            "storage.blob.mount is true but storage.blob.containers is empty: there is nothing to mount.",
            "List at least one container (the first is mounted), or set `storage.blob.mount: false`.",
        )


# ==================================================================================================
# Names derived from the cluster and pool names
# ==================================================================================================

CLUSTER_NAME_PATTERN = re.compile(r"^[a-z](?:[a-z0-9-]*[a-z0-9])?$")
SCALE_SET_NAME_MAX = 64
HOST_NAME_PREFIX_MAX = 57
"""Longest computer-name prefix components/bootstrap builds (`<cluster>-<pool>-i<island>-`, the cluster
part shortened to fit). Azure allows 58 for a Linux scale set: it appends a 6-character instance number
and Linux host names stop at 64."""
VM_NAME_MAX = 64
RESOURCE_GROUP_NAME_MAX = 90


@rule(
    "AZC040",
    "error",
    "cluster-name-invalid",
    "The cluster name is not lower-case letters, digits and hyphens",
)
def cluster_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """The cluster name prefixes every resource and host name. Scale set and VM names refuse spaces, most
    punctuation and a trailing hyphen; Linux host names allow only letters, digits and hyphens
    (Microsoft.Compute in
    https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules).
    azcluster asks for a lower-case letter first, then lower-case letters, digits and hyphens, ending in a
    letter or digit, so every derived name is valid.
    """
    if not CLUSTER_NAME_PATTERN.fullmatch(spec.name):
        suggestion = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", spec.name.lower())).strip("-")
        if not suggestion or not suggestion[0].isalpha():
            suggestion = f"c-{suggestion}".rstrip("-")
        yield (
            _at("name"),
            f"cluster name {spec.name!r} is not a lower-case letter followed by lower-case letters, digits "
            "and hyphens (not ending in a hyphen).",
            f"Rename it, e.g. {suggestion!r}.",
        )


def scale_set_names(cluster_name: str, pool: PoolSpec) -> list[str]:
    """The names GpuPool gives the pool's scale sets: `<cluster>-<pool>-ib<i>` per IB island, else
    `<cluster>-<pool>` (components/gpu_pool.py `plan_islands`). Unknown sizes are treated as IB (longer).
    """
    size = catalog.find_size(pool.size)
    if size is not None and not size.has_infiniband:
        return [f"{cluster_name}-{pool.name}"]
    return [f"{cluster_name}-{pool.name}-ib{index}" for index in range(len(pool.island_sizes()))]


@rule(
    "AZC041",
    "error",
    "derived-name-too-long",
    "A resource name derived from the cluster name is too long",
)
def derived_name_too_long(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure limits names: a scale set 64 characters, a Linux VM 64, a resource group 90; a Linux scale
    set's computer-name prefix 58 (Azure appends a 6-character instance number to reach the 64-character
    Linux host name limit). The host-name prefix keeps the pool and island whole and shortens the cluster
    part, so a long pool name alone can break it.

    Sources: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
    (Microsoft.Compute, Microsoft.Resources); the 58-character prefix as the Terraform azurerm provider
    documents `computer_name_prefix` for Linux scale sets.
    """
    for index, pool in enumerate(spec.pools):
        longest = max(scale_set_names(spec.name, pool), key=len)
        if len(longest) > SCALE_SET_NAME_MAX:
            yield (
                _pool_at(index, "name"),
                f"scale set name {longest!r} has {len(longest)} characters; Azure allows "
                f"{SCALE_SET_NAME_MAX}.",
                f"Shorten the cluster or pool name by {len(longest) - SCALE_SET_NAME_MAX} characters.",
            )
        host_part = f"-{pool.name}-i{len(pool.island_sizes()) - 1}-"
        if len(host_part) >= HOST_NAME_PREFIX_MAX:
            yield (
                _pool_at(index, "name"),
                f"pool name {pool.name!r} leaves no room for the cluster name in the nodes' host-name "
                f"prefix '<cluster>{host_part}' (at most {HOST_NAME_PREFIX_MAX} characters).",
                f"Shorten the pool name by {len(host_part) - HOST_NAME_PREFIX_MAX + 1} characters or more.",
            )
    login = f"{spec.name}-login"
    if spec.login.enabled and len(login) > VM_NAME_MAX:
        yield (
            _at("name"),
            f"login VM name {login!r} has {len(login)} characters; Azure allows {VM_NAME_MAX}.",
            f"Shorten the cluster name by {len(login) - VM_NAME_MAX} characters.",
        )
    if spec.resource_group is None and len(spec.resource_group_name) > RESOURCE_GROUP_NAME_MAX:
        yield (
            _at("name"),
            f"resource group name {spec.resource_group_name!r} has {len(spec.resource_group_name)} "
            f"characters; Azure allows {RESOURCE_GROUP_NAME_MAX}.",
            "Shorten the cluster name, or name an existing group with `resource_group`.",
        )


RESOURCE_GROUP_NAME = re.compile(r"^[-\w.()]+$")


@rule(
    "AZC042",
    "error",
    "resource-group-name-invalid",
    "The resource group name breaks Azure's naming rules",
)
def resource_group_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Resource group names are 1-90 letters, digits, underscores, hyphens, periods and parentheses, and
    cannot end in a period.

    Source: https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
    (Microsoft.Resources).
    """
    name = spec.resource_group
    if name is None:
        return
    valid = RESOURCE_GROUP_NAME.fullmatch(name) and not name.endswith(".")
    if not valid or len(name) > RESOURCE_GROUP_NAME_MAX:
        yield (
            _at("resource_group"),
            f"resource group name {_preview(name, 100)!r} is not 1-{RESOURCE_GROUP_NAME_MAX} letters, "
            "digits, '_', '-', '.', '(' or ')' not ending in '.'.",
            "Use the existing group's exact name (`az group list -o table`), or leave `resource_group` out.",
        )


# ==================================================================================================
# Access: admin user and SSH keys
# ==================================================================================================

RESERVED_ADMIN_USERNAMES = frozenset(
    {
        "administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1", "123",
        "a", "actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest", "john", "owner",
        "root", "server", "sql", "support", "support_388945a0", "sys", "test2", "test3", "user4", "user5",
    }
)  # fmt: skip
ADMIN_USERNAME_MAX = 64
ADMIN_USERNAME_FORBIDDEN = re.compile(r'[\\/"\[\]:|<>+=;,?*@#()!A-Z\s]')


@rule("AZC043", "error", "admin-username-reserved", "The admin user name is one Azure refuses")
def admin_username_reserved(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses these admin user names (osProfile.adminUsername "Disallowed values").

    Source: https://learn.microsoft.com/rest/api/compute/virtual-machines/create-or-update#osprofile
    """
    username = spec.ssh.admin_username
    if username.lower() in RESERVED_ADMIN_USERNAMES:
        yield (
            _at("ssh.admin_username"),
            f"admin user name {username!r} is on Azure's list of disallowed names.",
            "Use another name, e.g. azureuser (the default).",
        )


@rule(
    "AZC044",
    "error",
    "admin-username-invalid",
    "The admin user name has characters or a length Azure refuses",
)
def admin_username_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """A Linux admin user name is 1-64 characters, with no upper-case letters, blanks or \\/"[]:|<>+=;,?*@#()!
    and not starting with $ or -.

    Sources: https://learn.microsoft.com/rest/api/compute/virtual-machines/create-or-update#osprofile
    (length) and Azure CLI's `_validate_admin_username`
    (https://github.com/Azure/azure-cli/blob/dev/src/azure-cli/azure/cli/command_modules/vm/_validators.py).
    """
    username = spec.ssh.admin_username
    problems = []
    if not username:
        problems.append("is empty")
    elif len(username) > ADMIN_USERNAME_MAX:
        problems.append(f"has {len(username)} characters (at most {ADMIN_USERNAME_MAX})")
    bad = sorted(set(ADMIN_USERNAME_FORBIDDEN.findall(username)))
    if bad:
        problems.append(f"contains {' '.join(repr(c) for c in bad)}")
    if username[:1] in ("$", "-"):
        problems.append(f"starts with {username[0]!r}")
    if problems:
        yield (
            _at("ssh.admin_username"),
            f"admin user name {_preview(username, 70)!r} {' and '.join(problems)}.",
            "Use lower-case letters, digits, '_' and '-', starting with a letter, e.g. azureuser.",
        )


@dataclass(frozen=True)
class SshPublicKey:
    """What the rules need to know about a public key."""

    type: str
    bits: int
    comment: str = ""


class SshKeyError(ValueError):
    """The text is not a well-formed SSH public key; the message says why."""


SSH_KEY_TYPES_AZURE_ACCEPTS = frozenset({"ssh-rsa", "ssh-ed25519"})
_ECDSA_CURVES = {"nistp256": 256, "nistp384": 384, "nistp521": 521}
SSH_KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-ed25519",
        "ssh-dss",
        *(f"ecdsa-sha2-{curve}" for curve in _ECDSA_CURVES),
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


class _WireReader:
    """RFC 4251 wire format: uint32 length-prefixed strings and mpints."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def string(self) -> bytes:
        if self.pos + 4 > len(self.data):
            raise SshKeyError("its body is truncated")
        (length,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        if self.pos + length > len(self.data):
            raise SshKeyError("its body is truncated")
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def finished(self) -> bool:
        return self.pos == len(self.data)


def _rfc4716_body(text: str) -> str:
    """The base64 body of an RFC 4716 ('---- BEGIN SSH2 PUBLIC KEY ----') key, headers dropped."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 2 or lines[-1] != "---- END SSH2 PUBLIC KEY ----":
        raise SshKeyError("its '---- END SSH2 PUBLIC KEY ----' line is missing")
    body: list[str] = []
    continued = False
    for line in lines[1:-1]:
        if continued or (not body and ":" in line):
            continued = line.endswith("\\")
            continue
        body.append(line)
    return "".join(body)


def parse_ssh_public_key(text: str) -> SshPublicKey:
    """Parse an OpenSSH (`type base64 [comment]`) or RFC 4716 public key; raise SshKeyError if malformed.

    The base64 body is decoded and read: the type inside must match the type in front, and the key
    material must be complete (RSA modulus, Ed25519 32-byte key, ECDSA curve and point).
    """
    stripped = text.strip()
    if not stripped:
        raise SshKeyError("it is empty")
    if "PRIVATE KEY" in stripped:
        raise SshKeyError("it is a PRIVATE key")
    comment = ""
    if stripped.startswith("---- BEGIN SSH2 PUBLIC KEY ----"):
        declared, body = None, _rfc4716_body(stripped)
    else:
        parts = stripped.split(None, 2)
        declared = parts[0]
        if declared not in SSH_KEY_TYPES:
            if len(parts) == 1 and ("/" in declared or declared.startswith("~")):
                raise SshKeyError("it looks like a file path, and only paths ending in .pub are read")
            raise SshKeyError("it does not start with an SSH key type such as ssh-ed25519 or ssh-rsa")
        if len(parts) < 2:
            raise SshKeyError(f"the base64 body after {declared!r} is missing")
        body = parts[1]
        comment = parts[2] if len(parts) > 2 else ""
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SshKeyError("its body is not valid base64") from None
    reader = _WireReader(blob)
    inner = reader.string().decode("ascii", errors="replace")
    if declared is not None and inner != declared:
        raise SshKeyError(f"it says {declared!r} but its body holds a {_preview(inner, 40)!r} key")
    if inner not in SSH_KEY_TYPES:
        raise SshKeyError(f"its body holds an unknown key type {_preview(inner, 40)!r}")
    bits = _key_bits(inner, reader)
    if not reader.finished():
        raise SshKeyError("its body has bytes after the key")
    return SshPublicKey(inner, bits, comment)


def _key_bits(key_type: str, reader: _WireReader) -> int:
    if key_type == "ssh-rsa":
        exponent, modulus = reader.mpint(), reader.mpint()
        if exponent <= 0 or modulus <= 0:
            raise SshKeyError("its RSA numbers are invalid")
        return modulus.bit_length()
    if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        if len(reader.string()) != 32:
            raise SshKeyError("its Ed25519 key is not 32 bytes")
        if key_type.startswith("sk-"):
            reader.string()  # application
        return 256
    if key_type == "ssh-dss":
        p = reader.mpint()
        for _ in range(3):
            reader.mpint()
        return p.bit_length()
    curve = key_type.removeprefix("sk-").removeprefix("ecdsa-sha2-").split("@")[0]
    if reader.string().decode("ascii", errors="replace") != curve or not reader.string():
        raise SshKeyError(f"its ECDSA curve or point does not match {key_type}")
    if key_type.startswith("sk-"):
        reader.string()  # application
    return _ECDSA_CURVES[curve]


def _parsed_keys(spec: ClusterSpec) -> Iterator[tuple[int, str, SshPublicKey | SshKeyError]]:
    for index, text in enumerate(spec.ssh.public_keys):
        try:
            yield index, text, parse_ssh_public_key(text)
        except SshKeyError as err:
            yield index, text, err


def _key_path(index: int) -> str:
    return _at(f"ssh.public_keys[{index}]")


@rule("AZC045", "error", "no-ssh-key", "No SSH public key is given")
def no_ssh_key(spec: ClusterSpec) -> Iterator[Problem]:
    """Password authentication is always off, so without a public key nobody can log in to any node."""
    if not spec.ssh.public_keys:
        yield (
            _at("ssh.public_keys"),
            "no SSH public key is given, and password login is off: nobody could log in.",
            "Add your key under `ssh.public_keys`, as text or a path such as ~/.ssh/id_ed25519.pub "
            "(`ssh-keygen -t ed25519` makes one).",
        )


@rule("AZC046", "error", "ssh-key-malformed", "An SSH public key is malformed")
def ssh_key_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses malformed keys (InvalidParameter on linuxConfiguration.ssh.publicKeys.keyData), after
    the deployment has started; a pasted private key would be a secret in a stack file.
    """
    for index, text, parsed in _parsed_keys(spec):
        if isinstance(parsed, SshKeyError):
            if "PRIVATE KEY" in text:
                hint = (
                    "Never put a private key in a stack file: give the matching .pub file instead, and "
                    "replace the key if this file was shared."
                )
            else:
                hint = "Paste the whole line of the .pub file (`type base64 comment`), or give its path."
            yield (
                _key_path(index),
                f"SSH key {index + 1} ({_preview(text)!r}) is not a valid public key: {parsed}.",
                hint,
            )


@rule("AZC047", "error", "ssh-key-type-unsupported", "An SSH key type Azure does not accept")
def ssh_key_type_unsupported(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure accepts RSA (at least 2048 bits) and Ed25519 public keys for Linux VMs; ECDSA, DSA and
    security-key (sk-) types are not supported.

    Source: https://learn.microsoft.com/azure/virtual-machines/linux/create-ssh-keys-detailed
    ("Supported SSH key formats").
    """
    for index, _text, parsed in _parsed_keys(spec):
        if isinstance(parsed, SshPublicKey) and parsed.type not in SSH_KEY_TYPES_AZURE_ACCEPTS:
            yield (
                _key_path(index),
                f"SSH key {index + 1} is a {parsed.type} key, which Azure does not accept for Linux VMs.",
                "Use an Ed25519 key (`ssh-keygen -t ed25519`) or an RSA key of 2048 bits or more.",
            )


RSA_MIN_BITS = 2048


@rule("AZC048", "error", "ssh-rsa-key-too-short", "An RSA SSH key is shorter than 2048 bits")
def ssh_rsa_key_too_short(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure requires RSA public keys of at least 2048 bits. Source: as AZC047."""
    for index, _text, parsed in _parsed_keys(spec):
        if isinstance(parsed, SshPublicKey) and parsed.type == "ssh-rsa" and parsed.bits < RSA_MIN_BITS:
            yield (
                _key_path(index),
                f"SSH key {index + 1} is a {parsed.bits}-bit RSA key; Azure requires at least "
                f"{RSA_MIN_BITS} bits.",
                "Use an Ed25519 key (`ssh-keygen -t ed25519`) or `ssh-keygen -t rsa -b 4096`.",
            )


# ==================================================================================================
# Tags
# ==================================================================================================

TAGS_PER_PRIVATE_DNS_ZONE_MAX = 15
TAG_NAME_MAX = 512
TAG_NAME_MAX_STORAGE_ACCOUNT = 128
TAG_VALUE_MAX = 256
TAG_NAME_FORBIDDEN = re.compile(r"[<>%&\\?/\x00-\x1f\x7f]")
AZCLUSTER_TAG_PREFIX = "azcluster-"
AZCLUSTER_TAGS_EVERYWHERE = ("azcluster-cluster", "azcluster-role")
"""Tags components/tags.py `cluster_tags` adds to every resource (scale sets also get pool and island)."""


@rule("AZC049", "error", "too-many-tags", "More tags than the cluster's private DNS zones hold")
def too_many_tags(spec: ClusterSpec) -> Iterator[Problem]:
    """Every resource azcluster builds carries the cluster's tags plus azcluster-cluster and azcluster-role,
    including the private DNS zones (the cluster's own zone and privatelink.blob, components/network.py)
    and their virtual network links, which hold only 15 tags (other resources hold 50).

    Source: https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations
    """
    names = {name.lower() for name in spec.tags} | set(AZCLUSTER_TAGS_EVERYWHERE)
    if len(names) > TAGS_PER_PRIVATE_DNS_ZONE_MAX:
        room = TAGS_PER_PRIVATE_DNS_ZONE_MAX - len(AZCLUSTER_TAGS_EVERYWHERE)
        yield (
            _at("tags"),
            f"{len(spec.tags)} tags make {len(names)} with azcluster's own; Azure private DNS zones hold "
            f"{TAGS_PER_PRIVATE_DNS_ZONE_MAX}.",
            f"Keep at most {room} tags; several values can share one tag as a JSON string.",
        )


@rule("AZC050", "error", "tag-name-invalid", "A tag name Azure refuses")
def tag_name_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """Tag names are 1-512 characters (128 on storage accounts) without < > % & \\ ? / or control
    characters, and are case-insensitive: two names differing only in case collide.

    Source: https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations
    """
    limit = TAG_NAME_MAX_STORAGE_ACCOUNT if spec.storage.blob.enabled else TAG_NAME_MAX
    seen: dict[str, str] = {}
    for name in spec.tags:
        if not name.strip():
            problem = "is empty"
        elif TAG_NAME_FORBIDDEN.search(name):
            problem = "contains one of < > % & \\ ? / or a control character"
        elif len(name) > limit:
            where = " (the blob data account allows 128)" if limit == TAG_NAME_MAX_STORAGE_ACCOUNT else ""
            problem = f"has {len(name)} characters, more than {limit}{where}"
        elif name.lower() in seen:
            problem = f"differs from tag {seen[name.lower()]!r} only in case (Azure treats them as one)"
        else:
            problem = None
        seen.setdefault(name.lower(), name)
        if problem:
            yield (_at("tags"), f"tag name {_preview(name, 40)!r} {problem}.", "Rename the tag.")


@rule("AZC051", "error", "tag-value-too-long", "A tag value is longer than 256 characters")
def tag_value_too_long(spec: ClusterSpec) -> Iterator[Problem]:
    """Tag values are at most 256 characters. Source: as AZC049."""
    for name, value in spec.tags.items():
        if len(value) > TAG_VALUE_MAX:
            yield (
                _at("tags"),
                f"the value of tag {_preview(name, 40)!r} has {len(value)} characters; Azure allows "
                f"{TAG_VALUE_MAX}.",
                "Shorten the value, or store a reference (a URL or id) instead of the data.",
            )


@rule(
    "AZC052",
    "warning",
    "tag-overrides-azcluster-tag",
    "A tag uses a name azcluster keeps for itself",
)
def tag_overrides_azcluster_tag(spec: ClusterSpec) -> Iterator[Problem]:
    """`azcluster status/stop/start` find resources by azcluster-* tags; azcluster's own values win, so a
    user tag of that name is silently replaced (components/tags.py).
    """
    for name in spec.tags:
        if name.lower().startswith(AZCLUSTER_TAG_PREFIX):
            yield (
                _at("tags"),
                f"tag {_preview(name, 40)!r} uses the azcluster- prefix azcluster keeps for its own tags; "
                "its value would be replaced or confuse the CLI.",
                "Rename the tag (any name not starting with azcluster-).",
            )


# ==================================================================================================
# The spec's own suppress list
# ==================================================================================================


@rule("AZC053", "warning", "unknown-suppressed-id", "`suppress` names an id that is not a rule")
def unknown_suppressed_id(spec: ClusterSpec) -> Iterator[Problem]:
    """A typo in `suppress` silences nothing, and the finding it meant to silence stays; AZC000 (schema
    errors) cannot be suppressed at all.
    """
    for index, raw in enumerate(spec.suppress):
        ident = _normalise_id(raw)
        path = _at(f"suppress[{index}]")
        if ident == SCHEMA_ERROR_ID:
            yield (
                path,
                f"{raw!r} is the schema-error id, which cannot be suppressed: a spec that does not parse "
                "cannot be built.",
                "Remove it and fix the schema error instead.",
            )
        elif ident not in RULES:
            padded = re.fullmatch(r"AZC0*(\d{1,3})", ident)
            meant = f"AZC{int(padded.group(1)):03d}" if padded else ""
            suggestion = f"Did you mean {meant}? " if meant in RULES else _did_you_mean(ident, RULES)
            yield (
                path,
                f"suppress names {_preview(raw, 40)!r}, which is not a rule id.",
                f"{suggestion}Rule ids run from {min(RULES)} to {max(RULES)} (rules.RULES).",
            )


@rule(
    "AZC054",
    "error",
    "lustre-import-needs-provider-principal",
    "Lustre blob integration needs the HPC Cache Resource Provider's object id",
)
def lustre_import_needs_provider_principal(spec: ClusterSpec) -> Iterator[Problem]:
    """Managed Lustre reaches the import/archive container as Microsoft's "HPC Cache Resource Provider"
    service principal, which must hold Storage Account Contributor and Storage Blob Data Contributor on
    the account before the file system is created, or the deployment fails. Its object id differs per
    tenant and Pulumi's azure-native provider cannot look it up, so the spec must carry it.

    Source: https://learn.microsoft.com/azure/azure-managed-lustre/amlfs-prerequisites
    (blob integration prerequisites: access roles for the HPC Cache Resource Provider).
    """
    lustre = spec.storage.lustre
    if not (_lustre_enabled(spec) and lustre is not None and lustre.import_container):
        return
    principal = lustre.provider_principal_id
    if principal is None:
        yield (
            _at("storage.lustre.provider_principal_id"),
            f"import_container {lustre.import_container!r} needs the object id of the 'HPC Cache Resource "
            "Provider' service principal, which Managed Lustre uses to reach the container.",
            "Set `storage.lustre.provider_principal_id` to the output of `az ad sp show --id "
            "4392ab71-2ce2-4b0d-8770-b352745c73f5 --query id -o tsv`.",
        )
    elif not re.fullmatch(_GUID, principal):
        yield (
            _at("storage.lustre.provider_principal_id"),
            f"provider_principal_id {principal!r} is not an object id (a GUID).",
            "Use the `id` that `az ad sp show --id 4392ab71-2ce2-4b0d-8770-b352745c73f5` prints.",
        )


# ==================================================================================================
# Elastic pools (components/elastic.py)
# ==================================================================================================


def _elastic_on(spec: ClusterSpec) -> bool:
    return spec.elastic is not None and spec.elastic.enabled


@rule("AZC093", "error", "elastic-needs-login-node", "Elastic pools need the login node")
def elastic_needs_login_node(spec: ClusterSpec) -> Iterator[Problem]:
    """The suspend/resume programs and the idle watcher run on the login node with its managed identity;
    without a login node nothing would ever power nodes off or on again (components/elastic.py).
    """
    if _elastic_on(spec) and not spec.login.enabled:
        yield (
            _at("login.enabled"),
            "elastic is on but the login node is disabled: the power programs run there.",
            "Set `login.enabled: true`, or remove the `elastic:` section.",
        )


@rule(
    "AZC094",
    "warning",
    "elastic-idle-shorter-than-boot",
    "Nodes would be powered off sooner than they take to start",
)
def elastic_idle_shorter_than_boot(spec: ClusterSpec) -> Iterator[Problem]:
    """A node that is powered off after a shorter idle time than it takes to boot spends more time
    starting than working: a pause between two jobs costs a full start (an ND VM plus node preparation
    and health checks, about 15 minutes; components/elastic.py BOOT_MINUTES_IB, Azure/cyclecloud-slurm
    gives nodes 30 minutes).
    """
    from .elastic import boot_minutes

    if not _elastic_on(spec) or spec.elastic is None:
        return
    idle = spec.elastic.idle_minutes
    boots = {boot_minutes(catalog.find_size(pool.size)) for pool in spec.pools}
    boot = max(boots, default=0)
    if idle < boot:
        yield (
            _at("elastic.idle_minutes"),
            f"idle_minutes is {idle}, shorter than the ~{boot} minutes a node takes to start again.",
            f"Use at least {boot} (60 is a common choice), so a short pause between jobs does not cost a "
            "full start.",
        )


@rule(
    "AZC095",
    "error",
    "elastic-resume-timeout-shorter-than-boot",
    "Started nodes would be marked down before they can boot",
)
def elastic_resume_timeout_shorter_than_boot(spec: ClusterSpec) -> Iterator[Problem]:
    """Slurm sets a resumed node DOWN and requeues its job when the node has not registered within
    ResumeTimeout (slurm.conf(5)); shorter than a boot, every resume fails and jobs never start.
    Boot estimate: components/elastic.py BOOT_MINUTES_IB.
    """
    from .elastic import boot_minutes

    if not _elastic_on(spec) or spec.elastic is None:
        return
    timeout = spec.elastic.resume_timeout_minutes
    boot = max((boot_minutes(catalog.find_size(pool.size)) for pool in spec.pools), default=0)
    if timeout < boot:
        yield (
            _at("elastic.resume_timeout_minutes"),
            f"resume_timeout_minutes is {timeout}, shorter than the ~{boot} minutes a node takes to boot: "
            "every resumed node would be marked down before it is up.",
            f"Use at least {boot}; 30 leaves room for a slow start (CycleCloud's default).",
        )


@rule("AZC096", "warning", "elastic-spot-pool", "An elastic Spot pool may not get its nodes back")
def elastic_spot_pool(spec: ClusterSpec) -> Iterator[Problem]:
    """Starting a deallocated Spot VM needs spare capacity at that moment and fails with an allocation
    error when there is none; azcluster's Spot pools also use eviction policy Delete, so an evicted node
    is gone rather than deallocated (learn.microsoft.com/azure/virtual-machine-scale-sets/use-spot).
    Powering Spot nodes off trades a low price for a real chance of not getting them back.
    """
    if not _elastic_on(spec) or spec.elastic is None:
        return
    from .elastic import pool_islands

    for index, pool in enumerate(spec.pools):
        if not pool.spot or not pool.nodes:
            continue
        islands = len(pool_islands(pool, catalog.find_size(pool.size)))
        if spec.elastic.keep_warm_islands >= islands:
            continue
        yield (
            _pool_at(index, "spot"),
            f"pool {pool.name!r} uses Spot VMs and is elastic: a powered-off Spot node starts again only "
            "when Azure has spare capacity, and an evicted one is deleted.",
            "Keep Spot pools warm (`elastic.keep_warm_islands`), use regular VMs, or suppress this if "
            "losing capacity while idle is acceptable.",
        )


@rule(
    "AZC097",
    "warning",
    "elastic-keep-warm-exceeds-islands",
    "More islands kept warm than a pool has: nothing there is ever powered off",
)
def elastic_keep_warm_exceeds_islands(spec: ClusterSpec) -> Iterator[Problem]:
    """`keep_warm_islands` counts islands per pool; when it is as large as a pool's island count, the pool
    is never powered off and elastic saves nothing on it (components/elastic.py plan_islands). Larger than
    every pool usually means nodes were meant instead of islands.
    """
    if not _elastic_on(spec) or spec.elastic is None:
        return
    warm = spec.elastic.keep_warm_islands
    if warm == 0:
        return
    from .elastic import pool_islands

    for pool in spec.pools:
        islands = len(pool_islands(pool, catalog.find_size(pool.size)))
        if pool.nodes and warm >= islands:
            more = "more than" if warm > islands else "all"
            yield (
                _at("elastic.keep_warm_islands"),
                f"keep_warm_islands is {warm}, {more} of pool {pool.name!r}'s {_plural(islands, 'island')} "
                f"({pool.nodes} nodes): that pool is never powered off.",
                f"Use a number below {islands} (islands, not nodes), or leave the pool out of elastic by "
                "removing the `elastic:` section.",
            )


# ==================================================================================================
# Slurm (scheduler: slurm)
# ==================================================================================================


def _slurm(spec: ClusterSpec) -> bool:
    return spec.scheduler == "slurm"


@rule("AZC070", "error", "slurm-needs-controller", "Slurm needs the login node, where slurmctld runs")
def slurm_needs_controller(spec: ClusterSpec) -> Iterator[Problem]:
    """slurmctld runs on the login node, and every node fetches its configuration from it (configless,
    https://slurm.schedmd.com/configless_slurm.html). Without a login node the nodes would boot and wait
    for a controller that never comes.
    """
    if _slurm(spec) and not spec.login.enabled:
        yield (
            _at("login.enabled"),
            "scheduler is slurm but the login node, which runs slurmctld, is disabled.",
            "Enable the login node (`login.enabled: true`) or set `scheduler: none` for a cluster without "
            "a scheduler.",
        )


@rule("AZC071", "error", "slurm-default-partition-unknown", "The default partition names no pool")
def slurm_default_partition_unknown(spec: ClusterSpec) -> Iterator[Problem]:
    """Every pool is a partition of the same name; slurmctld refuses a Default partition that does not
    exist, so `slurm.default_partition` must name a pool. Source: slurm.conf(5), PartitionName / Default.
    """
    wanted = spec.slurm.default_partition
    names = [pool.name for pool in spec.pools]
    if _slurm(spec) and wanted is not None and wanted not in names:
        yield (
            _at("slurm.default_partition"),
            f"default_partition {wanted!r} is not a pool; the partitions are: {', '.join(names) or 'none'}.",
            f"{_did_you_mean(wanted, names)}Name one of the pools, or leave it out to use the first pool.",
        )


@rule("AZC072", "warning", "slurm-without-pools", "A Slurm cluster with no pool has no partition")
def slurm_without_pools(spec: ClusterSpec) -> Iterator[Problem]:
    """Partitions follow pools: with no pool, slurmctld starts with no partition and every `sbatch` is
    refused ("invalid partition specified").
    """
    if _slurm(spec) and not spec.pools:
        yield (
            _at("pools"),
            "scheduler is slurm but there are no pools, so Slurm has no partition to run jobs in.",
            "Add a pool, or set `scheduler: none`.",
        )


@rule("AZC073", "error", "slurm-reserved-cores-too-many", "Reserved cores leave a pool no cores for jobs")
def slurm_reserved_cores_too_many(spec: ClusterSpec) -> Iterator[Problem]:
    """`slurm.reserved_cores` becomes CoreSpecCount on every node record; slurmctld rejects a node whose
    specialised cores are all its cores. Source: slurm.conf(5), CoreSpecCount.
    """
    reserved = spec.slurm.reserved_cores
    if not (_slurm(spec) and reserved):
        return
    for pool in spec.pools:
        size = catalog.find_size(pool.size)
        if size is not None and reserved >= size.vcpus:
            yield (
                _at("slurm.reserved_cores"),
                f"reserved_cores {reserved} leaves pool {pool.name!r} ({size.name}, {size.vcpus} vCPUs) "
                "no cores for jobs.",
                "Reserve fewer cores (2 is plenty for system daemons).",
            )


@rule("AZC074", "info", "slurm-containers-nvidia-only", "Pyxis and Enroot are not installed on AMD nodes")
def slurm_containers_nvidia_only(spec: ClusterSpec) -> Iterator[Problem]:
    """Pyxis (NVIDIA's Slurm plugin for `srun --container-image`) runs containers through Enroot, whose
    GPU support is NVIDIA's container toolkit; on AMD (ROCm) nodes azcluster leaves them out, so
    `--container-image` jobs there fail. Source: https://github.com/NVIDIA/pyxis,
    https://github.com/NVIDIA/enroot (GPU support via libnvidia-container).
    """
    if not (_slurm(spec) and spec.slurm.containers):
        return
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is not None and size.gpu_vendor == "amd":
            yield (
                _pool_at(index, "size"),
                f"pool {pool.name!r} ({size.name}) has AMD GPUs: Pyxis and Enroot are not installed there, "
                "so `srun --container-image` does not work in that partition.",
                "Run containers on AMD nodes with Apptainer or Docker inside the job, or suppress this "
                "finding.",
            )


# ==================================================================================================
# Shared home (Azure Files premium NFS)
# ==================================================================================================


@rule(
    "AZC085",
    "error",
    "home-zrs-needs-zones",
    "A zone-redundant shared home in a region without availability zones",
)
def home_zrs_needs_zones(spec: ClusterSpec) -> Iterator[Problem]:
    """Premium_ZRS keeps copies in three availability zones, so Azure offers it only in regions that have
    zones; elsewhere the storage account is refused at creation.

    Source: https://learn.microsoft.com/azure/storage/common/storage-redundancy (zone-redundant storage)
    and https://learn.microsoft.com/azure/storage/files/files-redundancy (premium shares: LRS or ZRS).
    """
    home = spec.storage.home
    region = catalog.regions().get(spec.location)
    if home.enabled and home.redundancy == "ZRS" and region is not None and not region.zones:
        yield (
            _at("storage.home.redundancy"),
            f"redundancy 'ZRS' needs availability zones, and region {spec.location!r} has none.",
            "Use `redundancy: LRS`, or a region with zones (e.g. eastus, westus3, swedencentral).",
        )


# Paths the node image or azcluster's bootstrap own: an NFS mount over them hides what the node needs.
_SYSTEM_PATHS = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/opt", "/proc", "/root", "/run", "/sbin",
                 "/sys", "/tmp", "/usr", "/var", "/mnt/resource_nvme", "/lustre", "/mnt/blob")  # fmt: skip
_SYSTEM_EXACT = ("/", "/mnt")  # their subdirectories are fine (/mnt/shared)


@rule(
    "AZC086",
    "error",
    "home-mount-over-system-path",
    "The shared home would be mounted over a system or azcluster directory",
)
def home_mount_over_system_path(spec: ClusterSpec) -> Iterator[Problem]:
    """The shared home is mounted over whatever the mount point holds on every node: over /usr, /etc or
    /var the node stops working; over /opt it hides the HPC image's tools (nccl-tests, the topology
    files NCCL reads); over /mnt/resource_nvme, /lustre or /mnt/blob it fights azcluster's own mounts.

    Source: the Filesystem Hierarchy Standard (https://refspecs.linuxfoundation.org/fhs.shtml) and the
    mount points components/bootstrap uses.
    """
    home = spec.storage.home
    mount = "/" + home.mount.strip("/")
    if not home.enabled:
        return
    taken = mount if mount in _SYSTEM_EXACT else None
    taken = taken or next((p for p in _SYSTEM_PATHS if mount == p or mount.startswith(p + "/")), None)
    if taken is not None:
        yield (
            _at("storage.home.mount"),
            f"mount {home.mount!r} is {'' if taken == mount else 'under '}{taken!r}: the share would hide "
            "what the node keeps there.",
            "Use /home (the default) or a directory of its own such as /shared/home.",
        )


@rule("AZC075", "error", "slurm-no-packages-for-image", "No Slurm packages for the pool's image and CPU")
def slurm_no_packages_for_image(spec: ClusterSpec) -> Iterator[Problem]:
    """Nodes install Slurm from Microsoft's packages, which exist per Ubuntu release and CPU architecture:
    Arm64 (GB200) builds only for Ubuntu 24.04 ("Slurm is not supported on arm64 architecture for Ubuntu
    versions < 24.04", Azure/cyclecloud-slurm azure-slurm-install/ubuntu.sh; components/catalog/slurm.yaml).
    A node without a package never runs slurmd and never joins.
    """
    if not _slurm(spec):
        return
    for index, pool in enumerate(spec.pools):
        size = catalog.find_size(pool.size)
        if size is None:
            continue
        image = pool.image or size.default_image
        source = catalog.slurm_image(image)
        arch = "arm64" if size.architecture == "Arm64" else "amd64"
        if source is not None and arch not in source.architectures:
            yield (
                _pool_at(index, "image"),
                f"pool {pool.name!r} ({size.name}, {arch}) uses {image}, Ubuntu {source.ubuntu}: Microsoft "
                f"publishes no {arch} Slurm packages for it, so its nodes could not join Slurm.",
                "Use microsoft-dsvm:ubuntu-hpc:2404:latest (Ubuntu 24.04 has Arm64 packages), or set "
                "`scheduler: none`.",
            )

"""Data about Azure: GPU sizes, Managed Lustre SKUs, regions, prices. Dated, with sources.

The facts live in the YAML files beside this module so that updating a price or adding a size is a data
change, reviewed as such. This module only loads and types them.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Row):
    usd_per_hour: float
    region: str
    date: str
    confidence: Literal["high", "medium", "low"]
    source: str
    estimate: bool = False
    """True where no public price exists and the figure is worked out (its source says how)."""


class InfiniBand(_Row):
    ports: int
    gbps_per_port: int
    generation: str
    health_floor_gbps: int | None = None
    """The lowest port rate the node health check accepts, where sources disagree on the rate (GB300:
    Microsoft says 800 Gb/s, field reports 400); None: gbps_per_port."""

    @property
    def health_gbps(self) -> int:
        return self.health_floor_gbps or self.gbps_per_port


class CpuTopology(_Row):
    """How a size's vCPUs appear to the guest (what slurmd detects): slurm.conf declares exactly this, so
    slurmd logs no "Node configuration differs from hardware" (components/bootstrap/slurm.py)."""

    sockets: int
    cores_per_socket: int
    threads_per_core: int
    confidence: Literal["high", "medium", "low"]
    source: str


class GpuSize(_Row):
    """One GPU VM size and what azcluster needs to know about it."""

    name: str
    series: str
    profile: str
    vcpus: int
    memory_gib: int
    gpus: int
    gpu_model: str
    gpu_vendor: Literal["nvidia", "amd"]
    gpu_memory_gb: int
    infiniband: InfiniBand | None
    nvme_disks: int
    quota_family: str
    quota_family_confidence: Literal["high", "low"] = "high"
    architecture: Architecture
    disk_controller: Literal["SCSI", "NVMe"] = "SCSI"
    default_image: str
    required_image_hint: str | None = None
    rack_vms: int | None = None
    cpu: CpuTopology | None = None
    """None: not known; slurm.conf then declares CPUs only."""
    price: Price
    source: str

    @model_validator(mode="after")
    def _cpu_matches_vcpus(self) -> GpuSize:
        cpu = self.cpu
        if cpu is not None and cpu.sockets * cpu.cores_per_socket * cpu.threads_per_core != self.vcpus:
            raise ValueError(f"{self.name}: cpu sockets x cores x threads must equal vcpus ({self.vcpus})")
        return self

    @property
    def has_infiniband(self) -> bool:
        return self.infiniband is not None


class GeneralSize(_Row):
    """A general-purpose size (login node)."""

    name: str
    architecture: Architecture
    vcpus: int
    memory_gib: int
    quota_family: str
    price: Price


class LustreSku(_Row):
    name: str
    mbps_per_tib: int
    min_tib: int
    max_tib: int
    step_tib: int


class StoragePrice(_Row):
    usd_per_gib_month: float
    region: str
    date: str
    confidence: Literal["high", "medium", "low"]
    source: str


class HomeService(_Row):
    """An Azure-managed NFS service for the shared home, with what it costs and how fast it is."""

    name: str
    title: str
    min_gib: int
    max_gib: int
    base_mibps: float
    mibps_per_gib: float
    price: StoragePrice
    source: str

    def throughput_mibps(self, gib: int) -> float:
        """Provisioned throughput of a share of `gib` GiB (the service's published formula)."""
        return self.base_mibps + self.mibps_per_gib * gib

    def usd_per_hour(self, gib: int) -> float:
        """Price of `gib` provisioned GiB per hour (730 hours a month, as Azure's calculator uses)."""
        return self.price.usd_per_gib_month * gib / 730


class UsageMeter(_Row):
    """A charge billed by use (GB processed, GB stored, queries): a rate, never a guess at the amount."""

    meter: str
    usd: float | None
    """USD per `per`; None where the catalogue names the meter without a rate (see the entry's source)."""
    per: str


class ResourcePrice(_Row):
    """The price of one Azure resource type (prices.yaml): a rate per unit by SKU, and usage meters."""

    kind: str
    """The Pulumi type token, e.g. `azure-native:network:BastionHost`."""
    variant: str | None = None
    """For a type priced by what it is (a StorageAccount's `kind`: StorageV2 or FileStorage)."""
    title: str
    unit: Literal["hour", "month", "GiB-month", "TiB-month", "usage", "included", "vm-hour"]
    quantity_input: str | None = None
    """The input (Pulumi's camelCase, dotted for a nested one) that holds the quantity priced per unit,
    e.g. storageCapacityTiB, sku.capacity."""
    rates: dict[str, float] = {}
    """USD per `unit` by SKU; `*` when the SKU does not change the price."""
    tiers: dict[str, int] = {}
    """For a size-tiered price (a managed disk): the largest GiB each SKU (tier) holds."""
    part_of: tuple[str, ...] = ()
    """Types this one comes with, never declared on its own in a plan (a VM's OS disk): empty for most."""
    usage: tuple[UsageMeter, ...] = ()
    region: str
    date: str
    confidence: Literal["high", "medium", "low"]
    estimate: bool
    source: str
    verify: str | None = None
    note: str = ""

    def tier_for(self, gib: float) -> str | None:
        """The smallest tier that holds `gib` (Azure bills a disk at the tier its size rounds up to)."""
        fitting = [(size, name) for name, size in self.tiers.items() if size >= gib]
        return min(fitting)[1] if fitting else None

    def rate(self, sku: str | None) -> float | None:
        """USD per unit for `sku` (or the SKU-independent `*` rate); None when the catalogue has none."""
        if sku is not None and sku in self.rates:
            return self.rates[sku]
        return self.rates.get("*")


class AllReduceExpectation(_Row):
    """What an all-reduce across one island of a size should reach (allreduce.yaml says where from)."""

    size: str
    library: Literal["nccl", "rccl"]
    message: str
    single_node_gbps: float
    ib_port_gbps: float
    confidence: Literal["high", "medium", "low"]
    source: str
    nvlink_domain_gbps: float | None = None
    """What an all-reduce over one whole NVLink domain (an NVL72 rack) should reach; GB sizes only."""
    nvlink_domain_source: str | None = None

    def expected_gbps(self, nodes: int, ports: int) -> float:
        """Expected peak bus bandwidth (GB/s) for `nodes` nodes with `ports` InfiniBand ports each."""
        if nodes <= 1 or ports <= 0:
            return self.single_node_gbps
        return min(self.single_node_gbps, ports * self.ib_port_gbps / 8)


class SlurmRelease(_Row):
    """The Slurm azcluster installs (components/catalog/slurm.yaml): one version everywhere."""

    version: str
    repo_group: str
    pmix: str
    enroot_version: str
    pyxis_version: str
    date: str
    source: str


class SlurmImage(_Row):
    """Where an image gets Slurm's packages."""

    image: str
    ubuntu: str
    repo: str
    architectures: list[str]


class Region(_Row):
    name: str
    zones: bool


Architecture = Literal["x64", "Arm64"]


class ImageInfo(_Row):
    """A Marketplace image (publisher:offer:sku, any version): its OS and CPU architecture."""

    urn: str
    os: str
    architecture: Architecture
    source: str


class PurchasePlanPublisher(_Row):
    publisher: str
    offer: str | None = None
    source: str


class LustreClient(_Row):
    """The Azure Managed Lustre client package for one operating system."""

    os: str
    version: str
    package: str
    architectures: tuple[Architecture, ...]
    date: str
    source: str


class NodeSoftware(_Row):
    name: str
    architectures: tuple[Architecture, ...]
    source: str


@cache
def _load(filename: str) -> dict[str, Any]:
    from ruamel.yaml import YAML

    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    return YAML(typ="safe", pure=True).load(text)


@cache
def gpu_sizes() -> dict[str, GpuSize]:
    """GPU sizes by exact Azure name."""
    return {row["name"]: GpuSize(**row) for row in _load("sizes.yaml")["gpu_sizes"]}


@cache
def general_sizes() -> dict[str, GeneralSize]:
    return {row["name"]: GeneralSize(**row) for row in _load("sizes.yaml")["general_sizes"]}


@cache
def lustre_skus() -> dict[str, LustreSku]:
    return {row["name"]: LustreSku(**row) for row in _load("storage.yaml")["lustre_skus"]}


@cache
def home_services() -> dict[str, HomeService]:
    """NFS services considered for the shared home, by name."""
    return {row["name"]: HomeService(**row) for row in _load("storage.yaml")["home_services"]}


def home_default() -> HomeService:
    """The service azcluster builds the shared home on (chosen in storage.yaml, with the reason)."""
    return home_services()[_load("storage.yaml")["home_default"]]


@cache
def resource_prices() -> dict[tuple[str, str | None], ResourcePrice]:
    """Prices of the non-VM resources by (Pulumi type token, variant) (prices.yaml)."""
    rows = (ResourcePrice(**row) for row in _load("prices.yaml")["resources"])
    return {(row.kind, row.variant): row for row in rows}


def free_resource_types() -> dict[str, str]:
    """Resource types that cost nothing of their own, with the reason (prices.yaml `free`)."""
    return dict(_load("prices.yaml")["free"])


def compute_resource_types() -> dict[str, str]:
    """Resource types priced as VMs by size (sizes.yaml), with what their count comes from."""
    return dict(_load("prices.yaml")["compute"])


def hours_per_month() -> int:
    """Azure's pricing-calculator month (730 h): what per-month prices are divided by."""
    return int(_load("prices.yaml")["hours_per_month"])


@cache
def allreduce_expectations() -> dict[str, AllReduceExpectation]:
    """Expected all-reduce bus bandwidth per GPU size, by exact Azure size name."""
    return {row["size"]: AllReduceExpectation(**row) for row in _load("allreduce.yaml")["expected"]}


def allreduce_far_below() -> float:
    """The fraction of its expected bus bandwidth under which an island fails `azcluster test`."""
    return float(_load("allreduce.yaml")["far_below"])


@cache
def regions() -> dict[str, Region]:
    return {name: Region(name=name, **row) for name, row in _load("regions.yaml")["regions"].items()}


@cache
def images() -> dict[str, ImageInfo]:
    """Known Marketplace images by lower-case `publisher:offer:sku`."""
    return {row["urn"].lower(): ImageInfo(**row) for row in _load("images.yaml")["images"]}


@cache
def purchase_plan_publishers() -> tuple[PurchasePlanPublisher, ...]:
    return tuple(PurchasePlanPublisher(**row) for row in _load("images.yaml")["purchase_plans"])


@cache
def lustre_clients() -> dict[str, LustreClient]:
    """The Managed Lustre client per operating system (`ImageInfo.os`)."""
    return {row["os"]: LustreClient(**row) for row in _load("images.yaml")["lustre_clients"]}


@cache
def node_software() -> dict[str, NodeSoftware]:
    return {row["name"]: NodeSoftware(**row) for row in _load("images.yaml")["node_software"]}


def _urn_parts(image: str) -> list[str] | None:
    parts = image.strip().split(":")
    return parts if len(parts) == 4 and all(parts) and "/" not in image else None


def find_image(image: str) -> ImageInfo | None:
    """The catalogue's row for a Marketplace URN (any version); None for ids and unknown images."""
    parts = _urn_parts(image)
    return images().get(":".join(parts[:3]).lower()) if parts else None


def image_architecture(image: str) -> Architecture | None:
    """The image's CPU architecture: from the catalogue, else from an Arm64 marker in the URN's offer or
    sku ("arm64", "aarch64"), as Canonical and the HPC images name them; None when it cannot be told."""
    info = find_image(image)
    if info is not None:
        return info.architecture
    parts = _urn_parts(image)
    if parts and any(mark in f"{parts[1]}:{parts[2]}".lower() for mark in ("arm64", "aarch64")):
        return "Arm64"
    return None


def lustre_client_for(image: str, architecture: str) -> LustreClient | None:
    """The Lustre client package for the image's OS on that architecture; None when none is known."""
    info = find_image(image)
    client = lustre_clients().get(info.os) if info is not None else None
    return client if client is not None and architecture in client.architectures else None


def purchase_plan(image: str) -> dict[str, str] | None:
    """`plan` {publisher, product, name} for a Marketplace URN whose publisher sells under a plan (the
    offer is the product, the sku the plan name); None for other images and for image ids."""
    parts = _urn_parts(image)
    if not parts:
        return None
    publisher, offer, sku = parts[0], parts[1], parts[2]
    for row in purchase_plan_publishers():
        if row.publisher.lower() == publisher.lower() and (
            row.offer is None or row.offer.lower() == offer.lower()
        ):
            return {"publisher": publisher, "product": offer, "name": sku}
    return None


def find_size(name: str) -> GpuSize | None:
    """A GPU size by name, forgiving case (Azure itself is case-insensitive about size names)."""
    sizes = gpu_sizes()
    if name in sizes:
        return sizes[name]
    folded = {key.lower(): size for key, size in sizes.items()}
    return folded.get(name.lower())


def closest(name: str, choices: list[str] | Any, count: int = 3) -> list[str]:
    """Names in `choices` that look like `name`, best first (for 'did you mean' hints)."""
    lowered = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(name.lower(), list(lowered), n=count, cutoff=0.5)
    return [lowered[match] for match in matches]


def normalise_family(name: str) -> str:
    """Quota family names differ in case and spaces between Azure's APIs; compare this form."""
    return name.replace(" ", "").replace("_", "").lower()


@cache
def slurm_release() -> SlurmRelease:
    """The pinned Slurm release (version, repository group, PMIx, Enroot and Pyxis versions)."""
    return SlurmRelease(**_load("slurm.yaml")["release"])


@cache
def slurm_images() -> dict[str, SlurmImage]:
    """Per image (publisher:offer:sku, lower-case), where its Slurm packages come from."""
    return {row["image"].lower(): SlurmImage(**row) for row in _load("slurm.yaml")["images"]}


def slurm_image(image: str) -> SlurmImage | None:
    """The Slurm package source of a marketplace image URN (any version), or None when unknown."""
    parts = image.lower().split(":")
    return slurm_images().get(":".join(parts[:3])) if len(parts) >= 3 else None


@cache
def alert_rule_groups() -> list[dict[str, Any]]:
    """The cluster's Prometheus alert rule groups (alerts.yaml, Prometheus's rule-file format)."""
    return list(_load("alerts.yaml")["groups"])


DASHBOARDS = ("overview", "gpus", "infiniband", "job", "health")
"""The cluster's Grafana dashboards, catalog/dashboards/<name>.json, in the order Grafana lists them."""


@cache
def _dashboard_texts() -> dict[str, str]:
    folder = resources.files(__package__).joinpath("dashboards")
    return {name: folder.joinpath(f"{name}.json").read_text(encoding="utf-8") for name in DASHBOARDS}


def dashboards() -> dict[str, dict[str, Any]]:
    """The dashboards (Grafana's dashboard JSON model), by name: fresh copies, the caller may change them."""
    import json

    return {name: json.loads(text) for name, text in _dashboard_texts().items()}

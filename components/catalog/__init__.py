"""Data about Azure: GPU sizes, Managed Lustre SKUs, regions, prices. Dated, with sources.

The facts live in the YAML files beside this module so that updating a price or adding a size is a data
change, reviewed as such. This module only loads and types them.
"""

from __future__ import annotations

import difflib
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Row):
    usd_per_hour: float
    region: str
    date: str
    confidence: Literal["high", "medium", "low"]
    source: str


class InfiniBand(_Row):
    ports: int
    gbps_per_port: int
    generation: str


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
    architecture: Literal["x64", "Arm64"] = "x64"
    disk_controller: Literal["SCSI", "NVMe"] = "SCSI"
    default_image: str
    required_image_hint: str | None = None
    rack_vms: int | None = None
    price: Price
    source: str

    @property
    def has_infiniband(self) -> bool:
        return self.infiniband is not None


class GeneralSize(_Row):
    """A general-purpose size (login node)."""

    name: str
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


class Region(_Row):
    name: str
    zones: bool


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
def regions() -> dict[str, Region]:
    return {name: Region(name=name, **row) for name, row in _load("regions.yaml")["regions"].items()}


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

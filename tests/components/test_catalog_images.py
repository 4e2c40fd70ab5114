"""The catalogue's CPU architectures, images, purchase plans and Lustre clients (catalog/images.yaml)."""

from __future__ import annotations

from importlib import resources

import pytest
from ruamel.yaml import YAML

from azcluster.components import catalog


def _raw(filename: str):
    text = resources.files("azcluster.components.catalog").joinpath(filename).read_text(encoding="utf-8")
    return YAML(typ="safe", pure=True).load(text)


def test_every_size_row_states_its_cpu_architecture():
    raw = _raw("sizes.yaml")
    for row in [*raw["gpu_sizes"], *raw["general_sizes"]]:
        assert row.get("architecture") in ("x64", "Arm64"), row["name"]
    assert catalog.gpu_sizes()["Standard_ND128isr_NDR_GB200_v6"].architecture == "Arm64"
    assert catalog.gpu_sizes()["Standard_ND128isr_GB300_v6"].architecture == "Arm64"
    assert catalog.gpu_sizes()["Standard_ND96isr_H100_v5"].architecture == "x64"


def test_each_size_s_default_image_has_the_size_s_architecture():
    for size in catalog.gpu_sizes().values():
        assert catalog.image_architecture(size.default_image) == size.architecture, size.name


def test_every_known_image_names_an_os_with_a_lustre_client_row():
    for image in catalog.images().values():
        assert image.os in catalog.lustre_clients(), image.urn


@pytest.mark.parametrize(
    ("image", "architecture"),
    [
        ("microsoft-dsvm:ubuntu-hpc:2404-gb:latest", "Arm64"),
        ("MICROSOFT-DSVM:Ubuntu-HPC:2404:24.04.2026010101", "x64"),
        ("Canonical:ubuntu-24_04-lts:server-arm64:latest", "Arm64"),
        ("someone:their-offer-aarch64:v1:latest", "Arm64"),
        ("someone:their-offer:v1:latest", None),
        ("/subscriptions/x/resourceGroups/g/providers/Microsoft.Compute/images/i", None),
    ],
)
def test_image_architecture(image, architecture):
    assert catalog.image_architecture(image) == architecture


@pytest.mark.parametrize(
    ("image", "plan"),
    [
        ("almalinux:almalinux-hpc:8_10-hpc-gen2:latest", ("almalinux", "almalinux-hpc", "8_10-hpc-gen2")),
        ("resf:rockylinux-x86_64:9-base:latest", ("resf", "rockylinux-x86_64", "9-base")),
        (
            "azurecyclecloud:azure-cyclecloud:cyclecloud8-gen2:latest",
            ("azurecyclecloud", "azure-cyclecloud", "cyclecloud8-gen2"),
        ),
        ("almalinux:almalinux-x86_64:9-gen2:latest", None),  # the plain AlmaLinux offer has no plan
        ("microsoft-dsvm:ubuntu-hpc:2204:latest", None),
    ],
)
def test_purchase_plan_is_publisher_offer_sku_for_plan_publishers(image, plan):
    expected = dict(zip(("publisher", "product", "name"), plan, strict=True)) if plan else None
    assert catalog.purchase_plan(image) == expected


def test_the_lustre_client_exists_on_arm64_only_for_ubuntu_24_04():
    assert catalog.lustre_client_for("microsoft-dsvm:ubuntu-hpc:2404-gb:latest", "Arm64") is not None
    assert (
        catalog.lustre_client_for("Canonical:0001-com-ubuntu-server-jammy:22_04-lts-arm64:x", "Arm64") is None
    )
    assert catalog.lustre_client_for("microsoft-dsvm:ubuntu-hpc:2204:latest", "x64").version.startswith(
        "2.15.8"
    )

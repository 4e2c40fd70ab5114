"""Image rules (AZC017-AZC018, AZC055-AZC059).

Each case edits the baseline cluster (cases.py) and must fire, or stay quiet.
"""

from __future__ import annotations

from typing import Any

import pytest

from .cases import (
    ALMA_HPC,
    ALMA_PLAN,
    GALLERY_IMAGE,
    GB200,
    GB300,
    HPC_2404,
    JAMMY_ARM64,
    MI300X,
    NC,
    assert_fires,
    assert_quiet,
    case_id,
)

FIRES = [
    ("AZC017", {"pools.0.image": "ubuntu-hpc-2204"}, "ubuntu-hpc-2204"),
    ("AZC017", {"login.image": "Canonical:ubuntu:22_04"}, "Canonical:ubuntu:22_04"),
    ("AZC018", {"pools.0.size": MI300X, "pools.0.image": "microsoft-dsvm:ubuntu-hpc:2204:latest"}, "ROCm"),
    ("AZC018", {"pools.0.image": "microsoft-dsvm:ubuntu-hpc:2204-rocm:latest"}, "2204-rocm"),
    (
        "AZC018",
        {
            "pools.0.size": GB200,
            "pools.0.nodes": 18,
            "pools.0.image": "microsoft-dsvm:ubuntu-hpc:2204:latest",
        },
        "24.04",
    ),
    ("AZC055", {"pools.0.size": GB200, "pools.0.nodes": 18, "pools.0.image": HPC_2404}, "2404-gb"),
    ("AZC055", {"login.image": "Canonical:ubuntu-24_04-lts:server-arm64:latest"}, "is Arm64 but"),
    ("AZC055", {"pools.0.image": JAMMY_ARM64}, "Use an x64 image"),
    ("AZC055", {"pools.0.size": GB300, "pools.0.nodes": 18, "pools.0.image": HPC_2404}, "2404-gb"),
    (
        "AZC056",
        {"pools.0.size": GB200, "pools.0.nodes": 18, "pools.0.image": JAMMY_ARM64},
        "ubuntu-22.04, Arm64",
    ),
    ("AZC057", {"scheduler": "none", "pools.0.size": GB200, "pools.0.nodes": 18}, "nvidia-imex"),
    ("AZC057", {"scheduler": "none", "pools.0.size": GB300, "pools.0.nodes": 18}, "scheduler: slurm"),
    (
        "AZC018",
        {
            "pools.0.size": GB300,
            "pools.0.nodes": 18,
            "pools.0.image": "microsoft-dsvm:ubuntu-hpc:2204:latest",
        },
        "24.04",
    ),
    (
        "AZC056",
        {"pools.0.size": GB300, "pools.0.nodes": 18, "pools.0.image": JAMMY_ARM64},
        "ubuntu-22.04, Arm64",
    ),
    (
        "AZC058",
        {"pools.0.image": ALMA_HPC},
        "az vm image terms accept --urn almalinux:almalinux-hpc:8_10-hpc-gen2",
    ),
    ("AZC058", {"login.image": "resf:rockylinux-x86_64:9-base:latest"}, "product: rockylinux-x86_64"),
    (
        "AZC059",
        {"pools.0.image": ALMA_HPC, "pools.0.image_plan": {**ALMA_PLAN, "name": "8_7-hpc-gen2"}},
        "8_7",
    ),
]

QUIET = [
    ("AZC017", {"pools.0.image": "microsoft-dsvm:ubuntu-hpc:2204:latest"}),
    ("AZC017", {"pools.0.image": GALLERY_IMAGE}),
    ("AZC017", {"pools.0.image": "/CommunityGalleries/hpc-1234/Images/ubuntu/Versions/latest"}),
    ("AZC017", {"login.enabled": False, "login.image": "nonsense"}),
    ("AZC018", {"pools.0.size": MI300X, "pools.0.image": "microsoft-dsvm:ubuntu-hpc:2404-rocm:latest"}),
    (
        "AZC018",
        {
            "pools.0.size": GB200,
            "pools.0.nodes": 18,
            "pools.0.image": "microsoft-dsvm:ubuntu-hpc:2404:latest",
        },
    ),
    ("AZC018", {"pools.0.size": MI300X, "pools.0.image": GALLERY_IMAGE}),
    ("AZC018", {"pools.0.size": MI300X}),
    ("AZC055", {"pools.0.size": GB200, "pools.0.nodes": 18}),  # the catalogue's default is Arm64
    ("AZC055", {"pools.0.size": GB200, "pools.0.nodes": 18, "pools.0.image": GALLERY_IMAGE}),
    ("AZC056", {"pools.0.size": NC, "pools.0.nodes": 1}),
    # GB sizes run azcluster's own GB checks (AZC133 says which): no AzNHC finding on the default image
    ("AZC056", {"pools.0.size": GB200, "pools.0.nodes": 18}),
    ("AZC056", {"pools.0.size": GB300, "pools.0.nodes": 18}),
    ("AZC055", {"pools.0.size": GB300, "pools.0.nodes": 18}),
    ("AZC057", {"scheduler": "none", "pools.0.size": GB200, "pools.0.nodes": 1}),
    # with Slurm, IMEX runs per job from the Prolog: configured, nothing to say
    ("AZC057", {"pools.0.size": GB200, "pools.0.nodes": 18}),
    ("AZC057", {"pools.0.size": GB300, "pools.0.nodes": 36}),
    ("AZC058", {"pools.0.image": GALLERY_IMAGE}),
    ("AZC059", {"pools.0.image": ALMA_HPC, "pools.0.image_plan": {**ALMA_PLAN, "publisher": "AlmaLinux"}}),
    ("AZC059", {"pools.0.image": GALLERY_IMAGE, "pools.0.image_plan": ALMA_PLAN}),
]


@pytest.mark.parametrize(("rule_id", "edits", "expected"), FIRES, ids=case_id)
def test_rule_fires(rule_id: str, edits: dict[str, Any], expected: str) -> None:
    assert_fires(rule_id, edits, expected)


@pytest.mark.parametrize(("rule_id", "edits"), QUIET, ids=case_id)
def test_rule_stays_quiet(rule_id: str, edits: dict[str, Any]) -> None:
    assert_quiet(rule_id, edits)

"""The catalogue's Slurm release: the version Microsoft's packages ship, with its source, and one version on
the controller and on every node."""

from __future__ import annotations

import base64
import re

from azcluster.components import bootstrap
from azcluster.components.catalog import slurm_images, slurm_release
from azcluster.components.spec import ClusterSpec
from tests.components.test_bootstrap_render import _load, _node_env

VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def test_the_release_is_the_one_cyclecloud_slurm_ships_and_says_where_that_is_written() -> None:
    release = slurm_release()
    major, minor, _ = (int(part) for part in VERSION.match(release.version).groups())
    # Microsoft's cyclecloud-slurm moved to 25.11 (PMIx 4.2.9) in June 2026; never go back behind it.
    assert (major, minor) >= (25, 11)
    assert release.pmix.startswith("4.")
    assert release.repo_group in {"stable", "insiders"}
    assert "github.com/Azure/cyclecloud-slurm" in release.source
    assert release.version in release.source and release.pmix in release.source
    assert release.enroot_version in release.source and release.pyxis_version in release.source
    assert all(
        row.repo.startswith("https://packages.microsoft.com/repos/slurm-ubuntu-")
        for row in slurm_images().values()
    )


def test_the_controller_and_every_node_pin_the_same_version() -> None:
    spec = ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "pools": [
                {"name": "h100", "size": "Standard_ND96isr_H100_v5", "nodes": 4},
                {"name": "mi", "size": "Standard_ND96isr_MI300X_v5", "nodes": 2},
            ],
        }
    )
    boot = bootstrap.SlurmBoot(base64.b64encode(bytes(32)).decode(), "llm.azcluster.internal")
    login = _node_env(_load(bootstrap.render_login_cloud_config(spec, None, None, slurm=boot)))
    nodes = [
        _node_env(_load(bootstrap.render_cloud_config(spec, pool, 0, slurm=boot))) for pool in ("h100", "mi")
    ]
    versions = {env["AZC_SLURM_VERSION"] for env in (login, *nodes)}
    groups = {env["AZC_SLURM_REPO_GROUP"] for env in (login, *nodes)}
    assert versions == {slurm_release().version} and groups == {slurm_release().repo_group}

"""The login node's first boot: one `#cloud-config`.

What goes in, piece by piece (`LoginBoot.pieces`), within Azure's 64 KB of custom data:
- login: node.env (role, cluster) and azc-lib.sh;
- mounts: the same Lustre, blob and shared-home mounts as the GPU nodes (bootstrap/mounts.py), with the
  Lustre client for the login image;
- slurm (scheduler: slurm): the controller, slurm.conf and friends, the munge key, the reaper
  (bootstrap/slurm_boot.py);
- hostfiles: one MPI/NCCL hostfile per IB island under /etc/azcluster/hostfiles (components/topology.py);
- elastic (a spec with `elastic:`): the power programs and their timer (bootstrap/elastic_boot.py);
- users (a shared home): the team's users applier and its timer, never the list (bootstrap/users_boot.py).

`LoginBoot.for_cluster` gathers all of it in one pass from the spec and the deployment's values, as
components/login.py does; `cloud_config()` renders it once.

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..catalog import find_size
from ..elastic import render_config, slurm_power_save
from ..spec import ClusterSpec
from .document import HOSTFILE_DIR, Piece, assemble, encode_custom_data, file_entry
from .elastic_boot import elastic_piece
from .metrics import MetricsValues, metrics_piece
from .mounts import FROM_IMAGE, StorageValues, lustre_client_package, mounts_piece
from .slurm_boot import AccountingServer, SlurmBoot, slurm_controller_piece
from .users_boot import users_piece

LOGIN_SCRIPTS = ("azc-lib.sh",)
LOGIN_BLOB_CACHE = "/mnt/blobfuse2-cache"
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def hostfiles_piece(hostfiles: Mapping[str, str]) -> Piece:
    """/etc/azcluster/hostfiles/<island key>, one per island (see topology.hostfile, island_key)."""
    files = []
    for key, text in sorted(hostfiles.items()):
        if not _KEY.match(key):
            raise ValueError(
                f"hostfile name {key!r}: use lower-case letters, digits and '-' (see island_key)"
            )
        content = text if text.endswith("\n") or not text else text + "\n"
        files.append(file_entry(f"{HOSTFILE_DIR}/{key}", content, "0644"))
    return Piece("hostfiles", files=tuple(files))


def login_lustre_client(spec: ClusterSpec) -> str | None:
    """The Lustre client package for the login image on the login size's architecture."""
    login_size = find_size(spec.login.size)
    architecture = login_size.architecture if login_size is not None else "x64"
    return lustre_client_package(spec.login.image, architecture)


@dataclass(frozen=True)
class LoginBoot:
    """Everything the login node boots with. lustre_client_package: installed when the login image has no
    Lustre client (FROM_IMAGE: the catalogue's package for the login image). elastic_config: the power
    programs' configuration (components.elastic.render_config). slurm: the login node is the controller."""

    spec: ClusterSpec
    storage: StorageValues = StorageValues()
    hostfiles: Mapping[str, str] = field(default_factory=dict)
    lustre_client_package: str | None = FROM_IMAGE
    elastic_config: str | None = None
    slurm: SlurmBoot | None = None
    metrics: MetricsValues | None = None

    @classmethod
    def for_cluster(
        cls,
        spec: ClusterSpec,
        storage: StorageValues,
        *,
        power_subscription: str | None = None,
        power_client_id: str | None = None,
        munge_key: str | None = None,
        dns_zone: str | None = None,
        metrics: MetricsValues | None = None,
        accounting_server: AccountingServer | None = None,
    ) -> LoginBoot:
        """The login node of a deployed cluster. With the power identity (`power_subscription`,
        `power_client_id`) it runs the power programs; with `munge_key` and `dns_zone` it is the Slurm
        controller, whose slurm.conf hands idle nodes to the power programs when the spec is elastic."""
        config = None
        if power_subscription is not None and power_client_id:
            config = render_config(spec, power_subscription, power_client_id)
        slurm = None
        if munge_key is not None and dns_zone:
            slurm = SlurmBoot(
                munge_key, dns_zone, extra=slurm_power_save(spec) or None, accounting_server=accounting_server
            )
        return cls(spec, storage, elastic_config=config, slurm=slurm, metrics=metrics)

    def header(self) -> str:
        return f"# azcluster login node bootstrap: cluster {self.spec.name}"

    def pieces(self) -> list[Piece]:
        """What the login node gets, in the order the document lists it."""
        spec = self.spec
        client = self.lustre_client_package
        if client == FROM_IMAGE and self.storage.lustre_mgs_host:
            client = login_lustre_client(spec)
        pieces = [
            Piece("login", env={"AZC_ROLE": "login", "AZC_CLUSTER": spec.name}, scripts=LOGIN_SCRIPTS),
            mounts_piece(spec, self.storage, LOGIN_BLOB_CACHE, client),
        ]
        if self.slurm is not None:
            pieces.append(slurm_controller_piece(spec, self.slurm))
        pieces.append(hostfiles_piece(self.hostfiles))
        if self.elastic_config is not None:
            pieces.append(elastic_piece(self.elastic_config))
        if (users := users_piece(spec)) is not None:
            pieces.append(users)
        if self.metrics is not None and spec.monitoring.enabled:
            pieces.append(
                metrics_piece(
                    cluster=spec.name,
                    role="login",
                    gpu_vendor=None,
                    scrape_interval_s=spec.monitoring.scrape_interval_seconds,
                    values=self.metrics,
                    slurm=self.slurm is not None,
                )
            )
        return pieces

    def cloud_config(self) -> str:
        return assemble(self.header(), self.pieces())

    def custom_data(self) -> str:
        """The cloud-config gzip'ed and base64-encoded; raises ValueError past Azure's 64 KB."""
        return encode_custom_data(self.cloud_config(), "login node")


def render_login_cloud_config(
    spec: ClusterSpec,
    lustre_mgs_host: str | None,
    blob_account: str | None,
    hostfiles: Mapping[str, str] | None = None,
    *,
    blob_client_id: str | None = None,
    blob_endpoint: str | None = None,
    lustre_client_package: str | None = FROM_IMAGE,
    elastic_config: str | None = None,
    home_source: str | None = None,
    slurm: SlurmBoot | None = None,
    metrics: MetricsValues | None = None,
) -> str:
    """The `#cloud-config` document for the login node (see `LoginBoot`)."""
    storage = StorageValues(lustre_mgs_host, blob_account, blob_client_id, blob_endpoint, home_source)
    boot = LoginBoot(spec, storage, hostfiles or {}, lustre_client_package, elastic_config, slurm, metrics)
    return boot.cloud_config()


def login_custom_data(
    spec: ClusterSpec,
    lustre_mgs_host: str | None,
    blob_account: str | None,
    hostfiles: Mapping[str, str] | None = None,
    **options: Any,
) -> str:
    """customData for the login node: `render_login_cloud_config(...)`, gzip'ed and base64-encoded."""
    return encode_custom_data(
        render_login_cloud_config(spec, lustre_mgs_host, blob_account, hostfiles, **options), "login node"
    )

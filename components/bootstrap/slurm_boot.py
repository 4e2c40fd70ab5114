"""What Slurm adds to each role's first boot: the controller (login node) gets slurm.conf and friends
(rendered by bootstrap/slurm.py), the munge key, slurmctld (and slurmdbd) and the reaper that frees the
slots of deleted nodes; a GPU node gets its island's slot range, the key and the scripts that make it join
Slurm by itself at every boot (azc-slurm-node.sh) and drain while its health fails (azc-slurm-health.sh).

Pure: no pulumi, no Azure SDK. The key and the cluster's DNS zone exist only at deployment (`SlurmBoot`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..catalog import GpuSize, slurm_release
from ..spec import ClusterSpec
from ..topology import IslandSlots
from .document import Piece, file_entry
from .slurm import SLURM_ETC, SLURMCTLD_PORT, SlurmSettings, controller_address, render_configs

MUNGE_KEY_B64_PATH = "/etc/azcluster/munge.key.b64"
"""Where the cluster's munge key lands (base64, root-only); azc-slurm-lib.sh installs it for munged."""

SLURM_NODE_SCRIPTS = (
    "azc-slurm-lib.sh",
    "azc-slurm-node.sh",
    "azc-slurm-health.sh",
    "azc-slurm-taskprolog.sh",
    "azc-slurm-prolog.sh",
)
SLURM_NODE_UNITS = ("azc-slurm-node.service",)
SLURM_CONTROLLER_SCRIPTS = ("azc-slurm-lib.sh", "azc-slurm-controller.sh", "azc-slurm-reaper.sh")
SLURM_CONTROLLER_UNITS = (
    "azc-slurm-controller.service",
    "azc-slurm-reaper.service",
    "azc-slurm-reaper.timer",
)
"""Written on the controller; the reaper's service runs from its timer only (it is never started itself)."""
SLURM_ACCOUNTS_SCRIPTS = ("azc-slurm-accounts.py",)
SLURM_ACCOUNTS_UNITS = ("azc-slurm-accounts.service", "azc-slurm-accounts.timer")
"""With accounting and a shared home (where the users file is): the controller keeps Slurm's accounts in
step with the team's users file (scripts/azc-slurm-accounts.py reads it with azc-users.py's checks)."""

SLURMD_OPTIONS_PATH = "/etc/default/slurmd"
"""Where azc-slurm-node.sh writes slurmd's options (its Slurm node name and the controller), which
slurmd.service reads (Debian's and SchedMD's units: EnvironmentFile=-/etc/default/slurmd)."""
HOLD_SLURMD = (
    "sh",
    "-c",
    f"grep -qs '^SLURMD_OPTIONS=' {SLURMD_OPTIONS_PATH}"
    " || systemctl stop --no-block slurmd.service 2>/dev/null || true",
)
"""A node's bootcmd: until azc-slurm-node.sh has claimed this node's Slurm name and written its
SLURMD_OPTIONS line to SLURMD_OPTIONS_PATH (Debian's package ships that file with the line commented out),
cancel the slurmd start that boot has queued. On an image that already has slurmd
(its package enables it) slurmd would otherwise start with no controller to ask, retry DNS SRV lookups
every 10 s ("fetch_config: DNS SRV lookup failed") and, being Type=notify, hold multi-user.target, and so
cloud-init's runcmd and the node's join, until systemd gives up on it after 90 s (seen booting the node
under systemd 257, tests/components/test_boot_real.py). Without slurmd installed, or with options
written (a reboot), it does nothing."""


SLURMDBD_PASS_PATH = "/etc/azcluster/slurmdbd.pass"
"""Where the accounting database's password lands on the controller (root-only), with `database: mysql`;
azc-slurm-controller.sh copies it into slurmdbd.conf (0600, the slurm user's) as StoragePass."""
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
"""The OS's CA bundle (Ubuntu and Debian ca-certificates): it holds DigiCert Global Root G2 and Microsoft
RSA Root CA 2017, which Azure Database for MySQL's server certificates chain to; slurmdbd verifies the
server against it (StorageParameters=SSL_CA=...)."""


@dataclass(frozen=True)
class AccountingServer:
    """The accounting database server slurmdbd uses instead of the login node's MariaDB (known only at
    deployment: components/accounting_db.py). `password` is a secret: never printed."""

    host: str
    user: str
    password: str

    def __repr__(self) -> str:
        return f"AccountingServer(host={self.host!r}, user={self.user!r}, password='[secret]')"


@dataclass(frozen=True)
class SlurmBoot:
    """What a node needs to join the cluster's Slurm, known only at deployment.

    munge_key_b64: the cluster's munge key, base64 (a Pulumi secret: components.cluster_key); the same on
    every node. dns_zone: the cluster's private DNS zone; the controller is `slurmctld.<zone>`.
    extra: slurm.conf parameters added to or replacing the rendered ones (e.g. power saving).
    accounting_server: with `slurm.accounting.database: mysql`, the server slurmdbd stores into (the
    controller only).
    """

    munge_key_b64: str
    dns_zone: str
    extra: Mapping[str, str] | None = None
    accounting_server: AccountingServer | None = None

    def __repr__(self) -> str:  # never print the key
        return f"SlurmBoot(dns_zone={self.dns_zone!r}, munge_key_b64='[secret]')"


def _munge_key(slurm: SlurmBoot) -> dict[str, Any]:
    return file_entry(MUNGE_KEY_B64_PATH, slurm.munge_key_b64 + "\n", "0600")


def slurm_env(spec: ClusterSpec, slurm: SlurmBoot) -> dict[str, Any]:
    """Where the controller is and which Slurm release to install: the same on every node."""
    release = slurm_release()
    return {
        "AZC_SLURM_CONTROLLER": controller_address(slurm.dns_zone),
        "AZC_SLURM_PORT": SLURMCTLD_PORT,
        "AZC_SLURM_VERSION": release.version,
        "AZC_SLURM_REPO_GROUP": release.repo_group,
        "AZC_SLURM_ACCOUNTING": int(spec.slurm.accounting.enabled),
        # elastic power: every slot is backed by a VM the resume program starts, so none is drained
        "AZC_SLURM_ELASTIC": int(spec.elastic_enabled),
    }


def slurm_controller_piece(spec: ClusterSpec, slurm: SlurmBoot) -> Piece:
    """The login node as Slurm's controller: configs, key, slurmctld (+ slurmdbd), the reaper timer."""
    configs = render_configs(spec, SlurmSettings.for_cluster(spec, slurm.dns_zone), slurm.extra)
    files = [file_entry(f"{SLURM_ETC}/{name}", text, "0644") for name, text in configs.items()]
    files.append(_munge_key(slurm))
    env = slurm_env(spec, slurm)
    server = slurm.accounting_server
    if server is not None and spec.slurm.accounting.enabled:
        # slurmdbd on a managed server (azc-slurm-controller.sh accounting()): TLS verified, password in
        # a root-only file rather than node.env (which every script sources)
        env.update(
            AZC_SLURMDBD_STORAGE_HOST=server.host,
            AZC_SLURMDBD_STORAGE_USER=server.user,
            AZC_SLURMDBD_STORAGE_PASS_FILE=SLURMDBD_PASS_PATH,
            AZC_SLURMDBD_STORAGE_CA=SYSTEM_CA_BUNDLE,
        )
        files.append(file_entry(SLURMDBD_PASS_PATH, server.password + "\n", "0600"))
    scripts, units = SLURM_CONTROLLER_SCRIPTS, SLURM_CONTROLLER_UNITS
    start: tuple[str, ...] = ("azc-slurm-controller.service", "azc-slurm-reaper.timer")
    if keeps_accounts(spec):
        scripts += SLURM_ACCOUNTS_SCRIPTS
        units += SLURM_ACCOUNTS_UNITS
        start += ("azc-slurm-accounts.timer",)
    return Piece("slurm", env=env, scripts=scripts, units=units, files=tuple(files), start=start)


def keeps_accounts(spec: ClusterSpec) -> bool:
    """Whether the controller keeps Slurm's accounts from the users file: accounting on, and a shared home
    for the file to be on."""
    return spec.slurm.accounting.enabled and spec.storage.home.enabled


def slurm_node_piece(
    spec: ClusterSpec, size: GpuSize, slots: IslandSlots, slurm: SlurmBoot, base_env: Mapping[str, Any]
) -> Piece:
    """A GPU node of one island: its slot range, containers (Enroot + Pyxis on NVIDIA nodes when the spec
    asks), the key and the service that joins Slurm at every boot. base_env: `slurm_env`, shared by the
    islands of a pool."""
    release = slurm_release()
    containers = spec.slurm.containers and size.gpu_vendor == "nvidia"
    env = dict(base_env)
    env.update(
        AZC_SLURM_SLOTS=slots.count,
        AZC_SLURM_SLOT_WIDTH=slots.width,
        AZC_SLURM_CONTAINERS=int(containers),
        AZC_ENROOT_VERSION=release.enroot_version if containers else None,
        AZC_PYXIS_VERSION=release.pyxis_version if containers else None,
    )
    return Piece(
        "slurm",
        env=env,
        scripts=SLURM_NODE_SCRIPTS,
        units=SLURM_NODE_UNITS,
        files=(_munge_key(slurm),),
        start=SLURM_NODE_UNITS,
        bootcmd=(HOLD_SLURMD,),
    )

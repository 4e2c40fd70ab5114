"""What runs on the nodes at first boot: cloud-init rendered per role from the spec and catalogue.

A GPU node is useful only when its NVMe scratch, shared storage, NCCL settings and health are right. The
Azure HPC/AI images already do most of the node preparation; the scripts in `scripts/` check that it
happened and repair what did not, mount shared storage without ever blocking boot, and record the node's
health where the scale set's Application Health extension reads it. They are rendered into a
`#cloud-config` document (and the gzip + base64 custom data Azure takes) per role:

- gpu_node.py: one per pool and IB island (`PoolBoot`); login.py: the login node (`LoginBoot`). Each
  lists, piece by piece, what goes into its 64 KB of custom data.
- One module per capability holds its boot pieces: health.py (gb_boot.py: GB200/GB300 only), mounts.py,
  slurm_boot.py (with slurm.py, Slurm's configuration), elastic_boot.py, users_boot.py (the team's users
  applier).
- document.py: the layout both roles share (paths, node.env, the YAML text, custom data and its limit).

Host names, island keys, hostfiles and Slurm slots are components/topology.py (re-exported here).

Pure: no pulumi, no Azure SDK. Values that only exist at deployment (the Lustre MGS name, the blob
account, the munge key) are plain string parameters; from a Pulumi program, call these functions inside
`Output.apply`.
"""

from __future__ import annotations

from ..topology import (
    COMPUTER_NAME_PREFIX_MAX,
    ComputerName,
    computer_name_prefix,
    group_by_island,
    hostfile,
    island_key,
    parse_computer_name,
)
from .document import (
    CUSTOM_DATA_LIMIT,
    HOSTFILE_DIR,
    INSTALL_DIR,
    NODE_ENV_PATH,
    UNIT_DIR,
    Piece,
    dump,
    encode_custom_data,
    file_entry,
    read_script,
)
from .elastic_boot import ELASTIC_TMPFILES_PATH, ELASTIC_UNITS
from .gb_boot import GB_HEALTH_SCRIPTS, gb_health_piece, is_rack_size
from .gpu_node import NODE_SCRIPTS, NODE_UNITS, PoolBoot, custom_data, render_cloud_config
from .health import (
    AZNHC_SIZES,
    HEALTH_EXTENSION_PUBLISHER,
    HEALTH_EXTENSION_TYPE,
    HEALTH_EXTENSION_VERSION,
    HEALTH_GRACE_PERIOD_S,
    HEALTH_INTERVAL_S,
    HEALTH_NUMBER_OF_PROBES,
    HEALTH_PATH,
    HEALTH_PORT,
    HEALTH_RESULT_PATH,
    HEALTH_SCRIPTS,
    HEALTH_UNITS,
    HealthCheck,
    HealthResult,
    health_extension_settings,
    parse_health_result,
)
from .imex_boot import IMEX_SCRIPTS
from .login import LOGIN_SCRIPTS, LoginBoot, login_custom_data, render_login_cloud_config
from .metrics import (
    GPU_EXPORTER_UNIT,
    METRICS_SCRIPTS,
    METRICS_UNITS,
    SLURM_METRICS_SCRIPTS,
    SLURM_METRICS_UNITS,
    MetricsValues,
)
from .mounts import (
    BLOB_MOUNT_ROOT,
    DEFAULT_LUSTRE_CLIENT_PACKAGE,
    FROM_IMAGE,
    HOME_NFS_OPTIONS,
    LUSTRE_MOUNT,
    MOUNT_SCRIPTS,
    MOUNT_UNITS,
    NVME_MOUNT,
    StorageValues,
    lustre_client_package,
)
from .slurm_boot import (
    MUNGE_KEY_B64_PATH,
    SLURM_ACCOUNTS_SCRIPTS,
    SLURM_ACCOUNTS_UNITS,
    SLURM_CONTROLLER_SCRIPTS,
    SLURM_CONTROLLER_UNITS,
    SLURM_NODE_SCRIPTS,
    SLURM_NODE_UNITS,
    SLURMDBD_PASS_PATH,
    AccountingServer,
    SlurmBoot,
)
from .users_boot import USERS_SCRIPTS, USERS_TIMER_INTERVAL_S, USERS_UNITS, users_file_path, users_piece


def script_names() -> tuple[str, ...]:
    """Names of the scripts every GPU node gets (from `components/bootstrap/scripts/`)."""
    return (*NODE_SCRIPTS, *HEALTH_SCRIPTS, *MOUNT_SCRIPTS, *USERS_SCRIPTS)


def gb_script_names() -> tuple[str, ...]:
    """Names of the scripts only GB200/GB300 nodes get (bootstrap/gb_boot.py, imex_boot.py)."""
    return (*GB_HEALTH_SCRIPTS, *IMEX_SCRIPTS)


def slurm_script_names() -> tuple[str, ...]:
    """Names of the Slurm scripts (GPU nodes and controller) shipped beside them, and the metrics scripts
    (bootstrap/metrics.py: every node when monitoring is on; Slurm's series on the login node)."""
    return tuple(
        dict.fromkeys(
            (
                *SLURM_NODE_SCRIPTS,
                *SLURM_CONTROLLER_SCRIPTS,
                *SLURM_ACCOUNTS_SCRIPTS,
                *METRICS_SCRIPTS,
                *SLURM_METRICS_SCRIPTS,
            )
        )
    )


def unit_names() -> tuple[str, ...]:
    """Names of the systemd units shipped in `components/bootstrap/units/`."""
    return (
        *NODE_UNITS,
        *HEALTH_UNITS,
        *MOUNT_UNITS,
        *ELASTIC_UNITS,
        *SLURM_NODE_UNITS,
        *SLURM_CONTROLLER_UNITS,
        *SLURM_ACCOUNTS_UNITS,
        *USERS_UNITS,
        *METRICS_UNITS,
        GPU_EXPORTER_UNIT,
        *SLURM_METRICS_UNITS,
    )


__all__ = [
    "GB_HEALTH_SCRIPTS",
    "gb_health_piece",
    "gb_script_names",
    "is_rack_size",
    "MetricsValues",
    "USERS_SCRIPTS",
    "USERS_TIMER_INTERVAL_S",
    "USERS_UNITS",
    "users_file_path",
    "users_piece",
    "AZNHC_SIZES",
    "BLOB_MOUNT_ROOT",
    "COMPUTER_NAME_PREFIX_MAX",
    "CUSTOM_DATA_LIMIT",
    "DEFAULT_LUSTRE_CLIENT_PACKAGE",
    "ELASTIC_TMPFILES_PATH",
    "FROM_IMAGE",
    "HEALTH_EXTENSION_PUBLISHER",
    "HEALTH_EXTENSION_TYPE",
    "HEALTH_EXTENSION_VERSION",
    "HEALTH_GRACE_PERIOD_S",
    "HEALTH_INTERVAL_S",
    "HEALTH_NUMBER_OF_PROBES",
    "HEALTH_PATH",
    "HEALTH_PORT",
    "HEALTH_RESULT_PATH",
    "HOME_NFS_OPTIONS",
    "HOSTFILE_DIR",
    "INSTALL_DIR",
    "LOGIN_SCRIPTS",
    "LUSTRE_MOUNT",
    "MUNGE_KEY_B64_PATH",
    "NODE_ENV_PATH",
    "NVME_MOUNT",
    "UNIT_DIR",
    "ComputerName",
    "HealthCheck",
    "HealthResult",
    "LoginBoot",
    "Piece",
    "PoolBoot",
    "SlurmBoot",
    "AccountingServer",
    "SLURMDBD_PASS_PATH",
    "StorageValues",
    "computer_name_prefix",
    "custom_data",
    "dump",
    "encode_custom_data",
    "file_entry",
    "group_by_island",
    "health_extension_settings",
    "hostfile",
    "island_key",
    "login_custom_data",
    "lustre_client_package",
    "parse_computer_name",
    "parse_health_result",
    "read_script",
    "render_cloud_config",
    "render_login_cloud_config",
    "script_names",
    "slurm_script_names",
    "unit_names",
]

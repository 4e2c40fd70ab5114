"""What runs on the nodes at first boot: cloud-init rendered per pool from the spec and catalogue.

A GPU node is useful only when its NVMe scratch, shared storage, NCCL settings and health are right. The
Azure HPC/AI images already do most of the node preparation; the scripts in `scripts/` check that it
happened and repair what did not, mount shared storage without ever blocking boot, and record the node's
health where the scale set's Application Health extension reads it. This module renders them into a
`#cloud-config` document (and the gzip + base64 custom data Azure takes) per pool and IB island.

Pure: no pulumi, no Azure SDK. Values that only exist at deployment time (the Lustre MGS name, the blob
account) are plain string parameters; from a Pulumi program, call these functions inside `Output.apply`.

The constants below are the contract between the node side (the health endpoint the bootstrap installs)
and the scale set (the Application Health extension that probes it).
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..catalog import GpuSize, find_size, lustre_client_for
from ..spec import ClusterSpec, LoginSpec, PoolSpec

HEALTH_PORT = 8585
HEALTH_PATH = "/health"

# --- Application Health extension ("Rich Health States"): what the scale set should install ---------
# https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-health-extension
HEALTH_EXTENSION_PUBLISHER = "Microsoft.ManagedServices"
HEALTH_EXTENSION_TYPE = "ApplicationHealthLinux"
HEALTH_EXTENSION_VERSION = "2.0"  # 2.0 = Rich Health States; 1.0 = binary
# A new node stays "Initializing" until it reports the same state numberOfProbes times or this grace
# period ends (max 14400 s). It must cover boot, node preparation and the first AzNHC run (~10-20 min).
HEALTH_GRACE_PERIOD_S = 3600
HEALTH_INTERVAL_S = 30
HEALTH_NUMBER_OF_PROBES = 3
# Where azc-health.sh records its verdict on the node (parse it with `parse_health_result`).
HEALTH_RESULT_PATH = "/var/lib/azcluster/health.json"

# --- Custom data and naming limits --------------------------------------------------------------------
# osProfile.customData: "decoded to a binary array ... The maximum length of the binary array is 65535
# bytes" (Compute REST API); Azure's custom-data page says 64 KB. Enforced on the base64 text, which is
# the stricter reading of both.
CUSTOM_DATA_LIMIT = 65535
# computerNamePrefix on Linux: at most 58 characters (64-character host name minus the 6-character
# base-36 instance suffix Azure appends; terraform-provider-azurerm ValidateLinuxComputerNamePrefix).
# One less here, so every host name (prefix + 6) is a valid 63-character DNS label.
COMPUTER_NAME_PREFIX_MAX = 57

# --- Where things go on the node ---------------------------------------------------------------------
INSTALL_DIR = "/usr/local/lib/azcluster"
UNIT_DIR = "/etc/systemd/system"
NODE_ENV_PATH = "/etc/azcluster/node.env"
HOSTFILE_DIR = "/etc/azcluster/hostfiles"
NVME_MOUNT = "/mnt/resource_nvme"
LUSTRE_MOUNT = "/lustre"
BLOB_MOUNT_ROOT = "/mnt/blob"

# Sizes Azure's node health checks (AzNHC, Azure/azurehpc-health-checks) have a configuration for, by
# Azure size name, lower-case. Others get the basic GPU/IB presence checks only.
AZNHC_SIZES = frozenset(
    {
        "standard_nd96asr_v4",
        "standard_nd96amsr_a100_v4",
        "standard_nd96isr_h100_v5",
        "standard_nd96isr_h200_v5",
        "standard_nd96isr_mi300x_v5",
    }
)

# Client options for the shared home's NFS 4.1 mount, as Azure recommends for NFS Azure file shares
# (learn.microsoft.com/azure/storage/files/storage-files-how-to-mount-nfs-shares, "Mount options"):
# vers/minorversion/sec required; nconnect=4 (no gain beyond 4); 1 MiB rsize/wsize; actimeo 30-60;
# noresvport for uninterrupted service after a reconnect on kernels below 5.18.
HOME_NFS_OPTIONS = (
    "vers=4,minorversion=1,sec=sys,nconnect=4,rsize=1048576,wsize=1048576,actimeo=30,noresvport"
)

# The Lustre client a node installs when its image has none (the login node's plain Ubuntu; an HPC image
# that lacks it): catalogue data per image OS and architecture (catalog/images.yaml `lustre_clients`, the
# DKMS metapackage Microsoft's client install pages give). This is the default login image's.
FROM_IMAGE = "from-image"
"""`lustre_client_package` default: the catalogue's package for the node's image and architecture."""


def lustre_client_package(image: str, architecture: str) -> str | None:
    """The Managed Lustre client package for `image` on `architecture`; None when the catalogue has none
    (an image id, an OS without a client for that architecture: rule AZC056 says so)."""
    client = lustre_client_for(image, architecture)
    return client.package if client is not None else None


DEFAULT_LUSTRE_CLIENT_PACKAGE = lustre_client_package(LoginSpec.model_fields["image"].default, "x64")

_SCRIPTS = (
    "azc-lib.sh",
    "azc-prepare-node.sh",
    "azc-health.sh",
    "azc-health-server.py",
    "azc-mount-lustre.sh",
    "azc-mount-blob.sh",
    "azc-mount-home.sh",
)
_LOGIN_SCRIPTS = ("azc-lib.sh", "azc-mount-lustre.sh", "azc-mount-blob.sh", "azc-mount-home.sh")
# Slurm (scheduler: slurm): what a GPU node and the controller (login node) get on top of the above.
_SLURM_NODE_SCRIPTS = (
    "azc-slurm-lib.sh",
    "azc-slurm-node.sh",
    "azc-slurm-health.sh",
    "azc-slurm-taskprolog.sh",
)
_SLURM_CONTROLLER_SCRIPTS = ("azc-slurm-lib.sh", "azc-slurm-controller.sh", "azc-slurm-reaper.sh")
_SLURM_NODE_UNITS = ("azc-slurm-node.service",)
_SLURM_CONTROLLER_UNITS = (
    "azc-slurm-controller.service",
    "azc-slurm-reaper.service",
    "azc-slurm-reaper.timer",
)
MUNGE_KEY_B64_PATH = "/etc/azcluster/munge.key.b64"
"""Where the cluster's munge key lands (base64, root-only); azc-slurm-lib.sh installs it for munged."""
_GPU_UNITS = ("azc-prepare.service", "azc-health.service", "azc-health.timer", "azc-health-server.service")
_ELASTIC_UNITS = ("azc-elastic-watch.service", "azc-elastic-watch.timer")
ELASTIC_TMPFILES_PATH = "/etc/tmpfiles.d/azc-elastic.conf"
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:/@+=,-]*$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def script_names() -> tuple[str, ...]:
    """Names of the scripts every GPU node gets (from `components/bootstrap/scripts/`)."""
    return _SCRIPTS


def slurm_script_names() -> tuple[str, ...]:
    """Names of the Slurm scripts (GPU nodes and controller) shipped beside them."""
    return tuple(dict.fromkeys((*_SLURM_NODE_SCRIPTS, *_SLURM_CONTROLLER_SCRIPTS)))


def unit_names() -> tuple[str, ...]:
    """Names of the systemd units shipped in `components/bootstrap/units/`."""
    return (
        *_GPU_UNITS,
        "azc-mount-lustre.service",
        "azc-mount-blob.service",
        "azc-mount-home.service",
        *_ELASTIC_UNITS,
        *_SLURM_NODE_UNITS,
        *_SLURM_CONTROLLER_UNITS,
    )


@functools.cache
def read_script(name: str) -> str:
    """The text of a node script (or, for names ending in .service/.timer, a systemd unit).

    Read once per process: every island's cloud-config carries the same files, and a plan renders one per
    scale set (1,429 of them for 9,999 nodes in islands of 7)."""
    folder = "units" if name.endswith((".service", ".timer")) else "scripts"
    return resources.files(__package__).joinpath(folder, name).read_text(encoding="utf-8")


# --- Topology: names that tell which nodes share an InfiniBand fabric ----------------------------------


@dataclass(frozen=True)
class ComputerName:
    """A node host name split into the parts `computer_name_prefix` put there."""

    cluster: str
    pool: str
    island: int
    instance: str

    @property
    def island_key(self) -> str:
        return island_key(self.pool, self.island)


_COMPUTER_NAME = re.compile(
    r"^(?P<cluster>[a-z0-9-]+?)-(?P<pool>[a-z0-9]+)-i(?P<island>\d+)-(?P<instance>[0-9a-z]{6})$",
    re.IGNORECASE,
)


def _pool_label(pool: str) -> str:
    label = re.sub(r"[^a-z0-9]", "", pool.lower())
    if not label:
        raise ValueError(f"pool name {pool!r} has no letters or digits to put in host names")
    return label


def island_key(pool: str, island_index: int) -> str:
    """The name of one IB island (one scale set) of a pool, e.g. 'h100-i0': hostfile names use it."""
    if island_index < 0:
        raise ValueError(f"island index must be >= 0, got {island_index}")
    return f"{_pool_label(pool)}-i{island_index}"


def computer_name_prefix(cluster: str, pool: str, island_index: int) -> str:
    """computerNamePrefix of one island's scale set: '<cluster>-<pool>-i<island>-'.

    Azure appends a 6-character base-36 instance number, so hosts read e.g. 'llm-h100-i0-00000a' and
    say which pool and IB island (scale set) they belong to. Lower-case letters, digits and hyphens;
    the cluster part is shortened when needed to keep the prefix within COMPUTER_NAME_PREFIX_MAX.
    """
    suffix = f"-{island_key(pool, island_index)}-"
    room = COMPUTER_NAME_PREFIX_MAX - len(suffix)
    if room < 1:
        raise ValueError(
            f"pool name {pool!r} is too long for a host name prefix "
            f"(at most {COMPUTER_NAME_PREFIX_MAX - 5} characters with the island number)"
        )
    head = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9-]", "-", cluster.lower())).strip("-") or "azc"
    head = head[:room].rstrip("-") or "azc"
    return head + suffix


def parse_computer_name(hostname: str) -> ComputerName | None:
    """Split a node host name made from `computer_name_prefix`; None for other names (e.g. login)."""
    match = _COMPUTER_NAME.match(hostname.strip().split(".", 1)[0])
    if match is None:
        return None
    return ComputerName(
        cluster=match["cluster"].lower(),
        pool=match["pool"].lower(),
        island=int(match["island"]),
        instance=match["instance"],
    )


def group_by_island(hostnames: Iterable[str]) -> dict[str, list[str]]:
    """Host names by island key ('h100-i0'); names not made by `computer_name_prefix` are left out."""
    groups: dict[str, list[str]] = {}
    for name in hostnames:
        parsed = parse_computer_name(name)
        if parsed is not None:
            groups.setdefault(parsed.island_key, []).append(name.strip())
    return groups


def _host_order(name: str) -> tuple[Any, ...]:
    """Node names in instance order (the suffix is base 36); other names in natural order."""
    parsed = parse_computer_name(name)
    if parsed is not None:
        return (0, name[: -len(parsed.instance)].lower(), int(parsed.instance, 36), "")
    return (1, "", 0, [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)])


def hostfile(nodes_by_island: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """One MPI/NCCL hostfile text per island: host names, one per line, sorted, no duplicates.

    Jobs that must stay on one InfiniBand fabric take the hostfile of one island; a job spread over
    two islands falls back to Ethernet between them.
    """
    files = {}
    for key, names in nodes_by_island.items():
        hosts = sorted({name.strip() for name in names if name.strip()}, key=_host_order)
        files[key] = "".join(f"{host}\n" for host in hosts)
    return files


# --- Health ------------------------------------------------------------------------------------------


def health_extension_settings() -> dict[str, Any]:
    """Public settings of the Application Health extension (Rich Health States) for a GPU scale set.

    Use with publisher HEALTH_EXTENSION_PUBLISHER, type HEALTH_EXTENSION_TYPE and typeHandlerVersion
    HEALTH_EXTENSION_VERSION. The endpoint answers 200 {"ApplicationHealthState": "Healthy"|"Unhealthy"}
    and 503 (Unknown) while no fresh result exists.
    """
    return {
        "protocol": "http",
        "port": HEALTH_PORT,
        "requestPath": HEALTH_PATH,
        "intervalInSeconds": HEALTH_INTERVAL_S,
        "numberOfProbes": HEALTH_NUMBER_OF_PROBES,
        "gracePeriod": HEALTH_GRACE_PERIOD_S,
    }


@dataclass(frozen=True)
class HealthCheck:
    name: str
    ok: bool
    skipped: bool
    detail: str


@dataclass(frozen=True)
class HealthResult:
    """A node's recorded health (HEALTH_RESULT_PATH on the node, or `<HEALTH_PATH>/detail`)."""

    healthy: bool
    time: str
    checks: tuple[HealthCheck, ...]
    hostname: str = ""
    size: str = ""
    mode: str = ""

    @property
    def failing(self) -> tuple[HealthCheck, ...]:
        return tuple(check for check in self.checks if not check.ok)

    def summary(self) -> str:
        """'healthy' or the failing checks, e.g. 'infiniband: 7 of 8 ports ACTIVE ...; gpu: ...'."""
        if self.healthy:
            return "healthy"
        return "; ".join(f"{check.name}: {check.detail}" for check in self.failing) or "unhealthy"


def parse_health_result(text: str) -> HealthResult:
    """Parse the JSON azc-health.sh writes. Raises ValueError when it is not that shape."""
    try:
        data = json.loads(text)
        checks = tuple(
            HealthCheck(
                name=str(item["name"]),
                ok=bool(item["ok"]),
                skipped=bool(item.get("skipped", False)),
                detail=str(item.get("detail", "")),
            )
            for item in data["checks"]
        )
        if not isinstance(data["healthy"], bool):
            raise TypeError("'healthy' is not a boolean")
        return HealthResult(
            healthy=data["healthy"],
            time=str(data.get("time", "")),
            checks=checks,
            hostname=str(data.get("hostname", "")),
            size=str(data.get("size", "")),
            mode=str(data.get("mode", "")),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"not an azcluster health result: {err}") from None


# --- Rendering -----------------------------------------------------------------------------------------


def _pool(spec: ClusterSpec, pool: PoolSpec | str) -> PoolSpec:
    if isinstance(pool, PoolSpec):
        return pool
    for candidate in spec.pools:
        if candidate.name == pool:
            return candidate
    raise ValueError(f"cluster {spec.name!r} has no pool {pool!r}")


def _size(pool: PoolSpec) -> GpuSize:
    size = find_size(pool.size)
    if size is None:
        raise ValueError(
            f"pool {pool.name!r}: size {pool.size!r} is not in azcluster's catalogue, so its node "
            "preparation is unknown (see `azcluster skus`)"
        )
    return size


def _env_file(values: Mapping[str, Any]) -> str:
    lines = ["# azcluster node facts, rendered from the cluster spec. Sourced by the azc-* scripts."]
    for key, value in values.items():
        if value is None:
            continue
        text = str(value)
        if not _SAFE_VALUE.match(text):
            raise ValueError(
                f"{key}={text!r}: only letters, digits and ._:/@+=,- are allowed in node settings"
            )
        lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"


def _storage_env(
    spec: ClusterSpec,
    lustre_mgs_host: str | None,
    blob_account: str | None,
    blob_client_id: str | None,
    blob_endpoint: str | None,
    cache_root: str,
    home_source: str | None = None,
) -> dict[str, Any]:
    env: dict[str, Any] = {}
    if home_source and spec.storage.home.enabled:
        env.update(
            AZC_HOME_SOURCE=home_source,
            AZC_HOME_MOUNT=spec.storage.home.mount,
            AZC_HOME_OPTIONS=HOME_NFS_OPTIONS,
        )
    if lustre_mgs_host:
        env["AZC_LUSTRE_HOST"] = lustre_mgs_host
        env["AZC_LUSTRE_MOUNT"] = LUSTRE_MOUNT
    blob = spec.storage.blob
    if blob_account and blob.enabled and blob.mount and blob.containers:
        container = blob.containers[0]
        env.update(
            AZC_BLOB_ACCOUNT=blob_account,
            AZC_BLOB_CONTAINER=container,
            AZC_BLOB_ENDPOINT=blob_endpoint or f"https://{blob_account}.blob.core.windows.net",
            AZC_BLOB_MOUNT=f"{BLOB_MOUNT_ROOT}/{container}",
            AZC_BLOB_CACHE=cache_root,
            AZC_BLOB_CLIENT_ID=blob_client_id,
        )
    return env


def _file(path: str, content: str, permissions: str) -> dict[str, Any]:
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


_UNPRINTABLE = re.compile(r"[^\t\n\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]")


@functools.lru_cache(maxsize=256)
def _literal(text: str, indent: int) -> str:
    """A YAML literal block scalar ('|') holding text exactly, for a key at column `indent`.

    Cached: the scripts and units are the same text in every island's cloud-config, so each is indented
    once per process, not once per scale set."""
    if not text:
        return '""'
    if _UNPRINTABLE.search(text):
        raise ValueError("file content for the cloud-config has control characters")
    body = text[:-1] if text.endswith("\n") else text
    chomp = "-" if not text.endswith("\n") else ("+" if body.endswith("\n") or body == "" else "")
    indicator = "2" if text[0] in " \n" else ""
    pad = " " * (indent + 2)
    lines = "\n".join(pad + line if line else "" for line in body.split("\n"))
    return f"|{indicator}{chomp}\n{lines}"


def _dump(header: str, files: list[dict[str, Any]], runcmd: list[list[str]] | None) -> str:
    """The cloud-config text. Emitted by hand (not a YAML library) because it is simple and rendering
    runs once per island in every `plan`; tests parse it back and run cloud-init's schema validator."""
    out = ["#cloud-config", header, "write_files:"]
    for entry in files:
        out.append(f"  - path: {json.dumps(entry['path'])}")
        out.append(f"    owner: {json.dumps(entry['owner'])}")
        out.append(f"    permissions: {json.dumps(entry['permissions'])}")
        out.append(f"    content: {_literal(entry['content'], 4)}")
    if runcmd:
        out.append("runcmd:")
        out.extend(f"  - {json.dumps(argv)}" for argv in runcmd)
    return "\n".join(out) + "\n"


def _units_runcmd(units: list[str]) -> list[list[str]]:
    # --no-block: cloud-init's final stage runs after multi-user.target; never wait on our units there.
    return [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", *units],
        ["systemctl", "start", "--no-block", *units],
    ]


def render_cloud_config(
    spec: ClusterSpec,
    pool: PoolSpec | str,
    island_index: int,
    lustre_mgs_host: str | None = None,
    blob_account: str | None = None,
    *,
    blob_client_id: str | None = None,
    blob_endpoint: str | None = None,
    home_source: str | None = None,
    slurm: SlurmBoot | None = None,
) -> str:
    """The `#cloud-config` document for the nodes of one IB island (scale set) of a pool.

    It writes /etc/azcluster/node.env (cluster, pool, island, size, profile, expected GPU/IB/NVMe
    counts, storage), the azc-* scripts and their systemd units, then enables and starts them:
    azc-prepare (check/repair node preparation, NCCL environment; every boot), azc-health.timer +
    azc-health-server (health for the Application Health extension), and the Lustre/blob mounts, which
    retry in the background until their targets exist. cloud-init runs it once per instance; the units
    make reboots, deallocation and re-images converge to the same state.

    lustre_mgs_host: DNS name (or IP) of the Managed Lustre MGS; None for no Lustre mount.
    blob_account: storage account whose first container is mounted with BlobFuse2 when the spec's
    `storage.blob` is enabled with `mount: true`. blob_client_id: client id of a user-assigned identity
    (default: the node's system-assigned identity). blob_endpoint: default https://<account>.blob.core.windows.net.
    home_source: the shared home's NFS export (`<account>.file.core.windows.net:/<account>/home`), mounted
    at the spec's `storage.home.mount`; None for no shared home.
    slurm: with it (clusters with `scheduler: slurm`), the node joins Slurm by itself at every boot
    (azc-slurm-node.sh: claim a slot of its island, slurmd configless) and Slurm drains it while its
    health fails (azc-slurm-health.sh); see components/bootstrap/slurm.py.
    """
    pool_spec = _pool(spec, pool)
    islands = pool_spec.island_sizes()
    if not 0 <= island_index < len(islands):
        raise ValueError(f"pool {pool_spec.name!r} has islands 0..{len(islands) - 1}, not {island_index}")
    size = _size(pool_spec)
    ib = size.infiniband
    env: dict[str, Any] = {
        "AZC_ROLE": "compute",
        "AZC_CLUSTER": spec.name,
        "AZC_POOL": pool_spec.name,
        "AZC_ISLAND": island_index,
        "AZC_ISLAND_KEY": island_key(pool_spec.name, island_index),
        "AZC_SIZE": size.name,
        "AZC_PROFILE": size.profile,
        "AZC_GPU_VENDOR": size.gpu_vendor,
        "AZC_GPUS": size.gpus,
        "AZC_IB_PORTS": ib.ports if ib else 0,
        "AZC_IB_GBPS": ib.gbps_per_port if ib else 0,
        "AZC_NVME_DISKS": size.nvme_disks,
        "AZC_AZNHC": int(size.name.lower() in AZNHC_SIZES),
        "AZC_HEALTH_PORT": HEALTH_PORT,
        "AZC_HEALTH_PATH": HEALTH_PATH,
    }
    if _idle_watched(spec):
        # The login node's idle watcher reads GPU utilisation from <HEALTH_PATH>/gpu over the private
        # network (components/elastic.py); otherwise the endpoint stays on loopback for the extension.
        env["AZC_HEALTH_BIND"] = "0.0.0.0"
    cache_root = f"{NVME_MOUNT}/blobfuse2-cache" if size.nvme_disks else "/mnt/blobfuse2-cache"
    env.update(
        _storage_env(
            spec, lustre_mgs_host, blob_account, blob_client_id, blob_endpoint, cache_root, home_source
        )
    )
    if "AZC_LUSTRE_HOST" in env:
        # Installed only if the image lacks mount.lustre: the build for the node's OS and architecture.
        env["AZC_LUSTRE_CLIENT_PKG"] = lustre_client_package(
            pool_spec.image or size.default_image, size.architecture
        )
    units = [*_GPU_UNITS, *_mount_units(env)]
    scripts: tuple[str, ...] = _SCRIPTS
    if slurm is not None:
        env.update(_slurm_node_env(spec, pool_spec, island_index, slurm))
        units += _SLURM_NODE_UNITS
        scripts = (*_SCRIPTS, *_SLURM_NODE_SCRIPTS)
    files = _node_files(env, scripts, units)
    if slurm is not None:
        files.append(_file(MUNGE_KEY_B64_PATH, slurm.munge_key_b64 + "\n", "0600"))
    start = [unit for unit in units if unit != "azc-health.service"]  # the timer starts it
    header = (
        f"# azcluster node bootstrap: cluster {spec.name}, pool {pool_spec.name}, island {island_index} "
        f"({size.name}, profile {size.profile})"
    )
    return _dump(header, files, _units_runcmd(start))


def _mount_units(env: Mapping[str, Any]) -> list[str]:
    """The storage mount services a node needs, from what its node.env says it mounts."""
    units = []
    if "AZC_LUSTRE_HOST" in env:
        units.append("azc-mount-lustre.service")
    if "AZC_BLOB_ACCOUNT" in env:
        units.append("azc-mount-blob.service")
    if "AZC_HOME_SOURCE" in env:
        units.append("azc-mount-home.service")
    return units


def _node_files(env: Mapping[str, Any], scripts: Iterable[str], units: Iterable[str]) -> list[dict[str, Any]]:
    """write_files entries: node.env, the scripts (executable where they should be), the systemd units."""
    files = [_file(NODE_ENV_PATH, _env_file(env), "0644")]
    files += [_file(f"{INSTALL_DIR}/{name}", read_script(name), _mode(name)) for name in scripts]
    files += [_file(f"{UNIT_DIR}/{name}", read_script(name), "0644") for name in units]
    return files


def _idle_watched(spec: ClusterSpec) -> bool:
    from ..elastic import scheduler

    return spec.elastic_enabled and scheduler(spec) == "none"


def _elastic_files(elastic_config: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The login node's power programs: config, program, tmpfiles for its state and log, the timer."""
    from ..elastic import CONFIG_PATH, LOG_PATH, SLURM_PROGRAMS, STATE_DIR, slurm_wrapper

    user = "slurm" if json.loads(elastic_config).get("scheduler") == "slurm" else "root"
    tmpfiles = (
        f"d {STATE_DIR} 0750 {user} {user} -\n"
        f"d {LOG_PATH.rsplit('/', 1)[0]} 0755 {user} {user} -\n"
        f"f {LOG_PATH} 0640 {user} {user} -\n"
    )
    files = [
        _file(CONFIG_PATH, elastic_config, "0644"),
        _file(f"{INSTALL_DIR}/azc-elastic.py", read_script("azc-elastic.py"), "0755"),
        _file(ELASTIC_TMPFILES_PATH, tmpfiles, "0644"),
        *[_file(f"{UNIT_DIR}/{name}", read_script(name), "0644") for name in _ELASTIC_UNITS],
    ]
    if user != "root":  # Slurm runs the programs as SlurmUser; the timer shares its state as that user
        files += [_file(path, slurm_wrapper(command), "0755") for path, command in SLURM_PROGRAMS.values()]
        dropin = f"[Service]\nUser={user}\nGroup={user}\n"
        files.append(_file(f"{UNIT_DIR}/azc-elastic-watch.service.d/user.conf", dropin, "0644"))
    return files, ["azc-elastic-watch.timer"]


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
) -> str:
    """The `#cloud-config` document for the login node: the same mounts as the GPU nodes, and one
    hostfile per IB island under /etc/azcluster/hostfiles/<island key> (see `hostfile`, `island_key`).

    lustre_client_package: installed from packages.microsoft.com when the image has no Lustre client;
    default: the catalogue's package for the login image (`lustre_client_package`).
    elastic_config: the power programs' configuration (components.elastic.render_config); with it the
    login node gets azc-elastic.py and the timer of its power round.
    slurm: with it, the login node is the Slurm controller: /etc/slurm/*.conf rendered from the spec
    (components/bootstrap/slurm.py), the munge key, azc-slurm-controller (slurmctld, and slurmdbd with
    MariaDB when accounting is on) and the reaper timer that frees the slots of deleted nodes.
    """
    env: dict[str, Any] = {"AZC_ROLE": "login", "AZC_CLUSTER": spec.name}
    env.update(
        _storage_env(
            spec,
            lustre_mgs_host,
            blob_account,
            blob_client_id,
            blob_endpoint,
            "/mnt/blobfuse2-cache",
            home_source,
        )
    )
    if "AZC_LUSTRE_HOST" in env:
        if lustre_client_package == FROM_IMAGE:
            login_size = find_size(spec.login.size)
            architecture = login_size.architecture if login_size is not None else "x64"
            lustre_client_package = _login_lustre_client(spec, architecture)
        env["AZC_LUSTRE_CLIENT_PKG"] = lustre_client_package
    units = _mount_units(env)
    scripts: tuple[str, ...] = _LOGIN_SCRIPTS
    if slurm is not None:
        env.update(_slurm_env(spec, slurm))
        units = [*units, "azc-slurm-controller.service", "azc-slurm-reaper.timer"]
        scripts = (*_LOGIN_SCRIPTS, *_SLURM_CONTROLLER_SCRIPTS)
    files = _node_files(env, scripts, units)
    if slurm is not None:
        files += _slurm_controller_files(spec, slurm)
    for key, text in sorted((hostfiles or {}).items()):
        if not _KEY.match(key):
            raise ValueError(
                f"hostfile name {key!r}: use lower-case letters, digits and '-' (see island_key)"
            )
        files.append(
            _file(f"{HOSTFILE_DIR}/{key}", text if text.endswith("\n") or not text else text + "\n", "0644")
        )
    if elastic_config is not None:
        extra, timers = _elastic_files(elastic_config)
        files += extra
        units = [*units, *timers]
    runcmd = _units_runcmd(units) if units else None
    if runcmd and elastic_config is not None:
        runcmd.insert(0, ["systemd-tmpfiles", "--create", ELASTIC_TMPFILES_PATH])
    return _dump(f"# azcluster login node bootstrap: cluster {spec.name}", files, runcmd)


def _login_lustre_client(spec: ClusterSpec, architecture: str) -> str | None:
    return lustre_client_package(spec.login.image, architecture)


# --- Slurm ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmBoot:
    """What a node needs to join the cluster's Slurm, known only at deployment.

    munge_key_b64: the cluster's munge key, base64 (a Pulumi secret: components.cluster_key); the same on
    every node. dns_zone: the cluster's private DNS zone; the controller is `slurmctld.<zone>`.
    extra: slurm.conf parameters added to or replacing the rendered ones (e.g. power saving).
    """

    munge_key_b64: str
    dns_zone: str
    extra: Mapping[str, str] | None = None

    def __repr__(self) -> str:  # never print the key
        return f"SlurmBoot(dns_zone={self.dns_zone!r}, munge_key_b64='[secret]')"


def _slurm_env(spec: ClusterSpec, slurm: SlurmBoot) -> dict[str, Any]:
    from ..catalog import slurm_release
    from .slurm import SLURMCTLD_PORT, controller_address

    release = slurm_release()
    return {
        "AZC_SLURM_CONTROLLER": controller_address(slurm.dns_zone),
        "AZC_SLURM_PORT": SLURMCTLD_PORT,
        "AZC_SLURM_VERSION": release.version,
        "AZC_SLURM_REPO_GROUP": release.repo_group,
        "AZC_SLURM_ACCOUNTING": int(spec.slurm.accounting.enabled),
    }


def _slurm_node_env(spec: ClusterSpec, pool: PoolSpec, island_index: int, slurm: SlurmBoot) -> dict[str, Any]:
    from ..catalog import slurm_release
    from .slurm import island_slots

    slots = island_slots(pool, find_size(pool.size))
    island = slots[min(island_index, len(slots) - 1)]
    release = slurm_release()
    size = _size(pool)
    containers = spec.slurm.containers and size.gpu_vendor == "nvidia"
    env = _slurm_env(spec, slurm)
    env.update(
        AZC_SLURM_SLOTS=island.count,
        AZC_SLURM_SLOT_WIDTH=island.width,
        AZC_SLURM_CONTAINERS=int(containers),
        AZC_ENROOT_VERSION=release.enroot_version if containers else None,
        AZC_PYXIS_VERSION=release.pyxis_version if containers else None,
    )
    return env


def _slurm_controller_files(spec: ClusterSpec, slurm: SlurmBoot) -> list[dict[str, Any]]:
    from .slurm import SLURM_ETC, SlurmSettings, render_configs

    configs = render_configs(spec, SlurmSettings.for_cluster(spec, slurm.dns_zone), slurm.extra)
    files = [_file(f"{SLURM_ETC}/{name}", text, "0644") for name, text in configs.items()]
    files.append(_file(MUNGE_KEY_B64_PATH, slurm.munge_key_b64 + "\n", "0600"))
    return files


def _mode(name: str) -> str:
    return "0644" if name.endswith("-lib.sh") else "0755"


def encode_custom_data(cloud_config: str) -> str:
    """gzip + base64, as Azure's customData takes it (cloud-init decompresses gzip'ed user data).

    Raises ValueError when the result exceeds Azure's limit (CUSTOM_DATA_LIMIT bytes).
    """
    packed = base64.b64encode(gzip.compress(cloud_config.encode("utf-8"), compresslevel=9, mtime=0)).decode()
    if len(packed) > CUSTOM_DATA_LIMIT:
        raise ValueError(
            f"custom data is {len(packed)} bytes after gzip and base64; Azure allows {CUSTOM_DATA_LIMIT}. "
            "Shorten what goes into the cloud-config (hostfiles are the usual culprit: leave them out and "
            "write them with `azcluster hosts` instead)"
        )
    return packed


def custom_data(
    spec: ClusterSpec,
    pool: PoolSpec | str,
    island_index: int,
    lustre_mgs_host: str | None = None,
    blob_account: str | None = None,
    **options: Any,
) -> str:
    """customData for one island's scale set: `render_cloud_config(...)`, gzip'ed and base64-encoded."""
    return encode_custom_data(
        render_cloud_config(spec, pool, island_index, lustre_mgs_host, blob_account, **options)
    )


def login_custom_data(
    spec: ClusterSpec,
    lustre_mgs_host: str | None,
    blob_account: str | None,
    hostfiles: Mapping[str, str] | None = None,
    **options: Any,
) -> str:
    """customData for the login node: `render_login_cloud_config(...)`, gzip'ed and base64-encoded."""
    return encode_custom_data(
        render_login_cloud_config(spec, lustre_mgs_host, blob_account, hostfiles, **options)
    )

"""A node's metrics: exporters, the Prometheus agent that remote-writes them to the cluster's data
collection rule, and the series that leave the node (a lean keep-list).

What runs on a node (versions pinned in catalog/metrics.yaml, installed at boot by azc-metrics.sh in the
background: azc-metrics-install.service is started with --no-block and orders itself after nothing the
node's health or Slurm join waits for):
- node_exporter with only the collectors a dashboard or an alert reads: infiniband (port counters, link
  state, rate), meminfo and textfile (azcluster's own series: the health verdict and per-check results
  written by azc-health.sh, GPU XIDs from the kernel log, and on the login node Slurm's state written by
  azc-slurm-metrics.sh);
- on NVIDIA sizes dcgm-exporter with a counters file holding only the fields kept below; on AMD sizes
  AMD's device-metrics-exporter, its series renamed to the DCGM names (so one dashboard covers both);
- Prometheus in agent mode, remote-writing with the node's user-assigned managed identity (`azuread:
  managed_identity: client_id`): Azure Monitor takes remote write from VMs only with a user-assigned
  identity or an Entra application (learn.microsoft.com/azure/azure-monitor/metrics/
  prometheus-remote-write-virtual-machines).

Labels on every series: cluster, pool, island (external labels; rack too on GB200/GB300: the NVLink
domain), instance = the node's host name (no port, so a node's GPU, InfiniBand and node series join on
it), job = dcgm | amd-gpu | node | slurm | azcluster.

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from .document import Piece, file_entry

Role = Literal["compute", "login"]

NODE_EXPORTER_PORT = 9100
DCGM_EXPORTER_PORT = 9400
AMD_EXPORTER_PORT = 5000
AGENT_PORT = 9090
TEXTFILE_DIR = "/var/lib/azcluster/metrics"
CONFIG_TEMPLATE = "/etc/azcluster/metrics/prometheus.yml"
DCGM_COUNTERS = "/etc/azcluster/metrics/dcgm-counters.csv"
HOSTNAME_PLACEHOLDER = "@HOSTNAME@"
ISLAND_PLACEHOLDER = "@ISLAND@"
"""Replaced by the node's host name and its island (AZC_ISLAND in node.env) when the agent starts
(azc-metrics.sh config): one configuration serves every node of a pool, so the islands' cloud-configs
differ only in node.env, which gpu_node.py writes last (their shared prefix is compressed once)."""
RACK_PLACEHOLDER = "@RACK@"
"""GB200/GB300 pools: the node's NVLink domain (`<ClusterUUID>.<CliqueId>`, which azc-gb-health writes to
/var/lib/azcluster/nvlink-domain), `unknown` until the GB checks first ran; read when the agent starts."""

PROMETHEUS_STREAM = "Microsoft-PrometheusMetrics"
INGESTION_API_VERSION = "2023-04-24"
"""The remote-write URL Azure Monitor gives a data collection rule: `<metrics ingestion endpoint>/
dataCollectionRules/<immutable id>/streams/Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24`
(prometheus-remote-write-virtual-machines, "Configure remote write")."""

# --- what leaves the node --------------------------------------------------------------------------------
# DCGM fields (name, type, help), each in NVIDIA's default counters file (dcgm-exporter
# etc/default-counters.csv): utilisation, frame buffer, power, temperatures, XIDs, throttle reasons and
# uncorrectable ECC: what the dashboards and catalog/alerts.yaml read, nothing else.
DCGM_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", "Memory temperature (in C)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons."),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", "Total number of double-bit volatile ECC errors."),
)
AMD_TO_DCGM: tuple[tuple[str, str], ...] = (
    # device-metrics-exporter's names (ROCm/device-metrics-exporter docs, "Metrics") -> the DCGM field
    # the dashboards chart; AMD reports VRAM in MB and power in W like DCGM's MiB and W.
    ("gpu_gfx_activity", "DCGM_FI_DEV_GPU_UTIL"),
    ("gpu_free_vram", "DCGM_FI_DEV_FB_FREE"),
    ("gpu_used_vram", "DCGM_FI_DEV_FB_USED"),
    ("gpu_package_power", "DCGM_FI_DEV_POWER_USAGE"),
    ("gpu_junction_temperature", "DCGM_FI_DEV_GPU_TEMP"),
    ("gpu_memory_temperature", "DCGM_FI_DEV_MEMORY_TEMP"),
    ("gpu_ecc_uncorrect_total", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"),
)
IB_METRICS = (
    # node_exporter's infiniband collector (collector/infiniband_linux.go), per device and port
    "node_infiniband_port_data_received_bytes_total",
    "node_infiniband_port_data_transmitted_bytes_total",
    "node_infiniband_port_errors_received_total",
    "node_infiniband_symbol_error_total",
    "node_infiniband_link_downed_total",
    "node_infiniband_state_id",
    "node_infiniband_rate_bytes_per_second",
)
ETHERNET_RDMA_DEVICES = "mlx5_an.*"
NODE_METRICS = ("up", "node_memory_MemAvailable_bytes")
HEALTH_CHECKS = ("gpu", "infiniband", "nvme", "nccl_conf", "fabricmanager", "peermem", "aznhc")
"""azc-health.sh's checks: one `azcluster_health_check_ok{check}` series each."""
GB_HEALTH_CHECKS = ("nvlink_fabric", "imex", "xid", "dcgm")
"""What azc-gb-health-lib.sh adds on GB200/GB300 nodes: one series each too."""
AZCLUSTER_METRICS = (
    "azcluster_node_healthy",
    "azcluster_health_check_timestamp_seconds",
    "azcluster_health_check_ok",
    "azcluster_gpu_xid_errors_total",
    "azcluster_node_price_usd_per_hour",
)
SLURM_METRICS = (
    # prometheus-slurm-exporter's names (vpenso), written by azc-slurm-metrics.sh
    "slurm_nodes_alloc",
    "slurm_nodes_idle",
    "slurm_nodes_mix",
    "slurm_nodes_drain",
    "slurm_nodes_down",
    "slurm_nodes_other",
    "slurm_gpus_alloc",
    "slurm_gpus_total",
    "slurm_queue_running",
    "slurm_queue_pending",
    "slurm_partition_jobs_pending",
    "slurm_partition_gpus_alloc",
    "slurm_partition_gpus_total",
    "slurm_scheduler_threads",
    "slurm_scheduler_queue_size",
    "slurm_scheduler_last_cycle",
    "slurm_scheduler_backfill_last_cycle",
    "slurm_scheduler_up",
)


def kept_metrics(role: Role) -> tuple[str, ...]:
    """Every metric name a node of `role` sends: the remote write's keep-list."""
    names = [*NODE_METRICS, *IB_METRICS, *AZCLUSTER_METRICS, *(f[0] for f in DCGM_FIELDS)]
    if role == "login":
        names += SLURM_METRICS
    return tuple(dict.fromkeys(names))


def series_per_node(
    gpus: int,
    ib_ports: int,
    role: Role = "compute",
    partitions: int = 1,
    vendor: str = "nvidia",
    gb: bool = False,
) -> int:
    """Active series one node sends with the default keep-list (benchmarks/bench_series.py measures it on
    a synthetic node through the real Prometheus and node_exporter; tests/components/test_metrics_real.py
    checks a node sends exactly this).

    A GPU node: one series per kept GPU field and GPU (the DCGM fields; on AMD the fields renamed to
    them), one per InfiniBand metric and port, `up` of each scrape job (node, and the GPU exporter's),
    MemAvailable, and azcluster's own (healthy, last check time, one per health check, GB nodes' own
    checks too, the XID count,
    the price). The login node: `up`, MemAvailable and Slurm's (fixed ones, and per partition its pending
    jobs and GPUs)."""
    if role == "login":
        per_partition = 3
        return 2 + len(SLURM_METRICS) - per_partition + per_partition * max(1, partitions)
    per_gpu = len(AMD_TO_DCGM) if vendor == "amd" else len(DCGM_FIELDS)
    jobs = 2 if gpus else 1
    checks = len(HEALTH_CHECKS) + (len(GB_HEALTH_CHECKS) if gb else 0)
    own = 2 + checks + 1 + 1
    return gpus * per_gpu + ib_ports * len(IB_METRICS) + jobs + 1 + own


# --- versions ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    name: str
    version: str = ""
    url: str = ""
    sums: str = ""
    image: str = ""
    port: int = 0
    why: str = ""

    def download(self, arch: str) -> str:
        return self.url.format(version=self.version, arch=arch)

    def sums_url(self) -> str:
        return self.sums.format(version=self.version)


@functools.cache
def components() -> dict[str, Component]:
    """catalog/metrics.yaml: what the nodes install, pinned, with why."""
    from ruamel.yaml import YAML

    from .. import catalog

    text = resources.files(catalog).joinpath("metrics.yaml").read_text(encoding="utf-8")
    data = YAML(typ="safe").load(text)
    return {key: Component(**value) for key, value in data.items()}


# --- the agent's configuration -------------------------------------------------------------------------


def write_url(ingestion_endpoint: str, rule_immutable_id: str) -> str:
    """The data collection rule's remote-write URL (INGESTION_API_VERSION above)."""
    return (
        f"{ingestion_endpoint.rstrip('/')}/dataCollectionRules/{rule_immutable_id}/streams/"
        f"{PROMETHEUS_STREAM}/api/v1/write?api-version={INGESTION_API_VERSION}"
    )


@dataclass(frozen=True)
class MetricsValues:
    """Known only at deployment: where the node writes, and as which identity."""

    write_url: str
    client_id: str


def _keep(names: tuple[str, ...]) -> str:
    return "|".join(names)


def _job(name: str, port: int, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "job_name": name,
        "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        # instance = the host name, not 127.0.0.1:port: a node's series of every job join on it
        "relabel_configs": [{"target_label": "instance", "replacement": HOSTNAME_PLACEHOLDER}],
        "metric_relabel_configs": extra or [],
    }


def _node_job() -> dict[str, Any]:
    """node_exporter; the textfile collector's azcluster_* and slurm_* series get their own job label."""
    relabel = [
        {
            "source_labels": ["__name__"],
            "regex": f"({prefix})_.+",
            "target_label": "job",
            "replacement": prefix,
        }
        for prefix in ("azcluster", "slurm")
    ]
    return _job("node", NODE_EXPORTER_PORT, relabel)


def _amd_job() -> dict[str, Any]:
    relabel: list[dict[str, Any]] = [
        {"source_labels": ["__name__"], "regex": amd, "target_label": "__name__", "replacement": dcgm}
        for amd, dcgm in AMD_TO_DCGM
    ]
    relabel.append({"source_labels": ["gpu_id"], "regex": "(.+)", "target_label": "gpu"})
    return _job("amd-gpu", AMD_EXPORTER_PORT, relabel)


def agent_config(
    *,
    cluster: str,
    role: Role,
    gpu_vendor: str | None,
    scrape_interval_s: int,
    values: MetricsValues,
    pool: str | None = None,
    island: int | str | None = None,
    rack: bool = False,
) -> dict[str, Any]:
    """The Prometheus agent's configuration (prometheus.io/docs/prometheus/latest/configuration/).
    `island`: a number, or ISLAND_PLACEHOLDER to take it from node.env when the agent starts."""
    labels: dict[str, str] = {"cluster": cluster}
    if pool is not None:
        labels["pool"] = pool
    if island is not None:
        labels["island"] = str(island)
    if rack:
        labels["rack"] = RACK_PLACEHOLDER
    jobs = [_node_job()]
    if role == "compute" and gpu_vendor == "nvidia":
        jobs.append(_job("dcgm", DCGM_EXPORTER_PORT))
    elif role == "compute" and gpu_vendor == "amd":
        jobs.append(_amd_job())
    return {
        "global": {
            "scrape_interval": f"{scrape_interval_s}s",
            "scrape_timeout": f"{min(10, scrape_interval_s)}s",
            "external_labels": labels,
        },
        "scrape_configs": jobs,
        "remote_write": [
            {
                "url": values.write_url,
                "azuread": {"cloud": "AzurePublic", "managed_identity": {"client_id": values.client_id}},
                # The lean set: only what a dashboard or an alert reads leaves the node (the scrape_*
                # series Prometheus adds to every job included: metric_relabel_configs never see them).
                "write_relabel_configs": [
                    {"source_labels": ["__name__"], "regex": _keep(kept_metrics(role)), "action": "keep"},
                    # The accelerated-networking NIC is an RDMA device too (mlx5_an0 on the Azure HPC
                    # images, link layer Ethernet): not a port of the InfiniBand fabric, and always
                    # "down" to the IB alerts. node_exporter has no link-layer label to tell it apart.
                    {"source_labels": ["device"], "regex": ETHERNET_RDMA_DEVICES, "action": "drop"},
                ],
            }
        ],
    }


def render_agent_config(config: dict[str, Any]) -> str:
    from io import StringIO

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    out = StringIO()
    yaml.dump(config, out)
    return (
        "# Rendered by azcluster (components/bootstrap/metrics.py); @HOSTNAME@ is filled in at start.\n"
        + (out.getvalue())
    )


def dcgm_counters() -> str:
    """dcgm-exporter's counters file (`-f`): only the kept fields, in its CSV format."""
    lines = ["# DCGM FIELD, Prometheus metric type, help message"]
    lines += [f"{name}, {kind}, {text}" for name, kind, text in DCGM_FIELDS]
    return "\n".join(lines) + "\n"


METRICS_SCRIPTS = ("azc-metrics.sh",)
METRICS_UNITS = ("azc-metrics-install.service", "azc-node-exporter.service", "azc-metrics-agent.service")
GPU_EXPORTER_UNIT = "azc-gpu-exporter.service"
SLURM_METRICS_SCRIPTS = ("azc-slurm-metrics.sh",)
SLURM_METRICS_UNITS = ("azc-slurm-metrics.service", "azc-slurm-metrics.timer")


def metrics_piece(
    *,
    cluster: str,
    role: Role,
    gpu_vendor: str | None,
    scrape_interval_s: int,
    values: MetricsValues,
    pool: str | None = None,
    island: int | str | None = None,
    slurm: bool = False,
    architecture: str = "x86_64",
    rack: bool = False,
) -> Piece:
    """What a node adds to send metrics: the agent's configuration, the install script and the units.

    Only azc-metrics-install.service starts at boot (--no-block, like every unit): it downloads and
    starts the rest, so nothing the node's health or Slurm join waits for waits for it."""
    parts = components()
    arch = "arm64" if architecture.lower() in ("arm64", "aarch64") else "amd64"
    env: dict[str, Any] = {
        "AZC_METRICS_ARCH": arch,
        "AZC_METRICS_PROMETHEUS_URL": parts["collector"].download(arch),
        "AZC_METRICS_PROMETHEUS_SUMS": parts["collector"].sums_url(),
        "AZC_METRICS_NODE_EXPORTER_URL": parts["node_exporter"].download(arch),
        "AZC_METRICS_NODE_EXPORTER_SUMS": parts["node_exporter"].sums_url(),
        "AZC_METRICS_TEXTFILE_DIR": TEXTFILE_DIR,
    }
    config = agent_config(
        cluster=cluster,
        role=role,
        gpu_vendor=gpu_vendor,
        scrape_interval_s=scrape_interval_s,
        values=values,
        pool=pool,
        island=island,
        rack=rack,
    )
    files = [file_entry(CONFIG_TEMPLATE, render_agent_config(config), "0644")]
    units = list(METRICS_UNITS)
    scripts = list(METRICS_SCRIPTS)
    if role == "compute" and gpu_vendor == "nvidia":
        env["AZC_METRICS_GPU_IMAGE"] = parts["dcgm_exporter"].image
        files.append(file_entry(DCGM_COUNTERS, dcgm_counters(), "0644"))
        units.append(GPU_EXPORTER_UNIT)
    elif role == "compute" and gpu_vendor == "amd":
        env["AZC_METRICS_GPU_IMAGE"] = parts["amd_exporter"].image
        units.append(GPU_EXPORTER_UNIT)
    start = ["azc-metrics-install.service"]
    if role == "login" and slurm:
        scripts += SLURM_METRICS_SCRIPTS
        units += SLURM_METRICS_UNITS
        start.append("azc-slurm-metrics.timer")
    return Piece(
        "metrics", env=env, scripts=tuple(scripts), units=tuple(units), files=tuple(files), start=tuple(start)
    )

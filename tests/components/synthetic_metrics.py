"""A synthetic cluster's metrics, as the node side sends them, for the dashboard tests.

One hour of samples every 30 s from a cluster `demo`: pool `gpu` (ND H100 v5: 2 InfiniBand islands of 2
nodes, 8 GPUs and 8 HCAs each), pool `gb` (GB200: one island of 2 nodes in rack `r0`, 4 GPUs each) and the
login node's Slurm exporter. It is a sick cluster on purpose, so every panel has something to show: one
GPU reports XID 79 and another double-bit ECC errors, one GPU is thermally slowed down, one InfiniBand
port is down and flaps and counts receive errors, one node fails its health check, one scrape target does
not answer, one Slurm node is drained, and Slurm job 4242 holds the GPUs of island 0 (dcgm-exporter's
HPC job mapping label, `hpc_job`).

Names are the real exporters' own:
- NVIDIA dcgm-exporter, fields of its etc/default-counters.csv (DCGM_FI_DEV_*), labels gpu, UUID,
  modelName, Hostname, and hpc_job from its HPC job mapping (internal/pkg/transformation, hpcJobAttribute);
- prometheus/node_exporter's infiniband collector (collector/infiniband_linux.go), labels device, port;
- vpenso/prometheus-slurm-exporter (slurm_nodes_*, slurm_gpus_*, slurm_queue_*);
- azcluster's own node series (the health check's textfile, components/bootstrap): azcluster_node_healthy,
  azcluster_health_check_timestamp_seconds, azcluster_health_check_ok{check}, azcluster_gpu_xid_errors_total,
  azcluster_node_price_usd_per_hour; and the login node's Slurm series (vpenso's names, plus
  slurm_partition_gpus_{alloc,total}{partition} and slurm_scheduler_up).
Every series carries the labels the nodes' agent adds: cluster, pool, island, instance (the host name),
rack on GB pools, and job.

The text is OpenMetrics, which `promtool tsdb create-blocks-from openmetrics` turns into TSDB blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

CLUSTER = "demo"
JOB_ID = "4242"
STEP_S = 30
DURATION_S = 3600


@dataclass(frozen=True)
class Node:
    host: str
    pool: str
    island: int
    gpus: int
    hcas: int
    price: float
    rack: str | None = None


NODES = [
    *(Node(f"demo-gpu-ib{i}-{n:06d}", "gpu", i, 8, 8, 98.32) for i in (0, 1) for n in (0, 1)),
    *(Node(f"demo-gb-ib0-{n:06d}", "gb", 0, 4, 4, 0.0 + 140.0, rack="r0") for n in (0, 1)),
]
LOGIN = "demo-login"
SICK_GPU = (NODES[1].host, 3)
"""XID 79 (fell off the bus)."""
ECC_GPU = (NODES[2].host, 5)
HOT_GPU = (NODES[3].host, 0)
DOWN_PORT = (NODES[2].host, "mlx5_ib4")
UNHEALTHY = NODES[2].host
UNREACHABLE = NODES[5].host


@dataclass
class Family:
    name: str
    kind: str = "gauge"
    samples: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def add(self, labels: dict[str, str], values: Iterator[tuple[int, float]]) -> None:
        inside = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        self.samples[inside] = list(values)


def _labels(node: Node, job: str, **extra: str) -> dict[str, str]:
    labels = {"cluster": CLUSTER, "pool": node.pool, "island": str(node.island), "instance": node.host}
    if node.rack:
        labels["rack"] = node.rack
    return {**labels, "job": job, **extra}


def families(end: int) -> list[Family]:
    """Every family, samples from end - DURATION_S to end (seconds since the epoch)."""
    times = list(range(end - DURATION_S, end + 1, STEP_S))
    out: dict[str, Family] = {}

    def family(name: str) -> Family:
        return out.setdefault(name, Family(name))

    def series(name: str, labels: dict[str, str], value) -> None:  # value(t_index) -> float
        family(name).add(labels, ((t, float(value(i))) for i, t in enumerate(times)))

    for number, node in enumerate(NODES):
        busy = node.pool == "gpu" and node.island == 0
        for gpu in range(node.gpus):
            gpu_labels = {
                "gpu": str(gpu),
                "UUID": f"GPU-{number:04d}{gpu:04d}-0000-0000-0000-000000000000",
                "modelName": "NVIDIA H100 80GB HBM3" if node.pool == "gpu" else "NVIDIA GB200",
                "Hostname": node.host,
            }
            if busy:
                gpu_labels["hpc_job"] = JOB_ID
            labels = _labels(node, "dcgm", **gpu_labels)
            util = (lambda i, g=gpu: 85 + 10 * math.sin(i / 7 + g)) if busy else (lambda i: 3 if i % 5 else 0)
            if (node.host, gpu) == SICK_GPU:
                util = lambda i: 0  # noqa: E731 - lost from the bus
            series("DCGM_FI_DEV_GPU_UTIL", labels, util)
            series("DCGM_FI_DEV_FB_USED", labels, lambda i, b=busy: 61_000 if b else 500)
            series("DCGM_FI_DEV_FB_FREE", labels, lambda i, b=busy: 20_000 if b else 80_500)
            series("DCGM_FI_DEV_POWER_USAGE", labels, lambda i, b=busy: 650 if b else 90)
            hot = (node.host, gpu) == HOT_GPU
            series("DCGM_FI_DEV_GPU_TEMP", labels, lambda i, b=busy, h=hot: 88 if h else 71 if b else 35)
            series("DCGM_FI_DEV_MEMORY_TEMP", labels, lambda i, b=busy: 75 if b else 38)
            series("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", labels, lambda i, h=hot: 0x40 if h else 0)
            sick = (node.host, gpu) == SICK_GPU
            series("DCGM_FI_DEV_XID_ERRORS", labels, lambda i, s=sick: 79 if s and i > 60 else 0)
            ecc = (node.host, gpu) == ECC_GPU
            series("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", labels, lambda i, e=ecc: 2 if e and i > 110 else 0)
        for hca in range(node.hcas):
            device = f"mlx5_ib{hca}"
            labels = _labels(node, "node", device=device, port="1")
            down = (node.host, device) == DOWN_PORT
            rate = 2.4e10 if busy else 1.0e6
            series("node_infiniband_port_data_received_bytes_total", labels, lambda i, r=rate: r * STEP_S * i)
            series(
                "node_infiniband_port_data_transmitted_bytes_total", labels, lambda i, r=rate: r * STEP_S * i
            )
            series("node_infiniband_port_errors_received_total", labels, lambda i, d=down: 3 * i if d else 0)
            series("node_infiniband_symbol_error_total", labels, lambda i, d=down: 11 * i if d else 0)
            series("node_infiniband_link_downed_total", labels, lambda i, d=down: i // 4 if d else 0)
            series("node_infiniband_state_id", labels, lambda i, d=down: 1 if d and (i % 4 or i > 100) else 4)
            series("node_infiniband_rate_bytes_per_second", labels, lambda i: 5e10)
        answering = node.host != UNREACHABLE
        series("up", _labels(node, "node"), lambda i, a=answering: 1 if a or i < 100 else 0)
        series("up", _labels(node, "dcgm"), lambda i, a=answering: 1 if a or i < 100 else 0)
        series("node_memory_MemAvailable_bytes", _labels(node, "node"), lambda i: 1.6e12)
        healthy = node.host != UNHEALTHY
        series(
            "azcluster_node_healthy", _labels(node, "azcluster"), lambda i, h=healthy: 1 if h or i < 90 else 0
        )
        series(
            "azcluster_health_check_timestamp_seconds",
            _labels(node, "azcluster"),
            lambda i: times[i] - times[i] % 300,
        )
        series("azcluster_node_price_usd_per_hour", _labels(node, "azcluster"), lambda i, p=node.price: p)
        for check in ("gpu", "infiniband", "nvme"):
            failed = not healthy and check == "infiniband"
            series(
                "azcluster_health_check_ok",
                _labels(node, "azcluster", check=check),
                lambda i, f=failed: 0 if f and i >= 90 else 1,
            )
        sick = node.host == SICK_GPU[0]
        series(
            "azcluster_gpu_xid_errors_total",
            _labels(node, "azcluster"),
            lambda i, s=sick: 1 if s and i > 60 else 0,
        )

    login = {"cluster": CLUSTER, "pool": "login", "island": "", "instance": LOGIN, "job": "slurm"}
    nodes = len(NODES)
    series("up", login, lambda i: 1)
    series("slurm_nodes_alloc", login, lambda i: 4)
    series("slurm_nodes_mix", login, lambda i: 0)
    series("slurm_nodes_idle", login, lambda i: nodes - 4 - 1)
    series("slurm_nodes_drain", login, lambda i: 1 if i > 80 else 0)
    series("slurm_nodes_down", login, lambda i: 0 if i < 100 else 1)
    series("slurm_gpus_alloc", login, lambda i: 32)
    series("slurm_gpus_total", login, lambda i: sum(node.gpus for node in NODES))
    series("slurm_queue_running", login, lambda i: 1)
    series("slurm_queue_pending", login, lambda i: 3)
    for pool in ("gpu", "gb"):
        gpus = sum(node.gpus for node in NODES if node.pool == pool)
        partition = {**login, "partition": pool}
        series("slurm_partition_gpus_total", partition, lambda i, g=gpus: g)
        series("slurm_partition_gpus_alloc", partition, lambda i, p=pool: 32 if p == "gpu" else 0)
        series("slurm_partition_jobs_pending", partition, lambda i, p=pool: 3 if p == "gpu" else 0)
    series("slurm_scheduler_up", login, lambda i: 1)
    series("slurm_scheduler_last_cycle", login, lambda i: 1500 + 10 * (i % 7))
    return list(out.values())


def openmetrics(end: int) -> str:
    """The synthetic cluster as OpenMetrics text (every family typed gauge: PromQL does not care, and
    OpenMetrics would want a counter's family named without `_total`)."""
    lines: list[str] = []
    for fam in families(end):
        lines.append(f"# TYPE {fam.name} {fam.kind}")
        for labels, samples in fam.samples.items():
            lines.extend(f"{fam.name}{{{labels}}} {value!r} {t}" for t, value in samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"

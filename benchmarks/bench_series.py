"""Series per node: what one GPU node sends to the Azure Monitor workspace, measured, and what that means
for the workspace's default limit of 1,000,000 active series (AZC126) and 1,000,000 samples a minute
(AZC127); and the bytes monitoring adds to each role's custom data.

Measured: a synthetic ND H100 v5 node (8 GPUs from a dcgm-exporter stand-in serving NVIDIA's default
counters; on sid also an ND MI300X v5 node with an AMD device-metrics-exporter stand-in), 8 InfiniBand
ports and the accelerated-networking port in a fake /sys read by the real node_exporter, the real
azc-health.sh's textfile, through the real Prometheus agent with the configuration azcluster renders,
remote-writing to a loopback receiver (tests/components/metricslab.py), on Debian trixie
(Prometheus 2.53) and sid (Prometheus 3.5). "offered" is what the exporters serve, "sent" what the
keep-list lets through (and the receiver stored), "formula" what the rules count
(bootstrap.metrics.series_per_node). Needs root and the Debian roots (`python -m tests.realroots`);
without them only the computed tables are printed.

Run: `make bench`, or `.venv/bin/python benchmarks/bench_series.py`. Exits 1 when a measured figure is
not the formula's, or monitoring adds more than 8 KiB to a GPU node's custom data.
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from azcluster.components import bootstrap, catalog  # noqa: E402
from azcluster.components.bootstrap import metrics  # noqa: E402
from azcluster.components.rules.boot import encoded_size  # noqa: E402
from azcluster.components.rules.monitoring import (  # noqa: E402
    WORKSPACE_ACTIVE_SERIES_LIMIT,
    WORKSPACE_EVENTS_PER_MINUTE_LIMIT,
)
from azcluster.components.spec import ClusterSpec  # noqa: E402

BUDGET = 8 * 1024
VALUES = metrics.MetricsValues(
    metrics.write_url(
        "https://bench-metrics-dce-abcd.eastus-1.metrics.ingest.monitor.azure.com", "dcr-" + "0" * 32
    ),
    "00000000-0000-0000-0000-000000000000",
)


def measured() -> int:
    from tests import realroots
    from tests.components.metricslab import SUITES, running_node

    reason = realroots.missing_tools()
    if reason:
        print(f"measured: skipped ({reason})")
        return 0
    runs = [(suite, "nvidia") for suite in sorted(SUITES)] + [("sid", "amd")]
    failed = 0
    print("suite    Prometheus  GPUs    offered  sent  formula  by job")
    for suite, vendor in runs:
        want = metrics.series_per_node(8, 8, vendor=vendor)
        with (
            tempfile.TemporaryDirectory(prefix="bench-series-") as tmp,
            running_node(suite, Path(tmp), vendor) as run,
        ):
            jobs = collections.Counter(dict(key)["job"] for key in run.series)
            by_job = ", ".join(f"{job} {count}" for job, count in sorted(jobs.items()))
            row = f"{suite:8} {SUITES[suite]:11} {vendor:7} {run.offered:8} {len(run.series):5} {want:8}"
            print(f"{row}  {by_job}")
            failed |= len(run.series) != want
    return failed


def computed() -> int:
    print(
        "\nsize                          GPUs  IB  series/node  nodes at 1M series  at 1M samples/min (30 s)"
    )
    for size in catalog.gpu_sizes().values():
        ports = size.infiniband.ports if size.infiniband else 0
        per = metrics.series_per_node(size.gpus, ports, vendor=size.gpu_vendor)
        print(
            f"{size.name:29} {size.gpus:4} {ports:3} {per:12} {WORKSPACE_ACTIVE_SERIES_LIMIT // per:19,}"
            f" {WORKSPACE_EVENTS_PER_MINUTE_LIMIT // (2 * per):26,}"
        )
    print(f"login node (Slurm, 1 partition): {metrics.series_per_node(0, 0, 'login')} series")
    print("\ncustom data added by monitoring (gzip + base64 bytes)")
    failed = 0
    for size in catalog.gpu_sizes().values():
        spec = ClusterSpec.model_validate(
            {
                "name": "bench",
                "location": "eastus",
                "pools": [{"name": "gpu", "size": size.name, "nodes": 4}],
                "monitoring": {"enabled": True},
            }
        )
        on = encoded_size(bootstrap.render_cloud_config(spec, "gpu", 0, metrics=VALUES))
        off = encoded_size(bootstrap.render_cloud_config(spec, "gpu", 0))
        print(f"  {size.name:29} {on - off:6,} of {on:7,}")
        failed |= on - off > BUDGET
    spec = ClusterSpec.model_validate(
        {"name": "bench", "location": "eastus", "pools": [], "monitoring": {"enabled": True}}
    )
    key = {"munge_key": "bXVuZ2U=" * 128, "dns_zone": "bench.azcluster.internal"}
    storage = bootstrap.StorageValues()
    on = encoded_size(bootstrap.LoginBoot.for_cluster(spec, storage, **key, metrics=VALUES).cloud_config())
    off = encoded_size(bootstrap.LoginBoot.for_cluster(spec, storage, **key).cloud_config())
    print(f"  {'login node (Slurm)':29} {on - off:6,} of {on:7,}")
    return failed


def main() -> int:
    failed = measured() if os.geteuid() == 0 else 0
    return computed() | failed


if __name__ == "__main__":
    raise SystemExit(main())

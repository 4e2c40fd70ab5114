"""Slurm: custom-data size and configuration rendering time for clusters of 8, 1024 and 4096 nodes.

The controller's custom data carries every Slurm configuration file, the nodes' carries their island's
slot range and the munge key; both must stay under Azure's 64 KB custom-data limit for the largest
cluster, and rendering must stay cheap because `plan` renders it for every island. Node records are
one range per island (not one line per node), so sizes grow with islands, not nodes.

For each cluster size (H100 pools, 100 nodes per island) the table shows the base64 custom-data size of
the controller (login node) and of one GPU node island, the share of Azure's limit, and the median
time of rendering slurm.conf + topology.conf + gres.conf (`render_configs`) and of the controller's
whole custom data, over `--runs` runs (default 20).
Run: `make bench`, or `.venv/bin/python benchmarks/bench_slurm.py [--runs N]`. Exits 1 when a
custom data is over the limit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from azcluster.components import bootstrap
from azcluster.components.bootstrap import slurm
from azcluster.components.cluster_key import new_key
from azcluster.components.spec import ClusterSpec

SIZES = (8, 1024, 4096)


def _spec(nodes: int) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "bench",
            "location": "eastus",
            "pools": [{"name": "h100", "size": "Standard_ND96isr_H100_v5", "nodes": nodes}],
            "storage": {"blob": {"enabled": True}},
        }
    )


def _median_ms(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    boot = bootstrap.SlurmBoot(new_key(), "bench.azcluster.internal")
    print(
        f"{'nodes':>6} {'islands':>7} {'login bytes':>11} {'node bytes':>10} {'of limit':>8} "
        f"{'configs ms':>10} {'login cd ms':>11}"
    )
    worst = 0.0
    for nodes in SIZES:
        spec = _spec(nodes)
        settings = slurm.SlurmSettings.for_cluster(spec, boot.dns_zone)
        login = bootstrap.login_custom_data(spec, "lustre.bench", "benchdata", slurm=boot)
        node = bootstrap.custom_data(spec, "h100", 0, "lustre.bench", "benchdata", slurm=boot)
        share = max(len(login), len(node)) / bootstrap.CUSTOM_DATA_LIMIT
        worst = max(worst, share)
        configs_ms = _median_ms(runs, lambda s=spec, t=settings: slurm.render_configs(s, t))
        login_ms = _median_ms(
            runs, lambda s=spec: bootstrap.login_custom_data(s, "lustre.bench", "benchdata", slurm=boot)
        )
        islands = len(spec.pools[0].island_sizes())
        print(
            f"{nodes:>6} {islands:>7} {len(login):>11} {len(node):>10} {share:>8.1%} "
            f"{configs_ms:>10.2f} {login_ms:>11.2f}"
        )
    verdict = "ok" if worst <= 1 else "OVER THE LIMIT"
    print(f"largest custom data: {worst:.1%} of Azure's {bootstrap.CUSTOM_DATA_LIMIT} bytes: {verdict}")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())

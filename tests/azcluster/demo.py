"""The `demo` cluster the ops tests share: its spec, and the same cluster laid out in the ARM fake.

Pool `gpu` (ND H100 v5) in two InfiniBand islands of 3 and 2 nodes, pool `infer` (NC H100 v5, no IB) with one
node, and a login VM.
"""

from __future__ import annotations

from azcluster.components.spec import ClusterSpec

H100 = "Standard_ND96isr_H100_v5"
NC = "Standard_NC80adis_H100_v5"


def spec(**extra) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "demo",
            "location": "eastus",
            "pools": [{"name": "gpu", "size": H100, "nodes": 5}, {"name": "infer", "size": NC, "nodes": 1}],
            **extra,
        }
    )


def add_to(fake) -> list:
    """Create the demo cluster's scale sets (and login VM) in the fake; returns the scale sets."""
    return fake.add_cluster("demo", {"gpu": (H100, [3, 2]), "infer": (NC, [1])})

"""azcluster's Pulumi components: `from components import Cluster, GpuPool` in any Pulumi program.

Names are imported on first use (module `__getattr__`), so `import components.spec` or the catalogue stays
light and never loads pulumi-azure-native.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Cluster": "components.cluster",
    "ClusterSpecError": "components.cluster",
    "GpuPool": "components.gpu_pool",
    "GpuPoolArgs": "components.gpu_pool",
    "LoginNode": "components.login",
    "LoginNodeArgs": "components.login",
    "ClusterNetwork": "components.network",
    "ClusterNetworkArgs": "components.network",
    "SharedStorage": "components.storage",
    "SharedStorageArgs": "components.storage",
    "NodeIdentity": "components.identity",
    "ClusterSpec": "components.spec",
    "PoolSpec": "components.spec",
    "parse_cluster": "components.spec",
}

__all__ = [
    "Cluster",
    "ClusterNetwork",
    "ClusterNetworkArgs",
    "ClusterSpec",
    "ClusterSpecError",
    "GpuPool",
    "GpuPoolArgs",
    "LoginNode",
    "LoginNodeArgs",
    "NodeIdentity",
    "PoolSpec",
    "SharedStorage",
    "SharedStorageArgs",
    "parse_cluster",
]

if TYPE_CHECKING:
    from components.cluster import Cluster, ClusterSpecError
    from components.gpu_pool import GpuPool, GpuPoolArgs
    from components.identity import NodeIdentity
    from components.login import LoginNode, LoginNodeArgs
    from components.network import ClusterNetwork, ClusterNetworkArgs
    from components.spec import ClusterSpec, PoolSpec, parse_cluster
    from components.storage import SharedStorage, SharedStorageArgs


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

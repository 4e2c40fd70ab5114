"""azcluster's Pulumi components: `from azcluster.components import Cluster, GpuPool` in any Pulumi program.

Names are imported on first use (module `__getattr__`), so importing the spec or the catalogue stays
light and never loads pulumi-azure-native.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Cluster": "azcluster.components.cluster",
    "ClusterSpecError": "azcluster.components.cluster",
    "GpuPool": "azcluster.components.gpu_pool",
    "GpuPoolArgs": "azcluster.components.gpu_pool",
    "LoginNode": "azcluster.components.login",
    "LoginNodeArgs": "azcluster.components.login",
    "ClusterNetwork": "azcluster.components.network",
    "ClusterNetworkArgs": "azcluster.components.network",
    "SharedStorage": "azcluster.components.storage",
    "SharedStorageArgs": "azcluster.components.storage",
    "NodeIdentity": "azcluster.components.identity",
    "ClusterSpec": "azcluster.components.spec",
    "PoolSpec": "azcluster.components.spec",
    "parse_cluster": "azcluster.components.spec",
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
    from .cluster import Cluster, ClusterSpecError
    from .gpu_pool import GpuPool, GpuPoolArgs
    from .identity import NodeIdentity
    from .login import LoginNode, LoginNodeArgs
    from .network import ClusterNetwork, ClusterNetworkArgs
    from .spec import ClusterSpec, PoolSpec, parse_cluster
    from .storage import SharedStorage, SharedStorageArgs


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

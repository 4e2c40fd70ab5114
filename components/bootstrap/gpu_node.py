"""The GPU nodes' first boot: one `#cloud-config` per InfiniBand island (scale set) of a pool.

What goes in, piece by piece (`PoolBoot.pieces`), within Azure's 64 KB of custom data:
- node: /etc/azcluster/node.env facts (cluster, pool, island, size, expected GPU/IB/NVMe counts),
  azc-lib.sh, and azc-prepare (check/repair the image's node preparation, NCCL environment; every boot);
- health: azc-health.timer (checks every 10 minutes) and azc-health-server (the endpoint the scale set's
  Application Health extension probes): bootstrap/health.py;
- gb-health (GB200/GB300 pools only): NVLink fabric, IMEX, XID and DCGM checks: bootstrap/gb_boot.py;
- mounts: Lustre, blob and shared-home services that retry in the background: bootstrap/mounts.py;
- slurm (scheduler: slurm): the island's slot range, the munge key and the service that joins Slurm at
  every boot: bootstrap/slurm_boot.py; in a cluster with NVLink domains (GB pools) the block claim and
  IMEX prolog: bootstrap/imex_boot.py;
- users (a shared home): the team's users applier and its timer, never the list: bootstrap/users_boot.py;
- metrics (monitoring on): the exporters and the Prometheus agent, installed in the background:
  bootstrap/metrics.py.

cloud-init runs it once per instance; the units make reboots, deallocation and re-images converge to the
same state. A pool's islands differ only in their number, and an island built on a stand-in size
(`capacity.island_stand_ins`) in that size's facts (GPUs, InfiniBand, NVMe, health checks): `PoolBoot`
gathers everything else once. It writes node.env (where the island is) last, so the islands of a pool's
own size share everything before it and gzip compresses that once per pool (document.py: `PrefixGzip`);
the header names the pool and the size, not the island.

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..capacity import island_size_name
from ..catalog import GpuSize, find_size
from ..elastic import scheduler
from ..spec import ClusterSpec, PoolSpec
from ..topology import IslandSlots, island_key, pool_island_slots
from .document import Piece, PrefixGzip, assemble, encode_custom_data, shared_prefix
from .gb_boot import gb_health_piece, is_rack_size
from .health import health_piece
from .imex_boot import imex_piece
from .metrics import ISLAND_PLACEHOLDER, MetricsValues, metrics_piece
from .mounts import NVME_MOUNT, StorageValues, lustre_client_package, mounts_piece
from .slurm_boot import SlurmBoot, slurm_env, slurm_node_piece
from .users_boot import users_piece

NODE_SCRIPTS = ("azc-lib.sh", "azc-prepare-node.sh")
NODE_UNITS = ("azc-prepare.service",)


def find_pool(spec: ClusterSpec, pool: PoolSpec | str) -> PoolSpec:
    if isinstance(pool, PoolSpec):
        return pool
    for candidate in spec.pools:
        if candidate.name == pool:
            return candidate
    raise ValueError(f"cluster {spec.name!r} has no pool {pool!r}")


def pool_size(pool: PoolSpec) -> GpuSize:
    size = find_size(pool.size)
    if size is None:
        raise ValueError(
            f"pool {pool.name!r}: size {pool.size!r} is not in azcluster's catalogue, so its node "
            "preparation is unknown (see `azcluster skus`)"
        )
    return size


def idle_watched(spec: ClusterSpec) -> bool:
    """Without a scheduler, the login node's idle watcher reads each node's GPU utilisation over the
    network (components/elastic.py), so the health endpoint listens on every address."""
    return spec.elastic_enabled and scheduler(spec) == "none"


@dataclass(frozen=True)
class PoolBoot:
    """Everything the islands of one pool boot with, gathered once from the spec, the catalogue and the
    deployment's values; `cloud_config(island)` renders one island's document."""

    spec: ClusterSpec
    pool: PoolSpec
    size: GpuSize
    islands: int
    health: Piece
    mounts: Piece
    slurm: SlurmBoot | None
    slots: tuple[IslandSlots, ...]
    slurm_env: dict[str, Any]
    stand_ins: dict[int, tuple[GpuSize, Piece, Piece]] = field(default_factory=dict)
    """Islands built on a stand-in size (capacity.island_stand_ins): that size, its health and mounts
    pieces (the health checks count its GPUs, the cache sits on its NVMe disks)."""
    metrics: MetricsValues | None = None

    @classmethod
    def gather(
        cls,
        spec: ClusterSpec,
        pool: PoolSpec | str,
        storage: StorageValues = StorageValues(),
        slurm: SlurmBoot | None = None,
        metrics: MetricsValues | None = None,
    ) -> PoolBoot:
        pool_spec = find_pool(spec, pool)
        size = pool_size(pool_spec)

        def size_pieces(built: GpuSize) -> tuple[Piece, Piece]:
            cache_root = f"{NVME_MOUNT}/blobfuse2-cache" if built.nvme_disks else "/mnt/blobfuse2-cache"
            client = None
            if storage.lustre_mgs_host:
                # Installed only if the image lacks mount.lustre: the build for the node's OS and
                # architecture.
                client = lustre_client_package(pool_spec.image or built.default_image, built.architecture)
            return health_piece(built.name, idle_watched(spec)), mounts_piece(
                spec, storage, cache_root, client
            )

        health, mounts = size_pieces(size)
        stand_ins: dict[int, tuple[GpuSize, Piece, Piece]] = {}
        for island in range(len(pool_spec.island_sizes())):
            name = island_size_name(pool_spec, island)
            if name.lower() != size.name.lower():
                built = find_size(name)
                if built is None:
                    raise ValueError(
                        f"pool {pool_spec.name!r} island {island}: stand-in size {name!r} is not in "
                        "azcluster's catalogue, so its node preparation is unknown (see `azcluster skus`)"
                    )
                stand_ins[island] = (built, *size_pieces(built))
        return cls(
            spec=spec,
            pool=pool_spec,
            size=size,
            islands=len(pool_spec.island_sizes()),
            health=health,
            mounts=mounts,
            slurm=slurm,
            slots=tuple(pool_island_slots(spec, pool_spec)) if slurm is not None else (),
            slurm_env=slurm_env(spec, slurm) if slurm is not None else {},
            stand_ins=stand_ins,
            metrics=metrics if spec.monitoring.enabled else None,
        )

    def size_of(self, island: int) -> GpuSize:
        """The size island `island` is built as (a stand-in, or the pool's)."""
        return self.stand_ins[island][0] if island in self.stand_ins else self.size

    def check_island(self, island: int) -> None:
        if not 0 <= island < self.islands:
            raise ValueError(f"pool {self.pool.name!r} has islands 0..{self.islands - 1}, not {island}")

    def header(self, island: int) -> str:
        """The same for every island of one size (the island's number is in node.env, written last)."""
        return (
            f"# azcluster node bootstrap: cluster {self.spec.name}, pool {self.pool.name} "
            f"({self.size_of(island).name}, profile {self.size_of(island).profile})"
        )

    def node_piece(self, island: int) -> Piece:
        size = self.size_of(island)
        ib = size.infiniband
        env: dict[str, Any] = {
            "AZC_ROLE": "compute",
            "AZC_CLUSTER": self.spec.name,
            "AZC_POOL": self.pool.name,
            "AZC_ISLAND": island,
            "AZC_ISLAND_KEY": island_key(self.pool.name, island),
            "AZC_SIZE": size.name,
            "AZC_PROFILE": size.profile,
            "AZC_GPU_VENDOR": size.gpu_vendor,
            "AZC_GPUS": size.gpus,
            "AZC_IB_PORTS": ib.ports if ib else 0,
            "AZC_IB_GBPS": ib.health_gbps if ib else 0,
            "AZC_NVME_DISKS": size.nvme_disks,
        }
        return Piece("node", env=env, scripts=NODE_SCRIPTS, units=NODE_UNITS, start=NODE_UNITS)

    def pieces(self, island: int) -> list[Piece]:
        """What one island's nodes get, in the order the document lists it."""
        health, mounts = (
            self.stand_ins[island][1:] if island in self.stand_ins else (self.health, self.mounts)
        )
        pieces = [self.node_piece(island), health, mounts]
        if (gb := gb_health_piece(self.size_of(island))) is not None:
            pieces.insert(2, gb)
        if self.slurm is not None:
            slots = self.slots[min(island, len(self.slots) - 1)]
            pieces.append(
                slurm_node_piece(self.spec, self.size_of(island), slots, self.slurm, self.slurm_env)
            )
            if (imex := imex_piece(self.spec, self.size_of(island))) is not None:
                pieces.append(imex)
        if (users := users_piece(self.spec)) is not None:
            pieces.append(users)
        if self.metrics is not None:
            pieces.append(self.metrics_piece(island))
        return pieces

    def metrics_piece(self, island: int) -> Piece:
        """The same for every island of one size: the island label comes from node.env at start."""
        size = self.size_of(island)
        piece = metrics_piece(
            cluster=self.spec.name,
            role="compute",
            gpu_vendor=size.gpu_vendor,
            scrape_interval_s=self.spec.monitoring.scrape_interval_seconds,
            values=self.metrics,
            pool=self.pool.name,
            island=ISLAND_PLACEHOLDER,
            architecture=size.architecture,
            rack=is_rack_size(size),
        )
        price = {"AZC_PRICE_USD_PER_HOUR": size.price.usd_per_hour}
        return Piece(**{**piece.__dict__, "env": {**piece.env, **price}})

    def cloud_config(self, island: int) -> str:
        """The `#cloud-config` document of one island's scale set."""
        self.check_island(island)
        return assemble(self.header(island), self.pieces(island), node_env_last=True)

    @cached_property
    def _gzip(self) -> PrefixGzip | None:
        """What the documents of the pool's own size share (those of its first and last such island:
        whatever pieces there are), compressed once; None below two such islands. A stand-in island's
        document starts differently and is compressed whole."""
        own = [island for island in range(self.islands) if island not in self.stand_ins]
        if len(own) < 2:
            return None
        first, last = (self.cloud_config(island).encode("utf-8") for island in (own[0], own[-1]))
        return PrefixGzip(shared_prefix(first, last))

    def custom_data(self, island: int) -> str:
        """customData of one island's scale set: the cloud-config, gzip'ed and base64-encoded; raises
        ValueError past Azure's 64 KB."""
        what = f"pool {self.pool.name!r} island {island}"
        return encode_custom_data(self.cloud_config(island), what, self._gzip)


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
    metrics: MetricsValues | None = None,
) -> str:
    """The `#cloud-config` document for the nodes of one IB island (scale set) of a pool.

    Storage arguments: see `StorageValues`; None leaves that mount out. slurm: with it (clusters with
    `scheduler: slurm`), the node joins Slurm by itself at every boot (azc-slurm-node.sh: claim a slot of
    its island, slurmd configless) and Slurm drains it while its health fails (azc-slurm-health.sh).
    """
    pool_spec = find_pool(spec, pool)
    islands = len(pool_spec.island_sizes())
    if not 0 <= island_index < islands:
        raise ValueError(f"pool {pool_spec.name!r} has islands 0..{islands - 1}, not {island_index}")
    storage = StorageValues(lustre_mgs_host, blob_account, blob_client_id, blob_endpoint, home_source)
    return PoolBoot.gather(spec, pool_spec, storage, slurm, metrics).cloud_config(island_index)


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

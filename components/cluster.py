"""Cluster: a whole GPU cluster composed from a ClusterSpec.

Network, the nodes' identity, shared storage, one GpuPool per pool and the login node. The spec goes
through the rules module first and a spec with error findings is refused, so a module user gets the same
checks as the CLI.

Dependencies are kept short on purpose: Managed Lustre can take many minutes to create, so nothing on the
compute side waits for it. The nodes get the plain DNS name the storage component fills in once the file
system exists (`SharedStorage.lustre_mount_host`), never the file system's own outputs, and mount it when
it resolves.
"""

from __future__ import annotations

from typing import Any

import pulumi
from typing_extensions import TypedDict

from .findings import Finding, sort_findings
from .spec import ClusterSpec

TYPE_TOKEN = "azcluster:index:Cluster"


class ClusterSpecError(ValueError):
    """The spec has error findings; `findings` holds them (the message lists them, one a line)."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        lines = [
            f"  {f.id} {f.path}: {f.message}" + (f" (hint: {f.hint})" if f.hint else "") for f in findings
        ]
        count = len(findings)
        super().__init__(
            f"the cluster spec has {count} error{'s' if count != 1 else ''}; nothing was created:\n"
            + "\n".join(lines)
        )


def check_spec(spec: ClusterSpec) -> list[Finding]:
    """The rules' findings for the spec (the spec's own `suppress:` list applies)."""
    from . import rules

    return sort_findings(rules.check(spec))


class ScaleSetInfo(TypedDict):
    """One InfiniBand island of a pool: one scale set."""

    island: int
    """Island index within the pool (0, 1, ...)."""
    nodes: int
    """Nodes in the island."""
    name: str
    """The scale set's Azure name."""
    id: str
    """The scale set's resource id."""


class Cluster(pulumi.ComponentResource):
    """Everything a cluster is, from one spec: network, identity, shared storage, GPU pools, login node.

    The outputs below are attributes (and, together, `outputs`); absent parts are None. Children:
    `network`, `identity`, `storage` (None without Lustre and blob), `home` (None when
    `storage.home.enabled` is false), `monitoring` (ClusterMonitoring; None unless `monitoring.enabled`),
    `accounting_db` (AccountingDatabase; None unless `slurm.accounting.database: mysql`),
    `pools` (by pool name), `login` (None when disabled), `power`
    (ElasticPower: the login node's power identity and role; None unless the spec is elastic).
    """

    resource_group_name: pulumi.Output[str]
    """Resource group that holds the cluster."""
    scale_sets: pulumi.Output[dict[str, list[ScaleSetInfo]]]
    """Per pool name, its islands in order: index, node count, scale set name and id."""
    login_private_ip: pulumi.Output[str] | None
    """Private IP of the login node (None without one)."""
    login_vm_id: pulumi.Output[str] | None
    """Resource id of the login VM, for `az network bastion ssh --target-resource-id`."""
    bastion_name: pulumi.Output[str] | None
    """Name of the Azure Bastion host (None without Bastion)."""
    lustre_mount_host: pulumi.Output[str] | None
    """DNS name the nodes mount Managed Lustre from (None without Lustre)."""
    lustre_mgs_address: pulumi.Output[str] | None
    """Managed Lustre's MGS address (None without Lustre)."""
    lustre_mount_command: pulumi.Output[str] | None
    """The mount command for Managed Lustre (None without Lustre)."""
    blob_account_name: pulumi.Output[str] | None
    """Name of the blob data account (None without one)."""
    elastic_client_id: pulumi.Output[str] | None
    """Client id of the login node's power identity (None unless the spec is elastic)."""
    grafana_endpoint: pulumi.Output[str] | None
    """URL of the cluster's Azure Managed Grafana (None without monitoring or with an existing Grafana)."""
    home_nfs_source: pulumi.Output[str] | None
    """What the nodes mount at the shared home, `<account>.file.core.windows.net:/<account>/home` (None
    when `storage.home.enabled` is false)."""

    def __init__(self, name: str, spec: ClusterSpec, opts: pulumi.ResourceOptions | None = None) -> None:
        errors = [f for f in check_spec(spec) if f.severity == "error"]
        if errors:
            raise ClusterSpecError(errors)
        from .gpu_pool import GpuPool, GpuPoolArgs
        from .identity import NodeIdentity, NodeIdentityArgs
        from .login import LoginNode, LoginNodeArgs
        from .network import ClusterNetwork, ClusterNetworkArgs

        super().__init__(TYPE_TOKEN, name, None, opts)
        self.spec = spec
        child = pulumi.ResourceOptions(parent=self)

        self.network = ClusterNetwork(f"{name}-net", ClusterNetworkArgs.from_spec(spec), opts=child)
        rg = self.network.resource_group_name
        self.identity = NodeIdentity(
            f"{name}-identity",
            NodeIdentityArgs(
                cluster_name=spec.name, resource_group_name=rg, location=spec.location, tags=dict(spec.tags)
            ),
            opts=child,
        )
        self.storage = self._storage(name, spec, child)
        self.home = self._home(name, spec, child)
        self.monitoring = self._monitoring(name, spec, child)
        self.accounting_db = self._accounting_db(name, spec, child)

        storage = self.storage
        # A DNS name the storage component fills in once Lustre exists: nodes never wait for the file system.
        lustre_host = storage.lustre_mount_host if storage is not None else None
        blob_name = storage.blob_account_name if storage is not None else None
        mounted_blob = blob_name if spec.storage.blob.mount else None
        home_source = self.home.nfs_source if self.home is not None else None
        node_storage = {
            "lustre_mount_host": lustre_host,
            "blob_account_name": mounted_blob,
            "identity_client_id": self.identity.client_id,
            "home_nfs_source": home_source,
            "metrics_write_url": self.monitoring.write_url if self.monitoring is not None else None,
        }

        # Slurm: one munge key per cluster (a secret in state, components/cluster_key.py) and the
        # controller's DNS name in the cluster's private zone; nodes and controller get both.
        self.munge_key = None
        slurm_args: dict[str, Any] = {}
        if spec.scheduler == "slurm":
            from .cluster_key import ClusterKey

            self.munge_key = ClusterKey(f"{name}-munge-key", opts=child)
            slurm_args = {"munge_key": self.munge_key.value, "dns_zone": self.network.cluster_dns_zone_name}

        self.pools: dict[str, GpuPool] = {}
        for pool in spec.pools:
            self.pools[pool.name] = GpuPool(
                f"{name}-{pool.name}",
                GpuPoolArgs.from_spec(
                    spec,
                    pool,
                    resource_group_name=rg,
                    subnet_id=self.network.subnet_ids["compute"],
                    identity_id=self.identity.id,
                    **node_storage,
                    **slurm_args,
                ),
                opts=child,
            )

        self.power = None
        if spec.elastic_enabled and spec.login.enabled:
            from .power import ElasticPower, ElasticPowerArgs

            self.power = ElasticPower(
                f"{name}-power",
                ElasticPowerArgs(spec.name, rg, spec.location, dict(spec.tags)),
                opts=child,
            )

        self.login: LoginNode | None = None
        if spec.login.enabled:
            self.login = LoginNode(
                f"{name}-login",
                LoginNodeArgs.from_spec(
                    spec,
                    resource_group_name=rg,
                    subnet_id=self.network.subnet_ids["login"],
                    identity_id=self.identity.id,
                    power=self.power,
                    accounting_db=self.accounting_db,
                    **node_storage,
                    **slurm_args,
                ),
                opts=child,
            )
        self.slurm_controller_record = None
        if self.login is not None and spec.scheduler == "slurm":
            self.slurm_controller_record = self._controller_record(name, rg, self.login.private_ip, child)

        self.outputs: dict[str, Any] = {
            "resource_group_name": rg,
            "scale_sets": {
                pool_name: [
                    {"island": island.index, "nodes": island.nodes, "name": set_name, "id": set_id}
                    for island, set_name, set_id in zip(
                        gpu_pool.islands, gpu_pool.scale_set_names, gpu_pool.scale_set_ids, strict=True
                    )
                ]
                for pool_name, gpu_pool in self.pools.items()
            },
            "login_private_ip": self.login.private_ip if self.login else None,
            "login_vm_id": self.login.vm_id if self.login else None,
            "bastion_name": self.network.bastion_name,
            "lustre_mount_host": lustre_host,
            "lustre_mgs_address": storage.lustre_mgs_address if storage is not None else None,
            "lustre_mount_command": storage.lustre_mount_command if storage is not None else None,
            "blob_account_name": blob_name,
            "elastic_client_id": self.power.client_id if self.power is not None else None,
            "home_nfs_source": home_source,
            "grafana_endpoint": self.monitoring.grafana_endpoint if self.monitoring is not None else None,
        }
        for output_name, value in self.outputs.items():
            setattr(self, output_name, value)
        self.register_outputs(self.outputs)

    def _monitoring(self, name: str, spec: ClusterSpec, child: pulumi.ResourceOptions) -> Any:
        if not spec.monitoring.enabled:
            return None
        from .monitoring import ClusterMonitoring, ClusterMonitoringArgs

        return ClusterMonitoring(
            f"{name}-monitoring",
            ClusterMonitoringArgs.from_spec(spec, self.network, self.identity),
            opts=child,
        )

    def _accounting_db(self, name: str, spec: ClusterSpec, child: pulumi.ResourceOptions) -> Any:
        """slurmdbd's MySQL flexible server (`slurm.accounting.database: mysql`), else None (MariaDB on the
        login node, or no accounting)."""
        if not spec.uses_mysql_accounting:
            return None
        from .accounting_db import AccountingDatabase, AccountingDatabaseArgs

        return AccountingDatabase(
            f"{name}-slurmdb", AccountingDatabaseArgs.from_spec(spec, self.network), opts=child
        )

    def _home(self, name: str, spec: ClusterSpec, child: pulumi.ResourceOptions) -> Any:
        if not spec.storage.home.enabled:
            return None
        from .home import SharedHome, SharedHomeArgs

        return SharedHome(f"{name}-home", SharedHomeArgs.from_spec(spec, self.network), opts=child)

    def _controller_record(
        self, name: str, rg: pulumi.Input[str], address: pulumi.Input[str], child: pulumi.ResourceOptions
    ) -> Any:
        """`slurmctld.<zone>` -> the login node's private IP: nodes find the controller by name (their
        `slurmd --conf-server`), so a new login IP never needs a change on the nodes."""
        from pulumi_azure_native import privatedns

        from .bootstrap.slurm import CONTROLLER_RECORD

        return privatedns.PrivateRecordSet(
            f"{name}-slurmctld-dns",
            private_zone_name=self.network.cluster_dns_zone_name,
            relative_record_set_name=CONTROLLER_RECORD,
            record_type="A",
            resource_group_name=rg,
            ttl=60,
            a_records=[privatedns.ARecordArgs(ipv4_address=address)],
            opts=child,
        )

    def _storage(self, name: str, spec: ClusterSpec, child: pulumi.ResourceOptions) -> Any:
        lustre = spec.storage.lustre
        if not ((lustre is not None and lustre.enabled) or spec.storage.blob.enabled):
            return None
        from .storage import SharedStorage, SharedStorageArgs

        return SharedStorage(
            f"{name}-storage", SharedStorageArgs.from_spec(spec, self.network, self.identity), opts=child
        )

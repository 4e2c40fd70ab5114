"""LoginNode: the small VM people log in to, on the cluster's private network.

It has no public IP: people reach it through Azure Bastion or their own network (VPN, peering). It uses
the same admin user and SSH keys as the GPU nodes, with password authentication off, and the nodes'
managed identity, so its mounts (Lustre, blob) work the same way theirs do. Its cloud-init (from
azcluster.components.bootstrap) adds the same mounts and the cluster's hostfiles per InfiniBand island.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_azure_native import compute, network

from . import bootstrap
from .gpu_pool import OS_DISK_STORAGE, check_custom_data, linux_configuration
from .images import image_reference, purchase_plan
from .placement import cluster_zone, zones_for
from .spec import LOGIN_DEFAULT_SIZE, ClusterSpec, ImagePlan, LoginSpec
from .tags import ROLE_LOGIN, cluster_tags

TYPE_TOKEN = "azcluster:index:LoginNode"
VM_NAME_MAX = 64
"""Azure's limit on a Linux VM's name (and its computer name)."""


@dataclass
class LoginNodeArgs:
    """What a LoginNode needs."""

    cluster_name: str
    location: str
    resource_group_name: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    """The login subnet; the NIC gets a private address only."""
    identity_id: pulumi.Input[str]
    """Resource id of the user-assigned managed identity (the nodes' identity)."""
    admin_username: str = "azureuser"
    ssh_public_keys: list[str] = field(default_factory=list)
    size: str = LOGIN_DEFAULT_SIZE
    image: str = LoginSpec.model_fields["image"].default
    image_plan: ImagePlan | None = None
    """Purchase plan of the image; None: derived from the URN where the catalogue says one is needed."""
    os_disk_gb: int = 64
    custom_data: pulumi.Input[str] | None = None
    """Base64 cloud-init; `from_spec` renders it with bootstrap.LoginBoot."""
    zone: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    accelerated_networking: bool = False
    """On when the login node mounts Managed Lustre (`from_spec` does that): Microsoft asks for accelerated
    networking on every Lustre client ("enable accelerated networking on all client VMs",
    learn.microsoft.com/azure/azure-managed-lustre/connect-clients), and turning it on later needs a
    deallocation. Off otherwise: not every small size supports it (the default D-series v5 sizes do)."""
    extra_identity_ids: list[pulumi.Input[str]] = field(default_factory=list)
    """More user-assigned identities for the login VM only (the elastic power identity)."""

    @classmethod
    def from_spec(
        cls,
        spec: ClusterSpec,
        *,
        resource_group_name: pulumi.Input[str],
        subnet_id: pulumi.Input[str],
        identity_id: pulumi.Input[str],
        lustre_mount_host: pulumi.Input[str] | None = None,
        blob_account_name: pulumi.Input[str] | None = None,
        identity_client_id: pulumi.Input[str] | None = None,
        power: Any = None,
        home_nfs_source: pulumi.Input[str] | None = None,
        munge_key: pulumi.Input[str] | None = None,
        dns_zone: str | None = None,
        metrics_write_url: pulumi.Input[str] | None = None,
        accounting_db: Any = None,
    ) -> LoginNodeArgs:
        """Args for the spec's login node, with cloud-init from the bootstrap module (same mounts as the
        GPU nodes; see GpuPoolArgs.from_spec for the storage arguments). `power`: the cluster's
        ElasticPower when the spec is elastic; its identity is added and the power programs installed.
        Given `munge_key` (the cluster's key, a secret) and `dns_zone` (its private zone), as Cluster
        does with `scheduler: slurm`, the login node is the Slurm controller; `accounting_db` (the
        cluster's AccountingDatabase, with `slurm.accounting.database: mysql`) is where slurmdbd stores.
        `metrics_write_url` (the data collection rule's remote-write URL; None: no metrics) with
        `identity_client_id`: the node sends its metrics (and Slurm's) there as that identity
        (bootstrap/metrics.py)."""
        return cls(
            cluster_name=spec.name,
            location=spec.location,
            resource_group_name=resource_group_name,
            subnet_id=subnet_id,
            identity_id=identity_id,
            admin_username=spec.ssh.admin_username,
            ssh_public_keys=list(spec.ssh.public_keys),
            size=spec.login.size,
            image=spec.login.image,
            image_plan=spec.login.image_plan,
            custom_data=_login_custom_data(
                spec,
                lustre_mount_host,
                blob_account_name,
                identity_client_id,
                power,
                home_nfs_source,
                munge_key,
                dns_zone,
                metrics_write_url,
                accounting_db,
            ),
            zone=cluster_zone(spec).zone,
            tags=dict(spec.tags),
            extra_identity_ids=[power.identity_id] if power is not None else [],
            accelerated_networking=lustre_mount_host is not None,
        )


def _login_custom_data(
    spec: ClusterSpec,
    lustre_host: pulumi.Input[str] | None,
    blob_account: pulumi.Input[str] | None,
    client_id: pulumi.Input[str] | None,
    power: Any = None,
    home_source: pulumi.Input[str] | None = None,
    munge_key: pulumi.Input[str] | None = None,
    dns_zone: str | None = None,
    metrics_url: pulumi.Input[str] | None = None,
    accounting_db: Any = None,
) -> pulumi.Input[str]:
    metrics_client = client_id if metrics_url is not None else None
    if blob_account is None:
        client_id = None
    subscription = power.subscription_id if power is not None else None
    power_client = power.client_id if power is not None else None
    db_host = accounting_db.host if accounting_db is not None else None
    db_password = accounting_db.password if accounting_db is not None else None
    db_user = accounting_db.user if accounting_db is not None else None

    def encode(values: list[Any]) -> str:
        host, account, client, sub, power_id, home, key, url, metrics_id, server, password = values
        storage = bootstrap.StorageValues(host, account, client, home_source=home)
        metrics = bootstrap.MetricsValues(url, metrics_id) if url and metrics_id else None
        db = bootstrap.AccountingServer(server, db_user, password) if server and password else None
        boot = bootstrap.LoginBoot.for_cluster(
            spec,
            storage,
            power_subscription=sub,
            power_client_id=power_id,
            munge_key=key,
            dns_zone=dns_zone,
            metrics=metrics,
            accounting_server=db,
        )
        return boot.custom_data()

    values = [
        lustre_host,
        blob_account,
        client_id,
        subscription,
        power_client,
        home_source,
        munge_key,
        metrics_url,
        metrics_client,
        db_host,
        db_password,
    ]
    if any(isinstance(value, pulumi.Output) for value in values):
        return pulumi.Output.all(*values).apply(encode)
    return encode(values)


class LoginNode(pulumi.ComponentResource):
    """One VM with a private NIC in the login subnet. Output: `private_ip`."""

    private_ip: pulumi.Output[str]

    def __init__(self, name: str, args: LoginNodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        vm_name = f"{args.cluster_name}-login"
        if len(vm_name) > VM_NAME_MAX:
            raise ValueError(f"login VM name {vm_name!r} is longer than Azure's {VM_NAME_MAX} characters")
        if not args.ssh_public_keys:
            raise ValueError(
                "login node: no SSH public keys; password authentication is off, so nobody could log in. "
                "Add keys under ssh.public_keys."
            )
        if isinstance(args.custom_data, str):
            check_custom_data(args.custom_data, "login node")
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = cluster_tags(args.cluster_name, ROLE_LOGIN, args.tags)

        self.nic = network.NetworkInterface(
            f"{name}-nic",
            resource_group_name=args.resource_group_name,
            network_interface_name=f"{vm_name}-nic",
            location=args.location,
            enable_accelerated_networking=args.accelerated_networking,
            ip_configurations=[
                {
                    "name": "ipconfig0",
                    "primary": True,
                    "private_ip_allocation_method": "Dynamic",
                    "subnet": {"id": args.subnet_id},
                }
            ],
            tags=tags,
            opts=child,
        )

        os_profile: dict[str, Any] = {
            "computer_name": vm_name,
            "admin_username": args.admin_username,
            "linux_configuration": linux_configuration(args.admin_username, args.ssh_public_keys),
        }
        if args.custom_data is not None:
            os_profile["custom_data"] = args.custom_data
        vm_args: dict[str, Any] = {}
        zones = zones_for(args.location, args.zone)  # never in a region without zones (placement.py)
        if zones:
            vm_args["zones"] = zones
        plan = purchase_plan(args.image, args.image_plan)
        if plan:
            vm_args["plan"] = plan

        self.vm = compute.VirtualMachine(
            f"{name}-vm",
            resource_group_name=args.resource_group_name,
            vm_name=vm_name,
            location=args.location,
            hardware_profile={"vm_size": args.size},
            os_profile=os_profile,
            storage_profile={
                "image_reference": image_reference(args.image),
                "os_disk": {
                    "create_option": "FromImage",
                    "caching": "ReadWrite",
                    "managed_disk": {"storage_account_type": OS_DISK_STORAGE},
                    "disk_size_gb": args.os_disk_gb,
                    "delete_option": "Delete",
                },
            },
            network_profile={"network_interfaces": [{"id": self.nic.id, "primary": True}]},
            identity={
                "type": "UserAssigned",
                "user_assigned_identities": [args.identity_id, *args.extra_identity_ids],
            },
            diagnostics_profile={"boot_diagnostics": {"enabled": True}},
            tags=tags,
            opts=child,
            **vm_args,
        )
        self.private_ip = self.nic.ip_configurations.apply(_first_private_ip)
        self.vm_id = self.vm.id
        self.register_outputs({"private_ip": self.private_ip, "vm_id": self.vm_id})


def _first_private_ip(configs: Any) -> str | None:
    for config in configs or []:
        address = config.get("private_ip_address") if isinstance(config, dict) else config.private_ip_address
        if address:
            return address
    return None

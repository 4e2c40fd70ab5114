"""ElasticPower: the login node's own identity, allowed to switch this cluster's GPU nodes on and off.

The power programs (components/elastic.py) run on the login node. They get their token from a
user-assigned identity that only the login node carries, not from the nodes' shared identity, so a job
on a GPU node cannot power nodes. The identity holds one custom role whose actions are exactly
`elastic.ROLE_ACTIONS` (read scale sets and their VMs, start, deallocate), assignable to and assigned at
the cluster's resource group only: never Contributor, never the subscription.

Names are deterministic (UUID5 of subscription, resource group and cluster), so a re-run finds the same
role definition and assignment instead of failing with `RoleDefinitionWithSameNameExists` or
`RoleAssignmentExists`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, managedidentity

from .elastic import ROLE_ACTIONS, ROLE_NAME_PREFIX
from .identity import role_definition_id
from .tags import cluster_tags

TYPE_TOKEN = "azcluster:index:ElasticPower"
POWER_NAMESPACE = uuid.UUID("3f0b8c1e-5a7d-4e2b-9c61-0d4e8a2f7b55")
_RESOURCE_GROUP_ID = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+$", re.IGNORECASE)


def resource_group_id(subscription_id: str, resource_group: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"


def require_resource_group_scope(scope: str) -> str:
    """The power role is granted on one resource group: refuse a subscription or anything else."""
    if not _RESOURCE_GROUP_ID.match(scope):
        raise ValueError(f"elastic power role scope {scope!r} is not exactly one resource group")
    return scope


def power_role_guid(subscription_id: str, resource_group: str, cluster: str) -> str:
    key = f"{subscription_id.lower()}|{resource_group.lower()}|{cluster.lower()}|elastic-power"
    return str(uuid.uuid5(POWER_NAMESPACE, key))


def power_role_name(subscription_id: str, resource_group: str, cluster: str) -> str:
    """Custom role names are unique in a tenant: the name carries cluster, group and subscription."""
    return f"{ROLE_NAME_PREFIX} {cluster} ({resource_group}, {subscription_id})"


@dataclass
class ElasticPowerArgs:
    cluster_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str] = field(default_factory=dict)


class ElasticPower(pulumi.ComponentResource):
    """Outputs: `identity_id` (for the login VM's userAssignedIdentities), `client_id` (what the programs
    ask IMDS for), `role_definition_id`."""

    identity_id: pulumi.Output[str]
    client_id: pulumi.Output[str]

    def __init__(self, name: str, args: ElasticPowerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster_name
        subscription = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).subscription_id
        self.subscription_id = subscription
        scope = pulumi.Output.all(subscription, args.resource_group_name).apply(
            lambda v: require_resource_group_scope(resource_group_id(v[0], v[1]))
        )
        guid = pulumi.Output.all(subscription, args.resource_group_name).apply(
            lambda v: power_role_guid(v[0], v[1], cluster)
        )
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-uami",
            resource_name_=f"{cluster}-power",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=cluster_tags(cluster, "identity", args.tags),
            opts=child,
        )
        self.role = authorization.RoleDefinition(
            f"{name}-role",
            scope=scope,
            role_definition_id=guid,
            role_name=pulumi.Output.all(subscription, args.resource_group_name).apply(
                lambda v: power_role_name(v[0], v[1], cluster)
            ),
            description=f"azcluster: start and deallocate the GPU nodes of cluster {cluster}, nothing else",
            role_type="CustomRole",
            permissions=[{"actions": list(ROLE_ACTIONS), "not_actions": []}],
            assignable_scopes=[scope],
            opts=child,
        )
        definition_id = pulumi.Output.all(subscription, guid).apply(lambda v: role_definition_id(v[0], v[1]))
        self.assignment = authorization.RoleAssignment(
            f"{name}-assignment",
            scope=scope,
            principal_id=self.identity.principal_id,
            principal_type=authorization.PrincipalType.SERVICE_PRINCIPAL,
            role_definition_id=definition_id,
            role_assignment_name=pulumi.Output.all(scope, guid).apply(
                lambda v: str(uuid.uuid5(POWER_NAMESPACE, f"{v[0].lower()}|{v[1]}|assignment"))
            ),
            description=f"azcluster: the login node of {cluster} powers its GPU nodes",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role]),
        )
        self.identity_id = self.identity.id
        self.client_id = self.identity.client_id
        self.role_definition_id = definition_id
        self.register_outputs(
            {
                "identity_id": self.identity_id,
                "client_id": self.client_id,
                "role_definition_id": definition_id,
            }
        )

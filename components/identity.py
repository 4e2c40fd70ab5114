"""The nodes' managed identity, and role assignments that give a principal one role on one resource.

Nodes reach the blob data account with a user-assigned managed identity (BlobFuse2 `mode: msi`), never with
account keys. The identity gets exactly the data-plane role it needs, scoped to that one storage account:
never the resource group or the subscription.

Role assignments are named deterministically (a UUID5 of scope, principal and role), so a re-run or a
re-import finds the same assignment instead of failing with `RoleAssignmentExists`.

The role definition id is built from the built-in role's GUID and the deployment's subscription, read
through the invoke `azure-native:authorization:getClientConfig` (offline mocks must answer it with a
`subscriptionId`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import authorization, managedidentity

from .tags import cluster_tags

# Built-in role GUIDs, the same in every tenant.
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
BUILTIN_ROLES: dict[str, str] = {
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Account Contributor": "17d1049b-9a84-46fb-8f53-869881c3d3ab",
    # built-in-roles/monitor: publish metrics to a data collection rule; read a workspace's metrics
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Monitoring Data Reader": "b0d8363b-8ddd-447d-831f-62ca05bff136",
    "Grafana Admin": "22926164-76b3-42b3-bc55-97df8dab3e41",
}

# Fixed namespace for role assignment names: uuid5(namespace, "scope|principal|role").
ROLE_ASSIGNMENT_NAMESPACE = uuid.UUID("6f1c3a52-2b0e-4d43-9a55-8c3b7f0e1a11")


def role_guid(role: str) -> str:
    """A built-in role's GUID from its name, or the GUID itself when one is given."""
    if role in BUILTIN_ROLES:
        return BUILTIN_ROLES[role]
    try:
        return str(uuid.UUID(role))
    except ValueError:
        known = ", ".join(sorted(BUILTIN_ROLES))
        raise ValueError(f"unknown role {role!r}: give a role GUID or one of: {known}") from None


def role_definition_id(subscription_id: str, guid: str) -> str:
    """The subscription-scoped id ARM expects for a built-in role definition."""
    return f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def require_resource_scope(scope: str) -> str:
    """Refuse a subscription, resource group or management group as a role scope: one resource only."""
    if "/providers/" not in scope or scope.lower().startswith("/providers/microsoft.management/"):
        raise ValueError(
            f"role assignment scope {scope!r} is not a single resource: azcluster grants roles "
            "on one resource (e.g. a storage account), never a subscription or resource group"
        )
    return scope


def role_assignment_name(scope: str, principal_id: str, guid: str) -> str:
    """Deterministic GUID for one (scope, principal, role); ARM ids are case-insensitive, so is this."""
    key = f"{scope.lower()}|{principal_id.lower()}|{guid.lower()}"
    return str(uuid.uuid5(ROLE_ASSIGNMENT_NAMESPACE, key))


def assign_role(
    resource_name: str,
    *,
    scope: pulumi.Input[str],
    principal_id: pulumi.Input[str],
    role: str,
    principal_type: str = "ServicePrincipal",
    opts: pulumi.ResourceOptions | None = None,
) -> authorization.RoleAssignment:
    """Give a principal one role on exactly `scope`.

    `principal_type` is ServicePrincipal (managed identities included, the default), User or Group: it
    must match the principal, or Azure refuses the assignment (UnmatchedPrincipalType).

    `scope` must be one resource's id (a storage account, a container); a subscription or resource group
    scope fails the deployment with a clear message (checked when the id is known).
    """
    guid = role_guid(role)
    subscription_id = authorization.get_client_config_output(
        opts=pulumi.InvokeOutputOptions(parent=opts.parent if opts else None)
    ).subscription_id
    return authorization.RoleAssignment(
        resource_name,
        scope=pulumi.Output.from_input(scope).apply(require_resource_scope),
        principal_id=principal_id,
        principal_type=principal_type,
        role_definition_id=subscription_id.apply(lambda sub: role_definition_id(sub, guid)),
        role_assignment_name=pulumi.Output.all(scope, principal_id).apply(
            lambda values: role_assignment_name(values[0], values[1], guid)
        ),
        description=f"azcluster: {role if role in BUILTIN_ROLES else guid} on this resource only",
        opts=opts,
    )


@dataclass
class NodeIdentityArgs:
    """Inputs of NodeIdentity."""

    cluster_name: str
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str] = field(default_factory=dict)


class NodeIdentity(pulumi.ComponentResource):
    """A user-assigned managed identity shared by the cluster's nodes.

    Outputs: `id` (resource id, for a VM/scale set `identity.userAssignedIdentities`), `principal_id`
    (object id, for role assignments), `client_id` (what BlobFuse2 / azure-identity on the node ask for).
    """

    id: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    client_id: pulumi.Output[str]

    def __init__(self, name: str, args: NodeIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("azcluster:index:NodeIdentity", name, None, opts)
        self._name = name
        self._grants = 0
        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-uami",
            resource_name_=f"{args.cluster_name}-nodes",
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=cluster_tags(args.cluster_name, "identity", args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id = self.identity.id
        self.principal_id = self.identity.principal_id
        self.client_id = self.identity.client_id
        self.register_outputs({"id": self.id, "principal_id": self.principal_id, "client_id": self.client_id})

    def grant_blob_data(
        self,
        account_id: pulumi.Input[str],
        role: str = "Storage Blob Data Contributor",
        *,
        name: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> authorization.RoleAssignment:
        """Give this identity a blob data role on ONE storage account (scope = that account's id).

        `name` is the Pulumi logical name (default: derived from this component's name); `opts` lets the
        caller parent the assignment under its own component (default parent: this identity).
        """
        if name is None:
            self._grants += 1
            name = f"{self._name}-blob-data-{self._grants}"
        options = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self), opts)
        return assign_role(name, scope=account_id, principal_id=self.principal_id, role=role, opts=options)

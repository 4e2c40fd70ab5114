"""NodeIdentity and role assignments: one role, one resource, deterministic names."""

from __future__ import annotations

import uuid

import pytest

from azcluster import mockrun as harness
from azcluster.components.identity import (
    BUILTIN_ROLES,
    NodeIdentity,
    NodeIdentityArgs,
    require_resource_scope,
    role_assignment_name,
    role_definition_id,
    role_guid,
)

ACCOUNT_ID = (
    f"/subscriptions/{harness.MOCK_SUBSCRIPTION}/resourceGroups/demo-rg"
    "/providers/Microsoft.Storage/storageAccounts/demodata"
)
BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"


def build(grants=(("Storage Blob Data Contributor", None),)):
    def program():
        identity = NodeIdentity("ident", NodeIdentityArgs("demo", "demo-rg", "eastus", {"team": "ml"}))
        for role, name in grants:
            identity.grant_blob_data(ACCOUNT_ID, role, name=name)
        return {"id": identity.id, "principal": identity.principal_id, "client": identity.client_id}

    return harness.run(program)


@pytest.fixture(scope="module")
def default():
    return build()


def test_role_guids_are_the_built_in_ones():
    assert role_guid("Storage Blob Data Contributor") == BLOB_DATA_CONTRIBUTOR
    assert BUILTIN_ROLES["Storage Account Contributor"] == "17d1049b-9a84-46fb-8f53-869881c3d3ab"
    assert role_guid(BLOB_DATA_CONTRIBUTOR.upper()) == BLOB_DATA_CONTRIBUTOR
    with pytest.raises(ValueError, match="unknown role 'Owner'"):
        role_guid("Owner")
    assert (
        role_definition_id("sub", "g")
        == "/subscriptions/sub/providers/Microsoft.Authorization/roleDefinitions/g"
    )


def test_role_assignment_names_are_stable_guids():
    name = role_assignment_name(ACCOUNT_ID, "p1", BLOB_DATA_CONTRIBUTOR)
    assert uuid.UUID(name).version == 5
    assert name == role_assignment_name(ACCOUNT_ID.upper(), "P1", BLOB_DATA_CONTRIBUTOR)
    others = {
        role_assignment_name(ACCOUNT_ID + "x", "p1", BLOB_DATA_CONTRIBUTOR),
        role_assignment_name(ACCOUNT_ID, "p2", BLOB_DATA_CONTRIBUTOR),
        role_assignment_name(ACCOUNT_ID, "p1", BUILTIN_ROLES["Storage Blob Data Reader"]),
    }
    assert name not in others and len(others) == 3


def test_identity_is_user_assigned_tagged_and_exposes_its_ids(default):
    identity = default.one("managedidentity:UserAssignedIdentity")
    assert identity.inputs["resourceName"] == "demo-nodes"
    assert identity.inputs["resourceGroupName"] == "demo-rg"
    assert identity.inputs["tags"] == {
        "team": "ml",
        "azcluster-cluster": "demo",
        "azcluster-role": "identity",
    }
    assert identity.parent == default.one("azcluster:index:NodeIdentity").urn
    assert default.value == {
        "id": identity.id,
        "principal": identity.outputs["principalId"],
        "client": identity.outputs["clientId"],
    }


def test_blob_grant_is_scoped_to_the_account_only(default):
    identity = default.one("managedidentity:UserAssignedIdentity")
    (assignment,) = default.of_type("authorization:RoleAssignment")
    assert assignment.inputs["scope"] == ACCOUNT_ID
    assert assignment.inputs["roleDefinitionId"] == (
        f"/subscriptions/{harness.MOCK_SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{BLOB_DATA_CONTRIBUTOR}"
    )
    assert assignment.inputs["principalId"] == identity.outputs["principalId"]
    assert assignment.inputs["principalType"] == "ServicePrincipal"
    assert assignment.inputs["roleAssignmentName"] == role_assignment_name(
        ACCOUNT_ID, identity.outputs["principalId"], BLOB_DATA_CONTRIBUTOR
    )
    assert default.depends_on(assignment, identity)
    assert assignment.parent == default.one("azcluster:index:NodeIdentity").urn


def test_each_grant_is_its_own_resource():
    capture = build(
        grants=(
            ("Storage Blob Data Contributor", None),
            ("Storage Blob Data Reader", None),
            ("Storage Blob Data Owner", "mine"),
        )
    )
    assignments = capture.of_type("authorization:RoleAssignment")
    assert sorted(a.name for a in assignments) == ["ident-blob-data-1", "ident-blob-data-2", "mine"]
    assert len({a.inputs["roleAssignmentName"] for a in assignments}) == 3
    assert {a.inputs["scope"] for a in assignments} == {ACCOUNT_ID}


def test_subscription_or_group_scopes_are_refused():
    assert require_resource_scope(ACCOUNT_ID) == ACCOUNT_ID
    for scope in (
        f"/subscriptions/{harness.MOCK_SUBSCRIPTION}",
        f"/subscriptions/{harness.MOCK_SUBSCRIPTION}/resourceGroups/demo-rg",
        "/providers/Microsoft.Management/managementGroups/root",
    ):
        with pytest.raises(ValueError, match="not a single resource"):
            require_resource_scope(scope)

    def program():
        identity = NodeIdentity("ident", NodeIdentityArgs("demo", "demo-rg", "eastus"))
        identity.grant_blob_data(f"/subscriptions/{harness.MOCK_SUBSCRIPTION}/resourceGroups/demo-rg")

    with pytest.raises(Exception, match="not a single resource"):
        harness.run(program)

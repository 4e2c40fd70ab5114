"""SharedStorage under Pulumi mocks: blob security, private endpoint, roles, Lustre, the data rule."""

from __future__ import annotations

import re

import pytest

from azcluster import mockrun as harness
from azcluster.components.identity import BUILTIN_ROLES, NodeIdentity, NodeIdentityArgs
from azcluster.components.network import ClusterNetwork, ClusterNetworkArgs
from azcluster.components.spec import BlobSpec, LustreSpec, parse_cluster
from azcluster.components.storage import (
    HPC_CACHE_RP_APP_ID,
    SharedStorage,
    SharedStorageArgs,
    lustre_mount_command,
    storage_account_name,
)

RP_OBJECT_ID = "99999999-0000-4000-8000-000000000099"


def make_spec(storage=None, **cluster):
    base = {
        "name": "demo",
        "tags": {"team": "ml"},
        "pools": [{"name": "gpu", "size": "Standard_ND96isr_H100_v5", "nodes": 16}],
        "storage": storage
        if storage is not None
        else {"blob": {"enabled": True}, "lustre": {"capacity_tib": 16}},
    }
    base.update(cluster)
    return parse_cluster({"azcluster:cluster": base, "azure-native:location": "eastus"})


def build(spec=None, with_identity=True, **overrides):
    spec = spec or make_spec()
    holder = {}

    def program():
        net = ClusterNetwork("net", ClusterNetworkArgs.from_spec(spec))
        identity = NodeIdentity("ident", NodeIdentityArgs(spec.name, net.resource_group_name, spec.location))
        args = SharedStorageArgs.from_spec(spec, net, identity if with_identity else None)
        for key, value in overrides.items():
            setattr(args, key, value)
        args.__post_init__()
        shared = SharedStorage("data", args)
        holder.update(storage=shared, net=net, identity=identity)
        return {
            "account": shared.blob_account_name,
            "account_id": shared.blob_account_id,
            "mgs": shared.lustre_mgs_address,
            "lustre_id": shared.lustre_id,
            "endpoints": net.subnet_ids["endpoints"],
            "blob_zone": net.blob_dns_zone_id,
        }

    capture = harness.run(program)
    return capture, holder


@pytest.fixture(scope="module")
def default():
    return build()


@pytest.fixture(scope="module")
def hsm():
    spec = make_spec(
        zone="3",
        storage={
            "blob": {"enabled": True, "containers": ["data", "ckpt"]},
            "lustre": {
                "capacity_tib": 16,
                "import_container": "datasets",
                "provider_principal_id": RP_OBJECT_ID,
            },
        },
    )
    return build(spec)  # the principal reaches the grants from the spec, through from_spec


def test_blob_account_is_private_https_only_and_keyless(default):
    capture, _ = default
    account = capture.one("storage:StorageAccount")
    inputs = account.inputs
    assert inputs["kind"] == "StorageV2"
    assert inputs["sku"] == {"name": "Standard_LRS"}
    assert inputs["isHnsEnabled"] is True
    assert inputs["enableHttpsTrafficOnly"] is True
    assert inputs["minimumTlsVersion"] == "TLS1_2"
    assert inputs["allowBlobPublicAccess"] is False
    assert inputs["publicNetworkAccess"] == "Disabled"
    assert inputs["allowSharedKeyAccess"] is False
    assert inputs["networkRuleSet"]["defaultAction"] == "Deny"
    assert inputs["tags"] == {"team": "ml", "azcluster-cluster": "demo", "azcluster-role": "blob"}


def test_account_name_is_valid_deterministic_and_salted(default):
    capture, _ = default
    name = capture.one("storage:StorageAccount").inputs["accountName"]
    assert re.fullmatch(r"[a-z0-9]{3,24}", name) and name.startswith("demo")
    assert name == storage_account_name("demo", f"{harness.MOCK_SUBSCRIPTION}/eastus")
    assert capture.value["account"] == name
    assert storage_account_name("demo", "other-sub/eastus") != name
    long = storage_account_name("A-Very-Long-Cluster-Name-Indeed", "s")
    assert re.fullmatch(r"[a-z0-9]{24}", long)
    assert re.fullmatch(r"azc[0-9a-f]{8}", storage_account_name("---", "s"))


def test_containers_are_private(default):
    capture, _ = default
    (container,) = capture.of_type("storage:BlobContainer")
    assert container.inputs["containerName"] == "data"
    assert container.inputs["publicAccess"] == "None"
    assert container.inputs["accountName"] == capture.value["account"]


def test_private_endpoint_targets_blob_in_the_endpoints_subnet(default):
    capture, _ = default
    endpoint = capture.one("network:PrivateEndpoint")
    (connection,) = endpoint.inputs["privateLinkServiceConnections"]
    assert connection["groupIds"] == ["blob"]
    assert connection["privateLinkServiceId"] == capture.value["account_id"]
    assert endpoint.inputs["subnet"]["id"] == capture.value["endpoints"]
    group = capture.one("network:PrivateDnsZoneGroup")
    assert group.inputs["privateEndpointName"] == endpoint.outputs["name"]
    assert group.inputs["privateDnsZoneConfigs"] == [
        {"name": "blob", "privateDnsZoneId": capture.value["blob_zone"]}
    ]


def test_nodes_get_blob_data_contributor_on_the_account_only(default):
    capture, holder = default
    (assignment,) = capture.of_type("authorization:RoleAssignment")
    identity = capture.one("managedidentity:UserAssignedIdentity")
    assert assignment.inputs["scope"] == capture.value["account_id"]
    assert "/storageAccounts/" in assignment.inputs["scope"]
    assert assignment.inputs["roleDefinitionId"].endswith(
        "/roleDefinitions/ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    )
    assert assignment.inputs["roleDefinitionId"].startswith(f"/subscriptions/{harness.MOCK_SUBSCRIPTION}/")
    assert assignment.inputs["principalId"] == identity.outputs["principalId"]
    assert assignment.parent == capture.one("azcluster:index:SharedStorage").urn


def test_data_resources_are_protected_and_retained(default):
    capture, _ = default
    data = [
        capture.one("storage:StorageAccount"),
        capture.one("storagecache:AmlFilesystem"),
        *capture.of_type("storage:BlobContainer"),
    ]
    assert all(r.protect and r.retain_on_delete for r in data)
    others = [
        r
        for r in capture.resources
        if r.custom and r not in data and r.type != "azure-native:resources:ResourceGroup"
    ]
    assert not any(r.protect for r in others)


def test_protection_can_be_turned_off_for_delete_data():
    capture, _ = build(protect_data=False, retain_data=False)
    for resource in (capture.one("storage:StorageAccount"), capture.one("storagecache:AmlFilesystem")):
        assert not resource.protect and not resource.retain_on_delete


def test_lustre_file_system_settings(default):
    capture, holder = default
    lustre = capture.one("storagecache:AmlFilesystem")
    inputs = lustre.inputs
    assert inputs["amlFilesystemName"] == "demo-lustre"
    assert re.fullmatch(r"[0-9a-zA-Z][-0-9a-zA-Z_]{0,78}[0-9a-zA-Z]", inputs["amlFilesystemName"])
    assert inputs["sku"] == {"name": "AMLFS-Durable-Premium-250"}
    assert inputs["storageCapacityTiB"] == 16
    assert inputs["zones"] == ["1"]  # no cluster zone: AMLFS still needs one
    assert inputs["filesystemSubnet"].endswith("/subnets/demo-lustre")
    assert inputs["maintenanceWindow"] == {"dayOfWeek": "Sunday", "timeOfDayUTC": "02:00"}
    assert "hsm" not in inputs
    assert inputs["tags"]["azcluster-role"] == "lustre"


def test_lustre_name_resolves_through_the_cluster_zone(default):
    capture, holder = default
    record = capture.one("privatedns:PrivateRecordSet")
    assert record.inputs["recordType"] == "A"
    assert record.inputs["relativeRecordSetName"] == "lustre"
    assert record.inputs["privateZoneName"] == "demo.azcluster.internal"
    mgs = capture.one("storagecache:AmlFilesystem").outputs["clientInfo"]["mgsAddress"]
    assert record.inputs["aRecords"] == [{"ipv4Address": mgs}]
    shared = holder["storage"]
    assert shared.lustre_mount_host == "lustre.demo.azcluster.internal"
    assert shared.lustre_mount_command == lustre_mount_command("lustre.demo.azcluster.internal")
    assert "lustre.demo.azcluster.internal@tcp:/lustrefs" in shared.lustre_mount_command
    assert capture.value["mgs"] == mgs
    # The record's zone exists before the record: zone -> Lustre subnet -> file system -> record.
    assert capture.depends_on(record, capture.one("privatedns:PrivateZone", "net-zone"))


def test_nothing_but_the_dns_record_waits_for_lustre(default, hsm):
    for capture, _ in (default, hsm):
        lustre = capture.one("storagecache:AmlFilesystem")
        assert [r.name for r in capture.dependents(lustre)] == ["data-lustre-dns"]


def test_blob_integration_imports_from_its_container(hsm):
    capture, _ = hsm
    containers = {c.inputs["containerName"]: c for c in capture.of_type("storage:BlobContainer")}
    assert set(containers) == {"data", "ckpt", "datasets", "lustre-logs"}
    lustre = capture.one("storagecache:AmlFilesystem")
    settings = lustre.inputs["hsm"]["settings"]
    assert settings["container"] == containers["datasets"].id
    assert settings["loggingContainer"] == containers["lustre-logs"].id
    assert settings["container"].endswith("/blobServices/default/containers/datasets")
    assert lustre.inputs["zones"] == ["3"]
    # Azure: blob integration signs SAS tokens, so key access must be on for this account.
    assert capture.one("storage:StorageAccount").inputs["allowSharedKeyAccess"] is True


def test_blob_integration_grants_the_hpc_cache_provider_before_lustre(hsm):
    capture, _ = hsm
    account = capture.one("storage:StorageAccount")
    lustre = capture.one("storagecache:AmlFilesystem")
    grants = [
        a for a in capture.of_type("authorization:RoleAssignment") if a.inputs["principalId"] == RP_OBJECT_ID
    ]
    roles = {a.inputs["roleDefinitionId"].rsplit("/", 1)[1] for a in grants}
    assert roles == {
        BUILTIN_ROLES["Storage Account Contributor"],
        BUILTIN_ROLES["Storage Blob Data Contributor"],
    }
    for grant in grants:
        assert grant.inputs["scope"] == account.id
        assert capture.depends_on(lustre, grant)
    assert capture.depends_on(lustre, capture.one("network:PrivateDnsZoneGroup"))


def test_blob_integration_without_the_provider_id_warns_and_grants_nothing(caplog):
    spec = make_spec(storage={"blob": {"enabled": True}, "lustre": {"import_container": "datasets"}})
    capture, _ = build(spec)
    principals = {a.inputs["principalId"] for a in capture.of_type("authorization:RoleAssignment")}
    assert principals == {capture.one("managedidentity:UserAssignedIdentity").outputs["principalId"]}
    assert HPC_CACHE_RP_APP_ID in caplog.text


def test_without_lustre_or_blob_nothing_is_created():
    capture, holder = build(make_spec(storage={"blob": {"enabled": True}}))
    assert (
        capture.of_type("storagecache:AmlFilesystem") == []
        and capture.of_type("privatedns:PrivateRecordSet") == []
    )
    assert holder["storage"].lustre_mount_host is None and capture.value["mgs"] is None
    capture, holder = build(make_spec(storage={"lustre": {"enabled": True}}), with_identity=False)
    assert (
        capture.of_type("storage:StorageAccount") == [] and capture.of_type("network:PrivateEndpoint") == []
    )
    assert capture.of_type("authorization:RoleAssignment") == []
    assert capture.value["account"] is None and capture.value["lustre_id"]


def base_args(**changes):
    values = dict(
        cluster_name="demo",
        location="eastus",
        zone=None,
        tags={},
        resource_group_name="rg",
        lustre=LustreSpec(import_container="datasets"),
        blob=BlobSpec(enabled=True),
        lustre_subnet_id="s1",
        endpoints_subnet_id="s2",
        blob_dns_zone_id="z",
        cluster_dns_zone_name="demo.azcluster.internal",
        node_identity=None,
    )
    values.update(changes)
    return SharedStorageArgs(**values)


def test_args_reject_impossible_storage():
    assert base_args().hsm_container == "datasets"
    with pytest.raises(ValueError, match="needs storage.blob.enabled"):
        base_args(blob=BlobSpec(enabled=False))
    with pytest.raises(ValueError, match="must differ"):
        base_args(hsm_logging_container="datasets")
    with pytest.raises(ValueError, match="blob container name 'Data_Set'"):
        base_args(blob=BlobSpec(enabled=True, containers=["Data_Set"]))
    with pytest.raises(ValueError, match="blob_sku"):
        base_args(blob_sku="Premium_LRS")
    with pytest.raises(ValueError, match="blob_account_name"):
        base_args(blob_account_name="Has-Dashes")
    assert (
        base_args(lustre=LustreSpec(enabled=False, import_container="x"), blob=BlobSpec()).hsm_container
        is None
    )

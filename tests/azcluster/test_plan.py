"""`azcluster plan`: the mock runner, the summary arithmetic and the `plan --json` contract.

Everything runs offline; an autouse guard fails any test that opens a socket to anything but loopback.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import textwrap
import threading
from pathlib import Path

import pytest

from azcluster import cost, mockrun, plan, stackfile
from azcluster.components.spec import parse_cluster
from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
STACKS = Path(__file__).resolve().parents[2] / "stacks"
DOCUMENT_KEYS = {"stack", "location", "findings", "resources", "summary", "capacity", "public"}
RESOURCE_KEYS = {"urn", "type", "name", "parent", "depends_on", "inputs"}
SUMMARY_KEYS = {"nodes", "gpus", "scale_sets", "ib_islands", "cost_per_hour_usd", "quota"}
VMSS = "azure-native:compute:VirtualMachineScaleSet"


# --- no network ------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Refuse (and remember) every connection that is not loopback or a local socket."""
    attempts: list[object] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def allowed(sock: socket.socket, address: object) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        host = address[0] if isinstance(address, tuple) else str(address)
        return host in ("localhost", "::1") or str(host).startswith("127.")

    def guarded(real):
        def connect(sock, address):
            if not allowed(sock, address):
                attempts.append(address)
                raise OSError(f"test tried to reach the network: {address!r}")
            return real(sock, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", guarded(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(real_connect_ex))
    yield attempts
    assert attempts == [], f"plan reached for the network: {attempts}"


@pytest.fixture
def guard(no_network):
    return no_network


def test_network_guard_refuses_and_records_public_addresses(guard):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(OSError, match="reach the network"):
            sock.connect(("198.51.100.7", 80))
    finally:
        sock.close()
    assert guard == [("198.51.100.7", 80)]
    guard.clear()  # deliberate: keep the fixture's teardown check for the other tests


# --- summary arithmetic ----------------------------------------------------------------------------------


def spec_of(cluster: dict, location: str = "eastus"):
    base = {"ssh": {"public_keys": [KEY]}}
    return parse_cluster({"azure-native:location": location, "azcluster:cluster": {**base, **cluster}})


def quota_of(summary: cost.Summary) -> dict[str, int]:
    return {need.family: need.vcpus for need in summary.quota}


def test_summary_small_cluster_counts_gpus_cost_and_quota():
    spec = spec_of(
        {
            "name": "small",
            "pools": [{"name": "gpu", "size": "Standard_ND96asr_v4", "nodes": 2}],
            "login": {"size": "Standard_D2s_v5"},
        }
    )
    summary = cost.summarize(spec)
    assert (summary.nodes, summary.gpus, summary.scale_sets, summary.ib_islands) == (2, 16, 1, 1)
    # 2 x 27.20 (ND96asr_v4) + 0.096 (D2s_v5 login); the rest (home, Bastion, NAT...): test_cost_resources
    assert summary.compute_usd_per_hour == pytest.approx(54.50)
    total = summary.compute_usd_per_hour + summary.resources_usd_per_hour
    assert summary.resources_usd_per_hour > 0 and summary.cost_per_hour_usd == pytest.approx(total)
    assert summary.cost_per_month_usd == pytest.approx(summary.cost_per_hour_usd * 730)
    assert quota_of(summary) == {"Standard NDASv4_A100 Family": 192, "standardDSv5Family": 2}
    assert summary.price_dates == sorted({"2026-01"} | {item.price.date for item in summary.resources})


def test_summary_multi_island_pools_spot_and_non_ib():
    spec = spec_of(
        {
            "name": "big",
            "pools": [
                {"name": "train", "size": "Standard_ND96isr_H100_v5", "nodes": 250},
                {"name": "eval", "size": "Standard_NC80adis_H100_v5", "nodes": 150, "spot": True},
                {"name": "burst", "size": "Standard_ND96isr_H100_v5", "nodes": 20, "spot": True},
            ],
            "login": {"size": "Standard_D8s_v5"},
        }
    )
    summary = cost.summarize(spec)
    train, evals, burst = summary.pools
    assert train.islands == [84, 83, 83]
    assert evals.islands == [150] and not evals.infiniband  # NC: one scale set, no IB island
    assert summary.scale_sets == 3 + 1 + 1
    assert summary.ib_islands == 3 + 1
    assert summary.nodes == 420
    assert summary.gpus == 250 * 8 + 150 * 2 + 20 * 8
    assert summary.compute_usd_per_hour == pytest.approx(round(270 * 98.32 + 150 * 13.96 + 0.384, 2))
    # Spot vCPUs count against lowPriorityCores, not the size's family.
    assert quota_of(summary) == {
        "standardNDSH100v5Family": 250 * 96,
        "lowPriorityCores": 150 * 80 + 20 * 96,
        "standardDSv5Family": 8,
    }
    assert summary.regional_vcpus == 250 * 96 + 8


def test_summary_without_login_and_with_an_unknown_size():
    spec = spec_of(
        {
            "name": "odd",
            "pools": [
                {"name": "a", "size": "Standard_ND96amsr_A100_v4", "nodes": 3},
                {"name": "b", "size": "Standard_ND96isr_H999_v9", "nodes": 4},
            ],
            "login": {"enabled": False},
        }
    )
    summary = cost.summarize(spec)
    assert summary.nodes == 7 and summary.gpus == 24
    assert summary.compute_usd_per_hour == pytest.approx(3 * 32.77)
    assert quota_of(summary) == {"standard NDAMSv4_A100Family": 288}
    assert summary.unpriced == ["Standard_ND96isr_H999_v9"]


def test_summary_json_has_the_contract_keys():
    spec = spec_of({"name": "s", "pools": [{"name": "gpu", "size": "Standard_ND96asr_v4", "nodes": 1}]})
    document = cost.summarize(spec).to_json()
    assert set(document) >= SUMMARY_KEYS
    assert all(set(item) == {"family", "vcpus"} for item in document["quota"])
    assert document["cost_per_month_usd"] == pytest.approx(document["cost_per_hour_usd"] * 730)


# --- the mock runner, on a small inline program -----------------------------------------------------------


def tiny_program():
    import pulumi
    from pulumi_azure_native import authorization, compute, managedidentity, network, resources

    rg = resources.ResourceGroup("rg", resource_group_name="tiny-rg", location="eastus")
    client = authorization.get_client_config_output()

    class Net(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("azcluster:index:Net", name, None, None)
            child = pulumi.ResourceOptions(parent=self)
            self.vnet = network.VirtualNetwork(
                f"{name}-vnet",
                resource_group_name=rg.name,
                virtual_network_name="tiny-vnet",
                address_space={"address_prefixes": ["10.9.0.0/16"]},
                opts=child,
            )
            self.subnet = network.Subnet(
                f"{name}-compute",
                resource_group_name=rg.name,
                virtual_network_name=self.vnet.name,
                subnet_name="compute",
                address_prefix="10.9.1.0/24",
                opts=child,
            )
            self.register_outputs({})

    net = Net("net")
    identity = managedidentity.UserAssignedIdentity(
        "id", resource_group_name=rg.name, resource_name_="tiny-id"
    )
    nic = network.NetworkInterface(
        "nic",
        resource_group_name=rg.name,
        ip_configurations=[{"name": "ip0", "subnet": {"id": net.subnet.id}}],
    )
    compute.VirtualMachineScaleSet(
        "vmss",
        resource_group_name=rg.name,
        vm_scale_set_name="tiny-ib0",
        sku={"name": "Standard_ND96asr_v4", "capacity": 2},
        identity={"type": "UserAssigned", "user_assigned_identities": [identity.id]},
        virtual_machine_profile={
            "os_profile": {
                "computer_name_prefix": "tiny",
                "admin_username": "azureuser",
                "admin_password": pulumi.Output.secret("hunter2"),
            },
            "network_profile": {
                "network_interface_configurations": [
                    {"name": "nic0", "ip_configurations": [{"name": "ip0", "subnet": {"id": net.subnet.id}}]}
                ]
            },
        },
        opts=pulumi.ResourceOptions(depends_on=[nic]),
    )
    pulumi.export("subnet_id", net.subnet.id)
    pulumi.export("nic_ip", nic.ip_configurations.apply(lambda configs: configs[0].private_ip_address))
    pulumi.export("principal", identity.principal_id)
    pulumi.export("tenant", client.tenant_id)
    pulumi.export("password", pulumi.Output.secret("hunter2"))
    pulumi.log.warn("grant the role by hand before up")


@pytest.fixture(scope="module")
def tiny():
    return mockrun.run_program(tiny_program, stack="tiny")


def by_name(run: mockrun.ProgramRun) -> dict[str, mockrun.PlannedResource]:
    return {resource.name: resource for resource in run.resources}


def test_urns_name_stack_project_and_the_parent_type_chain(tiny):
    resources = by_name(tiny)
    assert resources["rg"].urn == "urn:pulumi:tiny::azcluster::azure-native:resources:ResourceGroup::rg"
    assert resources["net-compute"].urn == (
        "urn:pulumi:tiny::azcluster::azcluster:index:Net$azure-native:network:Subnet::net-compute"
    )
    assert resources["net-compute"].parent == resources["net"].urn
    assert resources["rg"].parent is None  # directly under the stack


def test_dependencies_come_from_inputs_and_depends_on(tiny):
    resources = by_name(tiny)
    vmss = resources["vmss"]
    assert resources["net-compute"].urn in vmss.depends_on  # subnet id flows into the NIC config
    assert resources["id"].urn in vmss.depends_on  # identity id
    assert resources["rg"].urn in vmss.depends_on  # resource group name
    assert resources["nic"].urn in vmss.depends_on  # explicit depends_on
    assert resources["net-vnet"].urn in resources["net-compute"].depends_on
    assert resources["rg"].depends_on == []


def test_inputs_are_registered_camel_case_with_secrets_masked_in_place(tiny):
    vmss = by_name(tiny)["vmss"]
    assert vmss.custom is True and by_name(tiny)["net"].custom is False
    assert vmss.inputs["sku"] == {"name": "Standard_ND96asr_v4", "capacity": 2}  # int, not 2.0
    os_profile = vmss.inputs["virtualMachineProfile"]["osProfile"]
    assert os_profile["adminPassword"] == "[secret]"
    assert os_profile["adminUsername"] == "azureuser"  # the secret's neighbours stay visible
    subnet_id = vmss.inputs["virtualMachineProfile"]["networkProfile"]["networkInterfaceConfigurations"][0][
        "ipConfigurations"
    ][0]["subnet"]["id"]
    assert subnet_id.endswith(
        "/resourceGroups/tiny-rg/providers/Microsoft.Network/virtualNetworks/tiny-vnet/subnets/compute"
    )
    assert "hunter2" not in json.dumps([r.to_json() for r in tiny.resources])


def test_outputs_resolve_to_plausible_values(tiny):
    outputs = tiny.outputs
    assert outputs["nic_ip"] == "10.9.1.4"  # first address Azure hands out in the subnet
    assert outputs["tenant"] == mockrun.ZERO_GUID
    assert len(outputs["principal"]) == 36 and outputs["principal"] != mockrun.ZERO_GUID
    assert outputs["password"] == "[secret]"
    assert mockrun.CLIENT_CONFIG_TOKEN in tiny.invokes
    assert ("warning", "grant the role by hand before up") in tiny.messages


def test_runs_are_reentrant_and_deterministic(tiny):
    again = mockrun.run_program(tiny_program, stack="tiny")
    assert [r.to_json() for r in again.resources] == [r.to_json() for r in tiny.resources]
    other = mockrun.run_program(tiny_program, stack="other")
    assert all(r.urn.startswith("urn:pulumi:other::azcluster::") for r in other.resources)


def test_a_failing_program_raises_and_the_next_run_is_clean():
    def broken():
        from pulumi_azure_native import resources

        resources.ResourceGroup("rg", resource_group_name="x", location="eastus")
        raise ValueError("pool 'gpu': no SSH public keys")

    with pytest.raises(ValueError, match="no SSH public keys"):
        mockrun.run_program(broken, stack="broken")
    assert len(mockrun.run_program(tiny_program, stack="tiny").resources) == len(
        mockrun.run_program(tiny_program, stack="tiny").resources
    )


def loop_state() -> tuple[object, bool]:
    """The default policy's thread-local loop state: the loop set, and whether one was ever set."""
    local = asyncio.get_event_loop_policy()._local
    return local._loop, local._set_called


def test_a_plan_leaves_the_collector_and_a_set_event_loop_as_it_found_them():
    local = asyncio.get_event_loop_policy()._local
    saved = loop_state()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        result = plan.plan_stack(stackfile.load_stack(str(STACKS / "Pulumi.example.yaml")))
        assert result.ok and result.resources
        assert gc.isenabled()
        assert loop_state() == (loop, True)
    finally:
        local._loop, local._set_called = saved
        loop.close()


def test_a_thread_that_never_set_a_loop_is_left_that_way():
    """asyncio creates a thread's loop on demand only until one is set; Pulumi's set_mocks relies on it."""
    seen: list[tuple[object, bool]] = []

    def in_fresh_thread() -> None:
        seen.append(loop_state())
        mockrun.run_program(tiny_program, stack="thread")
        seen.append(loop_state())

    worker = threading.Thread(target=in_fresh_thread)
    worker.start()
    worker.join()
    assert seen == [(None, False), (None, False)]


# --- the real stacks through the CLI ----------------------------------------------------------------------


def plan_json(stack: str, *extra: str):
    result = run_cli("plan", stack, "--json", *extra)
    return result, json.loads(result.stdout)


@pytest.fixture(scope="module")
def example():
    result = run_cli("plan", str(STACKS / "Pulumi.example.yaml"), "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def large():
    result = run_cli("plan", str(STACKS / "Pulumi.h200-1024.yaml"), "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_plan_json_document_shape(example):
    assert set(example) == DOCUMENT_KEYS
    assert example["stack"] == "example" and example["location"] == "eastus"
    assert example["resources"], "the example stack builds resources"
    for resource in example["resources"]:
        assert set(resource) >= RESOURCE_KEYS
        assert isinstance(resource["inputs"], dict) and isinstance(resource["depends_on"], list)
        assert resource["urn"].startswith("urn:pulumi:example::azcluster::")
        assert resource["urn"].endswith("::" + resource["name"])
    for finding in example["findings"]:
        assert set(finding) == {"id", "severity", "path", "message", "hint"}
    assert set(example["summary"]) >= SUMMARY_KEYS


def test_every_parent_chain_reaches_the_stack(example):
    urns = {resource["urn"]: resource for resource in example["resources"]}
    for resource in example["resources"]:
        seen = set()
        parent = resource["parent"]
        while parent is not None:
            assert parent in urns, f"{resource['urn']} has a parent that was not registered: {parent}"
            assert parent not in seen
            seen.add(parent)
            parent = urns[parent]["parent"]
        for dependency in resource["depends_on"]:
            assert dependency in urns
    components = [r for r in example["resources"] if r["type"].startswith("azcluster:index:")]
    assert any(r["type"] == "azcluster:index:Cluster" and r["parent"] is None for r in components)


def test_custom_resources_have_inputs(example):
    custom = [r for r in example["resources"] if not r["type"].startswith("azcluster:")]
    assert custom and all(r["inputs"] for r in custom)
    groups = [r for r in custom if r["type"] == "azure-native:resources:ResourceGroup"]
    assert [g["inputs"]["location"] for g in groups] == ["eastus"]


def scale_sets(document):
    return [r for r in document["resources"] if r["type"] == VMSS]


def test_scale_sets_match_the_summary_and_wait_for_subnet_and_identity(example):
    urns = {r["urn"]: r for r in example["resources"]}
    sets = scale_sets(example)
    assert len(sets) == example["summary"]["scale_sets"] == 1
    assert sum(s["inputs"]["sku"]["capacity"] for s in sets) == example["summary"]["nodes"] == 2
    for vmss in sets:
        waits_for = {urns[dep]["type"] for dep in vmss["depends_on"]}
        assert "azure-native:network:Subnet" in waits_for
        assert "azure-native:managedidentity:UserAssignedIdentity" in waits_for
        assert "azure-native:storagecache:AmlFilesystem" not in waits_for


def test_example_summary(example):
    summary = example["summary"]
    assert (summary["nodes"], summary["gpus"], summary["scale_sets"], summary["ib_islands"]) == (2, 16, 1, 1)
    assert summary["cost_breakdown"]["compute_usd_per_hour"] == pytest.approx(2 * 27.20 + 0.096, abs=0.01)
    assert {q["family"]: q["vcpus"] for q in summary["quota"]} == {
        "Standard NDASv4_A100 Family": 192,
        "standardDSv5Family": 2,
    }


def test_large_stack_is_four_islands_not_a_thousand_resources(large, example):
    summary = large["summary"]
    assert (summary["nodes"], summary["gpus"], summary["scale_sets"], summary["ib_islands"]) == (
        1024,
        8192,
        4,
        4,
    )
    sets = scale_sets(large)
    assert sorted(s["inputs"]["sku"]["capacity"] for s in sets) == [256, 256, 256, 256]
    assert all(s["inputs"]["singlePlacementGroup"] is True for s in sets)
    assert summary["cost_breakdown"]["compute_usd_per_hour"] == pytest.approx(1024 * 84.80 + 0.384, abs=0.01)
    assert {q["family"]: q["vcpus"] for q in summary["quota"]} == {
        "standardNDISRH200V5Family": 1024 * 96,
        "standardDSv5Family": 8,
    }
    # Node count costs scale sets, not resources per node.
    assert len(large["resources"]) < len(example["resources"]) + 40
    for vmss in sets:
        amlfs = [d for d in vmss["depends_on"] if "storagecache:AmlFilesystem" in d]
        assert amlfs == [], "compute must not wait for Managed Lustre"


def write_stack(tmp_path: Path, body: str, name: str = "t") -> Path:
    path = tmp_path / f"Pulumi.{name}.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_error_findings_exit_1_and_build_nothing(tmp_path):
    path = write_stack(
        tmp_path,
        f"""\
        config:
          azure-native:location: eastus
          azcluster:cluster:
            name: bad
            pools:
              - name: gpu
                size: Standard_ND96isr_H999_v9
                nodes: 2
            ssh:
              public_keys: ["{KEY}"]
        """,
    )
    result = run_cli("plan", str(path), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)  # stdout stays one JSON document
    assert set(document) == DOCUMENT_KEYS
    assert document["resources"] == []
    errors = [f for f in document["findings"] if f["severity"] == "error"]
    assert errors and any("pools[0].size" in f["path"] for f in errors)
    assert "error finding" in result.stderr and "nothing was planned" in result.stderr

    human = run_cli("plan", str(path), env={"COLUMNS": "300"})
    assert human.exit_code == 1
    assert f"{path}:7" in human.stdout  # the finding points at the file and line of `size:`


def test_schema_errors_exit_1_with_findings(tmp_path):
    path = write_stack(
        tmp_path,
        """\
        config:
          azure-native:location: eastus
          azcluster:cluster:
            name: bad
            poolz: []
        """,
    )
    result = run_cli("plan", str(path), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["resources"] == [] and document["findings"][0]["id"] == "AZC000"


def test_human_output_shows_tree_and_summary():
    result = run_cli("plan", str(STACKS / "Pulumi.example.yaml"))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("compute:VirtualMachineScaleSet", "Standard_ND96asr_v4", "x2", "10.42.", "cost per month"):
        assert text in out
    assert "2026-01" in out  # the price date
    assert "standardDSv5Family" in out and "Standard NDASv4_A100 Family" in out
    assert "plan ok" in result.stderr


def test_suppress_drops_a_finding_from_the_plan(large):
    ids = {finding["id"] for finding in large["findings"]}
    assert "AZC009" in ids  # islands of 256 exceed Azure's default placement group of 100
    result = run_cli("plan", str(STACKS / "Pulumi.h200-1024.yaml"), "--json", "--suppress", "AZC009")
    assert result.exit_code == 0, result.stderr
    assert "AZC009" not in {finding["id"] for finding in json.loads(result.stdout)["findings"]}

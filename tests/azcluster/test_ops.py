"""status / stop / start / hosts through the real ComputeManagementClient against the loopback fake."""

from __future__ import annotations

import json
import time

import pytest

from azcluster import remedies
from azcluster.components import bootstrap, catalog
from azcluster.errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError
from azcluster.ops import runcommand
from azcluster.ops.diagnose import DIAGNOSE_LIMIT
from azcluster.ops.diagnose_view import diagnosis_notes
from azcluster.ops.hosts import hostfiles
from azcluster.ops.hosts_view import print_hostfiles
from azcluster.ops.power import start_cluster, stop_cluster
from azcluster.ops.status import cluster_status
from tests.azcluster import demo
from tests.azcluster.demo import H100, NC, spec
from tests.components.bootstrap_fakeroot import FakeNode


@pytest.fixture
def cluster(arm):
    """demo: pool gpu in two islands (3 + 2 nodes), pool infer (1 node), a login VM, and a stranger."""
    sets = demo.add_to(arm.fake)
    arm.fake.add_scale_set("demo-rg", "someone-else", H100, 1, tags={"azcluster-cluster": "other"})
    return sets


def test_status_reads_islands_nodes_ips_health_login_and_cost(arm, cluster) -> None:
    gpu0 = cluster[0]
    gpu0.instances[1].power = "deallocated"
    gpu0.instances[2].health = "HealthState/unhealthy"
    gpu0.instances[2].health_message = '{"failing": "ib_link_flap"}'
    gpu0.instances[0].health = "HealthState/healthy"

    status = cluster_status(spec(), arm.context(), "demo")
    assert [(i.pool, i.island, i.scale_set) for i in status.islands] == [
        ("gpu", 0, "demo-gpu-0"),
        ("gpu", 1, "demo-gpu-1"),
        ("infer", 0, "demo-infer-0"),
    ]
    first = status.islands[0]
    assert [n.private_ip for n in first.nodes] == ["10.42.0.4", "10.42.0.5", "10.42.0.6"]
    assert [n.computer_name for n in first.nodes] == ["gpu0000000", "gpu0000001", "gpu0000002"]
    assert first.power_states == {"deallocated": 1, "running": 2}
    assert [n.health for n in first.nodes] == ["healthy", None, "unhealthy"]
    assert first.capacity == 3 and first.provisioning_state == "Succeeded"
    assert first.automatic_repairs == "NotRunning"
    assert [n.private_ip for n in status.islands[1].nodes] == ["10.42.1.4", "10.42.1.5"]

    unhealthy = status.unhealthy()
    assert [(i.scale_set, n.computer_name, n.health_detail) for i, n in unhealthy] == [
        ("demo-gpu-0", "gpu0000002", '{"failing": "ib_link_flap"}')
    ]
    assert status.login and status.login.private_ip == "10.42.200.4" and status.login.power_state == "running"

    h100 = catalog.find_size(H100).price.usd_per_hour
    nc = catalog.find_size(NC).price.usd_per_hour
    login = catalog.general_sizes()["Standard_D4s_v5"].price.usd_per_hour
    assert status.cost_per_hour() == pytest.approx(round(4 * h100, 2) + round(nc, 2) + round(login, 2))

    # the scale-set VM list is read with $expand=instanceView, one call per page of 2
    vm_calls = [c for c in arm.fake.calls("GET", "/demo-gpu-0/virtualMachines")]
    assert len(vm_calls) == 2 and all(c.query["$expand"] == ["instanceView"] for c in vm_calls)


def test_status_json_shape(arm, cluster) -> None:
    doc = cluster_status(spec(), arm.context(), "demo").to_json()
    assert doc["found"] is True and doc["resource_group"] == "demo-rg"
    assert [p["pool"] for p in doc["pools"]] == ["gpu", "infer"]
    island = doc["pools"][0]["islands"][0]
    assert {"scale_set", "size", "capacity", "provisioning_state", "power_states", "nodes"} <= set(island)
    assert {"name", "private_ip", "power_state", "health"} <= set(island["nodes"][0])
    assert doc["login"]["private_ip"] == "10.42.200.4"
    assert isinstance(doc["cost_per_hour_usd"], float) and doc["unhealthy"] == []


def test_status_of_a_cluster_that_is_not_there(arm) -> None:
    status = cluster_status(spec(), arm.context(), "demo")  # resource group does not exist: 404
    assert not status.found and status.to_json()["pools"] == []


def test_stop_deallocates_every_island_in_parallel(arm, cluster) -> None:
    arm.fake.lro_polls = 2
    report = stop_cluster(spec(), arm.context(), "demo", progress=False)
    assert report.ok and [o.scale_set for o in report.islands] == ["demo-gpu-0", "demo-gpu-1", "demo-infer-0"]
    assert all(inst.power == "deallocated" for s in cluster for inst in s.instances)
    stranger = arm.fake.scale_sets[("demo-rg", "someone-else")]
    assert stranger.instances[0].power == "running"  # another cluster's set is never touched
    assert len(arm.fake.calls("POST", "/deallocate")) == 3
    # each operation was polled through its Azure-AsyncOperation URL until it ended
    assert len([c for c in arm.fake.calls("GET", "/operations/") if "monitor" not in c.query]) == 3 * 3


def test_start_partial_failure_reports_each_island_and_keeps_successes(arm, cluster) -> None:
    for scale_set in cluster:
        for inst in scale_set.instances:
            inst.power = "deallocated"
    cluster[1].start_error = ("AllocationFailed", "Allocation failed. We do not have sufficient capacity.")
    cluster[2].start_error = (
        "OverconstrainedAllocationRequest",
        "Allocation failed. VM(s) with the following",
    )
    report = start_cluster(spec(), arm.context(), "demo", progress=False)
    assert not report.ok
    outcome = {o.scale_set: o for o in report.islands}
    assert outcome["demo-gpu-0"].ok
    assert outcome["demo-gpu-1"].code == "AllocationFailed"
    assert "gpu/1" in outcome["demo-gpu-1"].hint and "capacity reservation" in outcome["demo-gpu-1"].hint
    assert outcome["demo-infer-0"].code == "OverconstrainedAllocationRequest"
    assert "constraints" in outcome["demo-infer-0"].hint
    assert [i.power for i in cluster[0].instances] == ["running"] * 3  # what succeeded stays succeeded
    assert [i.power for i in cluster[1].instances] == ["deallocated"] * 2
    doc = report.to_json()
    assert doc["ok"] is False and {"pool", "island", "scale_set", "ok", "code", "message", "hint"} <= set(
        doc["islands"][1]
    )


def test_start_refused_for_quota_and_throttled_post(arm, cluster) -> None:
    cluster[2].accept_error = (
        409,
        "OperationNotAllowed",
        "Operation could not be completed as it results in exceeding approved StandardNCadsH100v5Family "
        "Cores quota.",
    )
    arm.fake.inject("POST", "/demo-gpu-1/start", 429, headers={"Retry-After": "1"})
    started = time.monotonic()
    report = start_cluster(spec(), arm.context(), "demo", progress=False)
    outcome = {o.scale_set: o for o in report.islands}
    assert outcome["demo-gpu-1"].ok  # the 429 on the POST was waited out and retried
    assert len(arm.fake.calls("POST", "/demo-gpu-1/start")) == 2 and time.monotonic() - started >= 0.9
    assert outcome["demo-infer-0"].code == "OperationNotAllowed"
    assert "azcluster preflight demo" in outcome["demo-infer-0"].hint


def test_start_hints_take_their_meaning_from_the_remedies_table(arm, cluster, monkeypatch) -> None:
    """ops words a hint by the kind remedies.py gives a code, so a code added there helps `start` too."""
    for scale_set in cluster:
        for inst in scale_set.instances:
            inst.power = "deallocated"
    monkeypatch.setitem(
        remedies.REMEDIES,
        "NewCapacityCode",
        remedies.Remedy("NewCapacityCode", "No capacity.", "wait", kind=remedies.CAPACITY),
    )
    monkeypatch.setitem(
        remedies.REMEDIES,
        "BrandNewRefusal",
        remedies.Remedy(
            "BrandNewRefusal", "Azure is doing something new.", "re-run `azcluster up STACK` later"
        ),
    )
    cluster[0].start_error = ("NewCapacityCode", "Allocation failed, a new way.")
    cluster[1].start_error = ("BrandNewRefusal", "Something new.")
    cluster[2].start_error = ("VMStartTimedOut", "VM 'infer0000000' did not start in the allotted time.")
    report = start_cluster(spec(), arm.context(), "demo", progress=False)
    hints = {o.scale_set: o.hint for o in report.islands}
    # a known kind: the island's own wording (size, placement group, how `start` retries)
    assert "gpu/0" in hints["demo-gpu-0"] and "capacity reservation" in hints["demo-gpu-0"]
    assert H100 in hints["demo-gpu-0"]
    # a kind ops has no wording for: the table's advice, re-running the command that failed
    assert hints["demo-gpu-1"] == "Azure is doing something new: re-run `azcluster start demo` later"
    assert hints["demo-infer-0"] == (
        "VMs did not start in time: re-run `azcluster start demo`; if it persists, check boot diagnostics"
    )


def test_start_refused_for_permission_or_throttling_says_so(arm, cluster) -> None:
    cluster[0].accept_error = (
        403,
        "AuthorizationFailed",
        "The client 'reader@example.com' does not have authorization to perform action "
        "'Microsoft.Compute/virtualMachineScaleSets/start/action'.",
    )
    cluster[1].start_error = ("SomethingElse", "Requests were throttled; try again later.")
    report = start_cluster(spec(), arm.context(), "demo", progress=False)
    hints = {o.scale_set: o.hint for o in report.islands}
    assert "Virtual Machine Contributor" in hints["demo-gpu-0"] and "demo-rg" in hints["demo-gpu-0"]
    assert "throttling" in hints["demo-gpu-1"]


def test_stop_with_progress_display_and_a_failed_operation(arm, cluster) -> None:
    cluster[0].deallocate_error = ("InternalExecutionError", "An internal execution error occurred.")
    report = stop_cluster(spec(), arm.context(), "demo", progress=True)
    assert [o.ok for o in report.islands] == [False, True, True]
    assert report.islands[0].code == "InternalExecutionError"
    assert [i.power for i in cluster[0].instances] == ["running"] * 3


def test_stop_without_a_cluster_is_a_clear_refusal(arm) -> None:
    arm.fake.add_resource_group("demo-rg")
    with pytest.raises(AzclusterError) as caught:
        stop_cluster(spec(), arm.context(), "demo", progress=False)
    assert caught.value.exit_code == EXIT_REFUSED
    assert "azcluster-cluster=demo" in caught.value.message


def test_hosts_per_island_from_private_ips(arm, cluster) -> None:
    cluster[0].instances[1].power = "deallocated"
    files = hostfiles(spec(), arm.context(), "demo")
    assert [(f.pool, f.island) for f in files] == [("gpu", 0), ("gpu", 1), ("infer", 0)]
    assert files[0].text() == "10.42.0.4\n10.42.0.6\n"
    assert [n.computer_name for n in files[0].excluded] == ["gpu0000001"]
    assert files[1].text("mpi") == "10.42.1.4 slots=8\n10.42.1.5 slots=8\n"
    assert files[2].slots == 2

    only = hostfiles(spec(), arm.context(), "demo", island=1)
    assert [(f.pool, f.island) for f in only] == [("gpu", 1)]
    infer = hostfiles(spec(), arm.context(), "demo", pool="infer", island=0)
    assert infer[0].to_json()["hosts"] == [{"name": "infer0000000", "private_ip": "10.42.16.4"}]

    with pytest.raises(AzclusterError) as caught:
        hostfiles(spec(), arm.context(), "demo", island=7)
    assert caught.value.exit_code == EXIT_USAGE and "gpu/0" in caught.value.hint


def test_hosts_written_as_files(arm, cluster, tmp_path, capsys) -> None:
    files = hostfiles(spec(), arm.context(), "demo", pool="gpu")
    print_hostfiles(files, "plain", tmp_path / "hosts")
    assert (tmp_path / "hosts" / "hostfile.gpu.0").read_text() == "10.42.0.4\n10.42.0.5\n10.42.0.6\n"
    assert (tmp_path / "hosts" / "hostfile.gpu.1").read_text() == "10.42.1.4\n10.42.1.5\n"
    assert capsys.readouterr().out == ""


# --- status: the failing check, read on the node through Run Command ---------------------------------

RESULT = bootstrap.HEALTH_RESULT_PATH


def real_health_result(tmp_path, **ib) -> str:
    """What azc-health.sh itself writes on an ND H100 v5 node whose IB ports are as `ib` says."""
    node = FakeNode(tmp_path / "node")
    node.node_env(spec(), "gpu")
    node.hpc_image()
    node.gpus(8)
    node.ib(**ib)
    node.run("azc-health.sh", "--mode", "quick")
    return (node.root / RESULT.lstrip("/")).read_text()


def unhealthy(instance, message: str | None = None) -> None:
    instance.health = "HealthState/unhealthy"
    instance.health_message = message


@pytest.mark.parametrize(
    ("output", "location_only"),
    [("linux", False), ("example", True)],
    ids=["linux-packed-streams", "rest-example-shape-location-polling"],
)
def test_status_names_the_failing_check_read_on_the_node(arm, cluster, tmp_path, output, location_only):
    arm.fake.run_command_output = output
    arm.fake.run_command_location_only = location_only
    arm.fake.lro_polls = 2
    node = cluster[0].instances[2]
    unhealthy(node)
    node.files[RESULT] = real_health_result(tmp_path, overrides={3: ("1: DOWN", 400)})
    cluster[0].instances[0].health = "HealthState/healthy"

    status = cluster_status(spec(), arm.context(), "demo")
    ((island, found),) = status.unhealthy()
    assert found.diagnosis.state == "read"
    assert found.diagnosis.failing == [("infiniband", "7 of 8 ports ACTIVE at 400 Gb/s; mlx5_ib3/1 DOWN")]
    assert found.diagnosis.time  # when the node last checked itself

    sent = arm.fake.run_commands()  # one Run Command, on that node only, polled to the end
    assert [r.path.rsplit("/virtualMachineScaleSets/", 1)[1] for r in sent] == [
        "demo-gpu-0/virtualMachines/2/runCommand"
    ]
    assert sent[0].body == {"commandId": "RunShellScript", "script": [f"cat {RESULT}"]}
    assert len(arm.fake.calls("GET", "/operations/")) >= 3

    doc = status.to_json()
    row = doc["unhealthy"][0]
    assert (row["node"], row["island"], row["health"]) == ("gpu0000002", 0, "unhealthy")
    assert row["failing_checks"] == [
        {"name": "infiniband", "detail": "7 of 8 ports ACTIVE at 400 Gb/s; mlx5_ib3/1 DOWN"}
    ]
    nodes = doc["pools"][0]["islands"][0]["nodes"]
    assert nodes[2]["failing_checks"] == row["failing_checks"] and nodes[2]["diagnosis"]["state"] == "read"
    assert nodes[0]["failing_checks"] == [] and nodes[0]["diagnosis"] is None  # healthy: not asked
    assert doc["diagnosis"] == {
        "enabled": True,
        "limit": DIAGNOSE_LIMIT,
        "diagnosed": 1,
        "skipped_over_limit": 0,
        "skipped_not_running": 0,
        "skipped_denied": 0,
        "denied": None,
    }


def test_a_node_whose_result_cannot_be_read_says_why_and_the_others_still_report(arm, cluster, tmp_path):
    # A permission refusal is the same on every node and stops the run (the Reader test below); here
    # each node fails its own way, so every one is sent whatever order the answers come back in.
    good, missing, fewer, broken, huge = cluster[0].instances + cluster[1].instances
    for instance in (good, missing, fewer, broken, huge):
        unhealthy(instance)
    good.files[RESULT] = real_health_result(tmp_path, ports=7)
    fewer.files[RESULT] = real_health_result(tmp_path / "fewer", ports=6)
    broken.run_command_error = (
        "VMAgentStatusCommunicationError",
        "VM 'gpu1000000' has not reported status for VM agent or extensions.",
    )
    huge.files[RESULT] = json.dumps(
        {"healthy": False, "checks": [{"name": "x", "ok": False, "detail": "y" * 5000}]}
    )
    arm.fake.inject("POST", "/demo-gpu-0/virtualMachines/0/runCommand", 429, headers={"Retry-After": "0"})

    status = cluster_status(spec(), arm.context(), "demo")
    by_name = {node.computer_name: node.diagnosis for _island, node in status.unhealthy()}

    assert by_name["gpu0000000"].state == "read"  # the throttled POST was retried
    assert by_name["gpu0000000"].failing[0][1].startswith("only 7 of 8 InfiniBand ports present")
    assert by_name["gpu0000001"].state == "unreadable"
    assert by_name["gpu0000001"].detail == (
        f"could not read the health result: cat: {RESULT}: No such file or directory; azc-health has not "
        "written it yet (on the node: `systemctl status azc-prepare azc-health.timer`)"
    )
    assert by_name["gpu0000002"].failing[0][1].startswith("only 6 of 8 InfiniBand ports present")
    assert status.diagnosis.denied is None and diagnosis_notes(status) == []
    assert by_name["gpu1000000"].detail == (
        "could not read the health result: VMAgentStatusCommunicationError: VM 'gpu1000000' has not "
        "reported status for VM agent or extensions."
    )
    assert by_name["gpu1000001"].state == "unreadable"
    assert "last 4096 bytes" in by_name["gpu1000001"].detail
    assert len(arm.fake.run_commands()) == 6  # five nodes, one POST retried after its 429
    row = next(r for r in status.to_json()["unhealthy"] if r["node"] == "gpu0000001")
    assert row["failing_checks"] == [] and row["diagnosis"]["state"] == "unreadable"


def test_no_diagnose_sends_no_run_command(arm, cluster) -> None:
    unhealthy(cluster[0].instances[1], '{"failing": "gpu"}')
    cluster[0].instances[1].files[RESULT] = '{"healthy": false, "checks": []}'
    status = cluster_status(spec(), arm.context(), "demo", diagnose=False)
    assert arm.fake.run_commands() == []
    ((_island, node),) = status.unhealthy()
    assert node.diagnosis is None and node.health_detail == '{"failing": "gpu"}'
    doc = status.to_json()
    assert doc["unhealthy"][0]["failing_checks"] == [] and doc["unhealthy"][0]["diagnosis"] is None
    assert doc["diagnosis"]["enabled"] is False and doc["diagnosis"]["diagnosed"] == 0


def test_diagnosis_is_capped_unhealthy_nodes_first_and_says_what_it_skipped(arm, cluster) -> None:
    gpu0, gpu1, infer = cluster
    unknown = [gpu0.instances[0], infer.instances[0]]
    for instance in unknown:
        instance.health = "HealthState/unknown"
    for instance in (gpu0.instances[2], gpu1.instances[0], gpu1.instances[1]):
        unhealthy(instance)
        instance.files[RESULT] = (
            '{"healthy": false, "checks": [{"name": "gpu", "ok": false, "detail": "7 of 8"}]}'
        )
    gpu0.instances[1].health = "HealthState/unhealthy"
    gpu0.instances[1].power = "deallocated"

    status = cluster_status(spec(), arm.context(), "demo", diagnose_limit=2)
    sent = sorted(r.path.rsplit("/virtualMachineScaleSets/", 1)[1] for r in arm.fake.run_commands())
    assert sent == ["demo-gpu-0/virtualMachines/2/runCommand", "demo-gpu-1/virtualMachines/0/runCommand"]
    states = {
        node.computer_name: (node.diagnosis.state, node.diagnosis.detail) for _i, node in status.unhealthy()
    }
    assert states["gpu0000002"] == ("read", "gpu: 7 of 8") and states["gpu1000000"] == ("read", "gpu: 7 of 8")
    over = "not diagnosed: over the limit of 2 nodes per run"
    assert states["gpu1000001"] == ("skipped", over)  # unhealthy, but the limit was reached
    assert states["gpu0000000"] == ("skipped", over) and states["infer0000000"] == ("skipped", over)
    assert states["gpu0000001"] == ("skipped", "not diagnosed: the node is deallocated")
    assert status.to_json()["diagnosis"] == {
        "enabled": True,
        "limit": 2,
        "diagnosed": 2,
        "skipped_over_limit": 3,
        "skipped_not_running": 1,
        "skipped_denied": 0,
        "denied": None,
    }


@pytest.mark.timeout(60)  # polled for ever, the test fails here instead of answering
def test_a_run_command_that_never_ends_is_given_up_on(arm, cluster) -> None:
    unhealthy(cluster[2].instances[0])
    arm.fake.run_command_polls = 10**6
    arm.fake.lro_retry_after = "1"
    status = cluster_status(spec(), arm.context(), "demo", diagnose_timeout=0.3)
    ((_island, node),) = status.unhealthy()
    assert node.diagnosis.detail == (
        "could not read the health result: Run Command did not finish within 0.3s (is the VM agent, "
        "waagent, running?)"
    )


READER_REFUSAL = (
    403,
    "AuthorizationFailed",
    "The client 'reader@example.com' with object id '0b7a2a4e' does not have authorization to perform "
    "action 'Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action'.",
)


def test_a_reader_sends_one_run_command_and_hears_once_what_it_needs(arm, cluster) -> None:
    """Run Command needs Virtual Machine Contributor: a Reader's first refusal stops the diagnosis."""
    nodes = cluster[0].instances + cluster[1].instances
    for instance in nodes:
        unhealthy(instance)
        instance.run_command_refusal = READER_REFUSAL

    status = cluster_status(spec(), arm.context(), "demo")
    assert len(arm.fake.run_commands()) == 1  # not one per unhealthy node
    first, *others = [node.diagnosis for _island, node in status.unhealthy()]
    assert first.state == "unreadable" and first.detail.startswith(
        "could not read the health result: AuthorizationFailed: The client 'reader@example.com'"
    )
    assert "Virtual Machine Contributor" not in first.detail  # said once, below, not per node
    assert len(others) == 4 and {(d.state, d.detail) for d in others} == {
        ("skipped", "not diagnosed: Azure refused Run Command on gpu0000000 (see below)")
    }
    doc = status.to_json()["diagnosis"]
    assert (doc["diagnosed"], doc["skipped_denied"]) == (1, 4)
    assert doc["denied"] == {
        "node": "gpu0000000",
        "code": "AuthorizationFailed",
        "message": READER_REFUSAL[2],
    }
    (note,) = diagnosis_notes(status)
    assert "Virtual Machine Contributor" in note and "--no-diagnose" in note and "demo-rg" in note


def test_a_refusal_that_is_not_about_permission_does_not_stop_the_others(arm, cluster) -> None:
    first, second = cluster[1].instances
    for instance in (first, second):
        unhealthy(instance)
    first.run_command_refusal = (409, "Conflict", "Run command extension execution is in progress.")
    second.files[RESULT] = '{"healthy": false, "checks": [{"name": "gpu", "ok": false, "detail": "7 of 8"}]}'
    status = cluster_status(spec(), arm.context(), "demo")
    by_name = {node.computer_name: node.diagnosis for _island, node in status.unhealthy()}
    assert by_name["gpu1000000"].detail.endswith(f"({runcommand.ONE_AT_A_TIME_HINT})")
    assert by_name["gpu1000001"].state == "read" and status.diagnosis.denied is None

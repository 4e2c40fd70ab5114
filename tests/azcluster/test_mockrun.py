"""The one mock harness (azcluster.mockrun): `plan` and the component tests run programs under the same
mocks, and one failed program never poisons the next run."""

from __future__ import annotations

import logging

import pytest

from azcluster import mockrun


def _network(fail: bool):
    def program():
        import pulumi_azure_native as azure

        vnet = azure.network.VirtualNetwork(
            "net",
            resource_group_name="rg",
            address_space={"address_prefixes": ["10.9.0.0/16"]},
        )
        subnet = azure.network.Subnet(
            "sub", resource_group_name="rg", virtual_network_name=vnet.name, address_prefix="10.9.1.0/24"
        )
        if fail:
            subnet.id.apply(lambda _: (_ for _ in ()).throw(ValueError("the program broke")))
        return subnet.id

    return program


def test_a_failed_program_leaves_nothing_behind_for_the_next_run():
    with pytest.raises(ValueError, match="the program broke"):
        mockrun.run(_network(fail=True))
    capture = mockrun.run(_network(fail=False))
    assert capture.value.endswith("/virtualNetworks/net/subnets/sub")
    planned = mockrun.run_program(_network(fail=False), "demo")
    assert sorted(r.name for r in planned.resources) == ["net", "sub"]


def test_tests_and_plan_see_the_same_mocked_azure():
    capture = mockrun.run(_network(fail=False), stack="demo")
    planned = mockrun.run_program(_network(fail=False), "demo")
    subnet = capture.one("network:Subnet")
    assert subnet.id == capture.value
    assert f"/subscriptions/{mockrun.MOCK_SUBSCRIPTION}/resourceGroups/rg/" in subnet.id
    assert sorted(r.urn for r in planned.resources) == sorted(r.urn for r in capture.resources)
    assert capture.depends_on(subnet, capture.one("network:VirtualNetwork"))


def test_a_plan_deserialises_each_registration_once_tests_twice(monkeypatch):
    """A plan keeps each resource's inputs once (as JSON); only tests also want them deserialised. Doing
    both for every scale set cost a 1,429-set plan CPU and memory (benchmarks/bench_plan_scale.py)."""
    from pulumi.runtime import rpc

    calls = []
    real = rpc.deserialize_properties

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(rpc, "deserialize_properties", counting)
    mockrun.run_program(_network(fail=False), "demo")
    in_plan = len(calls)
    calls.clear()
    capture = mockrun.run(_network(fail=False), stack="demo")
    assert [r.name for r in capture.resources] == ["net", "sub"]
    assert len(calls) >= in_plan + 2  # the captured copy of each of the two resources


def test_a_scale_set_reads_back_everything_but_its_custom_data_which_azure_never_returns():
    def program():
        import pulumi
        import pulumi_azure_native as azure

        secret = pulumi.Output.secret("c2VjcmV0")
        vmss = azure.compute.VirtualMachineScaleSet(
            "vmss",
            resource_group_name="rg",
            vm_scale_set_name="set",
            virtual_machine_profile={
                "os_profile": {"computer_name_prefix": "n-", "admin_username": "me", "custom_data": secret}
            },
        )
        return vmss.virtual_machine_profile

    capture = mockrun.run(program)
    registered = capture.one("compute:VirtualMachineScaleSet")
    assert registered.inputs["virtualMachineProfile"]["osProfile"]["customData"] == "c2VjcmV0"
    profile = capture.value["os_profile"]
    assert profile["computer_name_prefix"] == "n-" and profile["admin_username"] == "me"
    assert profile.get("custom_data") is None
    assert "customData" not in registered.outputs["virtualMachineProfile"]["value"]["osProfile"]


def test_a_failed_programs_leftovers_are_freed_without_a_traceback(caplog: pytest.LogCaptureFixture):
    # A failed program leaves Outputs whose futures hold its error, unread, in the SDK's module-level
    # lists until the next run clears them; Python reports each when the garbage collector frees it,
    # which may happen inside another module's ast.parse. asyncio's own handler would format a traceback
    # there, and on Python 3.11 that parses source again from within the outer parse ("AST constructor
    # recursion depth mismatch" in an unrelated test). The harness notes each on one line instead.
    import gc

    from pulumi.runtime import settings

    def program():
        import pulumi_azure_native as azure

        vnet = azure.network.VirtualNetwork(
            "net", resource_group_name="rg", address_space={"address_prefixes": ["10.9.0.0/16"]}
        )
        broken = vnet.name.apply(lambda _: (_ for _ in ()).throw(ValueError("the program broke")))
        azure.network.VirtualNetwork(
            "net2", resource_group_name="rg", address_space={"address_prefixes": [broken]}
        )
        return vnet.id

    with pytest.raises(ValueError, match="the program broke") as raised:
        mockrun.run(program)
    del raised  # its traceback holds the failed run's frames
    caplog.set_level(logging.DEBUG, logger="azcluster.mockrun.engine")
    settings.SETTINGS.outputs.clear()  # what the next run does first
    settings.SETTINGS.rpc_manager.clear()
    gc.collect()
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.WARNING]
    assert not [r for r in caplog.records if r.exc_info]
    noted = [r.getMessage() for r in caplog.records if r.name == "azcluster.mockrun.engine"]
    assert any("never retrieved" in line and "ValueError" in line for line in noted), noted

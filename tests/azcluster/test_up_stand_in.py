"""A stand-in size used end to end: no zone the pool allows has H100, its policy allows H200, so `up` builds
the empty island whole as H200 once Azure's SKU list and quota say it can, and from then on every part of
azcluster treats that island as H200: the scale set Pulumi's graph registers (sku, image), `plan` (which
island has which size, and its price), `status` (the size Azure reports, its price, what it stands in
for), and Slurm (the island's node records and gres.conf declare H200's CPUs, memory and GPUs, so a node
never registers with less than Slurm expects). A policy without the stand-in, and a stand-in without
quota, are refused with the reason.

The engine, fake clock and ARM fake are test_up_capacity's (`world`): the real stack program under mocks
decides what Pulumi would build; Azure's answers come from the ARM fake's capacity model.
"""

from __future__ import annotations

import json

from azcluster import stackfile
from azcluster.components.bootstrap import gpu_node
from azcluster.components.bootstrap.slurm import (
    SlurmSettings,
    default_dns_zone,
    node_hardware,
    parse_conf,
    render_configs,
)
from azcluster.components.catalog import find_size
from azcluster.ops.status import cluster_status
from tests.azcluster import test_up_capacity
from tests.azcluster.test_preflight_capacity import offer_h200
from tests.azcluster.test_up_capacity import (
    H100,
    azure_matches_the_graph,
    graph_scale_sets,
    refresh_drift,
    stack_text,
)
from tests.clirunner import run_cli

world = test_up_capacity.world  # the fixture: stack directory, ARM-backed engine, fake clock

H200 = "Standard_ND96isr_H200_v5"


def two_islands_h200_allowed(path, stand_ins: str = f"[{H200}]") -> None:
    path.write_text(stack_text(4, 2, f'{{zones: ["1", "2"], stand_in_sizes: {stand_ins}}}'), encoding="utf-8")


def test_no_h100_in_any_zone_builds_the_island_whole_as_h200_everywhere(world):
    arm, path, engine, _ = world
    two_islands_h200_allowed(path)
    offer_h200(arm, free_vcpus=192)  # room for one island of 2 x 96 vCPUs
    arm.fake.capacity.limit(H100, "1", 2)  # island 0 fits; island 1 finds nothing
    arm.fake.capacity.refuse(H100, "2", "ZonalAllocationFailed")
    result = run_cli("up", "cap", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    capacity = json.loads(result.stdout)["capacity"]
    assert capacity["complete"] is True and capacity["obtained"] == 4
    moves = [
        (m["island"], m["from_size"], m["to_size"], m["to_zone"], m["stand_in"]) for m in capacity["moved"]
    ]
    # island 1: zone 2 first (same size), then H200 in zone 1, the first zone its policy lists
    assert moves == [(1, H100, H100, "2", False), (1, H100, H200, "1", True)]
    assert capacity["moved"][1]["usd_per_node_hour"] == 84.80
    assert capacity["moved"][1]["quota_family"] == "standardNDISRH200V5Family"

    spec = stackfile.load_stack(str(path)).spec
    assert spec.pools[0].capacity.island_stand_ins == {"1": H200}
    assert spec.pools[0].capacity.island_zones == {"1": "1"}
    # Azure and Pulumi's graph agree: island 1 is an H200 scale set with its 2 nodes, island 0 H100.
    graph = graph_scale_sets(path)
    assert graph["cap-train-ib0"]["sku"]["name"] == H100
    assert graph["cap-train-ib1"]["sku"]["name"] == H200
    azure_matches_the_graph(arm, path)
    assert {s.name: (s.size, len(s.instances)) for s in arm.fake.scale_sets.values()} == {
        "cap-train-ib0": (H100, 2),
        "cap-train-ib1": (H200, 2),
    }
    assert refresh_drift(arm, path) == {"cap-train-ib0": set(), "cap-train-ib1": set()}

    # plan: which island has which size, and its price (table and --json)
    plan = run_cli("plan", "cap", "--json")
    assert plan.exit_code == 0, plan.stderr
    document = json.loads(plan.stdout)
    [policy] = document["capacity"]
    assert [(i["island"], i["size"], i["stand_in"], i["usd_per_node_hour"]) for i in policy["islands"]] == [
        (0, H100, False, 98.32),
        (1, H200, True, 84.80),
    ]
    assert document["summary"]["pools"][0]["stand_ins"] == [{"size": H200, "nodes": 2}]
    assert document["summary"]["cost_per_hour_usd"] < 4 * 98.32 + 50  # H200 priced as H200
    human = run_cli("plan", "cap", env={"COLUMNS": "250"})
    assert f"island 1 as stand-in {H200} in zone 1 ($84.80/h per node" in human.stdout
    assert f"2 on stand-in {H200}" in human.stdout

    # status: Azure's size, its price, what it stands in for
    status = cluster_status(spec, arm.context(), "cap", diagnose=False, slurm=False)
    by_island = {island.island: island.to_json() for island in status.islands}
    assert (by_island[1]["size"], by_island[1]["stand_in_for"], by_island[1]["usd_per_node_hour"]) == (
        H200,
        H100,
        84.80,
    )
    assert by_island[0]["stand_in_for"] is None

    # Slurm: island 1's records and gres.conf are H200's; island 0's stay H100's
    slurm_spec = spec.model_copy(update={"scheduler": "slurm"})
    configs = render_configs(slurm_spec, SlurmSettings.for_cluster(slurm_spec, default_dns_zone(slurm_spec)))
    nodes = {
        record["NodeName"]: record for record in parse_conf(configs["slurm.conf"]) if "NodeName" in record
    }
    h100, h200 = (node_hardware(find_size(name)) for name in (H100, H200))
    assert h100.memory_mb != h200.memory_mb  # 1900 GiB vs 1850 GiB: the wrong one would drain nodes
    assert nodes["train-i0-[000-001]"]["RealMemory"] == str(h100.memory_mb)
    assert nodes["train-i1-[000-001]"]["RealMemory"] == str(h200.memory_mb)
    assert nodes["train-i1-[000-001]"]["Gres"] == "gpu:8" and nodes["train-i1-[000-001]"]["CPUs"] == "96"
    # the partition's per-GPU memory default fits the island with less memory (8 one-GPU jobs per node)
    [partition] = [r for r in parse_conf(configs["slurm.conf"]) if r.get("PartitionName") == "train"]
    assert partition["DefMemPerGPU"] == str(h200.memory_mb // 8)
    assert (
        "NodeName=train-i0-[000-001],train-i1-[000-001] Name=gpu File=/dev/nvidia[0-7]"
        in configs["gres.conf"]
    )
    # the island's nodes boot as H200 (node.env says so; health checks count its GPUs)
    boot = gpu_node.PoolBoot.gather(spec, "train")
    assert "AZC_SIZE=Standard_ND96isr_H200_v5" in boot.cloud_config(1)
    assert "AZC_SIZE=Standard_ND96isr_H100_v5" in boot.cloud_config(0)


def test_a_stand_in_the_policy_does_not_allow_is_never_used(world):
    arm, path, _, _ = world
    two_islands_h200_allowed(path, stand_ins="[]")
    offer_h200(arm, free_vcpus=10_000)
    arm.fake.capacity.refuse(H100, "1", "ZonalAllocationFailed")
    arm.fake.capacity.refuse(H100, "2", "ZonalAllocationFailed")
    result = run_cli("up", "cap", "--yes", "--json")
    assert result.exit_code == 1
    capacity = json.loads(result.stdout)["capacity"]
    assert all(move["to_size"] == H100 for move in capacity["moved"])
    assert not any(size == H200 for size, *_ in arm.fake.capacity.asked)
    assert {s.size for s in arm.fake.scale_sets.values()} == {H100}
    assert stackfile.load_stack(str(path)).spec.pools[0].capacity.island_stand_ins == {}
    azure_matches_the_graph(arm, path)


def test_a_stand_in_without_quota_for_the_island_is_skipped_with_the_reason(world):
    arm, path, _, _ = world
    two_islands_h200_allowed(path)
    offer_h200(arm, free_vcpus=96)  # one node's worth; an island needs 192
    arm.fake.capacity.refuse(H100, "1", "ZonalAllocationFailed")
    arm.fake.capacity.refuse(H100, "2", "ZonalAllocationFailed")
    result = run_cli("up", "cap", "--yes", "--json")
    assert result.exit_code == 1
    capacity = json.loads(result.stdout)["capacity"]
    assert not any(move["to_size"] == H200 for move in capacity["moved"])
    reasons = {(item["island"], item["zone"]): item["reason"] for item in capacity["skipped"]}
    assert "96 vCPUs free, 192 needed" in reasons[(0, "1")]
    assert "standardNDISRH200V5Family" in reasons[(0, "1")]
    # each island's explanation names what the next `grow` would try, with the stack's name
    todo = " ".join(capacity["islands"][0]["explanation"]["todo"])
    assert "`azcluster grow cap` (or `up`) builds the island as stand-in Standard_ND96isr_H200_v5" in todo
    assert not any(size == H200 for size, *_ in arm.fake.capacity.asked)
    azure_matches_the_graph(arm, path)


def test_grow_moves_an_empty_island_whole_to_the_next_zone(world, tmp_path, monkeypatch):
    """`grow`, like `up`: an island with nothing in its zone is rebuilt whole in the next zone its pool
    allows (the stack file records it, Pulumi replaces the empty scale set), never split across zones."""
    from tests.fakes.arm import fake_az_script

    arm, path, engine, _ = world
    fake_az_script(tmp_path / "bin", arm.fake.token)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    arm.fake.lro_polls = 0
    path.write_text(stack_text(4, 2, '{zones: ["1", "3"], min_nodes: 1}'), encoding="utf-8")
    arm.fake.capacity.limit(H100, "1", 2)  # island 0 takes zone 1's last two hosts
    arm.fake.capacity.refuse(H100, "3", "ZonalAllocationFailed")
    first = run_cli("up", "cap", "--yes", "--json")
    assert first.exit_code == 1  # island 1: nothing in zone 1, moved to zone 3, nothing there either
    spec = stackfile.load_stack(str(path)).spec
    assert spec.pools[0].capacity.island_zones == {"1": "3"}
    ups = engine.methods().count("up")

    arm.fake.capacity.add(H100, "1", 2)  # zone 1 has room again; zone 3 still has none
    result = run_cli("grow", "cap", "--json", "--auth", "cli", "--no-hostfiles")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["complete"] is True and document["obtained"] == 4
    assert [(m["island"], m["from_zone"], m["to_zone"]) for m in document["moved"]] == [(1, "3", "1")]
    assert stackfile.load_stack(str(path)).spec.pools[0].capacity.island_zones == {"1": "1"}
    assert engine.methods().count("up") == ups + 1  # one Pulumi run replaced the empty island
    for scale_set in arm.fake.scale_sets.values():  # whole, in one zone each
        assert scale_set.zones == ["1"] and len(scale_set.instances) == 2
    azure_matches_the_graph(arm, path)
    assert refresh_drift(arm, path) == {"cap-train-ib0": set(), "cap-train-ib1": set()}


def test_grow_without_another_zone_needs_no_pulumi(world, tmp_path, monkeypatch):
    from tests.fakes.arm import fake_az_script

    arm, path, engine, _ = world
    fake_az_script(tmp_path / "bin", arm.fake.token)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    arm.fake.lro_polls = 0
    path.write_text(stack_text(4, 2, "{min_nodes: 1}"), encoding="utf-8")
    arm.fake.capacity.limit(H100, "1", 3)
    assert run_cli("up", "cap", "--yes", "--json").exit_code == 0
    ups = engine.methods().count("up")
    arm.fake.capacity.add(H100, "1", 1)
    result = run_cli("grow", "cap", "--json", "--auth", "cli", "--no-hostfiles")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["complete"] is True
    assert "moved" not in json.loads(result.stdout)  # grow's own document: nothing moved
    assert engine.methods().count("up") == ups

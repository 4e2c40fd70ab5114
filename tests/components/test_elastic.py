"""azcluster.components.elastic: which islands are elastic, what the login node's programs are told,
the Slurm power-saving keys and the cost all-on versus idle."""

from __future__ import annotations

import json
from typing import Any

import pytest

from azcluster.components import catalog, elastic
from azcluster.components.bootstrap import parse_computer_name
from azcluster.components.spec import ClusterSpec

H100 = "Standard_ND96isr_H100_v5"
NC = "Standard_NC80adis_H100_v5"


def spec(**elastic_args: Any) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "pools": [
                {"name": "h100", "size": H100, "nodes": 64, "island_max_nodes": 16},
                {"name": "nc", "size": NC, "nodes": 3},
            ],
            "ssh": {"public_keys": ["ssh-ed25519 AAAA"]},
            "elastic": elastic_args,
        }
    )


def test_islands_follow_the_scale_sets_with_keep_warm_per_pool() -> None:
    islands = elastic.plan_islands(spec(keep_warm_islands=1))
    assert [(i.key, i.scale_set, i.nodes, i.keep_warm) for i in islands] == [
        ("h100-i0", "llm-h100-ib0", 16, True),
        ("h100-i1", "llm-h100-ib1", 16, False),
        ("h100-i2", "llm-h100-ib2", 16, False),
        ("h100-i3", "llm-h100-ib3", 16, False),
        ("nc-i0", "llm-nc", 3, True),
    ]
    # the host prefix is the one the scale set gets, so host names map back to the island
    assert islands[1].host_prefix == "llm-h100-i1-"
    assert parse_computer_name(islands[1].host_prefix + "00000f").island_key == "h100-i1"


def test_scale_set_names_match_the_gpu_pool_component() -> None:
    from azcluster.components.gpu_pool import plan_islands

    s = spec()
    for pool in s.pools:
        size = catalog.find_size(pool.size)
        names = [island.name for island in plan_islands(s.name, pool, size)]
        assert names == [i.scale_set for i in elastic.plan_islands(s) if i.pool == pool.name]


def test_config_carries_identity_scope_and_islands() -> None:
    config = json.loads(elastic.render_config(spec(idle_minutes=45), "sub-1", "client-1"))
    assert config["subscription_id"] == "sub-1" and config["client_id"] == "client-1"
    assert config["resource_group"] == "llm-rg"
    assert config["idle_minutes"] == 45 and config["api_version"] == elastic.ARM_API_VERSION
    assert config["scheduler"] == "slurm"  # the spec's default
    assert len(config["islands"]) == 5
    assert config["islands"][0]["gpus_per_node"] == 8
    assert config["islands"][0]["usd_per_node_hour"] == catalog.find_size(H100).price.usd_per_hour


def test_slurm_keys_come_from_the_spec() -> None:
    keys = elastic.slurm_power_save(spec(idle_minutes=60, resume_timeout_minutes=25, keep_warm_islands=1))
    assert keys["SuspendProgram"] == "/usr/local/lib/azcluster/azc-elastic-suspend"
    assert keys["ResumeProgram"] == "/usr/local/lib/azcluster/azc-elastic-resume"
    assert keys["ResumeFailProgram"] == "/usr/local/lib/azcluster/azc-elastic-resume-fail"
    assert keys["SuspendTime"] == "3600" and keys["ResumeTimeout"] == "1500"
    # islands kept warm are excluded by Slurm node name: the slots of island 0 of each pool, as many as
    # the island has VMs (an elastic cluster declares only slots a VM backs: 3 nc VMs, not 100 slots)
    assert keys["SuspendExcNodes"] == "h100-i0-[000-015],nc-i0-[000-002]"


def test_slurm_programs_are_single_paths_that_run_the_program() -> None:
    for path, command in elastic.SLURM_PROGRAMS.values():
        assert " " not in path  # slurmctld execs the value as one file name
        wrapper = elastic.slurm_wrapper(command)
        assert wrapper.startswith("#!/bin/sh\n") and f'{elastic.PROGRAM} {command} "$@"' in wrapper


def test_no_slurm_keys_when_elastic_is_off() -> None:
    assert elastic.slurm_power_save(spec(enabled=False)) == {}
    assert "SuspendExcNodes" not in elastic.slurm_power_save(spec())


def test_cost_all_on_versus_the_warm_floor() -> None:
    h100 = catalog.find_size(H100).price.usd_per_hour
    nc = catalog.find_size(NC).price.usd_per_hour
    cost = elastic.elastic_cost(spec(keep_warm_islands=1))
    assert cost.all_on_usd_per_hour == pytest.approx(64 * h100 + 3 * nc, abs=0.01)
    assert cost.floor_usd_per_hour == pytest.approx(16 * h100 + 3 * nc, abs=0.01)
    assert elastic.elastic_cost(spec(enabled=False)).floor_usd_per_hour == cost.all_on_usd_per_hour


def test_a_day_busy_eight_hours_pays_the_idle_tail_then_the_floor() -> None:
    cost = elastic.ElasticCost(all_on_usd_per_hour=100.0, floor_usd_per_hour=10.0, idle_minutes=60)
    assert cost.per_day(8) == 9 * 100.0 + 15 * 10.0
    assert cost.per_day(0) == 24 * 10.0
    assert cost.per_day(24) == 24 * 100.0


def test_the_readme_worked_example_is_this_arithmetic() -> None:
    from pathlib import Path

    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())

    def cost(warm: int) -> elastic.ElasticCost:
        return elastic.elastic_cost(
            ClusterSpec.model_validate(
                {
                    "name": "llm",
                    "location": "eastus",
                    "pools": [{"name": "h100", "size": H100, "nodes": 64, "island_max_nodes": 16}],
                    "ssh": {"public_keys": ["ssh-ed25519 AAAA"]},
                    "elastic": {"idle_minutes": 60, "keep_warm_islands": warm},
                }
            )
        )

    always, cold, warm = cost(0).per_day(24), cost(0).per_day(8), cost(1).per_day(8)
    assert (
        f"${cost(0).all_on_usd_per_hour:,.2f}/h, ${always:,.2f} a day, **${30 * always:,.2f} over 30 days**"
        in readme
    )
    assert (
        f"${cold:,.2f} a day, **${30 * cold:,.2f} over 30 days**, {100 * (1 - cold / always):.1f}% less"
        in readme
    )
    assert (
        f"${warm:,.2f} a day, ${30 * warm:,.2f} over 30 days, {100 * (1 - warm / always):.1f}% less" in readme
    )

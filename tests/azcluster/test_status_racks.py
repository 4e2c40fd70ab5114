"""`status` shows a GB pool's NVL72 racks (Slurm blocks: one per NVLink domain) as up, partial, starting or
powered off, from Slurm's node states read on the fake login VM (the real ComputeManagementClient, Run
Command, the sinfo format slurmstate reads), in the table and in --json."""

from __future__ import annotations

import json

import pytest

from azcluster.ops.model import RackState
from azcluster.ops.status import cluster_status
from azcluster.ops.status_view import print_status, rack_lines
from tests.azcluster import demo
from tests.azcluster.fake_slurm import FakeSlurm

GB200 = "Standard_ND128isr_NDR_GB200_v6"


@pytest.fixture
def slurm(arm, tmp_path):
    demo.add_to(arm.fake)
    fake = FakeSlurm(tmp_path / "login-programs")
    arm.fake.vms[("demo-rg", "demo-login")].programs = fake.bin
    return fake


def gb_spec():
    """The demo cluster with its first pool on GB200: 36 VMs, islands of 72 slots (4 racks each)."""
    spec = demo.spec()
    pool = spec.pools[0].model_copy(update={"size": GB200, "nodes": 36, "island_max_nodes": 72})
    return spec.model_copy(update={"pools": [pool, spec.pools[1]]})


def test_status_shows_each_rack_up_partial_or_powered_off(arm, slurm, capsys):
    nodes = {}
    for n in range(18):  # rack r0: every node up (idle or running jobs)
        nodes[f"gpu-i0-{n:03d}"] = ("allocated" if n < 4 else "idle", f"h{n}", f"10.42.0.{n}", "none")
    for n in range(18, 36):  # rack r1: 12 up, 2 drained, 4 deallocated
        state = "idle" if n < 30 else "drained" if n < 32 else "idle~"
        nodes[f"gpu-i0-{n:03d}"] = (
            state,
            f"h{n}",
            f"10.42.1.{n}",
            "azc-health: x" if state == "drained" else "none",
        )
    for n in range(36, 54):  # rack r2: deallocated whole (elastic power)
        nodes[f"gpu-i0-{n:03d}"] = ("idle~", f"gpu-i0-{n:03d}", "gpu-i0", "none")
    for n in range(54, 72):  # rack r3: no node holds a slot
        nodes[f"gpu-i0-{n:03d}"] = ("drained~", f"gpu-i0-{n:03d}", "gpu-i0", "azc-slot: free")
    nodes["infer-i0-000"] = ("idle", "infer0", "10.42.9.4", "none")  # not a rack size: no racks
    slurm.nodes(nodes)
    status = cluster_status(gb_spec(), arm.context(), "demo", diagnose=False)
    assert [(r.rack, r.state) for r in status.racks] == [
        ("gpu-i0-r0", "up"),
        ("gpu-i0-r1", "partial"),
        ("gpu-i0-r2", "powered off"),
    ]
    document = status.to_json()
    json.dumps(document)
    assert document["racks"][1] == {
        "pool": "gpu",
        "island": 0,
        "rack": "gpu-i0-r1",
        "state": "partial",
        "slots": 18,
        "nodes": 18,
        "up": 12,
        "starting": 0,
        "down": 2,
        "powered_off": 4,
    }
    print_status(status)
    out = capsys.readouterr().out.replace("\n", " ")
    assert "racks of pool gpu island 0 (1 up, 1 partial, 1 powered off):" in out
    assert "gpu-i0-r1 partial (12 up, 2 down, 4 off of 18)" in out
    assert "gpu-i0-r2 powered off (18/18)" in out


def test_a_rack_being_started_says_so_and_a_cluster_without_racks_shows_none(arm, slurm):
    rack = RackState("gb", 0, "gb-i0-r0", 18, up=10, starting=8)
    assert rack.state == "starting" and rack.describe() == "gb-i0-r0 starting (10 up, 8 starting of 18)"
    slurm.nodes({"gpu-i0-000": ("idle", "gpu0000000", "10.42.0.4", "none")})
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    assert status.racks == [] and rack_lines(status) == [] and status.to_json()["racks"] == []

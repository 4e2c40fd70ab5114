"""Slurm's node states in `status`: real sinfo output parsed (tests/azcluster/fixtures/sinfo, captured from
Slurm 22.05.8), read on the fake login VM through the real ComputeManagementClient and Run Command, and
joined to Azure's nodes by host name or address."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import pytest

from azcluster.ops import runcommand, slurmstate, slurmstate_view
from azcluster.ops.status import cluster_status
from azcluster.ops.status_view import print_status
from tests.azcluster import demo
from tests.azcluster.fake_slurm import FakeSlurm

FIXTURES = Path(__file__).parent / "fixtures" / "sinfo"


def fixture(name: str) -> str:
    return (FIXTURES / f"{name}.txt").read_text()


@pytest.fixture
def slurm(arm, tmp_path):
    demo.add_to(arm.fake)
    fake = FakeSlurm(tmp_path / "login-programs")
    arm.fake.vms[("demo-rg", "demo-login")].programs = fake.bin
    return fake


def test_real_sinfo_lines_parse_into_state_reason_host_and_address():
    (idle,) = slurmstate.parse_sinfo(fixture("idle"))
    assert (idle.name, idle.state, idle.hostname, idle.address, idle.reason) == (
        "gpu-i0-000",
        "idle",
        "vm",
        "127.0.0.1",
        None,  # sinfo prints 'none' without a reason
    )
    assert idle.usable and idle.describe() == "idle"
    (drained,) = slurmstate.parse_sinfo(fixture("drained"))
    assert drained.base_state == "drained" and not drained.usable
    assert drained.reason == "azc-health: infiniband: 7 of 8 ports ACTIVE (mlx5_ib3 DOWN)"
    (draining,) = slurmstate.parse_sinfo(fixture("draining"))
    assert draining.describe() == "draining: azc-health: gpu: 7 of 8 GPUs"
    assert slurmstate.parse_sinfo(fixture("allocated"))[0].usable


def test_state_suffixes_are_named_and_a_node_in_two_partitions_counts_once():
    text = "gpu-i0-000|idle~|h0|10.0.0.4|none\ngpu-i0-001|down*|h1|10.0.0.5|Not responding\n"
    text += "gpu-i0-000|idle~|h0|10.0.0.4|none\n"  # -N lists a node once per partition
    powered_off, down = slurmstate.parse_sinfo(text)
    assert powered_off.base_state == "idle" and powered_off.flags == ["powered off"] and powered_off.usable
    assert down.describe() == "down* (not responding): Not responding" and not down.usable


def test_status_shows_each_nodes_slurm_state_and_the_slurm_nodes_without_a_vm(arm, slurm, capsys):
    slurm.nodes(
        {
            "gpu-i0-000": ("allocated", "gpu0000000", "10.42.0.4", "none"),
            "gpu-i0-001": (
                "drained",
                "other-name",
                "10.42.0.5",
                "azc-health: gpu: 7 of 8 GPUs",
            ),  # by address
            "gpu-i1-000": ("idle~", "gpu1000000", "10.42.1.4", "none"),
            "gpu-i0-007": ("down*", "gone0000007", "10.42.0.99", "Not responding"),  # its VM was deleted
        }
    )
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    by_name = {n.computer_name: n for island in status.islands for n in island.nodes}
    assert by_name["gpu0000000"].slurm.base_state == "allocated"
    assert by_name["gpu0000001"].slurm.reason == "azc-health: gpu: 7 of 8 GPUs"
    assert by_name["gpu1000000"].slurm.flags == ["powered off"]
    assert by_name["gpu0000002"].slurm is None  # running in Azure, not (yet) a Slurm node
    assert [n.name for n in status.slurm.unmatched] == ["gpu-i0-007"]
    document = status.to_json()
    json.dumps(document)
    assert document["slurm"]["states"] == {"allocated": 1, "down": 1, "drained": 1, "idle": 1}
    assert document["slurm"]["without_vm"][0]["reason"] == "Not responding"
    node = document["pools"][0]["islands"][0]["nodes"][1]
    assert node["slurm"] == {
        "node": "gpu-i0-001",
        "state": "drained",
        "flags": [],
        "reason": "azc-health: gpu: 7 of 8 GPUs",
        "hostname": "other-name",
        "address": "10.42.0.5",
    }
    print_status(status)
    out = capsys.readouterr().out
    cell = slurmstate_view.slurm_cell(by_name["gpu0000001"].slurm)
    assert cell.plain == "drained: azc-health: gpu: 7 of 8 GPUs" and cell.spans  # in red
    assert "slurm" in out and "allocated" in out and "idle~ (powered off)" in out.replace("\n", "")
    assert "slurm: 1 allocated, 1 down, 1 drained, 1 idle" in out
    assert "gpu-i0-007: down* (not responding): Not responding (no VM in Azure)" in out
    (login,) = [c for c in slurm.calls() if c.startswith("sinfo")]
    assert login == "sinfo -h -N -o %N|%T|%n|%o|%E"


def test_a_large_cluster_comes_back_in_chunks_under_run_commands_4_kib(arm, slurm):
    import random

    rng = random.Random(7)  # incompressible-ish reasons so the listing needs several chunks
    states = {
        f"gpu-i{i // 250}-{i % 250:03d}": (
            "drained",
            f"h{i}",
            f"10.42.{i // 250}.{i % 250}",
            f"r{rng.random()}",
        )
        for i in range(1000)
    }
    slurm.nodes(states)
    begin = runcommand.on_vm(_client(arm), "demo-rg", "demo-login")
    view = slurmstate.read_slurm(begin, run_id="0badc0de")
    assert view.error is None and len(view.nodes) == 1000
    scripts = arm.fake.vms[("demo-rg", "demo-login")].scripts
    assert len(scripts) > 1  # more than one call, each under the 4 KiB Run Command returns
    assert sum("sinfo -h -N" in line for s in scripts for line in s) == 1  # sinfo ran once


def _client(arm):
    from azcluster.azure import compute_client

    return compute_client(arm.context())


def test_controller_down_or_run_command_refused_is_a_note_not_a_failure(arm, slurm):
    slurm.controller_down()
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    assert status.found and status.slurm.error == (
        "sinfo failed on the login node: slurm_load_partitions: Unable to contact slurm controller "
        "(connect failure)"
    )
    login = arm.fake.vms[("demo-rg", "demo-login")]
    login.run_command_refusal = (403, "AuthorizationFailed", "no runCommand/action for reader@example.com")
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    assert "AuthorizationFailed" in status.slurm.error
    assert slurmstate_view.slurm_lines(status.slurm)[0].startswith(
        "slurm: not read (Run Command on the login node"
    )


def test_a_login_vm_without_slurm_says_so_whatever_this_machine_has_installed(arm):
    """No FakeSlurm on the VM: sinfo is not found there, even where the test machine has Slurm (.ci/run
    installs it; its sinfo, given no slurm.conf, would ask DNS for a controller and leave loopback)."""
    demo.add_to(arm.fake)
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    assert status.found and "sinfo: command not found" in status.slurm.error
    (script,) = arm.fake.vms[("demo-rg", "demo-login")].scripts
    assert any(line.startswith("sinfo ") for line in script)


def test_no_slurm_no_call(arm, slurm):
    status = cluster_status(demo.spec(scheduler="none"), arm.context(), "demo", diagnose=False)
    assert status.slurm is None and not arm.fake.vms[("demo-rg", "demo-login")].scripts
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False, slurm=False)
    assert status.slurm is None and status.to_json()["slurm"] is None


def test_the_listing_travels_gzip_base64_and_decodes_exactly():
    text = fixture("drained") * 3
    encoded = base64.b64encode(gzip.compress(text.encode())).decode()
    stdout = f"AZC-SINFO {len(encoded)} 0\n{encoded}\nAZC-SINFO-END\n"
    size, chunk = runcommand.listing_chunk(stdout, slurmstate.MARKER)
    assert size == len(encoded) and gzip.decompress(base64.b64decode(chunk)).decode() == text
    with pytest.raises(ValueError):
        runcommand.listing_chunk("bash: sinfo: command not found\n", slurmstate.MARKER)


def test_status_shows_the_users_with_most_gpus_running_now(arm, slurm, capsys):
    slurm.nodes({"gpu-i0-000": ("allocated", "gpu0000000", "10.42.0.4", "none")})
    # real squeue 24.11 lines (tests/components/test_slurm_accounting_real.py reads the same from squeue)
    slurm.running(
        "alice|2|cpu=192,mem=3700G,node=2,billing=192,gres/gpu=16|\n"
        "bob|1|cpu=12,mem=230G,node=1,billing=12,gres/gpu=1|\n"
        "alice|1|cpu=24,mem=460G,node=1,billing=24,gres/gpu=2|\n"
        "carol|1|cpu=8,mem=16G,node=1,billing=8|\n"
        + "".join(f"u{i}|1|cpu=1,node=1,billing=1,gres/gpu=1|\n" for i in range(5))
    )
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    top = status.to_json()["slurm"]["top_users"]
    assert top[:2] == [
        {"user": "alice", "jobs": 2, "nodes": 3, "gpus": 18},
        {"user": "bob", "jobs": 1, "nodes": 1, "gpus": 1},
    ]
    assert len(top) == slurmstate.TOP_USERS and all(u["gpus"] == 1 for u in top[2:])  # carol has none
    print_status(status)
    out = capsys.readouterr().out
    assert "slurm: top users now: alice 18 GPUs on 3 nodes (2 jobs), bob 1 GPU on 1 node (1 job)" in out
    assert [c for c in slurm.calls() if c.startswith("squeue")] == [
        f"squeue -h -t RUNNING -O {slurmstate.SQUEUE_FORMAT}"
    ]


def test_no_squeue_on_the_login_node_means_no_top_users_and_nothing_else_lost(arm, slurm):
    slurm.nodes({"gpu-i0-000": ("idle", "gpu0000000", "10.42.0.4", "none")})
    (slurm.bin / "squeue").unlink()
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    assert status.slurm.error is None and status.slurm.top_users == []
    assert status.to_json()["slurm"]["states"] == {"idle": 1}

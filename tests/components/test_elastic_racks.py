"""Whole-rack power for GB pools: azc-elastic.py (the login node's power programs) against the loopback ARM
and IMDS fakes (tests/components/test_elastic_programs.py's World), with a stand-in scontrol that answers
`scontrol -o show node` from a table of node states, as Slurm prints them, and `scontrol show config`'s
SuspendExcNodes with the last value set, and records every other call. The same paths on real slurmctld:
test_elastic_racks_real.

A GB pool's slots come in Slurm blocks of a rack (18): resuming part of a rack asks Slurm to power up the
rest of it; the watch keeps every rack with a busy node in SuspendExcNodes, so only wholly idle racks are
suspended.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from azcluster.components import elastic
from azcluster.components.spec import ClusterSpec
from tests.components.test_elastic_programs import RG, World, world  # noqa: F401 (the fixture)

GB200 = "Standard_ND128isr_NDR_GB200_v6"


def gb_spec() -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "pools": [{"name": "gb", "size": GB200, "nodes": 36}],
            "ssh": {"public_keys": ["ssh-ed25519 AAAA"]},
            "elastic": {"idle_minutes": 30},
        }
    )


@pytest.fixture
def racks(world: World, tmp_path: Path) -> World:  # noqa: F811
    world.configure(gb_spec(), scheduler="slurm")
    world.arm.add_scale_set(
        RG,
        "llm-gb-ib0",
        GB200,
        36,
        computer_prefix="llm-gb-i0-",
        tags={"azcluster-cluster": "llm", "azcluster-island": "0"},
    )
    world.states_path = tmp_path / "states.json"
    world.states_path.write_text("{}")
    world.exc_path = tmp_path / "suspend-exc-nodes"
    scontrol = tmp_path / "scontrol-states"
    scontrol.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        "args = sys.argv[1:]\n"
        "if args[:3] == ['-o', 'show', 'node']:\n"
        f"    table = json.load(open({str(world.states_path)!r}))\n"
        "    for name in args[3].split(','):\n"
        "        state = table.get(name, 'IDLE+CLOUD+POWERED_DOWN')\n"
        "        print(f'NodeName={name} Arch=aarch64 NodeAddr={name} NodeHostName={name} State={state}')\n"
        "    sys.exit(0)\n"
        # slurmctld's SuspendExcNodes: the last value set, as `scontrol show config` prints it
        f"held = {str(world.exc_path)!r}\n"
        "if args == ['show', 'config']:\n"
        "    value = open(held).read() if os.path.exists(held) else ''\n"
        "    print(f'SuspendExcNodes         = {value or \"(null)\"}')\n"
        "    sys.exit(0)\n"
        "if args[:1] == ['update'] and args[1].startswith('SuspendExcNodes='):\n"
        "    open(held, 'w').write(args[1].split('=', 1)[1])\n"
        f"open({str(world.scontrol_log)!r}, 'a').write(' '.join(args) + '\\n')\n"
    )
    scontrol.chmod(0o755)
    world.env["AZC_SCONTROL"] = str(scontrol)
    for inst in world.arm.scale_sets[(RG, "llm-gb-ib0")].instances:
        inst.power = "deallocated"
    return world


def slots(first: int, last: int) -> list[str]:
    return [f"gb-i0-{n:03d}" for n in range(first, last + 1)]


def test_the_config_says_which_islands_come_in_racks() -> None:
    config = json.loads(elastic.render_config(gb_spec(), "sub", "client"))
    (island,) = config["islands"]
    assert island["rack"] == 18 and island["slot_width"] == 3 and island["nodes"] == 36


def test_resuming_part_of_a_rack_powers_up_the_rest_of_it(racks: World) -> None:
    states = {name: "IDLE+CLOUD+POWERED_DOWN" for name in slots(0, 35)}
    states["gb-i0-018"] = states["gb-i0-019"] = "IDLE+CLOUD+POWERING_UP"
    states["gb-i0-030"] = "IDLE+DRAIN+CLOUD+POWERED_DOWN"  # an administrator's drain: left alone
    states["gb-i0-031"] = "DOWN+CLOUD+POWERED_DOWN"  # marked down (a failed start, or by hand): left alone
    racks.states_path.write_text(json.dumps(states))
    assert racks.run("resume", "gb-i0-[018-019]").returncode == 0, racks.log.read_text()
    [(scale_set, ids)] = racks.posts("start")
    assert scale_set == "llm-gb-ib0" and len(ids) == 2  # this call starts only what Slurm asked for
    [call] = [c for c in racks.scontrol_calls() if "POWER_UP" in c]
    rest = [n for n in slots(20, 35) if n not in ("gb-i0-030", "gb-i0-031")]
    assert call == f"update NodeName={','.join(rest)} State=POWER_UP"  # rack r0 (000-017) untouched


def test_the_watch_keeps_racks_with_a_busy_node_out_of_suspension(racks: World) -> None:
    states = {name: "IDLE+CLOUD" for name in slots(0, 35)}
    states["gb-i0-005"] = "ALLOCATED+CLOUD"
    racks.states_path.write_text(json.dumps(states))
    assert racks.run("watch").returncode == 0, racks.log.read_text()
    exc = [c for c in racks.scontrol_calls() if "SuspendExcNodes" in c]
    assert exc == [f"update SuspendExcNodes={','.join(slots(0, 17))}"]
    assert racks.run("watch").returncode == 0
    assert len([c for c in racks.scontrol_calls() if "SuspendExcNodes" in c]) == 1  # unchanged: not sent
    racks.exc_path.write_text("")  # a reconfigure or restart put slurm.conf's value back: sent again
    assert racks.run("watch").returncode == 0
    exc = [c for c in racks.scontrol_calls() if "SuspendExcNodes" in c]
    assert exc == [f"update SuspendExcNodes={','.join(slots(0, 17))}"] * 2
    states["gb-i0-005"] = "IDLE+CLOUD"  # the rack's last job ended: all of it may be suspended now
    racks.states_path.write_text(json.dumps(states))
    assert racks.run("watch").returncode == 0
    assert [c for c in racks.scontrol_calls() if "SuspendExcNodes" in c][-1] == "update SuspendExcNodes="


def test_kept_warm_islands_stay_excluded_beside_busy_racks(racks: World) -> None:
    racks.configure(
        gb_spec().model_copy(
            update={"elastic": gb_spec().elastic.model_copy(update={"keep_warm_islands": 1})}
        ),
        scheduler="slurm",
    )
    states = {name: "IDLE+CLOUD" for name in slots(0, 35)}
    states["gb-i0-020"] = "MIXED+CLOUD"
    racks.states_path.write_text(json.dumps(states))
    assert racks.run("watch").returncode == 0, racks.log.read_text()
    [call] = [c for c in racks.scontrol_calls() if "SuspendExcNodes" in c]
    assert call == f"update SuspendExcNodes=gb-i0-[000-035],{','.join(slots(18, 35))}"

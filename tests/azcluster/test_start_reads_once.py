"""`start` then the login node's hostfiles: the scale sets are listed once and every node is read once.

Request counts against the loopback fake ARM (tests/fakes/arm.py), which pages scale-set VMs and NICs two
per page. Before, the hostfile refresh listed the scale sets again and read every node twice (its VM in the
VM list, for the power state, and its NIC, for the IP): 198 requests at 4096 nodes against stop's 97.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.azcluster.test_cli_azure import H100, login_files, stack_file
from tests.clirunner import run_cli

SCALE_SET_LIST = r"/virtualMachineScaleSets"
VM_LIST = r"/virtualMachineScaleSets/(?P<set>[^/]+)/virtualMachines"
NIC_LIST = r"/virtualMachineScaleSets/(?P<set>[^/]+)/networkInterfaces"


@pytest.fixture
def cli(az_cli):
    return az_cli


def gets(fake, tail: str) -> list[re.Match]:
    """The GETs whose path ends in `tail` (a regex), as matches."""
    found = (re.search(tail + "$", r.path) for r in fake.requests if r.method == "GET")
    return [match for match in found if match]


def served(fake, tail: str) -> dict[str, int]:
    """Items of each scale set's list that the fake sent, over all its pages (the $skiptoken says where)."""
    counts: dict[str, int] = {}
    for request in fake.requests:
        match = re.search(tail + "$", request.path)
        if request.method != "GET" or not match:
            continue
        total = len(fake.scale_sets[("demo-rg", match["set"])].instances)
        start = int((request.query.get("$skiptoken") or ["0"])[0])
        counts[match["set"]] = counts.get(match["set"], 0) + min(fake.page_size, total - start)
    return counts


def deallocated(sets) -> None:
    for scale_set in sets:
        for instance in scale_set.instances:
            instance.power = "deallocated"


def test_start_lists_once_and_reads_each_started_node_once(cli) -> None:
    deallocated(cli.fake.add_cluster("demo", {"gpu": (H100, [3, 2])}))

    result = run_cli("start", stack_file(cli.tmp, nodes=5), "--auth", "cli", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["hostfiles"]["state"] == "installed"
    assert login_files(cli) == {
        "gpu-i0": "10.42.0.4\n10.42.0.5\n10.42.0.6\n",
        "gpu-i1": "10.42.1.4\n10.42.1.5\n",
    }

    assert len(gets(cli.fake, SCALE_SET_LIST)) == 1
    assert served(cli.fake, VM_LIST) == {}  # every node of a scale set that started is running
    assert served(cli.fake, NIC_LIST) == {"demo-gpu-0": 3, "demo-gpu-1": 2}  # each node's IP, once


def test_an_island_that_did_not_start_is_read_whole_for_its_power_states(cli) -> None:
    sets = cli.fake.add_cluster("demo", {"gpu": (H100, [2, 1])})
    deallocated(sets)
    sets[1].start_error = ("AllocationFailed", "Allocation failed.")

    result = run_cli("start", stack_file(cli.tmp, nodes=3), "--auth", "cli", "--json")
    assert result.exit_code == 1
    assert served(cli.fake, VM_LIST) == {"demo-gpu-1": 1}  # only where the power states are not known
    assert len(gets(cli.fake, SCALE_SET_LIST)) == 1
    assert login_files(cli) == {"gpu-i0": "10.42.0.4\n10.42.0.5\n", "gpu-i1": ""}

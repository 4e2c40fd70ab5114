"""`status` of an elastic cluster: Azure's power states joined with what the login node's power programs
recorded (read through Run Command on the fake, which runs the real azc-elastic.py in the VM's root)."""

from __future__ import annotations

import json

import pytest

from azcluster.components import bootstrap, catalog, elastic
from azcluster.ops.status import cluster_status
from tests.azcluster import demo
from tests.azcluster.demo import H100, spec

SINCE = "2026-12-01T21:04:00Z"


def elastic_spec():
    return spec(elastic={"idle_minutes": 30, "keep_warm_islands": 0}, scheduler="none")


@pytest.fixture
def cluster(arm):
    sets = demo.add_to(arm.fake)
    login = arm.fake.vms[("demo-rg", "demo-login")]
    root = arm.fake.vm_root(login)
    program = root / elastic.PROGRAM.lstrip("/")
    program.parent.mkdir(parents=True)
    program.write_text(bootstrap.read_script("azc-elastic.py"))
    state = root / elastic.STATE_DIR.lstrip("/")
    state.mkdir(parents=True)
    record = {
        "islands": {
            "gpu-i1": {
                "state": "deallocated",
                "since": SINCE,
                "reason": "idle watcher: all GPUs idle 31 min",
            },
            "gpu-i0": {
                "state": "running",
                "since": "2026-12-01T08:00:00Z",
                "failures": 1,
                "backoff_until": 1.0e12,
                "last_error": {"code": "AllocationFailed", "message": "no capacity"},
            },
        },
        "operations": {},
    }
    (state / "state.json").write_text(json.dumps(record))
    return sets, login


def test_status_says_which_islands_the_policy_powered_off_since_when_and_what_it_costs(arm, cluster):
    sets, _ = cluster
    for inst in sets[1].instances:  # gpu island 1: deallocated by the idle watcher
        inst.power = "deallocated"
    status = cluster_status(elastic_spec(), arm.context(), "demo", diagnose=True)
    view = {island.key: island for island in status.elastic.islands}
    assert status.elastic.state_source == "login node"
    off = view["gpu-i1"]
    assert (off.state, off.by, off.since) == ("deallocated", "elastic", SINCE)
    assert off.reason.startswith("idle watcher") and off.cost_per_hour_usd == 0
    running = view["gpu-i0"]
    assert (
        running.state == "running" and running.by is None and running.last_error["code"] == "AllocationFailed"
    )
    h100 = catalog.find_size(H100).price.usd_per_hour
    assert running.cost_per_hour_usd == pytest.approx(3 * h100, abs=0.01)
    assert off.all_on_cost_per_hour_usd == pytest.approx(2 * h100, abs=0.01)
    assert status.elastic.cost_per_hour_usd == status.cost_per_hour()
    assert status.elastic.all_on_cost_per_hour_usd - status.elastic.cost_per_hour_usd == pytest.approx(
        2 * h100, abs=0.02
    )
    document = status.to_json()
    assert document["elastic"]["islands"][1]["by"] == "elastic"
    assert json.dumps(document)  # one JSON document

    from azcluster import render
    from azcluster.ops.status_view import print_status

    with render.stdout.capture() as captured:
        print_status(status)
    assert f"gpu-i1 (demo-gpu-1): deallocated by the elastic policy since {SINCE}" in captured.get()
    assert "with everything on $" in captured.get()


def test_an_island_powered_off_by_hand_is_not_claimed_by_the_policy(arm, cluster):
    sets, _ = cluster
    for inst in sets[2].instances:  # infer: `azcluster stop` or the portal, not the policy
        inst.power = "deallocated"
    status = cluster_status(elastic_spec(), arm.context(), "demo", diagnose=True)
    view = {island.key: island for island in status.elastic.islands}
    assert (view["infer-i0"].state, view["infer-i0"].by, view["infer-i0"].since) == (
        "deallocated",
        "outside elastic",
        None,
    )


def test_without_run_command_the_azure_view_stands_and_says_why(arm, cluster):
    sets, login = cluster
    sets[0].instances[0].power = "deallocated"
    login.run_command_refusal = (403, "AuthorizationFailed", "The client may not run commands on demo-login.")
    status = cluster_status(elastic_spec(), arm.context(), "demo", diagnose=True)
    assert "AuthorizationFailed" in status.elastic.state_source
    first = status.elastic.islands[0]
    assert first.state == "partly deallocated" and first.running == 2 and first.by is None


def test_a_cluster_that_is_not_elastic_has_no_elastic_view(arm, cluster):
    # slurm=False: Slurm's node states are read on the login node too (test_slurmstate.py covers them)
    status = cluster_status(spec(), arm.context(), "demo", diagnose=False, slurm=False)
    assert status.elastic is None and status.to_json()["elastic"] is None
    assert arm.fake.vm_run_commands() == []

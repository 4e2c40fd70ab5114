"""`azcluster grow`: islands kept as Azure places them, failed instances removed, the gap filled later,
waiting with back-off to a deadline; all through the real azure-mgmt-compute client against the ARM fake's
capacity model (tests/fakes/capacity.py)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from azcluster.components.spec import ClusterSpec
from azcluster.ops.grow import Clock, grow_cluster
from tests.clirunner import run_cli
from tests.fakes.arm import fake_az_script

H100 = "Standard_ND96isr_H100_v5"
RG = "big-rg"


def spec(nodes: int = 256, island_max: int = 256, **capacity) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "big",
            "location": "eastus",
            "zone": "1",
            "pools": [
                {
                    "name": "train",
                    "size": H100,
                    "nodes": nodes,
                    "island_max_nodes": island_max,
                    "capacity": capacity,
                }
            ],
        }
    )


def islands(arm, sizes: list[int], zone: str = "1") -> list:
    """The pool's islands as `up` left them: scale sets with `sizes` placed instances each."""
    sets = arm.fake.add_cluster("big", {"train": (H100, sizes)}, login=False)
    for scale_set in sets:
        scale_set.zones = [zone]
    return sets


class FakeClock(Clock):
    """Time that moves only when grow sleeps."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start
        self.slept: list[float] = []
        self.lock = threading.Lock()
        super().__init__(now=lambda: self.t, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        with self.lock:
            self.slept.append(seconds)
            self.t += seconds


def placed(scale_set) -> int:
    return sum(1 for inst in scale_set.instances if inst.provisioning == "Succeeded")


def test_an_island_of_256_that_gets_200_keeps_200_and_says_so(arm):
    [island] = islands(arm, [0])
    arm.fake.capacity.limit(H100, "1", 200)
    report = grow_cluster(spec(min_nodes=128), arm.context(), "big", progress=False)
    [growth] = report.islands
    assert (growth.requested, growth.obtained, growth.outcome) == (256, 200, "partial")
    assert growth.removed_failed == 56 and growth.released == 0
    assert growth.code == "AllocationFailed"
    # The scale set is exactly the nodes that exist: no failed instance left, capacity 200.
    assert len(island.instances) == 200 and placed(island) == 200
    assert report.ok and not report.complete
    document = report.to_json()
    assert (document["requested"], document["obtained"]) == (256, 200)
    explained = document["islands"][0]["explanation"]
    assert "room for 200 of the 256" in explained["happened"]
    assert "removed 56 failed instance(s)" in explained["did"] and "kept 200" in explained["did"]
    assert any("azcluster grow big --wait" in step for step in explained["todo"])
    assert any("56 x Standard_ND96isr_H100_v5 (5,376 vCPUs" in step for step in explained["todo"])


def test_a_second_run_fills_the_gap_and_leaves_the_first_200_alone(arm):
    [island] = islands(arm, [0])
    arm.fake.capacity.limit(H100, "1", 200)
    grow_cluster(spec(min_nodes=128), arm.context(), "big", progress=False)
    first = {inst.instance_id for inst in island.instances}
    arm.fake.capacity.add(H100, "1", 56)
    report = grow_cluster(spec(min_nodes=128), arm.context(), "big", progress=False)
    [growth] = report.islands
    assert (growth.before, growth.obtained, growth.outcome) == (200, 256, "complete")
    assert report.complete and growth.explanation is None
    assert first <= {inst.instance_id for inst in island.instances}  # nothing replaced
    assert arm.fake.capacity.asked[-1] == (H100, "1", 56, 56)  # only the gap was asked for


def test_whole_islands_by_default_release_a_fragment(arm):
    """A first user's default: whole islands or nothing; 200 of 256 is let go, not billed."""
    [island] = islands(arm, [0])
    arm.fake.capacity.limit(H100, "1", 200)
    report = grow_cluster(spec(), arm.context(), "big", progress=False)
    [growth] = report.islands
    assert (growth.obtained, growth.released, growth.outcome) == (0, 200, "empty")
    assert island.instances == []
    assert not report.ok
    assert "released the 200 placed, fewer than the 256 worth keeping" in growth.explanation.did
    assert arm.fake.capacity.pools[(H100.lower(), "1")].free == 200  # the hosts went back


def test_nodes_an_island_had_before_are_never_released(arm):
    [island] = islands(arm, [100])
    arm.fake.capacity.limit(H100, "1", 20)
    report = grow_cluster(spec(min_fraction=0.75), arm.context(), "big", progress=False)
    [growth] = report.islands
    # 120 < 192: the 20 new ones go back, the 100 that were there stay.
    assert (growth.before, growth.released, growth.obtained) == (100, 20, 100)
    assert placed(island) == 100 and len(island.instances) == 100


def test_a_zone_with_nothing_places_nothing_and_says_try_another_zone(arm):
    islands(arm, [0], zone="1")
    arm.fake.capacity.refuse(H100, "1", "ZonalAllocationFailed")
    report = grow_cluster(spec(nodes=8, island_max=8, min_nodes=4), arm.context(), "big", progress=False)
    [growth] = report.islands
    assert (growth.obtained, growth.code) == (0, "ZonalAllocationFailed")
    assert "this zone only" in growth.explanation.happened
    assert "capacity.zones" in growth.explanation.todo[0]


def test_waiting_retries_with_back_off_and_ends_at_the_deadline_with_the_document(arm):
    islands(arm, [0, 0])
    arm.fake.capacity.limit(H100, "1", 5)
    clock = FakeClock()
    report = grow_cluster(
        spec(nodes=8, island_max=4, min_nodes=1),
        arm.context(),
        "big",
        wait_seconds=200,
        progress=False,
        clock=clock,
    )
    # 5 hosts for two islands of 4: one island is whole, the other keeps what was left and keeps asking
    # (after 30 s, then 60 s; a try after 120 s more would start past the 200 s deadline).
    got = sorted(growth.obtained for growth in report.islands)
    assert got == [1, 4]
    short = next(g for g in report.islands if not g.complete)
    assert short.tries == 3
    assert clock.slept == [30.0, 60.0]
    assert report.to_json()["wait_seconds"] == 200 and report.ok and not report.complete


def test_capacity_that_appears_while_waiting_completes_the_island(arm):
    [island] = islands(arm, [0])
    arm.fake.capacity.limit(H100, "1", 2)
    clock = FakeClock()
    original = clock.sleep

    def sleep_then_free(seconds: float) -> None:
        original(seconds)
        arm.fake.capacity.add(H100, "1", 2)

    clock.sleep = sleep_then_free
    report = grow_cluster(
        spec(nodes=4, island_max=4), arm.context(), "big", wait_seconds=3600, progress=False, clock=clock
    )
    assert report.complete and report.islands[0].tries == 2 and placed(island) == 4
    assert clock.slept == [30.0]


def test_throttling_while_retrying_is_waited_out(arm):
    islands(arm, [0])
    arm.fake.capacity.limit(H100, "1", 1)
    arm.fake.inject(
        "PATCH", "/virtualMachineScaleSets/big-train-0", 429, headers={"Retry-After": "0"}, times=1
    )
    arm.fake.inject(
        "POST", "/virtualMachineScaleSets/big-train-0/delete", 429, headers={"Retry-After": "0"}, times=1
    )
    clock = FakeClock()
    report = grow_cluster(
        spec(nodes=2, island_max=2, min_nodes=1),
        arm.context(),
        "big",
        wait_seconds=40,
        progress=False,
        clock=clock,
    )
    [growth] = report.islands
    assert growth.obtained == 1 and growth.tries == 2 and growth.code == "AllocationFailed"


def test_an_island_with_no_scale_set_is_reported_not_grown(arm):
    islands(arm, [4])
    report = grow_cluster(spec(nodes=8, island_max=4), arm.context(), "big", progress=False)
    assert [g.outcome for g in report.islands] == ["complete", "missing"]
    assert not report.ok


def write_stack(tmp_path: Path, capacity: str = "") -> Path:
    path = tmp_path / "Pulumi.big.yaml"
    path.write_text(
        "config:\n"
        "  azure-native:location: eastus\n"
        "  azcluster:cluster:\n"
        "    name: big\n"
        '    zone: "1"\n'
        "    pools:\n"
        f"      - {{name: train, size: {H100}, nodes: 4, island_max_nodes: 4{capacity}}}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def signed_in(arm, tmp_path, monkeypatch):
    """The Azure CLI on PATH, signed in with the fake's token (as test_cli_azure does)."""
    fake_az_script(tmp_path / "bin", arm.fake.token)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    # The CLI polls a long operation every 10 s when Azure gives no Retry-After (azure.py): operations
    # that end at once keep the test from waiting that out (40 s here), as test_cli_azure's do.
    arm.fake.lro_polls = 0
    return arm


def test_cli_grow_json_document_and_exit_codes(signed_in, tmp_path):
    arm = signed_in
    islands(arm, [0])
    arm.fake.capacity.limit(H100, "1", 3)
    result = run_cli(
        "grow", str(write_stack(tmp_path, ", capacity: {min_nodes: 2}")), "--json", "--auth", "cli"
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["complete"] is False
    assert document["islands"][0]["requested"] == 4 and document["islands"][0]["obtained"] == 3

    human = run_cli("grow", str(write_stack(tmp_path)), "--auth", "cli", env={"COLUMNS": "200"})
    assert human.exit_code == 1  # whole islands only: 3 of 4 is let go
    assert "below the 4 worth keeping" in human.stdout
    assert "you can:" in human.stderr


@pytest.mark.parametrize("bad", ["soon", "2x", "9d", "-5m"])
def test_cli_grow_refuses_a_bad_duration(arm, tmp_path, bad):
    result = run_cli("grow", str(write_stack(tmp_path)), "--wait", bad)
    assert result.exit_code == 2
    assert "--wait" in result.stderr and "2h" in result.stderr


def test_status_says_which_island_is_where_and_which_reads_storage_across_zones(arm, capsys):
    from azcluster.ops.status import cluster_status
    from azcluster.ops.status_view import print_status

    home, moved = islands(arm, [2, 2])
    moved.zones = ["3"]
    status = cluster_status(
        spec(nodes=4, island_max=2, zones=["1", "3"], island_zones={"1": "3"}),
        arm.context(),
        "big",
        diagnose=False,
        slurm=False,
    )
    assert status.storage_zone == "1"
    assert [status.cross_zone(island) for island in status.islands] == [False, True]
    assert status.to_json()["storage_zone"] == "1"
    print_status(status)
    out = " ".join(capsys.readouterr().out.split())  # titles wrap at the terminal's width
    assert "capacity 2, zone 1, " in out
    assert "capacity 2, zone 3, storage in zone 1: read across zones" in out


def test_ctrl_c_while_waiting_ends_every_island_at_once_with_the_document(arm):
    """Ctrl-C during the back-off of one island stops all of them (no thread sleeps its wait out) and the
    report says what each island has; nothing half-done is left (no failed instance)."""
    sets = islands(arm, [0, 0, 0])
    arm.fake.capacity.limit(H100, "1", 5)
    clock = FakeClock()

    def interrupted(seconds: float) -> None:
        clock.slept.append(seconds)
        raise KeyboardInterrupt

    clock.sleep = interrupted
    report = grow_cluster(
        spec(nodes=12, island_max=4, min_nodes=1),
        arm.context(),
        "big",
        wait_seconds=7200,
        progress=False,
        clock=clock,
    )
    document = report.to_json()
    assert document["interrupted"] is True and document["obtained"] == 5
    # every short island stopped at its first wait (the first Ctrl-C), none slept longer
    assert all(seconds == 30.0 for seconds in clock.slept) and len(clock.slept) <= 2
    assert all(g.tries == 1 for g in report.islands)
    assert all(i.provisioning == "Succeeded" for s in sets for i in s.instances)


def test_real_time_waits_wake_on_ctrl_c(arm):
    """With real time the wait is an Event: setting it (what Ctrl-C in the main thread does) ends a
    10-minute back-off at once."""
    import threading
    import time as real_time

    from azcluster.ops.grow import Clock, _nap

    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = real_time.monotonic()
    assert _nap(Clock(), 600.0, stop) is True
    assert real_time.monotonic() - started < 5

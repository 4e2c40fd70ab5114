"""`up` when Azure has no capacity: islands keep what was placed, an island with nothing in its zone moves
whole to the next zone its pool allows, `--wait-for-capacity` keeps asking to a deadline, and Pulumi's
graph and Azure's scale sets agree after each run.

Pulumi's part is played by `ArmBackedEngine`: its `up` runs the real stack program under the same mocks
`plan` uses and makes the ARM fake's scale sets what the graph says, the way pulumi-azure-native would:
an island whose zones changed is replaced, deleting first (the options GpuPool registers); a new island
is created asking for all its nodes, placed by the fake's capacity model; a shortfall fails the update
with Azure's code while the scale set exists (a partially created resource, pulumi-azure-native #1015,
#1066); `sku.capacity` of an existing island is never sent again (ignoreChanges). The rest is real:
lifecycle.up, capacity_up, ops/grow through azure-mgmt-compute, the stack file written by ruamel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azcluster import capacity_up, lifecycle, mockrun, remedies, stackfile
from azcluster.engine import OutputValue, ResourceFailure, StackRef, Update, UpdateFailed
from azcluster.ops import loginhosts
from tests.azcluster.test_grow import FakeClock
from tests.clirunner import run_cli
from tests.fakes.engine import FakeEngine, urn

H100 = "Standard_ND96isr_H100_v5"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
VMSS = "azure-native:compute:VirtualMachineScaleSet"


def stack_text(nodes: int, island_max: int, capacity: str) -> str:
    return f"""\
# the capacity demo: comments survive azcluster writing the file
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: cap
    zone: "1"
    login: {{enabled: false}}
    scheduler: none
    pools:
      - name: train
        size: {H100}
        nodes: {nodes}
        island_max_nodes: {island_max}
        capacity: {capacity}
    ssh:
      public_keys: ["{KEY}"]
"""


def graph_scale_sets(path: Path) -> dict[str, dict]:
    """The island scale sets the stack program registers from the stack file as it is now."""
    from azcluster.components.program import build

    loaded = stackfile.load_stack(str(path))
    run = mockrun.run_program(lambda: build(loaded.spec), stack=loaded.name)
    return {r.inputs["vmScaleSetName"]: r.inputs for r in run.resources if r.type == VMSS}


class ArmBackedEngine(FakeEngine):
    def __init__(self, arm, path: Path) -> None:
        super().__init__(stack="cap")
        self.arm, self.path = arm, path
        self.outputs_map = {"resource_group_name": OutputValue("cap-rg")}

    def up(self, stack: StackRef, on_event=None, *, refresh: bool = False) -> Update:
        self._record("up", stack, refresh=refresh)
        fake = self.arm.fake
        failures = []
        for name, inputs in graph_scale_sets(self.path).items():
            key = ("cap-rg", name.lower())
            zones = list(inputs.get("zones") or [])
            existing = fake.scale_sets.get(key)
            size = inputs["sku"]["name"]
            if existing is not None and existing.zones == zones and existing.size == size:
                continue  # sku.capacity is ignored: nothing to send
            if existing is not None:  # replaceOnChanges zones and sku.name, deleteBeforeReplace
                fake._remove_instances(existing, list(existing.instances))
                del fake.scale_sets[key]
            created = fake.add_scale_set("cap-rg", name, inputs["sku"]["name"], 0, tags=inputs["tags"])
            created.zones = zones
            status, _, _ = fake.handle(
                "PATCH",
                f"/subscriptions/{fake.subscription_id}/resourceGroups/cap-rg/providers/Microsoft.Compute/"
                f"virtualMachineScaleSets/{name}?api-version=2024-07-01",
                {"authorization": f"Bearer {fake.token}"},
                json.dumps({"sku": {"capacity": inputs["sku"]["capacity"]}}).encode(),
            )
            assert status == 200
            failed = [i for i in created.instances if i.provisioning_error]
            if failed:
                code, message = failed[0].provisioning_error
                failures.append(
                    ResourceFailure(
                        urn(stack.name, VMSS, name),
                        VMSS,
                        message,
                        code=code,
                        remedy=remedies.remedy_for(code),
                    )
                )
        if failures:
            raise UpdateFailed(stack.name, "update", failures)
        return Update({"same": 1}, dict(self.outputs_map), 1.0)


@pytest.fixture
def world(arm, tmp_path, monkeypatch):
    """A stack directory, the engine above, preflight passing, hostfiles not reached, a fake clock."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(stacks))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("CI", "GITHUB_ACTIONS", "PULUMI_BACKEND_URL", "AZCLUSTER_ALLOW_LOCAL_STATE"):
        monkeypatch.delenv(name, raising=False)
    path = stacks / "Pulumi.cap.yaml"
    engine = ArmBackedEngine(arm, path)
    clock = FakeClock()

    class Passing:
        ok, blockers = True, []

        def to_json(self):
            return {"ok": True}

    def capacity(target, spec, connection, wait, move):
        ctx = arm.context()
        return capacity_up.settle(
            spec,
            ctx,
            target.name,
            wait_seconds=wait,
            move=move,
            progress=False,
            clock=clock,
            ready=capacity_up.azure_readiness(spec, ctx),
        )

    monkeypatch.setattr(lifecycle, "engine_factory", lambda options: engine)
    monkeypatch.setattr(lifecycle, "preflight_runner", lambda loaded, connection: Passing())
    monkeypatch.setattr(
        lifecycle,
        "hostfile_refresher",
        lambda spec, stack, connection: loginhosts.Refresh("skipped", reason="-"),
    )
    monkeypatch.setattr(lifecycle, "capacity_runner", capacity)
    monkeypatch.setattr(lifecycle, "is_interactive", lambda: False)
    return arm, path, engine, clock


def azure_matches_the_graph(arm, path: Path) -> None:
    """What a refresh would compare: every island's scale set has the graph's zones and size, and holds
    only placed instances (its count is azcluster's: ignored by Pulumi)."""
    graph = graph_scale_sets(path)
    azure = {s.name: s for s in arm.fake.scale_sets.values()}
    assert set(graph) == set(azure)
    for name, inputs in graph.items():
        assert azure[name].zones == list(inputs.get("zones") or []), name
        assert azure[name].size == inputs["sku"]["name"], name
        assert all(i.provisioning == "Succeeded" for i in azure[name].instances), name


def refresh_drift(arm, path: Path) -> dict[str, set[str]]:
    """What `pulumi refresh` then `preview` would show for each island after this run: a refresh reads
    Azure's scale set into the state (its zones, `sku.name`, and `sku.capacity` = the instances it holds),
    then the program's inputs are diffed against that state, except the properties the resource ignores
    (Pulumi's `ignoreChanges`: "Pulumi ignores a property by using the old value from the state instead of
    the value provided by the Pulumi program", pulumi.com/docs/iac/concepts/options/ignorechanges).
    Returns, per scale set, the properties that would still differ (empty: no drift)."""
    from azcluster.components.program import build

    loaded = stackfile.load_stack(str(path))
    capture = mockrun.run(lambda: build(loaded.spec), stack=loaded.name)
    azure = {s.name: s for s in arm.fake.scale_sets.values()}
    drift: dict[str, set[str]] = {}
    for resource in capture.of_type("compute:VirtualMachineScaleSet"):
        inputs = resource.inputs
        found = azure[inputs["vmScaleSetName"]]
        refreshed = {
            "zones": list(found.zones),
            "sku.name": found.size,
            "sku.capacity": len(found.instances),
        }
        wanted = {
            "zones": list(inputs.get("zones") or []),
            "sku.name": inputs["sku"]["name"],
            "sku.capacity": inputs["sku"]["capacity"],
        }
        drift[found.name] = {
            key
            for key, value in wanted.items()
            if value != refreshed[key] and key not in resource.ignore_changes
        }
    return drift


def test_a_zone_with_nothing_moves_the_island_whole_to_the_next_zone(world):
    arm, path, engine, _ = world
    path.write_text(stack_text(4, 4, '{zones: ["1", "3"]}'), encoding="utf-8")
    arm.fake.capacity.refuse(H100, "1", "ZonalAllocationFailed")
    result = run_cli("up", "cap", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.lstrip().startswith("{"), result.stdout[:2000]
    document = json.loads(result.stdout)
    capacity = document["capacity"]
    assert capacity["complete"] is True and capacity["obtained"] == 4
    assert capacity["moved"] == [
        {
            "pool": "train",
            "island": 0,
            "from_zone": "1",
            "to_zone": "3",
            "because": "ZonalAllocationFailed",
            "from_size": H100,
            "to_size": H100,
            "stand_in": False,
            "usd_per_node_hour": 98.32,
            "quota_family": "standardNDSH100v5Family",
        }
    ]
    text = path.read_text(encoding="utf-8")
    assert "# the capacity demo: comments survive" in text
    assert stackfile.load_stack(str(path)).spec.pools[0].capacity.island_zones == {"0": "3"}
    [island] = arm.fake.scale_sets.values()
    assert island.zones == ["3"] and len(island.instances) == 4  # whole, in one zone
    assert engine.methods().count("up") == 2
    azure_matches_the_graph(arm, path)


def test_an_island_of_256_that_gets_200_keeps_200_and_a_second_up_fills_the_gap(world):
    arm, path, engine, clock = world
    path.write_text(stack_text(256, 256, "{min_fraction: 0.75}"), encoding="utf-8")
    arm.fake.capacity.limit(H100, "1", 200)
    first = run_cli("up", "cap", "--yes", "--json")
    assert first.exit_code == 0, first.stderr
    capacity = json.loads(first.stdout)["capacity"]
    [island] = capacity["islands"]
    assert (island["requested"], island["obtained"], island["outcome"]) == (256, 200, "partial")
    # 56 failed when Pulumi created the island, 56 again when the capacity step asked once more.
    assert island["removed_failed"] == 112 and island["tries"] == 1 and capacity["moved"] == []
    azure_matches_the_graph(arm, path)
    # Azure holds 200 where the graph asks 256: a refresh reads 200, and the count is ignored, so no drift.
    assert refresh_drift(arm, path) == {"cap-train-ib0": set()}
    assert len(arm.fake.scale_sets[("cap-rg", "cap-train-ib0")].instances) == 200

    arm.fake.capacity.add(H100, "1", 56)
    second = run_cli("up", "cap", "--yes", "--json")  # no wait: one more try for what is missing
    assert second.exit_code == 0, second.stderr
    capacity = json.loads(second.stdout)["capacity"]
    assert capacity["complete"] is True and capacity["islands"][0]["before"] == 200
    assert engine.methods().count("up") == 2  # Pulumi had nothing to change: the count is azcluster's
    assert arm.fake.capacity.asked[-1] == (H100, "1", 56, 56)  # only the gap was asked for
    azure_matches_the_graph(arm, path)
    assert refresh_drift(arm, path) == {"cap-train-ib0": set()}

    third = run_cli("up", "cap", "--yes", "--no-fill", "--json")
    assert third.exit_code == 0 and "capacity" not in json.loads(third.stdout)


def test_a_whole_cluster_prints_nothing_about_capacity(world):
    arm, path, _, _ = world
    path.write_text(stack_text(4, 4, "{}"), encoding="utf-8")
    result = run_cli("up", "cap", "--yes", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    assert "grow cap" not in result.stdout and "placed" not in result.stderr


def test_waiting_ends_at_the_deadline_with_the_document(world):
    arm, path, _, clock = world
    path.write_text(stack_text(8, 4, "{min_nodes: 1}"), encoding="utf-8")
    arm.fake.capacity.limit(H100, "1", 5)
    result = run_cli("up", "cap", "--yes", "--json", "--wait-for-capacity", "5m")
    assert result.exit_code == 0, result.stderr
    capacity = json.loads(result.stdout)["capacity"]
    assert capacity["wait_seconds"] == 300 and capacity["complete"] is False
    assert sorted(i["obtained"] for i in capacity["islands"]) == [1, 4]
    # Rounds after 30 s, 60 s and 120 s; the next (240 s more) would start past the 300 s deadline.
    assert clock.slept == [30.0, 60.0, 120.0] and capacity["rounds"] == 4
    azure_matches_the_graph(arm, path)


def test_no_zone_left_and_nothing_placed_fails_up_with_the_explanation(world):
    arm, path, _, _ = world
    path.write_text(stack_text(4, 4, '{zones: ["1", "2"]}'), encoding="utf-8")
    arm.fake.capacity.refuse(H100, "1", "ZonalAllocationFailed")
    arm.fake.capacity.refuse(H100, "2", "SkuNotAvailable")
    result = run_cli("up", "cap", "--yes", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    # The update's failure as `up` always lists it, and what the capacity step did after it.
    assert document["error"]["failures"][0]["code"] == "ZonalAllocationFailed"
    assert "azcluster grow cap --wait 2h" in document["error"]["hint"]
    assert document["capacity"]["moved"][0]["to_zone"] == "2"
    [island] = document["capacity"]["islands"]
    assert island["zone"] == "2" and island["code"] == "SkuNotAvailable" and island["obtained"] == 0
    assert "not offered to this subscription in eastus zone 2" in island["explanation"]["happened"]
    azure_matches_the_graph(arm, path)


def test_a_failure_that_is_not_capacity_is_reported_as_before(world, monkeypatch):
    arm, path, engine, _ = world
    path.write_text(stack_text(4, 4, "{}"), encoding="utf-8")
    failure = ResourceFailure(urn("cap", VMSS, "x"), VMSS, "denied", code="AuthorizationFailed")
    engine.fail_on["up"] = UpdateFailed("cap", "update", [failure])
    result = run_cli("up", "cap", "--yes", "--json")
    assert result.exit_code == 1
    assert "capacity" not in json.loads(result.stdout)


def test_ctrl_c_while_waiting_ends_the_wait_with_a_consistent_stack_and_the_document(world):
    arm, path, _, clock = world
    path.write_text(stack_text(4, 4, "{min_nodes: 1}"), encoding="utf-8")
    arm.fake.capacity.limit(H100, "1", 2)

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    clock.sleep = interrupted
    result = run_cli("up", "cap", "--yes", "--json", "--wait-for-capacity", "1h")
    assert result.exit_code == 0, result.stderr
    capacity = json.loads(result.stdout)["capacity"]
    assert capacity["interrupted"] is True and capacity["islands"][0]["obtained"] == 2
    azure_matches_the_graph(arm, path)  # no failed instance left behind, zones as the graph says

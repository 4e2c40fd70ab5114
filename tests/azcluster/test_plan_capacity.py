"""`plan` shows each pool's capacity policy: zones in order, sizes with their price and quota family, the
smallest island kept, how long to keep trying (human table and `plan --json`)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.clirunner import run_cli

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHKj4pWdg/ReSLrZ3fdZsxMlItQCf8coEJHP4cALGc42 test"
STACKS = Path(__file__).resolve().parents[2] / "stacks"


def write_stack(tmp_path: Path, pools: str) -> Path:
    path = tmp_path / "Pulumi.cap.yaml"
    body = f"""\
        config:
          azure-native:location: eastus
          azcluster:cluster:
            name: cap
            zone: "1"
            pools:
{textwrap.indent(textwrap.dedent(pools), " " * 14)}
            ssh:
              public_keys: ["{KEY}"]
        """
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


POLICY = """\
- name: train
  size: Standard_ND96isr_H100_v5
  nodes: 256
  island_max_nodes: 256
  capacity:
    zones: ["1", "3"]
    stand_in_sizes: [Standard_ND96isr_H200_v5]
    min_fraction: 0.75
    wait_minutes: 90
- name: small
  size: Standard_NC96ads_A100_v4
  nodes: 2
"""


def test_plan_json_has_the_policy_per_pool(tmp_path):
    result = run_cli("plan", str(write_stack(tmp_path, POLICY)), "--json")
    assert result.exit_code == 0, result.stderr
    train, small = json.loads(result.stdout)["capacity"]
    assert train["pool"] == "train" and train["zones"] == ["1", "3"] and train["storage_zone"] == "1"
    assert [(s["size"], s["stand_in"], s["quota_family"], s["usd_per_hour"]) for s in train["sizes"]] == [
        ("Standard_ND96isr_H100_v5", False, "standardNDSH100v5Family", 98.32),
        ("Standard_ND96isr_H200_v5", True, "standardNDISRH200V5Family", 84.80),
    ]
    assert train["islands"] == [
        {
            "island": 0,
            "requested": 256,
            "smallest": 192,
            "zone": "1",
            "cross_zone": False,
            "size": "Standard_ND96isr_H100_v5",
            "stand_in": False,
            "usd_per_node_hour": 98.32,
        }
    ]
    assert train["whole_islands_only"] is False and train["wait_minutes"] == 90
    # A pool that says nothing gets the defaults: the cluster's zone, its own size, whole islands, one try.
    assert small["zones"] == ["1"] and [s["size"] for s in small["sizes"]] == ["Standard_NC96ads_A100_v4"]
    assert small["islands"] == [
        {
            "island": 0,
            "requested": 2,
            "smallest": 2,
            "zone": "1",
            "cross_zone": False,
            "size": "Standard_NC96ads_A100_v4",
            "stand_in": False,
            "usd_per_node_hour": 14.69,
        }
    ]
    assert small["whole_islands_only"] is True and small["wait_minutes"] == 0


def test_plan_shows_the_policy_table(tmp_path):
    result = run_cli("plan", str(write_stack(tmp_path, POLICY)), env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "when Azure has no capacity (per pool)" in out
    assert "1, then 3 (storage in another zone)" in out
    assert "stand-in Standard_ND96isr_H200_v5: $84.80/h, quota standardNDISRH200V5Family" in out
    assert "keep 192 of 256 or more" in out and "up to 1 h 30 min" in out
    assert "whole islands only" in out and "one try" in out


def test_a_policy_with_an_error_is_still_shown_in_json(tmp_path):
    bad = POLICY.replace("Standard_ND96isr_H200_v5", "Standard_ND96isr_MI300X_v5")
    result = run_cli("plan", str(write_stack(tmp_path, bad)), "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert any(f["id"] == "AZC101" for f in document["findings"])
    assert document["capacity"][0]["sizes"][1]["size"] == "Standard_ND96isr_MI300X_v5"


def test_plan_says_where_a_moved_island_is_and_that_it_reads_storage_across_zones(tmp_path):
    moved = POLICY.replace('zones: ["1", "3"]', 'zones: ["1", "3"]\n    island_zones: {"0": "3"}')
    json_result = run_cli("plan", str(write_stack(tmp_path, moved)), "--json")
    assert json_result.exit_code == 0, json_result.stderr
    [island] = json.loads(json_result.stdout)["capacity"][0]["islands"]
    assert island["zone"] == "3" and island["cross_zone"] is True
    human = run_cli("plan", str(write_stack(tmp_path, moved)), env={"COLUMNS": "250"})
    assert "now: island 0 in zone 3 (reads storage across zones)" in human.stdout


CRG = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/hub/providers/"
    "Microsoft.Compute/capacityReservationGroups/held"
)
RESERVED = f"""\
- name: held
  size: Standard_NC96ads_A100_v4
  nodes: 3
  capacity:
    reservation:
      create: true
- name: theirs
  size: Standard_NC96ads_A100_v4
  nodes: 2
  capacity:
    reservation:
      group_id: {CRG}
      zones: ["1"]
- name: plain
  size: Standard_NC96ads_A100_v4
  nodes: 1
"""


def test_plan_says_which_reservation_each_pool_allocates_from(tmp_path):
    stack = write_stack(tmp_path, RESERVED)
    result = run_cli("plan", str(stack), "--json")
    assert result.exit_code == 0, result.stderr
    held, theirs, plain = (pool["reservation"] for pool in json.loads(result.stdout)["capacity"])
    assert held == {
        "form": "created",
        "group_id": None,
        "zones": ["1"],
        "size": "Standard_NC96ads_A100_v4",
        "vms": 3,
    }
    assert theirs["form"] == "existing" and theirs["group_id"].endswith("/held") and theirs["vms"] is None
    assert theirs["zones"] == ["1"] and plain is None
    table = run_cli("plan", str(stack), env={"COLUMNS": "250"}).stdout
    assert "created: 3 x Standard_NC96ads_A100_v4 in zone 1, billed used or not; `down` deletes it" in table
    assert "group held (yours: not created nor deleted)" in table

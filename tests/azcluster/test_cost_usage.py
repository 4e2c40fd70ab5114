"""`azcluster cost STACK`: Slurm's accounting read on the login node through Run Command and priced.

The real CLI and SDK against the loopback Resource Manager fake, which runs the Run Command script with
bash (tests/fakes/arm.py); the login VM's `sacct` prints real sacct 24.11 output captured from the real
daemons (tests/azcluster/fixtures/sacct/trixie-24.11.txt, written by test_slurm_accounting_real.py with
AZC_CAPTURE_SACCT) and the script adds it up with the same python3 code a login node runs. Every figure is
checked against arithmetic done here from the fixture's own rows.

The fixture's jobs (partition gpu, one node each of island gpu-i0; Start and End in seconds since the epoch):
  1 alice vision  2 GPUs 2 CPUs  4 s      2 alice: cancelled while pending, never started
  3 bob   vision  2 GPUs 2 CPUs  1 s      4 carol nlp  1 GPU 1 CPU  8 s
  6 bob   vision  2 GPUs 2 CPUs  3 s      7 alice vision 1 GPU 1 CPU 2 s
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import pytest

from azcluster.components import catalog
from azcluster.ops import usage
from tests.azcluster.fake_slurm import FakeSlurm
from tests.clirunner import run_cli

H100 = "Standard_ND96isr_H100_v5"
CAPTURED = (Path(__file__).parent / "fixtures" / "sacct" / "trixie-24.11.txt").read_text()
FIRST_START = 1796639890  # job 1's Start in the fixture
H200 = "Standard_ND96isr_H200_v5"
STACK = f"""\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: demo
    pools:
      - name: gpu
        size: {H100}
        nodes: 2
        island_max_nodes: 1
    slurm:
      accounting: {{enabled: {{accounting}}}}
"""


@pytest.fixture
def cli(az_cli, tmp_path):
    arm = az_cli
    arm.fake.add_cluster("demo", {"gpu": (H100, [2])})
    slurm = FakeSlurm(tmp_path / "login-programs")
    slurm.sacct_lines(CAPTURED)
    arm.fake.vms[("demo-rg", "demo-login")].programs = slurm.bin
    arm.slurm = slurm
    return arm


def stack_file(tmp: Path, accounting: str = "true") -> str:
    path = tmp / "Pulumi.demo.yaml"
    path.write_text(STACK.replace("{accounting}", accounting), encoding="utf-8")
    return str(path)


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


PRICE = Fraction(str(catalog.find_size(H100).price.usd_per_hour))
HOUR = Fraction(1, 3600)


def test_cost_by_user_is_each_job_s_share_of_its_node_times_the_size_s_price(cli) -> None:
    result = run_cli("cost", stack_file(cli.tmp), "--since", iso(FIRST_START - 60), "--auth", "cli", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    lines = {line["user"]: line for line in document["lines"]}
    # an 8-GPU, 96-vCPU node: 2 GPUs hold 2/8 of it; 1 GPU 1/8
    expected = {
        "alice": (4 * 2 + 2 * 1, 4 + 2, Fraction(4 * 2 + 2 * 1, 8), 2),
        "bob": (1 * 2 + 3 * 2, 1 + 3, Fraction(1 * 2 + 3 * 2, 8), 2),
        "carol": (8 * 1, 8, Fraction(8 * 1, 8), 1),
    }
    assert set(lines) == set(expected)
    for user, (gpu_seconds, node_seconds, node_share_seconds, jobs) in expected.items():
        assert lines[user]["jobs"] == jobs  # alice's job that never started costs nothing
        assert lines[user]["gpu_hours"] == round(float(gpu_seconds * HOUR), 4)
        assert lines[user]["node_hours"] == round(float(node_seconds * HOUR), 4)
        assert lines[user]["usd"] == usage.cents(node_share_seconds * HOUR * PRICE)
    total = sum((share for _, _, share, _ in expected.values()), Fraction(0)) * HOUR * PRICE
    assert document["compute_usd"] == usage.cents(total)
    # storage apart: the shared home for the whole window, at its catalogue rate
    window = Fraction(
        int(datetime.fromisoformat(document["until"].replace("Z", "+00:00")).timestamp())
        - (FIRST_START - 60),
        3600,
    )
    from azcluster.cost import price_resources
    from azcluster.ops.cluster import load_spec

    _, spec = load_spec(stack_file(cli.tmp))
    rate = sum(Fraction(str(c.usd_per_hour)) for c in price_resources(spec)[0] if c.item.role == "home")
    assert rate > 0 and document["storage_usd"] == usage.cents(rate * window)
    assert document["since"] == iso(FIRST_START - 60) and document["by"] == "user"
    # the login node was asked once, with sacct in epoch seconds and UTC
    calls = [call for call in cli.slurm.calls() if call.startswith("sacct ")]
    assert len(calls) == 1 and f"-S {iso(FIRST_START - 60)[:-1]}" in calls[0]


def test_a_window_that_opens_during_a_job_counts_only_its_part(cli) -> None:
    since = FIRST_START + 2  # job 1 of alice ran 4 s from FIRST_START: 2 s of it are inside
    result = run_cli("cost", stack_file(cli.tmp), "--since", iso(since), "--by", "account", "--json")
    assert result.exit_code == 0, result.stderr
    lines = {line["account"]: line for line in json.loads(result.stdout)["lines"]}
    vision = Fraction(2 * 2 + 1 * 2 + 3 * 2 + 2 * 1, 8)  # alice 2 s + bob 1 s + bob 3 s + alice 2 s
    assert lines["vision"]["usd"] == usage.cents(vision * HOUR * PRICE)
    assert lines["vision"]["gpu_hours"] == round(float((2 * 2 + 1 * 2 + 3 * 2 + 2 * 1) * HOUR), 4)
    assert lines["nlp"]["jobs"] == 1


def test_the_table_names_users_totals_and_storage_apart(cli) -> None:
    result = run_cli("cost", stack_file(cli.tmp), "--since", iso(FIRST_START - 60), "--by", "partition")
    assert result.exit_code == 0, result.stderr
    assert "gpu" in result.stdout and "total" in result.stdout
    assert "storage over the window" in result.stderr and "shared home" in result.stderr


def test_a_partition_that_is_no_pool_is_listed_unpriced(cli) -> None:
    cli.slurm.sacct_lines(CAPTURED.replace("|gpu|", "|old|", 1))  # job 1 ran in a pool since removed
    result = run_cli("cost", stack_file(cli.tmp), "--since", iso(FIRST_START - 60), "--json")
    document = json.loads(result.stdout)
    assert document["unpriced_partitions"] == ["old"]
    alice = next(line for line in document["lines"] if line["user"] == "alice")
    assert alice["unpriced_node_hours"] == round(float(4 * HOUR), 4)
    assert alice["usd"] == usage.cents(Fraction(2, 8) * HOUR * PRICE)  # job 7 alone is priced


def test_without_accounting_it_says_how_to_turn_it_on_and_asks_azure_nothing(cli) -> None:
    result = run_cli("cost", stack_file(cli.tmp, "false"), "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert "slurm.accounting.enabled" in error["message"] + error["hint"]
    assert not cli.fake.vm_run_commands("demo-login")


def test_a_login_node_without_sacct_is_a_clear_failure(cli) -> None:
    cli.fake.vms[("demo-rg", "demo-login")].programs = None
    result = run_cli("cost", stack_file(cli.tmp), "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert "could not read Slurm's accounting on demo-login" in error["message"]
    assert "sacct" in error["message"]


def test_since_must_be_a_past_date(cli) -> None:
    result = run_cli("cost", stack_file(cli.tmp), "--since", "last tuesday")
    assert result.exit_code == 2 and "is not a date" in result.stderr


def test_a_job_on_an_island_built_on_a_stand_in_size_is_priced_at_that_size(cli) -> None:
    # island 1 of pool gpu was built on ND H200 v5 (capacity.island_stand_ins); jobs 3 and 7 ran there
    # ... and ran 10 hours longer than captured, so the two prices differ by dollars, not fractions of a cent
    cli.slurm.sacct_lines(stretch(CAPTURED.replace("gpu-i0-001", "gpu-i1-000"), {"3", "7"}, 36000))
    path = Path(stack_file(cli.tmp))
    path.write_text(
        path.read_text().replace(
            "        island_max_nodes: 1\n",
            f"        island_max_nodes: 1\n        capacity: {{island_stand_ins: {{'1': {H200}}}}}\n",
        )
    )
    result = run_cli("cost", str(path), "--since", iso(FIRST_START - 60 - 36000), "--json")
    assert result.exit_code == 0, result.stderr
    lines = {line["user"]: line for line in json.loads(result.stdout)["lines"]}
    h200 = Fraction(str(catalog.find_size(H200).price.usd_per_hour))
    assert h200 != PRICE
    # bob: job 3 (1 s, 2 of 8 GPUs) on H200, job 6 (3 s, 2 of 8) on H100; alice: job 1 on H100, job 7 on H200
    bob = HOUR * ((1 + 36000) * Fraction(2, 8) * h200 + 3 * Fraction(2, 8) * PRICE)
    alice = HOUR * (4 * Fraction(2, 8) * PRICE + (2 + 36000) * Fraction(1, 8) * h200)
    assert lines["bob"]["usd"] == usage.cents(bob) and lines["alice"]["usd"] == usage.cents(alice)
    assert usage.cents(bob) != usage.cents(HOUR * (1 + 36000 + 3) * Fraction(2, 8) * PRICE)


def stretch(text: str, jobs: set[str], seconds: int) -> str:
    """The fixture with `jobs` starting `seconds` earlier (ending later would be in the future: clipped)."""
    out = []
    for line in text.splitlines():
        fields = line.split("|")
        if fields[0] in jobs:
            fields[6] = str(int(fields[6]) - seconds)
        out.append("|".join(fields))
    return "\n".join(out) + "\n"

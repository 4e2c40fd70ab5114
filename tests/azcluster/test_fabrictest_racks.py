"""`azcluster test` on GB200/GB300: an all-reduce inside each NVLink domain (rack) and one across racks.

As in test_fabrictest.py: the real ComputeManagementClient talks to the loopback ARM fake, which runs the
Run Command script with bash in the fake login VM's directory, where Slurm's client commands are
tests/azcluster/fake_slurm.py (sinfo, sbatch, srun, scontrol). Each compute node's NVLink domain is the
file its health check writes (/var/lib/azcluster/nvlink-domain, "<ClusterUUID>.<CliqueId>"), read by the
script's srun on that node. Job output is the real nccl-tests output of tests/azcluster/fixtures/nccl with
its bus bandwidth figures changed where a test needs a slow rack.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from azcluster.components import catalog
from azcluster.errors import EXIT_REFUSED
from azcluster.ops import fabrictest
from tests.azcluster import demo
from tests.azcluster.fake_slurm import FakeSlurm
from tests.clirunner import run_cli
from tests.fakes.arm import fake_az_script

FIXTURES = Path(__file__).parent / "fixtures" / "nccl"
FAST = (FIXTURES / "h100_2node.txt").read_text()  # peak 444.71 GB/s at 1-2 GiB
SLOW = (
    FAST.replace("444.71", "300.0")
    .replace("440.65", "299.0")
    .replace("444.25", "298.0")
    .replace("442.99", "297.0")
)
GB300 = "Standard_ND128isr_GB300_v6"
RACK_A = "5d8f2a3c-1b4e-4f6a-9c7d-0e1f2a3b4c5d.32766"
RACK_B = "9e0a1b2c-3d4e-4f50-8a6b-7c8d9e0f1a2b.32766"


def gb_spec(nodes: int = 36, **pool) -> object:
    return demo.spec(pools=[{"name": "gb", "size": GB300, "nodes": nodes, **pool}])


@pytest.fixture
def slurm(arm, tmp_path):
    demo.add_to(arm.fake)
    fake = FakeSlurm(tmp_path / "login-programs")
    arm.fake.vms[("demo-rg", "demo-login")].programs = fake.bin
    return fake


def racks(slurm: FakeSlurm, domains: dict[str, str | None], state: str = "idle") -> None:
    """Slurm nodes gb-i0-NNN, each with the NVLink domain its health check recorded (None: none)."""
    slurm.nodes(dict.fromkeys(domains, state))
    for node, domain in domains.items():
        if domain is not None:
            slurm.node_file(node, fabrictest.DOMAIN_FILE, domain + "\n")


def two_racks() -> dict[str, str | None]:
    return {f"gb-i0-{n:03d}": RACK_A if n < 18 else RACK_B for n in range(36)}


def test_a_gb_island_is_planned_as_racks_and_its_jobs_force_or_forbid_multi_node_nvlink():
    (plan,) = fabrictest.plan_islands(gb_spec(), "demo")
    assert plan.racked and plan.gpus == 4 and plan.nodes == 36
    inside, across = fabrictest.job_script(plan, 1), fabrictest.job_script(plan, 0)
    assert "export NCCL_MNNVL_ENABLE=1" in inside and "export NCCL_MNNVL_ENABLE=0" in across
    for script in (inside, across):
        assert "-x NCCL_MNNVL_ENABLE" in script and "--map-by ppr:4:node" in script
        assert "all_reduce_perf -b 8G -e 16G -f 2 -g 1" in script
        if shutil.which("bash"):
            assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0
    h100 = fabrictest.plan_islands(demo.spec(), "demo")[0]
    assert not h100.racked and "MNNVL" not in fabrictest.job_script(h100)


def test_each_rack_is_tested_inside_its_nvlink_domain_and_the_racks_across_infiniband(arm, slurm):
    racks(slurm, two_racks())
    for key in ("gb-i0-r0", "gb-i0-r1", "gb-i0-x"):
        slurm.job(f"azc-test-{key}", FAST)

    report = fabrictest.run_test(gb_spec(), arm.context(), "demo", progress=False, run_id="r1")

    srun = [c for c in slurm.calls() if c.startswith("srun")]
    assert len(srun) == 1 and "--nodes=36" in srun[0] and "--ntasks-per-node=1" in srun[0]
    sbatch = {c.split("--job-name=")[1].split()[0]: c for c in slurm.calls() if c.startswith("sbatch")}
    assert set(sbatch) == {"azc-test-gb-i0-r0", "azc-test-gb-i0-r1", "azc-test-gb-i0-x"}
    rack_a = ",".join(f"gb-i0-{n:03d}" for n in range(18))
    assert (
        f"--nodelist={rack_a} " in sbatch["azc-test-gb-i0-r0"] and "--nodes=18" in sbatch["azc-test-gb-i0-r0"]
    )
    assert "--nodes=36" in sbatch["azc-test-gb-i0-x"] and "--ntasks-per-node=4" in sbatch["azc-test-gb-i0-x"]
    assert "NCCL_MNNVL_ENABLE=1" in slurm.submitted("azc-test-gb-i0-r0")
    assert "NCCL_MNNVL_ENABLE=0" in slurm.submitted("azc-test-gb-i0-x")

    first, second, across = report.islands
    assert [r.kind for r in report.islands] == ["rack", "rack", "across racks"]
    assert (first.domain, first.hosts) == (RACK_A, "gb-i0-[000-017]")
    assert (second.domain, second.hosts) == (RACK_B, "gb-i0-[018-035]")
    expectation = catalog.allreduce_expectations()[GB300]
    assert first.expected == expectation.nvlink_domain_gbps == 432
    assert across.expected == 180  # InfiniBand: 4 ports x 360 Gb/s / 8
    assert all(r.verdict == "ok" and r.peak_busbw == 444.71 for r in report.islands)
    assert (first.tested_nodes, across.tested_nodes) == (18, 36)
    assert report.ok
    document = report.to_json()
    assert document["islands"][0]["kind"] == "rack" and document["islands"][0]["domain"] == RACK_A
    assert "NVL72 domain" in document["islands"][0]["expected_source"]
    assert "nd128isr_ndr_gb200_v6.conf" in document["islands"][2]["expected_source"]
    json.dumps(document)


def test_a_rack_below_80_percent_fails_the_command_naming_the_rack(arm, slurm):
    racks(slurm, two_racks())
    slurm.job("azc-test-gb-i0-r0", FAST)
    slurm.job("azc-test-gb-i0-r1", SLOW)  # e.g. IMEX not up: NCCL falls back to the NICs
    slurm.job("azc-test-gb-i0-x", FAST)
    report = fabrictest.run_test(gb_spec(), arm.context(), "demo", progress=False, run_id="r2")
    good, bad, across = report.islands
    assert good.verdict == "ok" and across.verdict == "ok"
    assert bad.verdict == "far-below" and bad.peak_busbw == 300.0
    assert bad.reason == (
        "300 GB/s is under 80% of the 432 GB/s an all-reduce inside one ND GB300 v6 NVLink domain should "
        "reach (18 nodes)"
    )
    assert not report.ok
    error = fabrictest.failure(report)
    assert error.exit_code == EXIT_REFUSED
    assert f"gb-i0-r1 (rack gb-i0-[018-035], NVLink domain {RACK_B}) far-below" in error.message
    assert "nvidia-imex-ctl -N" in error.hint


def test_nodes_that_report_no_nvlink_domain_fail_their_rack_and_get_no_job(arm, slurm):
    domains = {f"gb-i0-{n:03d}": RACK_A for n in range(18)} | {"gb-i0-018": None, "gb-i0-019": None}
    racks(slurm, domains)
    slurm.job("azc-test-gb-i0-r0", FAST)
    slurm.job("azc-test-gb-i0-x", FAST)
    report = fabrictest.run_test(
        gb_spec(20, allow_partial_racks=True), arm.context(), "demo", progress=False, run_id="r3"
    )
    rack, unknown, across = report.islands
    assert rack.verdict == "ok" and across.verdict == "ok"
    assert unknown.verdict == "failed" and unknown.job_id is None and unknown.hosts == "gb-i0-[018-019]"
    assert unknown.reason.startswith("2 node(s) report no NVLink domain")
    assert "nvlink_fabric" in unknown.reason
    assert "azc-test-gb-i0-r1" not in " ".join(slurm.calls())


def test_a_partial_rack_is_tested_and_said_and_one_rack_has_nothing_across(arm, slurm):
    racks(slurm, {f"gb-i0-{n:03d}": RACK_A for n in range(4)})
    slurm.job("azc-test-gb-i0-r0", FAST)
    report = fabrictest.run_test(
        gb_spec(4, allow_partial_racks=True), arm.context(), "demo", progress=False, run_id="r4"
    )
    (rack,) = report.islands
    assert rack.verdict == "ok" and rack.reason == "partial rack: 4 of 18 nodes"
    assert not [c for c in slurm.calls() if "azc-test-gb-i0-x" in c]


def test_a_gb_island_with_no_usable_node_is_skipped_and_a_failed_srun_is_named(arm, slurm):
    racks(slurm, {f"gb-i0-{n:03d}": RACK_A for n in range(18)}, state="drained")
    report = fabrictest.run_test(gb_spec(18), arm.context(), "demo", progress=False, run_id="r5")
    (rack,) = report.islands
    assert rack.verdict == "skipped" and "none can run a job" in rack.reason
    assert not [c for c in slurm.calls() if c.startswith(("srun", "sbatch"))]
    assert not report.ok  # nothing tested: the rack is not known to work
    slurm.nodes({"gb-i0-000": "idle", "gb-i0-001": "down"})  # sinfo and srun disagree: srun refuses
    slurm.nodes({"gb-i0-000": "idle"})
    (Path(slurm.bin) / "srun").write_text(
        "#!/bin/bash\necho 'srun: error: Invalid job credential' >&2\nexit 1\n"
    )
    report = fabrictest.run_test(gb_spec(18), arm.context(), "demo", progress=False, run_id="r6")
    (rack,) = report.islands
    assert rack.verdict == "failed"
    assert rack.reason == "no node reported its NVLink domain (srun: srun: error: Invalid job credential)"


STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: demo
    pools:
      - {name: gb, size: Standard_ND128isr_GB300_v6, nodes: 36}
"""


def test_cli_shows_racks_and_exits_1_naming_the_slow_rack(arm, slurm, monkeypatch):
    bin_dir = arm.tmp / "az-bin"
    fake_az_script(bin_dir, arm.fake.token)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    arm.fake.lro_polls = 0
    stack = arm.tmp / "Pulumi.demo.yaml"
    stack.write_text(STACK)
    racks(slurm, two_racks())
    for key in ("gb-i0-r0", "gb-i0-r1", "gb-i0-x"):
        slurm.job(f"azc-test-{key}", FAST)
    good = run_cli("test", str(stack), "--auth", "cli")
    assert good.exit_code == 0, good.output
    assert "all-reduce per InfiniBand island and NVLink rack" in good.stdout
    assert "gb-i0-r0" in good.stdout and "gb-i0-r1" in good.stdout and "gb-i0-x" in good.stdout
    slurm.job("azc-test-gb-i0-r0", SLOW)
    result = run_cli("test", str(stack), "--json", "--auth", "cli")
    assert result.exit_code == EXIT_REFUSED, result.output
    document = json.loads(result.stdout)
    assert [r["verdict"] for r in document["islands"]] == ["far-below", "ok", "ok"]
    assert "rack gb-i0-[000-017]" in document["error"]["message"]


def test_an_island_of_100_gb_nodes_fits_its_seven_results_in_one_run_command(arm, slurm):
    """Run Command returns the last 4 KiB of stdout (tests/fakes/arm.py RUN_COMMAND_TAIL): five whole
    racks, a partial one and the job across them must all come back."""
    domains = {f"gb-i0-{n:03d}": f"{n // 18:08x}-0000-4000-8000-000000000000.32766" for n in range(100)}
    racks(slurm, domains)
    for key in [f"gb-i0-r{i}" for i in range(6)] + ["gb-i0-x"]:
        slurm.job(f"azc-test-{key}", FAST)
    report = fabrictest.run_test(
        gb_spec(100, allow_partial_racks=True), arm.context(), "demo", progress=False, run_id="r7"
    )
    assert [r.key for r in report.islands] == [f"gb-i0-r{i}" for i in range(6)] + ["gb-i0-x"]
    assert all(r.verdict == "ok" for r in report.islands), [r.reason for r in report.islands]
    assert report.islands[5].reason == "partial rack: 10 of 18 nodes"
    assert report.islands[4].hosts == "gb-i0-[072-089]"


def test_what_a_node_wrote_is_data_never_a_glob_or_a_command(arm, slurm):
    """A node's domain file reaches the login node's shell only as awk data; one that is not an id (a
    glob, a command substitution) makes that node 'no domain', and nothing of it runs or expands."""
    domains: dict[str, str | None] = {f"gb-i0-{n:03d}": RACK_A for n in range(18)}
    racks(slurm, domains)
    slurm.node_file("gb-i0-017", fabrictest.DOMAIN_FILE, "* $(touch /tmp/azc-pwned) `id`\n")
    slurm.job("azc-test-gb-i0-r0", FAST)
    report = fabrictest.run_test(gb_spec(18), arm.context(), "demo", progress=False, run_id="r8")
    by_key = {r.key: r for r in report.islands}
    rack = next(r for r in report.islands if r.domain == RACK_A)
    odd = next(r for r in report.islands if r.domain != RACK_A)
    assert rack.tested_nodes == 17 and rack.hosts == "gb-i0-[000-016]"
    assert odd.verdict == "failed" and odd.hosts == "gb-i0-017" and "no NVLink domain" in odd.reason
    assert len(by_key) == 3  # two racks as the nodes reported them, and the job across them
    assert not Path("/tmp/azc-pwned").exists()

"""`azcluster test`: the all-reduce per island through Slurm on the login node.

The real ComputeManagementClient talks to the loopback ARM fake, which runs the Run Command script with
bash in the fake login VM's directory; Slurm's client commands there are tests/azcluster/fake_slurm.py,
and the jobs "print" real nccl-tests output (tests/azcluster/fixtures/nccl, sources in its README)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from azcluster.components import catalog
from azcluster.errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError
from azcluster.ops import fabrictest, ncclperf
from tests.azcluster import demo
from tests.azcluster.fake_slurm import FakeSlurm
from tests.clirunner import run_cli
from tests.fakes.arm import fake_az_script

FIXTURES = Path(__file__).parent / "fixtures" / "nccl"
H100_2NODE = (FIXTURES / "h100_2node.txt").read_text()
H200_1NODE = (FIXTURES / "h200_1node.txt").read_text()
FAILED = (FIXTURES / "h100_2node_failed.txt").read_text()


def spec(**extra):
    """demo's pools, with gpu (ND H100 v5) split into islands of 3 and 2 nodes."""
    return demo.spec(
        pools=[
            {"name": "gpu", "size": demo.H100, "nodes": 5, "island_max_nodes": 3},
            {"name": "infer", "size": demo.NC, "nodes": 1},
        ],
        **extra,
    )


@pytest.fixture
def slurm(arm, tmp_path):
    demo.add_to(arm.fake)
    fake = FakeSlurm(tmp_path / "login-programs")
    arm.fake.vms[("demo-rg", "demo-login")].programs = fake.bin
    return fake


def _login_root(arm) -> Path:
    return arm.fake.vm_root(arm.fake.vms[("demo-rg", "demo-login")])


# --- the parser, on real output ----------------------------------------------------------------------------


def test_parser_reads_rows_summary_and_skips_nccl_info_lines():
    run = ncclperf.parse(H100_2NODE)
    assert [row.size for row in run.rows] == [2**27, 2**28, 2**29, 2**30, 2**31]
    assert run.rows[3].busbw_out == 440.65 and run.rows[3].busbw_in == 444.71
    assert run.peak_busbw() == 444.71  # in place, at 1 GiB: the best of the rows of 1 GiB and up
    assert run.peak_busbw(min_size=0) == 444.71
    assert run.average_busbw == 406.034 and run.out_of_bounds == 0
    assert run.completed and run.problem() is None
    single = ncclperf.parse(H200_1NODE)
    assert single.peak_busbw() == 476.98 and single.average_busbw == 476.967


def test_parser_names_a_failed_run_and_a_run_that_stopped():
    failed = ncclperf.parse(FAILED)
    assert not failed.completed and failed.rows == []
    assert failed.problem() == "Test NCCL failure common.cu:1057 'internal error / '"
    cut = ncclperf.parse("\n".join(H100_2NODE.splitlines()[:3]))  # the job was killed mid-run
    assert cut.problem() == "the test did not finish (no 'Avg bus bandwidth' line)"
    wrong = ncclperf.parse(H100_2NODE.replace("444.25      0", "444.25      3"))
    assert wrong.problem() == "some results were wrong (#wrong > 0)"


# --- which islands, what each expects ---------------------------------------------------------------------


def test_every_infiniband_island_is_planned_and_one_can_be_chosen():
    plans = fabrictest.plan_islands(spec(), "demo")
    assert [(p.key, p.prefix, p.nodes, p.gpus) for p in plans] == [
        ("gpu-i0", "gpu-i0-", 3, 8),
        ("gpu-i1", "gpu-i1-", 2, 8),
    ]  # infer (NC H100 v5) has no InfiniBand: nothing to test there
    assert [p.key for p in fabrictest.plan_islands(spec(), "demo", "gpu-i1")] == ["gpu-i1"]
    assert [p.key for p in fabrictest.plan_islands(spec(), "demo", "1")] == ["gpu-i1"]
    with pytest.raises(AzclusterError) as err:
        fabrictest.plan_islands(spec(), "demo", "gpu-i7")
    assert err.value.exit_code == EXIT_USAGE and "gpu-i0, gpu-i1" in err.value.hint


def test_expected_bandwidth_comes_from_the_catalogue_with_its_source():
    h100 = catalog.allreduce_expectations()[demo.H100]
    assert h100.expected_gbps(1, 8) == 460  # one node: AzNHC's NVLink threshold
    assert h100.expected_gbps(2, 8) == 375  # across nodes: 8 ports x 375 Gb/s
    assert "azurehpc-health-checks" in h100.source
    for name, expectation in catalog.allreduce_expectations().items():
        size = catalog.find_size(name)
        assert size is not None and size.infiniband is not None, name
        assert (expectation.library == "rccl") == (size.gpu_vendor == "amd"), name


def test_the_job_runs_the_images_binary_on_every_gpu_of_the_allocation():
    (h100,) = fabrictest.plan_islands(spec(), "demo", "gpu-i0")
    script = fabrictest.job_script(h100)
    assert "module load mpi/hpcx" in script
    assert "--map-by ppr:8:node" in script and "$((SLURM_JOB_NUM_NODES * 8))" in script
    assert "/opt/nccl-tests/build/all_reduce_perf -b 1G -e 16G -f 2 -g 1" in script
    mi300 = demo.spec(pools=[{"name": "amd", "size": "Standard_ND96isr_MI300X_v5", "nodes": 2}])
    (plan,) = fabrictest.plan_islands(mi300, "demo")
    rocm = fabrictest.job_script(plan)
    assert "/opt/rccl-tests/all_reduce_perf" in rocm and "/opt/rccl/lib" in rocm
    if shutil.which("bash"):
        assert subprocess.run(["bash", "-n"], input=script, text=True, check=False).returncode == 0


# --- through Run Command and Slurm -------------------------------------------------------------------------


def test_each_island_is_submitted_with_its_usable_nodes_and_judged(arm, slurm):
    slurm.nodes(
        {
            "gpu-i0-000": "idle",
            "gpu-i0-001": "mixed",
            "gpu-i0-002": "drained",  # left out: cannot run a job
            "gpu-i1-000": "idle~",  # powered down: Slurm resumes it
            "gpu-i1-001": "allocated",
            "gpu-i10-000": "idle",  # another island's slot: "gpu-i1-" is not its prefix
            "infer-i0-000": "idle",
        }
    )
    slurm.job("azc-test-gpu-i0", H100_2NODE)
    slurm.job("azc-test-gpu-i1", H100_2NODE.replace("444.71", "431.50"))

    report = fabrictest.run_test(spec(), arm.context(), "demo", progress=False, run_id="t1")

    sbatch = sorted(c for c in slurm.calls() if c.startswith("sbatch"))
    assert len(sbatch) == 2
    assert "user=azureuser" in sbatch[0] and "--wait" in sbatch[0] and "--parsable" in sbatch[0]
    assert "--nodes=2" in sbatch[0] and "--nodelist=gpu-i0-000,gpu-i0-001" in sbatch[0]
    assert "--ntasks-per-node=8" in sbatch[0] and "--exclusive" in sbatch[0]
    assert "--output=" + str(_login_root(arm)) + "/home/.azcluster-test/t1/gpu-i0.out" in sbatch[0]
    assert "--nodelist=gpu-i1-000,gpu-i1-001" in sbatch[1]
    assert slurm.submitted("azc-test-gpu-i0") == fabrictest.job_script(
        fabrictest.plan_islands(spec(), "demo")[0]
    )

    first, second = report.islands
    assert (first.verdict, first.tested_nodes, first.slurm_nodes) == ("ok", 2, 3)  # one of 3 drained
    assert (second.verdict, second.tested_nodes, second.slurm_nodes) == ("ok", 2, 2)
    assert {first.job_id, second.job_id} == {"4101", "4102"}  # submitted in parallel: either order
    assert first.peak_busbw == 444.71 and first.expected == 375  # two nodes: 8 ports x 375 Gb/s
    assert second.peak_busbw == 444.25  # gpu-i1's in-place 1 GiB figure is lower; 2 GiB out of place wins
    assert report.ok
    document = report.to_json()
    assert document["islands"][0]["expected_source"].endswith("nd96isr_h100_v5.conf")
    assert [r["bytes"] for r in document["islands"][0]["rows"]] == [2**30, 2**31]
    json.dumps(document)


def test_far_below_is_judged_on_the_peak_at_large_messages(arm, slurm):
    slurm.nodes({"gpu-i1-000": "idle", "gpu-i1-001": "idle"})
    slow = H100_2NODE.replace("440.65", "250.00").replace("444.71", "251.00")
    slow = slow.replace("444.25", "249.00").replace("442.99", "248.00")
    slurm.job("azc-test-gpu-i1", slow)
    report = fabrictest.run_test(spec(), arm.context(), "demo", island="gpu-i1", progress=False, run_id="t2")
    (island,) = report.islands
    assert island.verdict == "far-below" and island.peak_busbw == 251.0
    assert island.reason == "251 GB/s is under 80% of the 375 GB/s ND H100 v5 should reach on 2 node(s)"
    assert not report.ok


def test_a_failed_job_or_refused_submission_fails_the_island_with_why(arm, slurm):
    slurm.nodes({"gpu-i0-000": "idle", "gpu-i1-000": "idle"})
    slurm.job("azc-test-gpu-i0", FAILED, rc=1)
    # gpu-i1 has no behaviour: sbatch refuses it like Slurm refuses a node list it cannot satisfy
    report = fabrictest.run_test(spec(), arm.context(), "demo", progress=False, run_id="t3")
    first, second = report.islands
    assert (
        first.verdict == "failed" and first.reason == "Test NCCL failure common.cu:1057 'internal error / '"
    )
    assert second.verdict == "failed" and second.job_id is None
    assert second.reason.startswith("sbatch: sbatch: error: Batch job submission failed")


def test_an_island_slurm_cannot_use_is_skipped_and_nothing_tested_is_not_ok(arm, slurm):
    slurm.nodes({"gpu-i0-000": "down*", "gpu-i0-001": "drained"})
    report = fabrictest.run_test(spec(), arm.context(), "demo", island="gpu-i0", progress=False, run_id="t4")
    (island,) = report.islands
    assert island.verdict == "skipped" and island.slurm_nodes == 2 and island.tested_nodes == 0
    assert not [c for c in slurm.calls() if c.startswith("sbatch")]
    assert not report.ok  # nothing was tested: the cluster is not known to work


def test_the_script_carries_only_constants_keys_and_base64(arm, slurm):
    slurm.nodes({"gpu-i0-000": "idle"})
    slurm.job("azc-test-gpu-i0", H200_1NODE)
    report = fabrictest.run_test(spec(), arm.context(), "demo", island="gpu-i0", progress=False, run_id="t5")
    (post,) = arm.fake.vm_run_commands("demo-login")
    script = post.body["script"]
    encoded = [re.search(r"printf %s '([A-Za-z0-9+/=]+)'", line) for line in script]
    (job,) = [m[1] for m in encoded if m]
    assert base64.b64decode(job).decode() == fabrictest.job_script(fabrictest.plan_islands(spec(), "demo")[0])
    (island,) = report.islands
    assert island.verdict == "ok" and island.expected == 460  # one node: the single-node figure
    assert len("\n".join(script).encode()) < 16 * 1024


STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: demo
    pools:
      - {name: gpu, size: Standard_ND96isr_H100_v5, nodes: 5, island_max_nodes: 3}
"""


def test_cli_prints_a_table_or_json_and_exits_1_when_an_island_is_far_below(arm, slurm, monkeypatch):
    bin_dir = arm.tmp / "az-bin"
    fake_az_script(bin_dir, arm.fake.token)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    arm.fake.lro_polls = 0
    stack = arm.tmp / "Pulumi.demo.yaml"
    stack.write_text(STACK)
    slurm.nodes({"gpu-i0-000": "idle", "gpu-i0-001": "idle", "gpu-i1-000": "idle"})
    slurm.job("azc-test-gpu-i0", H100_2NODE)
    slurm.job("azc-test-gpu-i1", H200_1NODE)
    good = run_cli("test", str(stack), "--auth", "cli")
    assert good.exit_code == 0, good.output
    assert "gpu-i0" in good.stdout and "444.7" in good.stdout and "ok" in good.stdout
    slow = H100_2NODE.replace("444.71", "100.0").replace("440.65", "100.0").replace("444.25", "99.0")
    slurm.job("azc-test-gpu-i0", slow.replace("442.99", "98.0"))
    result = run_cli("test", str(stack), "--island", "gpu-i0", "--json", "--auth", "cli")
    assert result.exit_code == EXIT_REFUSED, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False and document["error"]["exit_code"] == EXIT_REFUSED
    assert document["islands"][0]["verdict"] == "far-below"
    assert "gpu-i0" in document["error"]["message"]
    unknown = run_cli("test", str(stack), "--island", "gpu-i9", "--auth", "cli")
    assert unknown.exit_code == EXIT_USAGE


def test_without_slurm_a_shared_home_or_a_login_node_it_is_a_usage_error():
    with pytest.raises(AzclusterError) as err:
        fabrictest.require_login_and_home(spec(storage={"home": {"enabled": False}}), "demo")
    assert err.value.exit_code == EXIT_USAGE and "storage.home" in err.value.hint
    with pytest.raises(AzclusterError) as err:
        fabrictest.require_login_and_home(spec(login={"enabled": False}), "demo")
    assert err.value.exit_code == EXIT_USAGE
    with pytest.raises(AzclusterError) as err:
        fabrictest.require_login_and_home(spec(scheduler="none"), "demo")
    assert err.value.exit_code == EXIT_USAGE and "scheduler: slurm" in err.value.hint


def test_the_readme_tour_of_slurm_and_test_uses_options_that_exist():
    """README's 'Running jobs' section: every azcluster command and option it shows is a real one."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("### Running jobs")
    section = readme[start : readme.index("\n### ", start + 1)]
    lines = [
        line.split("#")[0].split()
        for block in re.findall(r"```sh\n(.*?)```", section, re.S)
        for line in block.splitlines()
        if line.startswith(".venv/bin/azcluster ")
    ]
    assert {words[1] for words in lines} >= {"test", "status", "ssh"}
    for words in lines:
        shown = run_cli(words[1], "--help")
        assert shown.exit_code == 0, words
        for option in [w for w in words[2:] if w.startswith("--")]:
            assert option in shown.stdout, (words[1], option)
    assert "--no-slurm" in run_cli("status", "--help").stdout  # the section names it in prose


def test_an_island_on_a_stand_in_size_is_held_to_its_own_sizes_bar():
    h200 = "Standard_ND96isr_H200_v5"
    stand_in = {"stand_in_sizes": [h200], "island_stand_ins": {"1": h200}}
    two = demo.spec(
        pools=[{"name": "gpu", "size": demo.H100, "nodes": 4, "island_max_nodes": 2, "capacity": stand_in}]
    )
    plans = fabrictest.plan_islands(two, "demo")
    assert [(p.key, p.size.name) for p in plans] == [("gpu-i0", demo.H100), ("gpu-i1", h200)]
    assert plans[1].expectation is catalog.allreduce_expectations()[h200]

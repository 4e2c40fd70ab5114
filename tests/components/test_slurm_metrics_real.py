"""Slurm's series (azc-slurm-metrics.sh, the login node's textfile for node_exporter) from real sinfo,
squeue and sdiag on the controller azcluster renders (tests/components/slurmlab.py), on Slurm 24.11
(Debian trixie) and 26.05 (Debian sid): the script's parsing meets the real output formats, not a copy.

The lab's nodes have no GPUs (slurmlab declares none), so GPU counts are 0 here; the GRES parsing is
tested on recorded output in test_bootstrap_metrics.py."""

from __future__ import annotations

import pytest

from azcluster.components import bootstrap
from azcluster.components.bootstrap import metrics
from tests.components import slurmlab

pytestmark = [pytest.mark.timeout(600)]

SUITES = {"trixie": "24.11", "sid": "26.05"}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(suite, id=version, marks=pytest.mark.xdist_group(f"slurm-metrics-{version}"))
        for suite, version in SUITES.items()
    ],
)
def lab(request, tmp_path_factory):
    lab = slurmlab.new_lab(request.param, tmp_path_factory.mktemp(f"slurm-metrics-{request.param}"))
    try:
        lab.start_controller(slurmlab.legacy_extra(lab))
        lab.nodes = {"gpu-i0": lab.boot_node("gpu", 0, 0)}
        script = lab.login.path(f"{bootstrap.INSTALL_DIR}/azc-slurm-metrics.sh")
        script.write_text(bootstrap.read_script("azc-slurm-metrics.sh"))
        script.chmod(0o755)
        yield lab
    finally:
        lab.close()


def _series(lab) -> dict[str, float]:
    done = lab.script("azc-slurm-metrics.sh")
    assert done.returncode == 0, done.stdout + done.stderr
    text = lab.login.path("/var/lib/azcluster/metrics/slurm.prom").read_text()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line}


def test_nodes_jobs_partitions_and_the_scheduler(lab) -> None:
    slot = lab.slot_of(lab.nodes["gpu-i0"])
    lab.run("sbatch", "-p", "gpu", "-w", slot, "--exclusive", "--wrap", "sleep 120")
    # the same node again: pending until the first ends (the other slots have no VM)
    lab.run("sbatch", "-p", "gpu", "-w", slot, "--exclusive", "--wrap", "true")
    lab.wait_for("the job to run", lambda: "RUNNING" in lab.run("squeue", "-h", "-o", "%T").stdout)
    series = _series(lab)
    names = {key.split("{")[0] for key in series}
    assert names <= set(metrics.SLURM_METRICS), names - set(metrics.SLURM_METRICS)
    assert series["slurm_nodes_alloc"] == 1  # the booted node, taken whole (--exclusive)
    slots = set(lab.run("sinfo", "-h", "-N", "-o", "%N").stdout.split())
    by_state = [key for key in series if key.startswith("slurm_nodes_")]
    assert sum(series[key] for key in by_state) == len(slots)  # every node once, in one state
    assert (series["slurm_queue_running"], series["slurm_queue_pending"]) == (1, 1)
    assert series['slurm_partition_jobs_pending{partition="gpu"}'] == 1
    assert series['slurm_partition_jobs_pending{partition="infer"}'] == 0
    assert {key for key in series if key.startswith("slurm_partition_gpus_total")} == {
        f'slurm_partition_gpus_total{{partition="{pool.name}"}}' for pool in lab.spec.pools
    }
    assert series["slurm_gpus_total"] == 0  # no GPUs in the lab (module docstring)
    assert series["slurm_scheduler_up"] == 1
    assert series["slurm_scheduler_threads"] >= 1
    assert "slurm_scheduler_last_cycle" in series and "slurm_scheduler_backfill_last_cycle" in series


def test_a_drained_node_is_counted_drained(lab) -> None:
    slot = lab.slot_of(lab.nodes["gpu-i0"])
    lab.run("scontrol", "update", f"nodename={slot}", "state=drain", "reason=azcluster-test")
    try:
        series = _series(lab)
        assert series["slurm_nodes_drain"] >= 1
    finally:
        lab.run("scontrol", "update", f"nodename={slot}", "state=resume", check=False)

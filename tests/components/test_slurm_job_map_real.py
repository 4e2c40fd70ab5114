"""dcgm-exporter's HPC job mapping kept by azc-slurm-prolog.sh as Slurm's Prolog/Epilog, on real Slurm
daemons (Debian 12's 22.05, 13's 24.11, sid's 26.05): while a job holds GPUs,
/run/azcluster/hpc-jobs/<GPU index> on its node holds the job id; once it ends, no file names it.

What differs from Azure (besides tests/components/slurmlab.py's list): the node declares 2 GPUs whose
gres.conf device files are /dev/null and /dev/zero (the lab has no GPUs; Slurm only needs device files to
hand out indices, and task/none constrains nothing).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from azcluster.components.bootstrap.slurm import HPC_JOB_MAP_DIR
from tests.components import slurmlab
from tests.groups import REAL_DAEMONS

pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group(REAL_DAEMONS)]


def _stand_in_gpus(configs: dict[str, str]) -> dict[str, str]:
    lines = []
    for line in configs["gres.conf"].splitlines():
        if "File=/dev/nvidia[0-1]" in line:
            lines += [
                line.replace("/dev/nvidia[0-1]", "/dev/null"),
                line.replace("/dev/nvidia[0-1]", "/dev/zero"),
            ]
        else:
            lines.append(line)
    return {**configs, "gres.conf": "\n".join(lines) + "\n"}


@pytest.fixture(scope="module", params=[pytest.param(s, id=v) for s, v in slurmlab.VERSIONS.items()])
def lab(request, tmp_path_factory):
    spec = slurmlab.spec()
    hardware = {pool.name: replace(slurmlab.lab_hardware(pool), gpus=2) for pool in spec.pools}
    work = tmp_path_factory.mktemp(f"jobmap-{request.param}")
    lab = slurmlab.new_lab(request.param, work, spec, hardware=hardware)
    try:
        lab.start_controller(slurmlab.legacy_extra(lab), edit_configs=_stand_in_gpus)
        lab.node_vm = lab.boot_node("gpu", 0, 0)
        yield lab
    finally:
        lab.close()


def _mapping(lab) -> dict[str, str]:
    shown = lab.run(
        "sh", "-c", f"cd {HPC_JOB_MAP_DIR} 2>/dev/null && grep -H . * || true", machine=lab.node_vm
    ).stdout
    return dict(line.split(":", 1) for line in shown.splitlines())


def test_a_jobs_gpus_name_it_while_it_runs_and_nothing_names_it_after(lab) -> None:
    slot = lab.slot_of(lab.node_vm)
    args = ("sbatch", "--parsable", "-w", slot, "-p", "gpu", "-o", "/dev/null")
    job = lab.run(*args, "--gres=gpu:2", "--wrap", "sleep 120").stdout.strip().split(";")[0]
    lab.wait_for(f"job {job} to run", lambda: lab.job(job)["JobState"] == "RUNNING")
    lab.wait_for_value("the mapping", lambda: _mapping(lab) == {"0": job, "1": job})
    lab.run("scancel", job)
    lab.wait_for(f"job {job} to end", lambda: lab.job(job)["JobState"] not in ("RUNNING", "COMPLETING"))
    lab.wait_for("the mapping to empty", lambda: _mapping(lab) == {})
    # A job without GPUs on the same node leaves no file; the node stays usable (the Prolog never fails)
    plain = lab.run("srun", "-w", slot, "-p", "gpu", "sh", "-c", "echo ok")
    assert plain.stdout.strip() == "ok" and _mapping(lab) == {}
    assert "DRAIN" not in lab.node(slot).get("State", "")

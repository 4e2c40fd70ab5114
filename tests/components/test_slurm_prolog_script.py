"""azc-slurm-prolog.sh, run as slurmd runs a Prolog/Epilog (its environment only): dcgm-exporter's HPC job
mapping (a file per GPU index holding the ids of the jobs on it, one a line) appears with the job and is
gone after it, never fails a job, and hands over to azc-imex.sh where that exists (its status counts)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from azcluster.components.bootstrap import read_script
from azcluster.components.bootstrap.slurm import HPC_JOB_MAP_DIR

SCRIPT = "azc-slurm-prolog.sh"


def _run(root: Path, context: str, job: str, imex: Path | None = None, **env: str) -> int:
    script = root / SCRIPT
    if not script.exists():
        script.write_text(read_script(SCRIPT), encoding="utf-8")
    base = {
        "PATH": os.environ["PATH"],
        "AZC_ROOT": str(root),
        "AZC_IMEX_SCRIPT": str(imex or root / "no-imex"),
        "SLURM_SCRIPT_CONTEXT": context,
        "SLURM_JOB_ID": job,
    }
    return subprocess.run(["bash", str(script)], env={**base, **env}, check=False).returncode


def _mapping(root: Path) -> dict[str, list[str]]:
    folder = root / HPC_JOB_MAP_DIR.lstrip("/")
    return {p.name: p.read_text().split() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_a_jobs_gpus_map_to_it_while_it_runs_and_to_nothing_after(tmp_path: Path) -> None:
    assert _run(tmp_path, "prolog_slurmd", "41", SLURM_JOB_GPUS="0,1") == 0
    assert _run(tmp_path, "prolog_slurmd", "42", SLURM_JOB_GPUS="2,5") == 0
    assert _mapping(tmp_path) == {"0": ["41"], "1": ["41"], "2": ["42"], "5": ["42"]}
    assert _run(tmp_path, "epilog_slurmd", "41") == 0  # the epilog needs no GPU list
    assert _mapping(tmp_path) == {"2": ["42"], "5": ["42"]}
    assert _run(tmp_path, "epilog_slurmd", "42") == 0
    assert _mapping(tmp_path) == {}


def test_jobs_sharing_a_gpu_are_one_line_each_and_leave_one_by_one(tmp_path: Path) -> None:
    _run(tmp_path, "prolog_slurmd", "7", SLURM_JOB_GPUS="3")
    _run(tmp_path, "prolog_slurmd", "8", SLURM_JOB_GPUS="3")
    _run(tmp_path, "prolog_slurmd", "8", SLURM_JOB_GPUS="3")  # a prolog run twice adds no second line
    assert _mapping(tmp_path) == {"3": ["7", "8"]}
    _run(tmp_path, "epilog_slurmd", "7")
    assert _mapping(tmp_path) == {"3": ["8"]}


def test_cuda_visible_devices_stands_in_for_slurm_job_gpus(tmp_path: Path) -> None:
    _run(tmp_path, "prolog_slurmd", "9", CUDA_VISIBLE_DEVICES="4,6")
    assert _mapping(tmp_path) == {"4": ["9"], "6": ["9"]}


def test_jobs_without_gpus_or_odd_input_change_nothing_and_never_fail(tmp_path: Path) -> None:
    assert _run(tmp_path, "prolog_slurmd", "10") == 0
    assert _run(tmp_path, "prolog_slurmd", "11", SLURM_JOB_GPUS="../x,N/A") == 0
    assert _run(tmp_path, "prolog_slurmd", "", SLURM_JOB_GPUS="0") == 0
    assert _mapping(tmp_path) == {}
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run").write_text("a file where the folder should be")
    assert _run(broken, "prolog_slurmd", "12", SLURM_JOB_GPUS="0") == 0
    assert _run(broken, "epilog_slurmd", "12") == 0


def test_imex_runs_after_the_mapping_and_its_failure_fails_the_prolog(tmp_path: Path) -> None:
    imex = tmp_path / "imex.sh"
    log = tmp_path / "imex.log"
    record = f'echo "$SLURM_SCRIPT_CONTEXT $SLURM_JOB_ID" >>{log}'
    imex.write_text(f'#!/bin/sh\n{record}\nexit "${{IMEX_RC:-0}}"\n')
    imex.chmod(0o755)
    assert _run(tmp_path, "prolog_slurmd", "5", imex, SLURM_JOB_GPUS="0") == 0
    assert _run(tmp_path, "epilog_slurmd", "5", imex, IMEX_RC="3") == 3
    assert log.read_text().splitlines() == ["prolog_slurmd 5", "epilog_slurmd 5"]
    assert _mapping(tmp_path) == {}


def test_prologs_and_epilogs_of_jobs_on_one_node_at_once_lose_no_line(tmp_path: Path) -> None:
    """slurmd runs the prologs and epilogs of jobs sharing a node concurrently: each rewrites a map file under
    the map's lock, so a prolog's line is never lost to an epilog's rewrite of the same file."""
    (tmp_path / SCRIPT).write_text(read_script(SCRIPT), encoding="utf-8")
    for job in range(100, 120):  # jobs that end while the others start
        _run(tmp_path, "prolog_slurmd", str(job), SLURM_JOB_GPUS="0,1")
    env = {"PATH": os.environ["PATH"], "AZC_ROOT": str(tmp_path), "AZC_IMEX_SCRIPT": str(tmp_path / "none")}
    runs = [
        subprocess.Popen(
            ["bash", str(tmp_path / SCRIPT)],
            env={**env, "SLURM_SCRIPT_CONTEXT": context, "SLURM_JOB_ID": str(job), "SLURM_JOB_GPUS": "0,1"},
        )
        for n in range(20)
        for context, job in (("epilog_slurmd", 100 + n), ("prolog_slurmd", 200 + n))
    ]
    assert all(run.wait(timeout=60) == 0 for run in runs)
    expected = [str(job) for job in range(200, 220)]
    assert {gpu: sorted(jobs) for gpu, jobs in _mapping(tmp_path).items()} == {"0": expected, "1": expected}

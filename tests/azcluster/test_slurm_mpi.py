"""`status` says when the cluster's Slurm cannot launch MPI jobs: the login node's own record
(components/bootstrap/slurm_mpi.py), read in the same Run Command as sinfo through the real
ComputeManagementClient on the fake ARM (whose login VM runs the script for real), shown in the JSON and in
red in the text."""

from __future__ import annotations

import json

import pytest

from azcluster.azure import compute_client
from azcluster.components.bootstrap.slurm_mpi import SLURM_MPI_PATH, parse_slurm_mpi
from azcluster.ops.status import cluster_status
from azcluster.ops.status_view import print_status
from tests.azcluster import demo
from tests.azcluster.fake_slurm import FakeSlurm

LOGIN = ("demo-rg", "demo-login")

# Records in the shape slurm_mpi.py documents: a Slurm built with PMIx, and one built without it (the case
# issue 16 saw on Debian sid's 26.05.5: "Invalid MPI type 'pmix'"). Plugin lists are illustrative.
WITH_PMIX = {
    "slurm": "25.11.5",
    "plugins": ["none", "pmi2", "pmix", "pmix_v4"],
    "pmix": True,
    "mpi_default": "pmix",
    "time": "2026-12-07T08:00:00Z",
}
WITHOUT_PMIX = {
    "slurm": "26.05.5",
    "plugins": ["cray_shasta", "none", "pmi2"],
    "pmix": False,
    "mpi_default": "none",
    "time": "2026-12-07T08:00:00Z",
    "detail": "MpiDefault=pmix replaced by none on this node",
}


def test_a_record_without_pmix_says_why_mpi_jobs_fail_and_one_with_it_says_nothing() -> None:
    assert parse_slurm_mpi(json.dumps(WITH_PMIX)).problem() is None
    facts = parse_slurm_mpi(json.dumps(WITHOUT_PMIX))
    assert facts.plugins == ("cray_shasta", "none", "pmi2") and facts.pmix is False
    assert facts.problem() == (
        "Slurm 26.05.5 has no PMIx plugin (MPI plugins: cray_shasta, none, pmi2): `srun --mpi=pmix` and MPI "
        "programs launched with srun will fail; plain srun runs (MpiDefault=none); MpiDefault=pmix replaced "
        "by none on this node"
    )
    stuck = parse_slurm_mpi(json.dumps({**WITHOUT_PMIX, "mpi_default": "pmix", "detail": ""}))
    assert stuck.problem().endswith("so does every plain srun (MpiDefault=pmix: \"Invalid MPI type 'pmix'\")")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "Expecting value"),
        ("[]", "not a JSON object"),
        ('{"pmix": true}', "'plugins'"),
        ('{"plugins": "pmix", "pmix": true}', "'plugins' is not a list"),
        ('{"plugins": [], "pmix": "yes"}', "'pmix' is not a boolean"),
    ],
)
def test_a_record_of_another_shape_is_refused_saying_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="not an azcluster Slurm MPI record") as caught:
        parse_slurm_mpi(text)
    assert why in str(caught.value)


@pytest.fixture
def login(arm, tmp_path):
    demo.add_to(arm.fake)
    slurm = FakeSlurm(tmp_path / "login-programs")
    vm = arm.fake.vms[LOGIN]
    vm.programs = slurm.bin
    slurm.nodes({"gpu-i0-000": ("idle", "gpu0000000", "10.42.0.4", "none")})
    return vm


def _record(arm, vm, text: str) -> None:
    path = arm.fake.vm_root(vm) / SLURM_MPI_PATH.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_status_says_mpi_jobs_will_fail_without_a_run_command_of_its_own(arm, login, capsys):
    _record(arm, login, json.dumps(WITHOUT_PMIX, indent=1))  # a record over several lines reads the same
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    assert status.slurm.nodes and status.slurm.mpi.plugins == ("cray_shasta", "none", "pmi2")
    assert status.slurm.mpi_problem.startswith("Slurm 26.05.5 has no PMIx plugin")
    assert len(login.scripts) == 1 and not arm.fake.run_commands()  # the sinfo call, nothing on the nodes
    mpi = status.to_json()["slurm"]["mpi"]
    assert mpi["read"] and mpi["pmix"] is False and mpi["mpi_default"] == "none" and mpi["error"] is None
    assert "MPI programs launched with srun will fail" in mpi["problem"]
    print_status(status)
    out = " ".join(capsys.readouterr().out.split())
    assert "slurm: MPI jobs will fail: Slurm 26.05.5 has no PMIx plugin" in out


def test_a_slurm_with_pmix_adds_no_line(arm, login, capsys):
    _record(arm, login, json.dumps(WITH_PMIX))
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    assert status.slurm.mpi.pmix and status.slurm.mpi_problem is None
    assert status.to_json()["slurm"]["mpi"]["problem"] is None
    print_status(status)
    assert "MPI" not in capsys.readouterr().out


def test_a_missing_or_damaged_record_is_said_and_the_node_states_still_show(arm, login, capsys):
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    assert status.slurm.nodes and status.slurm.mpi is None
    assert (
        status.slurm.mpi_error == f"no {SLURM_MPI_PATH} on the login node yet (written once Slurm runs there)"
    )
    print_status(status)
    assert "slurm: MPI support not read (no /var/lib/azcluster/slurm-mpi.json" in capsys.readouterr().out
    _record(arm, login, '{"plugins": "pmix"}')
    status = cluster_status(demo.spec(), arm.context(), "demo", diagnose=False)
    assert status.slurm.mpi_error.startswith(
        f"{SLURM_MPI_PATH} on the login node: not an azcluster Slurm MPI"
    )


def test_the_first_call_stays_under_run_commands_4_kib_with_the_record(arm, login):
    import random

    from azcluster.ops import runcommand, slurmstate

    rng = random.Random(3)  # a listing that fills every chunk, and the longest record we print
    FakeSlurm(login.programs.parent).nodes(
        {f"gpu-i0-{i:03d}": ("drained", f"h{i}", "10.42.0.9", f"r{rng.random()}") for i in range(400)}
    )
    _record(arm, login, json.dumps({**WITHOUT_PMIX, "detail": "x" * 2000}))
    begin = runcommand.on_vm(compute_client(arm.context()), "demo-rg", "demo-login")
    view = slurmstate.read_slurm(begin, run_id="0badc0de")
    assert len(view.nodes) == 400 and view.error is None
    assert len(login.scripts) > 1  # the listing took several calls; the first one also carried the record
    # a record cut at MPI_RECORD_LIMIT is not JSON: said, never a wrong answer
    assert view.mpi is None and "not an azcluster Slurm MPI record" in view.mpi_error

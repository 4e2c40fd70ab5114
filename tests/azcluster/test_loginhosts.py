"""Hostfiles on the login node through Run Command on a plain VM: the real ComputeManagementClient against
the loopback fake, which runs the script it receives the way the Linux extension does (bash, as root of
the VM's own directory), so these tests read back both what was sent and what was written."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import pytest

from azcluster.components.bootstrap import HOSTFILE_DIR
from azcluster.errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError
from azcluster.ops import loginhosts, runcommand
from azcluster.ops.hosts import hostfiles
from tests.azcluster import demo
from tests.azcluster.demo import H100, spec

LOGIN_RUN_COMMAND = (
    "/resourceGroups/demo-rg/providers/Microsoft.Compute/virtualMachines/demo-login/runCommand"
)
EXPECTED = {
    "gpu-i0": "10.42.0.4\n10.42.0.6\n",  # 10.42.0.5 is deallocated: left out, as `hosts` leaves it out
    "gpu-i1": "10.42.1.4\n10.42.1.5\n",
    "infer-i0": "10.42.16.4\n",
}


@pytest.fixture
def cluster(arm):
    """demo: pool gpu in two islands (3 + 2 nodes, one deallocated), pool infer (1 node), a login VM."""
    sets = demo.add_to(arm.fake)
    sets[0].instances[1].power = "deallocated"
    return sets


def login(arm):
    return arm.fake.vms[("demo-rg", "demo-login")]


def on_login(arm) -> dict[str, str]:
    """The hostfile directory on the fake login VM: file name -> content (temporary files included)."""
    directory = arm.fake.vm_root(login(arm)) / HOSTFILE_DIR.lstrip("/")
    return {path.name: path.read_text() for path in sorted(directory.iterdir())} if directory.exists() else {}


def sent_files(script: list[str]) -> dict[str, str]:
    """Decode what a script carries: `put NAME 'BASE64'` lines."""
    found = {}
    for line in script:
        match = re.fullmatch(r"put ([a-z0-9-]+) '([A-Za-z0-9+/=]*)'", line)
        if match:
            found[match[1]] = base64.b64decode(match[2]).decode()
    return found


def test_install_writes_one_file_per_island_atomically_and_idempotently(arm, cluster) -> None:
    arm.fake.lro_polls = 2
    arm.fake.run_command_location_only = True  # 202 with Location only, as the REST example answers
    stale = arm.fake.vm_root(login(arm)) / HOSTFILE_DIR.lstrip("/")
    stale.mkdir(parents=True)
    (stale / "old-i9").write_text("10.9.9.9\n")  # an island that no longer exists

    files, install = loginhosts.read_and_install(spec(), arm.context(), "demo", progress=False)

    (post,) = arm.fake.vm_run_commands("demo-login")
    assert post.path.endswith(LOGIN_RUN_COMMAND) and post.query["api-version"]
    assert post.body["commandId"] == "RunShellScript"
    script = post.body["script"]
    assert sent_files(script) == EXPECTED  # what the fake received, decoded
    assert on_login(arm) == EXPECTED  # what the script wrote: no temporary file left, old-i9 removed
    for name in EXPECTED:
        mode = (stale / name).stat().st_mode & 0o777
        assert mode == 0o644
    assert len(arm.fake.calls("GET", "/operations/")) >= 3  # polled through Location to the end
    assert [f.text() for f in files] == list(EXPECTED.values())  # the same text `hosts` prints
    assert install.to_json() == {
        "vm": "demo-login",
        "directory": HOSTFILE_DIR,
        "files": [
            {"path": f"{HOSTFILE_DIR}/gpu-i0", "pool": "gpu", "island": 0, "hosts": 2},
            {"path": f"{HOSTFILE_DIR}/gpu-i1", "pool": "gpu", "island": 1, "hosts": 2},
            {"path": f"{HOSTFILE_DIR}/infer-i0", "pool": "infer", "island": 0, "hosts": 1},
        ],
        "run_commands": 1,
        "removed_other_islands": True,
    }

    # nothing Azure reported reaches the shell in clear: addresses travel base64-encoded only
    assert "10.42." not in "\n".join(script)

    # a second install sends the same script and leaves the same files
    loginhosts.read_and_install(spec(), arm.context(), "demo", progress=False)
    first, second = login(arm).scripts
    assert first == second and on_login(arm) == EXPECTED


def test_one_island_in_mpi_format_leaves_the_other_files_alone(arm, cluster) -> None:
    loginhosts.read_and_install(spec(), arm.context(), "demo", progress=False)
    _files, install = loginhosts.read_and_install(
        spec(), arm.context(), "demo", fmt="mpi", pool="gpu", island=1, progress=False
    )
    assert sent_files(login(arm).scripts[-1]) == {"gpu-i1": "10.42.1.4 slots=8\n10.42.1.5 slots=8\n"}
    assert on_login(arm) == {**EXPECTED, "gpu-i1": "10.42.1.4 slots=8\n10.42.1.5 slots=8\n"}
    assert install.pruned is False


def test_a_cluster_too_big_for_one_script_is_written_in_several(arm, cluster) -> None:
    files = hostfiles(spec(), arm.context(), "demo")
    one = runcommand.script_size(loginhosts.plan_scripts({"gpu-i1": EXPECTED["gpu-i1"]}, prune=True)[0])
    install = loginhosts.install_hostfiles(
        spec(), arm.context(), "demo", files, budget=one + 40, progress=False
    )
    scripts = login(arm).scripts
    assert install.scripts == len(scripts) == 3  # one island per script at this budget
    assert all(runcommand.script_size(s) <= one + 40 for s in scripts)
    assert {k: v for s in scripts for k, v in sent_files(s).items()} == EXPECTED
    assert ["for f in" in "\n".join(s) for s in scripts] == [False, False, True]  # pruned last, once
    assert on_login(arm) == EXPECTED
    # one at a time: each POST went out after the previous Run Command's result was read
    posts = [r.at for r in arm.fake.vm_run_commands()]
    results = [r.at for r in arm.fake.calls("GET", "/operations/") if r.query.get("monitor") == ["true"]]
    assert posts[1] > results[0] and posts[2] > results[1]


def test_an_island_too_big_for_any_script_is_refused_clearly(arm, cluster) -> None:
    files = hostfiles(spec(), arm.context(), "demo")
    with pytest.raises(AzclusterError) as caught:
        loginhosts.install_hostfiles(spec(), arm.context(), "demo", files, budget=200, progress=False)
    assert caught.value.exit_code == EXIT_REFUSED
    assert "more than one Run Command script carries" in caught.value.message
    assert "azcluster hosts demo --out DIR" in caught.value.hint
    assert arm.fake.vm_run_commands() == []  # refused before sending anything


def test_login_disabled_is_a_usage_error_before_azure_is_asked(arm, cluster) -> None:
    with pytest.raises(AzclusterError) as caught:
        loginhosts.read_and_install(spec(login={"enabled": False}), arm.context(), "demo", progress=False)
    assert caught.value.exit_code == EXIT_USAGE and "no login node" in caught.value.message
    assert arm.fake.requests == []
    skipped = loginhosts.refresh(spec(login={"enabled": False}), "demo", arm.context)
    assert skipped.state == "skipped" and arm.fake.requests == []


@pytest.mark.parametrize(
    ("arrange", "message", "hint"),
    [
        (
            lambda vm: setattr(
                vm, "run_command_refusal", (403, "AuthorizationFailed", "no runCommand/action")
            ),
            "AuthorizationFailed: no runCommand/action",
            "Virtual Machine Contributor",
        ),
        (
            lambda vm: setattr(vm, "power", "deallocated"),
            "OperationNotAllowed",
            "az vm start -g demo-rg -n demo-login",
        ),
        (
            lambda vm: setattr(
                vm, "run_command_error", ("VMAgentStatusCommunicationError", "no agent status")
            ),
            "VMAgentStatusCommunicationError: no agent status",
            "VM agent",
        ),
    ],
    ids=["reader", "login-deallocated", "operation-failed"],
)
def test_install_failures_say_what_and_what_to_do(arm, cluster, arrange, message, hint) -> None:
    arrange(login(arm))
    with pytest.raises(AzclusterError) as caught:
        loginhosts.read_and_install(spec(), arm.context(), "demo", progress=False)
    assert caught.value.exit_code == EXIT_REFUSED
    assert caught.value.message.startswith("could not write the hostfiles on demo-login: ")
    assert message in caught.value.message and hint in caught.value.hint


def test_a_script_that_stops_halfway_is_a_failure_though_run_command_succeeded(arm, cluster) -> None:
    blocked = arm.fake.vm_root(login(arm)) / "etc/azcluster"
    blocked.mkdir(parents=True)
    (blocked / "hostfiles").write_text("not a directory")
    with pytest.raises(AzclusterError) as caught:
        loginhosts.read_and_install(spec(), arm.context(), "demo", progress=False)
    assert "could not write the hostfiles on demo-login: mkdir: " in caught.value.message


def test_the_login_vm_missing_from_azure_says_so(arm) -> None:
    arm.fake.add_cluster("demo", {"gpu": (H100, [1])}, login=False)
    refreshed = loginhosts.refresh(spec(), "demo", arm.context, progress=False)
    assert refreshed.state == "failed" and "ResourceNotFound" in refreshed.reason
    assert "is the cluster up" in refreshed.hint


def test_the_scripts_are_shellcheck_clean(tmp_path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian/Ubuntu: apt-get install -y shellcheck)")
    contents = {"gpu-i0": "10.0.0.4\n", "gpu-i1": "", "infer-i0": "10.0.1.4 slots=2\n"}
    for index, lines in enumerate(loginhosts.plan_scripts(contents, prune=True, budget=700)):
        path = tmp_path / f"script-{index}.sh"
        path.write_text("\n".join(lines) + "\n")
        for shell in ("sh", "bash"):
            proc = subprocess.run(
                ["shellcheck", "-s", shell, str(path)], capture_output=True, text=True, check=False
            )
            assert proc.returncode == 0, proc.stdout


def test_island_keys_are_the_only_names_a_script_takes() -> None:
    with pytest.raises(ValueError, match="lower-case letters"):
        loginhosts.plan_scripts({"gpu-i0; rm -rf /": "x\n"}, prune=True)

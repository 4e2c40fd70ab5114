"""azc-elastic.py (the login node's power programs) against the loopback HTTPS ARM fake and an IMDS fake.

The program runs as Slurm runs it: a separate python3 process with a host list argument; its endpoints,
paths and scontrol are pointed at the fakes through AZC_* variables. What Azure was asked is read from
the fake's request log; what Slurm was told from a stand-in scontrol that records its arguments.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from azcluster.components import elastic
from azcluster.components.bootstrap import read_script
from azcluster.components.spec import ClusterSpec
from tests.fakes.arm import SUBSCRIPTION, TOKEN, FakeArm, FakeArmServer
from tests.fakes.imds import FakeImds, FakeImdsServer

H100 = "Standard_ND96isr_H100_v5"
CLIENT_ID = "5b1c2f0e-0000-4000-8000-00000000c1d0"
RG = "llm-rg"


def cluster_spec(**elastic_args: Any) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "pools": [{"name": "h100", "size": H100, "nodes": 12, "island_max_nodes": 4}],
            "ssh": {"public_keys": ["ssh-ed25519 AAAA"]},
            "elastic": {"idle_minutes": 30, **elastic_args},
        }
    )


class World:
    """The fakes, the program's files and a way to run it."""

    def __init__(self, tmp: Path, arm: FakeArm, arm_server: FakeArmServer, imds: FakeImds, imds_url: str):
        self.tmp, self.arm, self.imds = tmp, arm, imds
        self.program = tmp / "azc-elastic.py"
        self.program.write_text(read_script("azc-elastic.py"), encoding="utf-8")
        self.config_path = tmp / "elastic.json"
        self.state_dir = tmp / "state"
        self.log = tmp / "elastic.log"
        self.scontrol_log = tmp / "scontrol.log"
        scontrol = tmp / "scontrol"
        # `scontrol -o show node A,B` answers from slots.json (slot -> NodeHostName), one line per node,
        # as Slurm prints them (key=value tokens); every other call is recorded.
        self.slots_path = tmp / "slots.json"
        self.slots_path.write_text("{}")
        scontrol.write_text(
            f"#!{sys.executable}\nimport json, sys\n"
            "args = sys.argv[1:]\n"
            "if args[:3] == ['-o', 'show', 'node']:\n"
            f"    table = json.load(open({str(self.slots_path)!r}))\n"
            "    for name in args[3].split(','):\n"
            "        host = table.get(name, name)\n"
            "        print(f'NodeName={name} Arch=x86_64 NodeAddr={host} NodeHostName={host} State=IDLE')\n"
            "    sys.exit(0)\n"
            f"open({str(self.scontrol_log)!r}, 'a').write(' '.join(args) + '\\n')\n"
        )
        scontrol.chmod(0o755)
        self.env = {
            **os.environ,
            "AZC_ELASTIC_CONFIG": str(self.config_path),
            "AZC_ELASTIC_STATE_DIR": str(self.state_dir),
            "AZC_ELASTIC_LOG": str(self.log),
            "AZC_IMDS_ENDPOINT": imds_url,
            "AZC_ARM_ENDPOINT": arm_server.url,
            "AZC_CA_BUNDLE": str(arm_server.ca_path),
            "AZC_SCONTROL": str(scontrol),
            "AZC_ELASTIC_POLL": "inline",
            "AZC_ELASTIC_SLEEP_SCALE": "0.001",
        }
        self.configure(cluster_spec(), scheduler="slurm")
        for index in range(3):
            arm.add_scale_set(
                RG,
                f"llm-h100-ib{index}",
                H100,
                4,
                computer_prefix=f"llm-h100-i{index}-",
                tags={"azcluster-cluster": "llm", "azcluster-island": str(index)},
            )

    def configure(self, spec: ClusterSpec, scheduler: str) -> None:
        config = json.loads(elastic.render_config(spec, SUBSCRIPTION, CLIENT_ID))
        config["scheduler"] = scheduler
        self.config_path.write_text(json.dumps(config), encoding="utf-8")

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.program), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def state(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "state.json").read_text())

    def posts(self, action: str) -> list[tuple[str, list[str]]]:
        """(scale set, instance ids) of every POST start|deallocate the program sent."""
        out = []
        for request in self.arm.calls("POST", f"/{action}"):
            name = request.path.split("/virtualMachineScaleSets/")[1].split("/")[0]
            out.append((name, list(request.body["instanceIds"])))
        return out

    def power(self, scale_set: str) -> list[str]:
        return [inst.power for inst in self.arm.scale_sets[(RG, scale_set)].instances]

    def scontrol_calls(self) -> list[str]:
        return self.scontrol_log.read_text().splitlines() if self.scontrol_log.exists() else []


@pytest.fixture
def world(tmp_path: Path):
    arm = FakeArm()
    imds = FakeImds(CLIENT_ID, TOKEN)
    with FakeArmServer(arm, tmp_path) as arm_server, FakeImdsServer(imds) as imds_server:
        yield World(tmp_path, arm, arm_server, imds, imds_server.url)


def _deallocate_all(world: World) -> None:
    for scale_set in world.arm.scale_sets.values():
        for inst in scale_set.instances:
            inst.power = "deallocated"


# --- resume and suspend ----------------------------------------------------------------------------------


def test_resume_starts_exactly_the_named_instances_one_call_per_island(world: World) -> None:
    _deallocate_all(world)
    done = world.run("resume", "llm-h100-i0-[000001-000002],llm-h100-i2-000003")
    assert done.returncode == 0, done.stderr + world.log.read_text()
    assert sorted(world.posts("start")) == [("llm-h100-ib0", ["1", "2"]), ("llm-h100-ib2", ["3"])]
    assert world.power("llm-h100-ib0") == ["deallocated", "running", "running", "deallocated"]
    assert world.power("llm-h100-ib1") == ["deallocated"] * 4
    assert world.state()["islands"]["h100-i0"]["state"] == "running"
    assert world.state()["operations"] == {}
    assert world.scontrol_calls() == []
    # the token came from IMDS for the cluster's identity and ARM's audience
    query = world.imds.requests[0]["query"]
    assert query["client_id"] == CLIENT_ID and query["resource"] == "https://management.azure.com/"
    assert query["api-version"] == "2018-02-01" and world.imds.requests[0]["headers"]["metadata"] == "true"
    assert all(r.query["api-version"] == [elastic.ARM_API_VERSION] for r in world.arm.calls("POST", "/start"))


def test_suspend_deallocates_and_a_second_call_does_nothing(world: World) -> None:
    assert world.run("suspend", "llm-h100-i1-[000000-000003]").returncode == 0
    assert world.posts("deallocate") == [("llm-h100-ib1", ["0", "1", "2", "3"])]
    assert world.power("llm-h100-ib1") == ["deallocated"] * 4
    assert world.run("suspend", "llm-h100-i1-[000000-000003]").returncode == 0
    assert len(world.posts("deallocate")) == 1
    assert "nothing to do" in world.log.read_text()


def test_a_second_call_while_the_first_is_still_running_sends_nothing(world: World) -> None:
    world.arm.lro_polls = 1000  # the deallocation stays in progress
    first = world.run("suspend", "llm-h100-i1-000002", AZC_ELASTIC_POLL="none")
    assert first.returncode == 0
    again = world.run("suspend", "llm-h100-i1-000002", AZC_ELASTIC_POLL="none")
    assert again.returncode == 0
    assert world.posts("deallocate") == [("llm-h100-ib1", ["2"])]
    assert world.state()["islands"]["h100-i1"]["state"] == "deallocating"


def test_kept_warm_islands_are_never_deallocated(world: World) -> None:
    world.configure(cluster_spec(keep_warm_islands=1), scheduler="slurm")
    assert world.run("suspend", "llm-h100-i0-000000,llm-h100-i1-000000").returncode == 0
    assert world.posts("deallocate") == [("llm-h100-ib1", ["0"])]


# --- Azure saying no, or not now -------------------------------------------------------------------------


def test_429_is_retried_after_the_time_azure_asks_for(world: World) -> None:
    world.arm.inject("POST", "/llm-h100-ib0/deallocate", 429, headers={"Retry-After": "7"})
    assert world.run("suspend", "llm-h100-i0-000000").returncode == 0
    assert len(world.arm.calls("POST", "/deallocate")) == 2
    assert "retrying in 7 s" in world.log.read_text()
    assert world.power("llm-h100-ib0")[0] == "deallocated"


def test_5xx_is_retried_with_bounded_attempts(world: World) -> None:
    world.arm.inject("POST", "/llm-h100-ib0/deallocate", 503)
    assert world.run("suspend", "llm-h100-i0-000001").returncode == 0
    assert len(world.arm.calls("POST", "/deallocate")) == 2
    # Azure down for good: a handful of attempts, then the program gives up and `watch` retries later
    world.arm.inject("POST", "/llm-h100-ib2/deallocate", 500, times=100)
    failed = world.run("suspend", "llm-h100-i2-000001")
    assert failed.returncode == 1
    assert len(world.arm.calls("POST", "/llm-h100-ib2/deallocate")) == 5
    assert world.state()["islands"]["h100-i2"]["pending_deallocate"] == ["llm-h100-i2-000001"]
    # the next `watch` deallocates it once Azure answers again
    world.arm.faults.clear()
    assert world.run("watch").returncode == 0
    assert world.power("llm-h100-ib2")[1] == "deallocated"
    assert world.state()["islands"]["h100-i2"]["pending_deallocate"] == []


def test_allocation_failure_marks_the_nodes_down_and_the_island_backs_off(world: World) -> None:
    _deallocate_all(world)
    world.arm.scale_sets[(RG, "llm-h100-ib0")].start_error = (
        "AllocationFailed",
        "Allocation failed. We do not have sufficient capacity for the requested VM size in this region.",
    )
    assert world.run("resume", "llm-h100-i0-[000000-000001]").returncode == 0
    [down] = world.scontrol_calls()
    assert down.startswith(
        "update NodeName=llm-h100-i0-000000,llm-h100-i0-000001 State=DOWN Reason=azure AllocationFailed"
    )
    island = world.state()["islands"]["h100-i0"]
    assert island["failures"] == 1 and island["last_error"]["code"] == "AllocationFailed"
    assert island["state"] == "deallocated"
    # Slurm tries again (or another job wants the island): no call to Azure while it backs off
    world.run("resume", "llm-h100-i0-000000")
    assert len(world.posts("start")) == 1
    assert "backs off until" in world.scontrol_calls()[-1]
    # other islands are still started
    assert world.run("resume", "llm-h100-i1-000000").returncode == 0
    assert world.posts("start")[-1] == ("llm-h100-ib1", ["0"])


def test_a_refused_start_quota_marks_the_nodes_down_with_azures_code(world: World) -> None:
    _deallocate_all(world)
    world.arm.scale_sets[(RG, "llm-h100-ib1")].accept_error = (
        409,
        "OperationNotAllowed",
        "Operation could not be completed as it results in exceeding approved standardNDSH100v5Family "
        "Cores quota.",
    )
    assert world.run("resume", "llm-h100-i1-000002").returncode == 1
    [down] = world.scontrol_calls()
    assert "NodeName=llm-h100-i1-000002 State=DOWN Reason=azure OperationNotAllowed" in down
    assert world.state()["islands"]["h100-i1"]["backoff_until"] > time.time()


def test_a_token_failure_asks_arm_nothing_and_marks_the_nodes_down(world: World) -> None:
    _deallocate_all(world)
    world.configure(cluster_spec(), scheduler="slurm")
    config = json.loads(world.config_path.read_text())
    config["client_id"] = "not-this-vms-identity"
    world.config_path.write_text(json.dumps(config))
    assert world.run("resume", "llm-h100-i0-000000").returncode == 1
    assert world.arm.requests == []
    assert "TokenUnavailable" in world.scontrol_calls()[0]
    assert "Identity not found" in world.log.read_text()


def test_back_off_ends_and_nodes_return_but_not_forever(world: World) -> None:
    _deallocate_all(world)
    world.arm.scale_sets[(RG, "llm-h100-ib0")].start_error = ("ZonalAllocationFailed", "no capacity")
    world.run("resume", "llm-h100-i0-000000")
    later = str(time.time() + 6 * 60)  # the first back-off is 5 minutes
    assert world.run("watch", AZC_ELASTIC_NOW=later).returncode == 0
    assert world.scontrol_calls()[-1] == "update NodeName=llm-h100-i0-000000 State=RESUME"
    # after MAX_FAILURES failures in a row the nodes stay down for a person
    with (world.state_dir / "state.json").open() as handle:
        state = json.load(handle)
    state["islands"]["h100-i0"].update(
        failures=6, backoff_until=time.time() - 1, down_hosts=["llm-h100-i0-000000"]
    )
    (world.state_dir / "state.json").write_text(json.dumps(state))
    calls = len(world.scontrol_calls())
    world.run("watch")
    assert len(world.scontrol_calls()) == calls


# --- asynchronous operations: background poller and controller restarts ----------------------------------


def test_the_operation_is_followed_in_the_background(world: World) -> None:
    _deallocate_all(world)
    world.arm.lro_polls = 2
    done = world.run("resume", "llm-h100-i1-000001", AZC_ELASTIC_POLL="background")
    assert done.returncode == 0
    deadline = time.monotonic() + 60
    while world.state()["operations"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert world.state()["operations"] == {}
    assert world.state()["islands"]["h100-i1"]["state"] == "running"
    assert world.power("llm-h100-ib1")[1] == "running"


def test_an_operation_left_behind_by_a_restart_is_finished_by_watch(world: World) -> None:
    _deallocate_all(world)
    world.arm.scale_sets[(RG, "llm-h100-ib2")].start_error = ("AllocationFailed", "no capacity")
    assert world.run("resume", "llm-h100-i2-000000", AZC_ELASTIC_POLL="none").returncode == 0
    assert list(world.state()["operations"].values())[0]["url"].startswith(world.arm.base_url)
    assert world.scontrol_calls() == []  # nobody has looked at the outcome yet
    stale = str(time.time() + 10 * 60)
    assert world.run("watch", AZC_ELASTIC_NOW=stale).returncode == 0
    assert world.state()["operations"] == {}
    assert "Reason=azure AllocationFailed" in world.scontrol_calls()[0]


# --- the idle watcher without Slurm ----------------------------------------------------------------------


class Utilisation:
    """Each node's health endpoint answering /health/gpu with per-GPU utilisation."""

    def __init__(self) -> None:
        self.busy: dict[str, list[float]] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # noqa: N802
                host = self.path.strip("/").split("/")[0]
                values = outer.busy.get(host, [0.0] * 8)
                body = json.dumps({"gpus": [{"index": i, "utilization": v} for i, v in enumerate(values)]})
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{{host}}/health/gpu"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_idle_watcher_deallocates_only_islands_whose_gpus_all_stayed_idle(world: World) -> None:
    world.configure(cluster_spec(keep_warm_islands=0, idle_minutes=30), scheduler="none")
    util = Utilisation()
    try:
        util.busy["llm-h100-i1-000002"] = [0, 0, 0, 0, 0, 0, 97.0, 0]  # one GPU of island 1 is busy
        start = time.time()
        env = {"AZC_GPU_UTIL_URL": util.url}
        assert world.run("watch", AZC_ELASTIC_NOW=str(start), **env).returncode == 0
        assert world.posts("deallocate") == []  # idle, but not for 30 minutes yet
        world.run("watch", AZC_ELASTIC_NOW=str(start + 20 * 60), **env)
        assert world.posts("deallocate") == []
        world.run("watch", AZC_ELASTIC_NOW=str(start + 31 * 60), **env)
        assert sorted(world.posts("deallocate")) == [
            ("llm-h100-ib0", ["0", "1", "2", "3"]),
            ("llm-h100-ib2", ["0", "1", "2", "3"]),
        ]
        assert world.power("llm-h100-ib1") == ["running"] * 4
        state = world.state()["islands"]
        assert state["h100-i0"]["state"] == "deallocated" and "idle" in state["h100-i0"]["reason"]
        assert state["h100-i1"]["state"] == "running"
        # `azcluster start` brings an island back; the watcher sees it running and starts counting again
        for inst in world.arm.scale_sets[(RG, "llm-h100-ib0")].instances:
            inst.power = "running"
        world.run("watch", AZC_ELASTIC_NOW=str(start + 32 * 60), **env)
        assert world.state()["islands"]["h100-i0"]["state"] == "running"
        assert len(world.posts("deallocate")) == 2
    finally:
        util.httpd.shutdown()


def test_idle_watcher_keeps_warm_islands_and_unreadable_nodes_on(world: World) -> None:
    world.configure(cluster_spec(keep_warm_islands=1), scheduler="none")
    env = {"AZC_GPU_UTIL_URL": "http://127.0.0.1:9/{host}"}  # nothing listens: utilisation unknown
    start = time.time()
    world.run("watch", AZC_ELASTIC_NOW=str(start), **env)
    world.run("watch", AZC_ELASTIC_NOW=str(start + 3600), **env)
    assert world.posts("deallocate") == []
    assert "counted as busy" in world.log.read_text()


def test_state_prints_what_status_reads(world: World) -> None:
    world.run("suspend", "llm-h100-i1-000000")
    printed = json.loads(world.run("state").stdout)
    assert printed["islands"]["h100-i1"]["state"] == "deallocated"
    assert printed["islands"]["h100-i1"]["since"].endswith("Z")
    assert printed["operations"] == 0
    assert "operations" in json.loads(world.run("state", "--full").stdout)


# --- Slurm's node names are slots that VMs claim ---------------------------------------------------------


def test_suspend_of_slots_deallocates_the_vms_that_registered_them(world: World) -> None:
    world.slots_path.write_text(
        json.dumps({"h100-i1-000": "llm-h100-i1-000003", "h100-i1-001": "llm-h100-i1-000000"})
    )
    assert world.run("suspend", "h100-i1-[000-002]").returncode == 0
    assert world.posts("deallocate") == [("llm-h100-ib1", ["0", "3"])]
    assert "no VM behind h100-i1-002" in world.log.read_text()
    assert world.state()["slots"]["h100-i1-000"] == "llm-h100-i1-000003"


def test_resume_of_slots_starts_their_own_vms_first_then_spare_ones(world: World) -> None:
    world.slots_path.write_text(json.dumps({"h100-i1-000": "llm-h100-i1-000003"}))
    world.run("suspend", "h100-i1-000")  # remembered: slot 000 is VM 3
    for inst in world.arm.scale_sets[(RG, "llm-h100-ib1")].instances:
        inst.power = "deallocated"
    world.slots_path.write_text("{}")  # powered down: Slurm forgot the host name
    assert world.run("resume", "h100-i1-[000-001]").returncode == 0
    [(scale_set, ids)] = world.posts("start")
    assert scale_set == "llm-h100-ib1" and "3" in ids and len(ids) == 2


def test_resume_of_more_slots_than_vms_left_marks_the_rest_down(world: World) -> None:
    for inst in world.arm.scale_sets[(RG, "llm-h100-ib2")].instances[:2]:
        inst.power = "deallocated"  # 2 of 4 VMs are off
    assert world.run("resume", "h100-i2-[000-002]").returncode == 1
    assert sorted(world.posts("start")[0][1]) == ["0", "1"]
    down = [call for call in world.scontrol_calls() if "State=DOWN" in call]
    assert len(down) == 1 and "NodeName=h100-i2-002 " in down[0] and "no powered-off VM left" in down[0]


def test_a_refused_start_marks_the_slurm_slots_down_not_the_vm_names(world: World) -> None:
    _deallocate_all(world)
    world.arm.scale_sets[(RG, "llm-h100-ib0")].start_error = ("AllocationFailed", "no capacity")
    world.run("resume", "h100-i0-[000-001]")
    [down] = world.scontrol_calls()
    assert down.startswith("update NodeName=h100-i0-000,h100-i0-001 State=DOWN Reason=azure AllocationFailed")
    later = str(time.time() + 6 * 60)
    world.run("watch", AZC_ELASTIC_NOW=later)
    assert world.scontrol_calls()[-1] == "update NodeName=h100-i0-000,h100-i0-001 State=RESUME"


def test_resume_fail_backs_the_island_off_and_watch_returns_the_nodes_later(world: World) -> None:
    assert world.run("resume-fail", "h100-i1-[000-001]").returncode == 0
    island = world.state()["islands"]["h100-i1"]
    assert island["last_error"]["code"] == "ResumeTimeout" and island["failures"] == 1
    assert island["down_hosts"] == ["h100-i1-000", "h100-i1-001"]
    assert world.arm.requests == []  # nothing asked of Azure
    world.run("watch", AZC_ELASTIC_NOW=str(time.time() + 6 * 60))
    assert world.scontrol_calls()[-1] == "update NodeName=h100-i1-000,h100-i1-001 State=RESUME"

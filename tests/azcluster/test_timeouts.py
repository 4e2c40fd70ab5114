"""Never hang on Azure: a hung endpoint, an operation that stays InProgress, a malformed poll answer.

The hung endpoint is a loopback server that accepts and never answers (tests/fakes/hung.py); the test sets
a short deadline with AZCLUSTER_AZURE_DEADLINE, the way a user would. Before these, azure-core's defaults
(300 s connect, 300 s read, each retried) kept the commands silent for about 20 minutes: these tests then
ran into pytest's own timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from azcluster import timeouts
from azcluster.errors import EXIT_USAGE, AzclusterError
from azcluster.ops.power import start_cluster, stop_cluster
from tests.azcluster import demo
from tests.azcluster.demo import spec
from tests.clirunner import run_cli
from tests.fakes.hung import HungServer

STACK = """\
config:
  azure-native:location: eastus
  azcluster:cluster:
    name: demo
    pools:
      - name: gpu
        size: Standard_ND96isr_H100_v5
        nodes: 2
"""


@pytest.fixture
def logged_in(az_cli) -> Path:
    """A logged-in fake `az` on PATH and a stack file; the ARM endpoint is the fake unless a test moves it."""
    arm = az_cli
    path = arm.tmp / "Pulumi.demo.yaml"
    path.write_text(STACK, encoding="utf-8")
    return path


@pytest.mark.parametrize("mode", ["tls", "tcp"])
@pytest.mark.parametrize("command", ["preflight", "status"])
def test_a_hung_endpoint_ends_the_command_at_its_deadline_naming_the_request(
    logged_in, arm, monkeypatch, mode, command
) -> None:
    with HungServer(arm.tmp, mode) as hung:
        monkeypatch.setenv("AZCLUSTER_ARM_ENDPOINT", hung.url)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(hung.ca_path))
        monkeypatch.setenv(timeouts.ENV_DEADLINE, "1.5")
        result = run_cli(command, str(logged_in), "--auth", "cli")
        assert hung.accepted >= 1  # it did reach the server: this is the hang, not a refused connection
    assert result.exit_code == 1, result.stderr
    said = " ".join(result.stderr.split())
    assert f"GET {hung.url}/subscriptions/" in said  # which endpoint, and which request, did not answer
    assert "did not answer within the command's 1.5s deadline" in said
    assert timeouts.ENV_DEADLINE in said  # the hint says how to wait longer
    assert "Traceback" not in result.stderr


def test_an_operation_that_stays_in_progress_is_polled_to_the_deadline(arm, monkeypatch) -> None:
    demo.add_to(arm.fake)
    arm.fake.lro_polls = 10**9  # Azure answers InProgress for ever
    # Long enough that listing the scale sets finishes on a loaded 2-core machine; the polls use the rest.
    monkeypatch.setenv(timeouts.ENV_DEADLINE, "5")
    report = start_cluster(spec(), arm.context(), "demo", progress=False)
    assert not report.ok
    assert {o.code for o in report.islands} == {"DeadlineExceeded"}
    assert all(
        "still in progress when the command's 5s deadline passed" in (o.message or "") for o in report.islands
    )
    assert all("azcluster status demo" in (o.hint or "") for o in report.islands)


def test_one_malformed_poll_answer_is_retried_not_the_islands_failure(arm) -> None:
    demo.add_to(arm.fake)
    arm.fake.lro_polls = 1
    # A proxy's error page where the operation status JSON was expected, once.
    arm.fake.inject(
        "GET",
        "/operations/",
        200,
        headers={"Content-Type": "text/html"},
        body=b"<html><body>502 Bad Gateway</body></html>",
    )
    report = stop_cluster(spec(), arm.context(), "demo", progress=False)
    assert report.ok, [o.to_json() for o in report.islands]
    assert arm.fake.faults[0].times == 0  # the malformed answer was served


def test_a_poll_answer_without_status_is_retried(arm) -> None:
    demo.add_to(arm.fake)
    arm.fake.lro_polls = 1
    arm.fake.inject("GET", "/operations/", 200, body={"name": "op"})  # JSON, but no `status`
    report = start_cluster(spec(), arm.context(), "demo", progress=False)
    assert report.ok, [o.to_json() for o in report.islands]


def test_malformed_poll_answers_that_never_stop_still_fail_the_island(arm) -> None:
    demo.add_to(arm.fake)
    arm.fake.lro_polls = 1
    arm.fake.inject("GET", "/operations/", 200, body={"name": "op"}, times=1000)
    report = start_cluster(spec(), arm.context(), "demo", progress=False)
    assert not report.ok


def test_a_deadline_that_is_not_a_number_is_exit_2() -> None:
    with pytest.raises(AzclusterError) as caught:
        timeouts.deadline_seconds(None, {timeouts.ENV_DEADLINE: "soon"})
    assert caught.value.exit_code == EXIT_USAGE and timeouts.ENV_DEADLINE in caught.value.message
    assert timeouts.deadline_seconds(300, {}) == 300
    assert timeouts.deadline_seconds(300, {timeouts.ENV_DEADLINE: "20"}) == 20


def test_every_request_gets_connect_and_read_timeouts_shorter_than_azure_cores(arm) -> None:
    from azcluster.azure import compute_client

    transport = compute_client(arm.context())._client._pipeline._transport
    assert transport.connection_config.timeout == timeouts.CONNECT_TIMEOUT_S < 300
    assert transport.connection_config.read_timeout == timeouts.READ_TIMEOUT_S < 300


def test_a_read_that_is_accepted_and_never_answered_is_named_and_exit_1(logged_in, arm, monkeypatch) -> None:
    """`status` whose one island's VM list is accepted and never answered: before, 75 s per try and three
    retries. Each read now gets AZCLUSTER_AZURE_READ_TIMEOUT (short here, 20 s by default) and one more
    try; the command's own deadline (900 s for status) is not what ends it."""
    (hung_set, *_others) = demo.add_to(arm.fake)
    silent = arm.fake.stall("GET", f"/virtualMachineScaleSets/{hung_set.name}/virtualMachines", times=100)
    monkeypatch.setenv(timeouts.ENV_READ_TIMEOUT, "0.5")
    monkeypatch.delenv(timeouts.ENV_DEADLINE, raising=False)
    result = run_cli("status", str(logged_in), "--auth", "cli")
    assert result.exit_code == 1, result.stderr
    said = " ".join(result.stderr.split())
    request = f"GET {arm.url}/subscriptions/{arm.fake.subscription_id}/resourceGroups/"
    assert request in said and f"/virtualMachineScaleSets/{hung_set.name}/virtualMachines did not" in said
    assert f"did not answer within 0.5s ({1 + timeouts.GET_READ_RETRIES} tries)" in said
    assert timeouts.ENV_READ_TIMEOUT in said  # the hint says how to give a read longer
    assert "deadline" not in said
    assert len(silent.held) == 1 + timeouts.GET_READ_RETRIES  # the first try and its retries, no more
    assert "Traceback" not in result.stderr


def test_one_silent_try_of_a_read_is_retried(arm, monkeypatch) -> None:
    from azcluster.ops.status import cluster_status

    (first, *_others) = demo.add_to(arm.fake)
    silent = arm.fake.stall("GET", f"/virtualMachineScaleSets/{first.name}/virtualMachines", times=1)
    monkeypatch.setenv(timeouts.ENV_READ_TIMEOUT, "0.5")
    status = cluster_status(spec(), arm.context(), "demo", diagnose=False, slurm=False)
    assert len(silent.held) == 1
    assert [len(island.nodes) for island in status.islands] == [3, 2, 1]


def test_a_slow_poll_of_a_long_operation_keeps_the_long_read_timeout(arm, monkeypatch) -> None:
    """A poll answered after 1 s, with reads given 0.3 s: the operation is followed to its end, where
    the same wait on a plain read gives it up."""
    demo.add_to(arm.fake)
    monkeypatch.setenv(timeouts.ENV_READ_TIMEOUT, "0.3")
    slow_polls = arm.fake.stall("GET", "/operations/", seconds=1.0, times=1000)
    report = stop_cluster(spec(), arm.context(), "demo", progress=False)
    assert report.ok, [o.to_json() for o in report.islands]
    assert slow_polls.held  # the polls were slow, and waited on

    slow_list = arm.fake.stall("GET", "/virtualMachineScaleSets", seconds=1.0, times=1000)
    with pytest.raises(AzclusterError) as caught:
        stop_cluster(spec(), arm.context(), "demo", progress=False)
    assert "did not answer within 0.3s" in caught.value.message
    assert len(slow_list.held) == 1 + timeouts.GET_READ_RETRIES


def test_by_default_a_silent_read_ends_well_within_two_minutes_and_long_operations_keep_theirs() -> None:
    """The bounds the tests above shorten, as shipped: a silent read costs (1 + retries) x its timeout
    (azure-core waits no backoff before a first retry: RetryPolicy.get_backoff_time is 0 for one error),
    far inside two minutes and the status deadline; a write or a poll keeps the long read timeout."""
    assert timeouts.read_timeout_seconds({}) == timeouts.GET_READ_TIMEOUT_S
    assert timeouts.GET_READ_RETRIES <= 1
    worst_read = (1 + timeouts.GET_READ_RETRIES) * timeouts.GET_READ_TIMEOUT_S
    assert worst_read <= 60 < 120 < timeouts.COMMAND_DEADLINES_S["status"]
    assert timeouts.READ_TIMEOUT_S >= 60  # Azure may answer a write only near its own one-minute limit
    assert timeouts.is_short_read("GET", {})
    assert not timeouts.is_short_read("POST", {}) and not timeouts.is_short_read("PUT", {})


def test_a_read_timeout_that_is_not_a_number_is_exit_2() -> None:
    for bad in ("soon", "0", "-1", "nan", "inf"):
        with pytest.raises(AzclusterError) as caught:
            timeouts.read_timeout_seconds({timeouts.ENV_READ_TIMEOUT: bad})
        assert caught.value.exit_code == EXIT_USAGE and timeouts.ENV_READ_TIMEOUT in caught.value.message
    assert timeouts.read_timeout_seconds({timeouts.ENV_READ_TIMEOUT: "45"}) == 45

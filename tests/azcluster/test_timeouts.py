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
from tests.fakes.arm import fake_az_script
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
def logged_in(arm, monkeypatch) -> Path:
    """A logged-in fake `az` on PATH and a stack file; the ARM endpoint is the fake unless a test moves it."""
    bin_dir = arm.tmp / "bin"
    fake_az_script(bin_dir, arm.fake.token)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
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

"""The node's health endpoint, as the Application Health extension (Rich Health States) sees it: started
for real on 127.0.0.1 with an ephemeral port, answering from the result file azc-health.sh writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from azcluster.components import bootstrap
from tests.components.bootstrap_fakeroot import SCRIPTS


@pytest.fixture
def server(tmp_path):
    result = tmp_path / "health.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPTS / "azc-health-server.py"),
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--result",
            str(result),
            "--max-age",
            "600",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("azc-health-server listening on http://127.0.0.1:"), line
        base = line.split(" on ", 1)[1].strip().rsplit("/", 1)[0]
        yield base, result
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _write(path, healthy: bool, failing: str = "") -> None:
    checks = [{"name": "gpu", "ok": True, "skipped": False, "detail": "8 GPUs of 8"}]
    if failing:
        checks.append({"name": "infiniband", "ok": False, "skipped": False, "detail": failing})
    path.write_text(json.dumps({"healthy": healthy, "time": "2026-01-01T00:00:00Z", "checks": checks}))


def test_probe_reports_healthy_and_unhealthy_in_the_rich_health_states_shape(server):
    base, result = server
    _write(result, True)
    assert _get(base + bootstrap.HEALTH_PATH) == (200, {"ApplicationHealthState": "Healthy"})
    _write(result, False, "no IB: no InfiniBand ports")
    assert _get(base + bootstrap.HEALTH_PATH) == (200, {"ApplicationHealthState": "Unhealthy"})
    status, detail = _get(base + bootstrap.HEALTH_PATH + "/detail")
    assert status == 200
    assert (
        bootstrap.parse_health_result(json.dumps(detail)).summary()
        == "infiniband: no IB: no InfiniBand ports"
    )


def test_probe_answers_the_double_slash_path_older_extensions_send(server):
    base, result = server
    _write(result, True)
    assert _get(base + "/" + bootstrap.HEALTH_PATH) == (200, {"ApplicationHealthState": "Healthy"})


def test_no_stale_or_broken_result_is_never_reported_healthy(server):
    base, result = server
    status, body = _get(base + bootstrap.HEALTH_PATH)
    assert status == 503 and body["error"] == "no health result yet"  # Unknown: stays Initializing
    _write(result, True)
    old = time.time() - 3600
    os.utime(result, (old, old))
    status, body = _get(base + bootstrap.HEALTH_PATH)
    assert status == 503 and "old" in body["error"]
    result.write_text("{not json")
    assert _get(base + bootstrap.HEALTH_PATH)[0] == 503
    result.write_text('{"healthy": "yes"}')
    assert _get(base + bootstrap.HEALTH_PATH)[0] == 503


def test_other_paths_are_not_found(server):
    base, _ = server
    status, body = _get(base + "/metrics")
    assert status == 404 and bootstrap.HEALTH_PATH in body["error"]


def test_server_defaults_match_the_contract():
    text = (SCRIPTS / "azc-health-server.py").read_text()
    assert f"DEFAULT_PORT = {bootstrap.HEALTH_PORT}\n" in text
    assert f'DEFAULT_PATH = "{bootstrap.HEALTH_PATH}"\n' in text
    assert f'DEFAULT_RESULT = "{bootstrap.HEALTH_RESULT_PATH}"\n' in text

"""The example GitHub Actions workflow: pull requests plan offline, deployments sign in with OIDC."""

from __future__ import annotations

import http.server
import json
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "github-actions" / "azcluster.yml"


def test_ci_example_plans_pull_requests_offline_and_deploys_with_oidc():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) == {"pull_request", "workflow_dispatch"}
    plan, deploy = workflow["jobs"]["plan"], workflow["jobs"]["deploy"]
    plan_script = "\n".join(step.get("run", "") for step in plan["steps"])
    assert "make plan" in plan_script and 'plan "$STACK" --json > plan.json' in plan_script
    assert not any("azure/login" in step.get("uses", "") for step in plan["steps"])
    assert deploy["permissions"]["id-token"] == "write" and deploy["environment"]
    login = next(step for step in deploy["steps"] if step.get("uses", "").startswith("azure/login"))
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert deploy["env"]["ARM_USE_OIDC"] == "true"
    assert {"ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID", "PULUMI_BACKEND_URL"} <= set(
        deploy["env"]
    )
    deploy_script = "\n".join(step.get("run", "") for step in deploy["steps"])
    assert 'azcluster up "$STACK" --yes --json' in deploy_script
    assert "get.pulumi.com" in deploy_script
    assert "secret" not in str(login["with"]).lower()  # OIDC: no client secret anywhere


def _deploy():
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]


def test_deploy_keeps_working_past_the_first_tokens_life():
    """A 90-minute deployment: state, Key Vault and azcluster's own calls read a token file that a
    background refresher keeps fresh, not an `az login` that cannot renew (Azure/azure-cli#28708)."""
    deploy = _deploy()
    assert deploy["timeout-minutes"] >= 90
    env = deploy["env"]
    assert env["AZURE_CLIENT_ID"] == "${{ vars.AZURE_CLIENT_ID }}"
    assert env["AZURE_TENANT_ID"] == "${{ vars.AZURE_TENANT_ID }}"
    runs = [step.get("run", "") for step in deploy["steps"]]
    refresher = next(i for i, run in enumerate(runs) if "refresh-oidc-token.sh" in run)
    first_azcluster = next(i for i, run in enumerate(runs) if "make setup" in run or "azcluster" in run)
    assert refresher < first_azcluster
    assert (
        'AZURE_FEDERATED_TOKEN_FILE=$RUNNER_TEMP/azure-federated-token" >> "$GITHUB_ENV"' in runs[refresher]
    )
    assert (WORKFLOW.parent / "refresh-oidc-token.sh").is_file()
    up = next(run for run in runs if "azcluster up" in run)
    assert "--auth oidc" in up


def test_a_key_vault_stack_deploys_on_the_second_run_and_ci_state_is_remote():
    env = _deploy()["env"]
    assert env["PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"] == "true"
    assert env["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"
    up = next(step["run"] for step in _deploy()["steps"] if "azcluster up" in step.get("run", ""))
    assert '--secrets-provider "${{ vars.PULUMI_SECRETS_PROVIDER }}"' in up


class _TokenServer(http.server.BaseHTTPRequestHandler):
    token = "eyJ.first.sig"
    requests: list[tuple[str, str]] = []

    def do_GET(self):  # noqa: N802 - the http.server hook
        type(self).requests.append((self.path, self.headers.get("Authorization", "")))
        body = json.dumps({"count": 1, "value": type(self).token}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_refresher_keeps_the_token_file_fresh(tmp_path):
    script = WORKFLOW.parent / "refresh-oidc-token.sh"
    subprocess.run(["shellcheck", str(script)], check=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token_file = tmp_path / "oidc" / "azure-federated-token"
    env = {
        "PATH": os.environ["PATH"],
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "OIDC_REFRESH_SECONDS": "0.1",
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"http://127.0.0.1:{server.server_port}/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
        "NO_PROXY": "127.0.0.1",
    }
    try:
        run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        assert token_file.read_text() == "eyJ.first.sig"  # there before the step ends
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        path, auth = _TokenServer.requests[0]
        assert auth == "bearer request-token"
        assert path == "/token?api-version=2.0&audience=api://AzureADTokenExchange"
        _TokenServer.token = "eyJ.second.sig"
        deadline = time.monotonic() + 20
        while token_file.read_text() != "eyJ.second.sig":
            assert time.monotonic() < deadline, "the token file was never refreshed"
            time.sleep(0.05)
    finally:
        pid_file = token_file.parent / "azure-federated-token.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        server.shutdown()


def test_the_refresher_fails_the_step_without_id_token_permission(tmp_path):
    script = WORKFLOW.parent / "refresh-oidc-token.sh"
    env = {"PATH": os.environ["PATH"], "AZURE_FEDERATED_TOKEN_FILE": str(tmp_path / "token")}
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert run.returncode != 0 and "id-token: write" in run.stderr

"""The example GitHub Actions workflow: pull requests plan offline, deployments sign in with OIDC."""

from __future__ import annotations

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

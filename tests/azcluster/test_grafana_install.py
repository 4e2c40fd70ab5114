"""The dashboards installer (azcluster/grafana.py) through azure-core's real pipeline against a loopback
Grafana that answers as Grafana's documented HTTP API does (tests/fakes/dataplane.py): folder, every
dashboard, idempotent reruns, and the failure paths: a refused token (401), 5xx retried, a Grafana that
never answers named within seconds, missing rights (403)."""

from __future__ import annotations

import time

import pytest

from azcluster import dataplane, grafana
from azcluster.components import catalog
from azcluster.errors import AzclusterError
from azcluster.timeouts import Deadline
from tests.fakes.arm import StaticTokenCredential
from tests.fakes.dataplane import GRAFANA_TOKEN, DataPlaneServer, FakeGrafana

FAST = {"retry_backoff_factor": 0.01, "retry_backoff_max": 0.05}


@pytest.fixture
def fake(tmp_path):
    service = FakeGrafana()
    with DataPlaneServer(service, tmp_path) as server:
        service.server = server
        yield service


def _client(fake, token=GRAFANA_TOKEN, deadline=60.0, read_timeout=20.0, **options):
    credential = StaticTokenCredential(token)
    client = dataplane.connect(
        fake.server.url,
        "Grafana",
        credential,
        dataplane.scope_for(dataplane.GRAFANA_SCOPES, "AzureCloud"),
        Deadline(deadline),
        read_timeout,
        connection_verify=str(fake.server.ca_path),
        **{**FAST, **options},
    )
    return client, credential


def test_installs_every_dashboard_in_the_clusters_folder_with_an_entra_token(fake):
    client, credential = _client(fake)
    result = grafana.install(client, "research")
    assert credential.scopes and all(
        scope == ("https://dashboard.azure.com/.default",) for scope in credential.scopes
    )
    assert set(fake.folders) == {"azc-research-folder"}
    assert fake.folders["azc-research-folder"]["title"] == "azcluster research"
    assert sorted(fake.dashboards) == sorted(f"azc-research-{name}" for name in catalog.DASHBOARDS)
    saved = fake.dashboards["azc-research-gpus"]
    assert saved["folderUid"] == "azc-research-folder"
    assert saved["dashboard"]["title"] == "research: GPUs"
    cluster_var = next(v for v in saved["dashboard"]["templating"]["list"] if v["name"] == "cluster")
    assert cluster_var["current"]["value"] == "research"
    assert [item["url"] for item in result.installed][0].startswith(
        fake.server.url + "/d/azc-research-overview/"
    )
    assert all(call.body["overwrite"] is True for call in fake.calls("POST", "/api/dashboards/db"))


def test_a_second_up_overwrites_in_place_and_a_second_cluster_sits_beside(fake):
    client, _ = _client(fake)
    grafana.install(client, "research")
    grafana.install(client, "research")
    assert {entry["version"] for entry in fake.dashboards.values()} == {2}
    assert len(fake.calls("POST", "/api/folders")) == 1  # found the second time
    grafana.install(client, "prod")
    assert len(fake.dashboards) == 2 * len(catalog.DASHBOARDS)


def test_a_long_cluster_name_keeps_uids_within_grafanas_40_characters(fake):
    client, _ = _client(fake)
    name = "a-very-long-cluster-name-for-the-research-team"
    grafana.install(client, name)
    assert len(fake.dashboards) == len(catalog.DASHBOARDS)
    assert all(len(uid) <= grafana.UID_MAX for uid in [*fake.dashboards, *fake.folders])
    assert grafana.dashboard_uid(name, "gpus") != grafana.dashboard_uid(name + "x", "gpus")


def test_a_refused_token_is_a_401_message_naming_grafana_and_the_audience(fake):
    client, _ = _client(fake, token="not-the-token")
    with pytest.raises(AzclusterError) as caught:
        grafana.install(client, "research")
    err = caught.value
    assert "answered 401" in err.message and fake.server.url in err.message
    assert "https://dashboard.azure.com" in err.hint and err.exit_code == 1
    assert not fake.dashboards


def test_missing_rights_say_which_grafana_role(fake):
    client, _ = _client(fake)
    fake.inject("POST", "/api/dashboards/db", 403, body={"message": "Access denied"})
    with pytest.raises(AzclusterError) as caught:
        grafana.install(client, "research")
    assert "403" in caught.value.message and "Access denied" in caught.value.message
    assert "Grafana Editor" in caught.value.hint


def test_5xx_is_retried_by_azure_core_and_then_succeeds(fake):
    client, _ = _client(fake)
    fake.inject("POST", "/api/dashboards/db", 503, times=2, headers={"Retry-After": "0"})
    result = grafana.install(client, "research")
    assert len(result.installed) == len(catalog.DASHBOARDS)
    assert len(fake.calls("POST", "/api/dashboards/db")) == len(catalog.DASHBOARDS) + 2


def test_5xx_that_outlasts_the_retries_is_named(fake):
    client, _ = _client(fake, retry_total=2)
    fake.inject("POST", "/api/dashboards/db", 500, times=10, body={"message": "database is locked"})
    with pytest.raises(AzclusterError) as caught:
        grafana.install(client, "research")
    assert "answered 500" in caught.value.message and "database is locked" in caught.value.message
    assert len(fake.calls("POST", "/api/dashboards/db")) == 3  # the first try and two retries


def test_a_grafana_that_never_answers_is_named_within_seconds(fake):
    client, _ = _client(fake, read_timeout=0.5)
    fake.stall("/api/folders/")
    started = time.monotonic()
    with pytest.raises(AzclusterError) as caught:
        grafana.install(client, "research")
    assert time.monotonic() - started < 10
    assert "did not answer within 0.5s" in caught.value.message
    assert "GET " + fake.server.url + "/api/folders/azc-research-folder" in caught.value.message


def test_plain_http_is_refused_before_any_token_is_asked(fake):
    credential = StaticTokenCredential(GRAFANA_TOKEN)
    with pytest.raises(AzclusterError) as caught:
        dataplane.connect("http://grafana.example", "Grafana", credential, "s", Deadline(5), 5)
    assert "not an https:// URL" in caught.value.message and credential.scopes == []


def test_a_folder_another_run_made_meanwhile_is_used(fake):
    # The folder appears between our look (404) and our create (409 for its uid): the dashboards go in it.
    fake.folders["azc-research-folder"] = {
        "id": 1,
        "uid": "azc-research-folder",
        "title": "azcluster research",
    }
    fake.inject("GET", "/api/folders/azc-research-folder", 404, body={"message": "folder not found"})
    client, _ = _client(fake)
    result = grafana.install(client, "research")
    assert len(result.installed) == len(catalog.DASHBOARDS)
    assert {board["folderUid"] for board in fake.dashboards.values()} == {"azc-research-folder"}


def test_someone_elses_folder_of_the_same_title_is_named_not_mistaken_for_ours(fake):
    # Grafana answers 409 for a title taken by another folder too: that folder is not azcluster's, and
    # saving into our uid would fail with a 400 that says nothing of why.
    fake.folders["hand-made"] = {"id": 1, "uid": "hand-made", "title": "azcluster research"}
    client, _ = _client(fake)
    with pytest.raises(AzclusterError) as caught:
        grafana.install(client, "research")
    err = caught.value
    assert (
        "already has a folder titled 'azcluster research'" in err.message
        and "azc-research-folder" in err.message
    )
    assert "rename or delete that folder" in err.hint and err.exit_code == 1
    assert not fake.dashboards and fake.calls("POST", "/api/dashboards/db") == []

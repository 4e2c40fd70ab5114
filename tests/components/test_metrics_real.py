"""A GPU node's metrics through the real Prometheus agent and node exporter, on Debian trixie (Prometheus
2.53.3, node_exporter 1.9.0) and sid (Prometheus 3.5.3, node_exporter 1.11.1), in a root file system
(tests/realroots.py) and a network namespace of the test's own: nothing leaves loopback.

The node: the fake node the bootstrap script tests use (tests/components/bootstrap_fakeroot.py) with its
/sys/class/infiniband tree (8 InfiniBand ports and the accelerated-networking Ethernet port mlx5_an0) given
port counters, read by the real node exporter (`--path.sysfs`) started with the flags of azcluster's unit;
the real azc-health.sh writes the health series into the textfile directory; a loopback stand-in serves
dcgm-exporter's default counters for 8 GPUs (tests/fakes/remote_write.py). Prometheus runs in agent mode
with the configuration azcluster renders, only addresses changed, and remote-writes to a loopback receiver
that checks the data collection rule's path, stream and api-version and the bearer token, decodes the
snappy + protobuf body and stores the samples.

The token: on Azure, the agent gets it from IMDS (169.254.169.254) through its `azuread` managed-identity
option, which uses the Azure SDK for Go (prometheus storage/remote/azuread: scope
https://monitor.azure.com//.default). Debian builds Prometheus without that option (its
Disable-Azure-AD-authentication-support.patch, in every release since 2.45: `promtool check config`
answers "field azuread not found"), and this machine cannot fetch upstream binaries. So the one other
change to the rendered configuration is that block: the token comes from the IMDS stand-in, listening on
169.254.169.254:80 inside the namespace (a loopback alias), fetched by the Azure SDK for Python's
ManagedIdentityCredential with the node's client id and that scope (the IMDS request of
learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token), and Prometheus
sends it as `authorization: credentials_file`. The receiver accepts only that token.
"""

from __future__ import annotations

import json
import os
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest

from azcluster.components import catalog
from azcluster.components.bootstrap import metrics
from tests import realroots
from tests.components.metricslab import CLIENT_ID, GPU_JOB, HOSTNAME, RULE, SIZES, running_node

pytestmark = [pytest.mark.xdist_group("metrics-real"), pytest.mark.timeout(300)]


RUNS = [("trixie", "nvidia"), ("sid", "nvidia"), ("sid", "amd")]
"""Both Prometheus releases with an NVIDIA node; the AMD node's renaming once, on the newer."""


@pytest.fixture(scope="module", params=RUNS, ids=[f"{suite}-{vendor}" for suite, vendor in RUNS])
def sent(request, tmp_path_factory):
    """The node run for a while in one Debian release (see metricslab.running_node)."""
    suite, vendor = request.param
    if shutil.which("nsenter") is None or os.geteuid() != 0:
        pytest.skip("needs root and nsenter (network namespaces)")
    realroots.root_or_skip(suite, realroots.MONITORING_PACKAGES)
    with running_node(suite, tmp_path_factory.mktemp(f"metrics-{suite}-{vendor}"), vendor) as run:
        assert run.records, f"nothing reached the receiver\n{run.logs}"
        yield run


def test_the_agent_writes_to_the_rule_with_the_identitys_token(sent):
    records, state = sent.records, sent.state
    assert {r["status"] for r in records} == {204}, sent.logs
    assert {r["path"] for r in records} == {
        f"/dataCollectionRules/{RULE}/streams/{metrics.PROMETHEUS_STREAM}/api/v1/write"
    }
    assert {r["query"]["api-version"] for r in records} == {metrics.INGESTION_API_VERSION}
    # the token came from IMDS, asked the way the managed-identity SDKs ask it
    imds = [json.loads(line) for line in (state / "imds.jsonl").read_text().splitlines()]
    assert imds and all(r["status"] == 200 for r in imds)
    asked = urlsplit(imds[0]["path"])
    assert asked.path == "/metadata/identity/oauth2/token"
    # the audience Prometheus's azuread module asks for (https://monitor.azure.com//.default) as a resource
    assert parse_qs(asked.query) == {
        "api-version": ["2018-02-01"],
        "resource": ["https://monitor.azure.com/"],
        "client_id": [CLIENT_ID],
    }
    assert imds[0]["headers"]["metadata"] == "true"


def test_every_series_carries_the_cluster_labels_and_the_host_name(sent):
    series = sent.series
    assert series, sent.logs
    for key in series:
        labels = dict(key)
        assert labels["cluster"] == "llm" and labels["pool"] == "gpu" and labels["island"] == "1", labels
        assert labels["instance"] == HOSTNAME, labels
        assert labels["job"] in {"node", GPU_JOB[sent.vendor], "azcluster"}, labels


def test_only_the_kept_series_leave_the_node(sent):
    series = sent.series
    names = {dict(key)["__name__"] for key in series}
    assert names <= set(metrics.kept_metrics("compute")), names - set(metrics.kept_metrics("compute"))
    # dcgm-exporter's other default fields and Prometheus's own scrape_* series are dropped
    assert "DCGM_FI_DEV_SM_CLOCK" not in names and "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL" not in names
    assert not {name for name in names if name.startswith("scrape_")}
    # the accelerated-networking Ethernet port is not an InfiniBand port of the fabric
    assert not [key for key in series if dict(key).get("device", "").startswith("mlx5_an")]
    gpus = {dict(key)["gpu"] for key in series if dict(key)["__name__"] == "DCGM_FI_DEV_GPU_UTIL"}
    assert gpus == {str(i) for i in range(8)}
    ib = {dict(key)["device"] for key in series if dict(key)["__name__"] == "node_infiniband_state_id"}
    assert ib == {f"mlx5_ib{i}" for i in range(8)}


def test_the_series_per_node_are_what_the_rule_counts(sent):
    """AZC126 warns from metrics.series_per_node; this is what a node really sends."""
    series = sent.series
    want = metrics.series_per_node(8, 8, vendor=sent.vendor)
    assert len(series) == want, sorted(dict(k)["__name__"] for k in series)


def test_values_survive_the_trip(sent):
    series = sent.series
    by_name = {}
    for key, item in series.items():
        labels = dict(key)
        by_name.setdefault(labels["__name__"], []).append((labels, item["samples"][-1][0]))
    # the GPU stand-ins' values (tests/fakes/remote_write.py); AMD's under the DCGM names
    assert {v for _, v in by_name["DCGM_FI_DEV_GPU_UTIL"]} == ({88.0} if sent.vendor == "amd" else {97.0})
    if sent.vendor == "amd":
        assert {v for _, v in by_name["DCGM_FI_DEV_POWER_USAGE"]} == {650.0}
        assert not [name for name in by_name if name.startswith("gpu_")]
    # Mellanox counts data in 4-byte words: node_exporter multiplies by 4 (procfs class_infiniband.go)
    assert {v for _, v in by_name["node_infiniband_port_data_received_bytes_total"]} == {4 * 123456789.0}
    assert {v for _, v in by_name["node_infiniband_state_id"]} == {4.0}
    assert {v for _, v in by_name["node_infiniband_rate_bytes_per_second"]} == {400 * 125_000_000.0}
    assert [v for _, v in by_name["azcluster_node_healthy"]] in ([0.0], [1.0])
    checks = {labels["check"] for labels, _ in by_name["azcluster_health_check_ok"]}
    assert checks == set(metrics.HEALTH_CHECKS)
    price = catalog.find_size(SIZES[sent.vendor]).price.usd_per_hour
    assert [v for _, v in by_name["azcluster_node_price_usd_per_hour"]] == [price]

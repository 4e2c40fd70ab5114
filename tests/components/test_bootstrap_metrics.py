"""The nodes' metrics side (components/bootstrap/metrics.py): what monitoring adds to each role's
cloud-config, the install script against a fake node (downloads checked against the release's sums, units
started without blocking boot), Slurm's series from recorded sinfo/squeue/sdiag output, and the health
verdict as series. The real Prometheus and node_exporter run in test_metrics_real.py."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from azcluster.components import bootstrap
from azcluster.components.bootstrap import metrics
from azcluster.components.rules.boot import encoded_size
from azcluster.components.spec import ClusterSpec
from tests.components.bootstrap_fakeroot import SCRIPTS

CLIENT_ID = "0b9f6a1e-2f1c-4c63-9a3e-7a0c1d2e3f40"
VALUES = metrics.MetricsValues(
    metrics.write_url(
        "https://llm-metrics-dce-abcd.eastus-1.metrics.ingest.monitor.azure.com", "dcr-" + "a" * 32
    ),
    CLIENT_ID,
)
MONITORING_BUDGET = 8 * 1024
"""What monitoring may add to a GPU node's custom data (the shared budget: ~37 KB of Azure's 64 KB used)."""


def _spec(size: str = "Standard_ND96isr_H100_v5", enabled: bool = True) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "pools": [{"name": "gpu", "size": size, "nodes": 4, "island_max_nodes": 2}],
            "monitoring": {"enabled": enabled},
        }
    )


def _files(cloud_config: str) -> dict[str, str]:
    document = yaml.safe_load(cloud_config)
    return {entry["path"]: entry["content"] for entry in document["write_files"]}


def _runcmd(cloud_config: str) -> list[list[str]]:
    return yaml.safe_load(cloud_config)["runcmd"]


def test_write_url_is_the_rules_ingestion_path():
    assert metrics.write_url("https://e.eastus-1.metrics.ingest.monitor.azure.com/", "dcr-1") == (
        "https://e.eastus-1.metrics.ingest.monitor.azure.com/dataCollectionRules/dcr-1/streams/"
        "Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24"
    )


def test_no_metrics_without_monitoring_or_without_the_deployment_values():
    for spec, values in ((_spec(enabled=False), VALUES), (_spec(), None)):
        files = _files(bootstrap.render_cloud_config(spec, "gpu", 0, metrics=values))
        assert metrics.CONFIG_TEMPLATE not in files
        assert f"{bootstrap.INSTALL_DIR}/azc-metrics.sh" not in files


def test_a_gpu_node_gets_the_agent_configuration_and_starts_only_the_installer_without_blocking():
    text = bootstrap.render_cloud_config(_spec(), "gpu", 1, metrics=VALUES)
    files = _files(text)
    config = yaml.safe_load(files[metrics.CONFIG_TEMPLATE])
    labels = {"cluster": "llm", "pool": "gpu", "island": metrics.ISLAND_PLACEHOLDER}
    assert config["global"]["external_labels"] == labels
    assert config["global"]["scrape_interval"] == "30s"
    assert [job["job_name"] for job in config["scrape_configs"]] == ["node", "dcgm"]
    [remote] = config["remote_write"]
    assert remote["url"] == VALUES.write_url
    assert remote["azuread"] == {"cloud": "AzurePublic", "managed_identity": {"client_id": CLIENT_ID}}
    assert files[metrics.DCGM_COUNTERS].count("DCGM_FI_DEV_") == len(metrics.DCGM_FIELDS)
    for unit in (*metrics.METRICS_UNITS, metrics.GPU_EXPORTER_UNIT):
        assert f"{bootstrap.UNIT_DIR}/{unit}" in files
    start = _runcmd(text)[-1]
    assert start[:3] == ["systemctl", "start", "--no-block"]
    assert "azc-metrics-install.service" in start
    assert not {"azc-metrics-agent.service", "azc-node-exporter.service"} & set(start)
    installer = files[f"{bootstrap.UNIT_DIR}/azc-metrics-install.service"]
    # nothing the node's health or Slurm join starts after waits for the download
    assert "Before=" not in installer and "IOSchedulingClass=idle" in installer
    env = files[bootstrap.NODE_ENV_PATH]
    assert (
        "AZC_METRICS_PROMETHEUS_URL=https://github.com/prometheus/prometheus/releases/download/v3.5.0/" in env
    )
    assert "AZC_PRICE_USD_PER_HOUR=" in env


def test_monitoring_adds_less_than_8_kib_to_a_gpu_nodes_custom_data():
    spec = _spec()
    on = encoded_size(bootstrap.render_cloud_config(spec, "gpu", 0, metrics=VALUES))
    off = encoded_size(bootstrap.render_cloud_config(spec, "gpu", 0))
    assert 0 < on - off < MONITORING_BUDGET


def test_an_amd_node_renames_its_exporters_series_to_the_dcgm_names():
    text = bootstrap.render_cloud_config(_spec("Standard_ND96isr_MI300X_v5"), "gpu", 0, metrics=VALUES)
    files = _files(text)
    config = yaml.safe_load(files[metrics.CONFIG_TEMPLATE])
    amd = next(job for job in config["scrape_configs"] if job["job_name"] == "amd-gpu")
    renames = {
        r["regex"]: r["replacement"] for r in amd["metric_relabel_configs"] if r["target_label"] == "__name__"
    }
    assert renames["gpu_gfx_activity"] == "DCGM_FI_DEV_GPU_UTIL"
    assert set(renames.values()) <= set(metrics.kept_metrics("compute"))
    assert metrics.DCGM_COUNTERS not in files
    assert "AZC_METRICS_GPU_IMAGE=docker.io/rocm/device-metrics-exporter:" in files[bootstrap.NODE_ENV_PATH]


def test_the_login_node_sends_slurms_series_with_slurm_only():
    spec = _spec()
    with_slurm = bootstrap.LoginBoot.for_cluster(
        spec,
        bootstrap.StorageValues(),
        munge_key="bXVuZ2U=" * 128,
        dns_zone="llm.azcluster.internal",
        metrics=VALUES,
    ).cloud_config()
    files = _files(with_slurm)
    config = yaml.safe_load(files[metrics.CONFIG_TEMPLATE])
    assert config["global"]["external_labels"] == {"cluster": "llm"}
    keep = config["remote_write"][0]["write_relabel_configs"][0]["regex"].split("|")
    assert "slurm_nodes_drain" in keep and "slurm_partition_gpus_alloc" in keep
    assert "azc-slurm-metrics.timer" in _runcmd(with_slurm)[-1]
    plain = bootstrap.LoginBoot.for_cluster(spec, bootstrap.StorageValues(), metrics=VALUES).cloud_config()
    assert f"{bootstrap.INSTALL_DIR}/azc-slurm-metrics.sh" not in _files(plain)


def test_every_kept_name_is_one_a_dashboard_or_alert_can_read():
    """The keep-list is the contract with the dashboards and catalog/alerts.yaml: the alerts' are in it."""
    alerts = (Path(bootstrap.__file__).parents[1] / "catalog/alerts.yaml").read_text()
    used = {name for name in metrics.kept_metrics("login") if name in alerts}
    for name in ("DCGM_FI_DEV_XID_ERRORS", "node_infiniband_state_id", "azcluster_node_healthy", "up"):
        assert name in used
    assert "slurm_nodes_drain" in used


# --- azc-metrics.sh install ------------------------------------------------------------------------


def _tarball(folder: str, binary: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        data = b"#!/bin/sh\necho fake\n"
        info = tarfile.TarInfo(f"{folder}/{binary}")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def release(tmp_path):
    """A node root with node.env, a curl that serves two release tarballs and their sums from a folder,
    and a systemctl that logs."""
    root = tmp_path / "root"
    served = tmp_path / "served"
    served.mkdir()
    (root / "etc/azcluster").mkdir(parents=True)
    env = _files(bootstrap.render_cloud_config(_spec(), "gpu", 0, metrics=VALUES))[bootstrap.NODE_ENV_PATH]
    (root / "etc/azcluster/node.env").write_text(env)
    for key, binary in (("PROMETHEUS", "prometheus"), ("NODE_EXPORTER", "node_exporter")):
        url = next(
            line.split("=", 1)[1] for line in env.splitlines() if line.startswith(f"AZC_METRICS_{key}_URL=")
        )
        name = url.rsplit("/", 1)[1]
        data = _tarball(name.removesuffix(".tar.gz"), binary)
        (served / name).write_bytes(data)
        with (served / f"sums-{binary}").open("w") as sums:
            sums.write(f"{'0' * 64}  other-file.tar.gz\n{hashlib.sha256(data).hexdigest()}  {name}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(
        "#!/bin/sh\nwhile [ $# -gt 1 ]; do case $1 in -o) out=$2; shift;; esac; shift; done\n"
        "url=$1\ncase $url in */sha256sums.txt) case $url in *node_exporter*) f=sums-node_exporter;; "
        "*) f=sums-prometheus;; esac;; *) f=${url##*/};; esac\n"
        f'cp "{served}/$f" "$out"\n'
    )
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "systemctl $*" >> "{tmp_path}/calls"\n')
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return tmp_path, root, served


def _install(tmp_path: Path, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPTS / "azc-metrics.sh"), "install"],
        env={
            "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
            "AZC_ROOT": str(root),
            "CURL": str(tmp_path / "bin/curl"),
            "SYSTEMCTL": str(tmp_path / "bin/systemctl"),
            "DOCKER": str(tmp_path / "bin/docker"),
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_install_checks_the_download_and_starts_the_exporters_and_the_agent(release):
    tmp_path, root, _ = release
    done = _install(tmp_path, root)
    assert done.returncode == 0, done.stderr
    for binary in ("prometheus", "node_exporter"):
        assert os.access(root / f"opt/azcluster/metrics/{binary}", os.X_OK)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [
        "systemctl start --no-block azc-node-exporter.service azc-metrics-agent.service "
        "azc-gpu-exporter.service"
    ]
    assert (root / "var/lib/azcluster/metrics").is_dir()


def test_install_refuses_a_download_whose_digest_is_not_the_releases(release):
    tmp_path, root, served = release
    tarball = next(served.glob("prometheus-*.tar.gz"))
    tarball.write_bytes(tarball.read_bytes() + b"tampered")
    done = _install(tmp_path, root)
    assert done.returncode != 0
    assert "is not the release's" in done.stderr
    assert not (root / "opt/azcluster/metrics/prometheus").exists()
    assert not (tmp_path / "calls").exists()


# --- Slurm's series ---------------------------------------------------------------------------------

SINFO = """\
gpu-0 gpu* allocated gpu:h100:8(S:0-1) gpu:h100:8(IDX:0-7)
gpu-1 gpu* mixed gpu:h100:8(S:0-1) gpu:h100:3(IDX:0-2)
gpu-2 gpu* idle+drain gpu:h100:8(S:0-1) gpu:h100:0(IDX:N/A)
gpu-2 debug idle+drain gpu:h100:8(S:0-1) gpu:h100:0(IDX:N/A)
gpu-3 gpu* down* gpu:8 gpu:0
gpu-4 gpu* idle~ gpu:h100:8(S:0-1) gpu:h100:0(IDX:N/A)
"""
"""`sinfo -h -N -O 'NodeList: ,Partition: ,StateLong: ,Gres: ,GresUsed:'` as Slurm 24.11 prints it (a node
once per partition; GRES with type and socket or index suffixes, slurm.schedmd.com/sinfo.html)."""
SQUEUE = "RUNNING gpu\nPENDING gpu\nPENDING gpu,debug\nCOMPLETING gpu\n"
SDIAG = """\
*******************************************************
sdiag output at Mon Dec 07 10:00:00 2026 (1796637600)
*******************************************************
Server thread count:  3
Agent queue size:     0
Main schedule statistics (microseconds):
\tLast cycle:   120
\tMax cycle:    900
Backfilling stats
\tTotal backfilled jobs (since last slurm start): 0
\tLast cycle when: Mon Dec 07 09:59:40 2026 (1796637580)
\tLast cycle: 450
"""


def _slurm_metrics(tmp_path: Path, sdiag_exit: int = 0) -> dict[str, float]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text, code in (("sinfo", SINFO, 0), ("squeue", SQUEUE, 0), ("sdiag", SDIAG, sdiag_exit)):
        (bin_dir / name).write_text(f"#!/bin/sh\ncat <<'EOF'\n{text}EOF\nexit {code}\n")
        (bin_dir / name).chmod(0o755)
    done = subprocess.run(
        ["bash", str(SCRIPTS / "azc-slurm-metrics.sh")],
        env={
            "PATH": os.environ["PATH"],
            "AZC_ROOT": str(tmp_path),
            "AZC_NODE_ENV": "/dev/null",
            "SINFO": str(bin_dir / "sinfo"),
            "SQUEUE": str(bin_dir / "squeue"),
            "SDIAG": str(bin_dir / "sdiag"),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "var/lib/azcluster/metrics/slurm.prom").read_text()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()}


def test_slurm_series_count_each_node_once_and_gpus_per_partition(tmp_path):
    series = _slurm_metrics(tmp_path)
    nodes = {key: value for key, value in series.items() if key.startswith("slurm_nodes_")}
    assert nodes == {
        "slurm_nodes_alloc": 1,
        "slurm_nodes_mix": 1,
        "slurm_nodes_drain": 1,  # idle+drain is drained, listed twice (two partitions), counted once
        "slurm_nodes_down": 1,
        "slurm_nodes_idle": 1,  # idle~: powered down by the elastic power programs, still idle
        "slurm_nodes_other": 0,
    }
    assert (series["slurm_gpus_total"], series["slurm_gpus_alloc"]) == (40, 11)
    assert series['slurm_partition_gpus_total{partition="gpu"}'] == 40
    assert series['slurm_partition_gpus_alloc{partition="gpu"}'] == 11
    assert series['slurm_partition_gpus_total{partition="debug"}'] == 8
    assert (series["slurm_queue_running"], series["slurm_queue_pending"]) == (1, 2)
    assert series['slurm_partition_jobs_pending{partition="debug"}'] == 1
    assert series["slurm_scheduler_up"] == 1
    assert (series["slurm_scheduler_last_cycle"], series["slurm_scheduler_backfill_last_cycle"]) == (120, 450)
    names = {key.split("{")[0] for key in series}
    assert names <= set(metrics.SLURM_METRICS)


def test_a_silent_controller_is_a_scheduler_down_series(tmp_path):
    series = _slurm_metrics(tmp_path, sdiag_exit=1)
    assert series["slurm_scheduler_up"] == 0
    assert "slurm_scheduler_threads" not in series


# --- the health verdict as series -------------------------------------------------------------------


def test_the_health_check_writes_its_verdict_for_the_textfile_collector(tmp_path):
    from tests.components.bootstrap_fakeroot import FakeNode

    node = FakeNode(tmp_path)
    env = _files(bootstrap.render_cloud_config(_spec(), "gpu", 0, metrics=VALUES))[bootstrap.NODE_ENV_PATH]
    node.write("etc/azcluster/node.env", env)
    node.hpc_image("ndv5")
    node.gpus(8)
    node.ib(overrides={3: ("1: DOWN", 400)})
    journal = tmp_path / "journalctl"
    journal.write_text(
        "#!/bin/sh\necho 'kernel: NVRM: Xid (PCI:0000:c5:00): 79, pid=1, GPU has fallen off the bus.'\n"
        "echo 'kernel: NVRM: Xid (PCI:0000:c5:00): 79, pid=1, GPU has fallen off the bus.'\n"
        "echo 'kernel: eth0 up'\n"
    )
    journal.chmod(0o755)
    run = node.run("azc-health.sh", "--mode", "quick", "--quiet", JOURNALCTL=str(journal))
    assert run.returncode == 1  # port 3 is down
    text = (node.root / "var/lib/azcluster/metrics/health.prom").read_text()
    series = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()}
    assert series["azcluster_node_healthy"] == 0
    assert series['azcluster_health_check_ok{check="infiniband"}'] == 0
    assert series['azcluster_health_check_ok{check="gpu"}'] == 1
    assert {key for key in series if key.startswith("azcluster_health_check_ok")} == {
        f'azcluster_health_check_ok{{check="{check}"}}' for check in metrics.HEALTH_CHECKS
    }
    assert series["azcluster_gpu_xid_errors_total"] == 2
    assert series["azcluster_node_price_usd_per_hour"] == 98.32
    assert series["azcluster_health_check_timestamp_seconds"] > 1.7e9


# --- labels filled in at start ----------------------------------------------------------------------


def _config_at_start(tmp_path: Path, spec: ClusterSpec, island: int, domain: str | None = None) -> dict:
    document = yaml.safe_load(bootstrap.render_cloud_config(spec, "gpu", island, metrics=VALUES))
    for entry in document["write_files"]:
        if entry["path"] in (metrics.CONFIG_TEMPLATE, bootstrap.NODE_ENV_PATH):
            path = tmp_path / entry["path"].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(entry["content"])
    if domain is not None:
        (tmp_path / "var/lib/azcluster").mkdir(parents=True, exist_ok=True)
        (tmp_path / "var/lib/azcluster/nvlink-domain").write_text(domain + "\n")
    done = subprocess.run(
        ["bash", str(SCRIPTS / "azc-metrics.sh"), "config"],
        env={"PATH": os.environ["PATH"], "AZC_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load((tmp_path / "run/azcluster/prometheus.yml").read_text())


def test_the_islands_of_a_pool_share_one_configuration_and_label_their_own_island(tmp_path):
    spec = _spec()
    first, last = (
        _files(bootstrap.render_cloud_config(spec, "gpu", island, metrics=VALUES))[metrics.CONFIG_TEMPLATE]
        for island in (0, 1)
    )
    assert first == last  # only node.env differs per island (it is written last, gzip shares the rest)
    config = _config_at_start(tmp_path, spec, 1)
    assert config["global"]["external_labels"] == {"cluster": "llm", "pool": "gpu", "island": "1"}
    host = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    assert {job["relabel_configs"][0]["replacement"] for job in config["scrape_configs"]} == {host}


def test_a_gb_node_labels_its_series_with_its_nvlink_domain(tmp_path):
    spec = _spec("Standard_ND128isr_NDR_GB200_v6")
    config = _config_at_start(tmp_path / "a", spec, 0, domain="9f1c2d3e-aaaa-bbbb-cccc-000000000001.32766")
    assert config["global"]["external_labels"]["rack"] == "9f1c2d3e-aaaa-bbbb-cccc-000000000001.32766"
    assert _config_at_start(tmp_path / "b", spec, 0)["global"]["external_labels"]["rack"] == "unknown"
    assert "rack" not in _config_at_start(tmp_path / "c", _spec(), 0)["global"]["external_labels"]


def test_the_exporter_and_the_agent_run_unprivileged_and_only_on_loopback():
    """Neither needs root (test_metrics_real.py runs both as nobody); nothing listens beyond loopback."""
    for unit in ("azc-node-exporter.service", "azc-metrics-agent.service"):
        text = bootstrap.read_script(unit)
        assert "DynamicUser=yes" in text and "ProtectSystem=strict" in text, unit
        assert "--web.listen-address=127.0.0.1:" in text, unit
    # the agent's configuration is written as root before it starts (ExecStartPre with "+")
    assert "ExecStartPre=+/usr/local/lib/azcluster/azc-metrics.sh config" in bootstrap.read_script(
        "azc-metrics-agent.service"
    )


@pytest.mark.parametrize("size", ["Standard_ND96isr_H100_v5", "Standard_ND96isr_MI300X_v5"])
def test_the_gpu_exporter_container_listens_on_loopback_with_the_sizes_image(tmp_path, size):
    env = _files(bootstrap.render_cloud_config(_spec(size), "gpu", 0, metrics=VALUES))[
        bootstrap.NODE_ENV_PATH
    ]
    (tmp_path / "etc/azcluster").mkdir(parents=True)
    (tmp_path / "etc/azcluster/node.env").write_text(env)
    docker = tmp_path / "docker"
    docker.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/calls"\n')
    docker.chmod(0o755)
    done = subprocess.run(
        ["bash", str(SCRIPTS / "azc-metrics.sh"), "gpu-exporter"],
        env={"PATH": os.environ["PATH"], "AZC_ROOT": str(tmp_path), "DOCKER": str(docker)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run = (tmp_path / "calls").read_text().splitlines()[-1].split()
    image = next(
        line.split("=", 1)[1] for line in env.splitlines() if line.startswith("AZC_METRICS_GPU_IMAGE=")
    )
    assert run[0] == "run" and image in run
    if "MI300X" in size:
        assert "127.0.0.1:5000:5000" in run and "--device=/dev/kfd" in run
    else:
        assert "127.0.0.1:9400:9400" in run and "--gpus" in run
        # per-job labels: dcgm-exporter reads the job of each GPU from this directory (mounted, created)
        assert run[run.index("--hpc-job-mapping-dir") + 1] == "/run/azcluster/hpc-jobs"
        assert (tmp_path / "run/azcluster/hpc-jobs").is_dir()


@pytest.mark.parametrize(
    ("script", "names"),
    [("azc-health.sh", metrics.HEALTH_CHECKS), ("azc-gb-health-lib.sh", metrics.GB_HEALTH_CHECKS)],
)
def test_the_counted_health_checks_are_the_ones_the_scripts_report(script, names):
    """series_per_node counts one series per check: the tuples must name exactly what the scripts report."""
    import re

    reported = set(re.findall(r"\badd_check ([a-z_]+)", (SCRIPTS / script).read_text()))
    assert reported == set(names)


def test_a_gb_node_counts_its_own_checks():
    plain = metrics.series_per_node(4, 4)
    assert metrics.series_per_node(4, 4, gb=True) == plain + len(metrics.GB_HEALTH_CHECKS)

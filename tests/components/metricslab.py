"""A synthetic GPU node's metrics side, run for real (tests/components/test_metrics_real.py and
benchmarks/bench_series.py): see the test module's docstring for what runs and what stands in.

    with running_node(suite, tmp) as run:   # run.records: every remote write the receiver took;
        ...                                  # run.series: the latest sample of each series sent
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from azcluster.components import bootstrap
from azcluster.components.bootstrap import metrics
from azcluster.components.bootstrap.document import read_script
from azcluster.components.spec import ClusterSpec
from tests import realroots
from tests.components.bootstrap_fakeroot import FakeNode
from tests.fakes.remote_write import IMDS_ADDRESS

REPO = Path(__file__).resolve().parents[2]
CLIENT_ID = "0b9f6a1e-2f1c-4c63-9a3e-7a0c1d2e3f40"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.azcluster-test-token.signature"
RULE = "dcr-0123456789abcdef0123456789abcdef"
HOSTNAME = "llm-gpu-000001"
SUITES = {"trixie": "2.53", "sid": "3.5"}


SIZES = {"nvidia": "Standard_ND96isr_H100_v5", "amd": "Standard_ND96isr_MI300X_v5"}
GPU_JOB = {"nvidia": "dcgm", "amd": "amd-gpu"}


def _spec(vendor: str = "nvidia") -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "pools": [{"name": "gpu", "size": SIZES[vendor], "nodes": 2, "island_max_nodes": 1}],
            "monitoring": {"enabled": True, "scrape_interval_seconds": 10},
        }
    )


def _exec_start(unit: str) -> list[str]:
    line = next(line for line in read_script(unit).splitlines() if line.startswith("ExecStart="))
    return line.removeprefix("ExecStart=").split()


def _fake_node(tmp: Path, vendor: str = "nvidia") -> FakeNode:
    node = FakeNode(tmp / "node")
    # node.env as a node of a cluster with monitoring on gets it (the metrics piece adds the price)
    values = metrics.MetricsValues(metrics.write_url("https://dce.eastus-1.example", RULE), CLIENT_ID)
    rendered = yaml.safe_load(bootstrap.render_cloud_config(_spec(vendor), "gpu", 0, metrics=values))
    env = next(f["content"] for f in rendered["write_files"] if f["path"] == bootstrap.NODE_ENV_PATH)
    node.write("etc/azcluster/node.env", env)
    node.gpus(8)
    node.ib()
    for port in sorted((node.root / "sys/class/infiniband").glob("*/ports/1")):
        device = port.parents[1]
        # what an mlx5 HCA exposes (kernel Documentation/ABI/stable/sysfs-class-infiniband): node_exporter
        # 1.9 fails the whole collector when hw_counters is missing, as it never is on mlx5
        (device / "fw_ver").write_text("28.39.1002\n")
        (device / "board_id").write_text("MT_0000000838\n")
        (device / "hca_type").write_text("MT4129\n")
        (device / "node_guid").write_text("0015:5dff:fe33:ff0c\n")
        hw = port / "hw_counters"
        hw.mkdir()
        for name in ("out_of_buffer", "local_ack_timeout_err", "np_cnp_sent"):
            (hw / name).write_text("0\n")
        (port / "phys_state").write_text("5: LinkUp\n" if "ib" in device.name else "3: Disabled\n")
        counters = port / "counters"
        counters.mkdir()
        for name, value in {
            "port_rcv_data": 123456789,
            "port_xmit_data": 987654321,
            "port_rcv_errors": 0,
            "symbol_error": 0,
            "link_downed": 1,
            "port_rcv_packets": 1000,
            "port_xmit_packets": 1000,
            "port_xmit_wait": 5,
        }.items():
            (counters / name).write_text(f"{value}\n")
    return node


def _health_metrics(node: FakeNode) -> Path:
    """The real azc-health.sh on the fake node writes health.prom where node_exporter reads it."""
    node.hpc_image("ndv5")
    run = node.run("azc-health.sh", "--mode", "quick", "--quiet")
    assert run.returncode in (0, 1), run.stderr
    textfile = node.root / metrics.TEXTFILE_DIR.lstrip("/")
    assert (textfile / "health.prom").exists(), run.stderr
    return textfile


def _agent_config(tmp: Path, ports: dict[str, int], token_file: str, vendor: str = "nvidia") -> str:
    values = metrics.MetricsValues(
        metrics.write_url(f"http://127.0.0.1:{ports['receiver']}", RULE), CLIENT_ID
    )
    # What island 1's scale set gets: its configuration and node.env, as written on the node ...
    document = yaml.safe_load(bootstrap.render_cloud_config(_spec(vendor), "gpu", 1, metrics=values))
    for entry in document["write_files"]:
        if entry["path"] in (metrics.CONFIG_TEMPLATE, bootstrap.NODE_ENV_PATH):
            path = tmp / entry["path"].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(entry["content"])
    # ... and the node's start-up (azc-metrics.sh config) fills in its host name and island.
    done = subprocess.run(
        ["bash", str(REPO / "components/bootstrap/scripts/azc-metrics.sh"), "config"],
        env={"PATH": os.environ["PATH"], "AZC_ROOT": str(tmp)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load((tmp / "run/azcluster/prometheus.yml").read_text())
    host = subprocess.run(["hostname"], capture_output=True, text=True, check=True).stdout.strip()
    for job in config["scrape_configs"]:
        assert job["relabel_configs"] == [{"target_label": "instance", "replacement": host}]
        job["relabel_configs"][0]["replacement"] = HOSTNAME  # the machine's host name, not this one's
        # Addresses: the exporters' ports here.
        [static] = job["static_configs"]
        port = {"node": ports["node"], "dcgm": ports["dcgm"], "amd-gpu": ports["amd"]}[job["job_name"]]
        static["targets"] = [f"127.0.0.1:{port}"]
    [remote] = config["remote_write"]
    # Debian's Prometheus has no azuread (module docstring): the token the SDK got, as a bearer file.
    assert remote.pop("azuread") == {"cloud": "AzurePublic", "managed_identity": {"client_id": CLIENT_ID}}
    remote["authorization"] = {"credentials_file": token_file}
    return yaml.safe_dump(config)


def _token_from_imds(net: realroots.Loopback) -> str:
    """The Azure SDK for Python's managed-identity credential, inside the namespace, asks 169.254.169.254."""
    code = (
        "from azure.identity import ManagedIdentityCredential\n"
        f"print(ManagedIdentityCredential(client_id={CLIENT_ID!r}).get_token("
        "'https://monitor.azure.com//.default').token)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDENTITY_", "MSI_", "AZURE_"))}
    done = subprocess.run(
        ["nsenter", f"--net={net.ns}", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def _free_port(net: realroots.Loopback) -> int:
    code = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
    done = subprocess.run(
        ["nsenter", f"--net={net.ns}", "--", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def _received(state: Path) -> list[dict]:
    path = state / "received.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _latest_series(records: list[dict]) -> dict[tuple, dict]:
    series: dict[tuple, dict] = {}
    for record in records:
        for item in record.get("series", []):
            series[tuple(sorted(item["labels"].items()))] = item
    return series


@dataclass
class NodeRun:
    suite: str
    records: list[dict] = field(default_factory=list)
    series: dict[tuple, dict] = field(default_factory=dict)
    state: Path = Path()
    logs: str = ""
    offered: int = 0
    """Series the exporters offered (node_exporter's, the GPU stand-in's), before the keep-list."""
    vendor: str = "nvidia"


def _offered(machine: realroots.Machine, ports: dict[str, int], vendor: str) -> int:
    from tests.fakes.remote_write import amd_text, dcgm_text

    code = (
        "import urllib.request\n"
        f"text = urllib.request.urlopen('http://127.0.0.1:{ports['node']}/metrics').read().decode()\n"
        "print(sum(1 for line in text.splitlines() if line and not line.startswith('#')))\n"
    )
    done = machine.run(["python3", "-c", code])
    node = int(done.stdout.strip()) if done.returncode == 0 else 0
    gpu_text = amd_text() if vendor == "amd" else dcgm_text()
    dcgm = sum(1 for line in gpu_text.splitlines() if line and not line.startswith("#"))
    return node + dcgm


@contextlib.contextmanager
def running_node(
    suite: str, tmp_path: Path, vendor: str = "nvidia", settle_s: float = 12
) -> Iterator[NodeRun]:
    """Boot the synthetic node's metrics side in `suite`'s root until the receiver has every series one
    node sends (or 60 s), one more scrape after that; yield what was received. Everything stops after."""
    root = realroots.ensure_root(suite, realroots.MONITORING_PACKAGES)
    node = _fake_node(tmp_path, vendor)
    textfile = _health_metrics(node)
    state = tmp_path / "state"
    state.mkdir()
    srv = tmp_path / "srv"
    srv.mkdir()
    with realroots.Loopback() as net:
        subprocess.run(
            ["nsenter", f"--net={net.ns}", "--", "ip", "addr", "add", f"{IMDS_ADDRESS}/32", "dev", "lo"],
            check=True,
        )
        fakes = subprocess.Popen(
            ["nsenter", f"--net={net.ns}", "--", sys.executable, "-m", "tests.fakes.remote_write"]
            + [str(state), CLIENT_ID, TOKEN],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "fakes.log").open("w"),
        )
        try:
            deadline = time.monotonic() + 30
            while not (state / "ports.json").exists():
                if fakes.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "fakes.log").read_text())
                time.sleep(0.1)
            ports = json.loads((state / "ports.json").read_text())
            ports["node"] = _free_port(net)
            (srv / "token").write_text(_token_from_imds(net))
            (srv / "prometheus.yml").write_text(
                _agent_config(tmp_path / "cfg", ports, "/srv/azc/token", vendor)
            )
            binds = {"/srv/azc": srv, "/srv/sys": node.root / "sys", "/srv/textfile": textfile}
            with realroots.Machine(root, HOSTNAME, tmp_path / "machine", net=net, binds=binds) as machine:
                yield _run(machine, suite, vendor, ports, net, state, tmp_path, settle_s)
        finally:
            fakes.kill()
            fakes.wait(timeout=10)


def _run(
    machine: realroots.Machine,
    suite: str,
    vendor: str,
    ports: dict[str, int],
    net: realroots.Loopback,
    state: Path,
    tmp_path: Path,
    settle_s: float,
) -> NodeRun:
    check = machine.run(["promtool", "check", "config", "/srv/azc/prometheus.yml"])
    if check.returncode != 0:
        raise AssertionError(f"promtool check config: {check.stdout}{check.stderr}")
    exporter = _exec_start("azc-node-exporter.service")
    exporter[0] = "prometheus-node-exporter"
    exporter = [
        "--collector.textfile.directory=/srv/textfile"
        if arg.startswith("--collector.textfile.directory=")
        else f"--web.listen-address=127.0.0.1:{ports['node']}"
        if arg.startswith("--web.listen-address=")
        else arg
        for arg in exporter
    ]
    logs = tmp_path / "logs"
    logs.mkdir()
    # as the units run them: an unprivileged (systemd dynamic) user, never root
    unprivileged = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    machine.popen(
        [*unprivileged, *exporter, "--path.sysfs=/srv/sys"],
        stdout=subprocess.DEVNULL,
        stderr=(logs / "node_exporter.log").open("w"),
    )
    agent = _exec_start("azc-metrics-agent.service")
    agent[0] = "prometheus"
    if SUITES[suite].startswith("2."):  # Prometheus 2.x: agent mode is a feature flag
        agent = ["--enable-feature=agent" if arg == "--agent" else arg for arg in agent]
    agent = [
        "--config.file=/srv/azc/prometheus.yml"
        if arg.startswith("--config.file=")
        else "--storage.agent.path=/tmp/agent"
        if arg.startswith("--storage.agent.path=")
        else f"--web.listen-address=127.0.0.1:{_free_port(net)}"
        if arg.startswith("--web.listen-address=")
        else arg
        for arg in agent
    ]
    machine.popen(
        [*unprivileged, *agent], stdout=subprocess.DEVNULL, stderr=(logs / "prometheus.log").open("w")
    )
    want = metrics.series_per_node(8, 8, vendor=vendor)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        series = _latest_series(_received(state))
        jobs = {dict(key).get("job") for key in series}
        if len(series) >= want and {"node", GPU_JOB[vendor], "azcluster"} <= jobs:
            time.sleep(settle_s)  # one more scrape: nothing new may appear
            break
        time.sleep(1)
    records = _received(state)
    logtext = "\n".join(p.read_text()[-3000:] for p in logs.iterdir())
    offered = _offered(machine, ports, vendor)
    return NodeRun(suite, records, _latest_series(records), state, logtext, offered, vendor)

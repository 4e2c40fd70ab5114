"""A real Prometheus holding the synthetic cluster's series (synthetic_metrics.py), on a free loopback
port: the data is backfilled with `promtool tsdb create-blocks-from openmetrics` and read by Prometheus at
start. Used by tests/components/test_dashboards.py and tools/render_dashboards.py (the README's picture).
Debian's `prometheus` package provides both programs."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import synthetic_metrics as synthetic

STARTUP_S = 60
RELEASES = ("host", "sid")
"""Where promtool and prometheus come from: the host's PATH (2.42 on Debian 12), or the sid monitoring root
of tests/realroots.py (MONITORING_PACKAGES: 3.5, the release the nodes run, catalog/metrics.yaml)."""


def bin_dir_or_skip(release: str) -> Path | None:
    """The release's promtool and prometheus directory (None: the host's PATH); pytest.skip, saying why."""
    import pytest

    from tests import realroots

    if release == "host":
        if shutil.which("prometheus") is None or shutil.which("promtool") is None:
            pytest.skip("prometheus not installed (Debian: prometheus)")
        return None
    return realroots.root_or_skip(release, realroots.MONITORING_PACKAGES) / "usr" / "bin"


def program(bin_dir: Path | None, name: str) -> str:
    """promtool or prometheus of `bin_dir` (None: the host's)."""
    found = shutil.which(name) if bin_dir is None else str(bin_dir / name)
    if found is None:
        raise RuntimeError(f"{name} is needed (Debian: apt-get install prometheus)")
    return found


class Prometheus:
    """Prometheus's HTTP API (prometheus.io/docs/prometheus/latest/querying/api/), at the synthetic end."""

    def __init__(self, url: str, end: int) -> None:
        self.url = url
        self.end = end

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as err:
            return json.load(err)

    def instant(self, query: str) -> dict[str, Any]:
        return self.get("/api/v1/query", query=query, time=self.end)

    def range(self, query: str, seconds: int = 1800, step: int = 60) -> dict[str, Any]:
        return self.get("/api/v1/query_range", query=query, start=self.end - seconds, end=self.end, step=step)


@contextlib.contextmanager
def synthetic_prometheus(root: Path, bin_dir: Path | None = None) -> Iterator[Prometheus]:
    """Backfill the synthetic cluster under `root`, start Prometheus on it, and always stop it.

    `bin_dir` holds the promtool and prometheus to run (a Debian root's usr/bin, tests/realroots.py: the
    programs are Go, linked only against libc, and run from there on the host); the host's by default."""
    promtool, prometheus = program(bin_dir, "promtool"), program(bin_dir, "prometheus")
    end = int(time.time()) // synthetic.STEP_S * synthetic.STEP_S - 60
    source = root / "cluster.om"
    source.write_text(synthetic.openmetrics(end))
    data = root / "data"
    made = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if made.returncode != 0:
        raise RuntimeError(f"promtool could not backfill the synthetic cluster: {made.stderr[-2000:]}")
    config = root / "prometheus.yml"
    config.write_text("global: {}\n")
    with (root / "prometheus.log").open("w") as log:
        for _attempt in range(5):
            process = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    "--storage.tsdb.retention.time=30d",
                    f"--web.listen-address=127.0.0.1:{_free_port()}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                server = _ready(process, end)
                if server is not None:
                    yield server
                    return
            finally:
                _stop(process)
            # the port was taken between choosing it and Prometheus binding it: another one
    raise RuntimeError("prometheus did not start: " + (root / "prometheus.log").read_text()[-2000:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(process: subprocess.Popen, end: int) -> Prometheus | None:
    port = next(a for a in process.args if str(a).startswith("--web.listen-address=")).rsplit(":", 1)[1]
    server = Prometheus(f"http://127.0.0.1:{port}", end)
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(server.url + "/-/ready", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.2)
    return None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

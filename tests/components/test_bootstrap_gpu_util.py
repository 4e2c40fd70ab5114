"""The health endpoint's GPU utilisation route (<HEALTH_PATH>/gpu), which the login node's idle watcher
reads: started for real, with stand-ins for nvidia-smi and rocm-smi that print what the real tools print
for the queries the server makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from azcluster.components import bootstrap
from tests.components.bootstrap_fakeroot import SCRIPTS

# `nvidia-smi --query-gpu=index,utilization.gpu --format=csv,noheader,nounits`: one "index, percent" line
NVIDIA_OUTPUT = "0, 0\n1, 0\n2, 87\n3, 0\n"
# `rocm-smi --showuse --csv`: a header, then "cardN,percent"
ROCM_OUTPUT = "device,GPU use (%)\ncard0,0\ncard1,12\n"


def _tool(tmp_path: Path, name: str, output: str, status: int = 0) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write({output!r})\nsys.exit({status})\n")
    path.chmod(0o755)
    return str(path)


def _serve(tmp_path: Path, command: str):
    env = {**os.environ, "AZC_GPU_UTIL_CMD": command}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPTS / "azc-health-server.py"),
            "--port",
            "0",
            "--result",
            str(tmp_path / "h"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline()
    return proc, line.split(" on ", 1)[1].strip().rsplit("/", 1)[0]


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize(
    ("tool", "output", "expected"),
    [("nvidia-smi", NVIDIA_OUTPUT, [0.0, 0.0, 87.0, 0.0]), ("rocm-smi", ROCM_OUTPUT, [0.0, 12.0])],
)
def test_gpu_route_reports_each_gpus_utilisation(tmp_path, tool, output, expected):
    proc, base = _serve(tmp_path, _tool(tmp_path, tool, output))
    try:
        status, body = _get(base + bootstrap.HEALTH_PATH + "/gpu")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert status == 200
    assert [gpu["utilization"] for gpu in body["gpus"]] == expected
    assert [gpu["index"] for gpu in body["gpus"]] == list(range(len(expected)))


def test_gpu_route_is_unknown_when_the_tool_fails(tmp_path):
    proc, base = _serve(tmp_path, _tool(tmp_path, "nvidia-smi", "NVIDIA-SMI has failed\n", status=9))
    try:
        status, body = _get(base + bootstrap.HEALTH_PATH + "/gpu")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert status == 503 and "cannot read GPU utilisation" in body["error"]

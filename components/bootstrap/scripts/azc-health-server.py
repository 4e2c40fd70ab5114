#!/usr/bin/env python3
"""azc-health-server: the node's health probe for the scale set's Application Health extension.

The extension (Microsoft.ManagedServices/ApplicationHealthLinux, typeHandlerVersion 2.0, "Rich Health
States") sends GET http://localhost:<port>/<requestPath> from inside the VM and expects status 2xx with
the body {"ApplicationHealthState": "Healthy"} or {"ApplicationHealthState": "Unhealthy"}. A non-2xx
answer or any other body counts as Unknown, which keeps a new instance Initializing until the grace
period ends, and afterwards is treated like Unhealthy.

This server answers from the result file azc-health.sh writes (/var/lib/azcluster/health.json):
  - healthy result           -> 200 {"ApplicationHealthState": "Healthy"}
  - unhealthy result         -> 200 {"ApplicationHealthState": "Unhealthy"}
  - no result yet, unreadable or older than --max-age -> 503 with a reason (Unknown to Azure), so a node
    is not reported Healthy by a checker that stopped running
  - <path>/detail            -> the whole result file (failing checks and their details), for people
  - <path>/gpu               -> {"gpus": [{"index", "utilization"}]}: GPU utilisation in percent now, read
    with nvidia-smi (rocm-smi on AMD); the login node's idle watcher powers idle islands off with it

Standard library only: it runs on the node with the system python3. Binds 127.0.0.1 by default: the
extension probes from inside the VM, nothing else needs to reach it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_PORT = 8585
DEFAULT_PATH = "/health"
DEFAULT_RESULT = "/var/lib/azcluster/health.json"
DEFAULT_MAX_AGE_S = 7200


def health_state(result_path: str, max_age_s: float, now: float | None = None) -> tuple[int, dict]:
    """(HTTP status, body) for the probe, from the result file."""
    now = time.time() if now is None else now
    try:
        with open(result_path, encoding="utf-8") as handle:
            result = json.load(handle)
        age = now - os.stat(result_path).st_mtime
    except FileNotFoundError:
        return 503, {"error": "no health result yet", "result": result_path}
    except (OSError, ValueError) as err:
        return 503, {"error": f"health result unreadable: {err}", "result": result_path}
    if not isinstance(result, dict) or not isinstance(result.get("healthy"), bool):
        return 503, {"error": "health result has no boolean 'healthy'", "result": result_path}
    if max_age_s > 0 and age > max_age_s:
        return 503, {"error": f"health result is {int(age)} s old (limit {int(max_age_s)} s)"}
    return 200, {"ApplicationHealthState": "Healthy" if result["healthy"] else "Unhealthy"}


# nvidia-smi --query-gpu fields and formats: `nvidia-smi --help-query-gpu` ("utilization.gpu: Percent of
# time over the past sample period during which one or more kernels was executing on the GPU").
NVIDIA_UTIL_CMD = "nvidia-smi --query-gpu=index,utilization.gpu --format=csv,noheader,nounits"
# rocm-smi --showuse --csv prints "device,GPU use (%)" then one "cardN,<percent>" line per GPU.
AMD_UTIL_CMD = "rocm-smi --showuse --csv"


def gpu_utilisation(command: str | None = None) -> tuple[int, dict]:
    """(HTTP status, body) with each GPU's utilisation in percent, from the vendor's tool."""
    if command is None:
        command = os.environ.get("AZC_GPU_UTIL_CMD") or (
            AMD_UTIL_CMD if os.environ.get("AZC_GPU_VENDOR") == "amd" else NVIDIA_UTIL_CMD
        )
    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=20, check=True)
    except (OSError, subprocess.SubprocessError) as err:
        return 503, {"error": f"cannot read GPU utilisation: {err}"}
    gpus = []
    for line in done.stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 2 or not re.fullmatch(r"\d+(\.\d+)?", fields[-1]):
            continue  # a header line
        index = re.sub(r"\D", "", fields[0]) or str(len(gpus))
        gpus.append({"index": int(index), "utilization": float(fields[-1])})
    if not gpus:
        return 503, {"error": "no GPU utilisation in the tool's output", "output": done.stdout[-500:]}
    return 200, {"gpus": gpus, "time": time.time()}


def make_handler(health_path: str, result_path: str, max_age_s: float) -> type[BaseHTTPRequestHandler]:
    probe = "/" + health_path.strip("/")
    detail = probe.rstrip("/") + "/detail"
    gpu = probe.rstrip("/") + "/gpu"

    class Handler(BaseHTTPRequestHandler):
        server_version = "azc-health/1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            # Older extension versions join "/" + requestPath, so "/health" arrives as "//health".
            path = re.sub(r"/{2,}", "/", self.path.split("?", 1)[0])
            if path.rstrip("/") == probe.rstrip("/"):
                status, body = health_state(result_path, max_age_s)
            elif path == gpu:
                status, body = gpu_utilisation()
            elif path == detail:
                try:
                    with open(result_path, encoding="utf-8") as handle:
                        status, body = 200, json.load(handle)
                except (OSError, ValueError) as err:
                    status, body = 503, {"error": f"health result unavailable: {err}"}
            else:
                status, body = 404, {"error": f"not found; the probe is {probe}"}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            if os.environ.get("AZC_HEALTH_SERVER_LOG"):
                super().log_message(format, *args)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bind", default=os.environ.get("AZC_HEALTH_BIND", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("AZC_HEALTH_PORT", DEFAULT_PORT)))
    parser.add_argument("--path", default=os.environ.get("AZC_HEALTH_PATH", DEFAULT_PATH))
    root = os.environ.get("AZC_ROOT", "")
    parser.add_argument("--result", default=os.environ.get("AZC_HEALTH_RESULT", root + DEFAULT_RESULT))
    parser.add_argument(
        "--max-age",
        type=float,
        default=float(os.environ.get("AZC_HEALTH_MAX_AGE", DEFAULT_MAX_AGE_S)),
        help="seconds after which a result is stale (0: never)",
    )
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.bind, args.port), make_handler(args.path, args.result, args.max_age))
    host, port = server.server_address[:2]
    print(f"azc-health-server listening on http://{host}:{port}{args.path}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

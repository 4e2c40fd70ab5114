"""Loopback stand-ins for what a node's Prometheus agent talks to: the Azure Monitor data collection rule's
remote-write endpoint, a DCGM exporter, and (with tests/fakes/imds.py) IMDS's managed-identity tokens.

Receiver (Azure Monitor ingestion, learn.microsoft.com/azure/azure-monitor/metrics/
prometheus-remote-write-virtual-machines): POST /dataCollectionRules/<immutable id>/streams/
Microsoft-PrometheusMetrics/api/v1/write?api-version=2023-04-24 with `Authorization: Bearer <token>`.
Anything else is refused the way Azure refuses it (404 wrong path or stream, 400 no api-version, 401
no or unknown token). The body is Prometheus's remote-write 1.0 message (prometheus.io/docs/specs/
remote_write_spec/): a snappy block-compressed (not framed) protobuf `WriteRequest`, with
`Content-Encoding: snappy`, `Content-Type: application/x-protobuf` and
`X-Prometheus-Remote-Write-Version: 0.1.0`. Both are decoded here in pure Python (snappy's format:
github.com/google/snappy format_description.txt; prompb/remote.proto and types.proto), and every sample
is appended to `received.jsonl`.

DCGM stand-in: /metrics in dcgm-exporter's text format for 8 GPUs, every field of NVIDIA's default
counters file (dcgm-exporter etc/default-counters.csv), labelled as dcgm-exporter labels them (gpu, UUID,
pci_bus_id, device, modelName, Hostname; its README's sample output). AMD stand-in: AMD's
device-metrics-exporter for 8 MI300X GPUs, its metric names (ROCm/device-metrics-exporter docs,
"Metrics") and labels as it writes them (gpu_id, gpu_uuid, card_series, card_model, hostname, ...).

`python -m tests.fakes.remote_write STATE_DIR CLIENT_ID TOKEN` serves all three and writes
STATE_DIR/ports.json; run it inside the test's network namespace (IMDS on 169.254.169.254:80 there).
"""

from __future__ import annotations

import http.server
import json
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

STREAM = "Microsoft-PrometheusMetrics"
API_VERSION = "2023-04-24"
IMDS_ADDRESS = "169.254.169.254"

# --- snappy (block format) ---------------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def snappy_decompress(data: bytes) -> bytes:
    """Snappy's block format: a varint length, then literals and back-references (tags 0-3)."""
    length, pos = _varint(data, 0)
    out = bytearray()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                size = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            size += 1
            out += data[pos : pos + size]
            pos += size
            continue
        if kind == 1:
            size = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            size = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        else:
            size = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise ValueError("snappy: bad back-reference")
        for _ in range(size):  # may overlap itself
            out.append(out[-offset])
    if len(out) != length:
        raise ValueError(f"snappy: {len(out)} bytes, header says {length}")
    return bytes(out)


# --- protobuf (prompb.WriteRequest) ------------------------------------------------------------------


def _fields(data: bytes):
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"protobuf: wire type {wire}")
        yield number, value


def parse_write_request(data: bytes) -> list[dict[str, Any]]:
    """WriteRequest{1: repeated TimeSeries{1: Label{1 name, 2 value}, 2: Sample{1 double value, 2 int64
    timestamp}}} -> [{"labels": {...}, "samples": [[value, timestamp_ms], ...]}]."""
    import struct

    series = []
    for number, body in _fields(data):
        if number != 1:
            continue  # metadata (3) is not a series
        labels: dict[str, str] = {}
        samples = []
        for field, value in _fields(body):
            if field == 1:
                pair = dict(_fields(value))
                labels[pair.get(1, b"").decode()] = pair.get(2, b"").decode()
            elif field == 2:
                sample = dict(_fields(value))
                number_value = struct.unpack("<d", sample.get(1, b"\0" * 8))[0]
                samples.append([number_value, sample.get(2, 0)])
        series.append({"labels": labels, "samples": samples})
    return series


# --- the receiver ------------------------------------------------------------------------------------


class Receiver:
    def __init__(self, state: Path, tokens: set[str]) -> None:
        self.state = state
        self.tokens = tokens
        self.lock = threading.Lock()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        parts = urlsplit(path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        segments = parts.path.strip("/").split("/")
        record: dict[str, Any] = {"path": parts.path, "query": query, "status": 0}
        if (
            len(segments) != 7
            or segments[0] != "dataCollectionRules"
            or not segments[1].startswith("dcr-")
            or segments[2:4] != ["streams", STREAM]
            or segments[4:] != ["api", "v1", "write"]
        ):
            record["status"] = 404
        elif query.get("api-version") != API_VERSION:
            record["status"] = 400
        elif headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            record["status"] = 401
        elif (
            headers.get("content-encoding") != "snappy"
            or headers.get("content-type") != "application/x-protobuf"
            or headers.get("x-prometheus-remote-write-version") != "0.1.0"
        ):
            record["status"] = 415
        else:
            record["status"] = 204
            record["series"] = parse_write_request(snappy_decompress(body))
        with self.lock, (self.state / "received.jsonl").open("a") as out:
            out.write(json.dumps(record) + "\n")
        return record["status"]


class _ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status = self.server.receiver.handle(  # type: ignore[attr-defined]
            self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


# --- DCGM exporter stand-in --------------------------------------------------------------------------

DEFAULT_COUNTERS = (
    # dcgm-exporter etc/default-counters.csv (the fields it exports when started without -f)
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", 1980),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", 2619),
    ("DCGM_FI_DEV_MEMORY_TEMP", "gauge", 41),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", 38),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", 412.5),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", 8.8e9),
    ("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "counter", 0),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", 97),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", 31),
    ("DCGM_FI_DEV_ENC_UTIL", "gauge", 0),
    ("DCGM_FI_DEV_DEC_UTIL", "gauge", 0),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", 0),
    ("DCGM_FI_DEV_FB_FREE", "gauge", 2811),
    ("DCGM_FI_DEV_FB_USED", "gauge", 78400),
    ("DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL", "counter", 1.2e12),
    ("DCGM_FI_DEV_VGPU_LICENSE_STATUS", "gauge", 0),
    ("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "counter", 0),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", 0),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", 0),
    # not in the default file but in azcluster's counters file (alerts read them)
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", 0),
    ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "counter", 0),
)
GPUS = 8


def dcgm_text(hostname: str = "dcgm-exporter-host") -> str:
    lines = []
    for name, kind, value in DEFAULT_COUNTERS:
        lines.append(f"# HELP {name} {name}.")
        lines.append(f"# TYPE {name} {kind}")
        for gpu in range(GPUS):
            labels = (
                f'gpu="{gpu}",UUID="GPU-0000000{gpu}-1111-2222-3333-444444444444",'
                f'pci_bus_id="0000000{gpu + 1}:00:00.0",device="nvidia{gpu}",'
                f'modelName="NVIDIA H100 80GB HBM3",Hostname="{hostname}"'
            )
            lines.append(f"{name}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


AMD_FIELDS = (
    ("gpu_gfx_activity", 88),
    ("gpu_umc_activity", 40),
    ("gpu_used_vram", 150000),
    ("gpu_free_vram", 46080),
    ("gpu_total_vram", 196608),
    ("gpu_package_power", 650),
    ("gpu_junction_temperature", 61),
    ("gpu_memory_temperature", 55),
    ("gpu_edge_temperature", 45),
    ("gpu_ecc_uncorrect_total", 0),
    ("gpu_ecc_correct_total", 3),
    ("gpu_clock", 2100),
    ("pcie_bandwidth", 12000),
)


def amd_text(hostname: str = "amd-exporter-host") -> str:
    lines = []
    for name, value in AMD_FIELDS:
        lines.append(f"# HELP {name} {name}")
        lines.append(f"# TYPE {name} gauge")
        for gpu in range(GPUS):
            labels = (
                f'card_model="102-G30211-0C",card_series="AMD Instinct MI300X OAM",card_vendor="AMD",'
                f'driver_version="6.12.12",gpu_compute_partition_type="spx",gpu_id="{gpu}",'
                f'gpu_memory_partition_type="nps1",gpu_partition_id="0",'
                f'gpu_uuid="ccff74a1-0000-1000-80e0-c6d49f5b0d8{gpu}",hostname="{hostname}"'
            )
            lines.append(f"{name}{{{labels}}} {value}")
    return "\n".join(lines) + "\n"


class _DcgmHandler(http.server.BaseHTTPRequestHandler):
    text = staticmethod(dcgm_text)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?")[0] != "/metrics":
            self.send_response(404)
            self.end_headers()
            return
        body = self.text().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve(server: http.server.HTTPServer) -> None:
    server.daemon_threads = True  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()


def main(argv: list[str]) -> int:
    from tests.fakes.imds import FakeImds, FakeImdsServer

    state, client_id, token = Path(argv[0]), argv[1], argv[2]

    class LoggedImds(FakeImds):
        def handle(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
            status, body = super().handle(path, headers)
            with (state / "imds.jsonl").open("a") as out:
                out.write(json.dumps({"path": path, "headers": headers, "status": status}) + "\n")
            return status, body

    imds = LoggedImds(client_id, token)
    imds_server = FakeImdsServer(imds, address=(IMDS_ADDRESS, 80))
    imds_server.__enter__()
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
    receiver.receiver = Receiver(state, {token})  # type: ignore[attr-defined]
    _serve(receiver)
    dcgm = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DcgmHandler)
    _serve(dcgm)

    class AmdHandler(_DcgmHandler):
        text = staticmethod(amd_text)

    amd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AmdHandler)
    _serve(amd)
    ports = {
        "receiver": receiver.server_address[1],
        "dcgm": dcgm.server_address[1],
        "amd": amd.server_address[1],
    }
    # Written whole, then renamed: the test polls for the file and must never read it half-written (it did,
    # once, on a loaded machine: an empty file and a JSONDecodeError in every metrics test of that run).
    partial = state / "ports.json.partial"
    partial.write_text(json.dumps(ports))
    partial.rename(state / "ports.json")
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

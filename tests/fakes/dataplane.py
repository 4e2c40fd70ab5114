"""Loopback HTTPS stand-ins for the two data-plane APIs azcluster calls beside Resource Manager: Azure
Managed Grafana's HTTP API (Grafana's own) and an Azure Monitor workspace's Prometheus query API.

Each checks the bearer token the way the service does (401 without the right one), answers with the
bodies the services document, and takes scripted faults: a status answered N times (401, 503 with
Retry-After...) and a stall (the request is read and never answered, until the server stops).

- Grafana (grafana.com/docs/grafana/latest/developers/http_api/dashboard/ and .../folder/):
  `GET /api/folders/:uid` 200 or 404 `{"message": "folder not found"}`; `POST /api/folders` `{"uid",
  "title"}` 200 with the folder, 409 when the uid exists or another folder has the title (grafana/grafana
  pkg/api/apierrors/folder.go: ErrFolderWithSameUIDExists and ErrFolderSameNameExists both answer 409);
  `POST /api/dashboards/db` `{"dashboard",
  "folderUid", "overwrite", "message"}`: 400 without a title, with a uid over 40 characters, or in a folder
  that does not exist; 412 `{"status": "name-exists"}` when another dashboard of the folder has the title,
  or `{"status": "version-mismatch"}` for an existing uid, unless `overwrite`; else 200 `{"id", "uid",
  "url": "/d/<uid>/<slug>", "status": "success", "version", "slug"}` and the version goes up by one.
- Prometheus (prometheus.io/docs/prometheus/latest/querying/api/): `GET|POST /api/v1/query` with `query`
  (and `time`), answered `{"status": "success", "data": {"resultType": "vector", "result": [{"metric",
  "value": [t, "v"]}]}}` from the results a test sets per query; an unknown query answers an empty vector,
  a query the test marks bad answers 400 `{"status": "error", "errorType": "bad_data", "error"}`.
"""

from __future__ import annotations

import http.server
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .https import LocalHttpsServer

GRAFANA_TOKEN = "fake-grafana-token"
PROMETHEUS_TOKEN = "fake-prometheus-token"
UID_MAX = 40


@dataclass
class Fault:
    method: str
    path_contains: str
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class _Service:
    """What both stand-ins share: the token check, the record of requests, faults and stalls."""

    token = ""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.stalls: list[tuple[str, int]] = []
        self.stopped = threading.Event()

    def inject(self, method: str, path_contains: str, status: int, times: int = 1, **kw: Any) -> None:
        self.faults.append(Fault(method, path_contains, status, times, kw.get("headers", {}), kw.get("body")))

    def stall(self, path_contains: str, times: int = 1_000_000) -> None:
        """Requests whose path holds `path_contains` are read and never answered (until the server stops)."""
        self.stalls.append((path_contains, times))

    def calls(self, method: str, path_contains: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and path_contains in r.path]

    def handle(self, method: str, raw: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, Any]:
        parts = urlsplit(raw)
        query = parse_qs(parts.query, keep_blank_values=True)
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            query.update(parse_qs(body.decode(), keep_blank_values=True))
            sent: Any = None
        else:
            try:
                sent = json.loads(body) if body else None
            except ValueError:
                sent = body.decode("utf-8", "replace")
        with self.lock:
            self.requests.append(Recorded(method, parts.path, query, headers, sent))
            stall = self._take_stall(parts.path)
            fault = self._take_fault(method, parts.path)
        if stall:
            self.stopped.wait()
            return 0, {}, None
        if fault:
            return fault.status, fault.headers, fault.body
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {}, {"message": "Unauthorized"}
        return self.route(method, parts.path, query, sent)

    def _take_stall(self, path: str) -> bool:
        for index, (needle, times) in enumerate(self.stalls):
            if times > 0 and needle in path:
                self.stalls[index] = (needle, times - 1)
                return True
        return False

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.path_contains in path:
                fault.times -= 1
                return fault
        return None

    def route(self, method: str, path: str, query: dict[str, list[str]], sent: Any) -> tuple[int, dict, Any]:
        raise NotImplementedError


class FakeGrafana(_Service):
    token = GRAFANA_TOKEN

    def __init__(self) -> None:
        super().__init__()
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}  # uid -> {"dashboard", "folderUid", "version", "id"}

    def route(self, method: str, path: str, query: dict[str, list[str]], sent: Any) -> tuple[int, dict, Any]:
        if method == "GET" and (match := re.fullmatch(r"/api/folders/([^/]+)", path)):
            folder = self.folders.get(match.group(1))
            return (200, {}, folder) if folder else (404, {}, {"message": "folder not found"})
        if method == "POST" and path == "/api/folders":
            return self._new_folder(sent)
        if method == "POST" and path == "/api/dashboards/db":
            return self._save(sent)
        return 404, {}, {"message": "Not found"}

    def _new_folder(self, sent: Any) -> tuple[int, dict, Any]:
        if not isinstance(sent, dict) or not sent.get("title"):
            return 400, {}, {"message": "folder title cannot be empty"}
        uid = sent.get("uid") or f"f{len(self.folders)}"
        if uid in self.folders:
            return 409, {}, {"message": "a folder with the same uid already exists"}
        if any(folder["title"] == sent["title"] for folder in self.folders.values()):
            return 409, {}, {"message": "a folder with the same name already exists"}
        self.folders[uid] = {"id": len(self.folders) + 1, "uid": uid, "title": sent["title"]}
        return 200, {}, self.folders[uid]

    def _save(self, sent: Any) -> tuple[int, dict, Any]:
        board = sent.get("dashboard") if isinstance(sent, dict) else None
        if not isinstance(board, dict) or not str(board.get("title") or "").strip():
            return 400, {}, {"message": "Dashboard title cannot be empty"}
        uid = str(board.get("uid") or f"gen{len(self.dashboards)}")
        if len(uid) > UID_MAX:
            return 400, {}, {"message": "uid too long, max 40 characters"}
        folder = sent.get("folderUid") or ""
        if folder and folder not in self.folders:
            return 400, {}, {"message": "folder not found"}
        overwrite = bool(sent.get("overwrite"))
        for other_uid, other in self.dashboards.items():
            same_place = other["folderUid"] == folder and other["dashboard"]["title"] == board["title"]
            if other_uid != uid and same_place and not overwrite:
                return (
                    412,
                    {},
                    {
                        "message": "A dashboard with the same name in the folder already exists",
                        "status": "name-exists",
                    },
                )
        existing = self.dashboards.get(uid)
        if existing and not overwrite and board.get("version") != existing["version"]:
            return (
                412,
                {},
                {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"},
            )
        version = existing["version"] + 1 if existing else 1
        number = existing["id"] if existing else len(self.dashboards) + 1
        slug = re.sub(r"[^a-z0-9]+", "-", board["title"].lower()).strip("-")
        self.dashboards[uid] = {"dashboard": board, "folderUid": folder, "version": version, "id": number}
        return (
            200,
            {},
            {
                "id": number,
                "uid": uid,
                "url": f"/d/{uid}/{slug}",
                "status": "success",
                "version": version,
                "slug": slug,
            },
        )


class FakePrometheusQuery(_Service):
    token = PROMETHEUS_TOKEN

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.bad: set[str] = set()

    def route(self, method: str, path: str, query: dict[str, list[str]], sent: Any) -> tuple[int, dict, Any]:
        if path != "/api/v1/query" or method not in ("GET", "POST"):
            return 404, {}, {"status": "error", "errorType": "not_found", "error": "not found"}
        expr = (query.get("query") or [""])[0]
        if not expr or expr in self.bad:
            return 400, {}, {"status": "error", "errorType": "bad_data", "error": f"parse error in {expr!r}"}
        at = float((query.get("time") or [time.time()])[0])
        result = [{"metric": labels, "value": [at, sample_text(value)]} for labels, value in self._rows(expr)]
        return 200, {}, {"status": "success", "data": {"resultType": "vector", "result": result}}

    def _rows(self, expr: str) -> list[tuple[dict[str, str], float]]:
        return [(row["metric"], row["value"]) for row in self.results.get(expr, [])]


def sample_text(value: float | str) -> str:
    """A sample value as Prometheus writes it: a quoted string (its HTTP API, "Expression query result
    formats": JSON has no NaN or Inf, so values travel as strings), formatted by Go's strconv (`NaN`,
    `+Inf`, `-Inf`; shortest decimal otherwise). A string is sent as given."""
    if isinstance(value, str):
        return value
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(number).removesuffix(".0") if number.is_integer() else repr(number)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        service: _Service = self.server.service  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        status, extra, answer = service.handle(self.command, self.path, headers, body)
        if status == 0:  # stalled until the server stopped: say nothing
            self.close_connection = True
            return
        data = json.dumps(answer).encode() if answer is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class DataPlaneServer(LocalHttpsServer):
    """Serves a stand-in over HTTPS on 127.0.0.1 with a certificate from a throwaway CA (`ca`: one already
    trusted, e.g. the ARM fake's, so one REQUESTS_CA_BUNDLE serves both)."""

    def __init__(self, service: _Service, ca_dir: Path, ca: Any = None) -> None:
        self.service = service
        ca_path = ca_dir / f"{type(service).__name__.lower()}-ca.pem"
        super().__init__(_Handler, service, "service", ca_path, "fake-dataplane", ca)

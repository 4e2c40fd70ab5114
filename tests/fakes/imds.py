"""A loopback fake of the Azure Instance Metadata Service's managed-identity token endpoint.

IMDS is plain HTTP on 169.254.169.254 inside a VM; this serves the same path on 127.0.0.1 and answers
the way IMDS does (learn.microsoft.com/entra/identity/managed-identities-azure-resources/
how-to-use-vm-token#get-a-token-using-http, and the error table there):
  GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=<uri>&client_id=<id>
  header `Metadata: true` required (400 invalid_request without it); an unknown client_id is
  400 invalid_request "Identity not found"; success is 200 with access_token, expires_on (epoch
  seconds, as a string), resource and token_type. Faults: `fail_next` answers the next requests with a
  status (IMDS returns 429/5xx while busy; the docs ask callers to retry those).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN_PATH = "/metadata/identity/oauth2/token"


class FakeImds:
    def __init__(self, client_id: str, token: str) -> None:
        self.client_id = client_id
        self.token = token
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[tuple[int, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def handle(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append({"path": parts.path, "query": query, "headers": headers})
            if self.fail_next:
                return self.fail_next.pop(0)
        if parts.path != TOKEN_PATH:
            return 404, {"error": "not_found", "error_description": f"no route {parts.path}"}
        if headers.get("metadata") != "true":
            return 400, {
                "error": "invalid_request",
                "error_description": "Required metadata header not specified",
            }
        if "api-version" not in query or "resource" not in query:
            return 400, {"error": "invalid_request", "error_description": "Required query parameter missing"}
        if query.get("client_id", self.client_id) != self.client_id:
            return 400, {"error": "invalid_request", "error_description": "Identity not found"}
        expires = int(time.time()) + 86399
        return 200, {
            "access_token": self.token,
            "client_id": self.client_id,
            "expires_in": "86399",
            "expires_on": str(expires),
            "ext_expires_in": "86399",
            "not_before": str(expires - 86399),
            "resource": query["resource"],
            "token_type": "Bearer",
        }


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        fake: FakeImds = self.server.fake  # type: ignore[attr-defined]
        status, body = fake.handle(self.path, {k.lower(): v for k, v in self.headers.items()})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class FakeImdsServer:
    """Serves a FakeImds on http://127.0.0.1:<port> (IMDS itself is plain HTTP), or on `address` (e.g.
    169.254.169.254:80 inside a test's network namespace, where the Azure SDKs look for IMDS)."""

    def __init__(self, fake: FakeImds, address: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.fake = fake
        self.httpd = http.server.ThreadingHTTPServer(address, _Handler)
        self.httpd.daemon_threads = True
        self.httpd.fake = fake  # type: ignore[attr-defined]
        self.url = f"http://{address[0]}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeImdsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

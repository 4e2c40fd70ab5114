"""One HTTPS server on a free 127.0.0.1 port for the fakes (arm.py's FakeArmServer, dataplane.py's
DataPlaneServer): a certificate from a throwaway CA (trustme) whose PEM the client trusts
(REQUESTS_CA_BUNDLE), a thread serving it, and a stop that always ends the thread and frees the port."""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path
from typing import Any


class LocalHttpsServer:
    """Serves `handler` over HTTPS; `ca`: a CA already trusted (so one bundle serves two fakes), else new.

    `state` is the fake the handler reads (as `self.server.<attribute>`); it has a `stopped` event, set on
    exit so a request stalled on purpose ends."""

    def __init__(
        self,
        handler: type[http.server.BaseHTTPRequestHandler],
        state: Any,
        attribute: str,
        ca_path: Path,
        name: str,
        ca: Any = None,
    ) -> None:
        import trustme

        self.ca = ca or trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.ca_path = ca_path
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        setattr(self.httpd, attribute, state)
        self._state = state
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
        )

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._state.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

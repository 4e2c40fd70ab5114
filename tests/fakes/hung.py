"""A loopback endpoint that accepts connections and never answers: a hung Resource Manager (or a proxy,
firewall or load balancer that holds the connection open and forwards nothing).

`mode="tls"`: the TLS handshake completes (a certificate from a throwaway CA, as FakeArmServer's), the
request is read, and no byte of an answer is ever written; the client waits on its read timeout.
`mode="tcp"`: the TCP connection is accepted and nothing at all is said, not even the TLS handshake; the
client waits on its connect timeout. Connections stay open until the server closes.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path
from typing import Any


class HungServer:
    def __init__(self, ca_dir: Path, mode: str = "tls") -> None:
        import trustme

        self.mode = mode
        self.ca = trustme.CA()
        self.ca_path = ca_dir / "hung-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self._context)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.url = f"https://127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted = 0
        self.requests: list[bytes] = []  # the first bytes of each request read (tls mode)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hung-arm", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self._held.append(conn)
            if self.mode == "tls":
                threading.Thread(target=self._read_and_hold, args=(conn,), daemon=True).start()

    def _read_and_hold(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            tls = self._context.wrap_socket(conn, server_side=True)
            self._held.append(tls)
            self.requests.append(tls.recv(4096))
        except (OSError, ssl.SSLError):
            return

    def __enter__(self) -> HungServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._held:
            with contextlib.suppress(OSError):
                conn.close()
        self._listener.close()

"""Stand-ins for `az network bastion tunnel` and OpenSSH's `ssh`, for `azcluster ssh` tests.

Each is a small executable (put first on PATH) that appends its argv, as JSON, to a log beside it.

The fake `az` behaves as the Azure CLI's bastion extension does where azcluster depends on it
(Azure/azure-cli-extensions src/bastion/azext_bastion): `extension show --name bastion` exits non-zero
when the extension is missing; `network bastion tunnel ... --port P` binds localhost:P, logs "Tunnel is
ready, connect on port P" on stderr (knack's logger.warning, custom.py create_bastion_tunnel), serves
one connection at a time (tunnel.py TunnelServer._listen), outlives a client that hangs up mid-exchange
(_listen_to_client and _listen_to_web_socket log the error and close that connection) and exits on
Ctrl+C (SIGINT, its _tunnel_close_handler); an error (not signed in, resource not found) is an
`ERROR: ...` line and exit 1.
Each connection it carries is answered with an SSH identification line, as the login node's sshd would,
then with the first line the client sends (so a test sees bytes travel both ways), and is closed.

The fake `ssh` does what azcluster relies on OpenSSH for: it connects to `-p PORT` on the target (retrying
a refused connection ConnectionAttempts times, one second apart, as ssh.c ssh_connect_direct does), runs
a ProxyCommand with `/bin/sh -c "exec ..."` after expanding %h, %p and %% (sshconnect.c
ssh_proxy_connect), forwards stdio with -W, and exits with the status given in FAKE_SSH_EXIT.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BANNER = "SSH-2.0-OpenSSH_9.6 fake-login"

_AZ = r"""
import json, os, signal, socket, sys
LOG = {log!r}
args = sys.argv[1:]
with open(LOG, "a") as f:
    f.write(json.dumps(["az", *args]) + "\n")
if args[:2] == ["extension", "show"]:
    if {extension!r}:
        sys.exit(0)
    sys.stderr.write("ERROR: The extension bastion is not installed.\n")
    sys.exit(1)
if args[:3] != ["network", "bastion", "tunnel"]:
    sys.stderr.write("ERROR: fake az does not know: " + " ".join(args) + "\n")
    sys.exit(2)
if {fail!r}:
    sys.stderr.write({fail!r} + "\n")
    sys.exit(1)
port = int(args[args.index("--port") + 1])
def closed(signum, frame):
    with open(LOG, "a") as f:
        f.write(json.dumps(["tunnel-closed", signum]) + "\n")
    sys.exit(0)
signal.signal(signal.SIGINT, closed)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("localhost", port))
sock.listen(100)
sock.settimeout(120)  # a test's safety net only: never outlive a test that failed to stop it
sys.stderr.write(f"Opening tunnel on port: {{port}}\n")
sys.stderr.write(f"Tunnel is ready, connect on port {{port}}\nCtrl + C to close\n")
sys.stderr.flush()
while True:
    try:
        client, _ = sock.accept()
    except socket.timeout:
        sys.exit(3)
    client.settimeout(None)
    try:
        client.sendall(({banner!r} + "\r\n").encode())
        client.sendall(client.makefile("rb").readline())  # the client's first line, back: both ways
    except OSError:
        pass  # the client hung up first: the tunnel serves the next one, as the real one does
    client.close()
"""

_SSH = r"""
import json, os, socket, subprocess, sys, time
LOG = {log!r}
args = sys.argv[1:]
with open(LOG, "a") as f:
    f.write(json.dumps(["ssh", *args]) + "\n")
options, port, forward, rest = {{}}, 22, None, []
i = 0
while i < len(args):
    arg = args[i]
    if arg in ("-o", "-p", "-i", "-l", "-W", "-F", "-J"):
        value = args[i + 1]
        if arg == "-o":
            key, _, val = value.partition("=")
            options.setdefault(key.lower(), val)
        elif arg == "-p":
            port = int(value)
        elif arg == "-W":
            forward = value
        i += 2
    elif arg.startswith("-") and not rest:
        i += 1
    else:
        rest.append(arg)
        i += 1
host, command = rest[0], rest[1:]

def expand(template):
    out, j = [], 0
    while j < len(template):
        if template[j] == "%" and j + 1 < len(template):
            token = template[j + 1]
            out.append({{"h": host, "p": "22", "%": "%"}}[token])
            j += 2
        else:
            out.append(template[j])
            j += 1
    return "".join(out)

def dial(address, port):
    attempts = int(options.get("connectionattempts", "1"))
    for attempt in range(attempts):
        try:
            return socket.create_connection((address, port), timeout=10)
        except ConnectionRefusedError:
            if attempt + 1 == attempts:
                raise
            time.sleep(1)

def banner_from(conn):
    return conn.makefile("rb").readline().decode().strip()

if forward is not None:
    conn = dial(host, port)
    sys.stdout.write(banner_from(conn) + "\n")
    sys.stdout.flush()
    sys.exit(0)
if "proxycommand" in options:
    proxy = subprocess.run(["/bin/sh", "-c", "exec " + expand(options["proxycommand"])],
                           stdout=subprocess.PIPE, text=True)
    line = ["proxied", host, proxy.stdout.strip(), proxy.returncode]
else:
    conn = dial(host, port)
    line = ["connected", host, port, banner_from(conn)]
with open(LOG, "a") as f:
    f.write(json.dumps(line + [command]) + "\n")
sys.exit(int(os.environ.get("FAKE_SSH_EXIT", "0")))
"""


def _write(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(0o755)
    return path


def fake_az_bastion(directory: Path, *, extension: bool = True, fail: str = "") -> Path:
    """An `az` with (or without) the bastion extension; `fail` makes the tunnel print it and exit 1."""
    directory.mkdir(parents=True, exist_ok=True)
    body = _AZ.format(log=str(directory / "calls.log"), extension=extension, fail=fail, banner=BANNER)
    return _write(directory / "az", body)


def fake_ssh(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return _write(directory / "ssh", _SSH.format(log=str(directory / "calls.log")))


def calls(directory: Path) -> list[list]:
    log = directory / "calls.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]

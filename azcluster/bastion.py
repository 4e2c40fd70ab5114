"""`azcluster ssh`: a shell on the login node, or through it on a GPU node, over Azure Bastion.

Nodes never get public IPs; the way in is the cluster's Azure Bastion (Standard SKU with native-client
tunneling on, components/network.py). The Azure CLI's bastion extension opens that way:
`az network bastion tunnel --name B --resource-group G --target-resource-id VM --resource-port 22
--port P` listens on local port P and carries each connection to the VM's port 22
(https://learn.microsoft.com/azure/bastion/connect-vm-native-client-linux). azcluster starts it on a
free loopback port, waits for the line it logs when it listens ("Tunnel is ready, connect on port P",
azext_bastion/custom.py create_bastion_tunnel), runs the user's own OpenSSH client against that port,
and stops the tunnel (Ctrl+C, which it handles by closing its session) when ssh exits.

Why the tunnel rather than `az network bastion ssh`: that command also needs the ssh extension, turns
host-key checking off (`-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null`, ssh_bastion_host
in the same file) and cannot hop on to a second host. Here host keys are checked on first use and kept in
~/.azcluster/known_hosts, the login node's under a per-cluster alias (the tunnel's port changes, the node
does not), so a key that changes later is noticed. A GPU node is reached through the login node with a
ProxyCommand `ssh ... -W %h:%p` (what `-J` does, but carrying the same key and known-hosts options to
the hop, which `-J` would not), and the node's name is resolved inside the virtual network.

The tunnel serves one connection at a time (TunnelServer._listen accepts, serves, then accepts again),
so azcluster never probes its port: readiness is the log line, and ssh retries a refused connection
(ConnectionAttempts) for the moment between that line and the listen call.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from azcluster.components.spec import ClusterSpec

from . import sshkeys
from .errors import EXIT_MISSING_TOOL, EXIT_REFUSED, EXIT_USAGE, AzclusterError

READY = "Tunnel is ready"
"""What `az network bastion tunnel` logs (stderr) once it listens."""

TUNNEL_WAIT_S = 90.0
"""The tunnel first reads the Bastion resource from Azure; this long is a silent endpoint, not a slow one."""

NODE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})")
"""A host name or IPv4 address, never an ssh option: it goes on ssh's command line as the target."""

AZ_HINT = (
    "install the Azure CLI (https://learn.microsoft.com/cli/azure/install-azure-cli), sign in with "
    "`az login`, and add its bastion extension: `az extension add --name bastion`"
)


@dataclass(frozen=True)
class Target:
    """Where the tunnel goes: the cluster's Bastion and login VM, named as the components name them."""

    subscription: str
    resource_group: str
    bastion: str
    login_vm: str
    user: str
    alias: str  # the login node's HostKeyAlias in azcluster's known_hosts

    @property
    def login_vm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.login_vm}"
        )


def target_for(spec: ClusterSpec, stack: str, subscription: str) -> Target:
    """The Bastion and login VM of a cluster (exit 2 when the stack has neither, before any tool runs).

    Names as the components give them: `<cluster>-bastion` (network.py `_bastion`), `<cluster>-login`
    (login.py), both in the cluster's resource group (spec.resource_group_name), the same as the stack's
    `bastion_name` and `login_vm_id` outputs.
    """
    if not spec.login.enabled:
        raise AzclusterError(
            f"stack {stack!r} has no login node to connect to",
            "set `login: {enabled: true}` in the stack and run `azcluster up` again",
            EXIT_USAGE,
        )
    if not spec.network.bastion:
        raise AzclusterError(
            f"stack {stack!r} has no Azure Bastion (network.bastion is false)",
            "connect to the login node's private IP (`azcluster status` shows it) from a network peered "
            "with the cluster's, or set `network.bastion: true` and run `azcluster up`",
            EXIT_USAGE,
        )
    return Target(
        subscription=subscription,
        resource_group=spec.resource_group_name,
        bastion=f"{spec.name}-bastion",
        login_vm=f"{spec.name}-login",
        user=spec.ssh.admin_username,
        alias=f"{spec.name}-login.azcluster",
    )


def check_node(node: str) -> str:
    if not NODE_NAME.fullmatch(node):
        raise AzclusterError(
            f"--node {node!r} is not a host name or IP address",
            "give a node's host name (`azcluster status` lists them) or its private IP",
            EXIT_USAGE,
        )
    return node


def require_tools(need_ssh: bool = True) -> tuple[str, str]:
    """(az, ssh) executables; exit 3 naming what is missing: the Azure CLI, its bastion extension, ssh."""
    az = shutil.which("az")
    if az is None:
        raise AzclusterError("the Azure CLI (`az`) is not on PATH", AZ_HINT, EXIT_MISSING_TOOL)
    try:
        found = subprocess.run(
            [az, "extension", "show", "--name", "bastion", "--output", "none"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        raise AzclusterError(
            "`az extension show --name bastion` did not answer within 60 s", AZ_HINT, EXIT_MISSING_TOOL
        ) from None
    if found.returncode != 0:
        raise AzclusterError(
            "the Azure CLI's bastion extension is not installed",
            "run `az extension add --name bastion` (Azure CLI 2.32 or later)",
            EXIT_MISSING_TOOL,
        )
    ssh = shutil.which("ssh") or ""
    if need_ssh and not ssh:
        raise AzclusterError(
            "the OpenSSH client (`ssh`) is not on PATH",
            "install it (Debian/Ubuntu: `apt install openssh-client`; macOS and Windows 10+ include it)",
            EXIT_MISSING_TOOL,
        )
    return az, ssh


def identity_for(spec: ClusterSpec) -> Path | None:
    """The private key whose public half the cluster trusts: azcluster's own, then ~/.ssh's defaults.

    None when none matches: ssh then uses its own defaults and the user's agent, as plain `ssh` would.
    """
    trusted = {_key_body(text) for text in spec.ssh.public_keys}
    candidates = [sshkeys.azcluster_key(), *(Path(p).expanduser().with_suffix("") for p in sshkeys.USER_KEYS)]
    for private in candidates:
        public = private.with_name(private.name + ".pub")
        if private.is_file() and public.is_file():
            try:
                if _key_body(public.read_text(encoding="utf-8")) in trusted:
                    return private
            except (OSError, UnicodeDecodeError):
                continue
    return None


def _key_body(text: str) -> str:
    """`type base64` of an OpenSSH public key line: what identifies the key, without its comment."""
    return " ".join(text.split()[:2])


def ssh_command(
    ssh: str,
    target: Target,
    port: int,
    identity: Path | None,
    node: str | None,
    remote: Sequence[str] = (),
) -> list[str]:
    """The ssh argv: to the login node through the local tunnel port, or on through it to `node`."""
    known_hosts = sshkeys.azcluster_home() / "known_hosts"
    common = [
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-o",
        "IdentitiesOnly=yes" if identity else "IdentitiesOnly=no",
    ]
    if identity:
        common += ["-i", str(identity)]
    hop = [
        ssh,
        *common,
        "-o",
        f"HostKeyAlias={target.alias}",
        "-o",
        "ConnectionAttempts=5",
        "-p",
        str(port),
        "-l",
        target.user,
    ]
    if node is None:
        return [*hop, "127.0.0.1", *remote]
    # ssh runs a ProxyCommand with /bin/sh after expanding %-tokens: quote for the shell, then escape %.
    # `-W '[%h]:%p'` is what OpenSSH itself builds for ProxyJump (ssh.c), brackets for IPv6 addresses.
    proxy = " ".join(shlex.quote(arg).replace("%", "%%") for arg in [*hop, "-W", "[%h]:%p", "127.0.0.1"])
    proxy = proxy.replace("[%%h]:%%p", "[%h]:%p")
    return [ssh, *common, "-o", f"ProxyCommand={proxy}", "-l", target.user, node, *remote]


def tunnel_command(az: str, target: Target, port: int) -> list[str]:
    return [
        az,
        "network",
        "bastion",
        "tunnel",
        "--name",
        target.bastion,
        "--resource-group",
        target.resource_group,
        "--target-resource-id",
        target.login_vm_id,
        "--resource-port",
        "22",
        "--port",
        str(port),
        "--subscription",
        target.subscription,
    ]


def free_port() -> int:
    """A loopback port nobody listens on now (the tunnel refuses a port in use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(
    spec: ClusterSpec,
    stack: str,
    *,
    subscription: str | None = None,
    node: str | None = None,
    identity: Path | None = None,
    remote: Sequence[str] = (),
    wait_s: float = TUNNEL_WAIT_S,
) -> int:
    """Open the tunnel, run ssh in this terminal, close the tunnel; ssh's exit status is returned."""
    from . import azure

    if node is not None:
        check_node(node)
    target = target_for(spec, stack, azure.resolve_subscription(subscription)[0])
    az, ssh = require_tools()
    key = identity.expanduser() if identity else identity_for(spec)
    if key is not None and not key.is_file():
        raise AzclusterError(
            f"--identity {identity}: no such file", "give the private key's path", EXIT_USAGE
        )
    try:
        with tunnel_open(az, target, stack, wait_s) as tunnel, tunnel.waiting():
            return subprocess.call(ssh_command(ssh, target, tunnel.port, key, node, remote))
    except Hangup as stopped:
        return 128 + stopped.signum  # the terminal went away; the tunnel is stopped


def proxy(
    spec: ClusterSpec,
    stack: str,
    *,
    subscription: str | None = None,
    wait_s: float = TUNNEL_WAIT_S,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> None:
    """Be an ssh ProxyCommand: open the tunnel and carry this process's stdin and stdout through it.

    What `ssh_config` (below) runs for the login node, so plain `ssh`, `scp`, `rsync` and editors' remote
    extensions reach it; nothing but the connection's bytes goes to stdout.
    """
    from . import azure

    target = target_for(spec, stack, azure.resolve_subscription(subscription)[0])
    az, _ = require_tools(need_ssh=False)
    try:
        with tunnel_open(az, target, stack, wait_s, quiet=True) as tunnel:
            connection = _dial(tunnel.port)
            with tunnel.waiting():
                _relay(connection, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)
    except Hangup:
        return  # ssh ended the connection: the tunnel is stopped, nothing to report


def _dial(port: int, attempts: int = 5) -> socket.socket:
    """Connect to the tunnel, retrying a refused connection as ssh's ConnectionAttempts would."""
    for attempt in range(attempts):
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=30)
        except ConnectionRefusedError:
            if attempt + 1 == attempts:
                raise AzclusterError(
                    f"the Azure Bastion tunnel on port {port} refused the connection", "retry", EXIT_REFUSED
                ) from None
            time.sleep(1)
    raise AssertionError("unreachable")  # pragma: no cover


def _relay(sock: socket.socket, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Bytes both ways until the far side closes; our stdin's end is passed on as a half-close."""
    sock.settimeout(None)

    def upstream() -> None:
        try:
            while chunk := _read_some(stdin):
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    sender = threading.Thread(target=upstream, daemon=True)
    sender.start()
    with sock:
        while chunk := sock.recv(65536):
            stdout.write(chunk)
            stdout.flush()


def _read_some(stream: BinaryIO) -> bytes:
    """What is there now (up to 64 KiB), not a full buffer: an interactive session sends a key at a time.

    A real stdin is read at its file descriptor: a thread blocked in a buffered reader holds the reader's
    lock, and Python aborts at exit when a daemon thread holds it ("could not acquire lock ... at
    interpreter shutdown").
    """
    try:
        return os.read(stream.fileno(), 65536)
    except (AttributeError, OSError, ValueError):  # not a file (tests hand in BytesIO)
        read1 = getattr(stream, "read1", None)
        return read1(65536) if read1 else stream.read(65536)


class Hangup(Exception):
    """SIGHUP or SIGTERM arrived while a tunnel was open."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class _Hangups:
    """SIGHUP and SIGTERM while a tunnel is open: raised as Hangup only inside `waiting()`, remembered
    everywhere else.

    ssh ends its ProxyCommand with SIGHUP when the connection is over (OpenSSH sshconnect.c,
    kill_proxy_command), and a closed terminal sends the same; without a handler the process would die on
    the spot and leave `az network bastion tunnel`, in its own session, running with its Bastion session.
    But an exception raised wherever the signal lands can land in the tunnel's stop, or in contextlib
    between the block and the `finally` that stops it: ssh closes the pipes and sends SIGHUP in the same
    moment, so that happened (the tunnel stayed up; tests/azcluster/test_ssh.py). So the signal interrupts
    only the waits for ssh or the connection, and the tunnel's own code checks `arrived`.
    """

    def __init__(self) -> None:
        self.arrived: int | None = None
        self._armed = False

    def _handle(self, signum: int, _frame: object) -> None:
        self.arrived = self.arrived or signum
        if self._armed:
            self._armed = False
            raise Hangup(signum)

    def check(self) -> None:
        if self.arrived is not None:
            raise Hangup(self.arrived)

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """A blocking wait (ssh, the relay) that a hangup ends by raising Hangup."""
        self.check()
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # handlers are the main thread's
            yield
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGHUP, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class Tunnel:
    """An open tunnel: its loopback port, and `waiting()` for the blocking wait a hangup should end."""

    port: int
    hangups: _Hangups

    def waiting(self) -> AbstractContextManager[None]:
        return self.hangups.waiting()


@contextmanager
def tunnel_open(az: str, target: Target, stack: str, wait_s: float, quiet: bool = False) -> Iterator[Tunnel]:
    """`az network bastion tunnel` on a free loopback port, ready; stopped (Ctrl+C) when the block ends.
    A hangup (SIGHUP, SIGTERM) ends `Tunnel.waiting()` blocks, or the block after it, with Hangup."""
    from . import render

    port = free_port()
    hangups = _Hangups()
    with hangups.installed(), tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as log:
        tunnel = subprocess.Popen(
            tunnel_command(az, target, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # the terminal's Ctrl+C goes to ssh, not to the tunnel under it
        )
        try:
            if not quiet:
                render.console.print(
                    render.markup(
                        "[dim]opening Azure Bastion tunnel {} -> {} (port {})[/]",
                        target.bastion,
                        target.login_vm,
                        port,
                    ),
                    soft_wrap=True,
                )
            _wait_ready(tunnel, log, target, stack, wait_s, hangups)
            yield Tunnel(port, hangups)
        finally:
            _stop(tunnel)
        hangups.check()  # one that came after the last wait: the caller still hears of it


def ssh_config(spec: ClusterSpec, stack_file: Path, command: Sequence[str]) -> str:
    """An ssh_config block: `ssh <cluster>-login` through `azcluster ssh --proxy`, nodes through it.

    `command` is how to run azcluster (an absolute path), so the entry works from any directory. Node host
    names are `<computer name prefix><instance>` per island (bootstrap.computer_name_prefix), hence one
    pattern per island; they resolve inside the virtual network, on the login node's side of the hop.
    """
    from azcluster.components.bootstrap import computer_name_prefix

    key = identity_for(spec)
    known_hosts = sshkeys.azcluster_home() / "known_hosts"
    user = spec.ssh.admin_username
    login = f"{spec.name}-login"
    proxy = " ".join(shlex.quote(arg) for arg in [*command, "ssh", str(stack_file), "--proxy"])
    common = [
        f"  User {user}",
        f"  UserKnownHostsFile {_config_word(str(known_hosts))}",
        "  StrictHostKeyChecking accept-new",
    ]
    if key is not None:
        common += [f"  IdentityFile {_config_word(str(key))}", "  IdentitiesOnly yes"]
    patterns = [
        f"{computer_name_prefix(spec.name, pool.name, index)}*"
        for pool in spec.pools
        for index in range(len(pool.island_sizes()))
    ]
    lines = [
        f"# azcluster stack {spec.name}: `ssh {login}`, and GPU nodes by host name through it.",
        f"Host {login}",
        f"  HostKeyAlias {login}.azcluster",
        f"  ProxyCommand {proxy.replace('%', '%%')}",
        *common,
    ]
    if patterns:
        lines += [f"Host {' '.join(patterns)}", f"  ProxyJump {login}", *common]
    return "\n".join(lines) + "\n"


def _config_word(value: str) -> str:
    """A path as one ssh_config argument (double-quoted when it holds a space)."""
    return f'"{value}"' if any(c.isspace() for c in value) else value


def _wait_ready(
    tunnel: subprocess.Popen, log, target: Target, stack: str, wait_s: float, hangups: _Hangups
) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        hangups.check()
        log.seek(0)
        text = log.read()
        if READY in text:
            return
        if tunnel.poll() is not None:
            raise AzclusterError(
                f"the Azure Bastion tunnel to {target.login_vm} stopped: {_last_error(text)}",
                _tunnel_hint(text, target, stack),
                EXIT_MISSING_TOOL if "az login" in text else EXIT_REFUSED,
            )
        time.sleep(0.1)
    raise AzclusterError(
        f"the Azure Bastion tunnel to {target.login_vm} was not ready after {wait_s:.0f} s",
        f"check that `{target.bastion}` exists and is running (`azcluster status {stack}`), then retry",
        EXIT_REFUSED,
    )


def _last_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["it exited without a message"])[-1]


def _tunnel_hint(text: str, target: Target, stack: str) -> str:
    if "az login" in text:
        return "sign in with `az login` (and `az account set --subscription ID`), then retry"
    if "ResourceNotFound" in text or "was not found" in text:
        return (
            f"`{target.bastion}` or `{target.login_vm}` is not in resource group {target.resource_group} of "
            f"subscription {target.subscription}: is the cluster deployed (`azcluster up {stack}`)?"
        )
    return "the line above is the Azure CLI's own message; `az network bastion tunnel --help` explains it"


def _stop(tunnel: subprocess.Popen) -> None:
    """Ctrl+C first (the tunnel then deletes its Bastion session), then a kill if it lingers."""
    if tunnel.poll() is not None:
        return
    try:
        tunnel.send_signal(signal.SIGINT)
        tunnel.wait(timeout=10)
    except subprocess.TimeoutExpired:
        tunnel.kill()
        tunnel.wait(timeout=10)
    except ProcessLookupError:  # pragma: no cover - it ended between poll and signal
        pass

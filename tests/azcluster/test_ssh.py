"""`azcluster ssh`: the login node (and a node through it) over an Azure Bastion tunnel, with stand-in
`az` and `ssh` executables (tests/fakes/bastion.py) that behave as the real ones do where it matters."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from azcluster import bastion
from tests.clirunner import run_cli
from tests.fakes.bastion import BANNER, calls, fake_az_bastion, fake_ssh

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A signed-in user, a stack made by `init` (so with azcluster's own key), fake az and ssh on PATH."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AZCLUSTER_STACKS_DIR", str(tmp_path / "stacks"))
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB)
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(tmp_path / "azure-config"))
    assert run_cli("init", "lab").exit_code == 0
    bin_dir = tmp_path / "bin"
    fake_ssh(bin_dir)
    fake_az_bastion(bin_dir)
    monkeypatch.setenv("PATH", str(bin_dir))
    return tmp_path, home, bin_dir


def _tunnel(bin_dir):
    return next(c for c in calls(bin_dir) if c[:4] == ["az", "network", "bastion", "tunnel"])


def _arg(argv, flag):
    return argv[argv.index(flag) + 1]


def test_ssh_opens_the_tunnel_runs_ssh_through_it_and_closes_it(env):
    _, home, bin_dir = env
    result = run_cli("ssh", "lab")
    assert result.exit_code == 0, result.output
    tunnel = _tunnel(bin_dir)
    assert _arg(tunnel, "--name") == "lab-bastion"
    assert _arg(tunnel, "--resource-group") == "lab-rg"
    assert _arg(tunnel, "--target-resource-id") == (
        f"/subscriptions/{SUB}/resourceGroups/lab-rg/providers/Microsoft.Compute/virtualMachines/lab-login"
    )
    assert _arg(tunnel, "--resource-port") == "22" and _arg(tunnel, "--subscription") == SUB
    port = int(_arg(tunnel, "--port"))
    ssh = next(c for c in calls(bin_dir) if c[0] == "ssh")
    assert _arg(ssh, "-p") == str(port) and _arg(ssh, "-l") == "azureuser" and ssh[-1] == "127.0.0.1"
    assert _arg(ssh, "-i") == str(home / ".azcluster" / "ssh" / "id_ed25519")  # the key init made
    assert "StrictHostKeyChecking=accept-new" in ssh and "HostKeyAlias=lab-login.azcluster" in ssh
    assert f"UserKnownHostsFile={home / '.azcluster' / 'known_hosts'}" in ssh
    log = calls(bin_dir)
    assert ["connected", "127.0.0.1", port, BANNER, []] in log  # ssh reached the login node's sshd
    assert log[-1][0] == "tunnel-closed"  # stopped with Ctrl+C after ssh ended, so it ends its session


def test_ssh_to_a_node_hops_through_the_login_node(env):
    _, _, bin_dir = env
    result = run_cli("ssh", "lab", "--node", "lab-gpu-i0-000001", "--", "nvidia-smi", "-L")
    assert result.exit_code == 0, result.output
    ssh = next(c for c in calls(bin_dir) if c[0] == "ssh")
    assert ssh[-3:] == ["lab-gpu-i0-000001", "nvidia-smi", "-L"]
    proxy = next(arg for arg in ssh if arg.startswith("ProxyCommand="))
    words = shlex.split(proxy.removeprefix("ProxyCommand="))
    assert words[-3:] == ["-W", "[%h]:%p", "127.0.0.1"] and "HostKeyAlias=lab-login.azcluster" in words
    # The ProxyCommand really ran (through /bin/sh, as ssh runs it) and reached the login node.
    assert ["proxied", "lab-gpu-i0-000001", BANNER, 0, ["nvidia-smi", "-L"]] in calls(bin_dir)


def test_ssh_exits_with_ssh_status(env, monkeypatch):
    monkeypatch.setenv("FAKE_SSH_EXIT", "7")
    assert run_cli("ssh", "lab").exit_code == 7


def test_without_the_azure_cli_it_says_what_to_install(env, monkeypatch):
    tmp_path, _, bin_dir = env
    (bin_dir / "az").unlink()
    result = run_cli("ssh", "lab")
    assert result.exit_code == 3
    assert "Azure CLI" in result.stderr and "az extension add --name bastion" in result.stderr


def test_without_the_bastion_extension_it_says_how_to_add_it(env):
    _, _, bin_dir = env
    fake_az_bastion(bin_dir, extension=False)
    result = run_cli("ssh", "lab")
    assert result.exit_code == 3 and "az extension add --name bastion" in result.stderr
    assert not any(c[:3] == ["az", "network", "bastion"] for c in calls(bin_dir))


def test_without_ssh_it_says_so(env):
    _, _, bin_dir = env
    (bin_dir / "ssh").unlink()
    result = run_cli("ssh", "lab")
    assert result.exit_code == 3 and "OpenSSH" in result.stderr


@pytest.mark.parametrize(
    ("message", "code", "hint"),
    [
        ("ERROR: Please run 'az login' to setup account.", 3, "az login"),
        (
            "ERROR: (ResourceNotFound) The Resource 'Microsoft.Network/bastionHosts/lab-bastion' under "
            "resource group 'lab-rg' was not found.",
            1,
            "azcluster up lab",
        ),
    ],
)
def test_a_tunnel_that_fails_is_named_with_azures_message(env, message, code, hint):
    _, _, bin_dir = env
    fake_az_bastion(bin_dir, fail=message)
    result = run_cli("ssh", "lab")
    assert result.exit_code == code
    assert message in " ".join(result.stderr.split()) and hint in result.stderr
    assert not any(c[0] == "ssh" for c in calls(bin_dir))


def test_a_node_name_cannot_become_an_ssh_option(env):
    _, _, bin_dir = env
    result = run_cli("ssh", "lab", "--node", "-oProxyCommand=touch /tmp/pwned")
    assert result.exit_code == 2 and "not a host name" in result.stderr
    assert calls(bin_dir) == []


def test_a_stack_without_bastion_is_a_usage_error(env):
    tmp_path, _, bin_dir = env
    path = tmp_path / "stacks" / "Pulumi.lab.yaml"
    path.write_text(path.read_text().replace("bastion: true", "bastion: false"))
    result = run_cli("ssh", "lab")
    assert result.exit_code == 2 and "no Azure Bastion" in result.stderr
    assert calls(bin_dir) == []


def test_proxy_carries_stdin_and_stdout_through_the_tunnel(env):
    _, _, bin_dir = env
    result = run_cli("ssh", "lab", "--proxy", input="SSH-2.0-client\r\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == f"{BANNER}\r\nSSH-2.0-client\r\n".encode()
    assert calls(bin_dir)[-1][0] == "tunnel-closed"


def _config(tmp_path) -> Path:
    result = run_cli("ssh", "lab", "--config")
    assert result.exit_code == 0, result.output
    path = tmp_path / "ssh_config"
    path.write_text(result.stdout)
    return path


def test_config_is_an_ssh_config_openssh_reads(env, monkeypatch):
    tmp_path, home, bin_dir = env
    config = _config(tmp_path)
    real_ssh = shutil.which("ssh", path=os.defpath + ":/usr/bin:/usr/local/bin")
    if real_ssh is None:
        pytest.skip("needs OpenSSH's ssh to read the config (ssh -G)")
    node = subprocess.run(
        [real_ssh, "-G", "-F", str(config), "lab-gpu-i0-00000a"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert "proxyjump lab-login" in node and "user azureuser" in node
    assert f"identityfile {home / '.azcluster' / 'ssh' / 'id_ed25519'}" in node
    login = subprocess.run(
        [real_ssh, "-G", "-F", str(config), "lab-login"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    proxy = next(line for line in login if line.startswith("proxycommand "))
    assert proxy.endswith(f"ssh {tmp_path / 'stacks' / 'Pulumi.lab.yaml'} --proxy")
    assert "hostkeyalias lab-login.azcluster" in login


def test_real_openssh_reaches_the_login_node_through_the_config(env, monkeypatch):
    """OpenSSH itself runs the entry's ProxyCommand (azcluster ssh --proxy) and hears the login node."""
    tmp_path, _, bin_dir = env
    real_ssh = shutil.which("ssh", path="/usr/bin:/usr/local/bin:/bin")
    if real_ssh is None:
        pytest.skip("needs OpenSSH's ssh")
    config = _config(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")  # fake az first; real ssh and sh after
    done = subprocess.run(
        [
            real_ssh,
            "-v",
            "-F",
            str(config),
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=20",
            "lab-login",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # The fake login node is not a full sshd, so ssh stops after the identification exchange.
    assert "remote software version OpenSSH_9.6 fake-login" in done.stderr, done.stderr
    assert any(call[:4] == ["az", "network", "bastion", "tunnel"] for call in calls(bin_dir))
    # ssh sends its ProxyCommand SIGHUP as it exits and does not wait for it (OpenSSH sshconnect.c
    # kill_proxy_command), so the tunnel closes a moment after ssh has returned: wait for it, bounded.
    deadline = time.monotonic() + 30
    while calls(bin_dir)[-1][0] != "tunnel-closed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert calls(bin_dir)[-1][0] == "tunnel-closed"


def test_a_hangup_while_the_tunnel_is_being_stopped_still_stops_it(env, monkeypatch):
    """ssh closes the proxy's pipes and sends it SIGHUP in the same moment, so the hangup may land after the
    relay, in contextlib or in the stop itself; raised there, it cut the stop short and the tunnel stayed
    up (under load, ~1 run in 5 of the real-OpenSSH test above, between the relay and the `finally`).
    Here it is made to land inside the stop, the one window a test can hit every time."""
    _, _, bin_dir = env
    stop = bastion._stop

    def hangup_then_stop(tunnel):
        os.kill(os.getpid(), signal.SIGHUP)  # handled at the next bytecode: before the Ctrl+C is sent
        stop(tunnel)

    monkeypatch.setattr(bastion, "_stop", hangup_then_stop)
    result = run_cli("ssh", "lab", "--proxy", input="SSH-2.0-client\r\n")
    assert result.exit_code == 0, result.stderr
    assert calls(bin_dir)[-1][0] == "tunnel-closed"


def test_a_proxy_ended_by_ssh_stops_its_tunnel(env):
    """ssh ends its ProxyCommand with SIGHUP (OpenSSH sshconnect.c kill_proxy_command): the tunnel too."""
    _, _, bin_dir = env
    proxy = subprocess.Popen(
        [sys.executable, "-m", "azcluster", "ssh", "lab", "--proxy"],
        stdin=subprocess.PIPE,  # kept open: the connection stays up until the signal
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )
    try:
        assert proxy.stdout is not None
        assert proxy.stdout.readline().decode().strip() == BANNER  # connected through the tunnel
        proxy.send_signal(signal.SIGHUP)
        assert proxy.wait(timeout=60) == 0
    finally:
        if proxy.poll() is None:
            proxy.kill()
    assert calls(bin_dir)[-1][0] == "tunnel-closed"

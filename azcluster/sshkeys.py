"""The SSH key a new stack trusts: the user's own, else a key pair azcluster makes once and keeps.

On a machine with no `~/.ssh/*.pub`, `init` used to write `public_keys: []` and the next step failed.
SkyPilot's answer is to generate a key pair the first time it needs one and keep it in its own
directory (`~/.sky/...`); azcluster does the same: an ed25519 pair in ~/.azcluster/ssh, private key mode
0600 in a 0700 directory, in OpenSSH format so `ssh -i` reads it. Azure accepts ssh-rsa and ssh-ed25519
keys for Linux VMs (https://learn.microsoft.com/azure/virtual-machines/linux/create-ssh-keys-detailed).
Keys come from the `cryptography` package (already a dependency of azure-identity), so no `ssh-keygen`
is needed. An existing key is never overwritten: files are created with O_EXCL.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EXIT_USAGE, AzclusterError

USER_KEYS = ("~/.ssh/id_ed25519.pub", "~/.ssh/id_rsa.pub")
"""The user's own public keys, in the order `init` prefers them (OpenSSH's default names)."""


def azcluster_home() -> Path:
    """~/.azcluster: state, passphrase and azcluster's own SSH key live here."""
    return Path("~/.azcluster").expanduser()


def azcluster_key() -> Path:
    """The private key azcluster makes when the user has none; its public key is beside it (.pub)."""
    return azcluster_home() / "ssh" / "id_ed25519"


@dataclass(frozen=True)
class KeyChoice:
    """The public key a stack will trust, where it came from, and whether azcluster just made it."""

    text: str
    path: Path
    created: bool = False


def read_public_key(path: Path) -> str:
    """The first line of a .pub file; an unreadable or empty file is bad input (exit 2)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise AzclusterError(
            f"cannot read SSH public key {path}: {err}", "give the path of a .pub file", EXIT_USAGE
        ) from None
    if not text:
        raise AzclusterError(f"SSH public key {path} is empty", "give the path of a .pub file", EXIT_USAGE)
    return text.splitlines()[0].strip()


def existing_key() -> KeyChoice | None:
    """The user's own key if there is one, else the key azcluster made earlier, else None."""
    for candidate in (*USER_KEYS, f"{azcluster_key()}.pub"):
        path = Path(candidate).expanduser()
        if path.is_file():
            return KeyChoice(read_public_key(path), path)
    return None


@dataclass(frozen=True)
class NewKeyPair:
    """A key pair made in memory; nothing is on disk until `save` (init saves it only once it writes)."""

    private_bytes: bytes = field(repr=False)
    public_text: str


def new_key_pair() -> NewKeyPair:
    """A fresh ed25519 pair: private key in OpenSSH format, public key as one `.pub` line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return NewKeyPair(
        private_bytes, f"{public.decode('ascii')} azcluster@{socket.gethostname() or 'localhost'}"
    )


def save(pair: NewKeyPair, private: Path) -> KeyChoice:
    """Write `pair` at `private` (0600) and `private`.pub (0644) in a 0700 directory; replaces nothing."""
    public = private.with_name(private.name + ".pub")
    for path in (private, public):
        if path.exists():
            raise AzclusterError(
                f"{path} already exists",
                f"give a public key with --ssh-key, or move {path} away so azcluster can make a new pair",
                EXIT_USAGE,
            )
    _private_dir(private.parent)
    _create(private, pair.private_bytes, 0o600)
    _create(public, (pair.public_text + "\n").encode("ascii"), 0o644)
    return KeyChoice(pair.public_text, public, created=True)


def _private_dir(directory: Path) -> None:
    """Create ~/.azcluster and `directory` as 0700 when missing; existing ones are left as they are."""
    for path in (azcluster_home(), directory):
        if not path.exists():
            path.mkdir(mode=0o700, parents=True)
            os.chmod(path, 0o700)  # mkdir's mode is masked by the umask


def _create(path: Path, data: bytes, mode: int) -> None:
    """Create a new file with `mode` from the start (never a moment world-readable), never replacing one."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(descriptor, data)
    finally:
        os.close(descriptor)
    os.chmod(path, mode)

"""Access (AZC043-AZC048): the admin user name and the SSH public keys Azure will install."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..spec import ClusterSpec
from .common import at, preview
from .registry import Problem, rule
from .sshkey import SSH_KEY_TYPES_AZURE_ACCEPTS, SshKeyError, SshPublicKey, parse_ssh_public_key

RESERVED_ADMIN_USERNAMES = frozenset(
    {
        "administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1", "123",
        "a", "actuser", "adm", "admin2", "aspnet", "backup", "console", "david", "guest", "john", "owner",
        "root", "server", "sql", "support", "support_388945a0", "sys", "test2", "test3", "user4", "user5",
    }
)  # fmt: skip
ADMIN_USERNAME_MAX = 64
ADMIN_USERNAME_FORBIDDEN = re.compile(r'[\\/"\[\]:|<>+=;,?*@#()!A-Z\s]')


@rule("AZC043", "error", "admin-username-reserved", "The admin user name is one Azure refuses")
def admin_username_reserved(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses these admin user names (osProfile.adminUsername "Disallowed values").

    Source: https://learn.microsoft.com/rest/api/compute/virtual-machines/create-or-update#osprofile
    """
    username = spec.ssh.admin_username
    if username.lower() in RESERVED_ADMIN_USERNAMES:
        yield (
            at("ssh.admin_username"),
            f"admin user name {username!r} is on Azure's list of disallowed names.",
            "Use another name, e.g. azureuser (the default).",
        )


@rule(
    "AZC044",
    "error",
    "admin-username-invalid",
    "The admin user name has characters or a length Azure refuses",
)
def admin_username_invalid(spec: ClusterSpec) -> Iterator[Problem]:
    """A Linux admin user name is 1-64 characters, with no upper-case letters, blanks or \\/"[]:|<>+=;,?*@#()!
    and not starting with $ or -.

    Sources: https://learn.microsoft.com/rest/api/compute/virtual-machines/create-or-update#osprofile
    (length) and Azure CLI's `_validate_admin_username`
    (https://github.com/Azure/azure-cli/blob/dev/src/azure-cli/azure/cli/command_modules/vm/_validators.py).
    """
    username = spec.ssh.admin_username
    problems = []
    if not username:
        problems.append("is empty")
    elif len(username) > ADMIN_USERNAME_MAX:
        problems.append(f"has {len(username)} characters (at most {ADMIN_USERNAME_MAX})")
    bad = sorted(set(ADMIN_USERNAME_FORBIDDEN.findall(username)))
    if bad:
        problems.append(f"contains {' '.join(repr(c) for c in bad)}")
    if username[:1] in ("$", "-"):
        problems.append(f"starts with {username[0]!r}")
    if problems:
        yield (
            at("ssh.admin_username"),
            f"admin user name {preview(username, 70)!r} {' and '.join(problems)}.",
            "Use lower-case letters, digits, '_' and '-', starting with a letter, e.g. azureuser.",
        )


def _parsed_keys(spec: ClusterSpec) -> Iterator[tuple[int, str, SshPublicKey | SshKeyError]]:
    for index, text in enumerate(spec.ssh.public_keys):
        try:
            yield index, text, parse_ssh_public_key(text)
        except SshKeyError as err:
            yield index, text, err


def _key_path(index: int) -> str:
    return at(f"ssh.public_keys[{index}]")


@rule("AZC045", "error", "no-ssh-key", "No SSH public key is given")
def no_ssh_key(spec: ClusterSpec) -> Iterator[Problem]:
    """Password authentication is always off, so without a public key nobody can log in to any node."""
    if not spec.ssh.public_keys:
        yield (
            at("ssh.public_keys"),
            "no SSH public key is given, and password login is off: nobody could log in.",
            "Add your key under `ssh.public_keys`, as text or a path such as ~/.ssh/id_ed25519.pub "
            "(`ssh-keygen -t ed25519` makes one).",
        )


@rule("AZC046", "error", "ssh-key-malformed", "An SSH public key is malformed")
def ssh_key_malformed(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure refuses malformed keys (InvalidParameter on linuxConfiguration.ssh.publicKeys.keyData), after
    the deployment has started; a pasted private key would be a secret in a stack file.
    """
    for index, text, parsed in _parsed_keys(spec):
        if isinstance(parsed, SshKeyError):
            if "PRIVATE KEY" in text:
                hint = (
                    "Never put a private key in a stack file: give the matching .pub file instead, and "
                    "replace the key if this file was shared."
                )
            else:
                hint = "Paste the whole line of the .pub file (`type base64 comment`), or give its path."
            yield (
                _key_path(index),
                f"SSH key {index + 1} ({preview(text)!r}) is not a valid public key: {parsed}.",
                hint,
            )


@rule("AZC047", "error", "ssh-key-type-unsupported", "An SSH key type Azure does not accept")
def ssh_key_type_unsupported(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure accepts RSA (at least 2048 bits) and Ed25519 public keys for Linux VMs; ECDSA, DSA and
    security-key (sk-) types are not supported.

    Source: https://learn.microsoft.com/azure/virtual-machines/linux/create-ssh-keys-detailed
    ("Supported SSH key formats").
    """
    for index, _text, parsed in _parsed_keys(spec):
        if isinstance(parsed, SshPublicKey) and parsed.type not in SSH_KEY_TYPES_AZURE_ACCEPTS:
            yield (
                _key_path(index),
                f"SSH key {index + 1} is a {parsed.type} key, which Azure does not accept for Linux VMs.",
                "Use an Ed25519 key (`ssh-keygen -t ed25519`) or an RSA key of 2048 bits or more.",
            )


RSA_MIN_BITS = 2048


@rule("AZC048", "error", "ssh-rsa-key-too-short", "An RSA SSH key is shorter than 2048 bits")
def ssh_rsa_key_too_short(spec: ClusterSpec) -> Iterator[Problem]:
    """Azure requires RSA public keys of at least 2048 bits. Source: as AZC047."""
    for index, _text, parsed in _parsed_keys(spec):
        if isinstance(parsed, SshPublicKey) and parsed.type == "ssh-rsa" and parsed.bits < RSA_MIN_BITS:
            yield (
                _key_path(index),
                f"SSH key {index + 1} is a {parsed.bits}-bit RSA key; Azure requires at least "
                f"{RSA_MIN_BITS} bits.",
                "Use an Ed25519 key (`ssh-keygen -t ed25519`) or `ssh-keygen -t rsa -b 4096`.",
            )

"""SSH public keys as Azure reads them: OpenSSH or RFC 4716 text, type and size read from the key itself."""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from .common import preview


@dataclass(frozen=True)
class SshPublicKey:
    """What the rules need to know about a public key."""

    type: str
    bits: int
    comment: str = ""


class SshKeyError(ValueError):
    """The text is not a well-formed SSH public key; the message says why."""


SSH_KEY_TYPES_AZURE_ACCEPTS = frozenset({"ssh-rsa", "ssh-ed25519"})
_ECDSA_CURVES = {"nistp256": 256, "nistp384": 384, "nistp521": 521}
SSH_KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-ed25519",
        "ssh-dss",
        *(f"ecdsa-sha2-{curve}" for curve in _ECDSA_CURVES),
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


class _WireReader:
    """RFC 4251 wire format: uint32 length-prefixed strings and mpints."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def string(self) -> bytes:
        if self.pos + 4 > len(self.data):
            raise SshKeyError("its body is truncated")
        (length,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        if self.pos + length > len(self.data):
            raise SshKeyError("its body is truncated")
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def finished(self) -> bool:
        return self.pos == len(self.data)


def _rfc4716_body(text: str) -> str:
    """The base64 body of an RFC 4716 ('---- BEGIN SSH2 PUBLIC KEY ----') key, headers dropped."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 2 or lines[-1] != "---- END SSH2 PUBLIC KEY ----":
        raise SshKeyError("its '---- END SSH2 PUBLIC KEY ----' line is missing")
    body: list[str] = []
    continued = False
    for line in lines[1:-1]:
        if continued or (not body and ":" in line):
            continued = line.endswith("\\")
            continue
        body.append(line)
    return "".join(body)


def parse_ssh_public_key(text: str) -> SshPublicKey:
    """Parse an OpenSSH (`type base64 [comment]`) or RFC 4716 public key; raise SshKeyError if malformed.

    The base64 body is decoded and read: the type inside must match the type in front, and the key
    material must be complete (RSA modulus, Ed25519 32-byte key, ECDSA curve and point).
    """
    stripped = text.strip()
    if not stripped:
        raise SshKeyError("it is empty")
    if "PRIVATE KEY" in stripped:
        raise SshKeyError("it is a PRIVATE key")
    comment = ""
    if stripped.startswith("---- BEGIN SSH2 PUBLIC KEY ----"):
        declared, body = None, _rfc4716_body(stripped)
    else:
        parts = stripped.split(None, 2)
        declared = parts[0]
        if declared not in SSH_KEY_TYPES:
            if len(parts) == 1 and ("/" in declared or declared.startswith("~")):
                raise SshKeyError("it looks like a file path, and only paths ending in .pub are read")
            raise SshKeyError("it does not start with an SSH key type such as ssh-ed25519 or ssh-rsa")
        if len(parts) < 2:
            raise SshKeyError(f"the base64 body after {declared!r} is missing")
        body = parts[1]
        comment = parts[2] if len(parts) > 2 else ""
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SshKeyError("its body is not valid base64") from None
    reader = _WireReader(blob)
    inner = reader.string().decode("ascii", errors="replace")
    if declared is not None and inner != declared:
        raise SshKeyError(f"it says {declared!r} but its body holds a {preview(inner, 40)!r} key")
    if inner not in SSH_KEY_TYPES:
        raise SshKeyError(f"its body holds an unknown key type {preview(inner, 40)!r}")
    bits = _key_bits(inner, reader)
    if not reader.finished():
        raise SshKeyError("its body has bytes after the key")
    return SshPublicKey(inner, bits, comment)


def openssh_line(text: str) -> str:
    """The key as one authorized_keys line, `type base64 [comment]`: RFC 4716 keys converted, the comment
    flattened to one line (a line break in it would start a second authorized_keys line, with options of
    the writer's choosing). Raises SshKeyError when the key is malformed."""
    key = parse_ssh_public_key(text)
    stripped = text.strip()
    if stripped.startswith("---- BEGIN SSH2 PUBLIC KEY ----"):
        body = _rfc4716_body(stripped)
    else:
        body = stripped.split(None, 2)[1]
    comment = " ".join(key.comment.split())
    return f"{key.type} {body} {comment}" if comment else f"{key.type} {body}"


def _key_bits(key_type: str, reader: _WireReader) -> int:
    if key_type == "ssh-rsa":
        exponent, modulus = reader.mpint(), reader.mpint()
        if exponent <= 0 or modulus <= 0:
            raise SshKeyError("its RSA numbers are invalid")
        return modulus.bit_length()
    if key_type in ("ssh-ed25519", "sk-ssh-ed25519@openssh.com"):
        if len(reader.string()) != 32:
            raise SshKeyError("its Ed25519 key is not 32 bytes")
        if key_type.startswith("sk-"):
            reader.string()  # application
        return 256
    if key_type == "ssh-dss":
        p = reader.mpint()
        for _ in range(3):
            reader.mpint()
        return p.bit_length()
    curve = key_type.removeprefix("sk-").removeprefix("ecdsa-sha2-").split("@")[0]
    if reader.string().decode("ascii", errors="replace") != curve or not reader.string():
        raise SshKeyError(f"its ECDSA curve or point does not match {key_type}")
    if key_type.startswith("sk-"):
        reader.string()  # application
    return _ECDSA_CURVES[curve]

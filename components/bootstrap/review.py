"""Custom data people can review before `up`: decoded, with the files that hold secrets masked.

A Slurm cluster's custom data carries the munge key, so Pulumi treats the whole value as a secret and a
plan could only show "[secret]". The key sits in one known file (`SECRET_FILES`); everything else is
what the node will run, and reviewing it is the point of a plan. `masked_cloud_config` decodes the
custom data, replaces the content of each secret file with "[secret]", and refuses (ValueError) when any
secret the caller knows of is still in the text, so a secret written anywhere else is never shown.

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterable

from .slurm_boot import MUNGE_KEY_B64_PATH

SECRET_FILES = (MUNGE_KEY_B64_PATH,)
"""write_files paths whose content is secret (the cluster's munge key)."""
MASK = "[secret]"
_MIN_SECRET = 8
"""Shorter secrets are not searched for in the text (they would match by chance); none of ours are."""


def decode_custom_data(data: str) -> str:
    """The cloud-config text of a custom data value (base64 of gzip, or of plain text)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("custom data is not base64") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            raise ValueError("custom data is not valid gzip") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("custom data is not UTF-8 text") from None


def mask_files(text: str, paths: Iterable[str] = SECRET_FILES) -> tuple[str, list[str]]:
    """`text` with the content of each write_files entry at `paths` replaced by "[secret]", and the paths
    it masked. Reads the layout bootstrap/document.py `dump` writes (an entry's keys indented by four, a
    literal block's lines by six), finding each entry by its path line rather than walking every line:
    a plan masks one document per scale set."""
    masked: list[str] = []
    for path in paths:
        entry = text.find(f"\n  - path: {json.dumps(path)}\n")
        if entry < 0:
            continue
        content = text.find("\n    content: ", entry + 1)
        following = text.find("\n  - ", entry + 1)
        if content < 0 or 0 <= following < content:
            continue  # no content key in this entry (never written so): nothing to mask
        start = content + 1
        end = text.find("\n", start)
        while end >= 0 and (text.startswith("\n      ", end) or text.startswith("\n\n", end)):
            end = text.find("\n", end + 1)  # the literal block's lines (and its blank lines)
        end = len(text) if end < 0 else end
        text = f"{text[:start]}    content: {json.dumps(MASK)}{text[end:]}"
        masked.append(path)
    return text, masked


def masked_cloud_config(data: str, secrets: Iterable[str] = ()) -> tuple[str, list[str]]:
    """The decoded cloud-config of custom data `data` with its secret files masked, and their paths.

    secrets: every secret value the caller knows of (e.g. each secret a plan registered). Raises
    ValueError when one of them is still in the masked text: then nothing of it may be shown.
    """
    text, masked = mask_files(decode_custom_data(data))
    for secret in secrets:
        if len(secret) >= _MIN_SECRET and secret.strip() and secret.strip() in text:
            raise ValueError("a secret is in the custom data outside the files known to hold one")
    return text, masked

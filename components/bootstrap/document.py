"""The cloud-config document both roles share: where files go on a node, what one capability adds to a
role (`Piece`), how the pieces become one `#cloud-config` text, and the custom data Azure takes.

A role (bootstrap/login.py, bootstrap/gpu_node.py) is a header and a list of pieces, one per capability
(node facts, health, mounts, Slurm, power, hostfiles). `assemble` writes them in one fixed layout:
/etc/azcluster/node.env (every piece's settings), then every piece's scripts, its systemd units and its
other files, then `runcmd` enabling and starting the units the pieces ask for; a GPU pool's documents
write node.env last instead (`node_env_last`), after the files its islands share. The layout never
changes with the pieces, so the bytes of a node's custom data change only when what it runs changes (a
change of custom data re-images every scale set at its next model update).

Why node.env last on GPU nodes: a pool's scale sets differ only in their island, and the island is in
node.env. With everything the islands share written first, `PrefixGzip` compresses that shared prefix
once per pool and each scale set only its own tail: at 1,429 scale sets, gzip -9 of every set's whole
~100 KB document was half of a plan's time (benchmarks/bench_plan_scale.py). cloud-init writes every
write_files entry before runcmd runs, so the order of the files changes nothing on the node.

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

# --- Custom data limit -----------------------------------------------------------------------------------
# osProfile.customData: "decoded to a binary array ... The maximum length of the binary array is 65535
# bytes" (Compute REST API); Azure's custom-data page says 64 KB. Enforced on the base64 text, which is
# the stricter reading of both.
CUSTOM_DATA_LIMIT = 65535

# --- Where things go on the node ---------------------------------------------------------------------
INSTALL_DIR = "/usr/local/lib/azcluster"
UNIT_DIR = "/etc/systemd/system"
NODE_ENV_PATH = "/etc/azcluster/node.env"
HOSTFILE_DIR = "/etc/azcluster/hostfiles"

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9._:/@+=,-]*$")


@functools.cache
def read_script(name: str) -> str:
    """The text of a node script (or, for names ending in .service/.timer, a systemd unit).

    Read once per process: every island's cloud-config carries the same files, and a plan renders one per
    scale set (1,429 of them for 9,999 nodes in islands of 7)."""
    folder = "units" if name.endswith((".service", ".timer")) else "scripts"
    return resources.files(__package__).joinpath(folder, name).read_text(encoding="utf-8")


def file_entry(path: str, content: str, permissions: str) -> dict[str, Any]:
    """One write_files entry (root-owned)."""
    return {"path": path, "owner": "root:root", "permissions": permissions, "content": content}


def script_mode(name: str) -> str:
    """Libraries are sourced, not run: not executable."""
    return "0644" if name.endswith("-lib.sh") else "0755"


@dataclass(frozen=True)
class Piece:
    """What one capability adds to a role's cloud-config. Scripts and units are file names under
    bootstrap/scripts and bootstrap/units; `start` names the units enabled and started at first boot
    (each must be written by the same document, and a timer's service with it: `assemble` checks)."""

    name: str
    env: Mapping[str, Any] = field(default_factory=dict)
    """node.env settings (None: left out)."""
    scripts: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    files: tuple[dict[str, Any], ...] = ()
    """Other files (`file_entry`), written after every piece's scripts and units."""
    start: tuple[str, ...] = ()
    before: tuple[tuple[str, ...], ...] = ()
    """runcmd steps run before systemd is told about the units (e.g. systemd-tmpfiles)."""
    bootcmd: tuple[tuple[str, ...], ...] = ()
    """Commands cloud-init runs early in every boot, before multi-user.target: for what must happen before
    systemd starts the services that boot is queued to start (runcmd runs only after multi-user.target)."""


def env_file(values: Mapping[str, Any]) -> str:
    """/etc/azcluster/node.env: KEY=value lines the azc-* scripts source (so values must be shell-safe)."""
    lines = ["# azcluster node facts, rendered from the cluster spec. Sourced by the azc-* scripts."]
    for key, value in values.items():
        if value is None:
            continue
        text = str(value)
        if not _SAFE_VALUE.match(text):
            raise ValueError(
                f"{key}={text!r}: only letters, digits and ._:/@+=,- are allowed in node settings"
            )
        lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"


def units_runcmd(units: Sequence[str]) -> list[list[str]]:
    # --no-block: cloud-init's final stage runs after multi-user.target; never wait on our units there.
    return [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", *units],
        ["systemctl", "start", "--no-block", *units],
    ]


def assemble(header: str, pieces: Iterable[Piece], *, node_env_last: bool = False) -> str:
    """The `#cloud-config` text of a role: node.env, scripts, units, other files, then runcmd.

    node_env_last: node.env after the other files (a GPU pool's documents: the module docstring says why).
    """
    pieces = list(pieces)
    env: dict[str, Any] = {}
    for piece in pieces:
        env.update(piece.env)
    scripts = [name for piece in pieces for name in piece.scripts]
    units = [name for piece in pieces for name in piece.units]
    node_env = file_entry(NODE_ENV_PATH, env_file(env), "0644")
    files = [] if node_env_last else [node_env]
    files += [file_entry(f"{INSTALL_DIR}/{name}", read_script(name), script_mode(name)) for name in scripts]
    files += [file_entry(f"{UNIT_DIR}/{name}", read_script(name), "0644") for name in units]
    files += [entry for piece in pieces for entry in piece.files]
    if node_env_last:
        files.append(node_env)
    start = [name for piece in pieces for name in piece.start]
    check_units_written(files, start)
    runcmd = None
    if start:
        runcmd = [list(step) for piece in pieces for step in piece.before] + units_runcmd(start)
    bootcmd = [list(step) for piece in pieces for step in piece.bootcmd] or None
    return dump(header, files, runcmd, bootcmd)


def check_units_written(files: Iterable[Mapping[str, Any]], started: Iterable[str]) -> None:
    """Every unit the document enables or starts is written by it, and so is the service a timer starts
    (its `Unit=` or the timer's own name with .service): a timer without its service fails at every tick."""
    written = {entry["path"]: entry["content"] for entry in files}
    for unit in started:
        path = f"{UNIT_DIR}/{unit}"
        if path not in written:
            raise ValueError(f"cloud-config starts {unit} but does not write {path}")
        if unit.endswith(".timer"):
            service = timer_service(unit, written[path])
            if f"{UNIT_DIR}/{service}" not in written:
                raise ValueError(f"cloud-config starts {unit} but does not write the {service} it runs")


def timer_service(timer: str, text: str) -> str:
    """The unit a timer activates: `Unit=` in [Timer], else the timer's name with .service
    (systemd.timer(5))."""
    match = re.search(r"^\s*Unit\s*=\s*(\S+)", text, re.MULTILINE)
    return match.group(1) if match else timer.removesuffix(".timer") + ".service"


# --- the text ---------------------------------------------------------------------------------------------

_UNPRINTABLE = re.compile(r"[^\t\n\x20-\x7e\u00a0-\ud7ff\ue000-\ufffd]")


@functools.lru_cache(maxsize=256)
def _literal(text: str, indent: int) -> str:
    """A YAML literal block scalar ('|') holding text exactly, for a key at column `indent`.

    Cached: the scripts and units are the same text in every island's cloud-config, so each is indented
    once per process, not once per scale set."""
    if not text:
        return '""'
    if _UNPRINTABLE.search(text):
        raise ValueError("file content for the cloud-config has control characters")
    body = text[:-1] if text.endswith("\n") else text
    chomp = "-" if not text.endswith("\n") else ("+" if body.endswith("\n") or body == "" else "")
    indicator = "2" if text[0] in " \n" else ""
    pad = " " * (indent + 2)
    lines = "\n".join(pad + line if line else "" for line in body.split("\n"))
    return f"|{indicator}{chomp}\n{lines}"


def dump(
    header: str,
    files: Iterable[Mapping[str, Any]],
    runcmd: Sequence[Sequence[str]] | None,
    bootcmd: Sequence[Sequence[str]] | None = None,
) -> str:
    """The cloud-config text. Emitted by hand (not a YAML library) because it is simple and rendering
    runs once per island in every `plan`; tests parse it back and run cloud-init's schema validator."""
    out = ["#cloud-config", header]
    if bootcmd:
        out.append("bootcmd:")
        out.extend(f"  - {json.dumps(list(argv))}" for argv in bootcmd)
    out.append("write_files:")
    for entry in files:
        out.append(f"  - path: {json.dumps(entry['path'])}")
        out.append(f"    owner: {json.dumps(entry['owner'])}")
        out.append(f"    permissions: {json.dumps(entry['permissions'])}")
        out.append(f"    content: {_literal(entry['content'], 4)}")
    if runcmd:
        out.append("runcmd:")
        out.extend(f"  - {json.dumps(list(argv))}" for argv in runcmd)
    return "\n".join(out) + "\n"


# --- custom data -----------------------------------------------------------------------------------------


GZIP_LEVEL = 9
GZIP_WBITS = 31
"""zlib's gzip wrapper (16 + a 32 KiB window): what `gzip.compress(data, compresslevel=9, mtime=0)` uses
(header with mtime 0, XFL 2 for level 9, zlib's OS byte; CRC-32 and length trailer)."""


def gzip_document(data: bytes) -> bytes:
    """The gzip bytes of one document, exactly `gzip.compress(data, compresslevel=9, mtime=0)`."""
    return zlib.compress(data, GZIP_LEVEL, GZIP_WBITS)


class PrefixGzip:
    """gzip of documents that start with the same bytes, compressing those bytes once.

    `compress(data)` returns exactly `gzip_document(data)`: deflate fed with Z_NO_FLUSH emits the same
    stream however its input is split (it only ever decides on input it holds, keeping a look-ahead until
    more comes or the stream finishes), so the state after the shared prefix is copied
    (`zlib.Compress.copy`) and given each document's rest. zlib keeps the gzip CRC-32 and length in that
    state, so header and trailer come out as in one call. Data that does not start with the prefix is
    compressed whole. tests/components/test_custom_data_encoding.py compares both paths over many inputs.
    """

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix
        self._state = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
        self._head = self._state.compress(prefix)

    def compress(self, data: bytes) -> bytes:
        if not data.startswith(self.prefix):
            return gzip_document(data)
        state = self._state.copy()
        return self._head + state.compress(data[len(self.prefix) :]) + state.flush()


def shared_prefix(first: bytes, second: bytes) -> bytes:
    """The longest common prefix of two byte strings (binary search over slice comparisons)."""
    low, high = 0, min(len(first), len(second))
    while low < high:
        middle = (low + high + 1) // 2
        if first[:middle] == second[:middle]:
            low = middle
        else:
            high = middle - 1
    return first[:low]


def encode_custom_data(cloud_config: str, what: str = "", encoder: PrefixGzip | None = None) -> str:
    """gzip + base64, as Azure's customData takes it (cloud-init decompresses gzip'ed user data).

    Raises ValueError when the result exceeds Azure's limit (CUSTOM_DATA_LIMIT bytes); `what` names the
    role in the message. encoder: the pool's `PrefixGzip` (the same bytes, sooner).
    """
    data = cloud_config.encode("utf-8")
    packed = base64.b64encode(encoder.compress(data) if encoder else gzip_document(data)).decode()
    if len(packed) > CUSTOM_DATA_LIMIT:
        raise ValueError(
            f"{what + ': ' if what else ''}custom data is {len(packed)} bytes after gzip and base64; Azure "
            f"allows {CUSTOM_DATA_LIMIT}. Shorten what goes into the cloud-config (hostfiles are the usual "
            "culprit: leave them out and write them with `azcluster hosts` instead)"
        )
    return packed

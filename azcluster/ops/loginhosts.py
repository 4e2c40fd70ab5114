"""The cluster's hostfiles on the login node, one per InfiniBand island, written through Run Command.

Node addresses exist only once the scale sets do, so they cannot be in the login node's custom data.
`azcluster hosts STACK --install` writes them afterwards, and `start` and `up` refresh them as a last,
best-effort step (a warning, never a failure, when they cannot). They go into bootstrap.HOSTFILE_DIR, one
file per island named by its island key (`gpu-i0`, as the login cloud-config names them), holding exactly
what `azcluster hosts` prints for that island: the running nodes' private IPs, in instance order.

How the files travel (runcommand.py has what Azure says about Run Command):
- Safely: each file's content is base64 inside the script and decoded on the node. The only other words
  in the script are constants and island keys checked against [a-z0-9-]; nothing Azure or a person wrote
  reaches the shell as code.
- Atomically: each file is written to a temporary file in the same directory and renamed over the old
  one (rename is atomic within a file system), so a job reading a hostfile sees the old or the new one.
- Idempotently: the same cluster gives the same files; installing every island also removes the
  hostfiles of islands that no longer exist, so the directory always describes the cluster.
- Within what Run Command takes: the files are packed into as few scripts as runcommand.SCRIPT_BUDGET
  allows and sent one after another (a VM runs one script at a time); a single island too big for one
  script is refused with what to do instead.
- Checked: Run Command reports success whatever the script's exit status, so each script prints a marker
  as its last line; without it the script stopped, and its stderr says where.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azcluster.components.bootstrap import HOSTFILE_DIR, island_key
from azcluster.components.spec import ClusterSpec

from ..errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError
from . import runcommand

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext
    from .hosts import Hostfile, Known

MARKER = "azcluster-hostfiles: installed"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # island keys; they go into the script as they are
_TEMP = ".azc-hostfile."
# Each line stands alone (no construct spans two), and the script is POSIX sh, though the Linux
# extension runs it with bash. AZC_ROOT, unset on a real node, is how tests run it in a directory.
_HEADER = (
    "set -eu",
    "umask 022",
    f'd="${{AZC_ROOT:-}}{HOSTFILE_DIR}"',
    'mkdir -p "$d"',
    f"trap 'rm -f \"$d\"/{_TEMP}*' EXIT",
    f'put() {{ t=$(mktemp "$d/{_TEMP}XXXXXX"); printf %s "$2" | base64 -d >"$t"; chmod 0644 "$t"; '
    'mv -f "$t" "$d/$1"; }',
)


@dataclass
class InstalledFile:
    name: str
    pool: str
    island: int
    hosts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": f"{HOSTFILE_DIR}/{self.name}",
            "pool": self.pool,
            "island": self.island,
            "hosts": self.hosts,
        }


@dataclass
class Install:
    """What was written on the login node, and how many Run Commands it took."""

    vm: str
    files: list[InstalledFile]
    scripts: int
    pruned: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "directory": HOSTFILE_DIR,
            "files": [f.to_json() for f in self.files],
            "run_commands": self.scripts,
            "removed_other_islands": self.pruned,
        }


@dataclass
class Refresh:
    """The outcome of the best-effort refresh at the end of `start` and `up`."""

    state: str  # installed | skipped | failed
    install: Install | None = None
    reason: str | None = None
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "install": self.install.to_json() if self.install else None,
            "reason": self.reason,
            "hint": self.hint,
        }


def login_vm_name(spec: ClusterSpec) -> str:
    """The login VM's name, as components/login.py names it."""
    return f"{spec.name}-login"


def require_login(spec: ClusterSpec, stack: str) -> None:
    """Exit 2 when the spec has no login node: there is nowhere to install hostfiles."""
    if not spec.login.enabled:
        raise AzclusterError(
            f"stack {stack} has no login node (login.enabled: false): nowhere to install hostfiles",
            f"write them locally with `azcluster hosts {stack} --out DIR`, or enable the login node",
            EXIT_USAGE,
        )


# --- the scripts ---------------------------------------------------------------------------------------


def plan_scripts(
    contents: dict[str, str], *, prune: bool, budget: int = runcommand.SCRIPT_BUDGET, stack: str = "STACK"
) -> list[list[str]]:
    """The Run Command scripts that write `contents` (island key -> file text) into HOSTFILE_DIR.

    Files are packed in name order into as few scripts as `budget` (the script's base64 size) allows.
    With `prune`, the last script also removes the files of islands not in `contents`.
    """
    names = sorted(contents)
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"hostfile name {name!r}: lower-case letters, digits and '-' only")
    footer = _footer(names, prune, len(names))  # the longest footer: sizes are checked against it
    chunks: list[list[str]] = [[]]
    for name in names:
        line = _put_line(name, contents[name])
        if runcommand.script_size([*_HEADER, line, *footer]) > budget:
            raise _too_big(name, contents[name], budget, stack)
        if chunks[-1] and runcommand.script_size([*_HEADER, *chunks[-1], line, *footer]) > budget:
            chunks.append([])
        chunks[-1].append(line)
    last = len(chunks) - 1
    return [
        [*_HEADER, *chunk, *_footer(names, prune and index == last, len(chunk))]
        for index, chunk in enumerate(chunks)
    ]


def _put_line(name: str, text: str) -> str:
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"put {name} '{encoded}'"  # base64's alphabet has no quote: safe inside single quotes


def _footer(names: Sequence[str], prune: bool, written: int) -> list[str]:
    lines = []
    if prune and names:
        keep = "|".join(names)
        lines.append(
            f'for f in "$d"/*; do [ -f "$f" ] || continue; case "${{f##*/}}" in {keep}) ;; '
            '*) rm -f -- "$f" ;; esac; done'
        )
    lines.append(f'echo "{MARKER} {written}"')
    return lines


def _too_big(name: str, text: str, budget: int, stack: str) -> AzclusterError:
    return AzclusterError(
        f"the hostfile of island {name} is {len(text.encode('utf-8'))} bytes: more than one Run Command "
        f"script carries (about {budget * 3 // 4 // 1024} KiB, the Linux extension's limit with headroom)",
        f"write it locally with `azcluster hosts {stack} --out DIR` and copy it to the login node "
        f"({HOSTFILE_DIR}/{name})",
        EXIT_REFUSED,
    )


# --- installing ------------------------------------------------------------------------------------------


def install_hostfiles(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    files: Sequence[Hostfile],
    fmt: str = "plain",
    *,
    prune: bool = True,
    budget: int = runcommand.SCRIPT_BUDGET,
    timeout: float = runcommand.TIMEOUT_S,
    progress: bool = True,
    client: Any = None,
) -> Install:
    """Write one hostfile per island in `files` on the login node; AzclusterError when it cannot.

    `prune`: `files` are all the cluster's islands, so hostfiles of other islands are removed.
    `client`: the command's Compute client, when it has one (one client, one token per command).
    """
    from ..azure import azure_errors, compute_client

    require_login(spec, stack)
    contents = {island_key(f.pool, f.island): f.text(fmt) for f in files}
    scripts = plan_scripts(contents, prune=prune, budget=budget, stack=stack)
    vm = login_vm_name(spec)
    target = runcommand.on_vm(client or compute_client(ctx), spec.resource_group_name, vm)
    for number, lines in enumerate(scripts, start=1):
        part = f" ({number} of {len(scripts)})" if len(scripts) > 1 else ""
        with (
            runcommand.waiting_line(
                f"writing the hostfiles on {vm} through Run Command{part} (tens of seconds)", progress
            ),
            azure_errors(ctx, f"writing the hostfiles on {vm}"),
        ):
            _run(target, lines, spec, stack, vm, timeout)
    installed = [InstalledFile(island_key(f.pool, f.island), f.pool, f.island, len(f.hosts)) for f in files]
    return Install(vm, installed, len(scripts), prune)


def _run(target: runcommand.Begin, lines: list[str], spec: ClusterSpec, stack: str, vm: str, timeout: float):
    again = f"azcluster hosts {stack} --install"
    runcommand.run_step(
        target,
        lines,
        timeout,
        marker=MARKER,
        failed=f"could not write the hostfiles on {vm}",
        again=again,
        resource_group=spec.resource_group_name,
        vm=vm,
        stack=stack,
        unfinished_hint=lambda _: (
            f"on the login node, check that {HOSTFILE_DIR} is writable, then run `{again}` again"
        ),
    )


# --- reading the cluster, then installing --------------------------------------------------------------


def read_and_install(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    *,
    fmt: str = "plain",
    island: int | None = None,
    pool: str | None = None,
    progress: bool = True,
    timeout: float = runcommand.TIMEOUT_S,
    known: Known | None = None,
) -> tuple[list[Hostfile], Install]:
    """What `azcluster hosts` would print, written on the login node, with one client (one sign-in).

    Only when every island is asked for (no `island`/`pool`) are other islands' hostfiles removed.
    """
    from ..azure import compute_client
    from .hosts import hostfiles

    require_login(spec, stack)
    client = compute_client(ctx)
    files = hostfiles(spec, ctx, stack, island=island, pool=pool, client=client, known=known)
    everything = island is None and pool is None
    install = install_hostfiles(
        spec, ctx, stack, files, fmt, prune=everything, progress=progress, timeout=timeout, client=client
    )
    return files, install


def refresh(
    spec: ClusterSpec,
    stack: str,
    connect: Callable[[], AzureContext],
    *,
    progress: bool = True,
    timeout: float = runcommand.TIMEOUT_S,
    known: Known | None = None,
) -> Refresh:
    """Re-write every island's hostfile on the login node; whatever goes wrong becomes the warning.

    `start` and `up` end with this: the cluster they brought up is fine without it, so it must never turn
    their success into a failure. Skipped when the spec has no login node. `known`: what `start` already
    learnt (hosts.Known), so no scale set is listed and no node read twice.
    """
    from ..azure import azure_errors

    if not spec.login.enabled:
        return Refresh("skipped", reason="the stack has no login node")
    try:
        ctx = connect()
        with azure_errors(ctx, f"reading the nodes of {spec.name} for the login node's hostfiles"):
            _files, install = read_and_install(
                spec, ctx, stack, progress=progress, timeout=timeout, known=known
            )
    except AzclusterError as err:
        return Refresh("failed", reason=err.message, hint=err.hint)
    except Exception as err:  # a side step must not fail the command that brought the nodes up
        return Refresh(
            "failed", reason=f"unexpected {type(err).__name__}: {err}", hint="report it if it persists"
        )
    return Refresh("installed", install=install)


def print_install(install: Install, out: Any = None) -> None:
    """One line: which files are on which VM (stderr, unless `out` says where)."""
    from ..render import console, markup

    written = ", ".join(f"{f.name} ({f.hosts} host{'' if f.hosts == 1 else 's'})" for f in install.files)
    (out or console).print(
        markup("[green]hostfiles[/] on {} in {}: {}", install.vm, HOSTFILE_DIR, written or "none"),
        soft_wrap=True,
    )


def print_refresh(result: Refresh, stack: str) -> None:
    """A line on stderr: what was written, or the warning and how to retry."""
    from ..render import side_step_warning

    if result.state == "installed" and result.install:
        print_install(result.install)
    elif result.state == "failed":
        side_step_warning(
            "the login node's hostfiles were not updated",
            result.reason,
            result.hint,
            f"azcluster hosts {stack} --install",
        )

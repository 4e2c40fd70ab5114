"""`azcluster users sync`: hand the team's users file to the cluster, on the shared home, through Run Command.

The list of people is never in a VM's custom data (components/team.py says why). It travels to the login
node's shared home instead, at `<home>/.azcluster/users.json`, where every node's azc-users timer reads it
and applies it within about 2 minutes (bootstrap/users_boot.py), GPU nodes included: they mount the same
share, so one write reaches them all, with no Run Command per node.

How the file travels (runcommand.py has what Azure says about Run Command):
- Safely: the file's text is base64 inside the script; the only other words are constants, the home
  mount (the spec allows only [A-Za-z0-9._/-] there) and the file's SHA-256 in hex.
- Whole or not at all: the text is appended to a part file beside the users file, the last script checks
  its SHA-256 and renames it over users.json (atomic on one file system), so a node reads the old list or
  the new one. A large team's file is split over as many scripts as runcommand.SCRIPT_BUDGET needs,
  sent one after another (a VM runs one at a time).
- Root-owned: the directory is made root:root 0755 and the file 0644; azc-users.py refuses a file or
  directory that anyone but root could write (anyone who could write it could make themselves root).
- Only onto the share: on the node the script refuses to write when the home is not mounted (the file
  would land on the login node's own disk and be hidden by the mount later).
- Checked: Run Command says succeeded whatever the script's exit status, so each script prints a marker
  last; without it the script stopped, and its stderr says why.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azcluster.components.bootstrap import USERS_TIMER_INTERVAL_S
from azcluster.components.spec import ClusterSpec
from azcluster.components.team import USERS_DIR_NAME, USERS_FILE_NAME, render_users_file, users_file_path

from ..errors import EXIT_USAGE, AzclusterError
from . import runcommand
from .loginhosts import login_vm_name

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext

MARKER = "azcluster-users: handed over"
NOT_MOUNTED = "azcluster-users: the shared home is not mounted at"
DAMAGED = "azcluster-users: the users file arrived damaged"


@dataclass
class Sync:
    """What was handed over, where, and how many Run Commands it took."""

    vm: str
    path: str
    digest: str
    users: int
    groups: int
    scripts: int
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "vm": self.vm,
            "path": self.path,
            "hash": self.digest,
            "users": self.users,
            "groups": self.groups,
            "bytes": self.size,
            "run_commands": self.scripts,
            "applied_within_s": USERS_TIMER_INTERVAL_S,
        }


def require_login_and_home(spec: ClusterSpec, stack: str) -> None:
    """Exit 2 without a login node (nowhere to run the hand-over) or a shared home (nowhere to put it)."""
    if not spec.login.enabled:
        raise AzclusterError(
            f"stack {stack} has no login node (login.enabled: false): nowhere to hand the users file to",
            "enable the login node",
            EXIT_USAGE,
        )
    if not spec.storage.home.enabled:
        raise AzclusterError(
            f"stack {stack} has no shared home (storage.home.enabled: false): the nodes read the users "
            "file from it",
            "enable the shared home",
            EXIT_USAGE,
        )


def plan_scripts(spec: ClusterSpec, text: str, budget: int = runcommand.SCRIPT_BUDGET) -> list[list[str]]:
    """The Run Command scripts that put `text` at the users file's path on the login node."""
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    home = spec.storage.home.mount.rstrip("/") or "/"
    directory = f"{home.rstrip('/')}/{USERS_DIR_NAME}"
    part = f"$d/.{USERS_FILE_NAME}.{digest[:16]}.part"
    header = [
        "set -eu",
        "umask 022",
        # AZC_ROOT, unset on a real node, is how tests run the script in a directory of their own.
        f'h="${{AZC_ROOT:-}}{home}"',
        f'[ -n "${{AZC_ROOT:-}}" ] || mountpoint -q "$h" || {{ echo "{NOT_MOUNTED} {home}" >&2; exit 3; }}',
        f'd="${{AZC_ROOT:-}}{directory}"',
        'mkdir -p "$d"',
        'chown 0:0 "$d"',
        'chmod 0755 "$d"',
        f'p="{part}"',
    ]
    finish = [
        f'echo "{digest}  $p" | sha256sum -c --status || {{ rm -f "$p"; echo "{DAMAGED}" >&2; exit 4; }}',
        'chown 0:0 "$p"',
        'chmod 0644 "$p"',
        f'mv -f "$p" "$d/{USERS_FILE_NAME}"',
        # apply it on the login node now rather than at its next timer run (the other nodes: their timers)
        '[ -n "${AZC_ROOT:-}" ] || systemctl start --no-block azc-users.service || true',
        # and Slurm's accounts, where the controller keeps them (the unit exists only then)
        '[ -n "${AZC_ROOT:-}" ] || systemctl start --no-block azc-slurm-accounts.service 2>/dev/null || true',
    ]
    footer_max = [*finish, f'echo "{MARKER} {digest} 999/999"']
    fixed = runcommand.script_size([*header, ': >"$p"', *footer_max])
    # raw bytes per script: the script is measured as base64 of text that holds the file as base64, so
    # undo both, less the `printf %s '' | base64 -d >>"$p"` around the piece
    room = ((budget - fixed) * 3 // 4 - 64) * 3 // 4
    if room < 1024:
        raise ValueError(f"a Run Command budget of {budget} leaves no room for the users file")
    room -= room % 3  # whole base64 groups: each piece decodes alone
    pieces = [data[i : i + room] for i in range(0, len(data), room)] or [b""]
    scripts = []
    for index, piece in enumerate(pieces):
        encoded = base64.b64encode(piece).decode("ascii")
        lines = [*header]
        if index == 0:
            lines.append(': >"$p"')
        lines.append(f"printf %s '{encoded}' | base64 -d >>\"$p\"")  # base64 has no quote: safe in ''
        if index == len(pieces) - 1:
            lines += finish
        lines.append(f'echo "{MARKER} {digest} {index + 1}/{len(pieces)}"')
        scripts.append(lines)
    return scripts


def sync_users(
    spec: ClusterSpec,
    ctx: AzureContext,
    stack: str,
    *,
    budget: int = runcommand.SCRIPT_BUDGET,
    timeout: float = runcommand.TIMEOUT_S,
    progress: bool = True,
) -> Sync:
    """Write the spec's users file on the login node's shared home; AzclusterError when it cannot."""
    from ..azure import azure_errors, compute_client

    require_login_and_home(spec, stack)
    text = render_users_file(spec)
    scripts = plan_scripts(spec, text, budget)
    vm = login_vm_name(spec)
    target = runcommand.on_vm(compute_client(ctx), spec.resource_group_name, vm)
    for number, lines in enumerate(scripts, start=1):
        part = f" ({number} of {len(scripts)})" if len(scripts) > 1 else ""
        with (
            runcommand.waiting_line(
                f"handing the users file to {vm} through Run Command{part} (tens of seconds)", progress
            ),
            azure_errors(ctx, f"handing the users file to {vm}"),
        ):
            _run(target, lines, spec, stack, vm, timeout)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return Sync(
        vm,
        users_file_path(spec),
        digest,
        len(spec.team.users),
        len(spec.team.groups),
        len(scripts),
        len(text.encode("utf-8")),
    )


def _run(target: runcommand.Begin, lines: list[str], spec: ClusterSpec, stack: str, vm: str, timeout: float):
    def unfinished(stderr: str) -> str:
        hint = f"run `azcluster users sync {stack}` again"
        if NOT_MOUNTED in stderr:
            return f"check the shared home's mount on {vm} (`systemctl status azc-mount-home`), then {hint}"
        return hint

    runcommand.run_step(
        target,
        lines,
        timeout,
        marker=MARKER,
        failed=f"could not hand the users file to {vm}",
        again=f"azcluster users sync {stack}",
        resource_group=spec.resource_group_name,
        vm=vm,
        stack=stack,
        unfinished_hint=unfinished,
    )


def print_sync(result: Sync, out: Any = None) -> None:
    """One line: what was handed over, and when the nodes will have it."""
    from ..render import console, markup

    (out or console).print(
        markup(
            "[green]users[/] file {} ({} users, {} groups, {}) on {}: every node applies it within about "
            "{} minutes",
            result.path,
            result.users,
            result.groups,
            result.digest[:12],
            result.vm,
            USERS_TIMER_INTERVAL_S // 60,
        ),
        soft_wrap=True,
    )


# --- the last step of `up` -----------------------------------------------------------------------------


@dataclass
class Handover:
    """The outcome of handing the users file over at the end of `up` (best effort, like the hostfiles)."""

    state: str  # handed-over | failed
    sync: Sync | None = None
    reason: str | None = None
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "sync": self.sync.to_json() if self.sync else None,
            "reason": self.reason,
            "hint": self.hint,
        }


def has_team(spec: ClusterSpec) -> bool:
    """Whether the stack manages a team: it has a `team:` section (an emptied one too, so removing the
    last user still reaches the nodes), a login node and a shared home. Stacks without one never get a
    users file, and `up` sends them nothing more."""
    return "team" in spec.model_fields_set and spec.login.enabled and spec.storage.home.enabled


def hand_over(
    spec: ClusterSpec, stack: str, connect: Callable[[], AzureContext], *, progress: bool = True
) -> Handover:
    """`sync_users`, with whatever goes wrong as the warning: the cluster `up` built is fine without it."""
    try:
        sync = sync_users(spec, connect(), stack, progress=progress)
    except AzclusterError as err:
        return Handover("failed", reason=err.message, hint=err.hint)
    except Exception as err:  # a side step must not fail the command that built the cluster
        return Handover(
            "failed", reason=f"unexpected {type(err).__name__}: {err}", hint="report it if it persists"
        )
    return Handover("handed-over", sync=sync)


def print_handover(result: Handover, stack: str) -> None:
    """A line on stderr: what was handed over, or the warning and how to retry."""
    from ..render import side_step_warning

    if result.sync is not None:
        print_sync(result.sync)
        return
    side_step_warning(
        "the team's users file was not handed over",
        result.reason,
        result.hint,
        f"azcluster users sync {stack}",
    )

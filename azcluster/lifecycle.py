"""Bring clusters up and down: the logic behind `up`, `preview`, `down`, `refresh`, `outputs`, `cancel`
and `list`, over the narrow `engine.Engine` interface.

The CLI calls one function per command and renders its result; everything a person or CI needs to know
comes back as a JSON-ready document, and every expected failure is an AzclusterError that says what to
do. Two seams are module-level on purpose, so tests swap them without touching any SDK:
`engine_factory` (the Pulumi engine; default: the Automation API adapter, which checks the CLI first)
and `preflight_runner` (asks Azure about quota and sizes, connecting as `up --subscription/--auth/--cloud`
say, exactly as `azcluster preflight` does).

Rules kept here:
- Everything that creates, changes or destroys asks first. `--yes` answers for CI; without a terminal and
  without `--yes` the command refuses (exit 2) instead of hanging on a prompt nobody can answer.
- Order: the Pulumi CLI check (exit 3) comes before the stack file, validation, secrets and Azure
  credentials, so a missing tool is the first thing a user hears about.
- `down` keeps every protected (data-bearing) resource and what it stands on unless `--delete-data` is
  given and confirmed by typing the stack name (or `--yes --delete-data`). Before deleting a Managed
  Lustre file system with blob integration it needs an archive to blob that started after the last
  change to the cluster's compute; otherwise it refuses and prints the `az amlfs archive` commands.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .engine import (
    AML_FILESYSTEM,
    SECRET_MASK,
    Engine,
    EngineOptions,
    OutputValue,
    StackRef,
    StateResource,
    UpdateFailed,
    open_engine,
    refuse_local_state_in_ci,
)
from .errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError

if TYPE_CHECKING:
    from azcluster.components.spec import ClusterSpec

    from .azure import AzureContext
    from .stackfile import LoadedStack


engine_factory: Callable[[EngineOptions], Engine] = open_engine
"""Makes the engine for a command. Tests replace it with a recording fake."""


@dataclass(frozen=True)
class AzureOptions:
    """How a command reaches Azure: `--subscription`, `--auth`, `--cloud` (None: azure.connect's defaults).

    `up` takes the same options as `preflight`, so a CI job that pins a subscription or uses OIDC runs
    the preflight of `up` against that subscription, not whatever the environment defaults to.
    """

    subscription: str | None = None
    auth: str | None = None
    cloud: str | None = None

    def connect(self, deadline_s: float | None = None) -> AzureContext:
        """A fresh context (its own deadline) for one step; pass the bound method where a step connects
        only if it needs Azure."""
        from . import azure

        return azure.connect(self.subscription, self.auth, self.cloud, deadline_s=deadline_s)


def _default_preflight(loaded: LoadedStack, connection: AzureOptions) -> Any:
    from . import preflight

    assert loaded.spec is not None
    return preflight.run_preflight(loaded.spec, connection.connect(), loaded.name)


preflight_runner: Callable[[LoadedStack, AzureOptions], Any] = _default_preflight
"""Runs preflight for a loaded stack, connected as the options say; returns a result with `.ok`,
`.blockers` and `to_json()`."""


def _default_hostfile_refresh(spec: ClusterSpec, stack: str, connection: AzureOptions) -> Any:
    from .ops import loginhosts

    return loginhosts.refresh(spec, stack, connection.connect)


hostfile_refresher: Callable[[ClusterSpec, str, AzureOptions], Any] = _default_hostfile_refresh
"""Writes the login node's hostfiles after `up`, connected as the options say; returns a
loginhosts.Refresh (never raises: a failure is its warning)."""


def _default_users_handover(spec: ClusterSpec, stack: str, connection: AzureOptions) -> Any:
    from .ops import users

    return users.hand_over(spec, stack, connection.connect)


users_handover: Callable[[ClusterSpec, str, AzureOptions], Any] = _default_users_handover
"""Hands the team's users file to the login node after `up` (ops/users.py); returns a users.Handover
(never raises: a failure is its warning)."""


def _default_dashboards_install(
    spec: ClusterSpec, outputs: Mapping[str, OutputValue], connection: AzureOptions
) -> Any:
    from . import grafana

    return grafana.install_for_stack(spec, outputs, connection.connect)


dashboards_installer: Callable[[ClusterSpec, Mapping[str, OutputValue], AzureOptions], Any] = (
    _default_dashboards_install
)
"""Puts the cluster's dashboards into its Grafana after `up` (grafana.py); returns a grafana.InstallResult
(never raises: a failure is its warning)."""


def is_interactive() -> bool:
    """Whether someone can answer a prompt: stdin is a terminal."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


class CommandFailed(AzclusterError):
    """An AzclusterError that also carries the JSON document `--json` prints for it."""

    def __init__(self, error: AzclusterError, document: dict[str, Any]) -> None:
        super().__init__(error.message, error.hint, error.exit_code)
        self.document = document

    def document_fields(self) -> dict[str, Any]:
        return self.document


# --- asking ---------------------------------------------------------------------------------------------


def confirm(question: str, *, yes: bool, action: str) -> None:
    """Ask on the terminal unless --yes; refuse (exit 2) when nobody can answer."""
    if yes:
        return
    if not is_interactive():
        raise AzclusterError(
            f"refusing to {action} without confirmation: there is no terminal to ask on",
            "pass --yes to confirm (CI runs are non-interactive)",
            EXIT_USAGE,
        )
    import typer

    if not typer.confirm(question, default=False, err=True):
        raise AzclusterError("cancelled: nothing was changed", "", EXIT_REFUSED)


def confirm_by_name(stack: str, question: str, *, yes: bool) -> None:
    """The second ask before data is destroyed: type the stack's name (or --yes --delete-data in CI)."""
    if yes:
        return
    if not is_interactive():
        raise AzclusterError(
            f"refusing to delete stack {stack}'s data without confirmation: there is no terminal to ask on",
            "in CI pass both --yes and --delete-data; interactively, type the stack name when asked",
            EXIT_USAGE,
        )
    import typer

    typed = typer.prompt(f"{question}\nType the stack name ({stack}) to confirm", default="", err=True)
    if typed.strip() != stack:
        raise AzclusterError(
            f"{typed.strip()!r} is not {stack!r}: nothing was deleted",
            "type the stack name exactly",
            EXIT_REFUSED,
        )


# --- shared steps -------------------------------------------------------------------------------------


@dataclass
class Target:
    engine: Engine
    loaded: LoadedStack
    ref: StackRef

    @property
    def name(self) -> str:
        return self.loaded.name


def open_target(stack: str, options: EngineOptions) -> Target:
    """The engine first (the Pulumi CLI check, exit 3), then the stack file (exit 2 when unreadable)."""
    from . import stackfile

    engine = engine_factory(options)
    loaded = stackfile.load_stack(stack)
    return Target(engine, loaded, StackRef(loaded.name, Path(loaded.path)))


def _console() -> Any:
    from .render import console

    return console


def _notes(target: Target) -> None:
    from .render import styled

    for note in getattr(target.engine, "notes", []) or []:
        _console().print(styled(note, "dim"), soft_wrap=True)


def validated(target: Target, suppress: Sequence[str] = (), quiet: bool = False) -> ClusterSpec:
    """The stack's spec, or exit 1 with its error findings (printed unless quiet; in the JSON document)."""
    return valid_spec(target.loaded, suppress, quiet)


def valid_spec(
    loaded: LoadedStack,
    suppress: Sequence[str] = (),
    quiet: bool = False,
    nothing: str = "nothing was changed",
) -> ClusterSpec:
    """`validated` for a command without an engine (`users sync`); `nothing` says what was not done."""
    from azcluster.components.findings import has_errors

    from . import render, stackfile

    findings = stackfile.validate(loaded, suppress)
    if has_errors(findings) or loaded.spec is None:
        if not quiet:
            render.print_findings(findings, str(loaded.path))
        raise CommandFailed(
            AzclusterError(
                f"stack {loaded.name} has validation errors; {nothing}",
                f"fix them (`azcluster validate {loaded.name}` lists them with file:line)",
                EXIT_REFUSED,
            ),
            {"findings": [f.to_json() for f in findings]},
        )
    return loaded.spec


def cost_per_hour(spec: ClusterSpec | None) -> float | None:
    if spec is None:
        return None
    from .cost import summarize

    return summarize(spec).cost_per_hour_usd


def count_changes(changes: Mapping[str, int]) -> dict[str, int]:
    """Pulumi's op counts folded into what people ask: create, update, replace, delete, unchanged."""
    folded = {"create": 0, "update": 0, "replace": 0, "delete": 0, "same": 0}
    for op, count in changes.items():
        key = {"create-replacement": "replace", "delete-replaced": None, "import": "create"}.get(op, op)
        if key in folded:
            folded[key] += int(count)
    return folded


def has_changes(changes: Mapping[str, int]) -> bool:
    folded = count_changes(changes)
    return any(folded[key] for key in ("create", "update", "replace", "delete"))


def changes_text(changes: Mapping[str, int]) -> str:
    folded = count_changes(changes)
    parts = [f"{folded[key]} to {key}" for key in ("create", "update", "replace", "delete") if folded[key]]
    if folded["same"]:
        parts.append(f"{folded['same']} unchanged")
    return ", ".join(parts) or "no changes"


def masked(outputs: Mapping[str, OutputValue], show_secrets: bool) -> dict[str, Any]:
    return {
        key: out.value if (show_secrets or not out.secret) else SECRET_MASK for key, out in outputs.items()
    }


def _live(title: str) -> Any:
    from .live import LiveView

    return LiveView(_console(), title)


# --- up ---------------------------------------------------------------------------------------------------


def up(
    stack: str,
    *,
    yes: bool = False,
    skip_preflight: bool = False,
    refresh: bool = False,
    options: EngineOptions | None = None,
    suppress: Sequence[str] = (),
    quiet: bool = False,
    connection: AzureOptions | None = None,
    hostfiles: bool = True,
    wait_for_capacity: float | None = None,
    fill: bool = True,
) -> dict[str, Any]:
    """validate -> preflight -> preview -> confirm -> deploy (live view) -> capacity -> login node's
    hostfiles -> the team's users file (a stack with `team:`) -> what a user needs to log in.

    Capacity (capacity_up.py): when Azure placed some island only in part, or with `wait_for_capacity`
    (seconds), every island keeps what it got, empty ones move whole to the next allowed zone, and the
    rest is asked for again until the deadline; the document's `capacity` says requested vs obtained.
    Otherwise, with `fill`, islands an earlier run left short get one more try (best effort).

    `connection` is how preflight and the hostfile refresh reach Azure (subscription, credential, cloud).
    `hostfiles`: refresh them on the login node (best effort; the node addresses exist only now).
    """
    from . import render

    if not yes and not is_interactive():  # before preflight and preview: CI learns it in a second
        confirm("", yes=yes, action="deploy")
    target = open_target(stack, options or EngineOptions())
    refuse_local_state_in_ci((options or EngineOptions()).backend)
    name, loaded = target.name, target.loaded
    spec = validated(target, suppress, quiet)
    source = target.engine.check_secrets(target.ref)
    _notes(target)
    if not skip_preflight:
        result = preflight_runner(loaded, connection or AzureOptions())
        if not result.ok:
            if not quiet:
                for blocker in result.blockers:
                    render.error(blocker.message, blocker.hint)
            raise CommandFailed(
                AzclusterError(
                    f"preflight: Azure would refuse stack {name} ({len(result.blockers)} problem"
                    f"{'s' if len(result.blockers) != 1 else ''}); nothing was deployed",
                    f"fix them, or pass --skip-preflight if you know better (`azcluster preflight {name}`)",
                    EXIT_REFUSED,
                ),
                {"preflight": result.to_json()},
            )
    cost = cost_per_hour(spec)
    console = _console()
    with console.status(f"previewing {name} …"):
        preview = target.engine.preview(target.ref)
    console.print(
        render.markup(
            "[bold]{}[/] ({}): {}; about [bold]${:,.2f}/hour[/] once running (secrets: {})",
            name,
            spec.location,
            changes_text(preview.changes),
            cost,
            source,
        ),
        soft_wrap=True,
    )
    document: dict[str, Any] = {
        "stack": name,
        "ok": True,
        "location": spec.location,
        "preview": count_changes(preview.changes),
        "cost_per_hour_usd": cost,
    }
    if has_changes(preview.changes) or refresh:
        confirm(
            f"Deploy stack {name} ({changes_text(preview.changes)}, ~${cost:,.2f}/h)?",
            yes=yes,
            action="deploy",
        )
        short = None
        try:
            update = _deploy(target, spec, refresh, document)
        except UpdateFailed as err:
            from .capacity_up import capacity_only

            if not capacity_only(err):
                raise
            short, update = err, None
        outputs = update.outputs if update is not None else target.engine.outputs(target.ref)
        document["changes"] = count_changes(update.changes) if update is not None else {}
        document["seconds"] = update.seconds if update is not None else None
    else:
        console.print(f"{name} is up to date: nothing to deploy")
        outputs = target.engine.outputs(target.ref)
        document["changes"] = count_changes(preview.changes)
        short = None
    if short is not None or wait_for_capacity is not None:
        spec = _settle_capacity(
            target, spec, connection or AzureOptions(), wait_for_capacity, short, document, quiet
        )
        outputs = target.engine.outputs(target.ref)
    elif fill and spec.pools:
        # Pulumi had nothing to say about capacity (the count is azcluster's): one try to fill islands an
        # earlier run left short. Best effort, like the hostfiles: Azure out of reach is a warning.
        try:
            spec = _settle_capacity(target, spec, connection or AzureOptions(), None, None, document, quiet)
        except CommandFailed:
            raise
        except AzclusterError as err:
            if not quiet:
                from .render import markup

                _console().print(
                    markup("[yellow]warning:[/] islands not checked for missing nodes: {}", err.message),
                    soft_wrap=True,
                )
    document["outputs"] = masked(outputs, show_secrets=False)
    document["access"] = access(name, spec, outputs)
    document["hostfiles"] = (
        _refresh_hostfiles(spec, name, connection or AzureOptions()) if hostfiles else None
    )
    document["users"] = _hand_over_users(spec, name, connection or AzureOptions())
    document["dashboards"] = _install_dashboards(spec, name, outputs, connection or AzureOptions())
    return document


def _default_capacity(
    target: Target,
    spec: ClusterSpec,
    connection: AzureOptions,
    wait: float,
    move: Callable[[list[Any]], ClusterSpec],
) -> Any:
    from . import capacity_up

    ctx = connection.connect(deadline_s=wait + CAPACITY_MARGIN_S)
    say = _console().print
    ready = capacity_up.azure_readiness(spec, ctx)
    return capacity_up.settle(spec, ctx, target.name, wait_seconds=wait, move=move, say=say, ready=ready)


CAPACITY_MARGIN_S = 3600.0
"""What the capacity step is given beyond its wait: the last round's scale-outs and removals."""

capacity_runner: Callable[..., Any] = _default_capacity
"""Runs the capacity step of `up` (capacity_up.settle) with a connection as the options say; returns a
CapacityResult. Tests replace it to reach the ARM fake."""


def _settle_capacity(
    target: Target,
    spec: ClusterSpec,
    connection: AzureOptions,
    wait: float | None,
    short: UpdateFailed | None,
    document: dict[str, Any],
    quiet: bool = False,
) -> ClusterSpec:
    """The capacity step: islands keep what Azure placed, move zone when empty, wait if asked; a stack
    whose islands end below their pools' minimum fails `up` (exit 1) with the document."""
    from . import render

    if not spec.pools:
        return spec

    move = island_mover(target)
    if short is not None:
        _console().print(
            render.markup(
                "[yellow]Azure placed some islands only in part[/] ({}); keeping what it placed",
                ", ".join(sorted({f.code or "?" for f in short.failures})),
            ),
            soft_wrap=True,
        )
    try:
        result = capacity_runner(target, spec, connection, wait or 0.0, move)
    except AzclusterError as err:
        if short is None:
            raise
        # Azure could not be asked about the islands (no credential, no route): the update's own failure
        # stands, as it did before there was a capacity step.
        document["capacity"] = {"error": err.message, "hint": err.hint}
        raise _ShortUpdate(short, {**document, "ok": False}) from None
    document["capacity"] = result.to_json()
    asked = wait is not None or short is not None
    if not quiet and (asked or not result.report.complete or result.report.changed):
        from .ops.grow_view import print_growth  # with --json, stdout holds the one document

        print_growth(result.report)
    spec = target.loaded.spec or spec
    if not result.ok and short is not None:
        raise _ShortUpdate(
            short, {**document, "ok": False}, f"`azcluster grow {target.name} --wait 2h` keeps trying"
        )
    if not result.ok:
        raise CommandFailed(
            AzclusterError(
                f"stack {target.name}: some islands have fewer nodes than their pools' minimum "
                f"({result.report.to_json()['obtained']} of {result.report.to_json()['requested']} nodes)",
                f"`azcluster grow {target.name} --wait 2h` keeps trying; the explanations above say what "
                "else to change (zones, stand-in sizes, quota)",
                EXIT_REFUSED,
            ),
            {**document, "ok": False},
        )
    return spec


def island_mover(target: Target) -> Callable[[list[Any]], ClusterSpec]:
    """Rebuild islands whole elsewhere: record each move (zone, size) in the stack file, validate it, and
    run Pulumi, which replaces only the moved islands' scale sets (they are empty); a capacity failure of
    that run is the next round's to read (capacity_up.settle). Returns the spec as the file now says."""
    from . import placement_file, stackfile

    def move(moves: list[Any]) -> ClusterSpec:
        for item in moves:
            placement_file.record_island_placement(
                Path(target.loaded.path), item.pool, item.island, zone=item.to_zone, size=item.to_size
            )
        target.loaded = stackfile.load_stack(str(target.loaded.path))
        moved = validated(target, quiet=True)
        try:
            with _live(f"up {target.name} (moving islands)") as view:
                target.engine.up(target.ref, view, refresh=False)
        except UpdateFailed as err:
            from .capacity_up import capacity_only

            if not capacity_only(err):
                raise
        return moved

    return move


def grow_elsewhere(
    stack: str,
    spec: ClusterSpec,
    ctx: Any,
    report: Any,
    *,
    wait_seconds: float,
    progress: bool = True,
    options: EngineOptions | None = None,
) -> Any:
    """`grow`'s zone and size fallback: when an island got nothing and its pool's policy lists another
    zone (or a stand-in size Azure says it can use), build it whole there as `up` does (capacity_up.settle
    with the engine: the stack file records the move, Pulumi replaces the empty scale set), then keep
    trying until `wait_seconds` pass. None when no island can move (grow's report stands as it is)."""
    from . import capacity_up

    ready = capacity_up.azure_readiness(spec, ctx)
    if not capacity_up.next_zones(spec, report, {}, ready, []):
        return None
    target = open_target(stack, options or EngineOptions())
    say = _console().print
    return capacity_up.settle(
        spec,
        ctx,
        target.name,
        wait_seconds=wait_seconds,
        move=island_mover(target),
        say=say,
        progress=progress,
        ready=ready,
        initial=report,
        clock=grow_clock,
    )


grow_clock: Any = None
"""The clock `grow_elsewhere` waits with (None: real time; tests pass one that does not sleep)."""


class _ShortUpdate(UpdateFailed):
    """An update Azure could not place whole, after the capacity step: the resources that failed (as
    `up` always lists them) and the capacity document (what each island obtained and why)."""

    def __init__(self, err: UpdateFailed, document: dict[str, Any], hint: str = "") -> None:
        super().__init__(err.stack, err.operation, err.failures, err.detail)
        self.document = document
        if hint:
            self.hint = f"{hint}; or {self.hint}"

    def document_fields(self) -> dict[str, Any]:
        return self.document


role_wait: Callable[[float], None] = time.sleep
"""How `up` waits for new role assignments to take effect (tests replace it)."""


def _deploy(target: Target, spec: ClusterSpec, refresh: bool, document: dict[str, Any]) -> Any:
    """The deployment itself, retried once when Managed Lustre met role assignments still propagating."""
    from . import rolewait

    name = target.name
    try:
        with _live(f"up {name}") as view:
            return target.engine.up(target.ref, view, refresh=refresh)
    except UpdateFailed as err:
        reason = rolewait.propagation_failure(err, spec)
        if reason is None:
            raise
    from .render import markup

    _console().print(markup("[yellow]{}[/]", reason), soft_wrap=True)
    document["retried"] = {"reason": reason, "waited_seconds": rolewait.WAIT_SECONDS}
    role_wait(rolewait.WAIT_SECONDS)
    with _live(f"up {name} (retry)") as view:
        return target.engine.up(target.ref, view, refresh=False)


def _refresh_hostfiles(spec: ClusterSpec, stack: str, connection: AzureOptions) -> dict[str, Any]:
    """The last step of `up`: hostfiles on the login node. Says on stderr how it went; never raises."""
    from .ops import loginhosts

    result = hostfile_refresher(spec, stack, connection)
    loginhosts.print_refresh(result, stack)
    return result.to_json()


def _hand_over_users(spec: ClusterSpec, stack: str, connection: AzureOptions) -> dict[str, Any] | None:
    """After the hostfiles: the team's users file to the shared home, when the stack has a team (the nodes
    apply it by themselves; nothing of it is in a VM's model). Says on stderr how it went; never raises."""
    from .ops import users

    if not users.has_team(spec):
        return None
    result = users_handover(spec, stack, connection)
    users.print_handover(result, stack)
    return result.to_json()


def _install_dashboards(
    spec: ClusterSpec, stack: str, outputs: Mapping[str, OutputValue], connection: AzureOptions
) -> dict[str, Any] | None:
    """After the users file: the dashboards into Grafana, when the stack has monitoring. Says on stderr
    how it went; never raises."""
    if not spec.monitoring.enabled:
        return None
    from . import grafana

    result = dashboards_installer(spec, outputs, connection)
    grafana.print_install(result, stack)
    return result.to_json()


def _private_key_for(spec: ClusterSpec) -> str:
    """The private key whose public half the spec carries, when it is one of the usual ~/.ssh files."""
    wanted = {" ".join(key.split()[:2]) for key in spec.ssh.public_keys}
    ssh_dir = Path.home() / ".ssh"
    for stem in ("id_ed25519", "id_ecdsa", "id_rsa"):
        public = ssh_dir / f"{stem}.pub"
        try:
            text = " ".join(public.read_text(encoding="utf-8").split()[:2])
        except OSError:
            continue
        if text in wanted:
            return f"~/.ssh/{stem}"
    return "<private key for ssh.public_keys>"


def access(stack: str, spec: ClusterSpec, outputs: Mapping[str, OutputValue]) -> dict[str, Any]:
    """How to reach the cluster: Bastion SSH to the login node, hostfiles, the Lustre mount."""

    def value(key: str) -> Any:
        out = outputs.get(key)
        return out.value if out is not None and not out.secret else None

    rg = value("resource_group_name") or spec.resource_group_name
    ip = value("login_private_ip")
    user = spec.ssh.admin_username
    key = _private_key_for(spec)
    ssh = None
    if ip and spec.network.bastion:
        bastion = value("bastion_name") or f"{spec.name}-bastion"
        vm_id = value("login_vm_id")
        target = f"--target-resource-id {vm_id}" if vm_id else f"--target-ip-address {ip}"
        ssh = (
            f"az network bastion ssh --name {bastion} --resource-group {rg} {target} "
            f"--auth-type ssh-key --username {user} --ssh-key {key}"
        )
    elif ip:
        ssh = f"ssh -i {key} {user}@{ip}"
    return {
        "resource_group": rg,
        "login_private_ip": ip,
        "ssh": ssh,
        "hostfiles": f"azcluster hosts {stack}",
        "lustre_mount": value("lustre_mount_command"),
        "blob_account": value("blob_account_name"),
        "grafana": value("grafana_endpoint"),
    }


def render_up(document: Mapping[str, Any]) -> None:
    """What a user needs after `up`: how to log in, get hostfiles, mount Lustre (stdout, for people)."""
    from .render import markup, stdout

    reach = document.get("access") or {}
    stdout.print(
        markup(
            "[bold green]{} is up[/] (~${:,.2f}/h)", document["stack"], document.get("cost_per_hour_usd") or 0
        )
    )
    if reach.get("ssh"):
        stdout.print(f"  login node:  {reach['ssh']}", soft_wrap=True)
    hostfiles = f"{reach.get('hostfiles')}"
    if (document.get("hostfiles") or {}).get("state") == "installed":
        from azcluster.components.bootstrap import HOSTFILE_DIR

        hostfiles = f"{HOSTFILE_DIR}/<pool>-i<island> on the login node; `{hostfiles}` prints them"
    stdout.print(f"  hostfiles:   {hostfiles}", soft_wrap=True)
    if reach.get("lustre_mount"):
        stdout.print(f"  Lustre:      {reach['lustre_mount']}", soft_wrap=True)
    if reach.get("blob_account"):
        stdout.print(f"  blob data:   {reach['blob_account']}", soft_wrap=True)
    stdout.print(f"  stop paying: azcluster down {document['stack']}  (keeps data)")


# --- preview ----------------------------------------------------------------------------------------


def preview(
    stack: str, *, options: EngineOptions | None = None, suppress: Sequence[str] = (), quiet: bool = False
) -> dict[str, Any]:
    """The engine's real preview: what `up` would create, change or delete, and the cost once running."""
    target = open_target(stack, options or EngineOptions())
    spec = validated(target, suppress, quiet)
    target.engine.check_secrets(target.ref)
    _notes(target)
    with _console().status(f"previewing {target.name} …"):
        result = target.engine.preview(target.ref)
    return {
        "stack": target.name,
        "ok": True,
        "changes": count_changes(result.changes),
        "steps": [step.to_json() for step in result.steps],
        "cost_per_hour_usd": cost_per_hour(spec),
    }


def render_preview(document: Mapping[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from .live import short_type
    from .render import stdout

    steps = document.get("steps") or []
    if steps:
        table = Table(show_header=True, header_style="bold")
        for column in ("op", "type", "name"):
            table.add_column(column, no_wrap=column != "name")
        style = {"create": "green", "delete": "red", "replace": "yellow", "update": "yellow"}
        for step in steps:
            op = step["op"]
            table.add_row(Text(op, style=style.get(op, "white")), short_type(step["type"]), step["name"])
        stdout.print(table)
    cost = document.get("cost_per_hour_usd")
    cost_text = f"; ~${cost:,.2f}/hour once running" if cost is not None else ""
    stdout.print(f"{document['stack']}: {changes_text(document['changes'])}{cost_text}")


# --- down ---------------------------------------------------------------------------------------------


ARCHIVE_BUSY = ("InProgress", "FSScanInProgress", "Cancelling")


def managed(resources: Sequence[StateResource]) -> list[StateResource]:
    """Resources Azure holds (not the stack, providers or components)."""
    return [r for r in resources if r.custom and not r.is_provider]


def has_blob_integration(resource: StateResource) -> bool:
    for props in (resource.outputs, resource.inputs):
        hsm = props.get("hsm") if isinstance(props, Mapping) else None
        settings = hsm.get("settings") if isinstance(hsm, Mapping) else None
        if isinstance(settings, Mapping) and settings.get("container"):
            return True
    return False


def _parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Azure writes up to 7 fractional digits; Python reads 6
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class ArchiveVerdict:
    ok: bool
    reason: str


def archive_verdict(outputs: Mapping[str, Any], since: datetime | None) -> ArchiveVerdict:
    """Whether a Managed Lustre file system's changes are in blob: an archive of `/` that completed and
    started after `since` (when the cluster's compute last changed). Reads `hsm.archiveStatus` as Azure
    reports it (states: NotConfigured, Idle, InProgress, Canceled, Completed, Failed, Cancelling,
    FSScanInProgress)."""
    hsm = outputs.get("hsm") if isinstance(outputs.get("hsm"), Mapping) else {}
    entries = [e for e in (hsm.get("archiveStatus") or []) if isinstance(e, Mapping)]
    statuses = [(e.get("filesystemPath") or "/", e.get("status") or {}) for e in entries]
    for path, status in statuses:
        if status.get("state") in ARCHIVE_BUSY:
            percent = status.get("percentComplete")
            done = f", {percent}% done" if percent is not None else ""
            return ArchiveVerdict(False, f"an archive of {path} is still running ({status['state']}{done})")
    for path, status in statuses:
        if status.get("state") == "Failed":
            why = status.get("errorMessage") or status.get("errorCode") or "no reason given"
            return ArchiveVerdict(False, f"the last archive of {path} failed: {why}")
    completed = [
        (_parse_time(status.get("lastStartedTime")), status)
        for path, status in statuses
        if status.get("state") == "Completed" and path in ("/", "")
    ]
    if not completed:
        return ArchiveVerdict(False, "no completed archive of the whole file system (/) to blob")
    started = max((moment for moment, _ in completed if moment), default=None)
    if since is not None and (started is None or started < since):
        when = started.isoformat() if started else "at an unknown time"
        return ArchiveVerdict(
            False, f"the last archive started {when}, before the cluster last changed ({since.isoformat()})"
        )
    return ArchiveVerdict(True, f"archived to blob (started {started.isoformat() if started else '?'})")


def _resource_group_of(resource: StateResource) -> str:
    parts = resource.id.split("/")
    lowered = [p.lower() for p in parts]
    if "resourcegroups" in lowered:
        index = lowered.index("resourcegroups")
        if index + 1 < len(parts):
            return parts[index + 1]
    return str(resource.inputs.get("resourceGroupName") or "<resource-group>")


def _azure_name(resource: StateResource) -> str:
    return str(resource.outputs.get("name") or resource.id.rsplit("/", 1)[-1] or resource.name)


def archive_hint(stack: str, filesystems: Sequence[StateResource]) -> str:
    lines = []
    for fs in filesystems:
        name, rg = _azure_name(fs), _resource_group_of(fs)
        lines.append(f"`az amlfs archive --amlfs-name {name} --resource-group {rg} --filesystem-path /`")
        lines.append(
            f"wait until `az amlfs show --amlfs-name {name} --resource-group {rg} "
            '--query "hsm.archiveStatus[0].status.state"` says Completed'
        )
    return (
        "archive to blob first: "
        + "; then ".join(lines)
        + f"; then re-run `azcluster down {stack} --delete-data`. Anything written to Lustre and not "
        "archived is lost when the file system is deleted"
    )


def _kept_json(resources: Sequence[StateResource]) -> list[dict[str, Any]]:
    return [{"urn": r.urn, "type": r.type, "name": r.name, "id": r.id, "data": r.protect} for r in resources]


def down(
    stack: str,
    *,
    yes: bool = False,
    delete_data: bool = False,
    options: EngineOptions | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> dict[str, Any]:
    """Destroy the cluster, keeping protected storage (and what it stands on) unless --delete-data."""
    target = open_target(stack, options or EngineOptions())
    name, engine, ref = target.name, target.engine, target.ref
    engine.check_secrets(ref)
    _notes(target)
    before = managed(engine.state(ref))
    if not before:
        _console().print(f"{name}: nothing is deployed")
        return {"stack": name, "ok": True, "destroyed": 0, "kept": [], "data_deleted": False}
    data = [r for r in before if r.protect]
    data_text = ", ".join(f"{r.name} ({r.type.rsplit(':', 1)[-1]})" for r in data) or "none"
    if delete_data:
        confirm_by_name(
            name,
            f"Destroy all {len(before)} resources of {name}, INCLUDING DATA: {data_text}?",
            yes=yes,
        )
    else:
        question = (
            f"Destroy stack {name}'s cluster, keeping the storage that holds data ({data_text}) and what it "
            "stands on?"
            if data
            else f"Destroy all {len(before)} resources of stack {name}?"
        )
        confirm(question, yes=yes, action="destroy the cluster")

    destroyed = 0
    with _live(f"down {name}") as view:
        result = engine.destroy(ref, view, exclude_protected=True)
    destroyed += int(result.changes.get("delete", 0))
    compute_changed_at = now() if destroyed else None
    kept = managed(engine.state(ref))
    document: dict[str, Any] = {"stack": name, "ok": True, "destroyed": destroyed, "data_deleted": False}
    if not delete_data or not kept:
        document["kept"] = _kept_json(kept)
        return document

    filesystems = [r for r in kept if r.type == AML_FILESYSTEM and has_blob_integration(r)]
    if filesystems:
        since = compute_changed_at or _last_change(engine, ref)
        if compute_changed_at is not None:
            verdicts = [
                ArchiveVerdict(
                    False,
                    "the cluster's nodes were removed just now; changes since the last archive "
                    "are not in blob yet",
                )
            ]
        else:
            engine.refresh(ref, targets=[fs.urn for fs in filesystems])
            fresh = {r.urn: r for r in engine.state(ref)}
            verdicts = [archive_verdict(fresh.get(fs.urn, fs).outputs, since) for fs in filesystems]
        refused = [v for v in verdicts if not v.ok]
        if refused:
            document["kept"] = _kept_json(kept)
            raise CommandFailed(
                AzclusterError(
                    f"{name}: the cluster is down but its data is kept: Managed Lustre with blob integration "
                    f"is not archived ({refused[0].reason})",
                    archive_hint(name, filesystems),
                    EXIT_REFUSED,
                ),
                document,
            )
    engine.release(ref, [r.urn for r in kept])
    with _live(f"down {name} --delete-data") as view:
        result = engine.destroy(ref, view, exclude_protected=False)
    document["destroyed"] = destroyed + int(result.changes.get("delete", 0))
    document["data_deleted"] = True
    document["kept"] = _kept_json(managed(engine.state(ref)))
    return document


def _last_change(engine: Engine, ref: StackRef) -> datetime | None:
    """When the stack last created, changed or deleted resources (refreshes do not count)."""
    for entry in engine.history(ref):
        if entry.kind in ("update", "destroy") and (entry.end_time or entry.start_time):
            return entry.end_time or entry.start_time
    return None


def render_down(document: Mapping[str, Any]) -> None:
    from .render import markup, stdout

    kept = document.get("kept") or []
    data = [k for k in kept if k.get("data")]
    verb = "deleted, data included" if document.get("data_deleted") else "is down"
    count = document.get("destroyed", 0)
    stdout.print(
        markup(
            "[bold]{}[/] {}: {} resource{} destroyed",
            document["stack"],
            verb,
            count,
            "s" if count != 1 else "",
        )
    )
    if data:
        stdout.print("kept (holds data; delete with `--delete-data`):")
        for item in data:
            stdout.print(f"  {item['type'].rsplit(':', 1)[-1]} {item['name']}  {item['id']}", soft_wrap=True)
        rest = len(kept) - len(data)
        if rest:
            plural = "s" if rest != 1 else ""
            stdout.print(f"  and {rest} resource{plural} the data stands on (resource group, network)")
        stdout.print(f"`azcluster up {document['stack']}` brings the cluster back onto the same data")


# --- refresh, outputs, cancel -------------------------------------------------------------------------


def refresh(stack: str, *, yes: bool = False, options: EngineOptions | None = None) -> dict[str, Any]:
    """Read what exists in Azure back into the stack's state (nothing in Azure changes)."""
    target = open_target(stack, options or EngineOptions())
    target.engine.check_secrets(target.ref)
    _notes(target)
    confirm(
        f"Refresh the state of {target.name} from Azure (resources deleted outside azcluster are dropped)?",
        yes=yes,
        action="refresh the stack's state",
    )
    with _live(f"refresh {target.name}") as view:
        result = target.engine.refresh(target.ref, view)
    return {"stack": target.name, "ok": True, "changes": dict(result.changes)}


def outputs(
    stack: str, *, show_secrets: bool = False, options: EngineOptions | None = None
) -> dict[str, Any]:
    target = open_target(stack, options or EngineOptions())
    target.engine.check_secrets(target.ref)
    found = target.engine.outputs(target.ref)
    document: dict[str, Any] = {"stack": target.name, "ok": True, "outputs": masked(found, show_secrets)}
    if target.loaded.spec is not None:
        document["access"] = access(target.name, target.loaded.spec, found)
    return document


def dashboard(
    stack: str,
    *,
    install: bool = False,
    options: EngineOptions | None = None,
    connection: AzureOptions | None = None,
) -> dict[str, Any]:
    """Grafana's URL and each dashboard's, from the stack's outputs (an existing Grafana's from Azure);
    with `install`, the dashboards put (back) into Grafana first (exit 1 naming what Grafana said)."""
    from azcluster.components import catalog

    from . import grafana

    target = open_target(stack, options or EngineOptions())
    spec = target.loaded.spec
    if spec is None or not spec.monitoring.enabled:
        raise AzclusterError(
            f"stack {target.name} has no monitoring, so no Grafana",
            "add `monitoring: {enabled: true}` under azcluster:cluster in the stack file and run "
            f"`azcluster up {target.name}`",
            EXIT_REFUSED,
        )
    target.engine.check_secrets(target.ref)
    found = target.engine.outputs(target.ref)
    # connect at most once: endpoint_of may need Azure, and --install does
    connect = functools.cache((connection or AzureOptions()).connect)

    endpoint = grafana.endpoint_of(spec, found, connect)
    document: dict[str, Any] = {
        "stack": target.name,
        "ok": True,
        "grafana": endpoint,
        "dashboards": [
            {"name": name, "title": board["title"], "url": f"{endpoint}/d/{board['uid']}"}
            for name, board in zip(catalog.DASHBOARDS, grafana.cluster_dashboards(spec.name), strict=True)
        ],
    }
    if install:
        document["installed"] = grafana.install(grafana.connect(endpoint, connect()), spec.name).to_json()
    return document


def render_dashboard(document: Mapping[str, Any]) -> None:
    from .render import markup, stdout

    stdout.print(markup("[bold]Grafana[/] {}", document["grafana"]), soft_wrap=True)
    for board in document["dashboards"]:
        stdout.print(markup("  {}  {}", board["title"], board["url"]), soft_wrap=True)
    if document.get("installed"):
        stdout.print(f"installed {len(document['installed']['installed'])} dashboards", soft_wrap=True)


def render_outputs(document: Mapping[str, Any]) -> None:
    import json

    from rich.table import Table

    from .render import stdout

    table = Table(show_header=True, header_style="bold")
    table.add_column("output", no_wrap=True)
    table.add_column("value")
    for key, value in sorted((document.get("outputs") or {}).items()):
        shown = value if isinstance(value, str) else json.dumps(value)
        table.add_row(key, shown)
    stdout.print(table)


def cancel(stack: str, *, yes: bool = False, options: EngineOptions | None = None) -> dict[str, Any]:
    """Release a stuck lock. Only safe when the update that took it is really gone."""
    target = open_target(stack, options or EngineOptions())
    confirm(
        f"Release the lock on {target.name}? Only do this if no `azcluster up/down` is still running on it",
        yes=yes,
        action="release the stack's lock",
    )
    target.engine.cancel(target.ref)
    _console().print(
        f"released the lock on {target.name}; run `azcluster refresh {target.name}` so the state matches "
        "Azure before the next `up`"
    )
    return {"stack": target.name, "ok": True, "cancelled": True}


# --- list ---------------------------------------------------------------------------------------------


def list_stacks(options: EngineOptions | None = None) -> dict[str, Any]:
    """Every stack: files under stacks/ and stacks the backend knows, with state, size and cost."""
    from . import stackfile

    engine = engine_factory(options or EngineOptions())
    known = {summary.name.rsplit("/", 1)[-1]: summary for summary in engine.list_stacks()}
    names = sorted(set(stackfile.available_stacks()) | set(known))
    rows = []
    for name in names:
        summary = known.get(name)
        nodes = cost = None
        has_file = True
        try:
            loaded = stackfile.load_stack(name)
            if loaded.spec is not None:
                nodes, cost = loaded.spec.total_nodes, cost_per_hour(loaded.spec)
        except AzclusterError:
            has_file = False
        if summary is None:
            state = "not deployed"
        elif summary.update_in_progress:
            state = "updating"
        elif summary.resource_count:
            state = "deployed"
        else:
            state = "empty"
        rows.append(
            {
                "stack": name,
                "state": state if has_file else f"{state} (no stack file)",
                "last_update": summary.last_update.isoformat() if summary and summary.last_update else None,
                "resources": summary.resource_count if summary else None,
                "nodes": nodes,
                "cost_per_hour_usd": cost,
            }
        )
    return {"ok": True, "stacks": rows}


def render_list(document: Mapping[str, Any]) -> None:
    from rich.table import Table

    from .render import stdout

    table = Table(show_header=True, header_style="bold")
    for column in ("stack", "state", "last update", "resources", "nodes", "USD/h"):
        table.add_column(column, justify="right" if column in ("resources", "nodes", "USD/h") else "left")
    for row in document["stacks"]:
        cost = row["cost_per_hour_usd"]
        table.add_row(
            row["stack"],
            row["state"],
            (row["last_update"] or "—")[:19].replace("T", " "),
            "—" if row["resources"] is None else str(row["resources"]),
            "—" if row["nodes"] is None else str(row["nodes"]),
            "—" if cost is None else f"{cost:,.2f}",
        )
    stdout.print(table)

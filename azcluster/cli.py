"""The `azcluster` command line. Thin: each command parses, calls one function, renders.

Heavy modules (pulumi, pulumi_azure_native, the Azure SDKs) are imported inside the commands that need
them, so `azcluster --help` starts fast. Expected failures are AzclusterError: one message, a hint, and
the exit code docs/architecture.md defines; a traceback only with --debug.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from typer.core import TyperGroup

try:  # typer >= 0.29 vendors click
    from typer._click import Context
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer on plain click
    from click import Context
    from click.exceptions import ClickException

from . import __version__
from .errors import EXIT_REFUSED, EXIT_USAGE, AzclusterError

_state = {"debug": False}
_INVOKED = "azcluster.invoked"
EXIT_INTERRUPTED = 130


class _Commands(TyperGroup):
    """Runs every command with the house's failure rules: one clear message, a hint, an exit code, and
    with `--json` one document on stdout however the command ends (docs/architecture.md, "Promises the
    command line keeps").
    """

    def resolve_command(self, ctx: Context, args: list[str]):  # type: ignore[override]
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[_INVOKED] = (name, command, list(rest))
        return name, command, rest

    def invoke(self, ctx: Context):  # type: ignore[override]
        if render := sys.modules.get("azcluster.render"):
            render.documents_printed = 0
        try:
            return super().invoke(ctx)
        except typer.Exit:
            raise
        except ClickException as err:  # bad usage; click prints its own message on stderr
            _json_failure(ctx, err.format_message(), "see `--help`", err.exit_code)
            raise
        except typer.Abort:
            _json_failure(ctx, "aborted", "", EXIT_REFUSED)
            raise
        except AzclusterError as err:
            _json_failure(ctx, error=err)
            if _state["debug"]:
                raise
            _report(err.message, err.hint)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            _json_failure(ctx, "interrupted", "", EXIT_INTERRUPTED)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as err:  # the last line of defence: no traceback without --debug
            message = f"unexpected {type(err).__name__}: {err}"
            hint = "re-run with --debug for the traceback, and report it if it persists"
            _json_failure(ctx, message, hint, EXIT_REFUSED)
            if _state["debug"]:
                raise
            _report(message, hint)
            raise typer.Exit(EXIT_REFUSED) from None


def _json_failure(
    ctx: Context,
    message: str = "",
    hint: str = "",
    exit_code: int = EXIT_REFUSED,
    error: AzclusterError | None = None,
) -> None:
    """With --json, the failure document on stdout, unless the command already printed its document."""
    from . import render
    from .errors import document_of, error_document

    wanted, stack = _json_wanted(ctx)
    if not wanted or render.documents_printed:
        return
    render.print_json(document_of(stack, error) if error else error_document(stack, message, hint, exit_code))


def _json_wanted(ctx: Context) -> tuple[bool, str | None]:
    """(--json given, stack name) for the command being run, read back through click's own parser."""
    invoked = ctx.meta.get(_INVOKED)
    if invoked is None:
        return False, None
    name, command, args = invoked
    try:
        with command.make_context(name, list(args), parent=ctx, resilient_parsing=True) as parsed:
            params = dict(parsed.params)
    except Exception:  # noqa: BLE001 - unparseable even leniently: fall back to the raw words
        params = {"json": "--json" in args}
    stack = params.get("stack")
    if isinstance(stack, str):
        from .stackfile import stack_name

        stack = stack_name(stack)
    return bool(params.get("json")), stack


def _report(message: str, hint: str) -> None:
    from . import render

    render.error(message, hint)


app = typer.Typer(
    cls=_Commands,
    name="azcluster",
    help="Bring InfiniBand GPU supercomputing clusters up and down on Azure.\n\n"
    "Start with `azcluster init NAME`, check it with `azcluster validate NAME` and "
    "`azcluster plan NAME` (offline), then `azcluster preflight NAME` and `azcluster up NAME`.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _complete_stack(incomplete: str) -> list[str]:
    """Shell completion for STACK: the stack files' names (`--install-completion` turns it on)."""
    from .stackfile import available_stacks

    try:
        return [name for name in available_stacks() if name.startswith(incomplete)]
    except OSError:
        return []


StackArg = Annotated[
    str,
    typer.Argument(
        metavar="STACK",
        help="Stack name (`stacks/Pulumi.<STACK>.yaml`) or path to a stack file.",
        show_default=False,
        autocompletion=_complete_stack,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")]


def _known_ids(ids: list[str] | None) -> list[str] | None:
    """`--suppress AZC999` is a typo that silences nothing: say so (exit 2), as AZC053 does in the spec."""
    if not ids:
        return ids
    from azcluster.components.rules import RULES

    for ident in ids:
        if ident.strip().upper() not in RULES:
            raise typer.BadParameter(
                f"{ident!r} is not a finding id (ids run from {min(RULES)} to {max(RULES)}); "
                "the finding table and `--json` show each finding's id"
            )
    return ids


SuppressOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--suppress",
        metavar="ID",
        help="Silence a finding id (repeatable), e.g. AZC012.",
        callback=_known_ids,
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"azcluster {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for unexpected errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    _state["debug"] = debug
    _azure_logging(debug)


def _azure_logging(debug: bool) -> None:
    """The Azure SDKs' log lines (azure-identity's "AzureCliCredential.get_token_info failed: ..." before
    azcluster says the same with a hint) only with --debug, then on stderr with their logger names."""
    import logging

    class Stderr(logging.StreamHandler):
        """Writes to whatever sys.stderr is when a record comes (a test runner swaps it)."""

        stream = property(lambda self: sys.stderr, lambda self, value: None)  # type: ignore[assignment]

    logger = logging.getLogger("azure")
    logger.setLevel(logging.DEBUG if debug else logging.CRITICAL + 1)
    if debug and not any(type(h).__name__ == "Stderr" for h in logger.handlers):
        handler = Stderr()
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s: %(message)s"))
        logger.addHandler(handler)


# --- the spec: validate, schema, skus, init (issue 2) -------------------------------------------------


@app.command()
def validate(stack: StackArg, json: JsonOpt = False, suppress: SuppressOpt = None) -> None:
    """Check a stack file against Azure's rules, offline. Exit 1 when there are errors."""
    from azcluster.components.findings import has_errors

    from . import render, stackfile

    loaded = stackfile.load_stack(stack)
    findings = stackfile.validate(loaded, suppress or ())
    ok = not has_errors(findings)
    if json:
        render.print_json(
            {"stack": loaded.name, "ok": ok, "findings": [finding.to_json() for finding in findings]}
        )
    else:
        render.print_findings(findings, str(loaded.path))
        verdict = "[green]valid[/]" if ok else "[bold red]has errors[/]"
        counts = ", ".join(
            render.count(sum(f.severity == s for f in findings), s, plural)
            for s, plural in (("error", "errors"), ("warning", "warnings"), ("info", "info"))
        )
        render.console.print(render.markup("{}: " + verdict + " ({})", loaded.path, counts))
    if not ok:
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def schema(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to this file instead of stdout."),
    ] = None,
) -> None:
    """Print the JSON Schema of `azcluster:cluster`, for editor completion of stack files."""
    import json

    from azcluster.components.spec import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if output:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as err:
            raise AzclusterError(
                f"cannot write {output}: {err.strerror or err}",
                "give a file in an existing, writable folder",
                EXIT_USAGE,
            ) from None
    else:
        sys.stdout.write(text)


@app.command()
def skus(json: JsonOpt = False) -> None:
    """List the GPU VM sizes azcluster knows, with InfiniBand, quota family and price."""
    from azcluster.components import catalog

    from . import render
    from . import skus as skus_view

    sizes = list(catalog.gpu_sizes().values())
    if json:
        render.print_json([size.model_dump() for size in sizes])
        return
    skus_view.print_skus(sizes, render.stdout)


@app.command()
def init(
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="Cluster and stack name, e.g. `research`.", show_default=False),
    ],
    size: Annotated[
        str, typer.Option(metavar="SIZE", help="GPU VM size (`azcluster skus`).")
    ] = "Standard_ND96asr_v4",
    nodes: Annotated[int, typer.Option(min=0, metavar="N", help="Number of GPU nodes.")] = 2,
    location: Annotated[str, typer.Option(metavar="REGION", help="Azure region.")] = "eastus",
    lustre_tib: Annotated[
        int, typer.Option(min=0, metavar="TIB", help="Managed Lustre capacity in TiB; 0 for none.")
    ] = 0,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing stack file.")] = False,
    ssh_key: Annotated[
        Path | None,
        typer.Option(
            "--ssh-key",
            metavar="PUB",
            help="Public key file the nodes trust. Default: ~/.ssh/id_ed25519.pub or id_rsa.pub; without "
            "one, azcluster makes a key pair once in ~/.azcluster/ssh (private key mode 0600).",
            show_default=False,
        ),
    ] = None,
    elastic: Annotated[
        bool, typer.Option("--elastic/--no-elastic", help="Power idle GPU nodes off and on by themselves.")
    ] = True,
    monitoring: Annotated[
        bool,
        typer.Option(
            "--monitoring/--no-monitoring",
            help="Metrics, dashboards and alerts in Azure Monitor managed Prometheus and Managed Grafana.",
        ),
    ] = True,
) -> None:
    """Write a commented stack file, stacks/Pulumi.NAME.yaml, that validates as written.

    Exit 1 (nothing written) when the cluster the options describe fails validation; the findings say
    which option to change. Exit 2 for a bad name, an existing file (without --force) or an unusable key.
    """
    from . import render, scaffold, stackfile

    path = stackfile.stacks_dir() / f"Pulumi.{name}.yaml"
    try:
        result = scaffold.write_stack(
            path,
            name,
            size,
            nodes,
            location,
            lustre_tib,
            force=force,
            ssh_key=ssh_key,
            elastic=elastic,
            monitoring=monitoring,
        )
    except scaffold.NotWritten as refused:
        render.print_findings(refused.findings, str(refused.path))
        raise
    render.console.print(render.markup("[green]wrote[/] {}", path), soft_wrap=True)
    key = result.key
    if key.created:
        private = key.path.with_suffix("")
        render.console.print(
            f"made an SSH key pair for azcluster: {private} (no passphrase; `ssh-keygen -p -f {private}` "
            "sets one). The nodes trust its public key.",
            soft_wrap=True,
            markup=False,
        )
    else:
        render.console.print(f"SSH key: {key.path}", soft_wrap=True, markup=False)
    render.console.print(f"next: `azcluster validate {name}` and `azcluster plan {name}`", markup=False)


# --- plan (issue 3) ------------------------------------------------------------------------------------


@app.command()
def plan(
    stack: StackArg,
    json: JsonOpt = False,
    suppress: SuppressOpt = None,
    show_boot: Annotated[
        Path | None,
        typer.Option(
            "--show-boot",
            metavar="DIR",
            help="Also write what each node runs at first boot, to review before `up`: one cloud-config "
            "per VM and scale set, DIR/<Azure name>.yaml (the login node, each pool's IB islands), decoded, "
            "with the munge key masked as [secret]. DIR is created if missing.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the stack's program offline under Pulumi mocks (no Azure, no credentials, no Pulumi CLI).

    Shows the findings, every resource with its key settings, and the summary: nodes, GPUs, scale sets,
    InfiniBand islands, estimated cost and the vCPU quota per family. Exit 1 when there are error findings.
    With --json, a custom data that holds a secret (the munge key) is shown decoded with that file masked:
    {"cloudConfig": ..., "secretsMasked": [...]}.
    """
    from . import plan as planner
    from . import render, stackfile

    if _PROCESS_ENDS:
        planner.pause_collector_until_exit()  # the plan's garbage goes with the process (~1 ms a scale set)
    result = planner.plan_stack(stackfile.load_stack(stack), suppress or ())
    if json:
        render.print_json(result.to_json())
        planner.show_messages(result)  # stderr
    else:
        planner.show(result)
    if show_boot is not None and result.ok:
        _write_boot(planner, result, show_boot)
    planner.settle_before_exit()  # the process ends next: spare its exit a collector pass (~0.3 s)
    if not result.ok:
        raise planner.refusal(result)


def _write_boot(planner: Any, result: Any, directory: Path) -> None:
    """--show-boot: the files go to DIR; what was written (or left out) is said on stderr."""
    from . import render

    written, unshown = planner.write_boot_documents(result, directory)
    for name in unshown:
        render.console.print(
            render.markup(
                "[yellow]warning:[/] the custom data of {} is not shown: it holds a secret outside the files "
                "known to hold one",
                name,
            )
        )
    render.console.print(
        render.markup("wrote {} cloud-config(s) to {} (secrets masked)", len(written), str(directory))
    )


# --- end plan ------------------------------------------------------------------------------------------


# --- talking to Azure: preflight, status, stop, start, hosts (issue 4) -------------------------------------
# Each command: load the stack, connect (azcluster.azure), call one function, render. The Azure SDKs are
# imported inside those functions, never here.

SubscriptionOpt = Annotated[
    str | None,
    typer.Option(
        "--subscription",
        metavar="ID",
        help="Subscription id (or a name the Azure CLI knows). Default: AZURE_SUBSCRIPTION_ID, then the "
        "Azure CLI's default subscription.",
        show_default=False,
    ),
]
AuthOpt = Annotated[
    Literal["cli", "env", "msi", "oidc"] | None,
    typer.Option(
        "--auth",
        help="Credential to use: Azure CLI login, service principal in AZURE_* variables, managed identity, "
        "or workload identity federation (OIDC). Default: try them in turn (DefaultAzureCredential).",
        show_default=False,
    ),
]
CloudOpt = Annotated[
    Literal["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"] | None,
    typer.Option(
        "--cloud",
        case_sensitive=False,
        help="Azure cloud. Default: the Azure CLI's cloud for the subscription, else AzureCloud. "
        "AZCLUSTER_ARM_ENDPOINT overrides the Resource Manager endpoint.",
        show_default=False,
    ),
]


def _connect(subscription: str | None, auth: str | None, cloud: str | None, command: str):  # noqa: ANN202
    """The Azure context for `command`, with that command's deadline (timeouts.COMMAND_DEADLINES_S)."""
    from . import azure
    from .timeouts import COMMAND_DEADLINES_S

    return azure.connect(subscription, auth, cloud, deadline_s=COMMAND_DEADLINES_S[command])


@app.command()
def preflight(
    stack: StackArg,
    json: JsonOpt = False,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Ask Azure whether the stack will deploy: sizes offered and not restricted, zones, vCPU quota.

    Exit 0 when it fits; 1 with the blockers, the exact quota increases to request and the regions where
    the sizes are offered; 3 without a credential or subscription.
    """
    from . import preflight as checks
    from . import render
    from .ops.cluster import load_spec

    name, spec = load_spec(stack)
    result = checks.run_preflight(spec, _connect(subscription, auth, cloud, "preflight"), name)
    if json:
        render.print_json(result.to_json())
    else:
        checks.print_report(result)
    if not result.ok:
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def status(
    stack: StackArg,
    json: JsonOpt = False,
    diagnose: Annotated[
        bool,
        typer.Option(
            "--diagnose/--no-diagnose",
            help="Read each unhealthy node's failing check on the node (Azure Run Command: tens of seconds "
            "per node, run in parallel; needs Virtual Machine Contributor).",
        ),
    ] = True,
    diagnose_limit: Annotated[
        int,
        typer.Option("--diagnose-limit", min=1, metavar="N", help="Diagnose at most N unhealthy nodes."),
    ] = 16,
    slurm: Annotated[
        bool,
        typer.Option(
            "--slurm/--no-slurm",
            help="Show each node's Slurm state (idle, allocated, drained + reason), read with sinfo on the "
            "login node (Azure Run Command).",
        ),
    ] = True,
    metrics: Annotated[
        bool,
        typer.Option(
            "--metrics/--no-metrics",
            help="With monitoring on, show each island's GPU utilisation over the last hour, read from the "
            "Azure Monitor workspace (needs Monitoring Data Reader on it).",
        ),
    ] = True,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Show a built cluster: islands, nodes (private IP, power, health), login node, running cost.

    Found by tags, no Pulumi state needed. Unhealthy nodes (Application Health extension) are listed with
    the check that failed, read from the node's health result. Exit 1 when no part of the cluster is found,
    or when an island of the spec has no scale set in Azure (each one is named).
    """
    from . import render
    from .ops.cluster import load_spec
    from .ops.status import cluster_status
    from .ops.status_view import print_status

    name, spec = load_spec(stack)
    result = cluster_status(
        spec,
        _connect(subscription, auth, cloud, "status"),
        name,
        diagnose=diagnose,
        diagnose_limit=diagnose_limit,
        progress=True,
        slurm=slurm,
        metrics=metrics,
    )
    if json:
        render.print_json(result.to_json())
    else:
        print_status(result)
    if not result.found or result.missing:
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def stop(
    stack: StackArg,
    json: JsonOpt = False,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Deallocate every GPU scale set in parallel: no compute is billed; disks, IPs and storage stay.

    Local NVMe scratch is wiped by deallocation. Exit 1 if any island failed (the others stay stopped).
    """
    from . import render
    from .ops.cluster import load_spec
    from .ops.power import stop_cluster
    from .ops.power_view import print_operation

    name, spec = load_spec(stack)
    report = stop_cluster(spec, _connect(subscription, auth, cloud, "stop"), name)
    if json:
        render.print_json(report.to_json())
    else:
        print_operation(report)
    if not report.ok:
        raise typer.Exit(EXIT_REFUSED)


HostfilesOpt = Annotated[
    bool,
    typer.Option(
        "--hostfiles/--no-hostfiles",
        help="Last, refresh the login node's hostfiles (Azure Run Command, tens of seconds; needs Virtual "
        "Machine Contributor). Best effort: a warning, not a failure, when it cannot.",
    ),
]


@app.command()
def start(
    stack: StackArg,
    json: JsonOpt = False,
    hostfiles: HostfilesOpt = True,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Start every GPU scale set in parallel; on allocation or quota failures, say which island failed.

    Then, when an island started, the login node's hostfiles are refreshed (`--no-hostfiles` skips it).
    Exit 1 if any island failed (the others stay running).
    """
    from . import render
    from .ops import loginhosts
    from .ops.cluster import load_spec
    from .ops.power import start_cluster
    from .ops.power_view import print_operation

    name, spec = load_spec(stack)
    ctx = _connect(subscription, auth, cloud, "start")
    report = start_cluster(spec, ctx, name)
    if not json:
        print_operation(report)
    refreshed = None
    if hostfiles and any(outcome.ok for outcome in report.islands):
        refreshed = loginhosts.refresh(spec, name, lambda: ctx, known=report.known())
        loginhosts.print_refresh(refreshed, name)
    if json:
        render.print_json({**report.to_json(), "hostfiles": refreshed.to_json() if refreshed else None})
    if not report.ok:
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def grow(
    stack: StackArg,
    wait: Annotated[
        str | None,
        typer.Option(
            "--wait",
            metavar="DURATION",
            help="Keep trying with back-off for this long (90s, 45m, 2h); default: each pool's "
            "capacity.wait_minutes (0: one try).",
        ),
    ] = None,
    json: JsonOpt = False,
    hostfiles: HostfilesOpt = True,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Bring every island to the nodes its pool asks for, keeping what Azure places.

    Failed instances are removed, the gap is asked for again (with --wait, with back-off until the
    deadline, a line per island saying what Azure last said and when the next try is), and each island
    ends with requested vs obtained. An island Azure placed nothing of moves whole to the next zone or
    stand-in size its pool's `capacity` allows: the stack file records the move and Pulumi replaces that
    empty scale set (so Pulumi must be installed). Ctrl-C while waiting stops with what each island has.
    Exit 1 when an island has fewer nodes than its pool's `capacity.min_nodes` (default: the whole
    island); a partial island the pool accepts is exit 0.
    """
    import time

    from . import azure, lifecycle, render
    from .durations import parse_duration
    from .ops.cluster import load_spec
    from .ops.grow import grow_cluster
    from .ops.grow_view import print_growth

    seconds = parse_duration(wait, "--wait") if wait is not None else None
    name, spec = load_spec(stack)
    longest = (
        seconds if seconds is not None else max((p.capacity.wait_minutes * 60 for p in spec.pools), default=0)
    )
    ctx = azure.connect(subscription, auth, cloud, deadline_s=longest + GROW_DEADLINE_MARGIN_S)
    started = time.monotonic()
    report = grow_cluster(spec, ctx, name, wait_seconds=seconds, progress=not json, movable=True)
    # An island that got nothing moves whole to the next zone (or stand-in) its pool allows, as in `up`
    # (not after Ctrl-C: the islands keep what they have and the document says so).
    moved = None
    if not report.interrupted:
        moved = lifecycle.grow_elsewhere(
            stack,
            spec,
            ctx,
            report,
            wait_seconds=max(0.0, longest - (time.monotonic() - started)),
            progress=not json,
        )
    if moved is not None:
        report = moved.report
        name, spec = load_spec(stack)  # as the stack file now says where each island is
    if not json:
        print_growth(report)
    refreshed = None
    if hostfiles and report.changed:  # the login node's hostfiles list exactly the nodes that exist
        from .ops import loginhosts

        refreshed = loginhosts.refresh(spec, name, lambda: ctx, progress=not json)
        loginhosts.print_refresh(refreshed, name)
    if json:
        document = moved.to_json() if moved is not None else report.to_json()
        render.print_json({**document, "hostfiles": refreshed.to_json() if refreshed else None})
    if not report.ok:
        raise typer.Exit(EXIT_REFUSED)


GROW_DEADLINE_MARGIN_S = 3600.0
"""What `grow` is given beyond its wait: the last try's scale-out and removals (allocating a large island
takes many minutes)."""


@app.command()
def hosts(
    stack: StackArg,
    island: Annotated[
        int | None,
        typer.Option("--island", min=0, metavar="N", help="Only this island (index within its pool)."),
    ] = None,
    pool: Annotated[str | None, typer.Option("--pool", metavar="NAME", help="Only this pool.")] = None,
    fmt: Annotated[
        Literal["plain", "mpi"],
        typer.Option("--format", metavar="plain|mpi", help="plain: one IP per line; mpi: `IP slots=GPUs`."),
    ] = "plain",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Write one file per island, hostfile.POOL.ISLAND, into this directory.",
        ),
    ] = None,
    install: Annotated[
        bool,
        typer.Option(
            "--install",
            help="Write them on the login node instead, one file per island in /etc/azcluster/hostfiles "
            "(Azure Run Command; needs Virtual Machine Contributor).",
        ),
    ] = False,
    json: JsonOpt = False,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Print a hostfile per InfiniBand island (running nodes' private IPs), for mpirun, torchrun or Slurm.

    A job that spans two islands falls back to Ethernet: give each job one island's hostfile. With
    --install they are written on the login node (`start` and `up` refresh them there too).
    """
    from . import render
    from .ops import hosts_view, loginhosts
    from .ops.cluster import load_spec
    from .ops.hosts import hostfiles as read_hostfiles

    name, spec = load_spec(stack)
    if install:
        loginhosts.require_login(spec, name)  # exit 2 before asking Azure anything
    ctx = _connect(subscription, auth, cloud, "hosts")
    installed = None
    if install:
        files, installed = loginhosts.read_and_install(spec, ctx, name, fmt=fmt, island=island, pool=pool)
    else:
        files = read_hostfiles(spec, ctx, name, island=island, pool=pool)
    if json:
        render.print_json(
            {
                "stack": name,
                "islands": [hostfile.to_json() for hostfile in files],
                "install": installed.to_json() if installed else None,
            }
        )
    elif installed:
        hosts_view.note_excluded(files)
        loginhosts.print_install(installed, render.stdout)
        if out is not None:
            hosts_view.print_hostfiles(files, fmt, out)
    else:
        hosts_view.print_hostfiles(files, fmt, out)


users_app = typer.Typer(
    cls=_Commands,
    name="users",
    help="The team's users and groups on every node (the stack's `team:`).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(users_app)


@users_app.command("sync")
def users_sync(
    stack: StackArg,
    json: JsonOpt = False,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Hand the team's users file to the cluster: every node applies it within about 2 minutes.

    The file goes to the shared home through Run Command on the login node (needs Virtual Machine
    Contributor); no VM is changed or re-imaged. Exit 1 when the team has validation errors or the login
    node could not take the file.
    """
    from . import lifecycle, render, stackfile
    from .ops import users

    loaded = stackfile.load_stack(stack)
    spec = lifecycle.valid_spec(loaded, quiet=json, nothing="nothing was handed over")
    users.require_login_and_home(spec, loaded.name)  # exit 2 before asking Azure anything
    ctx = _connect(subscription, auth, cloud, "users sync")
    result = users.sync_users(spec, ctx, loaded.name, progress=not json)
    if json:
        render.print_json({"stack": loaded.name, "ok": True, "sync": result.to_json()})
    else:
        users.print_sync(result, render.stdout)


def _since(text: str | None) -> datetime:
    """--since: a date or date and time (UTC unless it names a zone); default: the 1st of this month."""
    if text is None:
        now = datetime.now(timezone.utc)
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AzclusterError(
            f"--since {text!r} is not a date",
            "give a date or a date and time, e.g. 2026-11-01 or 2026-11-01T08:00",
            EXIT_USAGE,
        ) from None
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    if when > datetime.now(timezone.utc):
        raise AzclusterError(f"--since {text} is in the future", "give a past date", EXIT_USAGE)
    return when


@app.command()
def cost(
    stack: StackArg,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DATE",
            help="Start of the window: 2026-11-01 or 2026-11-01T08:00 (UTC unless a zone is given). "
            "Default: the 1st of this month.",
            show_default=False,
        ),
    ] = None,
    by: Annotated[
        Literal["user", "account", "partition"],
        typer.Option("--by", help="Add the jobs up by user, Slurm account (project) or partition (pool)."),
    ] = "user",
    json: JsonOpt = False,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """What each user, account or partition used and what it cost, from Slurm's accounting (sacct).

    GPU-hours and node-hours of every job since DATE, priced at the catalogue's price of its partition's
    size, each job by its share of its nodes; storage shown apart. Read with sacct on the login node
    through Run Command (needs Virtual Machine Contributor) and `slurm.accounting.enabled`. Exit 1 when
    the accounting cannot be read.
    """
    from . import render
    from .ops import usage
    from .ops.cluster import load_spec
    from .ops.usage_view import print_report

    name, spec = load_spec(stack)
    start = _since(since)
    usage.require_accounting(spec, name)  # exit 2 before asking Azure anything
    report = usage.cluster_report(spec, _connect(subscription, auth, cloud, "cost"), name, start, by)
    if json:
        render.print_json({"stack": name, "ok": True, **usage.report_json(report)})
    else:
        print_report(name, report)


@app.command("test")
def test_cluster(
    stack: StackArg,
    island: Annotated[
        str | None,
        typer.Option("--island", metavar="KEY|N", help="Only this island: its key (gpu-i0) or index."),
    ] = None,
    json: JsonOpt = False,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Run an NCCL all-reduce (RCCL on MI300X) across each InfiniBand island through Slurm.

    Submitted with `sbatch` from the login node (Azure Run Command; needs Virtual Machine Contributor),
    one job per island on its usable nodes; the peak bus bandwidth is compared with what the size should
    reach (catalogue figures, with their sources). Exit 1 when an island is far below or its job fails.
    """
    from . import lifecycle, render
    from .ops import fabrictest, fabrictest_view
    from .ops.cluster import load_spec

    name, spec = load_spec(stack)
    fabrictest.require_login_and_home(spec, name)
    fabrictest.plan_islands(spec, name, island)  # an unknown island is exit 2 before asking Azure
    report = fabrictest.run_test(
        spec, _connect(subscription, auth, cloud, "test"), name, island=island, progress=not json
    )
    if not report.ok:  # with --json, _Commands prints the failure document with the report in it
        if not json:
            fabrictest_view.print_report(report)
        raise lifecycle.CommandFailed(fabrictest.failure(report), report.to_json())
    if json:
        render.print_json(report.to_json())
    else:
        fabrictest_view.print_report(report)


@app.command()
def ssh(
    stack: StackArg,
    remote: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="COMMAND",
            help="Run this command instead of a shell, e.g. `-- nvidia-smi -L`.",
            show_default=False,
        ),
    ] = None,
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            metavar="NAME",
            help="Go on from the login node to this node (host name or private IP; `azcluster status` "
            "lists them).",
            show_default=False,
        ),
    ] = None,
    identity: Annotated[
        Path | None,
        typer.Option(
            "--identity",
            "-i",
            metavar="KEY",
            help="Private key to log in with. Default: the one in ~/.azcluster/ssh or ~/.ssh whose public "
            "key the stack trusts.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        bool,
        typer.Option(
            "--config",
            help="Print an ssh_config entry instead, so plain ssh, scp, rsync and editors reach the login "
            "node and, through it, the nodes: `azcluster ssh STACK --config >> ~/.ssh/config`.",
        ),
    ] = False,
    proxy: Annotated[
        bool,
        typer.Option(
            "--proxy",
            help="Carry stdin/stdout through the tunnel to the login node's port 22 (the ssh_config "
            "entry's ProxyCommand).",
        ),
    ] = False,
    subscription: SubscriptionOpt = None,
) -> None:
    """Log in to the login node over Azure Bastion (or, with --node, to a node through it).

    Runs `az network bastion tunnel` on a free local port and your `ssh` through it; host keys are
    checked and kept in ~/.azcluster/known_hosts. Needs the Azure CLI signed in (`az login`) with its
    bastion extension (`az extension add --name bastion`) and OpenSSH: exit 3 names what is missing.
    Exits with ssh's status.
    """
    from . import bastion
    from .ops.cluster import load_spec

    name, spec = load_spec(stack)
    if config:
        from . import stackfile

        bastion.target_for(spec, name, "")  # exit 2 without a login node or Bastion
        stack_file = stackfile.resolve(stack)[1].resolve()
        sys.stdout.write(bastion.ssh_config(spec, stack_file, _azcluster_command()))
        return
    if proxy:
        bastion.proxy(spec, name, subscription=subscription)
        return
    status = bastion.connect(
        spec, name, subscription=subscription, node=node, identity=identity, remote=remote or ()
    )
    raise typer.Exit(status)


def _azcluster_command() -> list[str]:
    """How to run this azcluster from anywhere: this script, the venv's script, or `python -m azcluster`."""
    import shutil

    script = Path(sys.argv[0])
    if script.name == "azcluster" and script.is_file():
        return [str(script.resolve())]
    beside = Path(sys.executable).parent / "azcluster"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("azcluster")
    return [found] if found else [sys.executable, "-m", "azcluster"]


# --- end talking to Azure ----------------------------------------------------------------------------------


# --- lifecycle through the Pulumi engine: up, preview, down, refresh, outputs, cancel, list (issue 5) ---
# Thin: parse, call one azcluster.lifecycle function, render. pulumi.automation loads inside the engine.

BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        metavar="URL",
        help="Where stack state lives: file://DIR, azblob://CONTAINER?storage_account=ACCOUNT, ... "
        "Default: $PULUMI_BACKEND_URL, else file://~/.azcluster/state.",
    ),
]
SecretsOpt = Annotated[
    str | None,
    typer.Option(
        "--secrets-provider",
        metavar="PROVIDER",
        help="How the stack's secrets are encrypted: passphrase (PULUMI_CONFIG_PASSPHRASE[_FILE]) or "
        "azurekeyvault://VAULT.vault.azure.net/keys/KEY. "
        "Default: what the stack file records, else passphrase.",
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Confirm without asking (required when there is no terminal, e.g. CI)."),
]


def _engine_options(backend: str | None, secrets_provider: str | None):
    from .engine import EngineOptions

    return EngineOptions(backend=backend, secrets_provider=secrets_provider)


def _lifecycle(json: bool, stack: str | None, work, show) -> None:
    """Run one lifecycle function: its document on stdout with --json, else `show`.

    A failure's document is printed where every command's is (_Commands.invoke)."""
    from . import render

    try:
        document = work()
    except AzclusterError as err:
        if not json and hasattr(err, "failures"):
            _show_failures(err)
        raise
    if json:
        render.print_json(document)
    else:
        show(document)


def _show_failures(err) -> None:
    """Each failed resource: what it is, Azure's code and sentence, and what to do about it."""
    from . import render

    for failure in err.failures:
        kind = failure.type.rsplit(":", 1)[-1]
        line = render.markup("[bold red]✗[/] {} [cyan]{}[/]", kind, failure.name)
        if failure.code:
            line.append_text(render.markup(" [bold]{}[/]", failure.code))
        render.console.print(line, soft_wrap=True)
        render.console.print(f"  {failure.message}", soft_wrap=True)
        if failure.remedy:
            render.console.print(
                render.markup("  [dim]what to do:[/] {}", failure.remedy.for_stack(err.stack)), soft_wrap=True
            )


@app.command()
def up(
    stack: StackArg,
    yes: YesOpt = False,
    json: JsonOpt = False,
    skip_preflight: Annotated[
        bool,
        typer.Option("--skip-preflight", help="Deploy without asking Azure about quota and sizes first."),
    ] = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Refresh the state from Azure before deploying.")
    ] = False,
    suppress: SuppressOpt = None,
    hostfiles: HostfilesOpt = True,
    wait_for_capacity: Annotated[
        str | None,
        typer.Option(
            "--wait-for-capacity",
            metavar="DURATION",
            help="When Azure cannot place whole islands, keep what it placed, move empty islands to the "
            "next zone their pool allows, and keep asking with back-off for this long (90s, 45m, 2h).",
        ),
    ] = None,
    fill: Annotated[
        bool | None,
        typer.Option(
            "--fill/--no-fill",
            help="After deploying, give islands an earlier run left short one more try (best effort). "
            "Default: as --hostfiles, the other step that asks Azure after deploying.",
        ),
    ] = None,
    backend: BackendOpt = None,
    secrets_provider: SecretsOpt = None,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Deploy the cluster: validate, preflight, preview with cost, confirm, then deploy with live progress.

    Re-running converges: a deployed stack shows no changes, a failed one resumes from what exists. Last,
    the login node's hostfiles are refreshed (`--no-hostfiles` skips it), and a stack with `team:` hands
    its users file over (as `azcluster users sync`). --subscription, --auth and --cloud choose how
    preflight and those steps reach Azure, as for `azcluster preflight`.
    """
    from . import lifecycle
    from .durations import parse_duration

    wait = parse_duration(wait_for_capacity, "--wait-for-capacity") if wait_for_capacity is not None else None
    _lifecycle(
        json,
        stack,
        lambda: lifecycle.up(
            stack,
            yes=yes,
            skip_preflight=skip_preflight,
            refresh=refresh,
            options=_engine_options(backend, secrets_provider),
            suppress=suppress or (),
            quiet=json,
            connection=lifecycle.AzureOptions(subscription, auth, cloud),
            hostfiles=hostfiles,
            wait_for_capacity=wait,
            fill=hostfiles if fill is None else fill,
        ),
        lifecycle.render_up,
    )


@app.command()
def preview(
    stack: StackArg,
    json: JsonOpt = False,
    suppress: SuppressOpt = None,
    backend: BackendOpt = None,
    secrets_provider: SecretsOpt = None,
) -> None:
    """Show what `up` would create, change or delete (the engine's real preview) and the cost per hour."""
    from . import lifecycle

    _lifecycle(
        json,
        stack,
        lambda: lifecycle.preview(
            stack, options=_engine_options(backend, secrets_provider), suppress=suppress or (), quiet=json
        ),
        lifecycle.render_preview,
    )


@app.command()
def down(
    stack: StackArg,
    yes: YesOpt = False,
    delete_data: Annotated[
        bool,
        typer.Option(
            "--delete-data",
            help="Also delete data-bearing storage (Managed Lustre, blob account). Asks you to type the "
            "stack name; in CI give --yes too. Lustre with blob integration must be archived first.",
        ),
    ] = False,
    json: JsonOpt = False,
    backend: BackendOpt = None,
    secrets_provider: SecretsOpt = None,
) -> None:
    """Destroy the cluster. Storage that holds data is kept (and reported) unless --delete-data."""
    from . import lifecycle

    _lifecycle(
        json,
        stack,
        lambda: lifecycle.down(
            stack, yes=yes, delete_data=delete_data, options=_engine_options(backend, secrets_provider)
        ),
        lifecycle.render_down,
    )


@app.command()
def refresh(
    stack: StackArg,
    yes: YesOpt = False,
    json: JsonOpt = False,
    backend: BackendOpt = None,
    secrets_provider: SecretsOpt = None,
) -> None:
    """Read what exists in Azure back into the stack's state; nothing in Azure changes."""
    from . import lifecycle, render

    _lifecycle(
        json,
        stack,
        lambda: lifecycle.refresh(stack, yes=yes, options=_engine_options(backend, secrets_provider)),
        lambda doc: render.stdout.print(f"{doc['stack']}: state refreshed"),
    )


@app.command()
def outputs(
    stack: StackArg,
    json: JsonOpt = False,
    show_secrets: Annotated[
        bool, typer.Option("--show-secrets", help="Print secret outputs in clear.")
    ] = False,
    backend: BackendOpt = None,
    secrets_provider: SecretsOpt = None,
) -> None:
    """The stack's outputs (secrets masked unless --show-secrets)."""
    from . import lifecycle

    _lifecycle(
        json,
        stack,
        lambda: lifecycle.outputs(
            stack, show_secrets=show_secrets, options=_engine_options(backend, secrets_provider)
        ),
        lifecycle.render_outputs,
    )


@app.command()
def dashboard(
    stack: StackArg,
    json: JsonOpt = False,
    open_browser: Annotated[
        bool,
        typer.Option("--open", help="Also open the overview dashboard in a web browser, when one exists."),
    ] = False,
    install: Annotated[
        bool,
        typer.Option(
            "--install",
            help="Put the dashboards (back) into Grafana first, as `up` does (Grafana Editor or Admin).",
        ),
    ] = False,
    backend: BackendOpt = None,
    secrets_provider: SecretsOpt = None,
    subscription: SubscriptionOpt = None,
    auth: AuthOpt = None,
    cloud: CloudOpt = None,
) -> None:
    """Print the cluster's Grafana URL and its dashboards' (from the stack's outputs).

    Exit 1 when the stack has no monitoring or Grafana refused --install.
    """
    from . import lifecycle

    document: dict = {}

    def work() -> dict:
        document.update(
            lifecycle.dashboard(
                stack,
                install=install,
                options=_engine_options(backend, secrets_provider),
                connection=lifecycle.AzureOptions(subscription, auth, cloud),
            )
        )
        return document

    _lifecycle(json, stack, work, lifecycle.render_dashboard)
    if open_browser:
        _open_in_browser(document["dashboards"][0]["url"])


def _open_in_browser(url: str) -> None:
    """A browser when Python finds one ($BROWSER, a desktop's); on a server, say so on stderr."""
    import webbrowser

    from . import render

    try:
        opened = webbrowser.get().open(url)
    except webbrowser.Error:
        opened = False
    if not opened:
        render.console.print(f"no web browser here: open {url} yourself", soft_wrap=True, markup=False)


@app.command()
def cancel(
    stack: StackArg,
    yes: YesOpt = False,
    json: JsonOpt = False,
    backend: BackendOpt = None,
) -> None:
    """Release a stack's lock left by an update that died (killed, CI run cancelled)."""
    from . import lifecycle

    _lifecycle(
        json,
        stack,
        lambda: lifecycle.cancel(stack, yes=yes, options=_engine_options(backend, None)),
        lambda doc: None,
    )


@app.command("list")
def list_(json: JsonOpt = False, backend: BackendOpt = None) -> None:
    """Every stack: stack files and what the backend knows, with last update, state, nodes and cost."""
    from . import lifecycle

    _lifecycle(
        json, None, lambda: lifecycle.list_stacks(_engine_options(backend, None)), lifecycle.render_list
    )


# --- end lifecycle (issue 5) -----------------------------------------------------------------------------


_PROCESS_ENDS = False
"""True under the console script (`main`): the process ends when the command returns. Tests invoke `app`
in-process, where it stays False."""


def main() -> None:
    """Console-script entry point."""
    global _PROCESS_ENDS
    _PROCESS_ENDS = True
    app()

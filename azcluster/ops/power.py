"""`stop` and `start`: one long-running operation per island, in parallel.

azure-core polls each the way Azure says (Azure-AsyncOperation, then Location; Retry-After). Each island's
outcome is reported on its own: what succeeded stays succeeded, and any failure makes the command exit 1;
power_hints.py says what to do about a failed island.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azcluster.components.spec import ClusterSpec

from .cluster import find_scale_sets, missing_hint, missing_islands, require_found
from .hosts import Known
from .model import MissingIsland, ScaleSet
from .parallel import parallel, task_progress
from .power_hints import failure_hint

if TYPE_CHECKING:  # pragma: no cover
    from ..azure import AzureContext


@dataclass
class IslandOutcome:
    pool: str
    island: int
    scale_set: str
    ok: bool
    code: str | None = None
    message: str | None = None
    hint: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "island": self.island,
            "scale_set": self.scale_set,
            "ok": self.ok,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "seconds": round(self.seconds, 1),
        }


@dataclass
class OperationReport:
    stack: str
    action: str  # stop | start
    islands: list[IslandOutcome]
    scale_sets: list[ScaleSet] = field(default_factory=list, repr=False)  # as listed, for what comes next

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.islands)

    def known(self) -> Known:
        """What the hostfile refresh after `start` need not ask Azure again (hosts.Known)."""
        started = {o.scale_set for o in self.islands if o.ok} if self.action == "start" else set()
        return Known(self.scale_sets, frozenset(started))

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "action": self.action,
            "ok": self.ok,
            "islands": [outcome.to_json() for outcome in self.islands],
        }


def stop_cluster(
    spec: ClusterSpec, ctx: AzureContext, stack: str, *, progress: bool = True
) -> OperationReport:
    """Deallocate every island (no compute billed; disks and IPs stay) in parallel."""
    return _operate(spec, ctx, stack, "stop", progress)


def start_cluster(
    spec: ClusterSpec, ctx: AzureContext, stack: str, *, progress: bool = True
) -> OperationReport:
    """Start every island in parallel; say which island could not be allocated and what to do."""
    return _operate(spec, ctx, stack, "start", progress)


def _operate(
    spec: ClusterSpec, ctx: AzureContext, stack: str, action: str, progress: bool
) -> OperationReport:
    from ..azure import azure_errors, compute_client

    with azure_errors(ctx, f"listing the scale sets of {spec.name} in {spec.resource_group_name}"):
        client = compute_client(ctx)
        sets = find_scale_sets(client, spec)
    require_found(sets, spec, stack)

    def one(found: ScaleSet, update: Callable[[str], None]) -> IslandOutcome:
        return _run_island(client, ctx, spec, stack, found, action, update)

    verb = {"stop": "deallocating", "start": "starting"}[action]
    with azure_errors(ctx, f"{verb} the scale sets of {spec.name}"):
        outcomes = _with_progress(sets, one, action, progress)
    outcomes += [_missing(island, stack) for island in missing_islands(spec, sets)]
    return OperationReport(stack, action, outcomes, scale_sets=sets)


def _missing(island: MissingIsland, stack: str) -> IslandOutcome:
    """A spec island with no scale set in Azure: the command did not do what was asked, so it fails."""
    return IslandOutcome(
        island.pool,
        island.island,
        island.scale_set,
        ok=False,
        code="NotFound",
        message=f"no scale set is tagged for island {island.describe()}",
        hint=missing_hint(stack),
    )


def _run_island(
    client: Any,
    ctx: AzureContext,
    spec: ClusterSpec,
    stack: str,
    found: ScaleSet,
    action: str,
    update: Callable[[str], None],
) -> IslandOutcome:
    """One island's start or deallocate, polled to the command's deadline; every failure is this
    island's outcome (its code, message and hint), never the end of the others."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    from ..azure import begin_with_throttle_retry, error_code, error_message, unreachable
    from ..timeouts import ENV_DEADLINE, StillRunning, is_deadline, lro_polling, wait_for

    operations = client.virtual_machine_scale_sets
    begin = operations.begin_deallocate if action == "stop" else operations.begin_start
    started = time.monotonic()
    outcome = IslandOutcome(found.pool, found.island, found.name, ok=False)
    try:
        poller = begin_with_throttle_retry(
            begin, spec.resource_group_name, found.name, update=update, polling=lro_polling(client)
        )
        update("waiting for Azure")
        wait_for(poller, ctx.deadline)
        outcome.ok = True
    except StillRunning as err:
        outcome.code, outcome.message = "DeadlineExceeded", str(err)
        outcome.hint = (
            f"Azure may still finish it: `azcluster status {stack}` shows each node's power state; run the "
            f"command again to wait once more, or give it longer with {ENV_DEADLINE}=SECONDS"
        )
    except ClientAuthenticationError as err:
        if getattr(err, "response", None) is None:  # no token at all: the same for every island
            raise
        outcome.code, outcome.message = error_code(err) or "AuthorizationFailed", error_message(err)
        outcome.hint = failure_hint(outcome.code, outcome.message, action, spec, stack, found)
    except HttpResponseError as err:
        outcome.code = error_code(err) or f"HTTP {getattr(err, 'status_code', '?')}"
        outcome.message = error_message(err)
        outcome.hint = failure_hint(outcome.code, outcome.message or "", action, spec, stack, found)
    except (ServiceRequestError, ServiceResponseError) as err:
        doing = {"stop": "deallocating", "start": "starting"}[action]
        said = unreachable(err, ctx, f"{doing} island {found.pool}/{found.island}")
        outcome.code = "DeadlineExceeded" if is_deadline(err) else "Unreachable"
        outcome.message, outcome.hint = said.message, said.hint
    outcome.seconds = time.monotonic() - started
    return outcome


def _with_progress(
    sets: list[ScaleSet],
    work: Callable[[ScaleSet, Callable[[str], None]], IslandOutcome],
    action: str,
    progress: bool,
) -> list[IslandOutcome]:
    """Run `work` on every island in parallel, with a live line per island on stderr."""

    from ..render import console, markup

    verb = {"stop": "deallocating", "start": "starting"}[action]
    if not progress:
        return parallel(lambda found: work(found, lambda _text: None), sets)
    with task_progress(console) as bar:
        tasks = {
            found.name: bar.add_task(
                f"{verb} {found.pool}/{found.island} ({found.name})", total=1, state="sending"
            )
            for found in sets
        }

        def tracked(found: ScaleSet) -> IslandOutcome:
            task = tasks[found.name]
            outcome = work(found, lambda text: bar.update(task, state=text))
            bar.update(
                task,
                completed=1,
                state=markup("[green]done[/]") if outcome.ok else markup("[bold red]{}[/]", outcome.code),
            )
            return outcome

        return parallel(tracked, sets)

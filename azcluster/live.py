"""A live view of a deployment: the resources in flight with their elapsed time, not a wall of log lines.

On a terminal it is one rich `Live` panel on stderr, redrawn a few times a second: counts of what is done,
then one row per resource still being created, updated or deleted, oldest first, with how long it has
taken. Without a terminal (CI logs) it prints one line per finished or failed resource instead. Engine
events arrive on the engine's threads, so everything the view holds is guarded by a lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from .engine import Event
from .render import markup

_ACTIVE = {
    "create": "creating",
    "update": "updating",
    "delete": "deleting",
    "replace": "replacing",
    "create-replacement": "creating replacement",
    "delete-replaced": "deleting old",
    "refresh": "refreshing",
    "import": "importing",
}
_DONE = {
    "create": "created",
    "update": "updated",
    "delete": "deleted",
    "replace": "replaced",
    "create-replacement": "created replacement",
    "delete-replaced": "deleted old",
    "refresh": "refreshed",
    "import": "imported",
}
_HIDDEN_TYPES = ("pulumi:", "azcluster:")
"""The stack itself, providers and our component resources: instant bookkeeping, not Azure work."""
MAX_ROWS = 14


def short_type(typ: str) -> str:
    """`azure-native:compute:VirtualMachineScaleSet` -> `VirtualMachineScaleSet`."""
    return typ.rsplit(":", 1)[-1] or typ


def duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass
class _InFlight:
    type: str
    name: str
    op: str
    started: float


class LiveView:
    """Use as a context manager and pass the instance as the engine's `on_event` callback."""

    def __init__(
        self, console: Console, title: str, *, live: bool | None = None, clock: Any = time.monotonic
    ):
        self.console = console
        self.title = title
        self.live = console.is_terminal if live is None else live
        self.clock = clock
        self.started = clock()
        self.in_flight: dict[str, _InFlight] = {}
        self.done: dict[str, int] = {}
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        self.started = self.clock()
        if self.live:
            self._live = Live(
                get_renderable=self.render,
                console=self.console,
                refresh_per_second=4,
                transient=True,
                redirect_stdout=False,  # stdout is for reports and JSON, never for progress
                redirect_stderr=False,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None
        self.console.print(self.summary_line())

    def __call__(self, event: Event) -> None:
        if event.kind not in ("start", "done", "failed"):
            return
        hidden = event.type.startswith(_HIDDEN_TYPES) or event.custom is False  # a user program's component
        if hidden or event.op in ("same", "read", ""):
            return
        now = self.clock()
        line = None
        with self._lock:
            if event.kind == "start":
                self.in_flight[event.urn] = _InFlight(short_type(event.type), event.name, event.op, now)
            elif event.kind == "done":
                flight = self.in_flight.pop(event.urn, None)
                verb = _DONE.get(event.op, event.op)
                self.done[verb] = self.done.get(verb, 0) + 1
                took = f" ({duration(now - flight.started)})" if flight else ""
                line = markup("[green]✓[/] {} {} {}{}", verb, short_type(event.type), event.name, took)
            elif event.kind == "failed":
                flight = self.in_flight.pop(event.urn, None)
                self.failed.append(event.urn)
                took = f" after {duration(now - flight.started)}" if flight else ""
                verb = _ACTIVE.get(event.op, event.op)
                line = markup(
                    "[bold red]✗[/] {} {} {} failed{}", verb, short_type(event.type), event.name, took
                )
        if line and not self.live:
            self.console.print(line, soft_wrap=True)

    def summary_line(self) -> Text:
        with self._lock:
            done = ", ".join(f"{count} {verb}" for verb, count in sorted(self.done.items()))
            failed = len(self.failed)
        took = duration(self.clock() - self.started)
        if not failed:
            return markup("{}: {} in {}", self.title, done or "no changes", took)
        return markup(
            "{}: {}[bold red]{} failed[/] in {}", self.title, f"{done}, " if done else "", failed, took
        )

    def render(self) -> Any:
        now = self.clock()
        with self._lock:
            flights = sorted(self.in_flight.values(), key=lambda f: f.started)
            done = ", ".join(f"{count} {verb}" for verb, count in sorted(self.done.items()))
            failed = len(self.failed)
        head = Text.assemble(
            (self.title, "bold"),
            f"  {duration(now - self.started)}  ",
            (done or "starting", "green"),
            (f", {failed} failed" if failed else "", "bold red"),
            f"  ·  {len(flights)} in progress" if flights else "",
        )
        table = Table.grid(padding=(0, 1))
        table.add_column(width=2)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, style="cyan")
        table.add_column(no_wrap=True)
        table.add_column(justify="right", style="dim")
        for flight in flights[:MAX_ROWS]:
            table.add_row(
                Spinner("dots"),
                _ACTIVE.get(flight.op, flight.op),
                flight.type,
                flight.name,
                duration(now - flight.started),
            )
        rows: list[Any] = [head, table]
        if len(flights) > MAX_ROWS:
            rows.append(Text(f"… and {len(flights) - MAX_ROWS} more", style="dim"))
        return Group(*rows)

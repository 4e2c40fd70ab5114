"""A recording fake of `azcluster.engine.Engine` for CLI tests: no Pulumi, no Azure.

It keeps a tiny model of a stack's state (resources with protect flags) so `down` behaves like the real
engine: `destroy(exclude_protected=True)` removes only unprotected resources that no protected resource
stands on, `release` clears the flags, a plain destroy removes everything. Every call is recorded in
`calls` as (method, stack name, keyword arguments) so tests assert what the CLI asked for, and in what
order. Failures are scripted with `fail_on[method] = exception`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from azcluster.engine import (
    Event,
    OnEvent,
    OutputValue,
    PlannedStep,
    Preview,
    StackRef,
    StackSummary,
    StateResource,
    Update,
    UpdateInfo,
)

URN = "urn:pulumi:{stack}::azcluster::{type}::{name}"


def urn(stack: str, typ: str, name: str) -> str:
    return URN.format(stack=stack, type=typ, name=name)


def resource(stack: str, typ: str, name: str, *, protect: bool = False, deps: Sequence[str] = (), **kw: Any):
    return StateResource(
        urn=urn(stack, typ, name),
        type=typ,
        id=kw.pop("id", f"/subscriptions/sub/resourceGroups/{stack}-rg/providers/x/{name}"),
        custom=True,
        protect=protect,
        retain_on_delete=protect,
        dependencies=tuple(deps),
        **kw,
    )


@dataclass
class FakeEngine:
    stack: str = "example"
    resources: list[StateResource] = field(default_factory=list)
    preview_changes: dict[str, int] = field(default_factory=lambda: {"create": 24})
    outputs_map: dict[str, OutputValue] = field(default_factory=dict)
    summaries: list[StackSummary] = field(default_factory=list)
    history_entries: list[UpdateInfo] = field(default_factory=list)
    fail_on: dict[str, Exception] = field(default_factory=dict)
    fail_once: dict[str, Exception] = field(default_factory=dict)
    """Like fail_on, for the first call only (then the method works)."""
    after_refresh: dict[str, StateResource] = field(default_factory=dict)
    """Resources as a refresh finds them (by URN): how tests make Azure report a new archive status."""
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def _record(self, method: str, stack: StackRef | None, **kwargs: Any) -> None:
        self.calls.append((method, stack.name if stack else "", kwargs))
        if method in self.fail_on:
            raise self.fail_on[method]
        if method in self.fail_once:
            raise self.fail_once.pop(method)

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.calls]

    def check_secrets(self, stack: StackRef) -> str:
        self._record("check_secrets", stack)
        return "PULUMI_CONFIG_PASSPHRASE"

    def preview(self, stack: StackRef, on_event: OnEvent | None = None) -> Preview:
        self._record("preview", stack)
        steps = [
            PlannedStep(
                urn(stack.name, "azure-native:compute:VirtualMachineScaleSet", "gpu-0"), "x", "create"
            )
        ]
        return Preview(dict(self.preview_changes), steps)

    def up(self, stack: StackRef, on_event: OnEvent | None = None, *, refresh: bool = False) -> Update:
        typ = "azure-native:compute:VirtualMachineScaleSet"
        if on_event:
            on_event(Event("start", urn=urn(stack.name, typ, "gpu-0"), type=typ, op="create"))
        self._record("up", stack, refresh=refresh)
        if on_event:
            on_event(Event("done", urn=urn(stack.name, typ, "gpu-0"), type=typ, op="create"))
        return Update(dict(self.preview_changes), dict(self.outputs_map), 12.0)

    def destroy(
        self, stack: StackRef, on_event: OnEvent | None = None, *, exclude_protected: bool = True
    ) -> Update:
        self._record("destroy", stack, exclude_protected=exclude_protected)
        if exclude_protected:
            keep = {r.urn for r in self.resources if r.protect}
            changed = True
            while changed:  # what protected resources stand on is kept too
                changed = False
                for r in self.resources:
                    if r.urn in keep:
                        for dep in r.dependencies:
                            if dep not in keep:
                                keep.add(dep)
                                changed = True
            gone = [r for r in self.resources if r.urn not in keep]
        else:
            gone = list(self.resources)
        self.resources = [r for r in self.resources if r not in gone]
        return Update({"delete": len(gone)} if gone else {}, {}, 3.0)

    def refresh(
        self, stack: StackRef, on_event: OnEvent | None = None, *, targets: Sequence[str] | None = None
    ):
        self._record("refresh", stack, targets=list(targets) if targets else None)
        self.resources = [self.after_refresh.get(r.urn, r) for r in self.resources]
        return Update({"same": len(self.resources)}, {}, 1.0)

    def outputs(self, stack: StackRef) -> dict[str, OutputValue]:
        self._record("outputs", stack)
        return dict(self.outputs_map)

    def cancel(self, stack: StackRef) -> None:
        self._record("cancel", stack)

    def list_stacks(self) -> list[StackSummary]:
        self._record("list_stacks", None)
        return list(self.summaries)

    def state(self, stack: StackRef) -> list[StateResource]:
        self._record("state", stack)
        return list(self.resources)

    def release(self, stack: StackRef, urns: Sequence[str]) -> None:
        self._record("release", stack, urns=sorted(urns))
        wanted = set(urns)
        self.resources = [
            replace(r, protect=False, retain_on_delete=False) if r.urn in wanted else r
            for r in self.resources
        ]

    def history(self, stack: StackRef, limit: int = 20) -> list[UpdateInfo]:
        self._record("history", stack)
        return list(self.history_entries)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)

"""Which check failed on an unhealthy node, read on the node itself.

vmHealth only says healthy or not; the checks azc-health.sh ran live on the node, in the JSON file at
bootstrap's HEALTH_RESULT_PATH. Nodes must not need SSH, a public IP or a route from the laptop, so the file
is read through Azure's Run Command on the scale-set VM (RunShellScript `cat FILE`: a long-running POST,
polled like stop/start). Run Command is slow (about 20 s at best per node, one script at a time per VM), so
the nodes are read in parallel, at most DIAGNOSE_LIMIT per run, and `--no-diagnose` skips it. A node whose
file cannot be read gets that said on its own line; it never fails the whole command. Azure refusing Run
Command itself (a Reader: 403) is the same answer on every node, so the first refusal stops the diagnosis
and the report says once what role it needs. The Run Command plumbing is shared with the login node's
hostfiles (runcommand.py).
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from typing import Any

from azcluster.components.bootstrap import HEALTH_RESULT_PATH, parse_health_result

from . import runcommand
from .model import DIAGNOSE_STATES, ClusterStatus, Diagnosis, DiagnosisRun, Island, Node
from .parallel import parallel, task_progress

# Diagnosis through Run Command (runcommand.py has what Azure says about it): slow, one script
# at a time per VM, and it needs Microsoft.Compute/virtualMachines/runCommand/action.

DIAGNOSE_LIMIT = 16
DIAGNOSE_TIMEOUT_S = runcommand.TIMEOUT_S
UNREADABLE = "could not read the health result"


def diagnose_nodes(client: Any, status: ClusterStatus, timeout: float, progress: bool) -> None:
    """Read the health result of the cluster's unhealthy nodes (then unknown ones) in parallel.

    Only running nodes can run a command; the rest, and those past the limit, get a `skipped` diagnosis
    that says why, so the report never silently leaves a node out. Azure refusing Run Command itself
    (403: a Reader) is the same answer for every node, so after the first refusal nothing more is sent.
    """
    run = status.diagnosis = status.diagnosis or DiagnosisRun(enabled=True, limit=DIAGNOSE_LIMIT)
    order = {state: rank for rank, state in enumerate(DIAGNOSE_STATES)}
    candidates = sorted(status.unhealthy(), key=lambda pair: order[pair[1].health or ""])
    runnable = []
    for island, node in candidates:
        if node.power_state == "running":
            runnable.append((island, node))
        else:
            run.not_running += 1
            node.diagnosis = Diagnosis(
                "skipped", f"not diagnosed: the node is {node.power_state or 'in an unknown power state'}"
            )
    chosen, rest = runnable[: max(run.limit, 0)], runnable[max(run.limit, 0) :]
    for _island, node in rest:
        node.diagnosis = Diagnosis("skipped", f"not diagnosed: over the limit of {run.limit} nodes per run")
    run.over_limit = len(rest)
    gate = _DenialGate()

    pilot = chosen[0][1] if chosen else None

    def one(pair: tuple[Island, Node], update: Callable[[str], None]) -> Diagnosis:
        island, node = pair
        target = runcommand.on_scale_set_vm(client, status.resource_group, island.scale_set, node.instance_id)
        name = node.computer_name or node.name
        return read_health_result(target, name, gate, node is pilot, timeout, update)

    results = _diagnose_with_progress(chosen, one, progress)
    for (_island, node), diagnosis in zip(chosen, results, strict=True):
        node.diagnosis = diagnosis
    run.sent = len(chosen) - gate.held_back
    run.denied_nodes = gate.held_back
    if gate.refusal is not None:
        refusal = gate.refusal
        run.denied = {"node": gate.refused_on or "", "code": refusal.code or "", "message": refusal.message}


class _DenialGate:
    """Lets the first node's Run Command POST go alone, and stops the rest once Azure has refused one (403).

    The POST is answered in well under a second, so the other nodes wait that long, not a whole Run
    Command (20 s or more): a Reader then sends one request, not one per unhealthy node.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pilot_answered = threading.Event()
        self.refusal: runcommand.RunCommandFailed | None = None
        self.refused_on: str | None = None
        self.held_back = 0

    def send(
        self,
        target: runcommand.Begin,
        lines: list[str],
        node: str,
        pilot: bool,
        update: Callable[[str], None],
    ) -> Any:
        """The poller, or None when a refusal holds this node back; RunCommandFailed as runcommand.send."""
        if not pilot:
            update("waiting: the first node's Run Command goes alone")
            self._pilot_answered.wait()
        try:
            with self._lock:
                if self.refusal is not None:
                    self.held_back += 1
                    return None
            return runcommand.send(target, lines, update)
        except runcommand.RunCommandFailed as err:
            if err.denied:
                with self._lock:
                    if self.refusal is None:
                        self.refusal, self.refused_on = err, node
            raise
        finally:
            if pilot:
                self._pilot_answered.set()


def read_health_result(
    target: runcommand.Begin,
    node: str,
    gate: _DenialGate | None = None,
    pilot: bool = True,
    timeout: float = DIAGNOSE_TIMEOUT_S,
    update: Callable[[str], None] = lambda _text: None,
) -> Diagnosis:
    """Run `cat HEALTH_RESULT_PATH` on one scale-set VM through Run Command and parse what it printed.

    Every way this can fail (Azure refuses, the operation fails or outlasts `timeout`, the file is missing
    or not a health result) becomes an `unreadable` diagnosis: one node's problem is not the command's.
    A refusal for lack of permission is said once for the whole run (DiagnosisRun.denied), not per node.
    """
    gate = gate or _DenialGate()
    lines = [f"cat {shlex.quote(HEALTH_RESULT_PATH)}"]
    try:
        poller = gate.send(target, lines, node, pilot, update)
        if poller is None:
            return Diagnosis(
                "skipped", f"not diagnosed: Azure refused Run Command on {gate.refused_on} (see below)"
            )
        update("running on the node")
        output = runcommand.wait(poller, timeout)
    except runcommand.RunCommandFailed as err:
        hint = f" ({err.hint})" if err.hint and not err.denied else ""
        return _unreadable(f"{err.detail}{hint}")
    return _diagnosis_from(output.stdout, output.stderr)


def _diagnosis_from(stdout: str, stderr: str) -> Diagnosis:
    """The node's failing checks, or why they could not be read."""
    text = stdout.strip()
    if not text:
        why = runcommand.first_line(stderr) or f"{HEALTH_RESULT_PATH} is empty"
        if "no such file" in why.lower():
            why += (
                "; azc-health has not written it yet (on the node: `systemctl status azc-prepare "
                "azc-health.timer`)"
            )
        return _unreadable(why)
    try:
        result = parse_health_result(text)
    except ValueError as err:
        cut = len(stdout.encode()) >= runcommand.OUTPUT_LIMIT
        note = f" (Run Command returns only the last {runcommand.OUTPUT_LIMIT} bytes)" if cut else ""
        return _unreadable(f"{HEALTH_RESULT_PATH}: {err}{note}")
    failing = [(check.name, check.detail) for check in result.failing]
    if result.healthy or not failing:
        detail = (
            "the node's own last check passed; Azure's probe disagrees (is azc-health-server running, and "
            "is the result fresh?)"
            if result.healthy
            else "unhealthy, but no failed check is recorded"
        )
        return Diagnosis("read", detail, failing, result.time or None)
    return Diagnosis("read", result.summary(), failing, result.time or None)


def _unreadable(why: str) -> Diagnosis:
    return Diagnosis("unreadable", f"{UNREADABLE}: {why}")


def _diagnose_with_progress(
    chosen: list[tuple[Island, Node]],
    work: Callable[[tuple[Island, Node], Callable[[str], None]], Diagnosis],
    progress: bool,
) -> list[Diagnosis]:
    """Run `work` on every chosen node in parallel, with a live line per node on stderr."""

    from ..render import console, markup

    if not progress or not chosen:
        return parallel(lambda pair: work(pair, lambda _text: None), chosen)
    console.print(
        f"reading the health result of {len(chosen)} node(s) through Run Command "
        "(tens of seconds; --no-diagnose skips this)",
        soft_wrap=True,
    )
    with task_progress(console) as bar:
        tasks = {
            id(node): bar.add_task(
                f"{node.computer_name or node.name} ({island.pool}/{island.island})", total=1, state="sending"
            )
            for island, node in chosen
        }

        def tracked(pair: tuple[Island, Node]) -> Diagnosis:
            task = tasks[id(pair[1])]
            diagnosis = work(pair, lambda text: bar.update(task, state=text))
            done = markup(
                {"read": "[green]read[/]", "skipped": "[dim]not asked[/]"}.get(
                    diagnosis.state, "[bold red]unreadable[/]"
                )
            )
            bar.update(task, completed=1, state=done)
            return diagnosis

        return parallel(tracked, chosen)

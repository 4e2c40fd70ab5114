"""`status` for an elastic cluster: per island, whether it runs, was deallocated by the elastic policy or
is starting, since when, and the cost per hour now versus with everything on.

Azure says what each VM's power state is; only the login node knows *why* an island is off and since
when: its power programs keep that in a state file (components/bootstrap/scripts/azc-elastic.py). It is
read through Run Command (`azc-elastic.py state`, compact JSON well under Run Command's 4 KiB output),
and when that is not possible (no permission, login node off) the Azure view alone is shown, saying so.
"""

from __future__ import annotations

import json
from typing import Any

from azcluster.components import catalog
from azcluster.components.bootstrap import island_key
from azcluster.components.elastic import PROGRAM, STATE_DIR
from azcluster.components.spec import ClusterSpec

from . import runcommand
from .model import ClusterStatus, ElasticStatus, Island, IslandPower

MARKER = "azcluster-elastic-state-end"
# AZC_ROOT, unset on a real node, is how tests run the script inside a directory (as loginhosts does).
STATE_SCRIPT = [
    f'AZC_ELASTIC_STATE_DIR="${{AZC_ROOT:-}}{STATE_DIR}" python3 "${{AZC_ROOT:-}}{PROGRAM}" state',
    f"echo {MARKER}",
]
READ_TIMEOUT_S = 120.0
OFF_STATES = ("deallocated", "deallocating")


def read_login_state(
    client: Any, spec: ClusterSpec, vm: str, timeout: float = READ_TIMEOUT_S
) -> dict[str, Any]:
    """The power programs' state from the login node (raises RunCommandFailed or ValueError)."""
    target = runcommand.on_vm(client, spec.resource_group_name, vm)
    output = runcommand.run_shell(target, STATE_SCRIPT, timeout)
    lines = output.stdout.splitlines()
    if MARKER not in lines:
        raise ValueError(runcommand.first_line(output.stderr) or "the state script stopped before its end")
    for line in lines[: lines.index(MARKER)]:
        if line.startswith("{"):
            data = json.loads(line)
            if "error" in data:
                raise ValueError(str(data["error"]))
            return data
    raise ValueError("the state script printed no state")


def _power(island: Island) -> str:
    states = island.power_states
    if not island.nodes:
        return "no instances"
    for moving in ("starting", "deallocating"):
        if states.get(moving):
            return moving
    if states.get("deallocated", 0) == len(island.nodes):
        return "deallocated"
    if states.get("running", 0) == len(island.nodes):
        return "running"
    return "partly deallocated"


def elastic_status(
    spec: ClusterSpec, status: ClusterStatus, state: dict[str, Any] | None, source: str
) -> ElasticStatus:
    """Azure's power states joined with the login node's record of what it did and when."""
    assert spec.elastic is not None
    warm = spec.elastic.keep_warm_islands
    recorded = (state or {}).get("islands") or {}
    out = ElasticStatus(spec.elastic.idle_minutes, warm, _scheduler(spec), state_source=source)
    for island in status.islands:
        key = island_key(island.pool, island.island)
        size = catalog.find_size(island.size)
        price = size.price.usd_per_hour if size is not None else 0.0
        power = _power(island)
        entry = recorded.get(key) or {}
        by = None
        if power != "running" and state is not None:
            agrees = entry.get("state") == power or (power in OFF_STATES and entry.get("state") in OFF_STATES)
            by = "elastic" if agrees and entry.get("reason") else "outside elastic"
        same = entry.get("state") == power
        out.islands.append(
            IslandPower(
                pool=island.pool,
                island=island.island,
                key=key,
                scale_set=island.scale_set,
                state=power,
                by=by,
                since=entry.get("since") if same else None,
                reason=entry.get("reason") if same else None,
                running=island.running,
                capacity=len(island.nodes),
                keep_warm=island.island < warm,
                cost_per_hour_usd=round(island.running * price, 2),
                all_on_cost_per_hour_usd=round(len(island.nodes) * price, 2),
                backoff_until=entry.get("backoff_until"),
                last_error=entry.get("last_error"),
            )
        )
    login = 0.0
    if status.login is not None:
        login_size = catalog.general_sizes().get(status.login.size)
        login = login_size.price.usd_per_hour if login_size is not None else 0.0
    out.cost_per_hour_usd = status.cost_per_hour()
    out.all_on_cost_per_hour_usd = round(sum(i.all_on_cost_per_hour_usd for i in out.islands) + login, 2)
    return out


def _scheduler(spec: ClusterSpec) -> str:
    from azcluster.components.elastic import scheduler

    return scheduler(spec)


def read_elastic(client: Any, spec: ClusterSpec, status: ClusterStatus, read_state: bool) -> ElasticStatus:
    """The elastic view for `status`; the login node's state is read when asked and possible."""
    if not read_state:
        return elastic_status(spec, status, None, "not read (--no-diagnose)")
    login = status.login
    if login is None or login.power_state != "running":
        return elastic_status(spec, status, None, "login node not running")
    try:
        state = read_login_state(client, spec, login.name)
    except runcommand.RunCommandFailed as err:
        return elastic_status(spec, status, None, f"login node unreadable: {err.detail}")
    except ValueError as err:
        return elastic_status(spec, status, None, f"login node state unreadable: {err}")
    return elastic_status(spec, status, state, "login node")

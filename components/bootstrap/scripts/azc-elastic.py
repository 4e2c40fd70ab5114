#!/usr/bin/env python3
"""azc-elastic: power GPU nodes off when idle and on when wanted, from the login node.

  suspend HOSTLIST      Slurm's SuspendProgram: deallocate these nodes
  resume HOSTLIST       Slurm's ResumeProgram: start these nodes
  resume-fail HOSTLIST  Slurm's ResumeFailProgram: these nodes did not come back within ResumeTimeout
  watch                 every minute (azc-elastic.timer): finish operations whose poller died, return
                        nodes whose island's back-off ended (Slurm), deallocate islands whose GPUs all
                        stayed idle for idle_minutes (no scheduler)
  poll OPERATION        follow one Azure operation to its end (started in the background by the above)
  state [--full]        print the state (islands: running / deallocated / starting, since when)

Nodes are handed to Azure batched per InfiniBand island: one POST deallocate|start on the island's scale
set with the instance ids (components/elastic.py says why the unit is right for the fabric). The commands
return as soon as Azure accepted the request; the asynchronous operation is followed by a detached
`poll` process, and recorded in the state file so that a `watch` run finishes it when slurmctld (and its
children) restarted in between. Every command is idempotent: instances already in, or on their way to,
the wanted power state are left alone, so Slurm calling twice for one node does nothing more.

A start Azure refuses (AllocationFailed, quota, OverconstrainedAllocationRequest, ...) marks the nodes
DOWN in Slurm with Azure's code as the reason, so Slurm requeues the job and places it on other islands;
the island then backs off (5, 10, 20, 40, 60 minutes) before `watch` returns its nodes to service, and
after MAX_FAILURES failures in a row it stays down for a person to look at. Azure is never hammered:
429 and 5xx answers are retried a few times, honouring Retry-After, within a fixed time budget.

Standard library only (the HPC image's python3). Token from the Instance Metadata Service for the
cluster's user-assigned identity (client_id); ARM REST with an explicit api-version. For tests every
endpoint and path can be overridden through AZC_* environment variables (see `Env`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

IMDS_API_VERSION = (
    "2018-02-01"  # learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token
)
ARM_RESOURCE = "https://management.azure.com/"
RETRY_STATUSES = {429, 500, 502, 503, 504}
HTTP_TIMEOUT_S = 30
REQUEST_BUDGET_S = 120  # all retries of one request together (Slurm's programs must finish quickly)
REQUEST_ATTEMPTS = 5
POLL_BUDGET_S = 3600  # an operation followed longer than this is left to `watch`
BACKOFF_MINUTES = (5, 10, 20, 40, 60)
MAX_FAILURES = 6
POLLER_STALE_S = 180  # a poller silent this long is presumed dead; `watch` takes over
BUSY_PERCENT = 5.0  # a GPU above this utilisation counts as busy


class Env:
    """Paths and endpoints, overridable for tests."""

    def __init__(self) -> None:
        get = os.environ.get
        self.config = get("AZC_ELASTIC_CONFIG", "/etc/azcluster/elastic.json")
        self.state_dir = get("AZC_ELASTIC_STATE_DIR", "/var/lib/azcluster/elastic")
        self.log = get("AZC_ELASTIC_LOG", "/var/log/azcluster/elastic.log")
        self.imds = get("AZC_IMDS_ENDPOINT", "http://169.254.169.254").rstrip("/")
        self.arm = get("AZC_ARM_ENDPOINT", "https://management.azure.com").rstrip("/")
        self.ca_bundle = get("AZC_CA_BUNDLE") or None
        self.scontrol = get("AZC_SCONTROL", "scontrol")
        self.util_url = get("AZC_GPU_UTIL_URL", "http://{host}:8585/health/gpu")
        self.poll_mode = get("AZC_ELASTIC_POLL", "background")  # background | inline | none
        self.sleep_scale = float(get("AZC_ELASTIC_SLEEP_SCALE", "1"))
        self.now = get("AZC_ELASTIC_NOW")

    def time(self) -> float:
        return float(self.now) if self.now else time.time()


ENV = Env()


class AzureError(Exception):
    """Azure said no (or could not be reached): `code` is Azure's error code."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# --- logging and state -----------------------------------------------------------------------------------


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    line = f"{stamp} [{os.getpid()}] {message}\n"
    try:
        os.makedirs(os.path.dirname(ENV.log), exist_ok=True)
        with open(ENV.log, "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError:
        sys.stderr.write(line)


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@contextlib.contextmanager
def locked_state():
    """The state, read and written under an exclusive lock (Slurm may run several programs at once)."""
    os.makedirs(ENV.state_dir, exist_ok=True)
    path = os.path.join(ENV.state_dir, "state.json")
    with open(os.path.join(ENV.state_dir, "lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            state = {}
        state.setdefault("islands", {})
        state.setdefault("operations", {})
        yield state
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)


def island_state(state: dict[str, Any], key: str) -> dict[str, Any]:
    return state["islands"].setdefault(key, {"state": "running", "since": None, "failures": 0})


def set_power(state: dict[str, Any], key: str, power: str, reason: str, now: float) -> None:
    entry = island_state(state, key)
    if entry.get("state") != power:
        entry["since"] = iso(now)
    entry.update(state=power, reason=reason)


def load_config() -> dict[str, Any]:
    with open(ENV.config, encoding="utf-8") as handle:
        return json.load(handle)


# --- HTTP: IMDS and ARM ------------------------------------------------------------------------------------


def _sleep(seconds: float) -> None:
    time.sleep(max(0.0, seconds) * ENV.sleep_scale)


def _retry_after(headers: Any, attempt: int) -> float:
    value = headers.get("Retry-After") if headers is not None else None
    if value:
        with contextlib.suppress(ValueError):
            return max(0.0, float(value))
    return float(min(2**attempt, 30))


def http(
    method: str, url: str, *, headers: dict[str, str], body: Any = None, what: str
) -> tuple[int, Any, Any]:
    """One request with bounded retries of 429/5xx/connection errors: (status, headers, JSON body)."""
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    context = ssl.create_default_context(cafile=ENV.ca_bundle) if url.startswith("https") else None
    spent = 0.0
    last: tuple[int | None, str] = (None, "no answer")
    for attempt in range(REQUEST_ATTEMPTS):
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        answer_headers: Any = None
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S, context=context) as response:
                raw = response.read()
                return response.status, response.headers, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw.decode("utf-8", "replace")
            if err.code not in RETRY_STATUSES:
                return err.code, err.headers, parsed
            answer_headers, last = err.headers, (err.code, _error_text(parsed))
        except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
            last = (None, str(getattr(err, "reason", err)))
        wait = _retry_after(answer_headers, attempt)
        if attempt == REQUEST_ATTEMPTS - 1 or spent + wait > REQUEST_BUDGET_S:
            break
        log(f"{what}: {last[0] or 'no answer'} ({last[1]}); retrying in {wait:g} s")
        _sleep(wait)
        spent += wait
    status, text = last
    code = {429: "TooManyRequests"}.get(status or 0, "ServerError" if status else "Unreachable")
    raise AzureError(code, f"{what} gave up after {attempt + 1} attempts: {text}", status)


def _error_text(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message") or body["error"].get("code"))
    if isinstance(body, dict) and body.get("error_description"):
        return str(body["error_description"])
    return str(body)[:200]


def _error_code(body: Any, fallback: str) -> tuple[str, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        return str(error.get("code") or fallback), str(error.get("message") or "")
    if isinstance(body, dict) and "error" in body:  # IMDS: {"error": "invalid_request", ...}
        return str(body["error"]), str(body.get("error_description") or "")
    return fallback, str(body)[:200] if body else ""


_TOKEN: dict[str, Any] = {}


def token(config: dict[str, Any]) -> str:
    """An ARM token for the cluster's user-assigned identity, from IMDS."""
    if _TOKEN.get("expires", 0) > time.time() + 300:
        return _TOKEN["token"]
    query = urllib.parse.urlencode(
        {"api-version": IMDS_API_VERSION, "resource": ARM_RESOURCE, "client_id": config["client_id"]}
    )
    status, _, body = http(
        "GET",
        f"{ENV.imds}/metadata/identity/oauth2/token?{query}",
        headers={"Metadata": "true"},
        what="IMDS token",
    )
    if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
        code, message = _error_code(body, f"HTTP{status}")
        raise AzureError("TokenUnavailable", f"IMDS refused a token ({code}: {message})", status)
    _TOKEN.update(token=body["access_token"], expires=float(body.get("expires_on") or 0))
    return _TOKEN["token"]


def arm(
    config: dict[str, Any], method: str, url: str, body: Any = None, *, what: str
) -> tuple[int, Any, Any]:
    if not url.startswith("http"):
        url = f"{ENV.arm}{url}"
    headers = {"Authorization": f"Bearer {token(config)}", "Accept": "application/json"}
    return http(method, url, headers=headers, body=body, what=what)


def scale_set_path(config: dict[str, Any], island: dict[str, Any]) -> str:
    return (
        f"/subscriptions/{config['subscription_id']}/resourceGroups/{config['resource_group']}"
        f"/providers/Microsoft.Compute/virtualMachineScaleSets/{island['scale_set']}"
    )


def list_instances(config: dict[str, Any], island: dict[str, Any]) -> list[dict[str, str]]:
    """The island's VMs: instance id, computer name, power state (running, deallocated, starting, ...)."""
    query = f"$expand=instanceView&api-version={config['api_version']}"
    url = f"{scale_set_path(config, island)}/virtualMachines?{query}"
    out = []
    while url:
        status, _, body = arm(config, "GET", url, what=f"list {island['scale_set']}")
        if status != 200:
            raise AzureError(*_error_code(body, f"HTTP{status}"), status)
        for vm in body.get("value", []):
            props = vm.get("properties", {})
            view = props.get("instanceView", {})
            power = "unknown"
            for item in view.get("statuses", []):
                if str(item.get("code", "")).startswith("PowerState/"):
                    power = item["code"].split("/", 1)[1]
            name = view.get("computerName") or props.get("osProfile", {}).get("computerName", "")
            out.append({"instance_id": str(vm.get("instanceId")), "host": name.lower(), "power": power})
        url = body.get("nextLink") or ""
    return out


# --- hosts --------------------------------------------------------------------------------------------------


def expand_hostlist(text: str) -> list[str]:
    """Slurm hostlist expression -> host names ('a-[000001-000003,00000a]' style ranges)."""
    hosts: list[str] = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,]*", text):
        match = re.fullmatch(r"(.*?)\[([^\]]*)\](.*)", part.strip())
        if not match:
            if part.strip():
                hosts.append(part.strip())
            continue
        head, ranges, tail = match.groups()
        for item in ranges.split(","):
            low, _, high = item.partition("-")
            if not high:
                hosts.append(f"{head}{low}{tail}")
                continue
            base = 36 if re.search(r"[a-zA-Z]", low + high) else 10
            width = len(low)
            for number in range(int(low, base), int(high, base) + 1):
                hosts.append(f"{head}{_in_base(number, base, width)}{tail}")
    return [host.lower() for host in hosts]


def _in_base(number: int, base: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, base)
        out = digits[rest] + out
        if not number:
            return out.rjust(width, "0")


def _island_of(config: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The island of a VM host name ('llm-h100-i0-00000a') or of a Slurm node slot ('h100-i0-003')."""
    for island in config["islands"]:
        if name.startswith(island["host_prefix"].lower()) or name.startswith(island["key"] + "-"):
            return island
    return None


def by_island(config: dict[str, Any], hosts: list[str]) -> dict[str, list[str]]:
    """Names grouped by island (VM host names or Slurm slots); unknown names are logged."""
    groups: dict[str, list[str]] = {}
    for host in hosts:
        island = _island_of(config, host)
        if island is None:
            log(f"{host}: not a node of this cluster's islands; ignored")
            continue
        groups.setdefault(island["key"], []).append(host)
    return groups


def island_by_key(config: dict[str, Any], key: str) -> dict[str, Any]:
    return next(i for i in config["islands"] if i["key"] == key)


def slurm_nodes(names: list[str]) -> dict[str, dict[str, str]]:
    """Slurm node name -> its fields (NodeHostName, State, ...), from `scontrol -o show node`."""
    if not names:
        return {}
    try:
        done = subprocess.run(
            [*ENV.scontrol.split(), "-o", "show", "node", ",".join(names)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log(f"scontrol show node failed: {err}")
        return {}
    found = {}
    for line in done.stdout.splitlines():
        fields = dict(token.split("=", 1) for token in line.split() if "=" in token)
        if fields.get("NodeName"):
            found[fields["NodeName"].lower()] = fields
    return found


def slurm_hostnames(names: list[str]) -> dict[str, str]:
    """Slurm node name -> the host that registered it (NodeHostName)."""
    nodes = slurm_nodes(names)
    return {name: f["NodeHostName"].lower() for name, f in nodes.items() if f.get("NodeHostName")}


def slurm_states(names: list[str]) -> dict[str, str]:
    """Slurm node name -> its State (e.g. IDLE+CLOUD+POWERED_DOWN)."""
    return {name: f.get("State", "") for name, f in slurm_nodes(names).items()}


def rack_slots(island: dict[str, Any], names: list[str]) -> list[str]:
    """Every slot of the racks (Slurm blocks of `rack` slots) that `names` belong to, in order; with elastic
    power an island has as many slots as VMs (`nodes`)."""
    rack, width, count = (
        int(island.get("rack") or 0),
        int(island.get("slot_width") or 3),
        int(island["nodes"]),
    )
    numbers = [name.rsplit("-", 1)[-1] for name in names]
    out = []
    for block in sorted({int(n) // rack for n in numbers if n.isdigit()}):
        out += [f"{island['key']}-{n:0{width}d}" for n in range(block * rack, min((block + 1) * rack, count))]
    return out


OUT_OF_SERVICE = {"DOWN", "DRAIN", "FAIL"}
"""Node state flags of a slot a person or a failed start took out of service: left powered off, since
slurmctld powers up a DOWN node when asked (24.11.5: `down~` -> `down#`) and it would then sit idle."""


def resume_rest_of_racks(config: dict[str, Any], key: str, names: list[str]) -> None:
    """Ask Slurm to power up the powered-down slots of the racks `names` are in (GB pools), except those
    out of service (down, drained, failed)."""
    island = island_by_key(config, key)
    if config.get("scheduler") != "slurm" or not island.get("rack"):
        return
    rest = [name for name in rack_slots(island, names) if name not in names]
    states = {name: set(state.split("+")) for name, state in slurm_states(rest).items()}
    down = [n for n in rest if "POWERED_DOWN" in states.get(n, set()) and not states[n] & OUT_OF_SERVICE]
    if down:
        log(f"resume {key}: the rest of the rack: {','.join(down)}")
        _scontrol(["update", f"NodeName={','.join(down)}", "State=POWER_UP"])


BUSY = ("ALLOCATED", "MIXED", "COMPLETING", "POWERING_UP")


def keep_busy_racks_up(config: dict[str, Any]) -> None:
    """SuspendExcNodes = the kept-warm slots + every slot of a rack with a busy node: Slurm then suspends
    a GB rack only when all of it is idle. Sent only when slurmctld holds another value: compared with
    what it holds now, not with what was last sent, because a value set with `scontrol update` lives only
    in the running slurmctld and a reconfigure or restart puts slurm.conf's back (seen on 24.11.5 and
    26.05.5), which would let Slurm suspend the idle rest of a busy rack."""
    islands = [i for i in config["islands"] if i.get("rack")]
    if config.get("scheduler") != "slurm" or not islands:
        return
    keep = [part for part in str(config.get("suspend_exc_nodes") or "").split(",") if part]
    for island in islands:
        slots = rack_slots(
            island, [f"{island['key']}-{n}" for n in range(0, island["nodes"], island["rack"])]
        )
        states = slurm_states(slots)
        busy = [n for n in slots if any(flag in states.get(n, "") for flag in BUSY)]
        keep += [n for n in rack_slots(island, busy)]
    value = ",".join(keep)
    if slurm_suspend_exc_nodes() == set(expand_hostlist(value)):
        return
    _scontrol(["update", f"SuspendExcNodes={value}" if value else "SuspendExcNodes="])


def slurm_suspend_exc_nodes() -> set[str] | None:
    """The nodes slurmctld's SuspendExcNodes holds now (`scontrol show config`); None when unreadable."""
    try:
        done = subprocess.run(
            [*ENV.scontrol.split(), "show", "config"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log(f"scontrol show config failed: {err}")
        return None
    found = re.search(r"^SuspendExcNodes\s*=\s*(.*?)\s*$", done.stdout, re.M)
    if done.returncode != 0 or found is None:
        return None
    return set() if found.group(1) in ("", "(null)") else set(expand_hostlist(found.group(1)))


def resolve(config: dict[str, Any], key: str, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """Slurm names -> VM host names of island `key`, and the names with no VM known behind them.

    Slurm's nodes are slots ('h100-i0-003') that a VM claims when it boots (components/bootstrap/slurm.py);
    the VM behind a slot is the host that registered it (NodeHostName), remembered in the state because
    Slurm may forget it once the node is powered down. VM host names map to themselves.
    """
    prefix = island_by_key(config, key)["host_prefix"].lower()
    mapped = {name: name for name in names if name.startswith(prefix)}
    slots = [name for name in names if name not in mapped]
    seen = {
        slot: host
        for slot, host in slurm_hostnames(slots).items()
        if host.startswith(prefix) and slot in slots
    }
    with locked_state() as state:
        known = state.setdefault("slots", {})
        known.update(seen)
        for slot in slots:
            if slot in known:
                mapped[slot] = known[slot]
    return mapped, [name for name in names if name not in mapped]


def remember_slots(pairs: dict[str, str]) -> None:
    with locked_state() as state:
        state.setdefault("slots", {}).update({slot: host for slot, host in pairs.items() if slot != host})


# --- Slurm --------------------------------------------------------------------------------------------------


def slurm_down(config: dict[str, Any], hosts: list[str], reason: str) -> None:
    if config.get("scheduler") != "slurm" or not hosts:
        return
    reason = re.sub(r"[^A-Za-z0-9 ._:/()=,+-]", " ", reason)[:200]
    _scontrol(["update", f"NodeName={','.join(sorted(hosts))}", "State=DOWN", f"Reason={reason}"])


def slurm_resume(config: dict[str, Any], hosts: list[str]) -> None:
    if config.get("scheduler") == "slurm" and hosts:
        _scontrol(["update", f"NodeName={','.join(sorted(hosts))}", "State=RESUME"])


def _scontrol(args: list[str]) -> None:
    try:
        done = subprocess.run([*ENV.scontrol.split(), *args], capture_output=True, text=True, timeout=60)
        log(f"scontrol {' '.join(args)} -> {done.returncode} {done.stderr.strip()}")
    except (OSError, subprocess.TimeoutExpired) as err:
        log(f"scontrol {' '.join(args)} failed: {err}")


# --- power operations ---------------------------------------------------------------------------------------

TARGET = {"start": ("running", "starting"), "deallocate": ("deallocated", "deallocating")}


def power(
    config: dict[str, Any],
    action: str,
    key: str,
    hosts: list[str] | None,
    reason: str,
    slurm_nodes: list[str] | None = None,
) -> str | None:
    """Ask Azure to start or deallocate `hosts` of island `key` (None: the whole island). Returns the id of
    the operation recorded in the state, or None when nothing needed doing. Raises AzureError.
    `slurm_nodes`: Slurm's names for them, marked down if the start fails (default: the host names)."""
    island = island_by_key(config, key)
    done_state, moving_state = TARGET[action]
    now = ENV.time()
    with locked_state() as state:
        pending = {
            instance
            for op in state["operations"].values()
            if op["island"] == key and op["action"] == action
            for instance in op["instances"]
        }
    instances = list_instances(config, island)
    wanted = [vm for vm in instances if hosts is None or vm["host"] in hosts]
    todo = [
        vm
        for vm in wanted
        if vm["power"] not in (done_state, moving_state) and vm["instance_id"] not in pending
    ]
    if not todo:
        log(f"{action} {key}: {len(wanted)} instance(s) already {done_state} or on the way; nothing to do")
        return None
    ids = [vm["instance_id"] for vm in todo]
    url = f"{scale_set_path(config, island)}/{action}?api-version={config['api_version']}"
    status, headers, body = arm(config, "POST", url, {"instanceIds": ids}, what=f"{action} {key}")
    if status not in (200, 202):
        code, message = _error_code(body, f"HTTP{status}")
        raise AzureError(code, message, status)
    op_id = uuid.uuid4().hex[:12]
    monitor = (headers.get("Azure-AsyncOperation") or headers.get("Location")) if status == 202 else None
    with locked_state() as state:
        state["operations"][op_id] = {
            "action": action,
            "island": key,
            "instances": ids,
            "hosts": [vm["host"] for vm in todo],
            "slurm_nodes": slurm_nodes if slurm_nodes is not None else [vm["host"] for vm in todo],
            "url": monitor,
            "started": now,
            "heartbeat": now,
            "reason": reason,
        }
        set_power(state, key, moving_state, reason, now)
    log(f"{action} {key} instances {','.join(ids)}: accepted ({status}); operation {op_id}")
    if monitor is None:
        finish(config, op_id, "Succeeded", None)
    else:
        follow(op_id)
    return op_id


def follow(op_id: str) -> None:
    """Follow the operation: in a detached process (default), here (tests), or leave it to `watch`."""
    if ENV.poll_mode == "inline":
        poll(load_config(), op_id)
    elif ENV.poll_mode == "background":
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "poll", op_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )


def poll(config: dict[str, Any], op_id: str, budget_s: float = POLL_BUDGET_S) -> None:
    """Poll the operation's Azure-AsyncOperation URL until it ends (honouring Retry-After)."""
    waited = 0.0
    while True:
        with locked_state() as state:
            op = state["operations"].get(op_id)
            if op is None:
                return
            op["heartbeat"] = ENV.time()
            op["poller"] = os.getpid()
        try:
            status, headers, body = arm(config, "GET", op["url"], what=f"operation {op_id}")
        except AzureError as err:
            log(f"operation {op_id}: cannot poll ({err}); `watch` will try again")
            return
        outcome = body.get("status") if isinstance(body, dict) else None
        if status >= 400 and status not in RETRY_STATUSES:
            outcome = "Failed"
        if outcome in ("Succeeded", "Failed", "Canceled"):
            finish(config, op_id, outcome, body.get("error") if isinstance(body, dict) else body)
            return
        wait = _retry_after(headers, 3)
        if waited + wait > budget_s:
            return
        _sleep(wait)
        waited += wait


def finish(config: dict[str, Any], op_id: str, outcome: str, error: Any) -> None:
    """Record an operation's end; a failed start marks its nodes down and backs the island off."""
    now = ENV.time()
    with locked_state() as state:
        op = state["operations"].pop(op_id, None)
        if op is None:
            return
        key, action = op["island"], op["action"]
        entry = island_state(state, key)
        if outcome == "Succeeded":
            set_power(state, key, TARGET[action][0], op["reason"], now)
            if action == "start":
                entry.update(failures=0, backoff_until=None, last_error=None, down_hosts=[])
            log(f"operation {op_id}: {action} {key} succeeded")
            return
        code, message = _error_code({"error": error} if isinstance(error, dict) else error, outcome)
        log(f"operation {op_id}: {action} {key} {outcome}: {code} {message}")
        if action != "start":
            entry["last_error"] = {"code": code, "message": message, "time": iso(now)}
            return
        failed_hosts = op.get("slurm_nodes") or op["hosts"]
        back_off(entry, code, message, failed_hosts, now)
        set_power(state, key, "deallocated", f"start failed: {code}", now)
    slurm_down(config, failed_hosts, f"azure {code} (island {key} backs off)")


def back_off(entry: dict[str, Any], code: str, message: str, hosts: list[str], now: float) -> None:
    failures = int(entry.get("failures") or 0) + 1
    minutes = BACKOFF_MINUTES[min(failures, len(BACKOFF_MINUTES)) - 1]
    entry.update(
        failures=failures,
        backoff_until=now + minutes * 60,
        last_error={"code": code, "message": message[:300], "time": iso(now)},
        down_hosts=sorted(set(entry.get("down_hosts") or []) | set(hosts)),
    )


# --- commands -----------------------------------------------------------------------------------------------


def cmd_suspend(config: dict[str, Any], hostlist: str) -> int:
    """Deallocate the nodes' VMs; a failure is logged and retried by `watch` (Slurm counts them as off)."""
    failed = 0
    for key, names in by_island(config, expand_hostlist(hostlist)).items():
        if island_by_key(config, key).get("keep_warm"):
            log(f"suspend {key}: island is kept warm; not deallocating {','.join(names)}")
            continue
        mapped, unknown = resolve(config, key, names)
        if unknown:
            log(f"suspend {key}: no VM behind {','.join(unknown)} (never claimed); nothing to deallocate")
        hosts = sorted(set(mapped.values()))
        if not hosts:
            continue
        try:
            power(config, "deallocate", key, hosts, "slurm: idle past SuspendTime")
        except AzureError as err:
            failed += 1
            log(f"suspend {key}: {err}; `watch` retries")
            with locked_state() as state:
                entry = island_state(state, key)
                entry["pending_deallocate"] = sorted(set(entry.get("pending_deallocate") or []) | set(hosts))
                entry["last_error"] = {"code": err.code, "message": err.message, "time": iso(ENV.time())}
    return 1 if failed else 0


def pick_vms(config: dict[str, Any], key: str, names: list[str]) -> tuple[dict[str, str], list[str]]:
    """The VMs to start for Slurm nodes `names`: each slot's own VM when it has one and it is off, then
    other powered-off VMs of the island (a started VM claims a slot Slurm is powering up). Returns
    name -> host, and the names no VM is left for."""
    mapped, _ = resolve(config, key, names)
    off = [
        vm["host"]
        for vm in list_instances(config, island_by_key(config, key))
        if vm["power"] in TARGET["deallocate"]
    ]
    with locked_state() as state:
        taken = set((state.get("slots") or {}).values())
    chosen: dict[str, str] = {}
    for name in names:
        if mapped.get(name) in off and mapped[name] not in chosen.values():
            chosen[name] = mapped[name]
        elif mapped.get(name) == name:  # a VM host name whose VM is not off: nothing to start
            chosen[name] = name
    spare = sorted(off, key=lambda host: host in taken)  # VMs no slot remembers first
    for name in names:
        if name in chosen:
            continue
        host = next((h for h in spare if h not in chosen.values()), None)
        if host is None:
            break
        chosen[name] = host
    return chosen, [name for name in names if name not in chosen]


def cmd_resume(config: dict[str, Any], hostlist: str) -> int:
    """Start VMs for the nodes; an island backing off, or a refusal, marks them down at once (requeue)."""
    failed = 0
    now = ENV.time()
    for key, names in by_island(config, expand_hostlist(hostlist)).items():
        with locked_state() as state:
            entry = island_state(state, key)
            until = entry.get("backoff_until") or 0
            last = (entry.get("last_error") or {}).get("code", "")
        if until > now:
            log(f"resume {key}: backing off after {last} until {iso(until)}; not asking Azure")
            slurm_down(config, names, f"azure {last} (island {key} backs off until {iso(until)})")
            failed += 1
            continue
        try:
            chosen, short = pick_vms(config, key, names)
            hosts = sorted(set(chosen.values()))
            with locked_state() as state:
                entry = island_state(state, key)
                entry["pending_deallocate"] = sorted(set(entry.get("pending_deallocate") or []) - set(hosts))
            if short:
                log(f"resume {key}: no powered-off VM left for {','.join(short)}")
                slurm_down(config, short, f"azcluster: no powered-off VM left in island {key}")
                failed += 1
            remember_slots(chosen)
            if hosts:
                power(config, "start", key, hosts, "slurm: work queued", slurm_nodes=sorted(chosen))
            resume_rest_of_racks(config, key, sorted(chosen))
        except AzureError as err:
            failed += 1
            log(f"resume {key}: {err}")
            with locked_state() as state:
                back_off(island_state(state, key), err.code, err.message, names, now)
            slurm_down(config, names, f"azure {err.code} (island {key} backs off)")
    return 1 if failed else 0


def cmd_resume_fail(config: dict[str, Any], hostlist: str) -> int:
    """Nodes that did not register within ResumeTimeout: Slurm already set them DOWN; the island backs off."""
    now = ENV.time()
    for key, hosts in by_island(config, expand_hostlist(hostlist)).items():
        with locked_state() as state:
            back_off(island_state(state, key), "ResumeTimeout", "nodes did not register in time", hosts, now)
        log(f"resume-fail {key}: {','.join(hosts)} did not come back within ResumeTimeout")
    return 0


def cmd_watch(config: dict[str, Any]) -> int:
    """The timer's round: orphaned operations, suspended-but-running nodes, back-offs, idle islands."""
    now = ENV.time()
    with locked_state() as state:
        orphans = [
            op_id
            for op_id, op in state["operations"].items()
            if now - float(op.get("heartbeat") or 0) > POLLER_STALE_S
        ]
        islands = {key: dict(value) for key, value in state["islands"].items()}
    for op_id in orphans:
        log(f"operation {op_id}: its poller is gone; following it from here")
        poll(config, op_id, budget_s=30)
    for key, entry in islands.items():
        if entry.get("pending_deallocate"):
            try:
                power(config, "deallocate", key, entry["pending_deallocate"], "slurm: idle past SuspendTime")
                with locked_state() as state:
                    island_state(state, key)["pending_deallocate"] = []
            except AzureError as err:
                log(f"watch: deallocate {key} still failing: {err}")
        until = entry.get("backoff_until")
        if config.get("scheduler") == "slurm" and until and until <= now and entry.get("down_hosts"):
            if int(entry.get("failures") or 0) >= MAX_FAILURES:
                continue  # bounded: a person returns the nodes (scontrol update ... state=resume)
            log(f"watch: island {key} back-off ended; returning {','.join(entry['down_hosts'])} to service")
            slurm_resume(config, entry["down_hosts"])
            with locked_state() as state:
                island_state(state, key).update(down_hosts=[], backoff_until=None)
    if config.get("scheduler") != "slurm":
        watch_idle(config, now)
    else:
        keep_busy_racks_up(config)
    return 0


def gpu_busy(host: str) -> bool | None:
    """Whether any GPU of `host` is busy, from its health endpoint; None when it cannot be read."""
    url = ENV.util_url.format(host=host)
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        values = [float(gpu["utilization"]) for gpu in body["gpus"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        log(f"watch: GPU utilisation of {host} unreadable ({err}); counted as busy")
        return None
    return any(value > BUSY_PERCENT for value in values)


def watch_idle(config: dict[str, Any], now: float) -> None:
    """No scheduler: deallocate an island whose GPUs have all been idle for idle_minutes."""
    idle_s = float(config["idle_minutes"]) * 60
    for island in config["islands"]:
        key = island["key"]
        if island.get("keep_warm") or not island.get("nodes"):
            continue
        try:
            instances = list_instances(config, island)
        except AzureError as err:
            log(f"watch: cannot list {key}: {err}")
            continue
        running = [vm for vm in instances if vm["power"] == "running"]
        with locked_state() as state:
            entry = island_state(state, key)
            if not running:
                if entry.get("state") not in ("deallocated", "deallocating"):
                    set_power(state, key, "deallocated", "stopped outside the idle watcher", now)
                entry.pop("last_busy", None)
                continue
            if entry.get("state") != "running":
                set_power(state, key, "running", "started", now)
                entry["last_busy"] = now
            last_busy = float(entry.setdefault("last_busy", now))
        busy = [vm["host"] for vm in running if gpu_busy(vm["host"]) is not False]
        if busy:
            with locked_state() as state:
                island_state(state, key)["last_busy"] = now
            continue
        if now - last_busy < idle_s:
            continue
        minutes = int((now - last_busy) // 60)
        log(f"watch: every GPU of island {key} idle for {minutes} min; deallocating it")
        try:
            power(config, "deallocate", key, None, f"idle watcher: all GPUs idle {minutes} min")
        except AzureError as err:
            log(f"watch: deallocate {key} failed: {err}")


STATE_FIELDS = ("state", "since", "reason", "failures", "backoff_until", "last_error")


def cmd_state(full: bool = False) -> int:
    """Print the state without taking the lock (writes replace the file whole). By default compact and
    per island only, because Run Command returns only the last 4 KiB of output to `azcluster status`."""
    try:
        with open(os.path.join(ENV.state_dir, "state.json"), encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        state = {}
    except (OSError, ValueError) as err:
        print(json.dumps({"error": f"state unreadable: {err}"}))
        return 1
    if full:
        print(json.dumps(state, indent=1, sort_keys=True))
        return 0
    islands = {}
    for key, entry in (state.get("islands") or {}).items():
        short = {name: entry.get(name) for name in STATE_FIELDS if entry.get(name) not in (None, 0, [], "")}
        if isinstance(short.get("last_error"), dict):
            short["last_error"] = {k: str(v)[:120] for k, v in short["last_error"].items()}
        islands[key] = short
    print(
        json.dumps(
            {"islands": islands, "operations": len(state.get("operations") or {})}, separators=(",", ":")
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("suspend", "resume", "resume-fail", "watch", "poll", "state"):
        sys.stderr.write(__doc__ or "")
        return 2
    command, rest = args[0], args[1:]
    if command == "state":
        return cmd_state(full="--full" in rest)
    try:
        config = load_config()
    except (OSError, ValueError) as err:
        log(f"{command}: cannot read {ENV.config}: {err}")
        return 1
    if command in ("suspend", "resume", "resume-fail") and not rest:
        sys.stderr.write(f"{command} needs a Slurm host list\n")
        return 2
    log(f"{command} {' '.join(rest)}".strip())
    if command == "suspend":
        return cmd_suspend(config, rest[0])
    if command == "resume":
        return cmd_resume(config, rest[0])
    if command == "resume-fail":
        return cmd_resume_fail(config, rest[0])
    if command == "poll":
        poll(config, rest[0])
        return 0
    return cmd_watch(config)


if __name__ == "__main__":
    sys.exit(main())

"""Run a Pulumi program offline under mocks and record everything it registers.

No credentials, no network, no Pulumi CLI: the program runs inside the Python SDK with
`pulumi.runtime.set_mocks(..., preview=False)`, so every value is concrete. Pulumi's `Mocks` are not told
dependencies, so a `MockMonitor` subclass records every RegisterResource request (type, name, parent,
dependencies, custom or component, inputs as registered in Pulumi's camelCase) before the mocks answer it
with the inputs echoed back plus a name, a plausible Azure resource id and the few outputs a program reads
(identity GUIDs, private IPs, the Lustre MGS address). `azcluster plan` is its main user.

It is also the one mock harness of the tests: `run(program)` runs the same program under the same mocks
and returns a `Capture` of every registration with what a test asserts on (raw inputs, outputs, parent,
dependencies, `protect`, `retain_on_delete`) and the resolved value the program returned. A test that
needs Azure to report another computed output adds it to `EXTRA_OUTPUTS`.

pulumi and pulumi-azure-native are imported only inside the run functions, so importing this module is
cheap.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

PROJECT = "azcluster"
"""The Pulumi project name (stacks/Pulumi.yaml): the second part of every URN."""
SECRET_MASK = "[secret]"
UNKNOWN_MASK = "[unknown]"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
STACK_TYPE = "pulumi:pulumi:Stack"
CLIENT_CONFIG_TOKEN = "azure-native:authorization:getClientConfig"
MOCK_SUBSCRIPTION = ZERO_GUID
"""The subscription in every mocked resource id."""
UNKNOWN_SUBNET = "10.42.0.0/24"
"""Where the mocks hand out addresses in a subnet the program did not create (an id given as a string)."""
MOCK_PRIVATE_IP = "10.42.0.4"
"""The first address Azure hands out (it keeps .0-.3) in such a subnet."""
_MOCK_NAMESPACE = uuid.UUID("5f1e6f5c-51a4-4c1e-9b0e-6a7a2c1d0a11")


@dataclass(frozen=True)
class PlannedResource:
    """One resource the program registered, as the Pulumi engine would have been asked to create it."""

    urn: str
    type: str
    name: str
    parent: str | None
    """URN of the parent resource; None for resources directly under the stack."""
    depends_on: list[str]
    """URNs this resource waits for: explicit `depends_on` plus every resource whose outputs it takes."""
    inputs: dict[str, Any]
    """Inputs as registered (Pulumi's camelCase), secrets replaced by "[secret]"."""
    custom: bool
    """True for cloud resources, False for components (which only group children)."""
    custom_data: str | None = field(default=None, repr=False, compare=False)
    """A VM's or scale set's osProfile.customData as registered, secret or not (never printed: it may hold
    a secret; `azcluster.plan` shows it decoded with its secret files masked)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "depends_on": list(self.depends_on),
            "inputs": self.inputs,
            "custom": self.custom,
        }


@dataclass
class ProgramRun:
    """What a program registered under the mocks, and its stack outputs (secrets masked)."""

    resources: list[PlannedResource]
    outputs: dict[str, Any]
    invokes: list[str]
    """Tokens of the provider functions the program called."""
    messages: list[tuple[str, str]] = field(default_factory=list)
    """(level, text) of what the program logged through `pulumi.log` at info level and above."""
    secrets: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    """Every secret string the program registered: what masked output is checked against."""


# --- running a program under mocks -----------------------------------------------------------------------


@dataclass
class Resource:
    """One registration as a test sees it: raw inputs (secrets unwrapped), the mocked outputs and options."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    retain_on_delete: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False


@dataclass
class Capture:
    """What a program registered, in registration order, and the value it returned (resolved)."""

    resources: list[Resource]
    value: Any = None

    def of_type(self, type_: str) -> list[Resource]:
        """Resources whose type token is `type_` or ends with `:type_` (e.g. "network:Subnet")."""
        return [r for r in self.resources if r.type == type_ or r.type.endswith(":" + type_)]

    def one(self, type_: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one {type_} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    @cached_property
    def _dependencies(self) -> dict[str, list[str]]:
        return {r.urn: r.dependencies for r in self.resources}

    def depends_on(self, resource: Resource, target: Resource) -> bool:
        """True when `resource` waits for `target`, directly or through other resources."""
        seen: set[str] = set()
        stack = list(resource.dependencies)
        while stack:
            urn = stack.pop()
            if urn == target.urn:
                return True
            if urn not in seen:
                seen.add(urn)
                stack.extend(self._dependencies.get(urn, []))
        return False

    def dependents(self, target: Resource) -> list[Resource]:
        """Every resource that waits for `target`, directly or transitively."""
        return [r for r in self.resources if r is not target and self.depends_on(r, target)]


def run(program: Callable[[], Any], *, project: str = PROJECT, stack: str = "test") -> Capture:
    """Run `program` under the mocks and return everything it registered, for tests.

    Whatever `program` returns (Outputs, dicts or lists of them) is resolved into `Capture.value`, secrets
    unwrapped. Exceptions raised by the program propagate.
    """
    box: dict[str, Any] = {}

    def wrapped() -> None:
        import pulumi

        box["output"] = pulumi.Output.from_input(program())

    def resolve(loop: asyncio.AbstractEventLoop) -> None:
        if "output" in box:
            box["value"] = loop.run_until_complete(box["output"].future())

    recorder = contextvars.copy_context().run(
        _run_in_fresh_context, wrapped, stack, project, resolve, capture=True
    )[1]
    return Capture(resources=recorder.captured(), value=box.get("value"))


def run_program(program: Callable[[], Any], stack: str, project: str = PROJECT) -> ProgramRun:
    """Run `program` (which creates Pulumi resources) offline under mocks and return what it registered.

    Re-entrant: each run gets a fresh contextvars context (Pulumi keeps its settings and root stack in
    context variables), a fresh event loop and a fresh monitor, so runs never see each other's resources.
    Errors raised by the program (or by a resource registration) propagate unchanged.
    """
    return contextvars.copy_context().run(_run_in_fresh_context, program, stack, project)[0]


def _run_in_fresh_context(
    program: Callable[[], Any],
    stack: str,
    project: str,
    after: Callable[[asyncio.AbstractEventLoop], None] | None = None,
    *,
    capture: bool = False,
) -> tuple[ProgramRun, Any]:
    """`capture`: also keep each registration deserialised (Capture.resources, for tests). A plan does
    not: deserialising every scale set's inputs a second time cost it CPU and memory per scale set
    (benchmarks/bench_plan.py --scale)."""
    import pulumi
    from pulumi.runtime import mocks, settings
    from pulumi.runtime.stack import run_pulumi_func

    recorder = _recording_monitor_class()(capture=capture)
    messages: list[tuple[str, str]] = []
    if after is None:  # a plan: what the program logs is collected, nothing propagates
        logger = logging.Logger("azcluster.plan.engine", logging.INFO)
    else:  # a test: pytest's caplog sees it too
        logger = logging.getLogger("azcluster.mockrun.engine")
        logger.setLevel(logging.INFO)
    logger.addHandler(handler := _ListHandler(messages))
    # The SDK keeps outstanding RPCs in a module-level list: a program that failed leaves tasks of its
    # (closed) loop there, which the next run would await. pulumi.runtime.test clears them the same way.
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    restore_loop = _save_loop_state()
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_note_loop_exception)
    asyncio.set_event_loop(loop)
    try:
        settings.ROOT.set(None)  # only in this context: a caller's own mocks setup is left alone
        mocks.set_mocks(
            recorder.mocks, project=project, stack=stack, preview=False, logger=logger, monitor=recorder
        )
        pulumi.runtime.register_stack_transformation(_drop_aliases)
        loop.run_until_complete(run_pulumi_func(program))
        root = settings.get_root_resource()
        exported = dict(getattr(root, "outputs", {}) or {})
        outputs = {
            name: loop.run_until_complete(_resolve(pulumi.Output.from_input(value)))
            for name, value in exported.items()
        }
        if after is not None:
            after(loop)
    finally:
        _close_loop(loop)
        restore_loop()
        logger.removeHandler(handler)
    result = ProgramRun(
        resources=recorder.planned(),
        secrets=frozenset(recorder.secrets),
        outputs=outputs,
        invokes=list(recorder.mocks.invokes),
        messages=messages,
    )
    return result, recorder


class _ListHandler(logging.Handler):
    def __init__(self, messages: list[tuple[str, str]]) -> None:
        super().__init__(logging.INFO)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelname.lower(), record.getMessage()))


def _drop_aliases(args: Any) -> Any:
    """Leave out every resource's aliases: a plan has no earlier state to match them against.

    pulumi-azure-native gives each resource ~30 aliases (one per past API version), and the SDK turns each
    into several Outputs and tasks: most of a plan's run time, for nothing the plan shows.
    """
    import pulumi

    if not args.opts.aliases:
        return None
    opts = args.opts._copy()
    opts.aliases = None
    return pulumi.ResourceTransformationResult(args.props, opts)


async def _resolve(output: Any) -> Any:
    value = await output.future(with_unknowns=True)
    if await output.is_secret():
        return SECRET_MASK
    return _plain_output(value)


def _plain_output(value: Any) -> Any:
    from pulumi.output import Unknown

    if isinstance(value, Unknown):
        return UNKNOWN_MASK
    if isinstance(value, dict):
        return {str(key): _plain_output(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_output(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _save_loop_state() -> Callable[[], None]:
    """How to put back the thread's event loop state as it is now, without creating a loop.

    With the default policy that is its thread-local (`_loop` and `_set_called`): a thread that never set
    a loop must get back to "never set", or asyncio.get_event_loop() there stops creating one on demand,
    which Pulumi's own mocks rely on.
    """
    policy = asyncio.get_event_loop_policy()
    local = getattr(policy, "_local", None)
    if local is not None and hasattr(local, "_loop") and hasattr(local, "_set_called"):
        saved = (local._loop, local._set_called)

        def restore() -> None:
            local._loop, local._set_called = saved

        return restore
    try:
        previous = policy.get_event_loop()
    except RuntimeError:
        previous = None
    return lambda: asyncio.set_event_loop(previous)


def _note_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """What the loop reports after the fact, as one line without a traceback.

    A failed program leaves Outputs whose futures hold the error it raised (already propagated to the
    caller). Python reports each when the garbage collector frees it, which can happen anywhere later,
    even inside `ast.parse`; asyncio's default handler then formats a traceback, and on Python 3.11
    traceback formatting itself calls `ast.parse` (to place its ^^^ carets) from within the outer parse,
    which breaks CPython's shared AST depth counter: the outer caller gets
    `SystemError: AST constructor recursion depth mismatch` (python/cpython#106905 is the same counter).
    So nothing here formats a traceback.
    """
    error = context.get("exception")
    detail = f": {type(error).__name__}" if error is not None else ""
    logging.getLogger("azcluster.mockrun.engine").debug("%s%s", context.get("message", "loop error"), detail)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what a failed program left pending, then close (no 'Task was destroyed' noise)."""
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


EXTRA_OUTPUTS: dict[str, Callable[[dict[str, Any], str, str], dict[str, Any]]] = {}
"""type token -> function(inputs, Azure name, id) -> outputs to add: how a test makes the mocked Azure
report another output that Azure computes (applied after the built-in ones)."""


_CUSTOM_DATA_PATHS = {
    "azure-native:compute:VirtualMachineScaleSet": ("virtualMachineProfile", "osProfile"),
    "azure-native:compute:VirtualMachine": ("osProfile",),
}


def _without_custom_data(typ: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs a mocked resource echoes back, less its custom data: Azure never returns a VM's or a
    scale set's customData (write-only; unlike user data it cannot be read back,
    learn.microsoft.com/azure/virtual-machines/custom-data), and the SDK would otherwise keep a second copy
    of every scale set's ~27 KB as an output nobody reads."""
    path = _CUSTOM_DATA_PATHS.get(typ)
    return _drop(inputs, (*path, "customData")) if path is not None else inputs


def _drop(value: Any, path: tuple[str, ...]) -> Any:
    """`value` less the key at `path`, copying only the dicts on the way; secret wrappers (which
    `deserialize_properties` puts on the top-level property holding a secret) are looked through."""
    from pulumi.runtime import rpc

    if not isinstance(value, dict):
        return value
    if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return {**value, "value": _drop(value.get("value"), path)}
    key, rest = path[0], path[1:]
    if key not in value:
        return value
    out = dict(value)
    if rest:
        out[key] = _drop(value[key], rest)
    else:
        del out[key]
    return out


class _PlanMocks:
    """Answers for the mocked engine: inputs echoed back plus a name, an id and the outputs programs read.

    Built lazily as a `pulumi.runtime.mocks.Mocks` subclass (see `_recording_monitor_class`), so this module
    imports without pulumi. Called from the SDK's executor threads, hence the lock.
    """

    def __init__(self) -> None:
        self.invokes: list[str] = []
        self._lock = threading.Lock()
        self._subnets: dict[str, str] = {}  # lower-cased subnet id -> address prefix
        self._next_host: dict[str, int] = {}

    def call(self, args: Any) -> tuple[dict[str, Any], list[Any]]:
        with self._lock:
            self.invokes.append(args.token)
        if args.token == CLIENT_CONFIG_TOKEN:
            return {
                "subscriptionId": ZERO_GUID,
                "tenantId": ZERO_GUID,
                "objectId": ZERO_GUID,
                "clientId": ZERO_GUID,
            }, []
        return {}, []

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        if not args.custom:
            return "", inputs
        azure_name = azure_resource_name(args.typ, args.name, inputs)
        resource_id = _azure_id(args.typ, azure_name, inputs)
        outputs = {**_without_custom_data(args.typ, inputs), "name": azure_name, "id": resource_id}
        identity = inputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Input: a list of identity ids; output: a map from id to that identity's principal and client.
            outputs["identity"] = {
                **identity,
                "userAssignedIdentities": {
                    str(ident): {"principalId": ZERO_GUID, "clientId": ZERO_GUID}
                    for ident in identity["userAssignedIdentities"]
                },
            }
        if isinstance(identity, dict) and "SystemAssigned" in str(identity.get("type", "")):
            # Azure gives a system-assigned identity its own principal (what role assignments name).
            outputs["identity"] = {
                **outputs.get("identity", identity),
                "principalId": str(uuid.uuid5(_MOCK_NAMESPACE, f"{resource_id}/identity")),
                "tenantId": ZERO_GUID,
            }
        outputs.update(self._extras(args.typ, azure_name, resource_id, inputs))
        extra = EXTRA_OUTPUTS.get(args.typ)
        if extra is not None:
            outputs.update(extra(inputs, azure_name, resource_id))
        return resource_id, outputs

    def _extras(self, typ: str, name: str, resource_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        guid = str(uuid.uuid5(_MOCK_NAMESPACE, resource_id))
        if typ == "azure-native:network:Subnet":
            prefix = inputs.get("addressPrefix") or next(iter(inputs.get("addressPrefixes") or []), None)
            if isinstance(prefix, str):
                with self._lock:
                    self._subnets[resource_id.lower()] = prefix
            return {}
        if typ == "azure-native:managedidentity:UserAssignedIdentity":
            return {
                "principalId": guid,
                "clientId": str(uuid.uuid5(_MOCK_NAMESPACE, guid)),
                "tenantId": ZERO_GUID,
            }
        if typ == "azure-native:network:PublicIPAddress":
            # From the resource id, not a counter: resources register concurrently, so a counter would hand
            # the same address to a different resource from one run to the next. TEST-NET-3 (RFC 5737): a
            # documentation range, never a real host.
            return {"ipAddress": f"203.0.113.{int(guid[:8], 16) % 254 + 1}"}
        if typ == "azure-native:network:NetworkInterface":
            configs = []
            for config in inputs.get("ipConfigurations") or []:
                subnet = (config.get("subnet") or {}).get("id") if isinstance(config, dict) else None
                configs.append({**config, "privateIPAddress": self._next_ip(subnet)})
            return {"ipConfigurations": configs, "macAddress": "00-0D-3A-00-00-01"}
        if typ == "azure-native:network:PrivateEndpoint":
            subnet = (inputs.get("subnet") or {}).get("id")
            return {
                "customDnsConfigs": [
                    {"fqdn": f"{name}.privatelink.mock", "ipAddresses": [self._next_ip(subnet)]}
                ]
            }
        if typ == "azure-native:storagecache:AmlFilesystem":
            mgs = self._next_ip(inputs.get("filesystemSubnet"))
            return {
                "clientInfo": {
                    "mgsAddress": mgs,
                    "mountCommand": f"sudo mount -t lustre -o noatime,flock {mgs}@tcp:/lustrefs /lustre",
                    "lustreVersion": "2.15",
                }
            }
        if typ == "azure-native:storage:StorageAccount":
            return {
                "primaryEndpoints": {
                    kind: f"https://{name}.{kind}.core.windows.net/"
                    for kind in ("blob", "dfs", "file", "queue", "table")
                }
            }
        if typ == "azure-native:dashboard:Grafana":
            # Azure's endpoint is https://<name>-<hash>.<region code>.grafana.azure.com.
            endpoint = f"https://{name}-{guid[:8]}.eus.grafana.azure.com"
            return {"properties": {**(inputs.get("properties") or {}), "endpoint": endpoint}}
        if typ == "azure-native:monitor:DataCollectionRule":
            return {"immutableId": f"dcr-{guid.replace('-', '')}"}
        if typ == "azure-native:compute:VirtualMachineScaleSet":
            return {"uniqueId": guid, "provisioningState": "Succeeded"}
        if typ == "azure-native:compute:VirtualMachine":
            return {"vmId": guid, "provisioningState": "Succeeded"}
        return {}

    def _next_ip(self, subnet_id: Any) -> str:
        """The next address Azure would hand out in that subnet (it keeps .0-.3), or in UNKNOWN_SUBNET."""
        import ipaddress

        with self._lock:
            key = subnet_id.lower() if isinstance(subnet_id, str) else ""
            prefix = self._subnets.get(key, UNKNOWN_SUBNET)
            host = self._next_host.get(key, 4)
            self._next_host[key] = host + 1
        network = ipaddress.IPv4Network(prefix, strict=False)
        return str(network.network_address + min(host, network.num_addresses - 2))


_RECORDING_MONITOR: type | None = None


def _recording_monitor_class() -> type:
    """Build (once) the MockMonitor and Mocks subclasses; they need pulumi, imported here, not at import."""
    global _RECORDING_MONITOR
    if _RECORDING_MONITOR is not None:
        return _RECORDING_MONITOR
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime import rpc
    from pulumi.runtime.settings import get_project, get_stack

    class _Mocks(_PlanMocks, pulumi_mocks.Mocks):
        pass

    class RecordingMonitor(pulumi_mocks.MockMonitor):
        """A MockMonitor that keeps what the engine would be told: parent, dependencies and inputs."""

        def __init__(self, capture: bool = True) -> None:
            super().__init__(_Mocks())
            self._capture = capture  # tests want every registration deserialised; a plan never reads them
            self._records: list[PlannedResource] = []
            self._captured: list[Resource] = []
            self._stack_urn = ""
            self._record_lock = threading.Lock()
            self.secrets: set[str] = set()

        def make_urn(self, parent: str, type_: str, name: str) -> str:
            # The engine qualifies a child's type with its parent's whole type chain, except the root stack's
            # (MockMonitor keeps only the last link and includes the stack).
            if parent:
                qualified = parent.split("::")[2]
                if qualified != STACK_TYPE:
                    type_ = f"{qualified}${type_}"
            return f"urn:pulumi:{get_stack()}::{get_project()}::{type_}::{name}"

        def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method's name
            response = super().RegisterResource(request)
            if request.type == STACK_TYPE:
                self._stack_urn = response.urn
                return response
            dependencies = set(request.dependencies)
            for deps in request.propertyDependencies.values():
                dependencies.update(deps.urns)
            record = PlannedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                depends_on=sorted(dependencies),
                inputs=_inputs_json(request.object, seen := _Seen()),
                custom=bool(request.custom),
                custom_data=seen.custom_data,
            )
            if seen.secrets:
                with self._record_lock:
                    self.secrets.update(seen.secrets)
            if not self._capture:
                with self._record_lock:
                    self._records.append(record)
                return response
            registration = self.resources.get(response.urn)
            captured = Resource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                custom=bool(request.custom),
                inputs=_unwrap_secrets(rpc.deserialize_properties(request.object)),
                outputs=dict(registration.state) if registration else {},
                id=(registration.id or "") if registration else "",
                parent=request.parent,
                dependencies=list(request.dependencies),
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                ignore_changes=list(request.ignoreChanges),
                replace_on_changes=list(request.replaceOnChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
            )
            with self._record_lock:
                self._records.append(record)
                self._captured.append(captured)
            return response

        def captured(self) -> list[Resource]:
            """Every registration but the stack's, in registration order, as tests see it."""
            with self._record_lock:
                return list(self._captured)

        def planned(self) -> list[PlannedResource]:
            """Registered resources, parents before children, siblings by type then name (registration
            order is not deterministic: the SDK registers from a thread pool)."""
            stack = self._stack_urn
            records = [
                PlannedResource(
                    r.urn,
                    r.type,
                    r.name,
                    None if r.parent == stack else r.parent,
                    [dep for dep in r.depends_on if dep != stack],
                    r.inputs,
                    r.custom,
                    r.custom_data,
                )
                for r in self._records
            ]
            return _tree_order(records)

    _RECORDING_MONITOR = RecordingMonitor
    return RecordingMonitor


def _tree_order(records: list[PlannedResource]) -> list[PlannedResource]:
    children: dict[str | None, list[PlannedResource]] = {}
    urns = {record.urn for record in records}
    for record in records:
        parent = record.parent if record.parent in urns else None
        children.setdefault(parent, []).append(record)
    ordered: list[PlannedResource] = []
    stack = sorted(children.get(None, []), key=_sibling_key, reverse=True)
    while stack:
        record = stack.pop()
        ordered.append(record)
        stack.extend(sorted(children.get(record.urn, []), key=_sibling_key, reverse=True))
    return ordered


def _sibling_key(record: PlannedResource) -> tuple[bool, str, str]:
    return (record.custom is False, record.type, record.name)


@dataclass
class _Seen:
    """What walking one registration's inputs found besides them: its custom data (raw) and its secrets."""

    custom_data: str | None = None
    secrets: set[str] = field(default_factory=set)


def _inputs_json(struct: Any, seen: _Seen | None = None) -> dict[str, Any]:
    """A registered inputs struct as JSON-ready values, each secret replaced where it sits.

    `rpc.deserialize_properties` would push a secret's secretness up to the top-level property (masking a
    whole virtualMachineProfile for one secret field), so this walks the struct itself and hands only the
    special values (assets, archives, resource references) to `deserialize_properties`. `seen` collects
    the secret strings and an osProfile's customData on the way.
    """
    value = _struct_value(struct, seen if seen is not None else _Seen())
    return value if isinstance(value, dict) else {}


def _struct_value(value: Any, seen: _Seen, key: str = "") -> Any:
    from google.protobuf import struct_pb2
    from pulumi.runtime import rpc

    if isinstance(value, struct_pb2.Struct):
        # A protobuf Struct has no .get(); `in` then `[]` is the way.
        signature = value[rpc._special_sig_key] if rpc._special_sig_key in value else None  # noqa: SIM401
        if signature == rpc._special_secret_sig:
            inner = value["value"] if "value" in value else None  # noqa: SIM401 (a Struct has no .get)
            if key == "customData" and isinstance(inner, str):
                seen.custom_data = inner  # secret because of what it carries, found where that registers
            else:
                _collect_strings(inner, seen.secrets)
            return SECRET_MASK
        if signature is not None:
            return _special_value(rpc.deserialize_properties(value, keep_unknowns=True))
        return {name: _struct_value(value[name], seen, name) for name in sorted(value.keys())}
    if isinstance(value, struct_pb2.ListValue):
        return [_struct_value(item, seen) for item in value]
    if value == rpc.UNKNOWN:
        return UNKNOWN_MASK
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if key == "customData" and isinstance(value, str):
        seen.custom_data = value
    return value


def _collect_strings(value: Any, into: set[str]) -> None:
    from google.protobuf import struct_pb2

    if isinstance(value, str):
        into.add(value)
    elif isinstance(value, struct_pb2.Struct):
        for name in value:
            _collect_strings(value[name], into)
    elif isinstance(value, struct_pb2.ListValue):
        for item in value:
            _collect_strings(item, into)


def _unwrap_secrets(value: Any) -> Any:
    """Secret wrappers (`{sig: secret, value: ...}`, which `deserialize_properties` puts on the top-level
    property that holds a secret anywhere inside it) replaced by what they wrap, at any depth."""
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return _unwrap_secrets(value.get("value"))
        return {key: _unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(item) for item in value]
    return value


def _special_value(value: Any) -> Any:
    """Assets, archives and resource references, as short strings."""
    for attribute in ("path", "uri", "text"):
        found = getattr(value, attribute, None)
        if isinstance(found, str):
            return f"[{type(value).__name__} {found if attribute != 'text' else len(found)}]"
    if isinstance(value, str):
        return value
    return f"[{type(value).__name__}]"


# --- plausible Azure names and ids for the mocks ----------------------------------------------------------

_NAMESPACES = {
    "compute": "Microsoft.Compute",
    "network": "Microsoft.Network",
    "storage": "Microsoft.Storage",
    "storagecache": "Microsoft.StorageCache",
    "managedidentity": "Microsoft.ManagedIdentity",
    "authorization": "Microsoft.Authorization",
    "privatedns": "Microsoft.Network",
    "resources": "Microsoft.Resources",
}
_NAME_INPUT = {
    "azure-native:compute:VirtualMachineScaleSet": "vmScaleSetName",
    "azure-native:compute:VirtualMachine": "vmName",
    "azure-native:storage:StorageAccount": "accountName",
    "azure-native:storage:BlobContainer": "containerName",
    "azure-native:storage:FileShare": "shareName",
    "azure-native:managedidentity:UserAssignedIdentity": "resourceName",
    "azure-native:privatedns:PrivateRecordSet": "relativeRecordSetName",
    "azure-native:privatedns:RecordSet": "relativeRecordSetName",
    "azure-native:network:PublicIPAddress": "publicIpAddressName",
    "azure-native:dashboard:Grafana": "workspaceName",
    "azure-native:monitor:PrivateLinkScope": "scopeName",
    "azure-native:monitor:PrivateLinkScopedResource": "name",
}
"""Where the Azure name sits when it is not `<lowerCamel type>Name` (e.g. Subnet -> subnetName)."""
_RECORD_SET_PATH = "Microsoft.Network/privateDnsZones/{privateZoneName}/{recordType}"
_CHILD_PATHS = {
    # Types whose ARM path is not <namespace>/<plural of the Pulumi type> (components/monitoring.py).
    "azure-native:monitor:AzureMonitorWorkspace": "Microsoft.Monitor/accounts",
    "azure-native:monitor:DataCollectionEndpoint": "Microsoft.Insights/dataCollectionEndpoints",
    "azure-native:monitor:DataCollectionRule": "Microsoft.Insights/dataCollectionRules",
    "azure-native:monitor:PrivateLinkScope": "Microsoft.Insights/privateLinkScopes",
    "azure-native:monitor:PrivateLinkScopedResource": (
        "Microsoft.Insights/privateLinkScopes/{scopeName}/scopedResources"
    ),
    "azure-native:dashboard:Grafana": "Microsoft.Dashboard/grafana",
    "azure-native:dashboard:ManagedPrivateEndpoint": (
        "Microsoft.Dashboard/grafana/{workspaceName}/managedPrivateEndpoints"
    ),
    "azure-native:network:Subnet": "Microsoft.Network/virtualNetworks/{virtualNetworkName}/subnets",
    "azure-native:compute:CapacityReservation": (
        "Microsoft.Compute/capacityReservationGroups/{capacityReservationGroupName}/capacityReservations"
    ),
    "azure-native:network:SecurityRule": (
        "Microsoft.Network/networkSecurityGroups/{networkSecurityGroupName}/securityRules"
    ),
    "azure-native:storage:BlobContainer": (
        "Microsoft.Storage/storageAccounts/{accountName}/blobServices/default/containers"
    ),
    "azure-native:storage:FileShare": (
        "Microsoft.Storage/storageAccounts/{accountName}/fileServices/default/shares"
    ),
    "azure-native:privatedns:PrivateZone": "Microsoft.Network/privateDnsZones",
    "azure-native:privatedns:VirtualNetworkLink": (
        "Microsoft.Network/privateDnsZones/{privateZoneName}/virtualNetworkLinks"
    ),
    "azure-native:privatedns:PrivateRecordSet": _RECORD_SET_PATH,
    "azure-native:privatedns:RecordSet": _RECORD_SET_PATH,
    "azure-native:network:PrivateDnsZoneGroup": (
        "Microsoft.Network/privateEndpoints/{privateEndpointName}/privateDnsZoneGroups"
    ),
    "azure-native:network:PublicIPAddress": "Microsoft.Network/publicIPAddresses",
}
_FIRST_UPPER = re.compile(r"^[A-Z]+(?=[A-Z][a-z]|$)|^[A-Z]")


def azure_resource_name(typ: str, pulumi_name: str, inputs: dict[str, Any]) -> str:
    key = _NAME_INPUT.get(typ) or _lower_camel(typ.rsplit(":", 1)[-1]) + "Name"
    for candidate, value in inputs.items():
        if candidate.lower() == key.lower() and isinstance(value, str) and value:
            return value
    return pulumi_name


def _azure_id(typ: str, name: str, inputs: dict[str, Any]) -> str:
    parts = typ.split(":")
    module, kind = (parts[1], parts[2]) if len(parts) == 3 else ("", typ)
    subscription = f"/subscriptions/{ZERO_GUID}"
    if typ == "azure-native:resources:ResourceGroup":
        return f"{subscription}/resourceGroups/{name}"
    if typ == "azure-native:authorization:RoleAssignment":
        scope = inputs.get("scope") if isinstance(inputs.get("scope"), str) else subscription
        return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    group = inputs.get("resourceGroupName") if isinstance(inputs.get("resourceGroupName"), str) else "mock-rg"
    template = _CHILD_PATHS.get(typ)
    if template:
        fields = {key: value for key, value in inputs.items() if isinstance(value, str)}
        fields.setdefault("recordType", "A")
        path = template.format_map(_Missing(fields))
    else:
        path = f"{_NAMESPACES.get(module, 'Mock.' + module)}/{_plural(_lower_camel(kind))}"
    return f"{subscription}/resourceGroups/{group}/providers/{path}/{name}"


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "mock"


def _plural(word: str) -> str:
    """virtualNetwork -> virtualNetworks, userAssignedIdentity -> userAssignedIdentities."""
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "o", "u"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x")):
        return word + "es"
    return word + "s"


def _lower_camel(word: str) -> str:
    """VirtualNetwork -> virtualNetwork, NSGRule -> nsgRule."""
    return _FIRST_UPPER.sub(lambda match: match.group(0).lower(), word, count=1)

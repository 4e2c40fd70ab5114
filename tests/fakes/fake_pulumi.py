"""A stand-in `pulumi` executable: the Pulumi CLI as azcluster's Automation API wiring depends on it.

The Automation API runs `pulumi <args>` as a subprocess. This script answers the commands azcluster uses
(version, stack select/init/ls/export/import/output/history, preview, up, destroy, refresh, cancel) and
records every call (argv, working directory, the environment variables that matter), so tests check what
the real adapter asked for. Each behaviour below is taken from pulumi/pulumi's source (read at commit
1b5949891b3c, 2026-08-21; paths relative to that repository):

- Flags: each command accepts only the flags the real command registers, plus the root command's
  persistent flags, and answers anything else as cobra does, "unknown flag: --x", exit 1
  (pkg/cmd/pulumi/pulumi.go, operations/{up,preview,destroy,refresh}.go, stack/stack*.go, cancel/cancel.go;
  exit codes: pkg/cmd/pulumi/cmd/exit_codes.go).
- Events: written to the `--event-log` file for CLI versions up to 3.205, streamed over the
  `pulumirpc.Events/StreamEvents` gRPC call when the Automation API passes `tcp://host:port` (later
  versions: pkg/backend/display/display.go, proto/pulumi/events.proto; the SDK picks by version in
  sdk/python/lib/pulumi/automation/_stack.py `_setup_event_log`). Every run ends with a summary event whose
  counts include the stack and component resources but not default providers
  (pkg/engine/update.go `OnResourceStepPost`, `isInternalStep`), then the cancel event.
- A failed operation ends with the URN-less diagnostic "update failed" / "preview failed"
  (pkg/resource/deploy/deployment_executor.go `reportExecResult`).
- `destroy --exclude-protected` with nothing unprotected left prints one line and returns: no engine run,
  no events, no history entry (pkg/cmd/pulumi/operations/destroy.go, `getProtectedExcludes`).
- File backends: update, refresh, destroy and stack import hold the stack's lock file
  `.pulumi/locks/organization/<project>/<stack>/<id>.json` for the whole operation and refuse while another
  one exists; `cancel` deletes them all (pkg/backend/diy/lock.go, backend.go `Update`/`Destroy`/`Refresh`/
  `CancelCurrentUpdate`). Preview takes no lock.
- SIGINT (or SIGTERM) during an operation: the first asks the engine to cancel (the step in flight
  finishes and is recorded), the second terminates (the step in flight is abandoned and stays a pending
  operation); either way the lock is released and the command fails with "<op> cancelled", exit 8
  (pkg/backend/cancellation_scope.go, operations/up.go, exit_codes.go `ExitCancelled`). Like any Go
  program, it dies of SIGPIPE when it writes to a pipe nobody reads any more, and then leaves its lock.

Files live in $FAKE_PULUMI_DIR: scenario.json (input), calls.jsonl (what was asked), state.json (stacks,
their resources and history, kept across calls).
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

ENV_KEYS = (
    "PULUMI_BACKEND_URL",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_CONFIG_PASSPHRASE_FILE",
    "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER",
    "PULUMI_SKIP_UPDATE_CHECK",
    "PULUMI_AUTOMATION_API",
    "AZCLUSTER_STACK_FILE",
)
HISTORY = {
    "kind": "update",
    "startTime": "2026-03-01T10:00:00.000Z",
    "message": "",
    "environment": {},
    "config": {},
    "result": "succeeded",
    "endTime": "2026-03-01T10:05:00.000Z",
    "resourceChanges": {"create": 3},
}
STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_TYPE = "pulumi:providers:azure-native"

# Flags each command registers (name -> takes a value), from the files named in the module docstring.
_GLOBAL = {
    "color": True, "cwd": True, "C": True, "disable-integrity-checking": False, "emoji": False, "e": False,
    "fully-qualify-stack-names": False, "logflow": False, "logtostderr": False, "memprofilerate": True,
    "non-interactive": False, "otel-traces": True, "profiling": True, "tracing": True,
    "tracing-header": True, "verbose": True, "v": True,
}  # fmt: skip
_OPERATION = {
    "client": True, "config": True, "c": True, "config-file": True, "config-path": False, "copilot": False,
    "debug": False, "d": False, "diff": False, "event-log": True, "exec-agent": True, "exec-kind": True,
    "json": False, "j": False, "message": True, "m": True, "neo": False, "output": True, "parallel": True,
    "p": True, "run-program": False, "show-replacement-steps": False, "show-sames": False,
    "skip-config-validation": False, "skip-plugin-pre-install": False, "stack": True, "s": True,
    "suppress-outputs": False, "suppress-permalink": True, "suppress-progress": False, "target": True,
    "t": True, "target-dependents": False, "urns": False,
}  # fmt: skip
_STACK = {"show-ids": False, "i": False, "show-name": False, "show-secrets": False, "show-urns": False,
          "u": False, "stack": True, "s": True}  # fmt: skip
FLAGS: dict[str, dict[str, bool]] = {
    "version": {},
    "up": {**_OPERATION, "attach-debugger": True, "continue-on-error": False, "exclude": True,
           "exclude-dependents": False, "expect-no-changes": False, "ignore-protect": False,
           "neo-task-on-failure": False, "plan": True, "policy-pack": True, "policy-pack-config": True,
           "refresh": False, "r": False, "replace": True, "secrets-provider": True, "show-config": False,
           "show-full-output": False, "show-policy-remediations": False, "show-reads": False,
           "show-secrets": False, "skip-preview": False, "f": False, "strict": False,
           "target-replace": True, "yes": False, "y": False},
    "preview": {**_OPERATION, "attach-debugger": True, "exclude": True, "x": True,
                "exclude-dependents": False, "expect-no-changes": False, "ignore-protect": False,
                "import-file": True, "neo-task-on-failure": False, "policy-pack": True,
                "policy-pack-config": True, "refresh": False, "r": False, "replace": True, "save-plan": True,
                "show-config": False, "show-full-output": False, "show-policy-remediations": False,
                "show-reads": False, "show-secrets": False, "target-replace": True},
    "destroy": {**_OPERATION, "continue-on-error": False, "exclude": True, "x": True,
                "exclude-protected": False, "ignore-protect": False, "preview-only": False, "refresh": False,
                "r": False, "remove": False, "show-config": False, "show-full-output": False,
                "skip-preview": False, "f": False, "yes": False, "y": False},
    "refresh": {**_OPERATION, "clear-pending-creates": False, "exclude": True, "x": True,
                "exclude-dependents": False, "expect-no-changes": False, "import-pending-creates": True,
                "preview-only": False, "skip-pending-creates": False, "skip-preview": False, "f": False,
                "yes": False, "y": False},
    "cancel": {"stack": True, "s": True, "yes": False, "y": False},
    "stack select": {**_STACK, "create": False, "c": False, "secrets-provider": True},
    "stack init": {**_STACK, "copy-config-from": True, "no-select": False, "remote-config": False,
                   "secrets-provider": True, "teams": True, "yes": False, "y": False},
    "stack ls": {**_STACK, "all": False, "a": False, "organization": True, "o": True, "project": True,
                 "p": True, "tag": True, "t": True, "json": False, "j": False},
    "stack export": {**_STACK, "file": True, "version": True},
    "stack import": {**_STACK, "file": True, "force": False, "f": False},
    "stack output": {**_STACK, "json": False, "j": False, "shell": False},
    "stack history": {**_STACK, "full-dates": False, "page": True, "page-size": True, "json": False,
                      "j": False},
}  # fmt: skip
EXIT_ERROR = 1
EXIT_CANCELLED = 8


class Fake:
    def __init__(self, argv: list[str]) -> None:
        self.home = Path(os.environ["FAKE_PULUMI_DIR"])
        self.scenario = json.loads((self.home / "scenario.json").read_text())
        self.argv = argv
        self.words, self.flags, self.bad_flag = _parse(argv)
        first = self.words[:1]
        self.command = " ".join(self.words[:2]) if first == ["stack"] else (first[0] if first else "")
        self.stack = self.flags.get("stack") or self.flags.get("s")
        self.response = self.scenario.get("responses", {}).get(self.command, {})
        self.state_file = self.home / "state.json"
        self.signals: list[int] = []

    # -- bookkeeping --

    def log(self, **extra: object) -> None:
        call = {
            "argv": [a for a in self.argv if a != "--non-interactive"],
            "cwd": os.getcwd(),
            "env": {k: os.environ.get(k) for k in ENV_KEYS},
            "pid": os.getpid(),
            **extra,
        }
        with (self.home / "calls.jsonl").open("a") as out:
            out.write(json.dumps(call) + "\n")

    def load(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        names = self.scenario.get("stacks", [])
        deployment = self.scenario.get("deployment", {"resources": []})
        return {
            "stacks": {
                name: {"secretsprovider": None, "resources": deployment.get("resources", []), "history": []}
                for name in names
            }
        }

    def save(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state))

    # -- dispatch --

    def main(self) -> int:
        if self.command == "stack import":
            self.log(imported=json.loads(Path(self.flags["file"]).read_text()))
        else:
            self.log()
        if self.bad_flag or self.command not in FLAGS:
            what = f"unknown flag: {self.bad_flag}" if self.bad_flag else f'unknown command "{self.command}"'
            print(f"error: {what}", file=sys.stderr)
            return EXIT_ERROR
        if self.command == "version":
            print(self.scenario.get("version", "v3.200.0"))
            return 0
        state = self.load()
        if self.command == "stack init":
            name = self.words[2] if len(self.words) > 2 else self.stack
            state["stacks"][name] = {
                "secretsprovider": self.flags.get("secrets-provider"),
                "resources": [],
                "history": [],
            }
            self.save(state)
            self._write_secrets_provider(name, self.flags.get("secrets-provider"))
            return 0
        if self.command == "stack ls":
            print(json.dumps(self.scenario.get("ls", [])))
            return 0
        if self.stack not in state["stacks"]:
            print(f"error: no stack named '{self.stack}' found", file=sys.stderr)
            return 255
        if self.command == "stack select":
            return 0
        if self.command == "cancel":
            for lock in self.lock_dir().glob("*.json"):
                lock.unlink()
            return self.scripted()
        stack = state["stacks"][self.stack]
        if self.command in ("preview", "up", "destroy", "refresh", "stack import"):
            refusal = self.check_secrets(stack)
            if refusal:
                print(f"error: {refusal}", file=sys.stderr)
                return 255
        if self.command in ("preview", "up", "destroy", "refresh"):
            return self.operation(state, stack)
        if self.command == "stack output":
            outputs = self.scenario.get("outputs", {})
            shown = {
                key: (
                    item["value"] if self.flags.get("show-secrets") or not item.get("secret") else "[secret]"
                )
                for key, item in outputs.items()
            }
            print(json.dumps(shown))
        elif self.command == "stack history":
            entries = stack["history"] + self.scenario.get("history", [HISTORY])
            size = int(self.flags.get("page-size") or 0)
            print(json.dumps(entries[:size] if size else entries))
        elif self.command == "stack export":
            deployment = dict(self.scenario.get("deployment", {}))
            deployment["resources"] = stack["resources"]
            print(json.dumps({"version": 3, "deployment": deployment}))
        elif self.command == "stack import":
            with self.locked():
                stack["resources"] = json.loads(Path(self.flags["file"]).read_text())["deployment"].get(
                    "resources", []
                )
                self.save(state)
        return self.scripted()

    def scripted(self) -> int:
        sys.stdout.write(self.response.get("stdout", ""))
        sys.stderr.write(self.response.get("stderr", ""))
        return int(self.response.get("code", 0))

    # -- secrets: which manager the stack file (or, when allowed, the state) names --

    def stack_file(self) -> Path:
        return Path(os.getcwd()) / f"Pulumi.{self.stack}.yaml"

    def _write_secrets_provider(self, name: str, provider: str | None) -> None:
        """`stack init --secrets-provider` records the provider in the stack file, as the real one does."""
        path = Path(os.getcwd()) / f"Pulumi.{name}.yaml"
        if provider and provider != "passphrase" and path.exists():
            text = path.read_text()
            if "secretsprovider:" not in text:
                path.write_text(f"secretsprovider: {provider}\n{text}")

    def check_secrets(self, stack: dict) -> str | None:
        """pkg/cmd/pulumi/stack/secrets.go `GetSecretsManager`: the stack file's `secretsprovider:` or
        salt; with neither, the state's manager only when PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER is set
        (then written back to the file), else the default passphrase manager, which needs a passphrase
        (pkg/secrets/passphrase/manager.go)."""
        path = self.stack_file()
        text = path.read_text() if path.exists() else ""
        if "secretsprovider:" in text or "encryptionsalt:" in text:
            return None
        kept = stack.get("secretsprovider")
        fallback = os.environ.get("PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER", "").lower() in ("1", "true")
        if kept and kept != "passphrase" and fallback:
            path.write_text(f"secretsprovider: {kept}\n{text}")
            return None
        if os.environ.get("PULUMI_CONFIG_PASSPHRASE") is not None:
            return None
        phrase_file = os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
        if phrase_file:
            try:
                Path(phrase_file).resolve().read_text()  # filepath.Abs: relative to this process's cwd
            except OSError as err:
                return f"unable to read PULUMI_CONFIG_PASSPHRASE_FILE: {err}"
            return None
        return (
            "passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE "
            "environment variables"
        )

    # -- the file backend's lock --

    def lock_dir(self) -> Path:
        url = os.environ.get("PULUMI_BACKEND_URL", "")
        root = Path(urlparse(url).path) if url.startswith("file://") else self.home / "not-a-file-backend"
        project = "azcluster"
        settings = Path(os.getcwd()) / "Pulumi.yaml"
        if settings.exists():
            for line in settings.read_text().splitlines():
                if line.startswith("name:"):
                    project = line.split(":", 1)[1].strip()
        return root / ".pulumi" / "locks" / "organization" / project / str(self.stack)

    class Locked(Exception):
        pass

    def locked(self):
        fake = self

        class _Lock:
            def __enter__(self) -> Path | None:
                if not os.environ.get("PULUMI_BACKEND_URL", "").startswith("file://"):
                    self.path = None
                    return None
                directory = fake.lock_dir()
                others = sorted(directory.glob("*.json"))
                if others:
                    lines = [
                        "error: the stack is currently locked by "
                        f"{len(others)} lock(s). Either wait for the other process(es) to end or delete the "
                        "lock file with `pulumi cancel`."
                    ]
                    for other in others:
                        held = json.loads(other.read_text())
                        lines.append(
                            f"  {other.as_uri()}: created by {held['username']}@{held['hostname']} "
                            f"(pid {held['pid']}) at {held['timestamp']}"
                        )
                    raise Fake.Locked("\n".join(lines))
                directory.mkdir(parents=True, exist_ok=True)
                self.path = directory / f"{uuid.uuid4()}.json"
                self.path.write_text(
                    json.dumps(
                        {
                            "pid": os.getpid(),
                            "username": getpass.getuser(),
                            "hostname": socket.gethostname(),
                            "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        }
                    )
                )
                return self.path

            def __exit__(self, *exc: object) -> None:  # Go's `defer b.Unlock`: runs on every return
                if self.path is not None and self.path.exists():
                    self.path.unlink()

        return _Lock()

    # -- operations --

    def operation(self, state: dict, stack: dict) -> int:
        op = self.command
        if op == "destroy" and self.flags.get("exclude-protected"):
            protected = protected_urns(stack["resources"])
            if stack["resources"] and len(protected) == len(stack["resources"]):
                print(
                    "There were no unprotected resources to destroy. There are still "
                    f"{len(protected)} protected resources associated with this stack."
                )
                return 0
        try:
            if op == "preview":
                return self.run_engine(state, stack)
            with self.locked():
                return self.run_engine(state, stack)
        except Fake.Locked as err:
            print(str(err), file=sys.stderr)
            return EXIT_ERROR

    def run_engine(self, state: dict, stack: dict) -> int:
        op = self.command
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        sink = EventSink(self.flags.get("event-log"))
        scripted = self.response.get("events")
        code = int(self.response.get("code", 0))
        steps = list(scripted) if scripted is not None else list(self.steps(stack))
        pause = float(self.scenario.get("step_seconds", 0))
        done_urns: list[str] = []
        cancelled = False
        try:
            sink.send({"preludeEvent": {"config": {}}})
            for event in steps:
                if self.signals and "resourcePreEvent" in event:  # cancelled: no new step starts
                    cancelled = True
                    break
                sink.send(event)
                meta = (event.get("resourcePreEvent") or {}).get("metadata")
                in_flight = meta and pause and not event["resourcePreEvent"].get("planning")
                if in_flight and not self.wait_step(pause):  # terminated: the step in flight is abandoned
                    stack.setdefault("pending_operations", []).append({"resource": {"urn": meta["urn"]}})
                    cancelled = True
                    break
                if "resOutputsEvent" in event:
                    done_urns.append(event["resOutputsEvent"]["metadata"]["urn"])
            failed = code != 0 and not cancelled
            if failed:
                kind = "preview" if op == "preview" else "update"
                sink.send(
                    {
                        "diagnosticEvent": {
                            "message": f"{kind} failed\n",
                            "color": "never",
                            "severity": "error",
                        }
                    }
                )
            counts = self.response.get("changes") or count_steps(steps, done_urns, op, cancelled)
            sink.send(
                {"summaryEvent": {"maybeCorrupt": False, "durationSeconds": 1, "resourceChanges": counts}}
            )
            sink.send({"cancelEvent": {}})
        finally:
            sink.close()
        if op != "preview" and scripted is None:
            self.apply(stack, steps, done_urns)
        if op != "preview":
            stack["history"].insert(0, history_entry(op, counts, failed or cancelled))
        self.save(state)
        if cancelled:
            print(f"error: {'update' if op == 'up' else op} cancelled", file=sys.stderr)
            return EXIT_CANCELLED
        return self.scripted()

    def on_signal(self, signum: int, frame: object) -> None:
        """pkg/backend/cancellation_scope.go: the message of the first and of the second signal."""
        with (self.home / "signals.jsonl").open("a") as out:
            out.write(json.dumps({"pid": os.getpid(), "signal": signum}) + "\n")
        scenario = json.loads((self.home / "scenario.json").read_text())  # re-read: tests change it mid-run
        if scenario.get("hang"):  # a CLI that no longer answers signals (only a kill ends it)
            return
        self.signals.append(signum)
        if len(self.signals) == 1:
            print(
                "^C received; cancelling. If you would like to terminate immediately, press ^C again.\n"
                "Note that terminating immediately may lead to orphaned resources and other inconsistencies.",
                flush=True,
            )
        else:
            print("^C received; terminating", flush=True)

    def wait_step(self, seconds: float) -> bool:
        """Run one resource step; False when a second signal terminated it before it finished."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if len(self.signals) >= 2:
                return False
            time.sleep(0.02)
        return True

    def steps(self, stack: dict) -> Iterator[dict]:
        """The engine events of this operation over the scenario's program (default: three resources)."""
        op = self.command
        existing = {r["urn"]: r for r in stack["resources"]}
        if op in ("destroy", "refresh"):
            keep = protected_urns(stack["resources"]) if self.flags.get("exclude-protected") else set()
            targets = self.flags.get("target")
            for res in reversed(stack["resources"]) if op == "destroy" else stack["resources"]:
                if res["urn"] in keep or (targets and res["urn"] not in targets):
                    continue
                step = "delete" if op == "destroy" else "refresh"
                yield from step_events(res, step, planning=False)
            return
        for res in self.scenario.get("program", default_program(self.stack or "demo")):
            step = "same" if res["urn"] in existing else "create"
            yield from step_events(res, step, planning=op == "preview")

    def apply(self, stack: dict, steps: list[dict], done: list[str]) -> None:
        op = self.command
        if op == "up":
            program = {
                r["urn"]: r for r in self.scenario.get("program", default_program(self.stack or "demo"))
            }
            kept = [r for r in stack["resources"] if r["urn"] not in program]
            stack["resources"] = kept + [
                dict(program[u], id=f"/mock/{u.rsplit('::', 1)[-1]}") for u in done if u in program
            ]
        elif op == "destroy":
            stack["resources"] = [r for r in stack["resources"] if r["urn"] not in done]


class EventSink:
    """Where engine events go: the --event-log file, or the Automation API's gRPC Events service."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.sequence = 0
        self.file = None
        self.queue: list[str] | None = None
        self.call = None
        if not target:
            return
        if target.startswith("tcp://"):
            import queue
            import threading

            import grpc
            from pulumi.runtime.proto import events_pb2, events_pb2_grpc

            self.channel = grpc.insecure_channel(target[len("tcp://") :])
            stub = events_pb2_grpc.EventsStub(self.channel)
            self.pending: queue.Queue = queue.Queue()

            def requests():
                while (item := self.pending.get()) is not None:
                    yield events_pb2.EventRequest(event=item)

            self.thread = threading.Thread(target=lambda: stub.StreamEvents(requests()), daemon=True)
            self.thread.start()
        else:
            self.file = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def send(self, event: dict) -> None:
        if not self.target:
            return
        line = json.dumps({"sequence": self.sequence, "timestamp": 1_770_000_000 + self.sequence, **event})
        self.sequence += 1
        if self.file is not None:
            self.file.write(line + "\n")
            self.file.flush()
        else:
            self.pending.put(line)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        elif self.target and self.target.startswith("tcp://"):
            self.pending.put(None)
            self.thread.join(10)
            self.channel.close()


def default_program(stack: str) -> list[dict]:
    """A stack, its default provider, one component and three Azure resources."""
    base = f"urn:pulumi:{stack}::azcluster::"
    component = "azcluster:index:Cluster"
    return [
        {"urn": f"{base}{STACK_TYPE}::azcluster-{stack}", "type": STACK_TYPE, "custom": False},
        {"urn": f"{base}{PROVIDER_TYPE}::default_3_0_0", "type": PROVIDER_TYPE, "custom": True},
        {"urn": f"{base}{component}::{stack}", "type": component, "custom": False},
        *(
            {
                "urn": f"{base}{component}$azure-native:{kind}::{stack}-{name}",
                "type": f"azure-native:{kind}",
                "custom": True,
            }
            for kind, name in (
                ("resources:ResourceGroup", "rg"),
                ("network:VirtualNetwork", "vnet"),
                ("compute:VirtualMachineScaleSet", "gpu-0"),
            )
        ),
    ]


def step_events(res: dict, op: str, *, planning: bool) -> Iterator[dict]:
    """apitype.ResourcePreEvent / ResOutputsEvent (sdk/go/common/apitype/events.go) for one step."""
    state = {"type": res["type"], "urn": res["urn"], "custom": bool(res.get("custom", True))}
    metadata = {
        "op": op,
        "urn": res["urn"],
        "type": res["type"],
        "provider": "",
        "logical": True,
        ("old" if op in ("delete", "refresh") else "new"): state,
    }
    yield {"resourcePreEvent": {"metadata": metadata, "planning": planning}}
    if not planning:
        yield {"resOutputsEvent": {"metadata": metadata, "planning": False}}


def count_steps(steps: list[dict], done: list[str], op: str, cancelled: bool) -> dict[str, int]:
    """The summary's resourceChanges: every logical step but default providers' (pkg/engine/update.go)."""
    counts: dict[str, int] = {}
    key = "resourcePreEvent" if op == "preview" else "resOutputsEvent"
    for event in steps:
        meta = (event.get(key) or {}).get("metadata")
        if not meta or meta["type"].startswith("pulumi:providers:") and "default" in meta["urn"]:
            continue
        if op != "preview" and meta["urn"] not in done:
            continue
        step = "same" if op == "refresh" else meta["op"]
        counts[step] = counts.get(step, 0) + 1
    return counts


def protected_urns(resources: list[dict]) -> set[str]:
    """destroy.go `getProtectedExcludes`: protected resources and everything they transitively depend on
    (dependencies, parent, provider: pkg/resource/graph/dependency_graph.go)."""
    by_urn = {r["urn"]: r for r in resources}
    keep: set[str] = set()
    todo = [r["urn"] for r in resources if r.get("protect")]
    while todo:
        urn = todo.pop()
        if urn in keep or urn not in by_urn:
            continue
        keep.add(urn)
        res = by_urn[urn]
        todo.extend(res.get("dependencies") or [])
        if res.get("parent"):
            todo.append(res["parent"])
        if res.get("provider"):  # a provider reference is "<provider urn>::<provider id>"
            todo.append(res["provider"].rsplit("::", 1)[0])
    return keep


def history_entry(op: str, counts: dict[str, int], failed: bool) -> dict:
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    kind = {"up": "update"}.get(op, op)
    return {**HISTORY, "kind": kind, "startTime": now, "endTime": now,
            "result": "failed" if failed else "succeeded", "resourceChanges": counts}  # fmt: skip


def _parse(argv: list[str]) -> tuple[list[str], dict[str, object], str | None]:
    """Positional words, flag values and the first flag the command does not register. The command is
    found first (flags read as any command would), then the flags are read as that command reads them."""
    merged: dict[str, bool] = dict(_GLOBAL)
    for table in FLAGS.values():
        for name, takes in table.items():
            merged[name] = merged.get(name, False) or takes
    words, _, _ = _read(argv, merged)
    command = " ".join(words[:2]) if words[:1] == ["stack"] else (words[0] if words else "")
    return _read(argv, {**_GLOBAL, **FLAGS.get(command, {})})


def _read(argv: list[str], table: dict[str, bool]) -> tuple[list[str], dict[str, object], str | None]:
    words: list[str] = []
    flags: dict[str, object] = {}
    bad = None
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        name, equals, value = arg.lstrip("-").partition("=")
        if name not in table:
            bad = bad or ("--" if len(name) > 1 else "-") + name
            continue
        if table[name] and not equals and index < len(argv):
            value = argv[index]
            index += 1
        if name in ("target", "t"):
            flags.setdefault("target", []).append(value)  # type: ignore[union-attr]
        else:
            flags[name] = value if table[name] or equals else True
    return words, flags, bad


if __name__ == "__main__":
    # Go programs die of SIGPIPE when they write to a pipe nobody reads; Python's default is to ignore it.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(Fake(sys.argv[1:]).main())

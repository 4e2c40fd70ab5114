"""The Pulumi engine behind `up`, `preview`, `down`, `refresh`, `outputs`, `cancel` and `list`.

Two layers. `Engine` is the narrow interface the lifecycle commands use: stack operations that report
progress as plain `Event`s and fail with `AzclusterError`s that already say what to do. `AutomationEngine`
implements it with the Pulumi Automation API (`pulumi.automation`), which drives the `pulumi` CLI over the
Pulumi project in `stacks/` (its Pulumi.yaml and __main__.py); tests swap in a recording fake through
`azcluster.lifecycle.engine_factory`.

Choices, and why:
- State lives in a local file backend under `~/.azcluster/state` unless `--backend` or
  `PULUMI_BACKEND_URL` says otherwise (`azblob://...` for teams), so nobody needs a Pulumi Cloud account.
- Secrets: a passphrase from PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE, or a KMS provider
  (`--secrets-provider azurekeyvault://...`, or the stack file's own `secretsprovider:`). An empty or
  missing passphrase is refused (exit 3) instead of silently encrypting with "". The passphrase itself
  is never copied into the workspace's env_vars (they show up in reprs); the CLI inherits it.
- The stack's config is the stack file itself: Pulumi reads `Pulumi.<stack>.yaml` next to Pulumi.yaml.
  A stack file elsewhere gets a small workspace under `~/.azcluster/workspaces/` holding a Pulumi.yaml
  whose `main:` points at the real program and a symlink to the stack file, so Pulumi still reads (and
  writes its encryption salt into) the user's file.
- The CLI is checked before anything else (credentials, preflight): a missing or old `pulumi` is one
  message with how to install it, exit 3.

pulumi.automation is imported inside functions only: `azcluster --help` must stay fast.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import EXIT_MISSING_TOOL, EXIT_REFUSED, EXIT_USAGE, AzclusterError
from .interrupts import Interrupted
from .remedies import Remedy, azure_message, primary_code, remedy_for

if TYPE_CHECKING:
    from pulumi.automation import LocalWorkspaceOptions, PulumiCommand, Stack

MIN_PULUMI_VERSION = "3.200.0"
"""The oldest CLI we drive: the oldest Pulumi SDK pyproject.toml allows (the engine and the SDK speak one
protocol), and new enough for everything used here (`destroy --exclude-protected`, `up --refresh`,
`stack export/import`, `cancel` on file backends)."""
INSTALL_URL = "https://www.pulumi.com/docs/install/"
INSTALL_COMMAND = "curl -fsSL https://get.pulumi.com | sh"
PASSPHRASE = "passphrase"
SECRETS_SCHEMES = ("azurekeyvault://", "awskms://", "gcpkms://", "hashivault://")
SECRET_MASK = "[secret]"
FALLBACK_ENV = "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER"
AML_FILESYSTEM = "azure-native:storagecache:AmlFilesystem"
STACK_TYPE = "pulumi:pulumi:Stack"
_COLOR_TAG = re.compile(r"<\{%[^%]*%\}>")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


# --- what the engine reports --------------------------------------------------------------------------


@dataclass(frozen=True)
class StackRef:
    """A stack: its Pulumi name and the stack file that holds its config."""

    name: str
    path: Path


@dataclass(frozen=True)
class Event:
    """One step of progress: a resource operation starting, finishing or failing, a diagnostic, or the
    final summary. `op` is Pulumi's step op (create, update, delete, replace, same, refresh, ...)."""

    kind: str
    """"start", "done", "failed", "diagnostic" or "summary"."""
    urn: str = ""
    type: str = ""
    op: str = ""
    message: str = ""
    severity: str = ""
    changes: Mapping[str, int] = field(default_factory=dict)
    custom: bool | None = None
    """False for component resources (and the stack): groupings with nothing in Azure."""
    logical: bool | None = None
    """False for the halves of a replacement (create-replacement, delete-replaced), which Pulumi's
    summary does not count on their own."""

    @property
    def name(self) -> str:
        return urn_name(self.urn)

    @property
    def is_resource(self) -> bool:
        """A resource Azure holds: not the stack, a provider or a component (pseudo-resources that
        Pulumi's own summary counts, pkg/engine/update.go `OnResourceStepPost`)."""
        return bool(self.urn) and not self.type.startswith("pulumi:") and self.custom is not False


OnEvent = Callable[[Event], None]


@dataclass(frozen=True)
class PlannedStep:
    urn: str
    type: str
    op: str

    @property
    def name(self) -> str:
        return urn_name(self.urn)

    def to_json(self) -> dict[str, str]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "op": self.op}


@dataclass(frozen=True)
class Preview:
    changes: dict[str, int]
    """Pulumi's change summary: op -> count (create, update, delete, replace, same, ...)."""
    steps: list[PlannedStep] = field(default_factory=list)
    """Every step that changes something (not `same`)."""


@dataclass(frozen=True)
class OutputValue:
    value: Any
    secret: bool = False


@dataclass(frozen=True)
class Update:
    """What an up, destroy or refresh did."""

    changes: dict[str, int]
    outputs: dict[str, OutputValue] = field(default_factory=dict)
    seconds: float | None = None


@dataclass(frozen=True)
class StackSummary:
    name: str
    last_update: datetime | None = None
    update_in_progress: bool | None = None
    resource_count: int | None = None
    url: str | None = None


@dataclass(frozen=True)
class UpdateInfo:
    """One entry of the stack's history."""

    kind: str
    result: str
    start_time: datetime | None
    end_time: datetime | None
    changes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StateResource:
    """A resource as the stack's state holds it (`pulumi stack export`)."""

    urn: str
    type: str
    id: str = ""
    parent: str = ""
    custom: bool = True
    protect: bool = False
    retain_on_delete: bool = False
    dependencies: tuple[str, ...] = ()
    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return urn_name(self.urn)

    @property
    def is_provider(self) -> bool:
        return self.type.startswith("pulumi:providers:")

    @classmethod
    def from_state(cls, item: Mapping[str, Any]) -> StateResource:
        deps = list(item.get("dependencies") or [])
        for urns in (item.get("propertyDependencies") or {}).values():
            deps.extend(urns or [])
        return cls(
            urn=item.get("urn", ""),
            type=item.get("type", ""),
            id=item.get("id", "") or "",
            parent=item.get("parent", "") or "",
            custom=bool(item.get("custom", False)),
            protect=bool(item.get("protect", False)),
            retain_on_delete=bool(item.get("retainOnDelete", False)),
            dependencies=tuple(dict.fromkeys(deps)),
            inputs=item.get("inputs") or {},
            outputs=item.get("outputs") or {},
        )


@dataclass(frozen=True)
class ResourceFailure:
    """A resource the engine could not create, update or delete, with Azure's code and what to do."""

    urn: str
    type: str
    message: str
    """Azure's (or Pulumi's) own sentence about what went wrong."""
    code: str | None = None
    remedy: Remedy | None = None
    detail: str = ""
    """The full error text, shortened."""

    @property
    def name(self) -> str:
        return urn_name(self.urn)

    def to_json(self, stack: str = "STACK") -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "code": self.code,
            "message": self.message,
            "detail": self.detail,
            "remedy": self.remedy.for_stack(stack) if self.remedy else None,
            "retryable": self.remedy.retryable if self.remedy else None,
        }


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if "::" in urn else urn


def urn_type(urn: str) -> str:
    parts = urn.split("::")
    return parts[-2].rsplit("$", 1)[-1] if len(parts) >= 4 else ""


# --- failures, each already saying what to do -----------------------------------------------------------


class EngineError(AzclusterError):
    """A failure from the engine, phrased for people (message + hint), with the exit code
    docs/architecture.md defines."""


class PulumiCliMissing(EngineError):
    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "the Pulumi CLI is not installed: azcluster drives Pulumi's engine through the `pulumi` command"
            + (f" ({detail})" if detail else ""),
            f"install it with `{INSTALL_COMMAND}` (then open a new shell or add ~/.pulumi/bin to PATH), "
            f"or see {INSTALL_URL} for Homebrew, winget and Docker; in GitHub Actions use "
            "`pulumi/actions` or the same install script. azcluster needs pulumi >= "
            f"{MIN_PULUMI_VERSION}; `azcluster plan` works without it",
            EXIT_MISSING_TOOL,
        )


class PulumiCliTooOld(EngineError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the Pulumi CLI cannot be used: {detail}",
            f"install pulumi >= {MIN_PULUMI_VERSION} (and < 4): `{INSTALL_COMMAND}` or see {INSTALL_URL}",
            EXIT_MISSING_TOOL,
        )


class StackLocked(EngineError):
    def __init__(self, stack: str, holder: str) -> None:
        self.holder = holder
        super().__init__(
            f"stack {stack} is locked: another update is in progress ({holder})",
            f"wait for it to finish; if that process is gone (killed, CI cancelled), release the lock with "
            f"`azcluster cancel {stack}`, then `azcluster refresh {stack}` before the next `up`",
            EXIT_REFUSED,
        )


EXIT_INTERRUPTED = 130
"""128 + SIGINT, what the CLI exits with on a Ctrl-C anywhere else too."""


class OperationInterrupted(EngineError):  # noqa: N801 - the error; interrupts.Interrupted is the CLI's ending
    """An operation stopped by Ctrl-C, saying what state it left and what to run next."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message, hint, EXIT_INTERRUPTED)


class StackNotFound(EngineError):
    def __init__(self, stack: str, backend: str) -> None:
        super().__init__(
            f"stack {stack} has never been deployed: {backend} holds no state for it",
            f"deploy it with `azcluster up {stack}`; if it was deployed with another backend, pass "
            "`--backend` (or PULUMI_BACKEND_URL)",
            EXIT_REFUSED,
        )


class UpdateFailed(EngineError):
    """`pulumi up/destroy/refresh/preview` failed; `failures` lists the resources and what to do."""

    def __init__(self, stack: str, operation: str, failures: list[ResourceFailure], detail: str = "") -> None:
        self.stack = stack
        self.operation = operation
        self.failures = failures
        self.detail = detail
        count = len(failures)
        if count:
            what = f"{count} resource{'s' if count != 1 else ''} failed"
        else:
            what = detail or "see the messages above"
        resume = {
            "up": f"fix the cause and re-run `azcluster up {stack}`: it resumes from what already exists",
            "destroy": f"fix the cause and re-run `azcluster down {stack}`: it continues where it stopped",
            "refresh": f"re-run `azcluster refresh {stack}` once the cause is fixed",
            "preview": f"fix the cause and re-run `azcluster preview {stack}`",
        }.get(operation, "")
        super().__init__(f"{operation} of stack {stack} failed: {what}", resume, EXIT_REFUSED)

    def error_fields(self) -> dict[str, Any]:
        return self.to_json()

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "failures": [failure.to_json(self.stack) for failure in self.failures],
            "detail": self.detail,
        }


# --- the interface the lifecycle commands use -----------------------------------------------------------


class Engine(Protocol):
    """Stack operations. Every method raises EngineError (an AzclusterError) for expected failures."""

    def check_secrets(self, stack: StackRef) -> str:
        """Refuse (exit 3) when the stack's secrets cannot be opened; return where they come from."""
        ...

    def preview(self, stack: StackRef, on_event: OnEvent | None = None) -> Preview: ...

    def up(self, stack: StackRef, on_event: OnEvent | None = None, *, refresh: bool = False) -> Update: ...

    def destroy(
        self, stack: StackRef, on_event: OnEvent | None = None, *, exclude_protected: bool = True
    ) -> Update: ...

    def refresh(
        self, stack: StackRef, on_event: OnEvent | None = None, *, targets: Sequence[str] | None = None
    ) -> Update: ...

    def outputs(self, stack: StackRef) -> dict[str, OutputValue]: ...

    def cancel(self, stack: StackRef) -> None: ...

    def list_stacks(self) -> list[StackSummary]: ...

    def state(self, stack: StackRef) -> list[StateResource]:
        """The stack's resources (empty when it was never deployed)."""
        ...

    def release(self, stack: StackRef, urns: Sequence[str]) -> None:
        """Clear `protect` and `retainOnDelete` on these resources in the state, so destroy deletes them."""
        ...

    def history(self, stack: StackRef, limit: int = 20) -> list[UpdateInfo]: ...


@dataclass(frozen=True)
class EngineOptions:
    """What the command line says about the engine; None means: environment, then the default."""

    backend: str | None = None
    secrets_provider: str | None = None


# --- the pulumi CLI -----------------------------------------------------------------------------------


def locate_pulumi(env: Mapping[str, str] | None = None) -> str | None:
    """The CLI's install root for PulumiCommand: None for `pulumi` on PATH, `~/.pulumi` when only the
    install script's default location has it (CI shells often lack the PATH line it adds). Raises
    PulumiCliMissing when neither has it."""
    env = os.environ if env is None else env
    if shutil.which("pulumi", path=env.get("PATH", "")):
        return None
    home = Path(env.get("HOME") or Path.home())
    installed = home / ".pulumi" / "bin" / "pulumi"
    if installed.is_file() and os.access(installed, os.X_OK):
        return str(installed.parent.parent)
    raise PulumiCliMissing("no `pulumi` on PATH or in ~/.pulumi/bin")


def check_pulumi_cli() -> PulumiCommand:
    """The PulumiCommand to run, after checking the CLI exists and is new enough (exit 3 otherwise)."""
    root = locate_pulumi()
    from pulumi.automation import InvalidVersionError
    from semver import VersionInfo

    from .interrupts import forwarding_command

    try:
        return forwarding_command(root, VersionInfo.parse(MIN_PULUMI_VERSION))
    except FileNotFoundError as err:  # vanished between the lookup and the run
        raise PulumiCliMissing(str(err)) from None
    except PermissionError as err:
        raise PulumiCliMissing(f"cannot run it: {err}") from None
    except InvalidVersionError as err:
        raise PulumiCliTooOld(str(err).rstrip(".")) from None
    except subprocess.CalledProcessError as err:
        raise PulumiCliTooOld(f"`pulumi version` failed with exit code {err.returncode}") from None


# --- where state and secrets live --------------------------------------------------------------------


def state_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    return home / ".azcluster"


def resolve_backend(flag: str | None, env: Mapping[str, str] | None = None) -> str:
    """--backend, else PULUMI_BACKEND_URL, else a local file backend under ~/.azcluster/state.

    Local `file://` directories are created, so the first `up` on a laptop just works."""
    env = os.environ if env is None else env
    url = flag or env.get("PULUMI_BACKEND_URL") or ""
    if not url:
        directory = state_home(env) / "state"
        directory.mkdir(parents=True, exist_ok=True)
        return directory.as_uri()
    if url.startswith("file://"):
        raw = url[len("file://") :].split("?", 1)[0]
        if raw.startswith("~"):
            raw = str(Path(env.get("HOME") or Path.home()) / raw[1:].lstrip("/"))
        if raw:
            try:
                Path(raw).mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise AzclusterError(
                    f"cannot create the state directory {raw}: {err}", "", EXIT_USAGE
                ) from None
    elif "://" not in url:
        raise AzclusterError(
            f"backend {url!r} is not a URL",
            "use file://<dir>, azblob://<container>?storage_account=<account>, or https://api.pulumi.com",
            EXIT_USAGE,
        )
    return url


ALLOW_LOCAL_STATE_ENV = "AZCLUSTER_ALLOW_LOCAL_STATE"


def running_in_ci(env: Mapping[str, str] | None = None) -> bool:
    """`CI` (set by GitHub Actions, GitLab, Azure Pipelines, CircleCI, ...) or `GITHUB_ACTIONS`."""
    env = os.environ if env is None else env
    return any(
        env.get(name, "").strip().lower() not in ("", "0", "false", "no") for name in ("CI", "GITHUB_ACTIONS")
    )


def refuse_local_state_in_ci(flag: str | None, env: Mapping[str, str] | None = None) -> None:
    """`up` in CI with a local file backend keeps the only record of a costly cluster on a runner that is
    thrown away after the job: refuse (exit 2) unless AZCLUSTER_ALLOW_LOCAL_STATE says it is meant."""
    env = os.environ if env is None else env
    url = flag or env.get("PULUMI_BACKEND_URL") or ""
    if url and not url.startswith("file://"):
        return
    if not running_in_ci(env) or env.get(ALLOW_LOCAL_STATE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return
    where = url or f"the default {state_home(env) / 'state'}"
    raise AzclusterError(
        f"refusing to deploy from CI with local state ({where}): the runner's disk is thrown away after the "
        "job, and with it the only record of the cluster, which keeps running and costing money",
        "keep the state in Azure Blob Storage: set PULUMI_BACKEND_URL=azblob://<container>?storage_account="
        '<account> (or pass --backend); see the README, "Deploying from CI". On a self-hosted runner whose '
        f"disk persists, set {ALLOW_LOCAL_STATE_ENV}=1 to allow it",
        EXIT_USAGE,
    )


@dataclass(frozen=True)
class Secrets:
    provider: str
    """What `pulumi stack init --secrets-provider` gets: "passphrase", "default" or a KMS URL."""
    source: str
    """Where the key comes from, for people (never the passphrase itself)."""


def resolve_secrets(
    flag: str | None,
    stack_provider: str | None,
    backend_url: str,
    env: Mapping[str, str] | None = None,
) -> Secrets:
    """The stack's secrets provider, refusing an empty or missing passphrase (exit 3).

    `stack_provider` is what the stack file already records (`secretsprovider:`, or "passphrase" when it
    holds an `encryptionsalt:`); a different `--secrets-provider` is refused rather than ignored."""
    env = os.environ if env is None else env
    if flag and stack_provider and flag != stack_provider:
        raise AzclusterError(
            f"the stack's secrets are already kept with {stack_provider}, not {flag}",
            "leave out --secrets-provider, or move the stack with "
            f"`pulumi stack change-secrets-provider {flag}` (run in stacks/)",
            EXIT_USAGE,
        )
    provider = flag or stack_provider
    if provider is None:
        provider = "default" if backend_url.startswith(("https://", "http://")) else PASSPHRASE
    if provider == "default":
        return Secrets(provider, "Pulumi Cloud")
    if provider != PASSPHRASE:
        if not provider.startswith(SECRETS_SCHEMES):
            raise AzclusterError(
                f"unknown secrets provider {provider!r}",
                "use `passphrase` or a key URL such as azurekeyvault://<vault>.vault.azure.net/keys/<key>",
                EXIT_USAGE,
            )
        return Secrets(provider, provider)
    return Secrets(PASSPHRASE, _passphrase_source(env))


PASSPHRASE_HINT = (
    "Pulumi encrypts the stack's secrets with a passphrase. Keep one in a file only you can read: "
    "`umask 077; openssl rand -base64 32 > ~/.azcluster/passphrase` and "
    "`export PULUMI_CONFIG_PASSPHRASE_FILE=~/.azcluster/passphrase` (or set PULUMI_CONFIG_PASSPHRASE; in "
    "CI, from a secret). Or keep secrets in Key Vault: "
    "`--secrets-provider azurekeyvault://<vault>.vault.azure.net/keys/<key>`. "
    "Losing the passphrase loses access to the stack's secrets"
)


def _passphrase_source(env: Mapping[str, str]) -> str:
    phrase = env.get("PULUMI_CONFIG_PASSPHRASE")
    phrase_file = env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if phrase is not None:
        if not phrase.strip():
            raise AzclusterError(
                "PULUMI_CONFIG_PASSPHRASE is set but empty: the stack's secrets would be encrypted with an "
                "empty passphrase",
                "unset it or give it a real passphrase. " + PASSPHRASE_HINT,
                EXIT_MISSING_TOOL,
            )
        return "PULUMI_CONFIG_PASSPHRASE"
    if phrase_file:
        path = Path(phrase_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise AzclusterError(
                f"PULUMI_CONFIG_PASSPHRASE_FILE={phrase_file} cannot be read: {err.strerror or err}",
                PASSPHRASE_HINT,
                EXIT_MISSING_TOOL,
            ) from None
        if not text.strip():
            raise AzclusterError(f"the passphrase file {path} is empty", PASSPHRASE_HINT, EXIT_MISSING_TOOL)
        return f"PULUMI_CONFIG_PASSPHRASE_FILE ({path})"
    raise AzclusterError("no passphrase for the stack's secrets", PASSPHRASE_HINT, EXIT_MISSING_TOOL)


def stack_file_secrets_provider(path: Path) -> str | None:
    """What the stack file records about its secrets: `secretsprovider:`, or passphrase for a salt."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        document = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8")) or {}
    except (OSError, YAMLError):
        return None
    if not isinstance(document, dict):
        return None
    if provider := document.get("secretsprovider"):
        return str(provider)
    return PASSPHRASE if document.get("encryptionsalt") else None


# --- the Pulumi project and per-stack workspaces ------------------------------------------------------


def default_program_dir() -> Path:
    """The repository's Pulumi project: stacks/ beside the azcluster package."""
    return Path(__file__).resolve().parent.parent / "stacks"


def project_dir() -> Path:
    """The Pulumi project whose stacks `list` shows: the stacks directory when it is one, else stacks/."""
    from .stackfile import stacks_dir

    for candidate in (stacks_dir(), default_program_dir()):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return program_dir_for(default_program_dir() / "Pulumi.yaml")  # raises with the explanation


def program_dir_for(stack_path: Path) -> Path:
    """The Pulumi project that deploys a stack file: the file's own directory when it holds a Pulumi.yaml
    (a user's own program), else azcluster's stacks/."""
    here = stack_path.resolve().parent
    for candidate in (here, default_program_dir()):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    raise AzclusterError(
        f"no Pulumi project found for {stack_path}: neither its directory nor {default_program_dir()} has "
        "a Pulumi.yaml",
        "run azcluster from a checkout of the repository (the program lives in stacks/)",
        EXIT_USAGE,
    )


def stack_workspace(stack: StackRef, root: Path) -> tuple[Path, str | None]:
    """The directory Pulumi runs in for this stack, and a note when it is not the project itself.

    A stack file in the project directory named Pulumi.<stack>.yaml needs nothing. Any other file gets
    `root/<stack>-<hash of its path>/` with a Pulumi.yaml pointing `main:` (and a relative virtualenv)
    at the project, and `Pulumi.<stack>.yaml` linking to the file (copied where links are impossible)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # never fold long paths

    path = stack.path.expanduser().resolve()
    program = program_dir_for(path)
    if path.parent == program and path.name in (f"Pulumi.{stack.name}.yaml", f"Pulumi.{stack.name}.yml"):
        return program, None
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    workdir = root / f"{stack.name}-{digest}"
    workdir.mkdir(parents=True, exist_ok=True)
    project = yaml.load((program / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    main = project.get("main")
    project["main"] = str((program / main).resolve()) if main else str(program)
    runtime = project.get("runtime")
    if isinstance(runtime, dict) and isinstance(runtime.get("options"), dict):
        venv = runtime["options"].get("virtualenv")
        if venv and not Path(venv).is_absolute():
            runtime["options"]["virtualenv"] = str((program / venv).resolve())
    buffer = io.StringIO()
    yaml.dump(project, buffer)
    text = buffer.getvalue()
    project_file = workdir / "Pulumi.yaml"
    if not project_file.is_file() or project_file.read_text(encoding="utf-8") != text:
        project_file.write_text(text, encoding="utf-8")
    link = workdir / f"Pulumi.{stack.name}.yaml"
    if link.is_symlink() and Path(os.readlink(link)) == path:
        return workdir, f"stack file {path} runs from {workdir} (linked)"
    if link.exists() or link.is_symlink():
        link.unlink()
    try:
        link.symlink_to(path)
        return workdir, f"stack file {path} runs from {workdir} (linked)"
    except OSError:
        shutil.copy2(path, link)
        return workdir, (
            f"stack file {path} was copied to {link} (this system cannot link files); "
            "what Pulumi writes (the encryption salt) lands in the copy: copy it back"
        )


# --- engine events -> Event, and failures -> ResourceFailure ------------------------------------------


def clean(message: str) -> str:
    """Pulumi's color directives and ANSI escapes removed."""
    return _ANSI.sub("", _COLOR_TAG.sub("", message or "")).strip()


def _step(kind: str, meta: Any) -> Event:
    state = meta.new if getattr(meta, "new", None) is not None else getattr(meta, "old", None)
    custom = getattr(state, "custom", None) if state is not None else None
    return Event(
        kind,
        urn=meta.urn,
        type=meta.type,
        op=str(getattr(meta.op, "value", meta.op)),
        custom=None if custom is None else bool(custom),
        logical=getattr(meta, "logical", None),
    )


def normalise(event: Any) -> Event | None:
    """An automation EngineEvent as an Event (None for the kinds nobody shows)."""
    if event.resource_pre_event is not None:
        return _step("start", event.resource_pre_event.metadata)
    if event.res_outputs_event is not None:
        return _step("done", event.res_outputs_event.metadata)
    if event.res_op_failed_event is not None:
        return _step("failed", event.res_op_failed_event.metadata)
    if event.diagnostic_event is not None:
        diag = event.diagnostic_event
        urn = diag.urn or ""
        return Event(
            "diagnostic", urn=urn, type=urn_type(urn), message=clean(diag.message), severity=diag.severity
        )
    if event.summary_event is not None:
        changes = {
            str(getattr(k, "value", k)): int(v) for k, v in event.summary_event.resource_changes.items()
        }
        return Event("summary", changes=changes)
    return None


class Recorder:
    """Collects what an operation reported: planned steps, errors per resource, the summary, and the
    changes counted over real resources only.

    Pulumi's summary event counts the stack and every component resource too (a first deployment of 3
    Azure resources reports "+5 to create"), so `changes` counts the steps of resources Azure holds:
    `start` events for a preview (each planned step), `done` events for an operation (each finished one).
    An operation that never ran the engine (an all-protected `destroy --exclude-protected` returns before
    it) therefore reports no changes, where the SDK's result would repeat the previous update's summary.
    """

    def __init__(self, forward: OnEvent | None = None, *, count: str = "done") -> None:
        self.forward = forward
        self.count = count
        self.steps: list[PlannedStep] = []
        self.errors: dict[str, list[str]] = {}
        self.general: list[str] = []
        """Error diagnostics without a resource (the engine's closing "update failed")."""
        self.failed: dict[str, str] = {}
        self.summary: dict[str, int] | None = None
        self.changes: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            if event.kind == "start" and event.op not in ("same", "read", "refresh") and event.is_resource:
                self.steps.append(PlannedStep(event.urn, event.type, event.op))
            if event.kind == self.count and event.is_resource and event.logical is not False:
                self.changes[event.op] = self.changes.get(event.op, 0) + 1
            if event.kind == "failed":
                self.failed[event.urn] = event.type
            elif event.kind == "diagnostic" and event.severity == "error":
                if event.urn:
                    self.errors.setdefault(event.urn, []).append(event.message)
                else:
                    self.general.append(event.message)
            elif event.kind == "summary":
                self.summary = dict(event.changes)
        if self.forward is not None:
            with suppress(Exception):  # a display bug must never abort a deployment
                self.forward(event)

    def on_engine_event(self, engine_event: Any) -> None:
        event = normalise(engine_event)
        if event is not None:
            self(event)

    def failures(self, fallback_text: str = "") -> list[ResourceFailure]:
        """Failed resources with their Azure code and remedy; parsed from the CLI's text when the event
        stream said nothing (the CLI died early, or an older CLI)."""
        found: dict[str, tuple[str, list[str]]] = {}
        for urn, messages in self.errors.items():
            found[urn] = (urn_type(urn), messages)
        for urn, typ in self.failed.items():
            found.setdefault(urn, (typ, []))
        if not found and fallback_text:
            found = {urn: (typ, msgs) for urn, typ, msgs in parse_diagnostics(fallback_text)}
        return build_failures(found)

    def general_detail(self) -> str:
        """The resource-less error lines, unless they only say "update failed"."""
        text = "\n".join(m for m in self.general if m)
        return "" if _only_summary(text) else _shorten(text)


def build_failures(found: Mapping[str, tuple[str, list[str]]]) -> list[ResourceFailure]:
    failures = []
    for urn, (typ, messages) in found.items():
        text = "\n".join(m for m in messages if m)
        if typ == STACK_TYPE and _only_summary(text):
            continue  # "update failed" on the stack itself repeats the resources' errors
        code = primary_code(text)
        failures.append(
            ResourceFailure(urn, typ, azure_message(text, code), code, remedy_for(code, text), _shorten(text))
        )
    return failures


def _only_summary(text: str) -> bool:
    lines = [line.strip().removeprefix("error:").strip() for line in text.splitlines() if line.strip()]
    return all(
        line in ("update failed", "preview failed", "destroy failed", "refresh failed") for line in lines
    )


def _shorten(text: str, limit: int = 800) -> str:
    text = "\n".join(line.rstrip() for line in text.strip().splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_DIAG_HEADER = re.compile(r"^  (?P<type>[\w.\-]+:[\w.\-/]*:[\w.\-]+) \((?P<name>[^)]*)\):\s*$")


def parse_diagnostics(text: str) -> list[tuple[str, str, list[str]]]:
    """The `Diagnostics:` section of Pulumi's output: (pseudo-URN, type, messages) per resource."""
    lines = clean(text).replace("\r", "").splitlines()
    try:
        # CommandError puts " stdout: " before the output's first line, so match the end of the line.
        start = next(i for i, line in enumerate(lines) if line.rstrip().endswith("Diagnostics:"))
    except StopIteration:
        return []
    found: list[tuple[str, str, list[str]]] = []
    current: tuple[str, str, list[str]] | None = None
    for line in lines[start + 1 :]:
        header = _DIAG_HEADER.match(line)
        if header:
            current = (f"{header['type']}::{header['name']}", header["type"], [])
            found.append(current)
        elif current is not None and line.startswith("    "):
            current[2].append(line.strip())
        elif line.strip() and not line.startswith(" "):
            break  # the next section (Outputs:, Resources:, Duration:)
    return [(urn, typ, ["\n".join(messages)]) for urn, typ, messages in found]


_LOCK_HOLDER = re.compile(r"created by (?P<who>\S+) \(pid (?P<pid>\d+)\) at (?P<when>\S+)")


def lock_holder(text: str) -> str:
    """Who holds the stack's lock, from Pulumi's concurrent-update error."""
    match = _LOCK_HOLDER.search(text)
    if match:
        return f"locked by {match['who']}, pid {match['pid']}, since {match['when']}"
    if "Another update is currently in progress" in text:
        return "Pulumi Cloud reports an update in progress; its activity page says by whom"
    return "the backend reports a lock"


def first_error_line(text: str) -> str:
    for line in clean(text).splitlines():
        stripped = line.strip()
        if stripped.startswith("error:"):
            return stripped.removeprefix("error:").strip()
    stripped = [line.strip() for line in clean(text).splitlines() if line.strip()]
    return stripped[-1] if stripped else "the pulumi command failed"


# --- the Automation API adapter ------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineSettings:
    backend_url: str
    secrets_flag: str | None = None
    home: Path = field(default_factory=lambda: state_home())
    """~/.azcluster: the default backend and the workspaces of stack files outside the project."""


class AutomationEngine:
    """Engine over the Pulumi Automation API and the `pulumi` CLI (LocalWorkspace, local program)."""

    def __init__(self, settings: EngineSettings, command: PulumiCommand | None = None) -> None:
        self.settings = settings
        self.command = command
        self.notes: list[str] = []
        """Things worth telling people once (e.g. a stack file running from a linked workspace)."""

    # -- wiring (what tests check without running pulumi) --

    def secrets(self, stack: StackRef) -> Secrets:
        return resolve_secrets(
            self.settings.secrets_flag, stack_file_secrets_provider(stack.path), self.settings.backend_url
        )

    def check_secrets(self, stack: StackRef) -> str:
        return self.secrets(stack).source

    def env_vars(self, stack: StackRef | None = None) -> dict[str, str]:
        """Environment for every pulumi command: the backend, no update nagging, the stack file's path
        (for the program to resolve relative paths), and the passphrase *file* when one is used."""
        env = {
            "PULUMI_BACKEND_URL": self.settings.backend_url,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # A stack file without `secretsprovider:` (a CI runner's fresh checkout after the first run
            # recorded it on a runner since thrown away) uses the secrets manager the state records,
            # instead of a new passphrase manager (pkg/cmd/pulumi/stack/secrets.go, GetSecretsManager).
            FALLBACK_ENV: os.environ.get(FALLBACK_ENV) or "true",
        }
        if phrase_file := os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
            # Absolute: the CLI resolves a relative path in its own working directory (the workspace),
            # not in the one azcluster checked it in (pkg/secrets/passphrase/manager.go, filepath.Abs).
            env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(Path(phrase_file).expanduser().resolve())
        if stack is not None:
            env["AZCLUSTER_STACK_FILE"] = str(stack.path.expanduser().resolve())
        return env

    def workspace_dir(self, stack: StackRef) -> Path:
        workdir, note = stack_workspace(stack, self.settings.home / "workspaces")
        if note and note not in self.notes:
            self.notes.append(note)
        return workdir

    def workspace_options(self, stack: StackRef, secrets: Secrets | None = None) -> LocalWorkspaceOptions:
        from pulumi.automation import LocalWorkspaceOptions

        return LocalWorkspaceOptions(
            work_dir=str(self.workspace_dir(stack)),
            env_vars=self.env_vars(stack),
            secrets_provider=(secrets or self.secrets(stack)).provider,
            pulumi_command=self.command,
        )

    def _stack(self, stack: StackRef, *, create: bool) -> Stack:
        from pulumi import automation as auto

        secrets = self.secrets(stack) if create else _NO_SECRETS
        opts = self.workspace_options(stack, secrets)
        select = auto.create_or_select_stack if create else auto.select_stack
        with self._errors(stack, "select"):
            return select(stack_name=stack.name, work_dir=opts.work_dir, opts=opts)

    # -- operations --

    def preview(self, stack: StackRef, on_event: OnEvent | None = None) -> Preview:
        self.secrets(stack)
        target = self._stack(stack, create=True)
        recorder = Recorder(on_event, count="start")
        with self._errors(stack, "preview", recorder):
            target.preview(on_event=recorder.on_engine_event, color="never", suppress_progress=True)
        return Preview(changes=recorder.changes, steps=recorder.steps)

    def up(self, stack: StackRef, on_event: OnEvent | None = None, *, refresh: bool = False) -> Update:
        self.secrets(stack)
        target = self._stack(stack, create=True)
        recorder = Recorder(on_event)
        started = time.monotonic()
        with self._errors(stack, "up", recorder):
            result = target.up(
                on_event=recorder.on_engine_event,
                color="never",
                suppress_progress=True,
                refresh=refresh or None,
            )
        outputs = {key: OutputValue(out.value, out.secret) for key, out in result.outputs.items()}
        return Update(recorder.changes, outputs, round(time.monotonic() - started, 1))

    def destroy(
        self, stack: StackRef, on_event: OnEvent | None = None, *, exclude_protected: bool = True
    ) -> Update:
        self.secrets(stack)
        target = self._stack(stack, create=False)
        recorder = Recorder(on_event)
        started = time.monotonic()
        with self._errors(stack, "destroy", recorder):
            # With nothing unprotected left, `pulumi destroy --exclude-protected` prints one line and
            # returns before the engine runs (no events, no history entry), and the SDK's result then
            # repeats the previous update's summary: only the recorder's count says what this run did.
            target.destroy(
                on_event=recorder.on_engine_event,
                color="never",
                suppress_progress=True,
                exclude_protected=exclude_protected or None,
            )
        return Update(recorder.changes, {}, round(time.monotonic() - started, 1))

    def refresh(
        self, stack: StackRef, on_event: OnEvent | None = None, *, targets: Sequence[str] | None = None
    ) -> Update:
        self.secrets(stack)
        target = self._stack(stack, create=False)
        recorder = Recorder(on_event)
        started = time.monotonic()
        with self._errors(stack, "refresh", recorder):
            result = target.refresh(
                on_event=recorder.on_engine_event,
                color="never",
                suppress_progress=True,
                target=list(targets) if targets else None,
            )
        changes = recorder.summary or _op_map(result.summary.resource_changes or {})
        return Update(changes, {}, round(time.monotonic() - started, 1))

    def outputs(self, stack: StackRef) -> dict[str, OutputValue]:
        self.secrets(stack)
        target = self._stack(stack, create=False)
        with self._errors(stack, "outputs"):
            found = target.outputs()
        return {key: OutputValue(out.value, out.secret) for key, out in found.items()}

    def cancel(self, stack: StackRef) -> None:
        target = self._stack(stack, create=False)
        with self._errors(stack, "cancel"):
            target.cancel()

    def list_stacks(self) -> list[StackSummary]:
        from pulumi.automation import LocalWorkspace

        program = project_dir()
        workspace = LocalWorkspace(
            work_dir=str(program), env_vars=self.env_vars(), pulumi_command=self.command
        )
        with self._errors(None, "list"):
            summaries = workspace.list_stacks()
        return [
            StackSummary(s.name, _utc(s.last_update), s.update_in_progress, s.resource_count, s.url)
            for s in summaries
        ]

    def state(self, stack: StackRef) -> list[StateResource]:
        self.secrets(stack)
        try:
            target = self._stack(stack, create=False)
        except StackNotFound:
            return []
        with self._errors(stack, "export"):
            deployment = target.export_stack()
        resources = (deployment.deployment or {}).get("resources") or []
        return [StateResource.from_state(item) for item in resources]

    def release(self, stack: StackRef, urns: Sequence[str]) -> None:
        from pulumi.automation import Deployment

        wanted = set(urns)
        if not wanted:
            return
        self.secrets(stack)
        target = self._stack(stack, create=False)
        with self._errors(stack, "export"):
            exported = target.export_stack()
        deployment = dict(exported.deployment or {})
        deployment["resources"] = [
            _released(item) if item.get("urn") in wanted else item
            for item in deployment.get("resources") or []
        ]
        with self._errors(stack, "import"):
            target.import_stack(Deployment(version=exported.version, deployment=deployment))

    def history(self, stack: StackRef, limit: int = 20) -> list[UpdateInfo]:
        try:
            target = self._stack(stack, create=False)
        except StackNotFound:
            return []
        with self._errors(stack, "history"):
            entries = target.history(page_size=limit, show_secrets=False)
        return [
            UpdateInfo(
                kind=str(entry.kind),
                result=str(entry.result),
                start_time=_utc(entry.start_time),
                end_time=_utc(entry.end_time),
                changes=_op_map(entry.resource_changes or {}),
            )
            for entry in entries
        ]

    def _lost_provider(self, stack: StackRef) -> str | None:
        """The KMS provider the stack is kept with when its file forgot it (--secrets-provider says)."""
        if stack_file_secrets_provider(stack.path) is not None:
            return None
        flag = self.settings.secrets_flag
        return flag if flag and flag.startswith(SECRETS_SCHEMES) else None

    # -- after a Ctrl-C --

    def lock_files(self, stack: StackRef) -> list[Path] | None:
        """The stack's lock files in a file backend (None: another backend, where azcluster cannot look).

        Layout from pulumi/pulumi pkg/backend/diy/lock.go: `.pulumi/locks/<stack's fully qualified name>/
        <lock id>.json`, the name being `organization/<project>/<stack>` (or just `<stack>` in the legacy
        layout without projects)."""
        url = self.settings.backend_url
        if not url.startswith("file://"):
            return None
        from urllib.parse import unquote, urlparse

        raw = (
            unquote(urlparse(url).path) if url.startswith("file:///") else url[len("file://") :].split("?")[0]
        )
        root = Path(raw).expanduser() / ".pulumi" / "locks"
        from ruamel.yaml import YAML

        try:
            settings = YAML(typ="safe", pure=True).load(
                (self.workspace_dir(stack) / "Pulumi.yaml").read_text()
            )
            project = str((settings or {}).get("name") or "")
        except (OSError, AttributeError, AzclusterError):
            project = ""
        folders = [root / "organization" / project / stack.name] if project else []
        folders.append(root / stack.name)
        return sorted(lock for folder in folders for lock in folder.glob("*.json"))

    def _interrupted(self, stack: StackRef | None, operation: str, err: Interrupted) -> AzclusterError:
        name = stack.name if stack else ""
        if operation not in ("up", "destroy", "refresh", "import"):  # preview, select, export, ...
            return OperationInterrupted(
                f"{operation} of stack {name} was interrupted; it changes nothing in Azure or in the state",
                "run the command again when you are ready",
            )
        again = {"up": "up", "destroy": "down", "refresh": "refresh"}.get(operation, operation)
        rerun = f"then re-run `azcluster {again} {name}`" if operation != "refresh" else "then carry on"
        how = (
            "Pulumi was killed"
            if err.killed
            else "Pulumi stopped at once; what it was creating, changing or deleting at that moment may "
            "exist in Azure without being in the state"
            if err.presses >= 2
            else "Pulumi let the operations already running finish and recorded them"
        )
        locks = self.lock_files(stack) if stack else None
        if locks:
            return OperationInterrupted(
                f"{operation} of stack {name} was interrupted ({how}) and the stack is still locked "
                f"({locks[0]})",
                f"nothing runs on it any more, so release the lock with `azcluster cancel {name}`, then "
                f"`azcluster refresh {name}` so the state matches Azure; {rerun}",
            )
        if locks is not None:
            return OperationInterrupted(
                f"{operation} of stack {name} was interrupted ({how}); the stack's lock is released",
                f"run `azcluster refresh {name}` so the state matches Azure; {rerun}",
            )
        return OperationInterrupted(
            f"{operation} of stack {name} was interrupted ({how})",
            f"run `azcluster refresh {name}` so the state matches Azure (only if it says the stack is "
            f"locked, and no other azcluster runs on it, first `azcluster cancel {name}`); {rerun}",
        )

    # -- the one place automation errors become azcluster errors --

    @contextmanager
    def _errors(
        self, stack: StackRef | None, operation: str, recorder: Recorder | None = None
    ) -> Iterator[None]:
        from pulumi import automation as auto

        name = stack.name if stack else ""
        try:
            yield
        except Interrupted as err:
            raise self._interrupted(stack, operation, err) from None
        except auto.ConcurrentUpdateError as err:
            raise StackLocked(name, lock_holder(str(err))) from None
        except auto.StackNotFoundError:
            raise StackNotFound(name, self.settings.backend_url) from None
        except auto.CommandError as err:
            text = str(err)
            if (
                "passphrase must be set" in text
                and stack is not None
                and (lost := self._lost_provider(stack))
            ):
                raise AzclusterError(
                    f"stack {name}'s secrets are kept with {lost}, but {stack.path} does not say so "
                    f"(no `secretsprovider:`), so Pulumi fell back to a passphrase and found none",
                    "restore the `secretsprovider:` and `encryptedkey:` lines Pulumi wrote into the stack "
                    f"file on the first deployment (commit them), or set {FALLBACK_ENV}=true so Pulumi uses "
                    "the secrets manager the state records",
                    EXIT_MISSING_TOOL,
                ) from None
            if "incorrect passphrase" in text or "passphrase must be set" in text:
                raise AzclusterError(
                    f"the passphrase does not open stack {name}'s secrets ({first_error_line(text)})",
                    "use the passphrase the stack was created with. " + PASSPHRASE_HINT,
                    EXIT_MISSING_TOOL,
                ) from None
            if recorder is not None:
                detail = recorder.general_detail() or first_error_line(text)
                raise UpdateFailed(name, operation, recorder.failures(text), detail) from None
            raise EngineError(
                f"pulumi {operation} failed for stack {name}: {first_error_line(text)}"
            ) from None
        except auto.InvalidVersionError as err:
            raise PulumiCliTooOld(str(err)) from None
        except RuntimeError as err:  # the SDK's own "summary event never found": the CLI said nothing
            raise EngineError(f"pulumi {operation} for stack {name} ended without a result: {err}") from None
        except FileNotFoundError as err:
            if "pulumi" in str(err):
                raise PulumiCliMissing(str(err)) from None
            raise


_NO_SECRETS = Secrets(PASSPHRASE, "")


def _released(item: Mapping[str, Any]) -> dict[str, Any]:
    item = dict(item)
    item["protect"] = False
    item.pop("retainOnDelete", None)
    return item


def _op_map(changes: Mapping[Any, Any]) -> dict[str, int]:
    return {str(getattr(op, "value", op)): int(count) for op, count in changes.items()}


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def open_engine(options: EngineOptions) -> Engine:
    """The real engine: checks the CLI first (exit 3 when missing or old), then where state lives."""
    command = check_pulumi_cli()
    settings = EngineSettings(
        backend_url=resolve_backend(options.backend), secrets_flag=options.secrets_provider
    )
    return AutomationEngine(settings, command)

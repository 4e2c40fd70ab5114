"""Run a shell script on one VM through Azure's action Run Command (RunShellScript).

Two things must act on a node without SSH, a public IP or a route from the laptop: `status` reads a GPU
node's health result, and `hosts --install` (also `start` and `up`) writes the login node's hostfiles.
Both come here, so sending the POST, retrying throttling, polling the operation and reading its answer
are written once.

What Azure documents or does (learn.microsoft.com/azure/virtual-machines/linux/run-command, and the
Linux extension's source, Azure/run-command-extension-linux main/cmds.go and main/exec.go):
- `POST .../virtualMachines/{vm}/runCommand` (a plain VM) or `.../virtualMachineScaleSets/{set}/
  virtualMachines/{instanceId}/runCommand` (a scale-set VM), body `{"commandId": "RunShellScript",
  "script": [lines]}`; 202 with `Location`, polled; the final GET of Location is the RunCommandResult
  (azure-rest-api-specs runCommandExamples/VirtualMachineRunCommand.json and
  VirtualMachineScaleSetVMRunCommand.json).
- Output is the last 4,096 bytes of each stream; a script takes about 20 s at least; a VM runs one script
  at a time; scripts run as root, by /bin/bash.
- On Linux the result is one status whose message packs `[stdout]` and `[stderr]`, and it says succeeded
  whatever the script's exit status. A caller that must know its script ran to the end has it print a
  marker last and looks for it.
- The Linux extension refuses a script whose base64 is longer than 256 KiB (`maxScriptSize`); the
  documented restrictions name no size, so callers keep each script well under it (SCRIPT_BUDGET).
- It needs Microsoft.Compute/virtualMachines/runCommand/action (Virtual Machine Contributor): a Reader
  gets 403 AuthorizationFailed on the POST itself, before anything runs.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

OUTPUT_LIMIT = 4096
SCRIPT_LIMIT = 256 * 1024  # the Linux extension's maxScriptSize, measured on the script's base64
SCRIPT_BUDGET = SCRIPT_LIMIT // 2  # what callers aim for: headroom for whatever Azure wraps around it
TIMEOUT_S = 300.0
PERMISSION_HINT = (
    "Run Command needs Microsoft.Compute/virtualMachines/runCommand/action, e.g. Virtual Machine "
    "Contributor on the cluster's resource group"
)
ONE_AT_A_TIME_HINT = "a VM runs one Run Command at a time: try again when the other one ends"

Begin = Callable[[dict[str, Any]], Any]
"""Sends the Run Command POST for one VM with the given body; returns the SDK's LROPoller."""


def on_vm(client: Any, resource_group: str, vm: str) -> Begin:
    """Run Command on a plain virtual machine (the login node)."""

    def begin(parameters: dict[str, Any]) -> Any:
        from ..timeouts import lro_polling

        return client.virtual_machines.begin_run_command(
            resource_group, vm, parameters, polling=lro_polling(client)
        )

    return begin


def on_scale_set_vm(client: Any, resource_group: str, scale_set: str, instance_id: str) -> Begin:
    """Run Command on one VM of a scale set (a GPU node)."""

    def begin(parameters: dict[str, Any]) -> Any:
        from ..timeouts import lro_polling

        return client.virtual_machine_scale_set_vms.begin_run_command(
            resource_group, scale_set, instance_id, parameters=parameters, polling=lro_polling(client)
        )

    return begin


@dataclass
class Output:
    stdout: str
    stderr: str


class RunCommandFailed(Exception):
    """Azure refused the Run Command, it failed, or it did not end in time.

    `detail` is what happened in one line (`CODE: Azure's sentence`); `hint` what to do, when we know.
    """

    def __init__(
        self,
        detail: str,
        code: str | None = None,
        status: int | None = None,
        hint: str = "",
        message: str = "",
    ):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.status = status
        self.hint = hint
        self.message = message or detail  # Azure's own sentence, without the code

    @property
    def denied(self) -> bool:
        """The identity may not run commands here: the same answer for every VM of the cluster."""
        return self.status == 403 or self.code in ("AuthorizationFailed", "LinkedAuthorizationFailed")


def python_program(source: str) -> str:
    """`python3 -c` running `source` on the VM, as one shell word free of quotes and line breaks (the
    program travels base64'ed: a script line holds it whatever quotes or newlines it has)."""
    encoded = base64.b64encode(source.encode("utf-8")).decode("ascii")
    return f'python3 -c "$(printf %s {encoded} | base64 -d)"'


def script_size(lines: Sequence[str]) -> int:
    """The size the Linux extension checks against SCRIPT_LIMIT: the base64 of the lines joined."""
    return len(base64.b64encode("\n".join(lines).encode("utf-8")))


def run_shell(
    begin: Begin,
    lines: Sequence[str],
    timeout: float = TIMEOUT_S,
    update: Callable[[str], None] = lambda _text: None,
) -> Output:
    """Send `lines` as a RunShellScript and wait for what it printed (RunCommandFailed otherwise)."""
    return wait(send(begin, lines, update), timeout)


def send(begin: Begin, lines: Sequence[str], update: Callable[[str], None] = lambda _text: None) -> Any:
    """The POST alone (throttling waited out): returns the poller, or raises RunCommandFailed.

    Apart from `wait` so a caller can learn quickly whether Azure accepts Run Command at all (a 403
    comes back here, in well under a second) before sending it to many VMs.
    """
    from ..azure import begin_with_throttle_retry

    parameters = {"commandId": "RunShellScript", "script": list(lines)}
    with _failures():
        return begin_with_throttle_retry(begin, parameters, update=update)


def wait(poller: Any, timeout: float = TIMEOUT_S) -> Output:
    """Poll until the script ends (at most `timeout` seconds) and return its output."""
    from ..azure import rest

    with _failures():
        poller.wait(timeout)
        if not poller.done():
            raise RunCommandFailed(
                f"Run Command did not finish within {timeout:g}s (is the VM agent, waagent, running?)",
                code="Timeout",
            )
        result = rest(poller.result())
    stdout, stderr, failure = result_streams(result)
    if failure:
        raise RunCommandFailed(f"Run Command failed: {failure}", code="RunCommandFailed")
    return Output(stdout, stderr)


@contextmanager
def _failures() -> Iterator[None]:
    """Turn the SDK's exceptions into RunCommandFailed; a missing token stays the command's own error."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    from ..azure import error_message

    try:
        yield
    except HttpResponseError as err:
        if isinstance(err, ClientAuthenticationError) and getattr(err, "response", None) is None:
            raise  # no token at all: the same for every VM, so not this VM's failure
        raise _refused(err) from None
    except (ServiceRequestError, ServiceResponseError) as err:
        raise RunCommandFailed(
            f"Azure Resource Manager did not answer: {error_message(err)}", code="Unreachable"
        ) from None


def _refused(err: Any) -> RunCommandFailed:
    from ..azure import error_code, error_message

    status = getattr(err, "status_code", None)
    code = error_code(err) or f"HTTP {status if status is not None else '?'}"
    message = error_message(err)
    failed = RunCommandFailed(f"{code}: {message}", code, status, message=message)
    if failed.denied:
        failed.hint = PERMISSION_HINT
    elif code == "Conflict" or (status == 409 and code != "OperationNotAllowed"):
        failed.hint = ONE_AT_A_TIME_HINT
    return failed


def result_streams(result: dict[str, Any]) -> tuple[str, str, str | None]:
    """(stdout, stderr, failure) of a RunCommandResult, in either shape Azure answers with.

    The REST examples have two statuses, `ComponentStatus/StdOut/succeeded` and
    `ComponentStatus/StdErr/succeeded`. RunShellScript on Linux answers one `ProvisioningState/succeeded`
    whose message packs both streams after 'Enable succeeded: ', each on the lines after a `[stdout]` or
    `[stderr]` line (Azure/run-command-extension-linux), and it succeeds whatever the script's exit
    status: a missing file is empty stdout and cat's complaint on stderr. A failed status (the extension
    itself failed) is the failure.
    """
    statuses = [s for s in result.get("value") or [] if isinstance(s, dict)]
    for status in statuses:
        code = str(status.get("code") or "")
        if code.lower().endswith("/failed") or str(status.get("level") or "").lower() == "error":
            return "", "", first_line(status.get("message")) or code or "Run Command failed"
    streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
    packed = []
    for status in statuses:
        parts = str(status.get("code") or "").split("/")
        stream = parts[1].lower() if len(parts) > 2 and parts[0] == "ComponentStatus" else ""
        if stream in streams:
            streams[stream].append(str(status.get("message") or ""))
        else:
            packed.append(str(status.get("message") or ""))
    if not streams["stdout"] and not streams["stderr"] and packed:
        return (*_unpack_streams(packed[0]), None)
    return "".join(streams["stdout"]), "".join(streams["stderr"]), None


def _unpack_streams(message: str) -> tuple[str, str]:
    """(stdout, stderr) from the Linux extension's message: what follows its `[stdout]`, `[stderr]` lines."""
    out_at = message.find("[stdout]\n")
    err_at = message.find("\n[stderr]\n", max(out_at, 0))
    if out_at < 0 and err_at < 0:
        return message, ""
    stdout = message[out_at + len("[stdout]\n") : err_at if err_at >= 0 else None] if out_at >= 0 else ""
    stderr = message[err_at + len("\n[stderr]\n") :] if err_at >= 0 else ""
    return stdout, stderr


def first_line(text: Any) -> str:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[0] if lines else ""


def run_step(
    target: Begin,
    lines: list[str],
    timeout: float,
    *,
    marker: str,
    failed: str,
    again: str,
    resource_group: str,
    vm: str,
    stack: str,
    unfinished_hint: Callable[[str], str],
) -> None:
    """Run one script of a multi-script step on `vm`; AzclusterError (exit 1) unless it printed `marker`.

    `failed` starts each message ("could not write the hostfiles on VM"), `again` is the command that
    retries the step, `unfinished_hint(stderr)` what to do when the script stopped before its end.
    """
    from ..errors import EXIT_REFUSED, AzclusterError

    try:
        output = run_shell(target, lines, timeout)
    except RunCommandFailed as err:
        hint = err.hint or failure_hint(err, resource_group, vm, stack, again)
        raise AzclusterError(f"{failed}: {err.detail}", hint, EXIT_REFUSED) from None
    if not any(line.startswith(marker) for line in output.stdout.splitlines()):
        why = first_line(output.stderr) or "the script stopped before its end"
        raise AzclusterError(f"{failed}: {why}", unfinished_hint(output.stderr), EXIT_REFUSED)


# --- listings longer than one answer ----------------------------------------------------------------------
# A script saves its listing gzip'ed and base64'ed under /run on its first call; each call prints the next
# chunk of it between `MARKER TOTAL START` and `MARKER-END`, so a listing larger than the 4 KiB of stdout
# Run Command returns comes back in as few calls as it needs (slurmstate.py: sinfo, usage.py: sacct).


def chunk_lines(marker: str, start: int, size: int) -> list[str]:
    """The script's tail that prints characters start+1..start+size of the saved listing "$f"."""
    return [
        f'echo "{marker} $(wc -c <"$f" | tr -d " ") {start}"',
        f'cut -c {start + 1}-{start + size} "$f"; echo',
        f"echo {marker}-END",
    ]


def listing_chunk(stdout: str, marker: str) -> tuple[int, str]:
    """(the listing's total size, this call's chunk) from one call's stdout; ValueError when absent."""
    header = re.compile(rf"^{re.escape(marker)} (?P<size>\d+) (?P<start>\d+)$")
    lines = [line.strip() for line in stdout.splitlines()]
    for index, line in enumerate(lines):
        if (match := header.match(line)) and f"{marker}-END" in lines[index:]:
            end = lines.index(f"{marker}-END", index)
            return int(match["size"]), "".join(lines[index + 1 : end])
    raise ValueError(f"no {marker} listing in the answer")


class ListingUnreadable(Exception):
    """A listing could not be read; the message says why. `tool_failed`: the VM answered, but the tool
    that makes the listing printed none (its first stderr line is in the message)."""

    def __init__(self, message: str, tool_failed: bool = False) -> None:
        super().__init__(message)
        self.tool_failed = tool_failed


def read_listing(
    begin: Begin,
    script: Callable[[int], list[str]],
    marker: str,
    *,
    tool: str,
    listing: str,
    timeout: float,
    max_calls: int,
    first: Callable[[str], None] = lambda _stdout: None,
) -> str:
    """The listing `script(start)` saves and prints from `start` on, decoded; `first` sees the first
    call's stdout (for records a script prints beside its first chunk). ListingUnreadable names `tool`
    ("sinfo") or `listing` ("Slurm's node list") and what went wrong."""
    encoded = ""
    try:
        for _ in range(max_calls):
            output = run_shell(begin, script(len(encoded)), timeout)
            if not encoded:
                first(output.stdout)
            try:
                size, chunk = listing_chunk(output.stdout, marker)
            except ValueError:
                why = first_line(output.stderr) or "no answer"
                raise ListingUnreadable(f"{tool} failed on the login node: {why}", tool_failed=True) from None
            encoded += chunk
            if len(encoded) >= size or not chunk:
                break
        else:
            raise ListingUnreadable(f"{listing} needs more than {max_calls} Run Commands")
        return gzip.decompress(base64.b64decode(encoded)).decode("utf-8", "replace")
    except RunCommandFailed as err:
        raise ListingUnreadable(f"Run Command on the login node: {err.detail}") from None
    except (binascii.Error, OSError, EOFError) as err:
        raise ListingUnreadable(f"{listing} came back damaged: {err}") from None


def failure_hint(err: RunCommandFailed, resource_group: str, vm: str, stack: str, again: str) -> str:
    """What to do when a Run Command on `vm` failed; `again` is the command that retries the step."""
    if err.code in ("ResourceNotFound", "NotFound", "ResourceGroupNotFound"):
        return (
            f"no VM {vm} in resource group {resource_group}: is the cluster up (`azcluster status {stack}`)?"
        )
    if err.code == "OperationNotAllowed":
        return (
            f"Run Command needs the VM running: `az vm start -g {resource_group} -n {vm}`, then run it again"
        )
    return f"run `{again}` again; if it persists, check the VM agent on {vm}"


def waiting_line(text: str, progress: bool) -> Any:
    """A spinner with `text` on stderr while one long Run Command runs (nothing when not `progress`)."""
    from contextlib import nullcontext

    from ..render import console

    return console.status(text) if progress else nullcontext()

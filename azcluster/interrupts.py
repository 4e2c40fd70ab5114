"""Ctrl-C during `up`, `down` and `refresh`: passed on to the Pulumi CLI, never a kill by closed pipes.

The Automation API runs the `pulumi` CLI with pipes for its output (`pulumi.automation.PulumiCommand.run`).
Left alone, a Ctrl-C raises KeyboardInterrupt in azcluster, `subprocess.Popen.__exit__` closes those pipes
and azcluster exits; the CLI, which answers SIGINT by cancelling gracefully (pulumi/pulumi
pkg/backend/cancellation_scope.go), then dies of SIGPIPE at its next write, mid-operation: the stack stays
locked and what was in flight stays pending in the state.

So the CLI runs in a process group of its own (a terminal's Ctrl-C reaches azcluster only) and azcluster
passes each Ctrl-C on, reading the CLI's output until it exits:
1. SIGINT: Pulumi lets the operations in flight finish and records them, starts nothing new, saves the
   state and releases the lock (`pulumi up` then fails with "update cancelled", exit 8).
2. SIGINT again: Pulumi stops at once; what was in flight is left as pending operations in the state.
3. A third: the CLI is killed; the lock stays.
Then `Interrupted` carries how it ended, and the engine turns it into what to do next.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from typing import Any

NOTICES = (
    "Ctrl-C: asking Pulumi to stop. Operations already running in Azure finish and are recorded, nothing "
    "new starts, and the stack's lock is released; this can take minutes. Press Ctrl-C again to stop at "
    "once (costly: see the next message).",
    "Ctrl-C again: Pulumi stops at once. Resources it was creating, changing or deleting are left as pending "
    "operations: they may exist in Azure without being in the state until `azcluster refresh` finds them. "
    "A third Ctrl-C kills Pulumi and leaves the stack locked.",
    "Ctrl-C a third time: killing the Pulumi CLI. The stack stays locked and what it was doing is not "
    "recorded.",
)


class Interrupted(Exception):
    """The CLI ran to its end after `presses` Ctrl-Cs (3: it was killed)."""

    def __init__(self, presses: int, code: int, stdout: str, stderr: str) -> None:
        super().__init__(f"interrupted ({presses}x Ctrl-C), pulumi exited with {code}")
        self.presses = presses
        self.code = code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def killed(self) -> bool:
        return self.presses >= len(NOTICES)


def _print_notice(text: str) -> None:
    from .render import console, markup

    console.print(markup("[bold yellow]{}[/]", text), soft_wrap=True)


notice: Callable[[str], None] = _print_notice
"""Where the Ctrl-C messages go (stderr); tests replace it."""

_COMMAND_CLASS: type | None = None


def forwarding_command(root: str | None, version: Any) -> Any:
    """A `pulumi.automation.PulumiCommand` whose runs pass Ctrl-C on to the CLI (see the module doc)."""
    global _COMMAND_CLASS
    if _COMMAND_CLASS is None:
        from pulumi.automation import CommandResult, PulumiCommand
        from pulumi.automation.errors import create_command_error

        class ForwardingPulumiCommand(PulumiCommand):
            def run(
                self,
                args: list[str],
                cwd: str,
                additional_env: Mapping[str, str],
                on_output: Callable[[str], None] | None = None,
                on_error: Callable[[str], None] | None = None,
            ) -> Any:
                if os.name != "posix":
                    return super().run(args, cwd, additional_env, on_output, on_error)
                code, stdout, stderr, presses = run_forwarding(
                    [self.command, *_non_interactive(args)],
                    cwd,
                    self._env(additional_env),
                    on_output,
                    on_error,
                )
                if presses:
                    raise Interrupted(presses, code, stdout, stderr)
                result = CommandResult(stdout=stdout, stderr=stderr, code=code)
                if code != 0:
                    raise create_command_error(result)
                return result

            def _env(self, additional_env: Mapping[str, str]) -> dict[str, str]:
                # As PulumiCommand.run: the caller's environment, the workspace's, the automation marker,
                # and the CLI's own directory first on PATH when it was given by path (bundled plugins).
                env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
                if os.path.isabs(self.command):
                    env["PATH"] = os.pathsep.join([os.path.dirname(self.command), env.get("PATH", "")])
                return env

        _COMMAND_CLASS = ForwardingPulumiCommand
    return _COMMAND_CLASS(root=root, version=version)


def _non_interactive(args: list[str]) -> list[str]:
    """`--non-interactive` before any `--` separator, as PulumiCommand.run puts it."""
    head = args[: args.index("--")] if "--" in args else args
    return args if "--non-interactive" in head else ["--non-interactive", *args]


def run_forwarding(
    cmd: list[str],
    cwd: str,
    env: Mapping[str, str],
    on_output: Callable[[str], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> tuple[int, str, str, int]:
    """Run `cmd` in its own process group, pass Ctrl-C on, read its output to the end.

    Returns (exit code, stdout, stderr, how many Ctrl-Cs arrived)."""
    out: list[str] = []
    err: list[str] = []

    def consume(stream: Any, callback: Callable[[str], None] | None, chunks: list[str]) -> None:
        for line in iter(stream.readline, ""):
            stripped = line.rstrip()
            if callback:
                callback(stripped)
            chunks.append(stripped)
        stream.close()

    process = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=dict(env),
        encoding="utf-8",
        start_new_session=True,  # its own group: the terminal's SIGINT is azcluster's to pass on
    )
    readers = [
        threading.Thread(target=consume, args=(process.stdout, on_output, out), daemon=True),
        threading.Thread(target=consume, args=(process.stderr, on_error, err), daemon=True),
    ]
    for reader in readers:
        reader.start()
    presses = 0
    previous = _sigterm_as_ctrl_c()
    try:
        while True:
            try:
                process.wait()
                for reader in readers:
                    reader.join()
                break
            except KeyboardInterrupt:
                presses = _pass_on(process, presses + 1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return process.returncode, "\n".join(out), "\n".join(err), presses


def _sigterm_as_ctrl_c() -> Any:
    """While the CLI runs, SIGTERM counts as a Ctrl-C too: a cancelled CI job gets SIGINT, then SIGTERM
    seconds later, then SIGKILL (GitHub Actions: 7.5 s, then 2.5 s). Without this, SIGTERM ends azcluster
    at once and the CLI, in its own process group, is left to be killed mid-operation; with it, the
    second signal is Pulumi's "stop at once", which still saves the state and releases the lock."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)


def _pass_on(process: subprocess.Popen[str], presses: int) -> int:
    """Signal (or, the third time, kill) the CLI and say what that costs; a Ctrl-C meanwhile counts too."""
    while True:
        try:
            if process.poll() is None:
                if presses < len(NOTICES):
                    process.send_signal(signal.SIGINT)
                else:
                    process.kill()
            notice(NOTICES[min(presses, len(NOTICES)) - 1])
            return presses
        except KeyboardInterrupt:
            presses += 1

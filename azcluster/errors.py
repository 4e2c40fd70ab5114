"""The one way azcluster fails: a message a person can act on, and the exit code CI can read."""

from __future__ import annotations

EXIT_OK = 0
EXIT_REFUSED = 1  # the cluster or Azure said no: validation errors, quota short, deployment failed
EXIT_USAGE = 2  # bad usage or unreadable input
EXIT_MISSING_TOOL = 3  # a required tool or credential is missing


class AzclusterError(Exception):
    """An expected failure: printed as `error: <message>` and `hint: <hint>`, never as a traceback."""

    def __init__(self, message: str, hint: str = "", exit_code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

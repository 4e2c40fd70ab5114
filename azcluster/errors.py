"""The one way azcluster fails: a message a person can act on, and the exit code CI can read."""

from __future__ import annotations

from typing import Any

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

    def error_fields(self) -> dict[str, Any]:
        """More about what failed, for the `error` object of the JSON document (e.g. failed resources)."""
        return {}

    def document_fields(self) -> dict[str, Any]:
        """What the command learnt before it failed, for the top level of the JSON document."""
        return {}


def error_document(
    stack: str | None, message: str, hint: str = "", exit_code: int = EXIT_REFUSED, **error: Any
) -> dict[str, Any]:
    """The one JSON shape of a failure, for every command: `{stack, ok: false, error: {message, hint,
    exit_code, ...}}`. The CLI prints it (cli._Commands) whenever a `--json` run ends without a document."""
    return {
        "stack": stack,
        "ok": False,
        "error": {"message": message, "hint": hint, "exit_code": exit_code, **error},
    }


def document_of(stack: str | None, err: AzclusterError) -> dict[str, Any]:
    """An AzclusterError as the failure document, with what it carries."""
    document = error_document(stack, err.message, err.hint, err.exit_code, **err.error_fields())
    document.update({k: v for k, v in err.document_fields().items() if k not in document})
    return document

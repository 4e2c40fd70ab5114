"""How long azcluster waits for Azure: per-request timeouts, one deadline per command, patient polling.

azure-core's defaults suit a batch job, not a command someone waits on: 300 s to connect and 300 s to read
(`ConnectionConfiguration`), each retried (retry_connect/retry_read 3), so an endpoint that accepts the
connection and never answers kept `preflight` or `status` silent for 20 minutes. Here:

- every request gets CONNECT_TIMEOUT_S to connect and READ_TIMEOUT_S to answer (azure-core's
  `connection_timeout` / `read_timeout` client options);
- a read (GET: a list, a resource, an instance view) gets far less: GET_READ_TIMEOUT_S to answer and
  GET_READ_RETRIES more tries. A read answers in about a second; with the 75 s of a write and azure-core's
  three read retries, `status` whose one island's VM list was accepted and never answered was still
  silent after 150 s. Now such a read is given up in (1 + GET_READ_RETRIES) x GET_READ_TIMEOUT_S, named,
  and the command exits 1 well within two minutes. `AZCLUSTER_AZURE_READ_TIMEOUT=SECONDS` changes it;
- writes (PUT/POST/PATCH/DELETE, which Azure may answer only near its own one-minute limit) and the polls
  of a long-running operation (its deadline is the command's, and losing track of a running start or Run
  Command is worse than waiting on one poll) keep READ_TIMEOUT_S and azure-core's retries;
- every command has one deadline (`Deadline`, started when it connects): no request is sent after it,
  and no request may wait past it (the two policies below cap each attempt's timeouts and azure-core's
  RetryPolicy `timeout` by what is left). Passing it raises DeadlineExceeded, which names the request that
  did not answer; `AZCLUSTER_AZURE_DEADLINE=SECONDS` sets it for every command;
- a long-running operation is polled to that deadline (`wait_for`), never forever;
- one malformed answer while polling (no `status`, or a body that is not JSON: a proxy's error page) is
  retried, as a transient fault of that poll, not taken as the operation's failure (`lro_polling`).

Nothing here imports azure-core at module level: `azcluster --help` stays fast.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import EXIT_USAGE, AzclusterError

ENV_DEADLINE = "AZCLUSTER_AZURE_DEADLINE"
ENV_READ_TIMEOUT = "AZCLUSTER_AZURE_READ_TIMEOUT"
CONNECT_TIMEOUT_S = 10.0
# Resource Manager answers a synchronous call or gives up on its resource provider (504 GatewayTimeout)
# within about a minute; anything slower is an async operation (202 + polling). A little more than that,
# so a real 504 comes back as Azure's answer rather than as our timeout.
READ_TIMEOUT_S = 75.0
# A read (GET) that is not a poll of a long-running operation: Resource Manager answers one in about a
# second, a page of a large scale set's VM list in a few. 20 s is far past that; one more try covers a
# connection lost on the way. A silent read costs (1 + 1) x 20 s = 40 s, not 4 x 75 s.
GET_READ_TIMEOUT_S = 20.0
GET_READ_RETRIES = 1
# The option PatientPolling (lro_polling) sends with each poll, so the pipeline keeps the long timeouts.
_LONG_OPERATION = "azcluster_long_operation"
DEFAULT_DEADLINE_S = 900.0
# Per command: reads are quick; status and hosts may wait on Run Command (runcommand.TIMEOUT_S, 300 s);
# allocating a large island can take many minutes; `test` waits on Slurm jobs (fabrictest.TIMEOUT_S per
# batch of islands, 45 minutes), so it gets hours.
COMMAND_DEADLINES_S = {
    "preflight": 300.0,
    "status": 900.0,
    "hosts": 900.0,
    "stop": 3600.0,
    "start": 3600.0,
    "test": 3 * 3600.0,
    "users sync": 1800.0,  # one Run Command per ~96 KiB of users file, one after another
    "cost": 900.0,  # a few Run Commands on the login node (sacct, added up there)
}
MALFORMED_POLL_RETRIES = 3


@dataclass
class Deadline:
    """The moment a command stops waiting for Azure (time.monotonic), and how long it was given."""

    seconds: float
    at: float = field(default=0.0)

    def __post_init__(self) -> None:
        if not self.at:
            self.at = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


def deadline_seconds(default: float | None, environ: dict[str, str] | None = None) -> float:
    """The command's deadline: AZCLUSTER_AZURE_DEADLINE if set, else `default`, else DEFAULT_DEADLINE_S."""
    return _env_seconds(
        ENV_DEADLINE,
        float(default or DEFAULT_DEADLINE_S),
        "how long a command may wait for Azure",
        600,
        environ,
    )


def read_timeout_seconds(environ: dict[str, str] | None = None) -> float:
    """How long one read (GET) may take to answer: AZCLUSTER_AZURE_READ_TIMEOUT, else GET_READ_TIMEOUT_S."""
    return _env_seconds(ENV_READ_TIMEOUT, GET_READ_TIMEOUT_S, "how long one read may wait", 60, environ)


def _env_seconds(name: str, default: float, what: str, example: int, environ: dict[str, str] | None) -> float:
    env = os.environ if environ is None else environ
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise AzclusterError(
            f"{name}={raw!r} is not a number of seconds",
            f"set it to {what}, e.g. {name}={example}, or unset it",
            EXIT_USAGE,
        )
    return seconds


def describe_request(method: str, url: str) -> str:
    """`GET https://host/path` without the query string (api-version, skip tokens: noise in a message)."""
    parts = urlsplit(url)
    return f"{method} {parts.scheme}://{parts.netloc}{parts.path}"


def deadline_error(deadline: Deadline, request: str, cause: BaseException | None = None) -> Exception:
    """DeadlineExceeded (an azure-core ServiceResponseTimeoutError, so every existing handler of an
    unreachable endpoint handles it) for the request that was waiting when the deadline passed."""
    err = _deadline_class()(f"no answer to {request} within the command's {deadline.seconds:g}s deadline")
    err.azcluster_request = request  # type: ignore[attr-defined]
    err.azcluster_deadline = deadline.seconds  # type: ignore[attr-defined]
    if cause is not None:
        err.__cause__ = cause
    return err


@functools.cache
def _deadline_class() -> type[Exception]:
    from azure.core.exceptions import ServiceResponseTimeoutError

    class DeadlineExceeded(ServiceResponseTimeoutError):
        """The command's deadline passed while this request waited (or before it was sent)."""

    return DeadlineExceeded


def is_deadline(err: BaseException) -> bool:
    return getattr(err, "azcluster_deadline", None) is not None


def silent_read(err: BaseException) -> tuple[float, int] | None:
    """(read timeout, tries) when `err` is a read (GET) that never answered, else None."""
    return getattr(err, "azcluster_silent_read", None)


def is_short_read(method: str, options: dict[str, Any]) -> bool:
    """A GET that is not a poll of a long-running operation: it gets the read timeout and retries."""
    return method.upper() == "GET" and not options.get(_LONG_OPERATION)


def client_options(deadline: Deadline, read_timeout: float = GET_READ_TIMEOUT_S) -> dict[str, Any]:
    """Keyword arguments for an azure-mgmt client: the timeouts, and the policies that keep the deadline.

    `read_timeout`: how long a read (GET, not a poll) may take to answer (read_timeout_seconds()).
    """
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError, ServiceResponseTimeoutError
    from azure.core.pipeline.policies import HTTPPolicy

    class DeadlinePolicy(HTTPPolicy):
        """Before the retries: no call after the deadline; the retries together end at it. A read gets
        GET_READ_RETRIES tries more after a timeout (azure-core's `retry_read`, per request)."""

        def send(self, request: Any) -> Any:
            http = request.http_request
            what = describe_request(http.method, http.url)
            left = deadline.remaining()
            if left <= 0:
                raise deadline_error(deadline, what)
            options = request.context.options
            short = is_short_read(http.method, options)
            options.pop(_LONG_OPERATION, None)  # ours, not azure-core's: the transport must not see it
            request.context["azcluster_short_read"] = short
            if short:
                options.setdefault("retry_read", GET_READ_RETRIES)
            options["timeout"] = min(float(options.get("timeout") or math.inf), left)
            try:
                return self.next.send(request)
            except (ServiceRequestError, ServiceResponseError) as err:
                if is_deadline(err):
                    raise
                if deadline.expired():
                    raise deadline_error(deadline, what, err) from err
                err.azcluster_request = what  # type: ignore[attr-defined]
                if short and isinstance(err, ServiceResponseTimeoutError):
                    err.azcluster_silent_read = (read_timeout, 1 + GET_READ_RETRIES)  # type: ignore[attr-defined]
                raise

    class AttemptTimeoutPolicy(HTTPPolicy):
        """After the retries, once per attempt: connect and read within what is left of the deadline, and a
        read within `read_timeout`."""

        def send(self, request: Any) -> Any:
            left = max(deadline.remaining(), 0.05)
            options = request.context.options
            options["connection_timeout"] = min(
                float(options.get("connection_timeout") or CONNECT_TIMEOUT_S), CONNECT_TIMEOUT_S, left
            )
            longest = read_timeout if request.context.get("azcluster_short_read") else READ_TIMEOUT_S
            options["read_timeout"] = min(float(options.get("read_timeout") or longest), longest, left)
            return self.next.send(request)

    return {
        "connection_timeout": CONNECT_TIMEOUT_S,
        "read_timeout": READ_TIMEOUT_S,
        "per_call_policies": [DeadlinePolicy()],
        "per_retry_policies": [AttemptTimeoutPolicy()],
    }


def lro_polling(client: Any) -> Any:
    """ARMPolling for a `begin_*` call (its `polling=`) that retries a malformed poll answer.

    azure-core turns a poll answer without `status` (BadResponse) or with a body that is not JSON
    (DecodeError) into the operation's failure at once (azure/core/polling/base_polling.py,
    LROBasePolling.run). Such an answer says nothing about the operation; the next poll usually does.
    """
    from azure.core.exceptions import DecodeError
    from azure.core.polling.base_polling import BadResponse
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    class PatientPolling(ARMPolling):
        def request_status(self, status_link: str) -> Any:
            """Every poll (and the final GET) is part of the long operation: the long read timeout."""
            self._operation_config[_LONG_OPERATION] = True
            return super().request_status(status_link)

        def update_status(self) -> None:
            for attempt in range(MALFORMED_POLL_RETRIES + 1):
                try:
                    super().update_status()
                    return
                except (BadResponse, DecodeError):
                    if attempt == MALFORMED_POLL_RETRIES:
                        raise
                    self._delay()

    config = client._config  # the interval and endpoint the SDK's own default ARMPolling would get
    return PatientPolling(
        config.polling_interval, path_format_arguments={"endpoint": str(config.base_url).rstrip("/")}
    )


class StillRunning(Exception):
    """A long-running operation that had not finished when the command's deadline passed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the operation was still in progress when the command's {seconds:g}s deadline passed"
        )
        self.seconds = seconds


def wait_for(poller: Any, deadline: Deadline) -> Any:
    """poller.result(), waiting at most until the deadline (StillRunning then).

    The deadline can pass between two polls (poller.wait's timeout) or while one is being sent (the
    pipeline refuses it): either way the operation was last seen in progress, so both say StillRunning.
    """
    try:
        poller.wait(max(deadline.remaining(), 0.0))
        if not poller.done():
            raise StillRunning(deadline.seconds)
        return poller.result()
    except Exception as err:
        if is_deadline(err):
            raise StillRunning(deadline.seconds) from err
        raise

"""Node health: the checks a GPU node runs (azc-health.sh), the local endpoint that serves their verdict
(azc-health-server.py) and the Application Health extension on the scale set that probes it.

The constants below are the contract between the node side (the health endpoint the bootstrap installs)
and the scale set (the Application Health extension that probes it, components/gpu_pool.py).

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .document import Piece

HEALTH_PORT = 8585
HEALTH_PATH = "/health"

# --- Application Health extension ("Rich Health States"): what the scale set should install ---------
# https://learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-health-extension
HEALTH_EXTENSION_PUBLISHER = "Microsoft.ManagedServices"
HEALTH_EXTENSION_TYPE = "ApplicationHealthLinux"
HEALTH_EXTENSION_VERSION = "2.0"  # 2.0 = Rich Health States; 1.0 = binary
# A new node stays "Initializing" until it reports the same state numberOfProbes times or this grace
# period ends (max 14400 s). It must cover boot, node preparation and the first AzNHC run (~10-20 min).
HEALTH_GRACE_PERIOD_S = 3600
HEALTH_INTERVAL_S = 30
HEALTH_NUMBER_OF_PROBES = 3
# Where azc-health.sh records its verdict on the node (parse it with `parse_health_result`).
HEALTH_RESULT_PATH = "/var/lib/azcluster/health.json"

# Sizes Azure's node health checks (AzNHC, Azure/azurehpc-health-checks) have a configuration for, by
# Azure size name, lower-case. Others get the basic GPU/IB presence checks only.
AZNHC_SIZES = frozenset(
    {
        "standard_nd96asr_v4",
        "standard_nd96amsr_a100_v4",
        "standard_nd96isr_h100_v5",
        "standard_nd96isr_h200_v5",
        "standard_nd96isr_mi300x_v5",
        # conf/nd128isr_ndr_gb200_v6.conf (PR 165) and the Arm64 container (PR 164): only in AzNHC copies
        # newer than its last tag (v0.4.5); azc-health.sh skips AzNHC, saying why, where the image's copy
        # lacks either (rules/rack.py AZC133).
        "standard_nd128isr_ndr_gb200_v6",
    }
)

HEALTH_SCRIPTS = ("azc-health.sh", "azc-health-server.py")
HEALTH_UNITS = ("azc-health.service", "azc-health.timer", "azc-health-server.service")


def health_piece(size_name: str, bind_all: bool) -> Piece:
    """A GPU node's health checks (every 10 minutes, azc-health.timer) and the endpoint serving them.

    bind_all: serve on every address rather than loopback only, so the login node's idle watcher can read
    GPU utilisation from <HEALTH_PATH>/gpu over the private network (components/elastic.py)."""
    env: dict[str, Any] = {
        "AZC_AZNHC": int(size_name.lower() in AZNHC_SIZES),
        "AZC_HEALTH_PORT": HEALTH_PORT,
        "AZC_HEALTH_PATH": HEALTH_PATH,
    }
    if bind_all:
        env["AZC_HEALTH_BIND"] = "0.0.0.0"
    return Piece(
        "health",
        env=env,
        scripts=HEALTH_SCRIPTS,
        units=HEALTH_UNITS,
        start=("azc-health.timer", "azc-health-server.service"),  # the timer starts azc-health.service
    )


def health_extension_settings() -> dict[str, Any]:
    """Public settings of the Application Health extension (Rich Health States) for a GPU scale set.

    Use with publisher HEALTH_EXTENSION_PUBLISHER, type HEALTH_EXTENSION_TYPE and typeHandlerVersion
    HEALTH_EXTENSION_VERSION. The endpoint answers 200 {"ApplicationHealthState": "Healthy"|"Unhealthy"}
    and 503 (Unknown) while no fresh result exists.
    """
    return {
        "protocol": "http",
        "port": HEALTH_PORT,
        "requestPath": HEALTH_PATH,
        "intervalInSeconds": HEALTH_INTERVAL_S,
        "numberOfProbes": HEALTH_NUMBER_OF_PROBES,
        "gracePeriod": HEALTH_GRACE_PERIOD_S,
    }


@dataclass(frozen=True)
class HealthCheck:
    name: str
    ok: bool
    skipped: bool
    detail: str


@dataclass(frozen=True)
class HealthResult:
    """A node's recorded health (HEALTH_RESULT_PATH on the node, or `<HEALTH_PATH>/detail`)."""

    healthy: bool
    time: str
    checks: tuple[HealthCheck, ...]
    hostname: str = ""
    size: str = ""
    mode: str = ""

    @property
    def failing(self) -> tuple[HealthCheck, ...]:
        return tuple(check for check in self.checks if not check.ok)

    def summary(self) -> str:
        """'healthy' or the failing checks, e.g. 'infiniband: 7 of 8 ports ACTIVE ...; gpu: ...'."""
        if self.healthy:
            return "healthy"
        return "; ".join(f"{check.name}: {check.detail}" for check in self.failing) or "unhealthy"


def parse_health_result(text: str) -> HealthResult:
    """Parse the JSON azc-health.sh writes. Raises ValueError when it is not that shape."""
    try:
        data = json.loads(text)
        checks = tuple(
            HealthCheck(
                name=str(item["name"]),
                ok=bool(item["ok"]),
                skipped=bool(item.get("skipped", False)),
                detail=str(item.get("detail", "")),
            )
            for item in data["checks"]
        )
        if not isinstance(data["healthy"], bool):
            raise TypeError("'healthy' is not a boolean")
        return HealthResult(
            healthy=data["healthy"],
            time=str(data.get("time", "")),
            checks=checks,
            hostname=str(data.get("hostname", "")),
            size=str(data.get("size", "")),
            mode=str(data.get("mode", "")),
        )
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"not an azcluster health result: {err}") from None

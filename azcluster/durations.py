"""Durations people type on the command line: `90s`, `45m`, `2h`, `1h30m`, or plain seconds."""

from __future__ import annotations

import re

from .errors import EXIT_USAGE, AzclusterError

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SECONDS = 7 * 86400


def parse_duration(text: str, option: str) -> float:
    """Seconds in `text`; a clear usage error (exit 2) naming `option` for anything else."""
    raw = text.strip().lower()
    seconds: float | None = None
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        seconds = float(raw)
    elif raw and _PART.sub("", raw) == "":
        seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(raw))
    if seconds is None or seconds > MAX_SECONDS:
        raise AzclusterError(
            f"{option} {text!r} is not a duration of at most 7 days",
            f"write it as 90s, 45m, 2h or 1h30m, e.g. {option} 2h",
            EXIT_USAGE,
        )
    return seconds

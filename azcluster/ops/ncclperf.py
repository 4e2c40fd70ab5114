"""Read what nccl-tests' (and rccl-tests') all_reduce_perf prints: the rows, the summary, the failures.

The format (NVIDIA/nccl-tests src/common.cu; rccl-tests is a fork and prints the same): one row per
message size, `size count type redop root` then out-of-place `time algbw busbw #wrong` and in-place
`time algbw busbw #wrong` (older versions have no `root` column, and print `N/A` for #wrong without
checking); comment lines start with `#`, and the run ends with `# Out of bounds values : N OK|FAILED`
and `# Avg bus bandwidth    : X`. Under mpirun, NCCL's INFO/WARN lines from every rank land between
the rows. A run that fails prints `Test NCCL failure file:line 'why'` (or `Test CUDA failure`) per rank.
Bus bandwidth is nccl-tests' figure to compare against hardware peaks (doc/PERFORMANCE.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FAILURE = re.compile(r"Test (?:NCCL |CUDA )?failure\b.*")
_OUT_OF_BOUNDS = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)\s+(OK|FAILED)")
_AVERAGE = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*([0-9.]+)")
GIB = 1024**3


@dataclass(frozen=True)
class Row:
    """One message size: bytes and the bus bandwidth (GB/s) out of place and in place."""

    size: int
    busbw_out: float
    busbw_in: float
    wrong: int  # out-of-place + in-place #wrong; 0 when not checked

    @property
    def busbw(self) -> float:
        return max(self.busbw_out, self.busbw_in)


@dataclass
class AllReduceRun:
    rows: list[Row] = field(default_factory=list)
    average_busbw: float | None = None
    out_of_bounds: int | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        """The run printed its summary and no failure: the numbers mean something."""
        return self.average_busbw is not None and not self.failures and self.out_of_bounds == 0

    def peak_busbw(self, min_size: int = GIB) -> float | None:
        """The best bus bandwidth at messages of `min_size` bytes or more (large messages are where the
        fabric's bandwidth shows; small ones measure latency). None without such rows."""
        big = [row.busbw for row in self.rows if row.size >= min_size]
        return max(big) if big else None

    def problem(self) -> str | None:
        """Why the numbers cannot be trusted, in one line; None when they can."""
        if self.failures:
            return self.failures[0]
        if self.out_of_bounds:
            return f"{self.out_of_bounds} results out of bounds (wrong data)"
        if any(row.wrong for row in self.rows):
            return "some results were wrong (#wrong > 0)"
        if self.average_busbw is None:
            return "the test did not finish (no 'Avg bus bandwidth' line)"
        return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _row(line: str) -> Row | None:
    parts = line.split()
    if len(parts) not in (12, 13) or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    out_time, out_busbw, out_wrong, in_time, in_busbw, in_wrong = (
        parts[-8],
        parts[-6],
        parts[-5],
        parts[-4],
        parts[-2],
        parts[-1],
    )
    busbw_out, busbw_in = _number(out_busbw), _number(in_busbw)
    if busbw_out is None or busbw_in is None or _number(out_time) is None or _number(in_time) is None:
        return None
    wrong = sum(int(w) for w in (out_wrong, in_wrong) if w.isdigit())
    return Row(int(parts[0]), busbw_out, busbw_in, wrong)


def parse(text: str) -> AllReduceRun:
    """Every row, the summary and the failures in all_reduce_perf's output (other lines are skipped)."""
    run = AllReduceRun()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if match := _OUT_OF_BOUNDS.match(stripped):
                run.out_of_bounds = int(match[1])
            elif match := _AVERAGE.match(stripped):
                run.average_busbw = float(match[1])
            continue
        if match := _FAILURE.search(stripped):
            if match[0] not in run.failures:
                run.failures.append(match[0])
            continue
        row = _row(stripped)
        if row is not None:
            run.rows.append(row)
    return run

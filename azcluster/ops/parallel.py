"""Running one Azure call per island (or node) in parallel, with a live line each on stderr."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MAX_PARALLEL = 16


def parallel(work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(items))) as pool:
        return list(pool.map(work, items))


def task_progress(console: Any) -> Any:
    """One line per parallel Azure operation: spinner, what, its latest state, elapsed time (stderr)."""
    from ..render import task_progress as progress

    return progress(console)

"""Running one Azure call per island (or node) in parallel, with a live line each on stderr."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MAX_PARALLEL = 16


def parallel(
    work: Callable[[Any], Any], items: list[Any], on_interrupt: Callable[[], None] | None = None
) -> list[Any]:
    """`work` on every item, at most MAX_PARALLEL at once, results in item order.

    `on_interrupt`: what tells the work to finish early (e.g. set an Event it waits on). Given, a Ctrl-C
    while waiting for the results calls it and then collects every result as the work ends; without it,
    the KeyboardInterrupt propagates (after the running calls return, as the executor's shutdown waits).
    """
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            if on_interrupt is None:
                raise
            on_interrupt()
            return [future.result() for future in futures]


def task_progress(console: Any) -> Any:
    """One line per parallel Azure operation: spinner, what, its latest state, elapsed time (stderr)."""
    from ..render import task_progress as progress

    return progress(console)

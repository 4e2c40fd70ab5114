"""`azcluster skus`: the GPU sizes azcluster knows, readable at any terminal width.

A wide terminal gets one table row per size. When that table does not fit (an 80-column terminal does
not), each size becomes a short block of `label  value` lines instead, so no size name, quota family or
price is ever cut to an ellipsis: those are what a user copies into a stack file or a quota request.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

TITLE = "GPU sizes (prices: pay-as-you-go Linux, see `--json` for sources)"


def _fields(size: Any) -> list[tuple[str, str]]:
    ib = size.infiniband
    price = size.price
    return [
        ("GPUs", f"{size.gpus}x {size.gpu_model}"),
        ("vCPU", str(size.vcpus)),
        ("InfiniBand", f"{ib.ports}x{ib.gbps_per_port} Gb/s {ib.generation}" if ib else "none"),
        ("quota family", size.quota_family),
        ("USD/h", f"{price.usd_per_hour:.2f}"),
        ("price as of", f"{price.date} {price.region} ({price.confidence})"),
    ]


def table(sizes: list[Any]) -> Table:
    grid = Table(title=TITLE)
    grid.add_column("size", no_wrap=True)
    for label, _ in _fields(sizes[0]) if sizes else ():
        grid.add_column(label, justify="right" if label in ("vCPU", "USD/h") else "left", no_wrap=True)
    for size in sizes:
        grid.add_row(size.name, *(value for _, value in _fields(size)))
    return grid


def blocks(sizes: list[Any], console: Console) -> list[Text]:
    """One block per size: its name, then `label  value` lines; values wrap under themselves."""
    width = console.width
    lines = [Text(TITLE, style="bold"), Text("")]
    label_width = max(len(label) for label, _ in _fields(sizes[0])) if sizes else 0
    for size in sizes:
        lines.append(Text(size.name, style="bold cyan"))
        for label, value in _fields(size):
            indent = " " * (2 + label_width + 2)
            wrapped = Text(value).wrap(console, max(width - len(indent), 20), overflow="fold")
            for index, part in enumerate(wrapped):
                part.rstrip()
                lead = f"  {label:<{label_width}}  " if index == 0 else indent
                lines.append(Text(lead) + part)
        lines.append(Text(""))
    return lines


def print_skus(sizes: list[Any], console: Console) -> None:
    """The table when it fits the terminal, else the blocks."""
    grid = table(sizes)
    natural = console.measure(grid, options=console.options.update(max_width=10_000)).maximum
    if natural <= console.width:
        console.print(grid)
        return
    for line in blocks(sizes, console):
        console.print(line, soft_wrap=True)

"""How a pool's capacity policy reads on a terminal: one row per pool (plan), in words a user checks."""

from __future__ import annotations

from typing import Any

from azcluster.components.capacity import PoolCapacity, SizeChoice


def zones_text(policy: PoolCapacity) -> str:
    """`1, then 2` with the cross-zone ones marked; `regional` when there is no zone to move to."""
    if policy.zones == (None,):
        return "regional (no zone to move to)"
    parts = []
    for zone in policy.zones:
        far = " (storage in another zone)" if policy.cross_zone(zone) else ""
        parts.append(f"{zone}{far}")
    text = ", then ".join(parts)
    moved = [
        f"island {index} in zone {zone}"
        + (" (reads storage across zones)" if policy.cross_zone(zone) else "")
        for index, zone in enumerate(policy.placed)
        if zone != policy.zones[0]
    ]
    return text + ("\nnow: " + "; ".join(moved) if moved else "")


def built_text(policy: PoolCapacity) -> str:
    """`now: island 0 as stand-in Standard_ND96isr_H200_v5 ($x/h per node)`, or '' when every island is
    built as the pool's size."""
    switched = []
    for index in range(len(policy.islands)):
        size = policy.island_size(index)
        if size.stand_in:
            price = f"${size.usd_per_hour:,.2f}/h per node" if size.usd_per_hour is not None else "no price"
            zone = policy.placed[index] if index < len(policy.placed) else None
            where = f" in zone {zone}" if zone else ""
            switched.append(
                f"island {index} as stand-in {size.name}{where} ({price}, quota {size.quota_family})"
            )
    return "\nnow: " + "; ".join(switched) if switched else ""


def size_text(size: SizeChoice) -> str:
    if not size.known:
        return f"{size.name} (unknown size)"
    role = "stand-in " if size.stand_in else ""
    price = f"${size.usd_per_hour:,.2f}/h" if size.usd_per_hour is not None else "no price"
    return f"{role}{size.name}: {price}, quota {size.quota_family}"


def wait_text(minutes: int) -> str:
    if minutes == 0:
        return "one try"
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"up to {hours} h {rest} min"
    return f"up to {hours} h" if hours else f"up to {rest} min"


def policy_table(policies: list[PoolCapacity]) -> Any:
    """`plan`'s table of what `up`/`grow` try when Azure has no room: zones, sizes, smallest island, wait."""
    from rich.table import Table

    table = Table(title="when Azure has no capacity (per pool)", title_justify="left")
    table.add_column("pool", no_wrap=True)
    table.add_column("zones, in order")
    table.add_column("sizes, in order")
    table.add_column("smallest island kept")
    table.add_column("keep trying")
    reserved = any(policy.reservation is not None for policy in policies)
    if reserved:
        table.add_column("capacity reservation")
    for policy in policies:
        row = [
            policy.pool,
            zones_text(policy),
            "\n".join(size_text(size) for size in policy.sizes) + built_text(policy),
            policy.minimum_text(),
            wait_text(policy.wait_minutes),
        ]
        table.add_row(*row, *([policy.reservation_text()] if reserved else []))
    return table

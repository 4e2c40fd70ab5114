"""How `hosts` prints hostfiles: on stdout, or one file per island in a folder."""

from __future__ import annotations

from pathlib import Path

from .hosts import Hostfile


def note_excluded(files: list[Hostfile]) -> None:
    """Say on stderr which islands' hostfiles leave nodes out (not running), so nobody counts on them."""
    from ..render import console, markup

    for hostfile in files:
        if hostfile.excluded:
            console.print(
                markup(
                    "[yellow]note:[/] {} node(s) of {}/{} are not running and are left out",
                    len(hostfile.excluded),
                    hostfile.pool,
                    hostfile.island,
                )
            )


def print_hostfiles(files: list[Hostfile], fmt: str = "plain", out_dir: Path | None = None) -> None:
    """Hostfiles on stdout (a `# pool/island` comment before each), or one file per island in out_dir."""
    import sys

    from ..render import console

    note_excluded(files)
    for hostfile in files:
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / f"hostfile.{hostfile.pool}.{hostfile.island}"
            path.write_text(hostfile.text(fmt), encoding="utf-8")
            console.print(f"wrote {path} ({len(hostfile.hosts)} hosts)")
            continue
        if len(files) > 1:
            sys.stdout.write(
                f"# pool {hostfile.pool} island {hostfile.island} ({hostfile.scale_set}): "
                f"{len(hostfile.hosts)} hosts\n"
            )
        sys.stdout.write(hostfile.text(fmt))
    sys.stdout.flush()

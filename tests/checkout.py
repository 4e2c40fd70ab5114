"""The checkout's own files as a fresh clone has them: tracked by git, nothing a developer left beside them.

A stack file someone made by following the README (`stacks/Pulumi.research.yaml`) is untracked; a test that
globbed or copied `stacks/` saw it and failed (the tour's `init research` found it already there). Tests
that read the shipped stacks, copy them, or let the CLI look stacks up by name use these instead. Outside
a git checkout (an unpacked sdist) every file there is shipped, so all of them count.
"""

from __future__ import annotations

import ast
import functools
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@functools.cache
def _git_tracked() -> frozenset[str] | None:
    """Paths (relative to REPO, '/'-separated) git tracks, or None when this is not a git checkout."""
    if shutil.which("git") is None:
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "-z", "--cached"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return frozenset(name for name in done.stdout.decode("utf-8", "replace").split("\0") if name)


def tracked(folder: str, pattern: str = "*") -> list[Path]:
    """The files of `folder` (relative to the checkout) matching `pattern` that a fresh clone has, sorted."""
    found = sorted(p for p in (REPO / folder).glob(pattern) if p.is_file() and "__pycache__" not in p.parts)
    known = _git_tracked()
    if known is None:
        return found
    return [p for p in found if p.relative_to(REPO).as_posix() in known]


def copy_tracked(folder: str, destination: Path) -> Path:
    """Copy `folder`'s tracked files (recursively) to `destination`, keeping their layout; returns it."""
    destination.mkdir(parents=True, exist_ok=True)
    for source in tracked(folder, "**/*"):
        target = destination / source.relative_to(REPO / folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return destination


def untracked(folder: str) -> list[str]:
    """Files in `folder` git neither tracks nor ignores (what a test must never see, nor leave behind)."""
    known = _git_tracked()
    if known is None:
        return []
    done = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--others", "--exclude-standard", "--", folder],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return sorted(name for name in done.stdout.decode("utf-8", "replace").split("\0") if name)


def python_ast(path: Path) -> ast.Module:
    """`ast.parse` of a checked-out source file.

    No retry: the spurious "SystemError: AST constructor recursion depth mismatch" seen under `make test`
    came from asyncio formatting a traceback (which on Python 3.11 parses source) when the collector freed a
    failed mock run's futures in the middle of this parse; azcluster.mockrun no longer formats one
    (tests/azcluster/test_mockrun.py), so a failure here is real.
    """
    return ast.parse(path.read_text(encoding="utf-8"), str(path))

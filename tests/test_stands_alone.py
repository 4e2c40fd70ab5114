"""The repository stands alone: no file sends a reader to notes outside it.

The design notes and the Azure facts live in docs/ (architecture.md, azure-facts.md). A pointer to a
folder beside the checkout (`../shared/...`) or to a design file that is not in the repository means
nothing to someone who clones it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "build", "dist"}
OUTSIDE = re.compile(r"\.\./shared|shared/reference/|shared/DESIGN|\bDESIGN\.md\b")


def files():
    """The repository's files: those git tracks when this is a checkout (an untracked scratch file is
    nobody else's business), else every file under it but caches and environments."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
        ).stdout.decode()
        yield from (REPO / name for name in listed.split("\0") if name and (REPO / name) != Path(__file__))
        return
    except (OSError, subprocess.SubprocessError):
        pass
    for path in REPO.rglob("*"):
        parts = path.relative_to(REPO).parts
        skipped = SKIP.intersection(parts) or any(part.endswith(".egg-info") for part in parts)
        if path.is_file() and not skipped and path != Path(__file__):
            yield path


def test_no_file_points_outside_the_repository():
    found = []
    for path in files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):  # binary, or listed by git but deleted here
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:100]}")
    assert not found, "point to docs/ instead:\n" + "\n".join(found)


def test_the_docs_it_points_to_exist_and_cite_their_sources():
    architecture = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    facts = (REPO / "docs" / "azure-facts.md").read_text(encoding="utf-8")
    assert "## Promises the command line keeps" in architecture
    for heading in ("## GPU sizes", "## InfiniBand islands", "## Storage", "## Resource Manager"):
        assert heading in facts
    sections = facts.split("\n## ")[1:]
    assert all("https://" in section for section in sections), (
        "every section of azure-facts.md cites a source"
    )
    for guide in ("CONTRIBUTING.md", "README.md"):
        text = (REPO / guide).read_text(encoding="utf-8")
        assert "docs/architecture.md" in text and "docs/azure-facts.md" in text, guide

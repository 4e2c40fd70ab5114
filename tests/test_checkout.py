"""Tests see the checkout as a fresh clone has it (tests/checkout.py, tests/conftest.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import checkout


@pytest.fixture
def clone(tmp_path, monkeypatch):
    """A git checkout with stacks/a.yaml tracked and stacks/b.yaml (and a __pycache__) left beside it."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    repo = tmp_path / "repo"
    (repo / "stacks" / "sub").mkdir(parents=True)
    (repo / "stacks" / "Pulumi.a.yaml").write_text("a: 1\n")
    (repo / "stacks" / "sub" / "x.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("__pycache__/\n")  # as the project's
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", ".gitignore", "stacks"], check=True)
    subprocess.run([*git, "commit", "-qm", "stacks"], check=True)
    (repo / "stacks" / "Pulumi.b.yaml").write_text("b: 1\n")
    (repo / "stacks" / "__pycache__").mkdir()
    (repo / "stacks" / "__pycache__" / "y.pyc").write_bytes(b"")
    monkeypatch.setattr(checkout, "REPO", repo)
    checkout._git_tracked.cache_clear()
    yield repo
    checkout._git_tracked.cache_clear()


def test_only_tracked_files_are_listed_and_copied(clone, tmp_path):
    assert checkout.tracked("stacks", "Pulumi.*.yaml") == [clone / "stacks" / "Pulumi.a.yaml"]
    copy = checkout.copy_tracked("stacks", tmp_path / "copy")
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()) == [
        "Pulumi.a.yaml",
        "sub/x.py",
    ]
    assert checkout.untracked("stacks") == ["stacks/Pulumi.b.yaml"]  # what the session check watches


def test_the_session_looks_stacks_up_in_a_copy_of_the_tracked_files(tracked_stacks):
    assert os.environ["AZCLUSTER_STACKS_DIR"] == str(tracked_stacks)
    names = sorted(p.name for p in tracked_stacks.iterdir())
    assert names == sorted(p.name for p in checkout.tracked("stacks"))
    assert "Pulumi.example.yaml" in names


def test_no_test_reads_the_checkouts_stacks_or_examples_folder_whole():
    """Globbing or copying stacks/ or examples/ directly sees what a developer left there: use
    tests.checkout.tracked / copy_tracked (reading one named, tracked file is fine)."""
    folder = r'(?:(?:REPO|ROOT)\s*/\s*"(?:stacks|examples)"\s*\)|\b(?:STACKS|EXAMPLES))'
    whole = re.compile(
        folder + r"\.(?:glob|rglob|iterdir)\(|copytree\(\s*\(?\s*(?:REPO|ROOT)\s*/\s*\"(?:stacks|examples)"
    )
    offenders = []
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if whole.search(line) and path.name not in {"checkout.py", "test_checkout.py"}:
                offenders.append(f"{path.relative_to(checkout.REPO)}:{number}: {line.strip()}")
    assert offenders == []

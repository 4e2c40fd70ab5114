"""The README's tour, followed literally on a machine with no ~/.ssh and no network, works end to end.

Each command is taken from README.md as written (not a copy of it), and run as a user would run it: a
subprocess in a fresh checkout's root (its `stacks/` copied, `.venv/bin/azcluster` the installed
script), with HOME an empty directory and every proxy pointed at a closed loopback port, so a command
that tried the network would fail rather than pass by luck.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.checkout import copy_tracked

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SCRIPT = Path(sys.executable).parent / "azcluster"


def _blocks(section: str) -> list[str]:
    """The ```sh lines of one README section (from its heading to the next heading of any level)."""
    text = README.read_text(encoding="utf-8")
    start = text.index(section)
    end = re.search(r"^#{2,3} ", text[start + len(section) :], re.M)
    body = text[start : start + len(section) + (end.start() if end else len(text))]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", body, re.S):
        lines += [line for line in block.splitlines() if line.strip()]
    return lines


@pytest.fixture
def checkout(tmp_path):
    """A checkout's root as the tour expects it: stacks/ and .venv/bin/azcluster; HOME empty."""
    if not SCRIPT.exists():
        pytest.skip(f"no installed azcluster script beside {sys.executable}")
    root = tmp_path / "checkout"
    copy_tracked("stacks", root / "stacks")  # a fresh clone's: never a stack file someone left there
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "azcluster").symlink_to(SCRIPT)
    home = tmp_path / "home"
    home.mkdir()
    dead = "http://127.0.0.1:9"  # discard port: nothing listens, a network attempt fails at once
    keep = {"PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        HOME=str(home), COLUMNS="80", HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead
    )
    return root, home, env


def test_the_tour_runs_literally_on_a_fresh_machine(checkout):
    root, home, env = checkout
    commands = _blocks("## A tour")
    assert [shlex.split(c, comments=True)[1] for c in commands] == [
        "init",
        "validate",
        "plan",
        "skus",
        "schema",
    ]
    for command in commands:
        done = subprocess.run(
            shlex.split(command, comments=True),
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
    stack = root / "stacks" / "Pulumi.research.yaml"
    assert "capacity_tib: 16" in stack.read_text()
    private = home / ".azcluster" / "ssh" / "id_ed25519"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert (root / "cluster.schema.json").stat().st_size > 0


def test_the_passphrase_step_works_without_azcluster_home_and_keeps_the_passphrase(checkout):
    if shutil.which("openssl") is None or shutil.which("bash") is None:
        pytest.skip("needs openssl and bash, as the README step does")
    root, home, env = checkout
    steps = [line for line in _blocks("### Deploying: up, down and the rest") if "passphrase" in line]
    script = "set -e\n" + "\n".join(steps) + '\necho "$PULUMI_CONFIG_PASSPHRASE_FILE"\n'
    first = subprocess.run(
        ["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert first.returncode == 0, first.stderr
    passphrase = Path(first.stdout.strip())
    assert passphrase == home / ".azcluster" / "passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    assert stat.S_IMODE(passphrase.parent.stat().st_mode) == 0o700
    secret = passphrase.read_text()
    assert len(secret.strip()) >= 40
    again = subprocess.run(
        ["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0 and passphrase.read_text() == secret  # re-running keeps the passphrase


def test_the_readme_describes_the_example_stacks_as_they_are():
    from ruamel.yaml import YAML

    text = " ".join(README.read_text(encoding="utf-8").split())
    described = dict(re.findall(r"`(example|h100-64|h200-1024)` \((.*?)\)(?: and|,|\.)", text))
    assert set(described) == {"example", "h100-64", "h200-1024"}
    for name, words in described.items():
        config = YAML(typ="safe", pure=True).load((ROOT / "stacks" / f"Pulumi.{name}.yaml").read_text())[
            "config"
        ]
        cluster = config["azcluster:cluster"]
        pool = cluster["pools"][0]
        assert words.startswith(f"{pool['nodes']} x "), (name, words)
        lustre = (cluster.get("storage") or {}).get("lustre")
        if lustre and "Lustre" in words:
            assert f"{lustre['capacity_tib']} TiB of Managed Lustre" in words
            assert lustre["sku"].removeprefix("AMLFS-Durable-") in words
            if "import_container" not in lustre:  # the file only shows how, in a comment
                assert "importing from" not in words and "show how to import" in words

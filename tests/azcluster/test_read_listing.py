"""runcommand.read_listing, the chunked read `status` (sinfo) and `cost` (sacct) share: the scripts run
under bash here as Run Command runs them on the login node (as root, by /bin/bash, only the last 4,096
bytes of stdout returned: runcommand.py's docstring cites the extension's source)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from azcluster.ops import runcommand

MARKER = "AZC-TEST"


def run_like_run_command(root: Path):
    def run_shell(_begin, lines, _timeout=0.0, _update=None) -> runcommand.Output:
        done = subprocess.run(
            ["bash", "-c", "\n".join(lines)],
            capture_output=True,
            text=True,
            env={**os.environ, "AZC_ROOT": str(root)},
            check=False,
        )
        return runcommand.Output(done.stdout[-4096:], done.stderr[-4096:])

    return run_shell


def script(make: str):
    """A script that saves what `make` prints, gzip'ed and base64'ed, then prints a chunk of it."""

    def lines(start: int) -> list[str]:
        head = ["set -eu", "set -o pipefail", 'f="${AZC_ROOT}/run/listing.b64"']
        if start == 0:
            head += ['mkdir -p "$(dirname "$f")"', f'{make} | gzip -9 | base64 -w0 >"$f"']
        return head + runcommand.chunk_lines(MARKER, start, 3600)

    return lines


def read(tmp_path: Path, monkeypatch, make: str, max_calls: int = 12, first=lambda _stdout: None) -> str:
    monkeypatch.setattr(runcommand, "run_shell", run_like_run_command(tmp_path))
    return runcommand.read_listing(
        None,
        script(make),
        MARKER,
        tool="lister",
        listing="the test listing",
        timeout=10,
        max_calls=max_calls,
        first=first,
    )


def test_a_listing_larger_than_one_answer_comes_back_exactly_over_several_calls(
    tmp_path, monkeypatch
) -> None:
    payload = base64.b64encode(os.urandom(9000)).decode()  # ~12 KB base64 after gzip: 4 calls
    (tmp_path / "payload").write_text(payload)
    calls: list[str] = []
    text = read(tmp_path, monkeypatch, f"cat {tmp_path / 'payload'}", first=calls.append)
    assert text == payload
    assert len(calls) == 1 and calls[0].startswith(f"{MARKER} ")


def test_a_tool_that_prints_nothing_is_named_with_its_first_stderr_line(tmp_path, monkeypatch) -> None:
    with pytest.raises(runcommand.ListingUnreadable) as caught:
        read(tmp_path, monkeypatch, "{ echo 'lister: cannot reach the controller' >&2; false; }")
    assert caught.value.tool_failed
    assert str(caught.value) == "lister failed on the login node: lister: cannot reach the controller"


def test_a_listing_over_the_call_budget_is_refused(tmp_path, monkeypatch) -> None:
    (tmp_path / "payload").write_text(base64.b64encode(os.urandom(9000)).decode())
    with pytest.raises(runcommand.ListingUnreadable) as caught:
        read(tmp_path, monkeypatch, f"cat {tmp_path / 'payload'}", max_calls=2)
    assert not caught.value.tool_failed
    assert str(caught.value) == "the test listing needs more than 2 Run Commands"


def test_a_listing_damaged_on_the_way_is_said(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(runcommand, "run_shell", run_like_run_command(tmp_path))
    damaged = [f'echo "{MARKER} 8 0"', "echo 'bm90Z3pp'", f"echo {MARKER}-END"]  # base64, but not gzip
    with pytest.raises(runcommand.ListingUnreadable, match="^the test listing came back damaged: "):
        runcommand.read_listing(
            None,
            lambda _start: damaged,
            MARKER,
            tool="lister",
            listing="the test listing",
            timeout=10,
            max_calls=3,
        )

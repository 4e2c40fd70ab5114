"""The root-file-system harness (tests/realroots.py): machines over a cached Debian root, loopback only.

What the real-daemon suites depend on, checked once here: each machine has its own host name, /tmp and
/run, shares the loopback network namespace it is given (and reaches the others there), resolves its own
host name, never writes the cached root, and leaves nothing running when closed.
"""

from __future__ import annotations

import os
import time

import pytest

from tests import realroots


def test_the_host_mirror_is_a_debian_archive_or_debootstraps_default() -> None:
    mirror = realroots.host_mirror()
    assert mirror is None or mirror.rstrip("/").endswith("/debian")


def test_a_root_is_cached_under_a_name_that_changes_with_its_package_list(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AZCLUSTER_TEST_CACHE", str(tmp_path))
    one = realroots.root_path("trixie", ["slurmd", "munge"])
    assert one == realroots.root_path("trixie", ["munge", "slurmd"])  # order does not matter
    assert one != realroots.root_path("trixie", ["slurmd", "munge", "gcc"])
    assert one.parent == tmp_path / "roots" and one.name.startswith("trixie-")


@pytest.fixture(scope="module")
def root():
    return realroots.root_or_skip("trixie")


def test_machines_share_loopback_but_not_names_tmp_or_the_root(root, tmp_path) -> None:
    info = realroots.root_info(root)
    assert info["suite"] == "trixie" and info["slurm"].startswith("24.11")
    with realroots.Loopback() as net:
        with (
            realroots.Machine(root, "lab-a", tmp_path / "a", net) as a,
            realroots.Machine(root, "lab-b", tmp_path / "b", net) as b,
        ):
            assert a.run(["hostname"]).stdout.strip() == "lab-a"
            assert b.run(["hostname"]).stdout.strip() == "lab-b"
            a.run(["sh", "-c", "echo a > /tmp/mine && echo a > /etc/written-by-a"])
            assert b.run(["cat", "/tmp/mine"]).returncode != 0
            assert a.path("/etc/written-by-a").read_text() == "a\n"
            assert not (root / "etc" / "written-by-a").exists()
            # a second loopback address (glibc's AI_ADDRCONFIG) and the machine's own name resolve
            addrs = a.run(["ip", "-o", "addr", "show", "lo"]).stdout
            assert "127.0.0.2/8" in addrs
            resolved = a.run(["python3", "-c", "import socket; print(socket.gethostbyname('lab-a'))"])
            assert resolved.stdout.strip() == "127.0.0.2"
            # one network namespace: b reaches a server in a
            server = a.popen(["python3", "-m", "http.server", "--bind", "127.0.0.1", "18080"])
            fetch = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:18080/').status)"
            for _ in range(50):
                got = b.run(["python3", "-c", fetch])
                if got.stdout.strip() == "200":
                    break
                time.sleep(0.2)
            assert got.stdout.strip() == "200"
            server.kill()
            server.wait()
            daemon = a.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"]).stdout.strip()
            inside_init = a.init_pid
        # closing ends every process the machine ran (its PID namespace is gone)
        for _ in range(50):
            if not os.path.exists(f"/proc/{inside_init}"):
                break
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{inside_init}")
        assert daemon.isdigit()

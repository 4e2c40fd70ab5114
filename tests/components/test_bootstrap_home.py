"""The shared home on the nodes: the real azc-mount-home.sh run against a fake node (bootstrap_fakeroot),
and what the rendered cloud-configs carry for it."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from azcluster.components import bootstrap
from azcluster.components.spec import ClusterSpec
from tests.components.bootstrap_fakeroot import FakeNode
from tests.components.test_bootstrap_render import _schema_check

SOURCE = "llmhome1a2b3c4d.file.core.windows.net:/llmhome1a2b3c4d/home"
HOST = "llmhome1a2b3c4d.file.core.windows.net"
OPTIONS = bootstrap.HOME_NFS_OPTIONS


def _spec(**home) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "pools": [{"name": "h100", "size": "Standard_ND96isr_H100_v5", "nodes": 4}],
            "storage": {"home": home},
        }
    )


@pytest.fixture
def node(tmp_path):
    node = FakeNode(tmp_path)
    node.node_env(_spec(), "h100", home=SOURCE)
    return node


def _mounts(node: FakeNode) -> list[str]:
    return [c for c in node.calls() if c.startswith(("mount", "umount"))]


def test_waits_while_the_name_resolves_to_the_public_endpoint(node):
    node.write("etc/fstab", "UUID=abc / ext4 defaults 0 1\n")
    run = node.run("azc-mount-home.sh")
    assert run.returncode == 75  # not resolvable yet: systemd retries
    assert "waiting for " + HOST in run.stderr
    node.dns(HOST, "20.60.1.2")  # the account's public address, before the private DNS record exists
    run = node.run("azc-mount-home.sh")
    assert run.returncode == 75 and "resolves to 20.60.1.2, not the private endpoint" in run.stderr
    assert _mounts(node) == []
    fstab = (node.root / "etc/fstab").read_text().splitlines()
    assert fstab == [
        "UUID=abc / ext4 defaults 0 1",
        f"{SOURCE} /home nfs {OPTIONS},_netdev,noauto,nofail 0 0",
    ]


def test_seeds_local_homes_onto_the_share_then_mounts_it_over_them_once(node):
    node.write("home/azureuser/.ssh/authorized_keys", "ssh-ed25519 AAAA me\n")
    node.dns(HOST, "10.42.3.5")
    run = node.run("azc-mount-home.sh")
    assert run.returncode == 0, run.stderr
    seed = "/run/azcluster/home-seed"
    assert _mounts(node) == [
        f"mount -t nfs -o {OPTIONS} {SOURCE} {seed}",
        f"umount {seed}",
        f"mount -t nfs -o {OPTIONS} {SOURCE} /home",
    ]
    copied = node.root / seed.lstrip("/") / "azureuser/.ssh/authorized_keys"
    assert copied.read_text() == "ssh-ed25519 AAAA me\n"
    assert f"{SOURCE} /home nfs rw 0 0" in (node.root / "proc/mounts").read_text()

    before = node.snapshot()
    node.clear_calls()
    assert node.run("azc-mount-home.sh").returncode == 0  # mounted: nothing to do
    assert node.snapshot() == before and _mounts(node) == []


def test_a_home_already_on_the_share_is_not_overwritten(node):
    node.write("home/azureuser/.bashrc", "local\n")
    node.write("run/azcluster/home-seed/azureuser/.bashrc", "shared\n")  # another node seeded first
    node.dns(HOST, "10.42.3.5")
    run = node.run("azc-mount-home.sh")
    assert run.returncode == 0, run.stderr
    assert (node.root / "run/azcluster/home-seed/azureuser/.bashrc").read_text() == "shared\n"
    assert "seeding done (0 new)" in run.stderr


def test_a_failed_mount_retries_and_installs_the_nfs_client_where_missing(node):
    node.dns(HOST, "10.42.3.5")
    node.flag("mount-fails")
    run = node.run("azc-mount-home.sh")
    assert run.returncode == 75 and "failed; retrying later" in run.stderr
    node.write("etc/os-release", "ID=ubuntu\nVERSION_CODENAME=jammy\n")
    client = node.bin / "mount.nfs.installed"
    run = node.run(
        "azc-mount-home.sh",
        missing=("mount.nfs",),
        APT_GET=str(node.bin / "apt-get"),
        APT_CREATES=str(client),
    )
    assert "apt-get install -y -q nfs-common" in node.calls()
    node.clear_calls()
    run = node.run("azc-mount-home.sh", missing=("mount.nfs",))  # no apt-get: clear message, retry
    assert run.returncode == 75 and "mount.nfs not found" in run.stderr


def test_without_a_share_nothing_happens(tmp_path):
    node = FakeNode(tmp_path)
    run = node.run("azc-mount-home.sh")
    assert run.returncode == 0 and "no shared home configured" in run.stderr
    assert node.calls() == []


def _document(text: str) -> dict:
    return YAML(typ="safe").load(text)


def _env(document: dict) -> dict[str, str]:
    content = next(f["content"] for f in document["write_files"] if f["path"] == bootstrap.NODE_ENV_PATH)
    return dict(line.split("=", 1) for line in content.splitlines() if not line.startswith("#"))


@pytest.mark.parametrize("role", ["compute", "login"])
def test_both_roles_mount_the_share_at_the_specs_path(role, tmp_path):
    spec = _spec(mount="/shared/home")
    if role == "compute":
        text = bootstrap.render_cloud_config(spec, "h100", 0, home_source=SOURCE)
    else:
        text = bootstrap.render_login_cloud_config(spec, None, None, home_source=SOURCE)
    _schema_check(tmp_path, text)  # cloud-init's own validator accepts it
    document = _document(text)
    env = _env(document)
    assert env["AZC_HOME_SOURCE"] == SOURCE
    assert env["AZC_HOME_MOUNT"] == "/shared/home"
    assert env["AZC_HOME_OPTIONS"] == OPTIONS
    paths = {f["path"] for f in document["write_files"]}
    assert f"{bootstrap.INSTALL_DIR}/azc-mount-home.sh" in paths
    assert f"{bootstrap.UNIT_DIR}/azc-mount-home.service" in paths
    assert any("azc-mount-home.service" in argv and "--no-block" in argv for argv in document["runcmd"])


def test_no_share_or_home_disabled_renders_no_home_mount():
    for spec, source in ((_spec(), None), (_spec(enabled=False), SOURCE)):
        document = _document(bootstrap.render_cloud_config(spec, "h100", 0, home_source=source))
        assert "AZC_HOME_SOURCE" not in _env(document)
        assert f"{bootstrap.UNIT_DIR}/azc-mount-home.service" not in {
            f["path"] for f in document["write_files"]
        }
        assert not any("azc-mount-home.service" in argv for argv in document["runcmd"])


def test_the_home_unit_never_blocks_boot():
    unit = bootstrap.read_script("azc-mount-home.service")
    assert "Restart=on-failure" in unit and "Type=simple" in unit
    assert "Before=" not in unit and "RequiredBy" not in unit

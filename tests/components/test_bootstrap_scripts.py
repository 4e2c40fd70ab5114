"""The node scripts' decisions, by running the real scripts against a fake node (see bootstrap_fakeroot):
which NCCL profile, which health checks run, what gets repaired, "no IB", and that a second run
changes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from azcluster.components import bootstrap
from azcluster.components.spec import ClusterSpec
from tests.components.bootstrap_fakeroot import SCRIPTS, FakeNode

SIZES = {
    "h100": "Standard_ND96isr_H100_v5",
    "a100": "Standard_ND96asr_v4",
    "mi300x": "Standard_ND96isr_MI300X_v5",
    "gb200": "Standard_ND128isr_NDR_GB200_v6",
    "gb300": "Standard_ND128isr_GB300_v6",
    "nch100": "Standard_NC80adis_H100_v5",
    "nca100": "Standard_NC96ads_A100_v4",
}


def _spec(blob: bool = False) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "llm",
            "location": "eastus",
            "pools": [{"name": name, "size": size, "nodes": 4} for name, size in SIZES.items()],
            "storage": {"blob": {"enabled": blob, "containers": ["datasets"]}},
        }
    )


@pytest.fixture
def node(tmp_path):
    return FakeNode(tmp_path)


def _steps(stdout: str) -> dict[str, tuple[str, str]]:
    steps = {}
    for line in stdout.splitlines():
        step, status, detail = line.split(": ", 2)
        steps[step] = (status, detail)
    return steps


def _env_lines(node: FakeNode) -> dict[str, str]:
    text = (node.root / "etc/azcluster/nccl.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


def _health(node: FakeNode, *args: str, **env: str) -> tuple[int, dict]:
    run = node.run("azc-health.sh", *args, **env)
    result = json.loads((node.root / "var/lib/azcluster/health.json").read_text())
    assert json.loads(run.stdout) == result
    return run.returncode, result


def _check(result: dict, name: str) -> dict:
    return next(check for check in result["checks"] if check["name"] == name)


# --- shellcheck -----------------------------------------------------------------------------------


SHIPPED = (*bootstrap.script_names(), *bootstrap.slurm_script_names(), *bootstrap.gb_script_names())


@pytest.mark.parametrize("script", [name for name in SHIPPED if name.endswith(".sh")])
def test_scripts_are_shellcheck_clean(script):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (Debian/Ubuntu: apt-get install -y shellcheck)")
    proc = subprocess.run(
        ["shellcheck", "-x", "--source-path=SCRIPTDIR", str(SCRIPTS / script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripts_are_strict_bash():
    for name in SHIPPED:
        text = (SCRIPTS / name).read_text()
        if name.endswith(".sh") and not name.endswith("-lib.sh"):  # libraries are sourced, not run
            assert text.startswith("#!/usr/bin/env bash\n"), name
            assert "\nset -euo pipefail\n" in text, name


# --- azc-prepare-node ----------------------------------------------------------------------------


def test_prepare_on_a_good_hpc_image_repairs_nothing_and_writes_the_nccl_environment(node):
    node.node_env(_spec(), "h100")
    node.hpc_image("ndv5")
    node.ib()
    run = node.run("azc-prepare-node.sh")
    assert run.returncode == 0, run.stderr
    steps = _steps(run.stdout)
    assert {step: status for step, (status, _) in steps.items()} == {
        "nvme": "ok",
        "nccl_conf": "ok",
        "fabricmanager": "ok",
        "peermem": "ok",
        "nccl_env": "repaired",  # first run writes the profile script
    }
    assert not [c for c in node.calls() if c.startswith(("systemctl restart", "modprobe", "mdadm", "mount "))]
    env = _env_lines(node)
    assert env == {
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "NCCL_SOCKET_IFNAME": "eth0",
        "NCCL_IB_PCI_RELAXED_ORDERING": "1",
        "UCX_IB_PCI_RELAXED_ORDERING": "on",
        "NCCL_TOPO_FILE": "/opt/microsoft/ndv5/topo.xml",
        "NCCL_IB_PKEY": "0",
        "UCX_IB_PKEY": "0x000b",
        "AZC_IB_PKEY": "0x800b",
    }
    profile = (node.root / "etc/profile.d/azcluster-nccl.sh").read_text()
    assert "export UCX_IB_PKEY=0x000b\n" in profile
    # The profile script is valid shell that exports what nccl.env says.
    out = subprocess.run(
        ["bash", "-c", f". {node.root}/etc/profile.d/azcluster-nccl.sh; echo $NCCL_TOPO_FILE $UCX_IB_PKEY"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["/opt/microsoft/ndv5/topo.xml", "0x000b"]
    # The image's own nccl.conf lines survive untouched.
    assert "NCCL_IGNORE_CPU_AFFINITY=1" in (node.root / "etc/nccl.conf").read_text()


def test_prepare_repairs_what_the_image_did_not_do_then_a_second_run_changes_nothing(node):
    node.node_env(_spec(), "h100")
    node.ib()
    node.write("opt/microsoft/ndv5-topo.xml", "<system/>\n")  # topology shipped, but never linked
    node.write("etc/systemd/system/nvme-raid.service", "[Service]\n")
    node.can_start("nvme-raid.service")
    node.can_start("nvidia-fabricmanager.service")
    node.flag("modprobe-works")
    run = node.run("azc-prepare-node.sh")
    assert run.returncode == 0, run.stdout + run.stderr
    steps = _steps(run.stdout)
    assert {step: status for step, (status, _) in steps.items()} == {
        "nvme": "repaired",
        "nccl_conf": "repaired",
        "fabricmanager": "repaired",
        "peermem": "repaired",
        "nccl_env": "repaired",
    }
    calls = node.calls()
    assert "systemctl restart nvme-raid.service" in calls
    assert "systemctl restart nvidia-fabricmanager.service" in calls
    assert "modprobe nvidia-peermem" in calls
    conf = (node.root / "etc/nccl.conf").read_text().splitlines()
    assert sorted(conf) == ["NCCL_IB_PCI_RELAXED_ORDERING=1", "NCCL_TOPO_FILE=/opt/microsoft/ndv5/topo.xml"]
    assert (node.root / "opt/microsoft/ndv5/topo.xml").read_text() == "<system/>\n"

    before = node.snapshot()
    node.clear_calls()
    again = node.run("azc-prepare-node.sh")
    assert again.returncode == 0
    assert {status for status, _ in _steps(again.stdout).values()} == {"ok"}
    assert node.snapshot() == before
    assert not [c for c in node.calls() if not c.startswith("systemctl is-active")]


def test_prepare_replaces_only_its_keys_in_an_existing_nccl_conf(node):
    node.node_env(_spec(), "a100")
    node.write("opt/microsoft/ndv4-topo.xml", "<system/>\n")
    node.write("etc/nccl.conf", "NCCL_TOPO_FILE=/wrong/topo.xml\nNCCL_IGNORE_CPU_AFFINITY=1\n")
    run = node.run("azc-prepare-node.sh")
    assert _steps(run.stdout)["nccl_conf"][0] == "repaired"
    assert sorted((node.root / "etc/nccl.conf").read_text().splitlines()) == [
        "NCCL_IB_PCI_RELAXED_ORDERING=1",
        "NCCL_IGNORE_CPU_AFFINITY=1",
        "NCCL_TOPO_FILE=/opt/microsoft/ndv4/topo.xml",
    ]


def test_prepare_uses_the_larger_partition_key_and_its_index(node):
    node.node_env(_spec(), "h100")
    node.hpc_image()
    node.ib(pkeys=("0x7fff", "0x8123"))
    node.run("azc-prepare-node.sh")
    env = _env_lines(node)
    assert (env["NCCL_IB_PKEY"], env["UCX_IB_PKEY"], env["AZC_IB_PKEY"]) == ("1", "0x0123", "0x8123")


def test_prepare_builds_nvme_scratch_itself_without_touching_the_os_disk(node):
    node.node_env(_spec(), "gb200")
    node.ib(ports=4)
    for index in range(4):
        node.write(f"sys/block/nvme{index}n1/device/model", "Microsoft NVMe Direct Disk v2           \n")
    node.write("sys/block/nvme4n1/device/model", "MSFT NVMe Accelerator v1.0              \n")  # OS disk
    run = node.run("azc-prepare-node.sh")
    status, detail = _steps(run.stdout)["nvme"]
    assert status == "repaired", detail
    mdadm = next(c for c in node.calls() if c.startswith("mdadm"))
    assert "--level=0 --raid-devices=4 /dev/nvme0n1 /dev/nvme1n1 /dev/nvme2n1 /dev/nvme3n1" in mdadm
    assert "nvme4n1" not in mdadm
    assert "mkfs.xfs -f /dev/md128" in node.calls()
    assert "mount -o noatime /dev/md128 /mnt/resource_nvme" in node.calls()


def test_prepare_reports_what_it_cannot_repair(node):
    node.node_env(_spec(), "h100")
    node.hpc_image()
    (node.state / "active/nvidia-fabricmanager.service").unlink()  # down, and will not start
    run = node.run("azc-prepare-node.sh")
    assert run.returncode == 1
    assert _steps(run.stdout)["fabricmanager"] == (
        "failed",
        "nvidia-fabricmanager.service not active after restart",
    )


@pytest.mark.parametrize(
    ("pool", "present", "absent"),
    [
        (
            "nch100",
            {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "NCCL_SOCKET_IFNAME": "eth0"},
            ("NCCL_IB_PKEY", "NCCL_TOPO_FILE"),
        ),
        (
            "nca100",
            {
                "NCCL_TOPO_FILE": "/opt/microsoft/ncv4/topo.xml",
                "NCCL_GRAPH_FILE": "/opt/microsoft/ncv4/graph.xml",
            },
            ("NCCL_IB_PCI_RELAXED_ORDERING", "UCX_IB_PKEY"),
        ),
        ("mi300x", {"NCCL_IB_PCI_RELAXED_ORDERING": "1", "UCX_IB_PKEY": "0x000b"}, ("CUDA_DEVICE_ORDER",)),
        ("gb200", {"NCCL_IB_PKEY": "0", "NCCL_IB_PCI_RELAXED_ORDERING": "1"}, ("NCCL_TOPO_FILE",)),
        ("gb300", {"NCCL_IB_PKEY": "0", "NCCL_IB_PCI_RELAXED_ORDERING": "1"}, ("NCCL_TOPO_FILE",)),
    ],
)
def test_nccl_environment_per_profile(node, pool, present, absent):
    text = node.node_env(_spec(), pool)
    if "AZC_IB_PORTS=0" not in text:
        node.ib()
    node.write("opt/microsoft/ncv4-topo.xml", "<system/>\n")
    node.write("opt/microsoft/ncv4-graph.xml", "<graphs/>\n")
    node.run("azc-prepare-node.sh")
    env = _env_lines(node)
    assert present.items() <= env.items()
    assert not set(absent) & set(env)


def test_prepare_does_nothing_on_a_login_node(node):
    node.write("etc/azcluster/node.env", "AZC_ROLE=login\n")
    run = node.run("azc-prepare-node.sh")
    assert run.returncode == 0
    assert _steps(run.stdout) == {"node": ("skipped", "role login is not a GPU node")}
    assert node.calls() == []


# --- azc-health -------------------------------------------------------------------------------------


def _aznhc(node: FakeNode, sku: str, fails: bool = False) -> None:
    error = 'echo "ERROR:  nhc:  Health check failed:  check_gpu_xid: GPU Xid 79 detected" >>"$log"\nexit 1\n'
    node.write(f"opt/azurehpc/test/azurehpc-health-checks/conf/{sku}.conf", "* || check_gpu_count 8\n")
    node.write(
        "opt/azurehpc/test/azurehpc-health-checks/run-health-checks.sh",
        '#!/bin/bash\necho "aznhc $*" >>"$CALLS"\nlog="$2"\necho "Running health checks" >>"$log"\n'
        + (error if fails else "exit 0\n"),
    )


def test_health_of_a_good_h100_node_runs_aznhc_once_per_boot(node):
    node.node_env(_spec(), "h100")
    node.hpc_image()
    node.ib()
    node.gpus(8)
    _aznhc(node, "nd96isr_h100_v5")
    code, result = _health(node)
    assert code == 0, result
    assert result["healthy"] is True
    assert {c["name"]: c["ok"] for c in result["checks"]} == {
        "gpu": True,
        "infiniband": True,
        "nvme": True,
        "nccl_conf": True,
        "fabricmanager": True,
        "peermem": True,
        "aznhc": True,
    }
    assert _check(result, "gpu")["detail"] == "8 GPUs of 8: 8x NVIDIA H100 80GB HBM3"
    assert _check(result, "infiniband")["detail"] == "8 of 8 ports ACTIVE at >= 400 Gb/s"
    assert [c for c in node.calls() if c.startswith("aznhc")] == [
        f"aznhc -o {node.root}/var/lib/azcluster/aznhc.log"
    ]
    parsed = bootstrap.parse_health_result((node.root / "var/lib/azcluster/health.json").read_text())
    assert parsed.healthy and parsed.summary() == "healthy" and parsed.size == "Standard_ND96isr_H100_v5"

    node.clear_calls()
    code, result = _health(node)  # same boot: AzNHC's verdict is repeated, not re-run
    assert code == 0 and "aznhc" not in " ".join(node.calls())
    assert _check(result, "aznhc")["detail"].startswith("AzNHC passed (run at ")

    node.boot("boot-2")
    _health(node)
    assert [c for c in node.calls() if c.startswith("aznhc")]


def test_a_failed_aznhc_run_keeps_the_node_unhealthy_in_quick_mode(node):
    node.node_env(_spec(), "h100")
    node.hpc_image()
    node.ib()
    node.gpus(8)
    _aznhc(node, "nd96isr_h100_v5", fails=True)
    code, result = _health(node, "--mode", "full")
    assert code == 1 and result["healthy"] is False
    assert _check(result, "aznhc")["detail"].endswith("check_gpu_xid: GPU Xid 79 detected")
    node.clear_calls()
    code, result = _health(node, "--mode", "quick")
    assert code == 1 and not _check(result, "aznhc")["ok"]
    assert not [c for c in node.calls() if c.startswith("aznhc")]
    summary = bootstrap.parse_health_result(json.dumps(result)).summary()
    assert summary.startswith("aznhc: AzNHC: ERROR:")


def test_sizes_without_aznhc_get_the_basic_checks_only(node):
    # NC H100 v5 has no AzNHC configuration azcluster runs (GB sizes: tests/components/test_gb_health.py)
    node.node_env(_spec(), "nch100")
    node.gpus(2)
    node.mounted("/dev/md128 /mnt/resource_nvme xfs rw 0 0")
    _aznhc(node, "nc80adis_h100_v5")  # present on the image, but not one azcluster runs
    code, result = _health(node, "--mode", "full")
    assert code == 0, result
    aznhc = _check(result, "aznhc")
    assert aznhc["skipped"] and "basic GPU and IB checks only" in aznhc["detail"]
    assert not [c for c in node.calls() if c.startswith("aznhc")]
    assert _check(result, "fabricmanager")["skipped"]
    assert "nvlink_fabric" not in {c["name"] for c in result["checks"]}  # GB checks only on GB nodes


def test_no_ib_on_an_ib_size_is_a_clear_failure(node):
    node.node_env(_spec(), "h100")
    node.hpc_image()
    node.gpus(8)
    code, result = _health(node, "--mode", "quick")
    assert code == 1
    ib = _check(result, "infiniband")
    assert ib["ok"] is False and ib["skipped"] is False
    assert ib["detail"].startswith(
        "no IB: no InfiniBand ports under /sys/class/infiniband (expected 8 x 400 Gb/s)"
    )


def test_no_ib_on_a_size_without_ib_is_skipped(node):
    node.node_env(_spec(), "nch100")
    node.gpus(2)
    node.mounted("/dev/md128 /mnt/resource_nvme xfs rw 0 0")
    code, result = _health(node)
    assert code == 0, result
    ib = _check(result, "infiniband")
    assert ib == {
        "name": "infiniband",
        "ok": True,
        "skipped": True,
        "detail": "no IB: this size has no InfiniBand",
    }


def test_ports_down_or_slow_are_named(node):
    node.node_env(_spec(), "h100")
    node.hpc_image()
    node.gpus(8)
    node.ib(overrides={3: ("1: DOWN", 400), 5: ("4: ACTIVE", 200)})
    code, result = _health(node, "--mode", "quick")
    assert code == 1
    assert _check(result, "infiniband")["detail"] == (
        "6 of 8 ports ACTIVE at 400 Gb/s; mlx5_ib3/1 DOWN mlx5_ib5/1 200 Gb/s"
    )


@pytest.mark.parametrize(
    ("setup", "detail"),
    [
        (lambda n: n.gpus(7), "found 7 of 8 GPUs (7x NVIDIA H100 80GB HBM3)"),
        (lambda n: n.flag("nvidia-smi-fails"), "nvidia-smi -L failed: NVIDIA-SMI has failed because"),
    ],
)
def test_gpu_problems_are_named(node, setup, detail):
    node.node_env(_spec(), "h100")
    node.hpc_image()
    node.ib()
    setup(node)
    code, result = _health(node, "--mode", "quick")
    assert code == 1
    assert _check(result, "gpu")["detail"].startswith(detail)


def test_missing_nvidia_smi_is_reported_not_a_crash(node):
    node.node_env(_spec(), "h100")
    node.gpus(8)
    code, result = _health(node, "--mode", "quick", NVIDIA_SMI=str(node.bin / "absent"))
    assert code == 1
    assert _check(result, "gpu")["detail"] == "nvidia-smi not found (8 /dev/nvidiaN device files)"


def test_amd_gpus_are_counted_with_rocm_smi(node):
    node.node_env(_spec(), "mi300x")
    node.ib()
    node.gpus(8)
    code, result = _health(node, "--mode", "quick")
    assert _check(result, "gpu") == {
        "name": "gpu",
        "ok": True,
        "skipped": False,
        "detail": "8 GPUs of 8: AMD GPU",
    }
    assert not any(c.startswith("nvidia-smi") for c in node.calls())


def test_health_on_a_bare_machine_without_node_env_never_crashes(node):
    code, result = _health(node)
    assert code == 1
    assert {c["name"] for c in result["checks"]} == {
        "gpu",
        "infiniband",
        "nvme",
        "nccl_conf",
        "fabricmanager",
        "peermem",
        "aznhc",
    }
    assert _check(result, "infiniband")["detail"].startswith("no IB:")
    assert _check(result, "gpu")["detail"] == "no GPUs found"


def test_health_rejects_bad_arguments(node):
    assert node.run("azc-health.sh", "--mode", "sometimes").returncode == 2


# --- azc-mount-lustre --------------------------------------------------------------------------------


def _fstab_lines(node: FakeNode, mountpoint: str) -> list[str]:
    return [
        line
        for line in (node.root / "etc/fstab").read_text().splitlines()
        if line.split()[1:2] == [mountpoint]
    ]


def test_lustre_waits_for_its_name_then_mounts_once(node):
    node.node_env(_spec(), "h100", lustre="lustre-mgs.llm.azcluster.internal")
    node.write("etc/fstab", "UUID=abc / ext4 defaults 0 1\n")
    run = node.run("azc-mount-lustre.sh")
    assert run.returncode == 75  # EX_TEMPFAIL: systemd retries (Restart=on-failure)
    assert "waiting for lustre-mgs.llm.azcluster.internal to resolve" in run.stderr
    assert not [c for c in node.calls() if c.startswith("mount")]
    entry = (
        "lustre-mgs.llm.azcluster.internal@tcp:/lustrefs /lustre lustre "
        "noatime,flock,_netdev,noauto,nofail 0 0"
    )
    assert _fstab_lines(node, "/lustre") == [entry]

    node.dns("lustre-mgs.llm.azcluster.internal", "10.42.8.4")
    run = node.run("azc-mount-lustre.sh")
    assert run.returncode == 0, run.stderr
    assert "mount -t lustre -o noatime,flock 10.42.8.4@tcp:/lustrefs /lustre" in node.calls()
    assert (node.root / "lustre").is_dir()

    before = node.snapshot()
    node.clear_calls()
    assert node.run("azc-mount-lustre.sh").returncode == 0
    assert node.snapshot() == before
    assert not [c for c in node.calls() if c.startswith("mount")]
    assert (node.root / "etc/fstab").read_text().startswith("UUID=abc / ext4 defaults 0 1\n")


def test_lustre_fstab_entry_follows_a_new_host(node):
    node.write("etc/fstab", "old@tcp:/lustrefs /lustre lustre noatime,flock,_netdev 0 0\n")
    node.run("azc-mount-lustre.sh", AZC_LUSTRE_HOST="10.42.8.9")
    assert _fstab_lines(node, "/lustre") == [
        "10.42.8.9@tcp:/lustrefs /lustre lustre noatime,flock,_netdev,noauto,nofail 0 0"
    ]
    assert "mount -t lustre -o noatime,flock 10.42.8.9@tcp:/lustrefs /lustre" in node.calls()


def test_lustre_without_a_client_retries_and_without_a_host_does_nothing(node):
    run = node.run("azc-mount-lustre.sh", missing=("mount.lustre",), AZC_LUSTRE_HOST="10.0.0.4")
    assert run.returncode == 75 and "no Lustre client" in run.stderr
    before = node.snapshot()
    node.clear_calls()
    run = node.run("azc-mount-lustre.sh")  # no AZC_LUSTRE_HOST: nothing to do
    assert run.returncode == 0 and "no Lustre file system configured" in run.stderr
    assert node.calls() == [] and node.snapshot() == before


def test_login_node_installs_microsofts_lustre_client_when_the_image_has_none(node):
    node.write("etc/os-release", 'ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n')
    client = node.bin / "mount.lustre.installed"
    run = node.run(
        "azc-mount-lustre.sh",
        AZC_LUSTRE_HOST="10.42.8.4",
        AZC_LUSTRE_CLIENT_PKG=bootstrap.DEFAULT_LUSTRE_CLIENT_PACKAGE,
        APT_GET=str(node.bin / "apt-get"),
        APT_CREATES=str(client),
        MOUNT_LUSTRE=str(client),
    )
    assert run.returncode == 0, run.stderr
    assert (node.root / "etc/apt/sources.list.d/amlfs.list").read_text() == (
        "deb https://packages.microsoft.com/repos/amlfs-jammy/ jammy main\n"
    )
    assert (node.root / "etc/apt/trusted.gpg.d/microsoft.gpg").read_text() == "dearmored-key\n"
    calls = node.calls()
    assert f"apt-get install -y -q {bootstrap.DEFAULT_LUSTRE_CLIENT_PACKAGE}" in calls
    assert calls.index("apt-get update -q") < calls.index(
        f"apt-get install -y -q {bootstrap.DEFAULT_LUSTRE_CLIENT_PACKAGE}"
    )
    assert "mount -t lustre -o noatime,flock 10.42.8.4@tcp:/lustrefs /lustre" in calls


# --- azc-mount-blob ---------------------------------------------------------------------------------


def test_blob_mount_uses_the_managed_identity(node):
    from ruamel.yaml import YAML

    node.node_env(_spec(blob=True), "h100", blob="llmdata")
    node.write("etc/fuse.conf", "# mount_max = 1000\n")
    run = node.run("azc-mount-blob.sh", AZC_BLOB_CLIENT_ID="00000000-1111-2222-3333-444444444444")
    assert run.returncode == 0, run.stderr
    config_path = node.root / "etc/azcluster/blobfuse2-datasets.yaml"
    config = YAML(typ="safe").load(config_path.read_text())
    assert config["azstorage"] == {
        "type": "block",
        "account-name": "llmdata",
        "container": "datasets",
        "endpoint": "https://llmdata.blob.core.windows.net",
        "mode": "msi",
        "appid": "00000000-1111-2222-3333-444444444444",
    }
    assert config["file_cache"]["path"] == "/mnt/resource_nvme/blobfuse2-cache/datasets"
    assert oct(config_path.stat().st_mode & 0o777) == "0o600"
    assert f"blobfuse2 mount /mnt/blob/datasets --config-file={config_path}" in node.calls()
    assert (node.root / "etc/fuse.conf").read_text() == "# mount_max = 1000\nuser_allow_other\n"

    before = node.snapshot()
    node.clear_calls()
    assert (
        node.run("azc-mount-blob.sh", AZC_BLOB_CLIENT_ID="00000000-1111-2222-3333-444444444444").returncode
        == 0
    )
    assert node.snapshot() == before and node.calls() == []


def test_blobfuse2_is_installed_from_microsofts_repository_on_ubuntu(node):
    node.node_env(_spec(blob=True), "h100", blob="llmdata")
    node.write("etc/os-release", 'ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n')
    blobfuse2 = node.bin / "blobfuse2.installed"
    run = node.run(
        "azc-mount-blob.sh",
        APT_GET=str(node.bin / "apt-get"),
        APT_CREATES=str(blobfuse2),
        BLOBFUSE2=str(blobfuse2),
    )
    assert run.returncode == 0, run.stderr
    assert (node.root / "etc/apt/sources.list.d/microsoft-prod.list").read_text() == (
        "deb https://packages.microsoft.com/ubuntu/22.04/prod jammy main\n"
    )
    assert "apt-get install -y -q blobfuse2" in node.calls()


def test_blob_without_blobfuse2_retries(node):
    node.node_env(_spec(blob=True), "h100", blob="llmdata")
    run = node.run("azc-mount-blob.sh", missing=("blobfuse2",))
    assert run.returncode == 75 and "blobfuse2 not installed" in run.stderr

"""Rendering the nodes' cloud-config and custom data from the spec and catalogue, host-name topology,
and the health-extension contract."""

from __future__ import annotations

import base64
import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from azcluster.components import bootstrap
from azcluster.components.catalog import gpu_sizes
from azcluster.components.spec import ClusterSpec

SIZE_NAMES = sorted(gpu_sizes())
LUSTRE = "lustre-mgs.llm.azcluster.internal"
SYSTEM_PYTHON = "/usr/bin/python3"


def _spec(
    name: str = "llm", nodes: int = 250, blob: bool = True, sizes: list[str] = SIZE_NAMES
) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": name,
            "location": "eastus",
            "pools": [
                {"name": f"p{index}", "size": size, "nodes": nodes} for index, size in enumerate(sizes)
            ],
            "storage": {"blob": {"enabled": blob, "containers": ["datasets", "checkpoints"]}},
        }
    )


def _load(text: str) -> dict:
    assert text.startswith("#cloud-config\n")
    return YAML(typ="safe").load(text)


def _files(document: dict) -> dict[str, dict]:
    return {entry["path"]: entry for entry in document["write_files"]}


def _node_env(document: dict) -> dict[str, str]:
    text = _files(document)[bootstrap.NODE_ENV_PATH]["content"]
    return dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))


def _schema_check(tmp_path: Path, text: str) -> None:
    if shutil.which("cloud-init") is None:
        pytest.skip("cloud-init is not installed (Debian/Ubuntu: apt-get install -y cloud-init)")
    path = tmp_path / "user-data.yaml"
    path.write_text(text)
    proc = subprocess.run(
        ["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Valid cloud-config" in proc.stdout


# --- GPU nodes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size_name", SIZE_NAMES)
def test_every_size_family_renders_valid_cloud_config(tmp_path, size_name):
    spec = _spec()
    pool = next(p for p in spec.pools if p.size == size_name)
    size = gpu_sizes()[size_name]
    text = bootstrap.render_cloud_config(spec, pool, 1, LUSTRE, "llmdata")
    _schema_check(tmp_path, text)
    document = _load(text)
    env = _node_env(document)
    assert env["AZC_PROFILE"] == size.profile
    assert env["AZC_SIZE"] == size_name
    assert int(env["AZC_GPUS"]) == size.gpus
    assert env["AZC_GPU_VENDOR"] == size.gpu_vendor
    assert int(env["AZC_IB_PORTS"]) == (size.infiniband.ports if size.infiniband else 0)
    assert int(env["AZC_NVME_DISKS"]) == size.nvme_disks
    assert (env["AZC_POOL"], env["AZC_ISLAND"], env["AZC_ISLAND_KEY"]) == (pool.name, "1", f"{pool.name}-i1")
    assert env["AZC_AZNHC"] == ("1" if size_name.lower() in bootstrap.AZNHC_SIZES else "0")
    assert env["AZC_LUSTRE_HOST"] == LUSTRE
    assert env["AZC_BLOB_CONTAINER"] == "datasets"
    assert (env["AZC_HEALTH_PORT"], env["AZC_HEALTH_PATH"]) == (
        str(bootstrap.HEALTH_PORT),
        bootstrap.HEALTH_PATH,
    )


def test_cloud_config_without_storage_is_valid_and_mounts_nothing(tmp_path):
    spec = _spec(blob=False)
    text = bootstrap.render_cloud_config(spec, "p0", 0)
    _schema_check(tmp_path, text)
    document = _load(text)
    env = _node_env(document)
    assert not {key for key in env if key.startswith(("AZC_LUSTRE", "AZC_BLOB"))}
    files = _files(document)
    assert f"{bootstrap.UNIT_DIR}/azc-mount-lustre.service" not in files
    assert f"{bootstrap.UNIT_DIR}/azc-mount-blob.service" not in files
    enable = document["runcmd"][1]
    assert enable == [
        "systemctl",
        "enable",
        "azc-prepare.service",
        "azc-health.timer",
        "azc-health-server.service",
        "azc-users.timer",
    ]


def test_blob_account_is_mounted_only_when_the_spec_asks():
    spec = _spec(blob=True).model_copy(deep=True)
    no_mount = ClusterSpec.model_validate(
        spec.model_dump() | {"storage": {"blob": {"enabled": True, "mount": False}}}
    )
    assert "AZC_BLOB_ACCOUNT" not in _node_env(
        _load(bootstrap.render_cloud_config(no_mount, "p0", 0, None, "acct"))
    )
    env = _node_env(
        _load(bootstrap.render_cloud_config(spec, "p0", 0, None, "acct", blob_client_id="abc-123"))
    )
    assert (env["AZC_BLOB_ACCOUNT"], env["AZC_BLOB_CLIENT_ID"]) == ("acct", "abc-123")


def test_cloud_config_carries_the_shipped_scripts_and_units_and_starts_them():
    document = _load(bootstrap.render_cloud_config(_spec(), "p0", 0, LUSTRE, "llmdata"))
    files = _files(document)
    for name in bootstrap.script_names():
        entry = files[f"{bootstrap.INSTALL_DIR}/{name}"]
        assert entry["content"] == bootstrap.read_script(name)
        assert entry["permissions"] == ("0644" if name == "azc-lib.sh" else "0755")
    units = {path.rsplit("/", 1)[1]: entry["content"] for path, entry in files.items() if "/systemd/" in path}
    assert set(units) == {
        "azc-prepare.service",
        "azc-health.service",
        "azc-health.timer",
        "azc-health-server.service",
        "azc-mount-lustre.service",
        "azc-mount-blob.service",
        "azc-users.service",
        "azc-users.timer",
    }
    for content in units.values():  # every ExecStart names a file the cloud-config writes
        for line in content.splitlines():
            if line.startswith("ExecStart="):
                program = next(
                    w for w in line.split("=", 1)[1].split() if w.startswith(bootstrap.INSTALL_DIR)
                )
                assert program in files
    assert document["runcmd"][0] == ["systemctl", "daemon-reload"]
    started = document["runcmd"][2]
    assert started[:3] == ["systemctl", "start", "--no-block"]
    assert "azc-health.timer" in started and "azc-health.service" not in started
    assert "azc-mount-lustre.service" in started


def test_systemd_accepts_the_units(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (part of systemd)")
    shipped = Path(bootstrap.__file__).parent / "units"
    assert sorted(bootstrap.unit_names()) == sorted(p.name for p in shipped.iterdir())
    units = []
    for name in bootstrap.unit_names():
        path = tmp_path / name
        path.write_text(bootstrap.read_script(name))
        units.append(str(path))
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, check=False
    )
    # The scripts are not installed here, so ExecStart= paths are missing; anything else is a unit error.
    problems = [line for line in proc.stderr.splitlines() if "is not executable" not in line]
    assert problems == []


def test_units_never_block_boot_on_storage():
    for name in ("azc-mount-lustre.service", "azc-mount-blob.service"):
        text = bootstrap.read_script(name)
        assert "Type=simple" in text and "Restart=on-failure" in text and "StartLimitIntervalSec=0" in text


def test_island_index_and_unknown_sizes_are_rejected_clearly():
    spec = _spec(nodes=150)  # 2 islands of 75
    with pytest.raises(ValueError, match="islands 0..1, not 2"):
        bootstrap.render_cloud_config(spec, "p0", 2)
    with pytest.raises(ValueError, match="has no pool 'nope'"):
        bootstrap.render_cloud_config(spec, "nope", 0)
    odd = ClusterSpec.model_validate(
        {"name": "x", "location": "eastus", "pools": [{"name": "a", "size": "Standard_X1", "nodes": 1}]}
    )
    with pytest.raises(ValueError, match="not in azcluster's catalogue"):
        bootstrap.render_cloud_config(odd, "a", 0)
    with pytest.raises(ValueError, match="only letters, digits"):
        bootstrap.render_cloud_config(spec, "p0", 0, "host; rm -rf /")


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("\n\t")))
def test_file_contents_survive_the_yaml_literal_blocks_exactly(text):
    rendered = bootstrap.dump("# test", [bootstrap.file_entry("/x", text, "0644")], None)
    assert _files(_load(rendered))["/x"]["content"] == text


# --- custom data ------------------------------------------------------------------------------------


def _decode(data: str) -> str:
    return gzip.decompress(base64.b64decode(data, validate=True)).decode()


def test_custom_data_is_gzip_base64_of_the_cloud_config_and_deterministic():
    spec = _spec()
    data = bootstrap.custom_data(spec, "p0", 0, LUSTRE, "llmdata")
    assert _decode(data) == bootstrap.render_cloud_config(spec, "p0", 0, LUSTRE, "llmdata")
    assert data == bootstrap.custom_data(spec, "p0", 0, LUSTRE, "llmdata")


def test_the_largest_configuration_stays_under_azures_custom_data_limit():
    long_name = "a" * 40
    spec = _spec(name=long_name, nodes=10_000)
    biggest = 0
    for pool in spec.pools:  # islands differ only in their number: the last has the longest
        data = bootstrap.custom_data(
            spec,
            pool,
            len(pool.island_sizes()) - 1,
            "lustre-mgs." + long_name + ".azcluster.internal",
            "storageaccountname0123456",
            blob_client_id="00000000-1111-2222-3333-444444444444",
            blob_endpoint="https://storageaccountname0123456.privatelink.blob.core.windows.net",
            home_source="storageaccountname012345.file.core.windows.net:/storageaccountname012345/home",
        )
        biggest = max(biggest, len(data))
    assert biggest <= bootstrap.CUSTOM_DATA_LIMIT
    assert biggest < bootstrap.CUSTOM_DATA_LIMIT // 2, "headroom for future scripts"


def test_login_custom_data_too_large_is_a_clear_error():
    hosts = {f"p{i}-i0": [f"host-{i}-{n:06d}-{n * 7919 % 100003}" for n in range(3000)] for i in range(8)}
    with pytest.raises(ValueError, match=r"Azure allows 65535.*azcluster hosts"):
        bootstrap.login_custom_data(_spec(), LUSTRE, None, bootstrap.hostfile(hosts))


def test_cloud_init_reads_gzip_custom_data_as_cloud_config(tmp_path):
    probe = "import cloudinit.user_data"
    if (
        not Path(SYSTEM_PYTHON).exists()
        or subprocess.run([SYSTEM_PYTHON, "-c", probe], check=False).returncode
    ):
        pytest.skip("cloud-init's Python package is not installed (apt-get install -y cloud-init)")
    blob = tmp_path / "custom-data.gz"
    blob.write_bytes(base64.b64decode(bootstrap.custom_data(_spec(), "p0", 0, LUSTRE, "llmdata")))
    code = (
        "import sys, tempfile\n"
        "from cloudinit import helpers\n"
        "from cloudinit.user_data import UserDataProcessor\n"
        "paths = helpers.Paths({'cloud_dir': tempfile.mkdtemp()})\n"
        "msg = UserDataProcessor(paths).process(open(sys.argv[1], 'rb').read())\n"
        "parts = [p for p in msg.walk() if not p.is_multipart()]\n"
        "print(parts[0].get_content_type(), len(parts))\n"
    )
    proc = subprocess.run([SYSTEM_PYTHON, "-c", code, str(blob)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["text/cloud-config", "1"]


# --- login node --------------------------------------------------------------------------------------


def test_login_cloud_config_has_the_mounts_and_one_hostfile_per_island(tmp_path):
    spec = _spec()
    files = bootstrap.hostfile(
        {"p0-i0": ["llm-p0-i0-000001", "llm-p0-i0-000000"], "p0-i1": ["llm-p0-i1-000000"]}
    )
    text = bootstrap.render_login_cloud_config(spec, LUSTRE, "llmdata", files)
    _schema_check(tmp_path, text)
    document = _load(text)
    written = _files(document)
    assert written[f"{bootstrap.HOSTFILE_DIR}/p0-i0"]["content"] == "llm-p0-i0-000000\nllm-p0-i0-000001\n"
    assert written[f"{bootstrap.HOSTFILE_DIR}/p0-i1"]["content"] == "llm-p0-i1-000000\n"
    env = _node_env(document)
    assert env["AZC_ROLE"] == "login"
    assert env["AZC_LUSTRE_CLIENT_PKG"] == bootstrap.DEFAULT_LUSTRE_CLIENT_PACKAGE
    assert env["AZC_BLOB_CACHE"] == "/mnt/blobfuse2-cache"
    assert f"{bootstrap.INSTALL_DIR}/azc-health.sh" not in written
    assert document["runcmd"][2] == [
        "systemctl",
        "start",
        "--no-block",
        "azc-mount-lustre.service",
        "azc-mount-blob.service",
        "azc-users.timer",
    ]


def test_login_cloud_config_without_storage_or_hosts_is_valid(tmp_path):
    text = bootstrap.render_login_cloud_config(_spec(blob=False), None, None)
    _schema_check(tmp_path, text)
    # nothing is mounted or started but the team's users applier, which waits for the shared home's file
    assert _load(text)["runcmd"][1:] == [
        ["systemctl", "enable", "azc-users.timer"],
        ["systemctl", "start", "--no-block", "azc-users.timer"],
    ]
    with pytest.raises(ValueError, match="hostfile name"):
        bootstrap.render_login_cloud_config(_spec(), None, None, {"../etc/passwd": "x\n"})


# --- topology ------------------------------------------------------------------------------------------


def test_computer_name_prefix_names_pool_and_island():
    assert bootstrap.computer_name_prefix("llm", "h100", 0) == "llm-h100-i0-"
    assert bootstrap.computer_name_prefix("LLM_Prod", "H100", 12) == "llm-prod-h100-i12-"


def test_computer_name_prefix_fits_azure_and_dns_limits():
    prefix = bootstrap.computer_name_prefix("c" * 80, "gpupool", 3)
    assert len(prefix) == bootstrap.COMPUTER_NAME_PREFIX_MAX
    assert prefix.endswith("-gpupool-i3-")
    host = prefix + "00000A"
    assert len(host) <= 63  # one DNS label
    with pytest.raises(ValueError, match="too long"):
        bootstrap.computer_name_prefix("llm", "p" * 60, 0)
    with pytest.raises(ValueError, match="no letters or digits"):
        bootstrap.computer_name_prefix("llm", "--", 0)


def test_host_names_parse_back_to_pool_and_island():
    spec = _spec(nodes=250)
    seen = set()
    for pool in spec.pools:
        for island in range(len(pool.island_sizes())):
            prefix = bootstrap.computer_name_prefix(spec.name, pool.name, island)
            assert prefix not in seen
            seen.add(prefix)
            parsed = bootstrap.parse_computer_name(prefix + "0000VU")
            assert parsed == bootstrap.ComputerName(spec.name, pool.name, island, "0000VU")
            assert parsed.island_key == bootstrap.island_key(pool.name, island)
    assert bootstrap.parse_computer_name("llm-login") is None
    assert bootstrap.parse_computer_name("my-big-cluster-h100-i2-00000a.internal.cloudapp.net").pool == "h100"


def test_group_by_island_and_hostfiles():
    hosts = [
        "llm-h100-i1-00000B",
        "llm-h100-i0-00000a",
        "llm-h100-i0-000009",
        "llm-login",
        "llm-h100-i0-00000a",
    ]
    groups = bootstrap.group_by_island(hosts)
    assert set(groups) == {"h100-i0", "h100-i1"}
    files = bootstrap.hostfile(groups)
    assert files == {"h100-i0": "llm-h100-i0-000009\nllm-h100-i0-00000a\n", "h100-i1": "llm-h100-i1-00000B\n"}
    assert bootstrap.hostfile({"empty": []}) == {"empty": ""}


# --- health contract --------------------------------------------------------------------------------


def test_health_extension_settings_match_the_node_endpoint():
    settings = bootstrap.health_extension_settings()
    assert settings["protocol"] == "http"
    assert (settings["port"], settings["requestPath"]) == (bootstrap.HEALTH_PORT, bootstrap.HEALTH_PATH)
    assert 5 <= settings["intervalInSeconds"] <= 60
    assert 1 <= settings["numberOfProbes"] <= 24
    assert settings["gracePeriod"] <= 14400
    assert (bootstrap.HEALTH_EXTENSION_TYPE, bootstrap.HEALTH_EXTENSION_VERSION) == (
        "ApplicationHealthLinux",
        "2.0",
    )


def test_parse_health_result_rejects_other_shapes():
    with pytest.raises(ValueError, match="not an azcluster health result"):
        bootstrap.parse_health_result('{"healthy": "yes", "checks": []}')
    with pytest.raises(ValueError):
        bootstrap.parse_health_result("<html>")

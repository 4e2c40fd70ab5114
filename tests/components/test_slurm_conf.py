"""Slurm's configuration rendered from the spec: partitions per pool, slots per island, one switch per
island, GPUs as GRES, memory reserve, accounting, and the `extra` extension point."""

from __future__ import annotations

import pytest

from azcluster.components.bootstrap import slurm
from azcluster.components.catalog import find_size
from azcluster.components.spec import ClusterSpec

H100 = "Standard_ND96isr_H100_v5"
MI300X = "Standard_ND96isr_MI300X_v5"
NC = "Standard_NC96ads_A100_v4"


def _spec(pools: list[dict], **slurm_options: object) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {"name": "llm", "location": "eastus", "pools": pools, "slurm": slurm_options}
    )


def _settings(spec: ClusterSpec, **changes: object) -> slurm.SlurmSettings:
    return slurm.SlurmSettings.for_cluster(spec, slurm.default_dns_zone(spec), **changes)


def _entries(text: str, first_key: str) -> list[dict[str, str]]:
    return [entry for entry in slurm.parse_conf(text) if first_key in entry]


def _globals(text: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for entry in slurm.parse_conf(text):
        if len(entry) == 1:
            merged.update(entry)
    return merged


def test_every_pool_is_a_partition_and_the_first_is_the_default() -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 250}, {"name": "mi", "size": MI300X, "nodes": 8}])
    text = slurm.render_slurm_conf(spec, _settings(spec))
    partitions = {entry["PartitionName"]: entry for entry in _entries(text, "PartitionName")}
    assert set(partitions) == {"h100", "mi"}
    assert partitions["h100"]["Default"] == "YES" and partitions["mi"]["Default"] == "NO"
    # 250 nodes at 100 per island: three islands, each with 100 slots (the placement-group limit).
    assert partitions["h100"]["Nodes"] == "h100-i0-[000-099],h100-i1-[000-099],h100-i2-[000-099]"
    assert partitions["mi"]["Nodes"] == "mi-i0-[000-099]"


def test_default_partition_can_name_another_pool() -> None:
    spec = _spec(
        [{"name": "a", "size": H100, "nodes": 2}, {"name": "b", "size": H100, "nodes": 2}],
        default_partition="b",
    )
    partitions = {
        e["PartitionName"]: e["Default"]
        for e in _entries(slurm.render_slurm_conf(spec, _settings(spec)), "PartitionName")
    }
    assert partitions == {"a": "NO", "b": "YES"}


def test_node_slots_carry_catalogue_hardware_less_the_os_reserve_and_island_features() -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 16}])
    nodes = _entries(slurm.render_slurm_conf(spec, _settings(spec)), "NodeName")
    assert len(nodes) == 1
    node = nodes[0]
    size = find_size(H100)
    total = size.memory_gib * 1024
    assert node["NodeName"] == "h100-i0-[000-099]"
    assert node["CPUs"] == str(size.vcpus)
    assert node["RealMemory"] == str(total - total * 5 // 100)
    assert node["Gres"] == "gpu:8"
    assert node["Feature"] == "h100,h100-i0"
    assert node["State"] == "CLOUD"


def test_nodes_declare_the_cpu_layout_the_catalogue_knows_and_cpus_alone_where_it_does_not() -> None:
    spec = _spec(
        [
            {"name": "h100", "size": H100, "nodes": 2},
            {"name": "nc", "size": "Standard_NC96ads_A100_v4", "nodes": 1},
        ]
    )
    h100, nc = _entries(slurm.render_slurm_conf(spec, _settings(spec)), "NodeName")
    cpu = find_size(H100).cpu
    assert (h100["CPUs"], h100["Sockets"], h100["CoresPerSocket"], h100["ThreadsPerCore"]) == (
        "96",
        str(cpu.sockets),
        str(cpu.cores_per_socket),
        str(cpu.threads_per_core),
    )
    assert nc["CPUs"] == "96" and "Sockets" not in nc and "ThreadsPerCore" not in nc


def test_a_catalogue_cpu_layout_must_add_up_to_the_vcpus() -> None:
    row = find_size(H100).model_dump()
    row["cpu"] = {**row["cpu"], "cores_per_socket": 40}
    with pytest.raises(ValueError, match="must equal vcpus"):
        type(find_size(H100)).model_validate(row)


def test_memory_reserve_has_a_floor_and_follows_the_spec() -> None:
    size = find_size(H100)
    assert slurm.node_hardware(size, 0).memory_mb == size.memory_gib * 1024 - 1024
    assert slurm.node_hardware(size, 10).memory_mb == size.memory_gib * 1024 * 90 // 100


def test_topology_has_one_switch_per_island_and_no_root() -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 250}, {"name": "nc", "size": NC, "nodes": 3}])
    switches = _entries(slurm.render_topology_conf(spec), "SwitchName")
    assert [s["SwitchName"] for s in switches] == ["h100-i0", "h100-i1", "h100-i2", "nc-i0"]
    assert all("Switches" not in s for s in switches)  # nothing joins two islands
    assert switches[1]["Nodes"] == "h100-i1-[000-099]"


def test_gres_names_nvidia_and_amd_device_files() -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 2}, {"name": "mi", "size": MI300X, "nodes": 2}])
    gres = {e["NodeName"]: e for e in _entries(slurm.render_gres_conf(spec, _settings(spec)), "NodeName")}
    assert gres["h100-i0-[000-099]"]["File"] == "/dev/nvidia[0-7]"
    assert gres["mi-i0-[000-099]"]["File"] == "/dev/dri/renderD[128-135]"
    assert all(entry["Name"] == "gpu" for entry in gres.values())


def test_controller_is_found_by_dns_name_and_configless_is_on() -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 2}])
    params = _globals(slurm.render_slurm_conf(spec, _settings(spec)))
    assert params["SlurmctldHost"] == "llm-login(slurmctld.llm.azcluster.internal)"
    # cloud_reg_addrs is defunct since 23.11 (its behaviour is the default): never rendered
    assert params["SlurmctldParameters"].split(",") == ["enable_configless"]
    assert params["TopologyPlugin"] == "topology/tree"
    assert params["SelectType"] == "select/cons_tres"
    assert params["GresTypes"] == "gpu"
    assert params["MpiDefault"] == "pmix"
    assert params["AccountingStorageType"] == "accounting_storage/none"
    # Power saving is on (freed slots are powered down, hidden) but never suspends an idle node.
    assert int(params["SuspendTime"]) >= 365 * 24 * 3600
    assert params["SuspendProgram"] == params["ResumeProgram"] == "/bin/true"


def test_accounting_points_at_slurmdbd_on_the_controller() -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 2}], accounting={"enabled": True})
    params = _globals(slurm.render_slurm_conf(spec, _settings(spec)))
    assert params["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert params["AccountingStorageHost"] == "slurmctld.llm.azcluster.internal"


def test_accounting_enforces_associations_counts_gpus_and_shares_fairly() -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 2}], accounting={"enabled": True})
    params = _globals(slurm.render_slurm_conf(spec, _settings(spec, accounting_port=6819)))
    assert params["AccountingStorageEnforce"] == "associations,limits,qos"
    assert params["AccountingStorageTRES"] == "gres/gpu"
    assert params["PriorityType"] == "priority/multifactor"
    assert int(params["PriorityWeightFairshare"]) > int(params["PriorityWeightAge"]) > 0
    assert params["AccountingStoragePort"] == "6819"
    elsewhere = _globals(slurm.render_slurm_conf(spec, _settings(spec, accounting_host="db.example")))
    assert elsewhere["AccountingStorageHost"] == "db.example"
    without = _globals(
        slurm.render_slurm_conf(_spec([{"name": "h100", "size": H100, "nodes": 2}]), _settings(spec))
    )
    assert "PriorityType" not in without and "AccountingStorageEnforce" not in without


def test_gpu_partitions_split_cores_and_memory_over_the_gpus() -> None:
    spec = _spec(
        [{"name": "h100", "size": H100, "nodes": 2}, {"name": "mi", "size": MI300X, "nodes": 1}],
        reserved_cores=8,
    )
    partitions = {
        e["PartitionName"]: e
        for e in _entries(slurm.render_slurm_conf(spec, _settings(spec)), "PartitionName")
    }
    # ND H100 v5: 96 vCPUs less 8 reserved over 8 GPUs; 1900 GiB less the 5 % reserve over 8 GPUs
    assert partitions["h100"]["DefCpuPerGPU"] == str((96 - 8) // 8)
    assert partitions["h100"]["DefMemPerGPU"] == str((1900 * 1024 - 1900 * 1024 * 5 // 100) // 8)
    size = find_size(MI300X)
    assert partitions["mi"]["DefCpuPerGPU"] == str((size.vcpus - 8) // size.gpus)


def test_extra_replaces_parameters_whatever_their_case_and_adds_new_ones() -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 2}])
    extra = {"suspendprogram": "/usr/local/bin/suspend", "ReturnToService": "1"}
    text = slurm.render_slurm_conf(spec, _settings(spec), extra)
    params = _globals(text)
    assert params["suspendprogram"] == "/usr/local/bin/suspend"
    assert params["ReturnToService"] == "1"
    assert sum(1 for line in text.splitlines() if line.lower().startswith("returntoservice=")) == 1


@pytest.mark.parametrize("extra", [{"Bad Key": "x"}, {"Ok": "two\nlines"}])
def test_extra_refuses_what_would_break_the_file(extra: dict[str, str]) -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 2}])
    with pytest.raises(ValueError):
        slurm.render_slurm_conf(spec, _settings(spec), extra)


def test_per_slot_ports_give_each_slot_its_own_line_and_port() -> None:
    spec = _spec([{"name": "gpu", "size": H100, "nodes": 2, "island_max_nodes": 2}])
    settings = _settings(spec, per_slot_ports=True, slurmd_port=7000)
    nodes = _entries(slurm.render_slurm_conf(spec, settings), "NodeName")
    assert [(n["NodeName"], n["Port"]) for n in nodes] == [("gpu-i0-000", "7001"), ("gpu-i0-001", "7002")]


def test_hardware_override_replaces_the_catalogue() -> None:
    spec = _spec([{"name": "gpu", "size": H100, "nodes": 1}])
    settings = _settings(spec, hardware={"gpu": slurm.NodeHardware(cpus=1, memory_mb=500, gpus=0)})
    node = _entries(slurm.render_slurm_conf(spec, settings), "NodeName")[0]
    assert (node["CPUs"], node["RealMemory"], "Gres" in node) == ("1", "500", False)
    assert "NodeName" not in slurm.render_gres_conf(spec, settings)


def test_pool_without_infiniband_has_slots_for_every_node() -> None:
    spec = _spec([{"name": "nc", "size": NC, "nodes": 150}])
    assert list(slurm.slot_names(spec))[-1] == "nc-i0-149"
    assert len(list(slurm.slot_names(spec))) == 150


def test_health_check_interval_exceeds_slurms_health_check_timeout() -> None:
    # 26.05: "HealthCheckTimeout (60) must be less than HealthCheckInterval"
    spec = _spec([{"name": "h100", "size": H100, "nodes": 2}])
    params = _globals(slurm.render_slurm_conf(spec, _settings(spec)))
    assert int(params["HealthCheckInterval"]) > 60
    assert "HealthCheckTimeout" not in params  # not a 24.11 key; its default (60) applies


def test_cgroup_plugin_is_v2_explicitly() -> None:
    assert "CgroupPlugin=cgroup/v2" in slurm.render_cgroup_conf().splitlines()


def test_plugstack_includes_each_hosts_own_plugins_so_amd_nodes_load_no_pyxis() -> None:
    spec = _spec([{"name": "h100", "size": H100, "nodes": 2}])
    text = slurm.render_plugstack_conf(spec)
    assert text == f"include {slurm.PLUGSTACK_LOCAL}\n"
    assert "pyxis" not in text  # only an NVIDIA node's own file names Pyxis (azc-slurm-node.sh)


def test_an_elastic_cluster_declares_only_the_slots_its_vms_back() -> None:
    pools = [{"name": "h100", "size": H100, "nodes": 20, "island_max_nodes": 16}]
    fixed = _spec(pools)
    elastic = ClusterSpec.model_validate(
        {"name": "llm", "location": "eastus", "pools": pools, "elastic": {"enabled": True}}
    )
    assert elastic.elastic_enabled
    assert list(slurm.slot_names(fixed)).count("h100-i1-015") == 1  # 16 slots per island
    names = list(slurm.slot_names(elastic))
    sizes = elastic.pools[0].island_sizes()
    assert sum(sizes) == 20 and len(names) == 20
    for island, vms in enumerate(sizes):
        assert f"h100-i{island}-{vms - 1:03d}" in names and f"h100-i{island}-{vms:03d}" not in names

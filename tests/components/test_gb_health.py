"""GB200/GB300 node health: the real azc-health.sh (with azc-gb-health-lib.sh) on a fake GB node, healthy
and broken, and that only GB pools' cloud-config carries the GB checks.

The fake tools print what the real ones print, in the documented formats:
- `nvidia-smi -q`: one block per GPU ("GPU 0008:01:00.0"), with the "Fabric" section (State, Status,
  CliqueId, ClusterUUID, Health/Bandwidth) as NVIDIA's nvidia-smi documentation lists it for NVLink-switch
  systems (the same block reads "N/A" on GPUs without a fabric);
- `nvidia-imex-ctl -q` prints the daemon's state (READY, WAITING_FOR_PEERS, ...; the states DCGM's
  DCGM_FI_IMEX_DAEMON_STATUS field lists), `-N` the node table, connectivity matrix and "Domain State: UP"
  (as the AWS PCS user guide's "Validate the IMEX setup" shows it);
- `dcgmi diag -r 1`: the result table ("| Persistence Mode | Fail |" then an "| Error |" row), as NVIDIA's
  DCGM user guide ("DCGM Diagnostics") shows it;
- the kernel log's XID lines: "NVRM: Xid (PCI:0008:01:00): 79, pid=..., GPU has fallen off the bus."
  (NVIDIA's XID catalogue, docs.nvidia.com/deploy/xid-errors).
"""

from __future__ import annotations

import json

import pytest
from ruamel.yaml import YAML

from azcluster.components import bootstrap
from azcluster.components.spec import ClusterSpec
from tests.components.bootstrap_fakeroot import FakeNode

GB200 = "Standard_ND128isr_NDR_GB200_v6"
GB300 = "Standard_ND128isr_GB300_v6"
UUID = "5d8f2a3c-1b4e-4f6a-9c7d-0e1f2a3b4c5d"

NVIDIA_SMI = r"""
echo "nvidia-smi $*" >>"$CALLS"
n=$(cat "$STATE/gpus")
if [[ "${1:-}" == -L ]]; then
  for ((i = 0; i < n; i++)); do
    echo "GPU $i: NVIDIA GB300 (UUID: GPU-0000000$i-1111-2222-3333-444444444444)"
  done
  exit 0
fi
echo "==============NVSMI LOG=============="
echo
echo "Driver Version                            : 580.167.08"
echo "Attached GPUs                             : $n"
for ((i = 0; i < n; i++)); do
  f="$STATE/fabric$i"; [[ -e "$f" ]] || f="$STATE/fabric"
  IFS='|' read -r st ss cl uu bw <"$f"
  echo "GPU 0008:0$i:00.0"
  echo "    Product Name                          : NVIDIA GB300"
  echo "    Persistence Mode                      : Enabled"
  echo "    Fabric"
  echo "        State                             : $st"
  echo "        Status                            : $ss"
  echo "        CliqueId                          : $cl"
  echo "        ClusterUUID                       : $uu"
  echo "        Health"
  echo "            Bandwidth                     : $bw"
  echo "    Processes                             : None"
  echo
done
"""

IMEX_CTL = r"""
echo "nvidia-imex-ctl $*" >>"$CALLS"
case "$1" in
  -q) # one state per call, the last one standing: a daemon that is starting, then READY
    head -n1 "$STATE/imex-status"
    if [[ $(wc -l <"$STATE/imex-status") -gt 1 ]]; then sed -i 1d "$STATE/imex-status"; fi ;;
  -N)
    echo "Connectivity Table Legend:"
    echo "C - Connected - Ready for operation"
    echo
    echo "12/7/2026 10:02:11.580"
    echo "Nodes:"
    echo "Node #0   - 10.0.1.4        - READY                - Version: 580.167.08"
    echo "Node #1   - 10.0.1.5        - READY                - Version: 580.167.08"
    echo
    echo " Nodes From\To  0   1"
    echo "       0        C   C"
    echo "       1        C   C"
    echo
    echo "Domain State: $(cat "$STATE/imex-domain")" ;;
esac
"""

DCGM_PASS = """\
Successfully ran diagnostic for group.
+---------------------------+------------------------------------------------+
| Diagnostic                | Result                                         |
+===========================+================================================+
|-----  Metadata  ----------+------------------------------------------------|
| DCGM Version              | 4.5.3                                          |
| Driver Version Detected   | 580.167.08                                     |
|-----  Deployment  --------+------------------------------------------------|
| Denylist                  | Pass                                           |
| NVML Library              | Pass                                           |
| CUDA Main Library         | Pass                                           |
| Permissions and OS Blocks | Pass                                           |
| Persistence Mode          | Pass                                           |
| Environment Variables     | Pass                                           |
| Page Retirement/Row Remap | Pass                                           |
| Graphics Processes        | Pass                                           |
| Inforom                   | Pass                                           |
+---------------------------+------------------------------------------------+
"""

DCGM_FAIL = DCGM_PASS.replace(
    "| Persistence Mode          | Pass                                           |\n",
    "| Persistence Mode          | Fail                                           |\n"
    "| Error                     | Persistence mode for GPU 0 is currently disab  |\n"
    "|                           | led. The DCGM diagnostic requires peristence   |\n",
)

DCGMI = r"""
echo "dcgmi $*" >>"$CALLS"
cat "$STATE/dcgm-out"
exit "$(cat "$STATE/dcgm-rc")"
"""

XID_79 = "[  812.331] NVRM: Xid (PCI:0008:01:00): 79, pid=2291, name=python3, GPU has fallen off the bus.\n"
XID_13 = "[  101.004] NVRM: Xid (PCI:0008:02:00): 13, pid=1201, Graphics Exception: ESR 0x404600\n"


def _spec(size: str) -> ClusterSpec:
    return ClusterSpec.model_validate(
        {"name": "llm", "location": "eastus", "pools": [{"name": "gb", "size": size, "nodes": 18}]}
    )


class GbNode(FakeNode):
    """A GB node: 4 GPUs in one NVLink domain, 4 IB ports, NVMe scratch, relaxed ordering set."""

    def __init__(self, tmp, size: str = GB300) -> None:
        super().__init__(tmp)
        for name, body in {"nvidia-smi": NVIDIA_SMI, "nvidia-imex-ctl": IMEX_CTL, "dcgmi": DCGMI}.items():
            path = self.bin / name
            path.write_text("#!/usr/bin/env bash\n" + body.lstrip("\n"))
            path.chmod(0o755)
        self.node_env(_spec(size), "gb")
        self.env_extra.update(
            IMEX_CTL=str(self.bin / "nvidia-imex-ctl"),
            DCGMI=str(self.bin / "dcgmi"),
            AZC_KERNEL_LOG=str(self.state / "kern.log"),
            AZC_GB_LIB=str(self.gb_lib()),
            IMEX_RETRY_S="0",
        )
        self.gpus(4)
        self.ib(ports=4, rate=800 if size == GB300 else 400)
        self.mounted("/dev/md128 /mnt/resource_nvme xfs rw 0 0")
        self.write("etc/nccl.conf", "NCCL_IB_PCI_RELAXED_ORDERING=1\n")
        self.fabric("Completed", "Success", "32766", UUID, "Full")
        (self.state / "imex-status").write_text("READY\n")
        (self.state / "imex-domain").write_text("UP\n")
        self.dcgm(DCGM_PASS, 0)
        (self.state / "kern.log").write_text(XID_13)  # an application's XID: no reset needed

    @staticmethod
    def gb_lib():
        from tests.components.bootstrap_fakeroot import SCRIPTS

        return SCRIPTS / "azc-gb-health-lib.sh"

    def fabric(self, *fields: str, gpu: int | None = None) -> None:
        (self.state / ("fabric" if gpu is None else f"fabric{gpu}")).write_text("|".join(fields) + "\n")

    def dcgm(self, out: str, rc: int) -> None:
        (self.state / "dcgm-out").write_text(out)
        (self.state / "dcgm-rc").write_text(str(rc))

    def imex_peers(self, *ips: str) -> None:
        self.write("etc/nvidia-imex/nodes_config.cfg", "".join(f"{ip}\n" for ip in ips))

    def health(self, *args: str) -> tuple[int, dict]:
        run = self.run("azc-health.sh", *args)
        result = json.loads((self.root / "var/lib/azcluster/health.json").read_text())
        return run.returncode, {c["name"]: c for c in result["checks"]} | {"_healthy": result["healthy"]}


@pytest.fixture(params=[GB200, GB300], ids=["gb200", "gb300"])
def gb(request, tmp_path):
    return GbNode(tmp_path, request.param)


def test_a_healthy_gb_node_passes_every_gb_check_and_records_its_nvlink_domain(gb):
    code, checks = gb.health()
    assert code == 0, checks
    assert checks["_healthy"] is True
    assert checks["nvlink_fabric"]["ok"]
    assert checks["nvlink_fabric"]["detail"] == (
        f"4 GPUs: fabric Completed/Success, NVLink domain {UUID}.32766"
    )
    assert (gb.root / "var/lib/azcluster/nvlink-domain").read_text() == f"{UUID}.32766\n"
    assert checks["imex"]["skipped"] and "set up per job" in checks["imex"]["detail"]
    assert checks["xid"]["ok"]  # XID 13 is an application error, not one that needs a reset
    assert checks["dcgm"]["ok"] and checks["dcgm"]["detail"] == "dcgmi diag -r 1 passed"
    assert checks["gpu"]["detail"].startswith("4 GPUs of 4")
    assert checks["infiniband"]["ok"]
    assert "dcgmi diag -r 1" in gb.calls()


def test_gb300_accepts_400_gbps_ports_where_sources_disagree_and_refuses_less(tmp_path):
    node = GbNode(tmp_path, GB300)
    node.ib(ports=4, rate=400)
    code, checks = node.health()
    assert code == 0 and checks["infiniband"]["detail"] == "4 of 4 ports ACTIVE at >= 400 Gb/s"
    node.ib(ports=4, rate=400, overrides={2: ("4: ACTIVE", 200)})
    code, checks = node.health("--mode", "quick")
    assert code == 1 and "mlx5_ib2/1 200 Gb/s" in checks["infiniband"]["detail"]


@pytest.mark.parametrize(
    ("fabric", "detail"),
    [
        (("In Progress", "N/A", "N/A", "N/A", "N/A"), "GPU 0 fabric state In Progress"),
        (("Completed", "Failure", "32766", UUID, "Full"), "GPU 0 fabric status Failure"),
        (("Completed", "Success", "32766", UUID, "Degraded"), "GPU 0 NVLink bandwidth Degraded"),
        (("Completed", "Success", "N/A", "N/A", "N/A"), "GPU 0 has no NVLink domain"),
    ],
)
def test_a_bad_fabric_is_named_and_no_domain_is_recorded(gb, fabric, detail):
    gb.fabric(*fabric)
    code, checks = gb.health()
    assert code == 1 and not checks["_healthy"]
    assert checks["nvlink_fabric"]["detail"].startswith(detail)
    assert not (gb.root / "var/lib/azcluster/nvlink-domain").exists()


def test_gpus_in_two_nvlink_domains_or_one_gpu_short_fail(gb):
    gb.fabric("Completed", "Success", "32767", UUID, "Full", gpu=3)
    code, checks = gb.health()
    assert code == 1 and "GPUs report 2 NVLink domains" in checks["nvlink_fabric"]["detail"]
    (gb.state / "fabric3").unlink()
    gb.gpus(3)
    code, checks = gb.health("--mode", "quick")
    assert code == 1 and "3 GPUs report a fabric state, 4 expected" in checks["nvlink_fabric"]["detail"]


def test_imex_is_checked_while_a_job_holds_it(gb):
    gb.imex_peers("10.0.1.4", "10.0.1.5")
    code, checks = gb.health()
    assert code == 0 and checks["imex"]["detail"] == "nvidia-imex READY, 2 peers, domain UP"
    (gb.state / "imex-status").write_text("WAITING_FOR_PEERS\n")
    (gb.state / "imex-domain").write_text("DEGRADED\n")
    gb.clear_calls()
    code, checks = gb.health("--mode", "quick")
    assert code == 1
    assert [c for c in gb.calls() if c == "nvidia-imex-ctl -q"] == ["nvidia-imex-ctl -q"] * 3  # asked again
    assert checks["imex"]["detail"] == (
        "nvidia-imex is WAITING_FOR_PEERS with 2 peers configured (domain DEGRADED)"
    )


def test_an_imex_daemon_still_starting_is_asked_again_not_failed(gb):
    gb.imex_peers("10.0.1.4", "10.0.1.5")
    (gb.state / "imex-status").write_text("INITIALIZING\nWAITING_FOR_PEERS\nREADY\n")
    code, checks = gb.health()
    assert code == 0 and checks["imex"]["detail"] == "nvidia-imex READY, 2 peers, domain UP"


def test_imex_peers_without_nvidia_imex_ctl_fail(gb):
    gb.imex_peers("10.0.1.4")
    code, checks = gb.health(**{})
    assert code == 0
    gb.env_extra["IMEX_CTL"] = str(gb.bin / "no-such-imex-ctl")
    code, checks = gb.health("--mode", "quick")
    assert code == 1 and checks["imex"]["detail"].startswith("nvidia-imex-ctl not found")


def test_a_critical_xid_fails_the_node_for_the_rest_of_the_boot(gb):
    (gb.state / "kern.log").write_text(XID_13 + XID_79)
    code, checks = gb.health()
    assert code == 1
    assert checks["xid"]["detail"].startswith("Xid (PCI:0008:01:00): 79, pid=2291")
    summary = bootstrap.parse_health_result((gb.root / "var/lib/azcluster/health.json").read_text()).summary()
    assert "xid: Xid (PCI:0008:01:00): 79" in summary


def test_dcgm_runs_once_per_boot_and_its_failure_names_the_test(gb):
    gb.dcgm(DCGM_FAIL, 226)
    code, checks = gb.health()
    assert code == 1
    assert checks["dcgm"]["detail"] == (
        "dcgmi diag -r 1 failed: Persistence Mode: Persistence mode for GPU 0 is currently disab"
    )
    gb.clear_calls()
    gb.dcgm(DCGM_PASS, 0)
    code, checks = gb.health("--mode", "quick")  # quick: the boot's verdict stands
    assert code == 1 and "dcgmi" not in " ".join(gb.calls())
    assert "run at" in checks["dcgm"]["detail"]
    gb.boot("boot-2")
    code, checks = gb.health()
    assert code == 0 and checks["dcgm"]["ok"]


def test_dcgm_without_its_host_engine_is_skipped_not_failed(gb):
    gb.dcgm("Error: unable to establish a connection to the specified host: localhost\n", 255)
    code, checks = gb.health()
    assert code == 0 and checks["dcgm"]["skipped"]
    assert "host engine not reachable" in checks["dcgm"]["detail"]


def test_aznhc_on_gb200_runs_only_where_the_images_copy_has_its_arm64_container(tmp_path):
    node = GbNode(tmp_path, GB200)
    aznhc = "opt/azurehpc/test/azurehpc-health-checks"
    node.write(f"{aznhc}/conf/nd128isr_ndr_gb200_v6.conf", "* || check_gpu_count 4\n")
    node.write(f"{aznhc}/run-health-checks.sh", '#!/bin/bash\necho "aznhc $*" >>"$CALLS"\nexit 0\n')
    code, checks = node.health()
    assert code == 0 and checks["aznhc"]["skipped"]
    assert "no Arm64 container" in checks["aznhc"]["detail"]
    assert not [c for c in node.calls() if c.startswith("aznhc")]
    node.write(f"{aznhc}/dockerfile/azure-nvrt-nhc-aarch64.dockerfile", "FROM nvcr.io/nvidia/cuda\n")
    code, checks = node.health("--mode", "full")
    assert code == 0 and checks["aznhc"]["ok"]
    assert [c for c in node.calls() if c.startswith("aznhc")]


def test_gb300_has_no_aznhc_configuration_so_its_own_checks_stand(tmp_path):
    node = GbNode(tmp_path, GB300)
    code, checks = node.health()
    assert code == 0
    assert checks["aznhc"]["skipped"] and "AzNHC not used" in checks["aznhc"]["detail"]
    assert {"nvlink_fabric", "imex", "xid", "dcgm"} <= set(checks)


def _cloud_config(size: str) -> dict:
    return YAML(typ="safe").load(bootstrap.render_cloud_config(_spec(size), "gb", 0))


def _env(document: dict) -> dict[str, str]:
    text = next(f["content"] for f in document["write_files"] if f["path"] == bootstrap.NODE_ENV_PATH)
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


@pytest.mark.parametrize("size", [GB200, GB300])
def test_only_gb_pools_carry_the_gb_checks(size):
    gb = _cloud_config(size)
    h100 = _cloud_config("Standard_ND96isr_H100_v5")
    paths = {f["path"].rsplit("/", 1)[-1] for f in gb["write_files"]}
    assert "azc-gb-health-lib.sh" in paths
    assert _env(gb)["AZC_GB"] == "1" and _env(gb)["AZC_ARCH"] == "Arm64"
    assert "azc-gb-health-lib.sh" not in {f["path"].rsplit("/", 1)[-1] for f in h100["write_files"]}
    assert "AZC_GB" not in _env(h100)


def test_the_gb_checks_cost_at_most_3_5_kb_of_custom_data():
    """The session's budget for GB-only pieces is ~8 KB encoded, shared with IMEX and topology."""
    from azcluster.components.bootstrap import gpu_node

    spec = _spec(GB300)
    with_gb = len(bootstrap.custom_data(spec, "gb", 0))
    boot = gpu_node.PoolBoot.gather(spec, "gb")
    pieces = [p for p in boot.pieces(0) if p.name != "gb-health"]
    without = len(
        bootstrap.encode_custom_data(gpu_node.assemble(boot.header(0), pieces), "pool 'gb' island 0")
    )
    assert 0 < with_gb - without <= 3500

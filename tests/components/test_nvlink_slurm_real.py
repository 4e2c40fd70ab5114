"""NVLink domains as Slurm blocks and IMEX per job, on real Slurm daemons: Debian 13's 24.11 and sid's 26.05.

A cluster with a GB200 pool (racks of 18 VMs: catalogue `rack_vms`) and a pool without racks, made the way
the cloud-config makes it (tests/components/slurmlab.py says how, and every difference from Azure). Each
GB node machine has fake NVIDIA tools that print what the real ones print:
- `nvidia-smi -q`: one block per GPU with its "Fabric" section (State, Status, CliqueId, ClusterUUID,
  Health/Bandwidth), the layout of nvidia-smi's query output on NVLink-switch systems (the fields of NVML's
  nvmlGpuFabricInfo_t, docs.nvidia.com/deploy/nvml-api; NVIDIA's topograph reads the same two lines,
  pkg/providers/baremetal); each machine reports the NVLink domain the test gives it;
- `nvidia-imex` records how it was started and the nodes_config.cfg it found, then runs as a daemon;
  `nvidia-imex-ctl -q` prints READY while it runs (the state the IMEX guide's command service reports);
  the systemd stand-in starts it as the nvidia-imex unit does (`nvidia-imex -c /etc/nvidia-imex/config.cfg`);
- /proc/devices lists nvidia-caps-imex-channels (the IMEX guide's "IMEX Channels" example), from a file,
  and the channel node is made under /run (a test machine must not make device nodes in the host's /dev).

Slurm's own tools then check: each node lands in its domain's block (`scontrol show topology`), a job with
`--segment` stays in one domain and waits for a whole one rather than being spread, a node that replaces
one of a domain rejoins that block, the Prolog writes nodes_config.cfg with exactly the job's nodes and the
channel, the Epilog clears it, a failed IMEX start drains the node with the reason, and a node of a pool
without racks runs jobs through the stand-in Prolog. Every machine is stopped at the end, also on failure.
"""

from __future__ import annotations

import re
import time

import pytest

from azcluster.components.bootstrap.slurm import IMEX_SCRIPT
from azcluster.components.spec import ClusterSpec
from tests.components import slurmlab
from tests.groups import REAL_DAEMONS

pytestmark = [pytest.mark.timeout(900), pytest.mark.xdist_group(REAL_DAEMONS)]

GB200 = "Standard_ND128isr_NDR_GB200_v6"
DOMAIN_A = ("7d3c9a41-5b2e-4f10-8c6d-2a9e1f4b7c01", "32766")
DOMAIN_B = ("7d3c9a41-5b2e-4f10-8c6d-2a9e1f4b7c01", "32767")
RACK = 18

NVIDIA_SMI = r"""#!/bin/bash
read -r uuid clique </etc/azc-test/fabric
echo "==============NVSMI LOG=============="
echo
echo "Driver Version                            : 580.95.05"
echo "Attached GPUs                             : 4"
for i in 0 1 2 3; do
  echo "GPU 0000000$i:01:00.0"
  echo "    Product Name                          : NVIDIA GB200"
  echo "    Fabric"
  echo "        State                             : Completed"
  echo "        Status                            : Success"
  echo "        CliqueId                          : $clique"
  echo "        ClusterUUID                       : $uuid"
  echo "        Health"
  echo "            Bandwidth                     : Full"
  echo "    Processes                             : None"
  echo
done
"""

NVIDIA_IMEX = r"""#!/bin/bash
# Stands in for NVIDIA's IMEX daemon: records its arguments and the peers it was given, then runs.
if [[ -z "${AZC_FAKE_DAEMON:-}" ]]; then
  AZC_FAKE_DAEMON=1 setsid "$0" "$@" </dev/null >/dev/null 2>&1 &
  exit 0
fi
{ echo "start $*"; sed 's/^/peer /' /etc/nvidia-imex/nodes_config.cfg; } >>/var/log/azc-test-imex.log
while :; do sleep 1; done
"""

NVIDIA_IMEX_CTL = r"""#!/bin/bash
if [[ "${1:-}" == -q ]]; then
  if pgrep -x nvidia-imex >/dev/null && [[ ! -e /etc/azc-test/imex-broken ]]; then echo READY
  else echo UNAVAILABLE; fi
fi
"""

NODE_ENV = (
    "SYSTEMCTL=/usr/local/sbin/azc-test-systemctl\n"
    "PROC_DEVICES=/etc/azc-test/devices\n"
    "IMEX_CHANNELS=/run/azc-test/imex-channels\n"
    "AZC_NVL_WAIT=20\n"
    "AZC_IMEX_WAIT=3\n"
)


def lab_spec() -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "lab",
            "location": "eastus",
            "scheduler": "slurm",
            "pools": [
                # one island of 4 racks (72 slots, 4 blocks), two of which the test's domains take
                {"name": "gb", "size": GB200, "nodes": 72, "island_max_nodes": 72},
                # a pool without racks: its island is blocks too (topology/block is cluster-wide), 4 of them
                # like the GB island's, so aggregated blocks (BlockSizes) stay inside each island
                {"name": "infer", "size": "Standard_NC96ads_A100_v4", "nodes": 1, "island_max_nodes": 72},
            ],
        }
    )


class NvlLab(slurmlab.SlurmLab):
    """slurmlab's cluster, whose GB machines carry the fake NVIDIA tools of one NVLink domain each."""

    domain: tuple[str, str] = DOMAIN_A

    def _node_env(self, path: str, content: str) -> str:
        content = super()._node_env(path, content)
        return content + NODE_ENV if path.endswith("/node.env") else content

    def _machine(self, hostname: str):
        machine = super()._machine(hostname)
        if "-gb-" in hostname:
            files = {
                "/usr/bin/nvidia-smi": NVIDIA_SMI,
                "/usr/bin/nvidia-imex": NVIDIA_IMEX,
                "/usr/bin/nvidia-imex-ctl": NVIDIA_IMEX_CTL,
                "/etc/azc-test/fabric": f"{self.domain[0]} {self.domain[1]}\n",
                "/etc/azc-test/devices": "Character devices:\n195 nvidia\n508 nvidia-caps-imex-channels\n",
            }
            for inside, text in files.items():
                target = machine.path(inside)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
                target.chmod(0o755)
        return machine

    def boot_gb(self, instance: int, domain: tuple[str, str]):
        self.domain = domain
        return self.boot_node("gb", 0, instance)


def domain_id(domain: tuple[str, str]) -> str:
    return f"{domain[0]}.{domain[1]}"


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(suite, id=version) for suite, version in slurmlab.VERSIONS.items() if suite != "bookworm"
    ],
)
def lab(request, tmp_path_factory):
    spec = lab_spec()
    base = slurmlab.new_lab(request.param, tmp_path_factory.mktemp(f"nvl-{request.param}"), spec)
    lab = NvlLab(
        **{
            f: getattr(base, f)
            for f in ("suite", "root", "work", "spec", "version", "settings", "net", "key_b64")
        }
    )
    try:
        lab.start_controller()
        lab.gb = {
            "a0": lab.boot_gb(0, DOMAIN_A),
            "b0": lab.boot_gb(1, DOMAIN_B),
            "a1": lab.boot_gb(2, DOMAIN_A),
            "b1": lab.boot_gb(3, DOMAIN_B),
        }
        lab.infer = lab.boot_node("infer", 0, 0)
        yield lab
    finally:
        lab.close()


def blocks(lab) -> dict[str, set[str]]:
    """`scontrol show topology`'s base blocks: name -> slot names."""
    out = {}
    for line in lab.run("scontrol", "show", "topology").stdout.splitlines():
        fields = dict(t.split("=", 1) for t in line.split() if "=" in t)
        if "BlockName" in fields:
            names = lab.run("scontrol", "show", "hostnames", fields["Nodes"]).stdout.split()
            out[fields["BlockName"]] = set(names)
    return out


def block_of(lab, slot: str) -> str:
    return next(name for name, slots in blocks(lab).items() if slot in slots)


def test_each_node_lands_in_its_nvlink_domains_block(lab) -> None:
    slots = {key: lab.slot_of(node) for key, node in lab.gb.items()}
    a, b = block_of(lab, slots["a0"]), block_of(lab, slots["b0"])
    assert block_of(lab, slots["a1"]) == a and block_of(lab, slots["b1"]) == b
    assert a != b
    assert len(blocks(lab)[a]) == RACK  # a block is a whole rack of slots
    for key, slot in slots.items():
        domain = DOMAIN_A if key.startswith("a") else DOMAIN_B
        assert lab.node(slot)["Extra"] == f"nvl:{domain_id(domain)}"
    # The rack is the base block; aggregated blocks pair racks of the island (no other island here)
    conf = lab.login.path("/etc/slurm/topology.conf").read_text()
    assert "BlockSizes=18,36,72\n" in conf
    assert "TopologyPlugin=topology/block\n" in lab.login.path("/etc/slurm/slurm.conf").read_text()


def test_a_segment_job_stays_in_one_domain_and_waits_for_a_whole_one(lab) -> None:
    done = lab.run("srun", "-p", "gb", "-N2", "--segment=2", "printenv", "SLURMD_NODENAME")
    used = set(done.stdout.split())
    assert len(used) == 2 and len({block_of(lab, slot) for slot in used}) == 1, used
    # Four nodes are idle, two per domain: three in one segment fit no block, so the job waits
    job = lab.run(
        "sbatch", "-p", "gb", "-N3", "--segment=3", "--parsable", "-o", "/dev/null", "--wrap", "true"
    )
    job_id = job.stdout.strip().split(";")[0]
    lab.wait_for("the job to get a reason to wait", lambda: lab.job(job_id)["Reason"] != "None")
    for _ in range(6):
        assert lab.job(job_id)["JobState"] == "PENDING", lab.job(job_id)
        time.sleep(0.5)
    # A third node of domain A joins its block: the job runs there, in one domain
    lab.gb["a2"] = lab.boot_gb(4, DOMAIN_A)
    lab.wait_for(f"segment job {job_id} to finish", lambda: lab.job(job_id)["JobState"] == "COMPLETED")
    nodes = set(lab.run("scontrol", "show", "hostnames", lab.job(job_id)["NodeList"]).stdout.split())
    assert nodes == {lab.slot_of(lab.gb[k]) for k in ("a0", "a1", "a2")}


def test_a_node_replaced_in_a_domain_rejoins_its_block(lab) -> None:
    gone = lab.slot_of(lab.gb["b1"])
    block = block_of(lab, gone)
    lab.stop(lab.gb.pop("b1").hostname)
    lab.wait_for("slurmctld to notice", lambda: "NOT_RESPONDING" in lab.node(gone).get("State", ""))
    assert lab.script("azc-slurm-reaper.sh", "--after", "0").returncode == 0
    # Automatic repairs bring a new VM of the same rack (domain B): it joins B's block, nobody restarted
    lab.gb["b1"] = lab.boot_gb(0x2A, DOMAIN_B)
    slot = lab.slot_of(lab.gb["b1"])
    assert block_of(lab, slot) == block
    assert lab.node(slot)["Extra"] == f"nvl:{domain_id(DOMAIN_B)}"
    done = lab.run(
        "srun", "-p", "gb", "-N2", "--segment=2", "-w", f"{slot},{lab.slot_of(lab.gb['b0'])}", "hostname"
    )
    assert sorted(done.stdout.split()) == sorted([lab.gb["b1"].hostname, lab.gb["b0"].hostname])


def _imex_log(node) -> str:
    path = node.path("/var/log/azc-test-imex.log")
    return path.read_text() if path.exists() else ""


def test_the_prolog_gives_imex_exactly_the_jobs_nodes_and_the_epilog_clears_it(lab) -> None:
    a0, a1 = lab.gb["a0"], lab.gb["a1"]
    pair = f"{lab.slot_of(a0)},{lab.slot_of(a1)}"
    before = {k: len(_imex_log(n).splitlines()) for k, n in (("a0", a0), ("a1", a1))}
    script = "test -c /run/azc-test/imex-channels/channel0 && echo channel; sleep 20"
    job = lab.run("sbatch", "-p", "gb", "-N2", "-w", pair, "--parsable", "-o", "/dev/null", "--wrap", script)
    job_id = job.stdout.strip().split(";")[0]
    lab.wait_for("the job to run", lambda: lab.job(job_id)["JobState"] == "RUNNING")
    addrs = [lab.node(slot)["NodeAddr"] for slot in sorted(pair.split(","))]
    for key, node in (("a0", a0), ("a1", a1)):
        lab.wait_for("IMEX to hold the job", lambda n=node: n.path("/var/lib/azcluster/imex-job").exists())
        held = node.path("/var/lib/azcluster/imex-job").read_text().split()
        assert held[0] == job_id
        assert set(lab.run("scontrol", "show", "hostnames", held[1]).stdout.split()) == set(pair.split(","))
        assert sorted(node.path("/etc/nvidia-imex/nodes_config.cfg").read_text().split()) == sorted(addrs)
        started = _imex_log(node).splitlines()[before[key] :]
        assert started[0] == "start -c /etc/nvidia-imex/config.cfg"
        assert sorted(line.split()[1] for line in started[1:]) == sorted(addrs)
        assert node.run(["test", "-c", "/run/azc-test/imex-channels/channel0"]).returncode == 0
    steps = lab.run(
        "srun",
        f"--jobid={job_id}",
        "-N2",
        "-w",
        pair,
        "--overlap",
        "sh",
        "-c",
        "test -c /run/azc-test/imex-channels/channel0 && echo ok",
    )
    assert steps.stdout.split() == ["ok", "ok"]  # the job's own steps see the IMEX channel
    lab.wait_for(f"job {job_id} to end", lambda: lab.job(job_id)["JobState"] == "COMPLETED")
    for node in (a0, a1):
        lab.wait_for("the epilog", lambda n=node: not n.path("/var/lib/azcluster/imex-job").exists())
        assert node.path("/etc/nvidia-imex/nodes_config.cfg").read_text() == ""
        assert node.run(["pgrep", "-x", "nvidia-imex"]).returncode == 1
    # A one-node job needs no IMEX (NVLink inside one VM): the daemon is not started for it
    lab.run("srun", "-p", "gb", "-N1", "-w", lab.slot_of(a0), "true")
    assert a0.run(["pgrep", "-x", "nvidia-imex"]).returncode == 1


def test_a_failed_imex_start_drains_the_node_with_the_reason(lab) -> None:
    a0, a1 = lab.gb["a0"], lab.gb["a1"]
    slot = lab.slot_of(a1)
    a1.path("/etc/azc-test/imex-broken").write_text("")
    try:
        pair = f"{lab.slot_of(a0)},{slot}"
        job = lab.run(
            "sbatch", "-p", "gb", "-N2", "-w", pair, "--parsable", "-o", "/dev/null", "--wrap", "true"
        )
        job_id = job.stdout.strip().split(";")[0]
        lab.wait_for("the node to drain", lambda: "DRAIN" in lab.node(slot).get("State", ""))
        reason = lab.node(slot)["Reason"]
        assert reason.startswith("azc-imex: nvidia-imex not READY after 3s"), reason
        assert lab.job(job_id)["JobState"] in {"PENDING", "REQUEUED"}  # Slurm requeues (and holds) it
        lab.run("scancel", job_id)
    finally:
        a1.path("/etc/azc-test/imex-broken").unlink()
        lab.run("scontrol", "update", f"nodename={slot}", "state=resume", check=False)
    lab.wait_for("the node to be back", lambda: "DRAIN" not in lab.node(slot).get("State", "DRAIN"))
    for node in (a0, a1):  # the failed start left no peers behind
        lab.wait_for("IMEX to be released", lambda n=node: not n.path("/var/lib/azcluster/imex-job").exists())


def test_a_pool_without_racks_runs_jobs_through_the_stand_in_prolog(lab) -> None:
    assert lab.infer.path(IMEX_SCRIPT).read_text().startswith("#!/bin/sh")
    assert lab.run("srun", "-p", "infer", "-N1", "hostname").stdout.strip() == lab.infer.hostname


def test_slurm_takes_the_rack_exclusions_the_power_watch_sets(lab) -> None:
    """The elastic watch keeps busy racks out of suspension with `scontrol update SuspendExcNodes=`
    (components/elastic.py): both releases accept it at run time and show it in their configuration."""
    before = lab.run("scontrol", "show", "config").stdout
    lab.run("scontrol", "update", "SuspendExcNodes=gb-i0-[054-071]")
    shown = lab.run("scontrol", "show", "config").stdout
    assert re.search(r"^SuspendExcNodes\s*=\s*gb-i0-\[054-071\]\s*$", shown, re.M), shown
    old = re.search(r"^SuspendExcNodes\s*=\s*(.*?)\s*$", before, re.M)
    value = old.group(1) if old and old.group(1) != "(null)" else ""
    lab.run("scontrol", "update", f"SuspendExcNodes={value}")


def test_no_error_defunct_or_deprecated_line_anywhere(lab) -> None:
    # The failed-IMEX test's Prolog failure is meant; the lab's SlurmdTimeout is 10 s (production: 300 s),
    # which a loaded test machine can miss for a moment ("not responding, setting DOWN").
    bad = [
        line
        for line in lab.bad_lines()
        if not re.search(r"Prolog|azc-imex|prolog|not responding, setting DOWN", line)
    ]
    assert bad == [], "\n".join(bad)


def test_the_domain_on_a_slot_survives_a_controller_restart_and_a_reconfigure(lab) -> None:
    """Last, after the log check: a slurmctld restarted on a loaded test machine may mark nodes DOWN
    before their first ping answers ("not responding, setting DOWN"), which says nothing of azcluster."""
    slot = lab.slot_of(lab.gb["a0"])
    lab.run("/usr/local/sbin/azc-test-systemctl", "restart", "slurmctld")
    lab.wait_for("slurmctld to answer", lambda: lab.run("scontrol", "ping", check=False).returncode == 0)
    assert lab.node(slot)["Extra"] == f"nvl:{domain_id(DOMAIN_A)}"
    lab.run("scontrol", "reconfigure")
    assert lab.node(slot)["Extra"] == f"nvl:{domain_id(DOMAIN_A)}"

"""Whole-rack power saving of a GB pool through real slurmctld's own power saving: Debian 13's Slurm 24.11
and sid's 26.05 (production runs 25.11, between them).

Two harnesses joined, each as it is beside this file:
- test_nvlink_slurm_real's lab (tests/components/slurmlab.py: the rendered slurm.conf and topology.conf,
  the login and node programs of the cloud-config, real slurmctld and slurmd; GB machines carry fake
  NVIDIA tools reporting one NVLink domain each), with elastic power on;
- test_elastic_slurm's power programs: slurmctld's SuspendProgram, ResumeProgram and ResumeFailProgram
  are the deployed wrappers around the real azc-elastic.py, talking to the loopback ARM and IMDS fakes
  (tests/fakes/arm.py, imds.py), which this process serves inside the lab's network namespace.
The test plays the hypervisor from what the ARM fake holds: a VM the fake shows running boots (its
cloud-config's files, then azc-slurm-node.sh, which claims a slot in its own NVLink domain's block and
joins), a VM the fake shows deallocated stops. `azc-elastic.py watch` runs in a loop on the login node, as
its timer does. Everything else is slurmctld's: whom it resumes, whom it suspends, and when.

What differs from Azure, beside slurmlab's list:
- Racks of 3 VMs, not 18: the catalogue's GB200 row is given rack_vms=3 for this module, so everything
  derived from it is what racks of 3 render (topology.conf's blocks of 3 and BlockSizes=3,6, node.env's
  AZC_SLURM_RACK, elastic.json's `rack`). Two racks, 6 VMs, one island.
- Seconds instead of minutes: SuspendTime 4 s, SuspendTimeout 4 s, ResumeTimeout 60 s; the watch runs
  every second (the timer: every minute; production's SuspendTime is the stack's idle_minutes).
- The wrappers slurmctld runs carry the fakes' endpoints (slurmctld gives its programs a clean
  environment) and scale the programs' waits down (AZC_ELASTIC_SLEEP_SCALE); their exec line is the
  deployed one.
- The cluster as `up` leaves it: every VM running and joined. Azure boots them together; here they join
  one after another (claims of two domains at once are azc-imex.sh's and test_slurm_real's subject)
  with every slot in SuspendExcNodes until all have joined (a real boot of ~15 minutes is short beside
  an hour's SuspendTime, which 4 s is not); the watch's first round then sets its own value. VMs the
  program starts later boot together.
- Rack r0 is the one job-driven rack (a job pinned to gb-i0-000); timings are printed (`pytest -s`),
  never asserted.

About 2.5 minutes per release on 2 cores (15 VM boots, seconds each), in the release's slurm-<version>
group beside test_slurm_power.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time

import pytest

from azcluster.components import catalog, elastic
from azcluster.components.bootstrap import INSTALL_DIR
from azcluster.components.spec import ClusterSpec
from tests.components import slurmlab
from tests.components.test_nvlink_slurm_real import DOMAIN_A, DOMAIN_B, NvlLab
from tests.fakes.arm import SUBSCRIPTION, TOKEN, FakeArm, FakeArmServer
from tests.fakes.imds import FakeImds, FakeImdsServer

pytestmark = pytest.mark.timeout(900)

GB200 = "Standard_ND128isr_NDR_GB200_v6"
RACK = 3
VMS = 2 * RACK
RESTARTS = 2
"""azc-slurm-node.service is Restart=on-failure (RestartSec=30; 1 s here): a VM that found no room while
VMs of two racks claimed together (azc-imex.sh claim) tries again, as systemd would have it."""
BOOT_S = 2
"""A started VM boots this long after Azure says it runs (minutes on Azure): slurmctld ignores a
registration from a host whose boot time (whole seconds of uptime) is not after its resume request."""
CLIENT_ID = "5b1c2f0e-0000-4000-8000-00000000c1d0"
SUSPEND_TIME_S = 4
RESUME_TIMEOUT_S = 60
SCALE_SET = "lab-gb-ib0"
PROGRAM = f"{INSTALL_DIR}/azc-elastic.py"
LAB_ENV = "/etc/azc-lab/elastic.env"
VERSIONS = {suite: version for suite, version in slurmlab.VERSIONS.items() if version != "22.05"}
"""Not 22.05: topology/block is 23.11+."""


def rack_spec() -> ClusterSpec:
    return ClusterSpec.model_validate(
        {
            "name": "lab",
            "location": "eastus",
            "scheduler": "slurm",
            "pools": [{"name": "gb", "size": GB200, "nodes": VMS}],
            "elastic": {"idle_minutes": 1, "resume_timeout_minutes": 1},
        }
    )


class RackLab(NvlLab):
    """NvlLab whose VMs report the NVLink domain of their physical rack: VMs 0-2 are one, 3-5 the other."""

    def _machine(self, hostname: str):
        if "-gb-" in hostname:
            self.domain = DOMAIN_A if int(hostname[-6:], 16) < RACK else DOMAIN_B
        return super()._machine(hostname)


class Hypervisor:
    """Plays Azure's hosts from the ARM fake: a VM it shows running boots and joins, one it shows
    deallocated stops. Boots run in threads of their own, as VMs boot together, BOOT_S after the start."""

    def __init__(self, lab: RackLab, arm: FakeArm) -> None:
        self.lab, self.arm = lab, arm
        self.booting: set[str] = set()
        self.running_since: dict[str, float] = {}
        self.serial = True
        """The initial boot: one VM joins after another (module docstring)."""
        self.gate = threading.Lock()
        self.errors: list[str] = []
        self.events: list[tuple[float, str, str]] = []  # (monotonic time, "boot"|"joined"|"stop", host)
        self.lock = threading.Lock()  # one machine made at a time (RackLab.domain)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="hypervisor", daemon=True)

    def instances(self):
        return self.arm.scale_sets[(f"{self.lab.spec.name}-rg", SCALE_SET)].instances

    def _run(self) -> None:
        while not self.stopped.wait(0.3):
            for inst in self.instances():
                host = inst.computer_name.lower()
                with self.lock:
                    if host in self.booting:
                        continue
                    if inst.power != "running":
                        self.running_since.pop(host, None)
                    if inst.power == "running" and host not in self.lab.machines:
                        since = self.running_since.setdefault(host, time.monotonic())
                        if time.monotonic() - since < BOOT_S:
                            continue
                        self.booting.add(host)
                        self.events.append((time.monotonic(), "boot", host))
                        threading.Thread(
                            target=self._boot, args=(host, int(inst.instance_id)), daemon=True
                        ).start()
                    elif inst.power == "deallocated" and host in self.lab.machines:
                        self.lab.stop(host)
                        self.events.append((time.monotonic(), "stop", host))

    def _boot(self, host: str, instance: int) -> None:
        try:
            one_at_a_time = self.gate if self.serial else contextlib.nullcontext()
            with one_at_a_time:
                self._join(host, instance)
        except BaseException as err:  # noqa: BLE001 (reported by the test's next look)
            self.errors.append(f"{host}: {err}")
        finally:
            with self.lock:
                self.booting.discard(host)

    def _join(self, host: str, instance: int) -> None:
        with self.lock:
            node = self.lab.new_vm("gb", 0, instance)
        for attempt in range(RESTARTS + 1):
            try:
                self.lab.join(node)
                break
            except AssertionError:
                if attempt == RESTARTS:
                    raise
                time.sleep(1)
        self.events.append((time.monotonic(), "joined", host))

    def check(self) -> None:
        assert not self.errors, "\n".join(self.errors)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


def _with_rack_size(size: int):
    """The catalogue's GB200 row with `size` VMs per rack, for as long as the context lasts."""
    sizes = catalog.gpu_sizes()
    original = sizes[GB200]
    sizes[GB200] = original.model_copy(update={"rack_vms": size})
    try:
        yield
    finally:
        sizes[GB200] = original


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(suite, id=version, marks=pytest.mark.xdist_group(f"slurm-{version}"))
        for suite, version in VERSIONS.items()
    ],
)
def rig(request, tmp_path_factory):
    """The lab with every VM joined, the watch looping and the hypervisor running."""
    work = tmp_path_factory.mktemp(f"racks-{request.param}")
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.contextmanager(_with_rack_size)(RACK))
        spec = rack_spec()
        base = slurmlab.new_lab(request.param, work / "lab", spec)
        lab = RackLab(
            **{
                f: getattr(base, f)
                for f in ("suite", "root", "work", "spec", "version", "settings", "net", "key_b64")
            }
        )
        stack.callback(lab.close)
        arm = FakeArm()
        arm.add_scale_set(
            spec.resource_group_name,
            SCALE_SET,
            GB200,
            VMS,
            computer_prefix="lab-gb-i0-",
            tags={"azcluster-cluster": "lab", "azcluster-island": "0"},
        )
        (work / "ca").mkdir()
        # served inside the lab's network namespace, where the login node's programs run
        arm_server = stack.enter_context(lab.net.call(lambda: FakeArmServer(arm, work / "ca")))
        imds_server = stack.enter_context(lab.net.call(lambda: FakeImdsServer(FakeImds(CLIENT_ID, TOKEN))))
        lab.elastic_config = elastic.render_config(spec, SUBSCRIPTION, CLIENT_ID)
        env = {
            "AZC_ARM_ENDPOINT": arm_server.url,
            "AZC_IMDS_ENDPOINT": imds_server.url,
            "AZC_CA_BUNDLE": "/etc/azc-lab/arm-ca.pem",
            "AZC_ELASTIC_SLEEP_SCALE": "0.01",
        }
        extra = dict(elastic.slurm_power_save(spec))
        # Test changes: seconds instead of minutes (the keys are the rendered ones)
        extra.update(
            SuspendTime=str(SUSPEND_TIME_S),
            SuspendTimeout="4",
            ResumeTimeout=str(RESUME_TIMEOUT_S),
            BatchStartTimeout=str(RESUME_TIMEOUT_S),
        )

        def before(login) -> None:
            ca = login.path("/etc/azc-lab/arm-ca.pem")
            ca.parent.mkdir(parents=True, exist_ok=True)
            ca.write_bytes(arm_server.ca_path.read_bytes())
            login.path(LAB_ENV).write_text("".join(f"{k}={v}\n" for k, v in env.items()))
            for path, command in elastic.SLURM_PROGRAMS.values():
                shebang, rest = elastic.slurm_wrapper(command).split("\n", 1)
                login.path(path).write_text(f"{shebang}\nset -a; . {LAB_ENV}; set +a\n{rest}")
            # what systemd-tmpfiles makes from the piece's tmpfiles.d file (state and log, SlurmUser's)
            done = login.run(
                [
                    "sh",
                    "-c",
                    "mkdir -p /var/lib/azcluster/elastic /var/log/azcluster && "
                    "chown slurm: /var/lib/azcluster/elastic /var/log/azcluster",
                ]
            )
            assert done.returncode == 0, done.stderr

        lab.start_controller(extra, before=before)
        # the initial boot (module docstring): nothing is suspended before every VM has joined
        lab.run("scontrol", "update", f"SuspendExcNodes=gb-i0-[000-{VMS - 1:03d}]")
        hyper = Hypervisor(lab, arm)
        stack.callback(hyper.close)
        hyper.thread.start()
        lab.wait_for(
            "every VM joined",
            lambda: hyper.check() or len([e for e in hyper.events if e[1] == "joined"]) == VMS,
            timeout=slurmlab.WAIT_S * 2,
        )
        hyper.serial = False
        # the timer's rounds, as SlurmUser (the watch unit's drop-in); they end with the machine
        watch = f"while :; do runuser -u slurm -- {PROGRAM} watch; sleep 1; done"
        lab.login.popen(["sh", "-c", f"set -a; . {LAB_ENV}; set +a; {watch}"])
        rig = Rig(lab, arm, hyper)
        yield rig
        hyper.close()


class Rig:
    def __init__(self, lab: RackLab, arm: FakeArm, hyper: Hypervisor) -> None:
        self.lab, self.arm, self.hyper = lab, arm, hyper
        self.vm_of_slot = {lab.slot_of(m): host for host, m in lab.machines.items() if "-gb-" in host}

    def asked(self, command: str) -> list[tuple[float, str]]:
        """(when, slot) of every slot slurmctld handed to the power program for `command`."""
        path = self.lab.login.path("/var/log/azcluster/elastic.log")
        out = []
        for line in path.read_text().splitlines() if path.exists() else []:
            found = re.match(r"(\S+) \[\d+\] (\S+) (\S+)$", line)
            if found and found.group(2) == command:
                stamp = time.mktime(time.strptime(found.group(1), "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
                out += [(stamp, n) for n in self.hostnames(found.group(3))]
        return out

    def hostnames(self, hostlist: str) -> list[str]:
        return self.lab.run("scontrol", "show", "hostnames", hostlist).stdout.split()

    def posts(self, action: str) -> list[list[str]]:
        """The VM host names of each POST start|deallocate the program sent, in order."""
        names = {inst.instance_id: inst.computer_name.lower() for inst in self.hyper.instances()}
        return [
            sorted(names[i] for i in request.body["instanceIds"])
            for request in self.arm.calls("POST", f"/{SCALE_SET}/{action}")
        ]

    def power(self) -> dict[str, str]:
        return {inst.computer_name.lower(): inst.power for inst in self.hyper.instances()}

    def state(self, slot: str) -> str:
        return self.lab.node(slot).get("State", "")

    def blocks(self) -> dict[str, list[str]]:
        out = {}
        for line in self.lab.run("scontrol", "show", "topology").stdout.splitlines():
            fields = dict(t.split("=", 1) for t in line.split() if "=" in t)
            if "BlockName" in fields and fields.get("BlockIndex") != "-1":
                out[fields["BlockName"]] = self.hostnames(fields["Nodes"])
        return {name: slots for name, slots in out.items() if len(slots) == RACK}

    def rack_of(self, slot: str) -> list[str]:
        return next(slots for slots in self.blocks().values() if slot in slots)

    def exc_nodes(self) -> str:
        shown = self.lab.run("scontrol", "show", "config").stdout
        found = re.search(r"^SuspendExcNodes\s*=\s*(.*?)\s*$", shown, re.M)
        return "" if found is None or found.group(1) == "(null)" else found.group(1)

    def powered_down(self, slots) -> bool:
        return all("POWERED_DOWN" in self.state(s) and "POWERING" not in self.state(s) for s in slots)


def _all_slots() -> list[str]:
    return [f"gb-i0-{n:03d}" for n in range(VMS)]


def test_each_rack_is_a_block_and_an_idle_cluster_powers_off_whole(rig) -> None:
    lab = rig.lab
    blocks = rig.blocks()
    assert sorted(blocks) == ["gb-i0-r0", "gb-i0-r1"], blocks
    # each block holds the VMs of one physical rack (one NVLink domain)
    for slots in blocks.values():
        assert len({int(rig.vm_of_slot[s][-6:], 16) // RACK for s in slots}) == 1, rig.vm_of_slot
    # The watch's first round cleared the initial exclusion; every node idle past SuspendTime is handed
    # to SuspendProgram, and azc-elastic.py deallocates its own VM
    lab.wait_for("every slot suspended", lambda: set(_all_slots()) <= {s for _, s in rig.asked("suspend")})
    lab.wait_for("every VM deallocated", lambda: set(rig.power().values()) == {"deallocated"})
    lab.wait_for("every slot powered down", lambda: rig.powered_down(_all_slots()))
    assert sorted(host for post in rig.posts("deallocate") for host in post) == sorted(
        rig.vm_of_slot.values()
    )
    rig.hyper.check()
    rig.suspends_at_rest, rig.deallocates_at_rest = len(rig.asked("suspend")), len(rig.posts("deallocate"))


def test_a_job_on_one_slot_powers_up_its_whole_rack_and_only_it(rig) -> None:
    lab = rig.lab
    slot = "gb-i0-000"
    rack = rig.rack_of(slot)
    other = [s for s in _all_slots() if s not in rack]
    starts_before = len(rig.posts("start"))
    job = (
        lab.run(
            "sbatch", "-p", "gb", "-N1", "-w", slot, "--parsable", "-o", "/dev/null", "--wrap", "sleep 600"
        )
        .stdout.strip()
        .split(";")[0]
    )
    rig.job = job
    t0 = time.monotonic()
    lab.wait_for(f"ResumeProgram for {slot}", lambda: slot in {s for _, s in rig.asked("resume")})
    # slurmctld resumes the job's slot; the program starts that slot's own VM, then asks slurmctld to
    # power up the rest of the rack, and slurmctld calls ResumeProgram for them in turn
    lab.wait_for("the rest of the rack resumed", lambda: set(rack) <= {s for _, s in rig.asked("resume")})
    t_rest = time.monotonic()
    lab.wait_for(
        "their VMs started",
        lambda: len({h for post in rig.posts("start")[starts_before:] for h in post}) >= RACK,
    )
    starts = rig.posts("start")[starts_before:]
    assert starts[0] == [rig.vm_of_slot[slot]], starts
    assert sorted(h for post in starts for h in post) == sorted(rig.vm_of_slot[s] for s in rack), starts
    for s in rack:
        assert re.search(r"POWERING_UP|^(IDLE|ALLOCATED|MIXED)", rig.state(s)), (s, rig.state(s))
    lab.wait_for("the whole rack up", lambda: all("POWER" not in rig.state(s) for s in rack))
    t_up = time.monotonic()
    # the job runs once slurmctld sees its node up (its periodic job_time_limit pass: up to ~30 s here)
    lab.wait_for(
        "the job running", lambda: lab.job(job)["JobState"] == "RUNNING", timeout=RESUME_TIMEOUT_S * 2
    )
    rig.hyper.check()
    # the other rack stays powered off, its VMs deallocated
    assert rig.powered_down(other)
    assert {rig.power()[rig.vm_of_slot[s]] for s in other} == {"deallocated"}
    assert {s for _, s in rig.asked("resume")} == set(rack)
    print(
        f"\n{lab.version}: rest of rack resumed {t_rest - t0:.1f}s after submit, "
        f"rack up after {t_up - t0:.1f}s"
    )


def test_a_busy_node_keeps_its_idle_rack_mates_up_past_suspend_time(rig) -> None:
    rack = rig.rack_of("gb-i0-000")
    rest = [s for s in rack if s != "gb-i0-000"]
    suspended_before = len(rig.asked("suspend"))
    assert set(rig.hostnames(rig.exc_nodes())) >= set(rack), rig.exc_nodes()
    for s in rest:
        assert re.match(r"IDLE", rig.state(s)), rig.state(s)
    time.sleep(SUSPEND_TIME_S * 3)  # idle three times SuspendTime: without the exclusion Slurm suspends them
    assert len(rig.asked("suspend")) == suspended_before, rig.asked("suspend")[suspended_before:]
    for s in rest:
        assert re.match(r"IDLE", rig.state(s)) and "POWER" not in rig.state(s), rig.state(s)
        assert rig.power()[rig.vm_of_slot[s]] == "running"


def test_a_segment_job_takes_a_whole_powered_down_rack_rather_than_spreading(rig) -> None:
    """Rack r0 has two idle nodes up beside the busy one, r1 is powered off: a job of a rack's size in
    one segment could spread (2 + 1) but must take one block: slurmctld picks r1 and powers it up."""
    lab = rig.lab
    rack = rig.rack_of("gb-i0-000")
    other = [s for s in _all_slots() if s not in rack]
    job = (
        lab.run(
            "sbatch",
            "-p",
            "gb",
            "-N3",
            f"--segment={RACK}",
            "--parsable",
            "-o",
            "/dev/null",
            "--wrap",
            "true",
        )
        .stdout.strip()
        .split(";")[0]
    )
    lab.wait_for(
        "the job placed", lambda: lab.job(job).get("NodeList", "(null)") not in ("", "(null)"), timeout=30
    )
    nodes = rig.hostnames(lab.job(job)["NodeList"])
    print(f"\n{lab.version}: --segment={RACK} with r0 2 idle + 1 busy, r1 powered off -> {nodes}")
    assert sorted(nodes) == sorted(other), nodes
    lab.wait_for(
        f"segment job {job} done",
        lambda: lab.job(job)["JobState"] == "COMPLETED",
        timeout=RESUME_TIMEOUT_S * 2,
    )
    rig.hyper.check()


def test_a_job_of_a_rack_without_segment_takes_the_powered_off_rack_too(rig) -> None:
    """The same state, the same size, no --segment: BlockSizes=3,6 would let it span both racks (2 idle
    + 1 powered off), yet 24.11.5 and 26.05.5 take the powered-off rack whole, the smallest block that
    holds the job."""
    lab = rig.lab
    rack = rig.rack_of("gb-i0-000")
    other = [s for s in _all_slots() if s not in rack]
    lab.wait_for("the other rack idle and powered off again", lambda: rig.powered_down(other))
    job = (
        lab.run("sbatch", "-p", "gb", "-N3", "--parsable", "-o", "/dev/null", "--wrap", "true")
        .stdout.strip()
        .split(";")[0]
    )
    lab.wait_for(
        "the job placed",
        lambda: lab.job(job).get("NodeList", "(null)") not in ("", "(null)"),
        timeout=30,
    )
    nodes = rig.hostnames(lab.job(job)["NodeList"])
    print(f"\n{lab.version}: -N{RACK} without --segment, same state -> {nodes}")
    assert sorted(nodes) == sorted(other), nodes
    lab.wait_for(
        f"job {job} done", lambda: lab.job(job)["JobState"] == "COMPLETED", timeout=RESUME_TIMEOUT_S * 2
    )
    rig.hyper.check()


def test_the_watch_puts_the_exclusion_back_after_a_reconfigure(rig) -> None:
    """A value set with `scontrol update SuspendExcNodes=` lives only in the running slurmctld: a
    reconfigure puts slurm.conf's back, and the watch's next round, comparing with what slurmctld holds,
    sets the busy rack's again. In between Slurm may suspend the rack's idle nodes at once (24.11.5 did,
    a second after the reconfigure, before a watch round of the old code, which never set it again);
    which of the two came first is printed, not asserted."""
    lab = rig.lab
    rack = rig.rack_of("gb-i0-000")
    log = lab.login.path("/var/log/slurm/slurmctld.log")
    setting = f"Setting SuspendExcNodes to '{','.join(rack)}'"
    before, suspended = log.read_text().count(setting), len(rig.asked("suspend"))
    lab.run("scontrol", "reconfigure")
    lab.wait_for("slurmctld back", lambda: lab.run("scontrol", "ping", check=False).returncode == 0)
    lab.wait_for("the watch to set the exclusion again", lambda: log.read_text().count(setting) > before)
    assert set(rig.hostnames(rig.exc_nodes())) >= set(rack), rig.exc_nodes()
    assert "POWER" not in rig.state("gb-i0-000")  # the busy node itself is never suspended
    lost = [slot for _, slot in rig.asked("suspend")[suspended:]]
    print(f"\n{lab.version}: suspended between the reconfigure and the watch's round: {lost or 'none'}")


def test_once_the_whole_rack_is_idle_slurm_suspends_all_of_it(rig) -> None:
    lab = rig.lab
    suspended_before = len(rig.asked("suspend"))
    lab.run("scancel", rig.job)
    t0 = time.monotonic()
    lab.wait_for("the watch to clear SuspendExcNodes", lambda: rig.exc_nodes() == "")
    t_clear = time.monotonic()
    lab.wait_for(
        "the job's node suspended",
        lambda: "gb-i0-000" in {s for _, s in rig.asked("suspend")[suspended_before:]},
    )
    t_suspend = time.monotonic()
    lab.wait_for("every VM deallocated", lambda: set(rig.power().values()) == {"deallocated"})
    lab.wait_for("every slot powered down", lambda: rig.powered_down(_all_slots()))
    # every slot resumed since the first test was handed to SuspendProgram again, and its VM deallocated
    assert {s for _, s in rig.asked("suspend")[rig.suspends_at_rest :]} == set(_all_slots())
    hosts = {h for post in rig.posts("deallocate")[rig.deallocates_at_rest :] for h in post}
    assert hosts == set(rig.vm_of_slot.values()), hosts
    rig.hyper.check()
    print(
        f"\n{lab.version}: exclusion cleared {t_clear - t0:.1f}s after the job ended, "
        f"its node suspended after {t_suspend - t0:.1f}s"
    )

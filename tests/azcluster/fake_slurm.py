"""Slurm's client commands on the fake login VM, for Run Command scripts that submit jobs.

`FakeSlurm(directory)` writes `sinfo`, `sbatch` and `runuser` into `directory` (give it to the fake ARM's
`LoginVm.programs`). They behave like the real ones where azcluster depends on it (slurm.schedmd.com man
pages for Slurm 22.05, util-linux runuser(1)):
- `sinfo -h -N -o '%N %T'` prints one line per node, its name and long state (e.g. `idle`, `drained`,
  `idle~` when powered down); `-o '%N'` the names alone; `-o '%N|%T|%n|%o|%E'` name, state, host name,
  address and reason (`none` without one), as tests/azcluster/fixtures/sinfo shows real sinfo print them.
  `-h` leaves the header out. With the controller down it says so on stderr and exits 1.
- `sbatch --wait --parsable ... --output=PATH SCRIPT` prints the job id ("jobid[;cluster]"), runs the
  job, and "does not exit until the submitted job terminates; the exit code of the sbatch command will
  be the same as the exit code of the submitted job". The job here writes the text a test gave for its
  `--job-name` to PATH (as all_reduce_perf would on the first node) and exits with the given status. A
  job name without a behaviour is refused as Slurm refuses a bad node list: "sbatch: error: Batch job
  submission failed: ..." on stderr, exit 1, no job id.
- `srun ... --nodelist=A,B ... COMMAND...` runs COMMAND once per node, one task each, with
  SLURMD_NODENAME set to the node's Slurm name ("Name of the node running the task", srun(1) OUTPUT
  ENVIRONMENT VARIABLES) and AZC_ROOT at that node's own root (`FakeSlurm.node_file` writes files there),
  printing the tasks' output in node order; a node that is not idle/mixed/allocated cannot run a task:
  srun says so on stderr and exits 1.
- `scontrol show hostlistsorted A,B,...` prints the sorted, compressed host list ("gb-i0-[000-002,005]",
  scontrol(1) "hostlistsorted").
- `runuser -u USER -- COMMAND...` runs COMMAND as USER (recorded, since tests do not run as that user).
- `sacct -a -X -n -P -S TIME -E now -o FIELDS` with SLURM_TIME_FORMAT=%s prints the job lines a test gave
  (`sacct_lines`, captured from real sacct 24.11: tests/azcluster/fixtures/sacct) of the jobs not ended
  before TIME (read in TZ, as sacct reads local time); another field list or time format is refused as
  not faked.
- `squeue -h -t RUNNING -O 'UserName:|,NumNodes:|,tres-alloc:|'` prints the lines a test gave (`running`),
  as real squeue 24.11 prints them (`alice|1|cpu=2,mem=512M,node=1,billing=2,gres/gpu=2|`).
Every call is appended to `calls.log`, one line of arguments each, with the user from runuser.
"""

from __future__ import annotations

import stat
from pathlib import Path

SACCT_FIELDS = "JobIDRaw,User,Account,Partition,NNodes,AllocTRES,Start,End,NodeList"
"""The `-o` list tests/azcluster/fixtures/sacct was captured with (real sacct 24.11,
tests/components/test_slurm_accounting_real.py with AZC_CAPTURE_SACCT). The fake answers only this list,
as real sacct prints only the columns asked: were it to take the code's usage.SACCT_FIELDS, a change there
would still be answered with the captured columns and the unit tests would pass on lines real sacct never
prints. Change both together and recapture."""
SQUEUE_FORMAT = "UserName:|,NumNodes:|,tres-alloc:|"
"""The `-O` list the lines tests give `running` are written in (real squeue 24.11's, squeue(1) -O); pinned for
the same reason as SACCT_FIELDS."""

_SINFO = r"""#!/usr/bin/env bash
echo "sinfo $*" >>"{data}/calls.log"
if [ -f "{data}/controller-down" ]; then
  echo "slurm_load_partitions: Unable to contact slurm controller (connect failure)" >&2
  exit 1
fi
format='%N %T'
while [ $# -gt 0 ]; do
  case "$1" in
    -o) format="$2"; shift 2 ;;
    *) shift ;;
  esac
done
while IFS='|' read -r name state host addr reason; do
  [ -n "$name" ] || continue
  case "$format" in
    '%N') echo "$name" ;;
    '%N %T') echo "$name $state" ;;
    '%N|%T|%n|%o|%E') echo "$name|$state|$host|$addr|$reason" ;;
    *) echo "sinfo: format $format is not faked" >&2; exit 1 ;;
  esac
done <"{data}/nodes"
"""

_SBATCH = r"""#!/usr/bin/env bash
echo "sbatch user=${{AZC_FAKE_USER:-root}} $*" >>"{data}/calls.log"
name=""; output=""; script=""
for arg in "$@"; do
  case "$arg" in
    --job-name=*) name="${{arg#--job-name=}}" ;;
    --output=*) output="${{arg#--output=}}" ;;
    -*) ;;
    *) script="$arg" ;;
  esac
done
cp "$script" "{data}/submitted-$name.sh"
if [ ! -f "{data}/jobs/$name.rc" ]; then
  echo "sbatch: error: Batch job submission failed: Requested node configuration is not available" >&2
  exit 1
fi
# slurmctld hands out job ids one at a time; islands are submitted in parallel, so take a lock here.
exec 9>"{data}/next-id.lock"; flock 9
id=$(( $(cat "{data}/next-id") )); echo $((id + 1)) >"{data}/next-id"
flock -u 9
echo "$id"
cp "{data}/jobs/$name.out" "$output"
exit "$(cat "{data}/jobs/$name.rc")"
"""

_SRUN = r"""#!/usr/bin/env bash
echo "srun user=${{AZC_FAKE_USER:-root}} $*" >>"{data}/calls.log"
list=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nodelist=*) list="${{1#--nodelist=}}"; shift ;;
    -*) shift ;;
    *) break ;;
  esac
done
for node in $(echo "$list" | tr , ' '); do
  state=$(awk -F'|' -v n="$node" '$1 == n {{print $2}}' "{data}/nodes")
  case "$state" in
    idle*|mixed*|allocated*) ;;
    *) echo "srun: error: Unable to allocate resources: Requested node configuration is not available" >&2
       exit 1 ;;
  esac
done
for node in $(echo "$list" | tr , '\n' | sort); do
  mkdir -p "{data}/noderoots/$node"
  SLURMD_NODENAME="$node" AZC_ROOT="{data}/noderoots/$node" "$@"
done
"""

_SCONTROL = r"""#!/usr/bin/env python3
import re, sys
with open("{data}/calls.log", "a") as log:
    log.write("scontrol " + " ".join(sys.argv[1:]) + "\n")
if sys.argv[1:3] != ["show", "hostlistsorted"]:
    sys.exit("scontrol: only 'show hostlistsorted' is faked")
groups = {{}}
for name in sorted(sys.argv[3].split(",")):
    prefix, number = re.fullmatch(r"(.*?)(\d+)", name).groups()
    groups.setdefault(prefix, []).append(number)
parts = []
for prefix, numbers in groups.items():
    ranges, start = [], None
    for i, number in enumerate(numbers):
        start = number if start is None else start
        if i + 1 == len(numbers) or int(numbers[i + 1]) != int(number) + 1:
            ranges.append(start if start == number else f"{{start}}-{{number}}")
            start = None
    parts.append(prefix + (ranges[0] if len(numbers) == 1 else "[" + ",".join(ranges) + "]"))
print(",".join(parts))
"""

_RUNUSER = r"""#!/usr/bin/env bash
[ "$1" = -u ] || {{ echo "runuser: only -u USER -- COMMAND is faked" >&2; exit 1; }}
user="$2"; shift 2; [ "$1" = -- ] && shift
AZC_FAKE_USER="$user" exec "$@"
"""


_SQUEUE = r"""#!/usr/bin/env bash
echo "squeue $*" >>"{data}/calls.log"
[ "$*" = "-h -t RUNNING -O {squeue}" ] || {{ echo "squeue: $* is not faked" >&2; exit 1; }}
cat "{data}/squeue"
"""

_SACCT = r"""#!/usr/bin/env python3
import datetime, os, sys
with open("{data}/calls.log", "a") as log:
    log.write("sacct " + " ".join(sys.argv[1:]) + "\n")
args = sys.argv[1:]
fields = args[args.index("-o") + 1] if "-o" in args else ""
if fields != "{fields}" or os.environ.get("SLURM_TIME_FORMAT") != "%s":
    sys.exit("sacct: only -o {fields} with SLURM_TIME_FORMAT=%s is faked")
if not {{"-a", "-X", "-n", "-P"}} <= set(args) or os.environ.get("TZ") != "UTC":
    sys.exit("sacct: only -a -X -n -P in TZ=UTC is faked")
start = datetime.datetime.fromisoformat(args[args.index("-S") + 1]).replace(tzinfo=datetime.timezone.utc)
since = int(start.timestamp())
for line in open("{data}/sacct"):
    end = line.rstrip("\n").split("|")[7]
    if not end.isdigit() or int(end) >= since:
        sys.stdout.write(line)
"""


class FakeSlurm:
    def __init__(self, directory: Path) -> None:
        self.bin = directory / "bin"
        self.data = directory / "slurm"
        self.bin.mkdir(parents=True, exist_ok=True)
        (self.data / "jobs").mkdir(parents=True, exist_ok=True)
        (self.data / "nodes").write_text("")
        (self.data / "calls.log").write_text("")
        (self.data / "next-id").write_text("4101")
        (self.data / "sacct").write_text("")
        (self.data / "squeue").write_text("")
        programs = (("sinfo", _SINFO), ("sbatch", _SBATCH), ("runuser", _RUNUSER), ("srun", _SRUN))
        for name, body in (*programs, ("scontrol", _SCONTROL), ("sacct", _SACCT), ("squeue", _SQUEUE)):
            path = self.bin / name
            path.write_text(body.format(data=self.data, fields=SACCT_FIELDS, squeue=SQUEUE_FORMAT))
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def nodes(self, states: dict[str, str | tuple[str, str, str, str]]) -> None:
        """The nodes Slurm knows: name -> long state, or (state, host name, address, reason or 'none')."""
        lines = []
        for name, value in states.items():
            state, host, addr, reason = (value, name, "10.0.0.1", "none") if isinstance(value, str) else value
            lines.append(f"{name}|{state}|{host}|{addr}|{reason}\n")
        (self.data / "nodes").write_text("".join(lines))

    def controller_down(self) -> None:
        """slurmctld does not answer: sinfo fails as the real one does."""
        (self.data / "controller-down").write_text("")

    def job(self, name: str, output: str, rc: int = 0) -> None:
        """What the job called `name` prints and its exit status."""
        (self.data / "jobs" / f"{name}.out").write_text(output)
        (self.data / "jobs" / f"{name}.rc").write_text(str(rc))

    def node_file(self, node: str, path: str, text: str) -> None:
        """A file on a compute node (what `srun` tasks there read under AZC_ROOT), e.g. its NVLink domain."""
        target = self.data / "noderoots" / node / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def running(self, text: str) -> None:
        """Running jobs, as real `squeue -h -t RUNNING -O SQUEUE_FORMAT` prints them."""
        (self.data / "squeue").write_text(text)

    def sacct_lines(self, text: str) -> None:
        """The jobs sacct knows, as real `sacct -P -o SACCT_FIELDS` prints them."""
        (self.data / "sacct").write_text(text)

    def calls(self) -> list[str]:
        return (self.data / "calls.log").read_text().splitlines()

    def submitted(self, name: str) -> str:
        return (self.data / f"submitted-{name}.sh").read_text()

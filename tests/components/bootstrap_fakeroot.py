"""A fake node for running the real bootstrap scripts: a root directory laid out like sysfs, /proc,
/dev, /etc and /opt on an Azure GPU VM, and fake commands (systemctl, modprobe, nvidia-smi, mount, ...)
that record their calls and change that root the way the real ones would change the machine.

The scripts take AZC_ROOT and command variables (see components/bootstrap/scripts/azc-lib.sh); nothing
here mocks bash itself.
"""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from azcluster.components import bootstrap
from azcluster.components.spec import ClusterSpec

SCRIPTS = Path(bootstrap.__file__).parent / "scripts"

_FAKES = {
    # systemctl: units are active when $STATE/active/<unit> exists; restart/start may activate them.
    "systemctl": r"""
echo "systemctl $*" >>"$CALLS"
cmd="$1"; shift
[[ "${1:-}" == --quiet ]] && shift
unit="${1:-}"
case "$cmd" in
  is-active) [[ -e "$STATE/active/$unit" ]] ;;
  start|restart)
    if [[ -e "$STATE/can-start/$unit" ]]; then
      touch "$STATE/active/$unit"
      if [[ "$unit" == nvme-raid.service ]]; then
        echo "/dev/md128 /mnt/resource_nvme xfs rw,noatime 0 0" >>"$AZC_ROOT/proc/mounts"
      fi
    fi ;;
  *) ;;
esac
""",
    "modprobe": r"""
echo "modprobe $*" >>"$CALLS"
if [[ -e "$STATE/modprobe-works" ]]; then
  echo "${1//-/_} 16384 0 - Live 0x0000000000000000" >>"$AZC_ROOT/proc/modules"
fi
""",
    "mount": r"""
echo "mount $*" >>"$CALLS"
[[ -e "$STATE/mount-fails" ]] && exit 32
type=none
if [[ "$1" == -t ]]; then type="$2"; shift 2; fi
[[ "$1" == -o ]] && shift 2
echo "$1 $2 $type rw 0 0" >>"$AZC_ROOT/proc/mounts"
""",
    "getent": r"""
echo "getent $*" >>"$CALLS"
[[ -e "$STATE/dns/$2" ]] || exit 2
echo "$(cat "$STATE/dns/$2")     STREAM $2"
""",
    "mdadm": 'echo "mdadm $*" >>"$CALLS"; touch "$AZC_ROOT/dev/md128"',
    "mkfs.xfs": 'echo "mkfs.xfs $*" >>"$CALLS"',
    "blkid": 'echo "blkid $*" >>"$CALLS"; exit 2',
    "mount.lustre": "exit 0",
    "mount.nfs": "exit 0",
    "umount": r"""
echo "umount $*" >>"$CALLS"
grep -v " $1 " "$AZC_ROOT/proc/mounts" >"$AZC_ROOT/proc/mounts.new" || true
mv "$AZC_ROOT/proc/mounts.new" "$AZC_ROOT/proc/mounts"
""",
    "curl": 'echo "curl $*" >>"$CALLS"; echo "-----BEGIN PGP PUBLIC KEY BLOCK-----"',
    "gpg": 'echo "gpg $*" >>"$CALLS"; cat >/dev/null; echo dearmored-key',
    # apt-get: "installs" by creating the executable named in $APT_CREATES.
    "apt-get": r"""
echo "apt-get $*" >>"$CALLS"
if [[ "$1" == install && -n "${APT_CREATES:-}" ]]; then
  printf '#!/bin/bash\nexit 0\n' >"$APT_CREATES"; chmod +x "$APT_CREATES"
fi
""",
    "blobfuse2": r"""
echo "blobfuse2 $*" >>"$CALLS"
[[ "$1" == mount ]] && echo "blobfuse2 $2 fuse rw,nosuid,nodev 0 0" >>"$AZC_ROOT/proc/mounts"
exit 0
""",
    "nvidia-smi": r"""
echo "nvidia-smi $*" >>"$CALLS"
if [[ -e "$STATE/nvidia-smi-fails" ]]; then
  echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."; exit 9
fi
for ((i = 0; i < $(cat "$STATE/gpus"); i++)); do
  echo "GPU $i: NVIDIA H100 80GB HBM3 (UUID: GPU-0000000$i-1111-2222-3333-444444444444)"
done
""",
    "rocm-smi": r"""
echo "rocm-smi $*" >>"$CALLS"
printf '{'
for ((i = 0; i < $(cat "$STATE/gpus"); i++)); do
  printf '%s"card%d": {"GPU ID": "0x74a1"}' "$([[ $i -gt 0 ]] && echo ', ')" "$i"
done
echo '}'
""",
}

COMMAND_VARS = {
    "SYSTEMCTL": "systemctl",
    "MODPROBE": "modprobe",
    "MOUNT": "mount",
    "GETENT": "getent",
    "MDADM": "mdadm",
    "MKFS_XFS": "mkfs.xfs",
    "BLKID": "blkid",
    "MOUNT_LUSTRE": "mount.lustre",
    "MOUNT_NFS": "mount.nfs",
    "UMOUNT": "umount",
    "BLOBFUSE2": "blobfuse2",
    "NVIDIA_SMI": "nvidia-smi",
    "ROCM_SMI": "rocm-smi",
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


class FakeNode:
    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "root"
        self.bin = tmp / "bin"
        self.state = tmp / "state"
        self.calls_file = tmp / "calls.log"
        for folder in (
            self.root / "proc/sys/kernel/random",
            self.root / "etc/azcluster",
            self.root / "dev",
            self.root / "sys/class/infiniband",
            self.bin,
            self.state / "active",
            self.state / "can-start",
            self.state / "dns",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        (self.root / "proc/mounts").write_text("/dev/sda1 / ext4 rw 0 0\n")
        (self.root / "proc/modules").write_text("nvidia 1 0 - Live 0x0\n")
        self.boot("boot-1")
        self.calls_file.write_text("")
        for name, body in _FAKES.items():
            path = self.bin / name
            path.write_text("#!/usr/bin/env bash\n" + body.lstrip("\n"))
            path.chmod(path.stat().st_mode | stat.S_IXUSR)
        self.gpus(0)
        self.env_extra: dict[str, str] = {}

    # --- laying out the machine --------------------------------------------------------------------
    def node_env(
        self,
        spec: ClusterSpec,
        pool: str,
        lustre: str | None = None,
        blob: str | None = None,
        home: str | None = None,
    ) -> str:
        """Write the node.env that render_cloud_config puts on real nodes; return its text."""
        from ruamel.yaml import YAML

        rendered = bootstrap.render_cloud_config(spec, pool, 0, lustre, blob, home_source=home)
        document = YAML(typ="safe").load(rendered)
        text = next(f["content"] for f in document["write_files"] if f["path"] == bootstrap.NODE_ENV_PATH)
        (self.root / "etc/azcluster/node.env").write_text(text)
        return text

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def boot(self, boot_id: str) -> None:
        (self.root / "proc/sys/kernel/random/boot_id").write_text(boot_id + "\n")

    def gpus(self, count: int) -> None:
        (self.state / "gpus").write_text(str(count))
        for index in range(count):
            (self.root / f"dev/nvidia{index}").touch()

    def ib(
        self,
        ports: int = 8,
        rate: int = 400,
        state: str = "4: ACTIVE",
        pkeys: tuple[str, str] = ("0x800b", "0x7fff"),
        overrides: dict[int, tuple[str, int]] | None = None,
        ethernet: bool = True,
    ) -> None:
        """IB ports mlx5_ib0..N-1 (port 1), plus the accelerated-networking Ethernet port mlx5_an0."""
        overrides = overrides or {}
        for index in range(ports):
            port = self.root / f"sys/class/infiniband/mlx5_ib{index}/ports/1"
            (port / "pkeys").mkdir(parents=True, exist_ok=True)
            port_state, port_rate = overrides.get(index, (state, rate))
            (port / "state").write_text(port_state + "\n")
            (port / "rate").write_text(f"{port_rate} Gb/sec (4X NDR)\n")
            (port / "link_layer").write_text("InfiniBand\n")
            (port / "pkeys/0").write_text(pkeys[0] + "\n")
            (port / "pkeys/1").write_text(pkeys[1] + "\n")
        if ethernet:
            port = self.root / "sys/class/infiniband/mlx5_an0/ports/1"
            port.mkdir(parents=True, exist_ok=True)
            (port / "state").write_text("1: DOWN\n")
            (port / "rate").write_text("40 Gb/sec (4X QDR)\n")
            (port / "link_layer").write_text("Ethernet\n")

    def mounted(self, line: str) -> None:
        with (self.root / "proc/mounts").open("a") as handle:
            handle.write(line + "\n")

    def module(self, name: str) -> None:
        with (self.root / "proc/modules").open("a") as handle:
            handle.write(f"{name} 16384 0 - Live 0x0\n")

    def active(self, unit: str) -> None:
        (self.state / "active" / unit).touch()

    def can_start(self, unit: str) -> None:
        (self.state / "can-start" / unit).touch()

    def flag(self, name: str) -> None:
        (self.state / name).touch()

    def dns(self, name: str, ip: str) -> None:
        (self.state / "dns" / name).write_text(ip)

    def hpc_image(self, topo: str = "ndv5") -> None:
        """What the Azure HPC image leaves on an ND H100 v5 node when all went well."""
        self.write(f"opt/microsoft/{topo}-topo.xml", "<system version='1'/>\n")
        (self.root / f"opt/microsoft/{topo}").mkdir(parents=True, exist_ok=True)
        os.symlink(f"../{topo}-topo.xml", self.root / f"opt/microsoft/{topo}/topo.xml")
        self.write(
            "etc/nccl.conf",
            f"NCCL_IB_PCI_RELAXED_ORDERING=1\nNCCL_TOPO_FILE=/opt/microsoft/{topo}/topo.xml\n"
            "NCCL_IGNORE_CPU_AFFINITY=1\n",
        )
        self.write("etc/systemd/system/nvme-raid.service", "[Service]\n")
        self.mounted("/dev/md128 /mnt/resource_nvme xfs rw,noatime 0 0")
        self.active("nvidia-fabricmanager.service")
        self.module("nvidia_peermem")

    # --- running ----------------------------------------------------------------------------------
    def run(self, script: str, *args: str, missing: tuple[str, ...] = (), **env: str) -> Run:
        environ = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.state),
            "AZC_ROOT": str(self.root),
            "STATE": str(self.state),
            "CALLS": str(self.calls_file),
            "APT_GET": str(self.bin / "no-apt-get"),
            "CURL": str(self.bin / "curl"),
            "GPG": str(self.bin / "gpg"),
        }
        for var, name in COMMAND_VARS.items():
            environ[var] = str(self.bin / ("missing-" + name if name in missing else name))
        environ.update(self.env_extra)
        environ.update(env)
        proc = subprocess.run(
            ["bash", str(SCRIPTS / script), *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def calls(self) -> list[str]:
        return [line for line in self.calls_file.read_text().splitlines() if line]

    def clear_calls(self) -> None:
        self.calls_file.write_text("")

    def snapshot(self, exclude: tuple[str, ...] = ()) -> dict[str, object]:
        """Every file, link and folder under the root with its content/target and mode."""
        tree: dict[str, object] = {}
        for path in sorted(self.root.rglob("*")):
            rel = str(path.relative_to(self.root))
            if rel in exclude:
                continue
            mode = path.lstat().st_mode
            if path.is_symlink():
                tree[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                tree[rel] = ("dir", stat.S_IMODE(mode))
            else:
                tree[rel] = ("file", stat.S_IMODE(mode), path.read_bytes())
        return tree

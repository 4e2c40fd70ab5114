"""What elastic power adds to the login node's first boot: the power programs' configuration
(components/elastic.py `render_config`), azc-elastic.py, the state and log directories, and the timer of
the power round (idle watcher without a scheduler; with Slurm, slurmctld runs the programs through the
wrappers in `elastic.SLURM_PROGRAMS`, as SlurmUser, and the timer runs as that user too).

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

import json

from ..elastic import CONFIG_PATH, LOG_PATH, SLURM_PROGRAMS, STATE_DIR, slurm_wrapper
from .document import INSTALL_DIR, UNIT_DIR, Piece, file_entry, read_script

ELASTIC_TMPFILES_PATH = "/etc/tmpfiles.d/azc-elastic.conf"
ELASTIC_UNITS = ("azc-elastic-watch.service", "azc-elastic-watch.timer")


def elastic_piece(elastic_config: str) -> Piece:
    """The login node's power programs: config, program, tmpfiles for its state and log, the timer."""
    user = "slurm" if json.loads(elastic_config).get("scheduler") == "slurm" else "root"
    tmpfiles = (
        f"d {STATE_DIR} 0750 {user} {user} -\n"
        f"d {LOG_PATH.rsplit('/', 1)[0]} 0755 {user} {user} -\n"
        f"f {LOG_PATH} 0640 {user} {user} -\n"
    )
    files = [
        file_entry(CONFIG_PATH, elastic_config, "0644"),
        file_entry(f"{INSTALL_DIR}/azc-elastic.py", read_script("azc-elastic.py"), "0755"),
        file_entry(ELASTIC_TMPFILES_PATH, tmpfiles, "0644"),
        *[file_entry(f"{UNIT_DIR}/{name}", read_script(name), "0644") for name in ELASTIC_UNITS],
    ]
    if user != "root":  # Slurm runs the programs as SlurmUser; the timer shares its state as that user
        files += [
            file_entry(path, slurm_wrapper(command), "0755") for path, command in SLURM_PROGRAMS.values()
        ]
        dropin = f"[Service]\nUser={user}\nGroup={user}\n"
        files.append(file_entry(f"{UNIT_DIR}/azc-elastic-watch.service.d/user.conf", dropin, "0644"))
    return Piece(
        "elastic",
        files=tuple(files),
        start=("azc-elastic-watch.timer",),
        before=(("systemd-tmpfiles", "--create", ELASTIC_TMPFILES_PATH),),
    )

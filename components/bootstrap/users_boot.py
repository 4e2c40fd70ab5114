"""What the team adds to both roles' first boot: azc-users.py and its timer (login node and GPU nodes).

Only the applier goes into custom data, never the list of people: the list is a file on the shared home
(components/team.py), so adding or removing a user changes no VM's model and re-images nothing. Every
node, login and GPU alike, applies the file by itself every 2 minutes (azc-users.timer), so a change
reaches every node within about 2 minutes of the file landing, and a node booted later (a new island,
a re-image) gets everyone at its first run, 1 minute after boot. Present whenever the spec has a shared
home, with or without a team: adding the first user must not change custom data either.

Pure: no pulumi, no Azure SDK.
"""

from __future__ import annotations

from ..spec import ClusterSpec
from .document import Piece

USERS_DIR_NAME = ".azcluster"
"""The root-owned directory on the shared home that holds the users file (mode 0755, root:root): users
can read the list but never write it, so nobody can add themselves to it."""
USERS_FILE_NAME = "users.json"
USERS_SCRIPTS = ("azc-users.py",)
USERS_UNITS = ("azc-users.service", "azc-users.timer")
USERS_TIMER_INTERVAL_S = 120
"""azc-users.timer's OnUnitInactiveSec: the longest a node waits for a new users file (plus the run)."""


def users_file_path(spec: ClusterSpec) -> str:
    """Where the nodes read the users file (components/team.py renders it): `<home>/.azcluster/users.json`."""
    return f"{spec.storage.home.mount.rstrip('/')}/{USERS_DIR_NAME}/{USERS_FILE_NAME}"


def users_piece(spec: ClusterSpec) -> Piece | None:
    """The applier and its timer; None without a shared home (the users file lives there)."""
    if not spec.storage.home.enabled:
        return None
    return Piece(
        "users",
        env={"AZC_USERS_FILE": users_file_path(spec)},
        scripts=USERS_SCRIPTS,
        units=USERS_UNITS,
        start=("azc-users.timer",),
    )
